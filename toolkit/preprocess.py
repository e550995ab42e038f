"""Eval preprocessing with OpenCV, step for step what MindSpore's eval pipeline does.

decode -> RGB (grayscale and 4-channel images become RGB, as MindSpore's Decode makes them) ->
resize the shorter side to int(size / crop_pct) -> centre crop -> (pixel - mean) / std -> NCHW float32.

The Android demo copies these exact steps, so the rounding rules are MindSpore's (see the
comments); `tests/convert/test_preprocess.py` holds it to the MindSpore pipeline on real JPEGs.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from toolkit.card import ModelCard
from toolkit.data.transforms import eval_resize_size
from toolkit.errors import DataError

INTERPOLATIONS = {"bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST, "bicubic": cv2.INTER_CUBIC,
                  "area": cv2.INTER_AREA}


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image file as RGB uint8 [H, W, 3].

    Like MindSpore's Decode: colour is forced to 3 channels (grey is replicated, alpha dropped) and
    the EXIF orientation is ignored.
    """
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc.strerror}", "check the path") from None
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if raw.size else None
    if image is None:
        raise DataError(f"cannot decode image {path}", "pass a JPEG, PNG, BMP, WebP or TIFF file")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def resize_shorter(image: np.ndarray, size: int, interpolation: str = "bilinear") -> np.ndarray:
    """Resize so the shorter side is `size`; the longer side is floor(float32(long) / short * size),
    the rule of MindSpore 2.x's ResizeOp (1.x rounded instead)."""
    h, w = image.shape[:2]
    short, long = (h, w) if h < w else (w, h)
    scaled = float(np.float32(long) / np.float32(short) * np.float32(size))  # float32 math, as in C++
    out_long = math.floor(scaled)
    out_h, out_w = (size, out_long) if h < w else (out_long, size)
    return cv2.resize(image, (out_w, out_h), interpolation=INTERPOLATIONS[interpolation])


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """MindSpore's CenterCropOp: offset (dim - size) // 2; a smaller image is zero-padded first,
    with the odd pixel on the top / left."""
    h, w = image.shape[:2]
    pad_h, pad_w = max(size - h, 0), max(size - w, 0)
    if pad_h or pad_w:
        image = cv2.copyMakeBorder(image, pad_h - pad_h // 2, pad_h // 2, pad_w - pad_w // 2, pad_w // 2,
                                   cv2.BORDER_CONSTANT, value=0)
        h, w = image.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return image[top:top + size, left:left + size]


def normalize(image: np.ndarray, mean, std) -> np.ndarray:
    """uint8 HWC -> float32 CHW, (pixel - mean) / std per channel (mean/std on the 0..255 scale)."""
    x = (image.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def preprocess(image: np.ndarray, card: ModelCard) -> np.ndarray:
    """RGB uint8 [H, W, 3] -> float32 [3, S, S], the model card's eval transform."""
    resized = resize_shorter(image, eval_resize_size(card.image_size, card.crop_pct), card.interpolation)
    return normalize(center_crop(resized, card.image_size), card.mean, card.std)


def load_batch(paths, card: ModelCard) -> np.ndarray:
    """Image files -> the canonical float32 NCHW batch every predictor takes."""
    return np.stack([preprocess(load_image(p), card) for p in paths])
