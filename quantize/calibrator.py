"""Calibration: run the float reference executor over calibration images and observe every activation.

The result is plain data (histograms per tensor, per-channel pre-activation maxima per layer) and
can be saved and loaded, so one calibration serves several quantization runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from converters.ir import Graph
from converters.ir.execute import run
from quantize.observers import Histogram
from toolkit.errors import CalibrationError
from toolkit.fsutil import atomic_path

MIN_CALIBRATION_IMAGES = 16


@dataclass
class CalibrationResult:
    histograms: dict[str, Histogram] = field(default_factory=dict)
    preact_max: dict[str, np.ndarray] = field(default_factory=dict)  # layer name -> per-channel max before act
    count: int = 0

    def save(self, path: str | Path) -> None:
        arrays = {}
        for name, h in self.histograms.items():
            arrays[f"hist/{name}"] = h.counts
        for name, m in self.preact_max.items():
            arrays[f"preact/{name}"] = m
        header = {"count": self.count,
                  "hist": {k: {"limit": h.limit, "min": h.min, "max": h.max, "zeros": h.zeros}
                           for k, h in self.histograms.items()}}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, header=np.array(json.dumps(header)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "CalibrationResult":
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            hist = {k: Histogram.from_dict({**v, "counts": data[f"hist/{k}"]}) for k, v in header["hist"].items()}
            pre = {k[len("preact/"):]: data[k] for k in data.files if k.startswith("preact/")}
        return cls(hist, pre, header["count"])


def check_images(graph: Graph, images: np.ndarray) -> np.ndarray:
    """Calibration images must be a float NHWC batch of the model's input size, and enough of them."""
    images = np.asarray(images)
    expected = tuple(graph.tensors[graph.inputs[0]].shape[1:])
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise CalibrationError("calibration images have shape "
                               f"{list(images.shape[1:]) if images.ndim == 4 else list(images.shape)}"
                               f" but the model takes {list(expected)} (H, W, C)",
                               "preprocess them with the model card (size, channels)")
    if len(images) < MIN_CALIBRATION_IMAGES:
        raise CalibrationError(f"found {len(images)} calibration images; at least {MIN_CALIBRATION_IMAGES} are needed",
                               "point --calib at a folder with more images (200-500 is typical)")
    if not np.all(np.isfinite(images)):
        raise CalibrationError("calibration images hold NaN or Inf", "check the preprocessing")
    return images.astype(np.float32)


def calibrate(graph: Graph, images: np.ndarray, batch_size: int = 32,
              progress: Callable[[int], None] | None = None, histograms: bool = True) -> CalibrationResult:
    """Observe every activation of `graph` (lowered, NHWC, float) on `images` (float NHWC); `histograms=False`:
    only the per-channel pre-activation maxima (what equalization needs before it recalibrates)."""
    images = check_images(graph, images)
    result = CalibrationResult()
    layers_with_act = {n.name: n for n in graph.nodes if n.attrs.get("act", "none") != "none"}

    def observe(name: str, value: np.ndarray) -> None:
        result.histograms.setdefault(name, Histogram()).update(value)

    def observe_preact(name: str, value: np.ndarray) -> None:
        peak = value.reshape(-1, value.shape[-1]).max(axis=0)
        old = result.preact_max.get(name)
        result.preact_max[name] = peak if old is None else np.maximum(old, peak)

    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        run(graph, batch, on_tensor=observe if histograms else None,
            on_preact=observe_preact if layers_with_act else None)
        result.count += len(batch)
        if progress:
            progress(len(batch))
    return result
