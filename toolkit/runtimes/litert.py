"""LiteRT (TFLite) predictor for `.tflite` files: `ai_edge_litert`, or `tflite_runtime` where that is installed."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np

from toolkit.card import InputQuant, ModelCard, load_card
from toolkit.errors import BackendError, ModelCardError, ModelFileError
from toolkit.runtimes.base import InputSpec, Predictor, register_runtime


def _interpreter_module():
    try:
        from ai_edge_litert import interpreter
    except ImportError:
        try:
            from tflite_runtime import interpreter
        except ImportError:
            raise BackendError("no LiteRT runtime is installed",
                               "pip install ai-edge-litert (or tflite-runtime)") from None
    return interpreter


@contextlib.contextmanager
def _native_log_muted():
    """LiteRT's C++ INFO lines ("Created TensorFlow Lite XNNPACK delegate for CPU.") ignore
    TF_CPP_MIN_LOG_LEVEL; honour it (the CLI sets it unless --debug) by muting fd 2 meanwhile."""
    if int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") or 0) < 1:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@register_runtime
class LiteRTPredictor(Predictor):
    """Runs a .tflite model on the CPU.

    num_threads: interpreter threads (None lets LiteRT decide).
    builtin_only: use the builtin kernels without the default XNNPACK delegate, for bit-exact
    comparisons of int8 models against the TFLite reference arithmetic.
    """

    suffixes = (".tflite",)
    name = "litert"

    def __init__(self, path: Path, card: ModelCard, interpreter):
        super().__init__(path, card)
        self.interpreter = interpreter
        self._input = interpreter.get_input_details()[0]
        self._output = interpreter.get_output_details()[0]
        self._batch = int(self._input["shape"][0])
        self._fixed_batch = False  # set when the model cannot be resized to another batch size

    @classmethod
    def load(cls, path: str | Path, card: ModelCard | None = None, num_threads: int | None = None,
             builtin_only: bool = False) -> "LiteRTPredictor":
        path = Path(path)
        card = card or load_card(path)
        module = _interpreter_module()
        resolver = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin_only else \
            module.OpResolverType.AUTO
        try:
            with _native_log_muted():
                interpreter = module.Interpreter(model_path=str(path), num_threads=num_threads,
                                                 experimental_op_resolver_type=resolver)
                interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"{path} is not a valid TFLite model ({reason})",
                                 "convert it again with `mnv1-tk convert`") from None
        predictor = cls(path, card, interpreter)
        predictor._check_card()
        return predictor

    def _check_card(self) -> None:
        shape = tuple(int(d) for d in self._input["shape"])
        s = self.card.image_size
        if shape[1:] != (s, s, 3):
            raise ModelCardError(f"model card {self.path}.json says input {s}x{s}x3 (NHWC) but the model takes "
                                 f"{list(shape)}", "use the card that was written with this model")
        classes = int(self._output["shape"][-1])
        if classes != self.card.num_classes:
            raise ModelCardError(f"model card {self.path}.json says {self.card.num_classes} classes but the model "
                                 f"outputs {classes}", "use the card that was written with this model")

    @property
    def input_spec(self) -> InputSpec:
        dtype = np.dtype(self._input["dtype"]).name
        scale, zero_point = self._input["quantization"]
        quant = InputQuant(float(scale), int(zero_point)) if dtype in ("int8", "uint8") else None
        return InputSpec(self._input["name"], tuple(int(d) for d in self._input["shape"]), "NHWC", dtype, quant)

    def _resize(self, batch: int) -> None:
        shape = [batch] + [int(d) for d in self._input["shape"][1:]]
        self.interpreter.resize_tensor_input(self._input["index"], shape)
        self.interpreter.allocate_tensors()
        self._batch = batch

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._input["index"], x)
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self._output["index"])
        scale, zero_point = self._output["quantization"]
        if y.dtype != np.float32:
            y = (y.astype(np.float32) - zero_point) * np.float32(scale)
        return y.reshape(len(x), -1)

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = self.to_native(batch)
        if len(x) != self._batch and not self._fixed_batch:
            try:
                self._resize(len(x))
            except (ValueError, RuntimeError):  # a model with a fixed batch: loop over the images
                self._fixed_batch = True
                self._resize(int(self._input["shape"][0]))
        if len(x) == self._batch:
            return self._invoke(x)
        return np.concatenate([self._invoke(x[i:i + self._batch]) for i in range(0, len(x), self._batch)])

    def inference_timer(self, batch: np.ndarray):
        x = self.to_native(batch[:self._batch])
        if len(x) != self._batch:
            self._resize(len(x))
        self.interpreter.set_tensor(self._input["index"], x)

        def once() -> float:
            start = time.perf_counter()
            self.interpreter.invoke()
            return (time.perf_counter() - start) * 1e3
        return once
