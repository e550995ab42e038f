"""ONNX Runtime predictor for `.onnx` files (CPU execution provider)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from toolkit.card import ModelCard, load_card
from toolkit.errors import ModelCardError, ModelFileError
from toolkit.runtimes.base import InputSpec, Predictor, register_runtime


@register_runtime
class OnnxRuntimePredictor(Predictor):
    """Runs an ONNX model in ONNX Runtime; a fixed batch dimension is served in chunks."""

    suffixes = (".onnx",)
    name = "onnxruntime"

    def __init__(self, path: Path, card: ModelCard, session):
        super().__init__(path, card)
        self.session = session
        self._input = session.get_inputs()[0]
        self._output = session.get_outputs()[0]

    @classmethod
    def load(cls, path: str | Path, card: ModelCard | None = None, num_threads: int | None = None
             ) -> "OnnxRuntimePredictor":
        import onnxruntime as ort

        path = Path(path)
        card = card or load_card(path)
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception classes (InvalidProtobuf, Fail, ...)
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"{path} is not a valid ONNX model ({reason})",
                                 "export it again with `mnv1-tk export`") from None
        predictor = cls(path, card, session)
        predictor._check_card()
        return predictor

    def _check_card(self) -> None:
        s = self.card.image_size
        if tuple(self._input.shape[1:]) != (3, s, s):
            raise ModelCardError(f"model card {self.path}.json says input 3x{s}x{s} (NCHW) but the model takes "
                                 f"{list(self._input.shape)}", "use the card that was written with this model")
        classes = self._output.shape[-1]
        if isinstance(classes, int) and classes != self.card.num_classes:
            raise ModelCardError(f"model card {self.path}.json says {self.card.num_classes} classes but the model "
                                 f"outputs {classes}", "use the card that was written with this model")

    @property
    def input_spec(self) -> InputSpec:
        shape = tuple(d if isinstance(d, int) else -1 for d in self._input.shape)
        return InputSpec(self._input.name, shape, "NCHW", "float32")

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = self.to_native(batch)
        fixed = self._input.shape[0]
        step = fixed if isinstance(fixed, int) else len(x)
        outputs = [self.session.run([self._output.name], {self._input.name: x[i:i + step]})[0]
                   for i in range(0, len(x), step)]
        return np.concatenate(outputs).astype(np.float32).reshape(len(x), -1)

    def inference_timer(self, batch: np.ndarray):
        feed = {self._input.name: self.to_native(batch)}

        def once() -> float:
            start = time.perf_counter()
            self.session.run([self._output.name], feed)
            return (time.perf_counter() - start) * 1e3
        return once
