"""QNN runtime for compiled EPContext `.onnx` files (`convert --to qnn`): the HTP context binary runs
on the x86_64 HTP emulator of `mnv1-tk setup qnn`, with ONNX Runtime's CPU fallback disabled, so
nothing silently runs elsewhere.

The emulator reproduces the NPU's integer arithmetic, not its speed: timings taken here say
nothing about phone latency (`timing_note`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.card import ModelCard, load_card
from toolkit.errors import BackendError, ModelCardError, ModelFileError
from toolkit.runtimes.base import InputSpec, Predictor, register_runtime


@register_runtime
class QnnPredictor(Predictor):
    """Runs an EPContext ONNX on the emulated Hexagon NPU, one image per run (the batch is compiled in)."""

    suffixes = (".onnx",)
    name = "qnn-htp-emulator"
    timing_note = "x86_64 HTP emulator: timings say nothing about phone latency"

    def __init__(self, path: Path, card: ModelCard, session):
        super().__init__(path, card)
        self.session = session
        self._input = session.get_inputs()[0]
        self._output = session.get_outputs()[0]

    @classmethod
    def accepts(cls, path: Path) -> bool:
        from converters.qnn import is_epcontext

        return is_epcontext(path)

    @classmethod
    def load(cls, path: str | Path, card: ModelCard | None = None, num_threads: int | None = None) -> "QnnPredictor":
        from converters.qnn import ensure_qnn
        from converters.qnn.session import htp_options, open_session

        path = Path(path)
        card = card or load_card(path)
        install = ensure_qnn()
        try:
            session = open_session(path, htp_options(install, num_threads=num_threads), what=path.name)
        except BackendError as exc:
            raise ModelFileError(f"{path.name}: its HTP context binary does not load ({exc.problem})",
                                 "convert it again with `mnv1-tk convert --to qnn`") from None
        predictor = cls(path, card, session)
        s = card.image_size
        if tuple(predictor._input.shape[1:]) != (3, s, s):
            raise ModelCardError(f"model card {path}.json says input 3x{s}x{s} (NCHW) but the model takes "
                                 f"{list(predictor._input.shape)}", "use the card that was written with this model")
        return predictor

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(self._input.name, tuple(self._input.shape), "NCHW", "float32")

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = self.to_native(batch)
        step = self._input.shape[0]
        outputs = [self.session.run([self._output.name], {self._input.name: x[i:i + step]})[0]
                   for i in range(0, len(x), step)]
        return np.concatenate(outputs).astype(np.float32).reshape(len(x), -1)
