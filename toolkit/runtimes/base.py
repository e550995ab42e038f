"""One predictor interface for every model format.

`run(batch)` always takes the toolkit's canonical input: a float32 NCHW batch, preprocessed with
the model card's eval transform (the MindSpore eval pipeline or `toolkit.preprocess`). Each
predictor converts it to its model's native input (`input_spec`: NHWC, int8, batch 1, ...) and
returns float32 logits [N, num_classes].
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
import time
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from toolkit.card import InputQuant, ModelCard
from toolkit.errors import ModelFileError


@dataclass(frozen=True)
class InputSpec:
    """The model's native input."""

    name: str
    shape: tuple[int, ...]
    layout: str  # "NCHW" or "NHWC"
    dtype: str  # "float32", "int8" or "uint8"
    quant: InputQuant | None = None


class Predictor(ABC):
    """Loads one model file and runs it on canonical NCHW float32 batches."""

    suffixes: ClassVar[tuple[str, ...]] = ()
    name: ClassVar[str] = ""

    def __init__(self, path: Path, card: ModelCard):
        self.path = Path(path)
        self.card = card

    @classmethod
    @abstractmethod
    def load(cls, path: str | Path, card: ModelCard | None = None, **options) -> "Predictor":
        """Open `path`; `card` defaults to the model card next to it."""

    @property
    @abstractmethod
    def input_spec(self) -> InputSpec:
        ...

    @abstractmethod
    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 [N,3,S,S] -> float32 logits [N, num_classes]."""

    def close(self) -> None:
        """Release the runtime (a child process for some engines)."""

    def inference_timer(self, batch: np.ndarray) -> Callable[[], float]:
        """A function that runs one inference on `batch` and returns its wall time in milliseconds.

        This default times `run`, conversion to the native input included; runtimes override it to time
        the engine call alone (the input set once, outside the timing).
        """
        def once() -> float:
            start = time.perf_counter()
            self.run(batch)
            return (time.perf_counter() - start) * 1e3
        return once

    def peak_rss_mb(self) -> float | None:
        """Peak resident memory of the process the model runs in, when that is not this process."""
        return None

    def __enter__(self) -> "Predictor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def to_native(self, batch: np.ndarray) -> np.ndarray:
        """Canonical NCHW float32 -> this model's input layout and dtype."""
        spec = self.input_spec
        x = np.asarray(batch, dtype=np.float32)
        if spec.layout == "NHWC":
            x = x.transpose(0, 2, 3, 1)
        if spec.dtype in ("int8", "uint8"):
            info = np.iinfo(spec.dtype)
            x = np.clip(np.round(x / spec.quant.scale) + spec.quant.zero_point, info.min, info.max)
        return np.ascontiguousarray(x.astype(spec.dtype))


_RUNTIMES: dict[str, type[Predictor]] = {}


def register_runtime(cls: type[Predictor]) -> type[Predictor]:
    for suffix in cls.suffixes:
        _RUNTIMES[suffix] = cls
    return cls


def runtime_for(path: str | Path) -> type[Predictor]:
    """The predictor class for a model file, chosen by its suffix."""
    import toolkit.runtimes  # noqa: F401  (registers the built-in runtimes)

    suffix = Path(path).suffix.lower()
    if suffix not in _RUNTIMES:
        raise ModelFileError(f"{path}: unknown model type '{suffix}'",
                             f"use one of: {', '.join(sorted(_RUNTIMES))}")
    return _RUNTIMES[suffix]


def load_predictor(path: str | Path, card: ModelCard | None = None, **options) -> Predictor:
    """Open any supported model file."""
    if not Path(path).is_file():
        raise ModelFileError(f"model file {path} does not exist", "check the path")
    return runtime_for(path).load(path, card=card, **options)
