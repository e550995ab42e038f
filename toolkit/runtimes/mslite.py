"""MindSpore Lite predictor for `.ms` files.

The model runs in a worker process (`converters.mslite.worker`) that stays alive as long as the
predictor, because MindSpore 2.10 and the MindSpore Lite libraries cannot share a process. Call
`close()` (or use `with`) to stop it; it is also stopped when the predictor is garbage-collected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.card import InputQuant, ModelCard, load_card
from toolkit.errors import ModelCardError
from toolkit.runtimes.base import InputSpec, Predictor, register_runtime


@register_runtime
class MSLitePredictor(Predictor):
    """Runs a `.ms` model on the CPU with MindSpore Lite 2.0.

    num_threads: MindSpore Lite CPU threads.
    Input layout (NCHW or NHWC) and dtype come from the model itself (`GetInputs`) and are checked
    against the model card.
    """

    suffixes = (".ms",)
    name = "mslite"

    def __init__(self, path: Path, card: ModelCard, session):
        super().__init__(path, card)
        self.session = session
        spec = session.inputs[0]
        self._spec = InputSpec(spec.name, tuple(spec.shape), self._layout(spec.shape), spec.dtype,
                               InputQuant(spec.scale, spec.zero_point) if spec.scale is not None else None)

    @classmethod
    def load(cls, path: str | Path, card: ModelCard | None = None, num_threads: int = 2) -> "MSLitePredictor":
        from converters.mslite.install import ensure_mslite

        path = Path(path)
        card = card or load_card(path)
        session = ensure_mslite().open(path, num_threads)
        try:
            predictor = cls(path, card, session)
            predictor._check_card()
        except Exception:
            session.close()
            raise
        return predictor

    def _layout(self, shape: tuple[int, ...]) -> str:
        s = self.card.image_size
        if len(shape) == 4 and shape[1:] == (3, s, s):
            return "NCHW"
        if len(shape) == 4 and shape[1:] == (s, s, 3):
            return "NHWC"
        raise ModelCardError(f"model card {self.path}.json says input {s}x{s} RGB but the model takes {list(shape)}",
                             "use the card that was written with this model")

    def _check_card(self) -> None:
        if self._spec.layout != self.card.input_layout:
            raise ModelCardError(f"model card {self.path}.json says {self.card.input_layout} input but the model takes "
                                 f"{self._spec.layout} {list(self._spec.shape)}",
                                 "use the card that was written with this model")
        classes = self.session.outputs[0].shape[-1]
        if classes != self.card.num_classes:
            raise ModelCardError(f"model card {self.path}.json says {self.card.num_classes} classes but the model "
                                 f"outputs {classes}", "use the card that was written with this model")

    @property
    def input_spec(self) -> InputSpec:
        return self._spec

    def run(self, batch: np.ndarray) -> np.ndarray:
        logits = self.session.run(self.to_native(batch))
        return logits.reshape(len(logits), -1)

    def close(self) -> None:
        self.session.close()

    def inference_timer(self, batch: np.ndarray):
        """Times `Predict` inside the worker, so the exchange of arrays with it is not counted."""
        self.session.set_timing_input(self.to_native(batch))
        return self.session.time_once

    def peak_rss_mb(self) -> float | None:
        return self.session.peak_rss_mb()
