"""Calibration images, with exactly the model's eval preprocessing (canonical float NCHW).

A source is one of:
- a dataset name, `digits`, or `imagefolder:DIR` / `cifar10:DIR` (their train split);
- a directory of images, searched recursively, each preprocessed with `toolkit.preprocess`
  (the OpenCV copy of MindSpore's eval transform);
- a `.npy` file holding an already preprocessed [N, 3, S, S] float32 batch.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from quantize.calibrator import MIN_CALIBRATION_IMAGES
from toolkit.card import ModelCard
from toolkit.errors import CalibrationError

DEFAULT_CALIBRATION_SIZE = 500
DATASET_SOURCES = ("digits", "imagefolder", "cifar10")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _from_dataset(source: str, card: ModelCard, count: int) -> np.ndarray:
    from toolkit.data import DatasetSpec
    from toolkit.validate import eval_batches

    name, _, root = source.partition(":")
    batches = [images for images, _ in eval_batches(card, DatasetSpec(name, root or None), "train", limit=count)]
    return np.concatenate(batches) if batches else np.zeros((0, 3, card.image_size, card.image_size), np.float32)


def _from_folder(folder: Path, card: ModelCard, count: int, progress) -> np.ndarray:
    """Up to `count` decodable images; unreadable ones (empty, not an image) are skipped with one warning
    naming them, so a few bad files do not stop a calibration that has enough good ones."""
    from toolkit.errors import DataError, ToolkitWarning
    from toolkit.preprocess import load_image, preprocess

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    images, skipped = [], []
    for path in files:
        if len(images) == count:
            break
        try:
            images.append(preprocess(load_image(path), card)[None])
        except DataError:
            skipped.append(path)
            continue
        if progress:
            progress(1)
    if skipped:
        names = ", ".join(str(p.relative_to(folder)) for p in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        problem = f"{len(skipped)} unreadable calibration image(s) in {folder}: {names}"
        if len(images) < MIN_CALIBRATION_IMAGES:
            raise CalibrationError(f"{problem}; {len(images)} good ones left, at least {MIN_CALIBRATION_IMAGES} "
                                   "are needed", "replace the unreadable files or add images")
        warnings.warn(ToolkitWarning(f"skipped {problem}"))
    if not images:
        return np.zeros((0, 3, card.image_size, card.image_size), np.float32)
    return np.concatenate(images)


def _from_array(path: Path, card: ModelCard, count: int) -> np.ndarray:
    try:
        images = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"cannot read calibration array {path}: {exc}", "save it with numpy.save") from None
    expected = (3, card.image_size, card.image_size)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise CalibrationError(f"calibration images in {path} have shape {list(images.shape)}, the model takes "
                               f"[N, {', '.join(map(str, expected))}]",
                               "preprocess them with the model card (size, 3 channels, NCHW)")
    return images[:count].astype(np.float32)


def load_calibration_images(source: str | Path, card: ModelCard, count: int = DEFAULT_CALIBRATION_SIZE,
                            progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Up to `count` calibration images from `source` (see the module docstring), canonical NCHW."""
    if count < MIN_CALIBRATION_IMAGES:
        raise CalibrationError(f"--calib-size {count} is too small", f"use at least {MIN_CALIBRATION_IMAGES}")
    text = str(source)
    path = Path(text)
    if text.partition(":")[0].lower() in DATASET_SOURCES and not path.exists():
        images = _from_dataset(text, card, count)
    elif path.is_dir():
        images = _from_folder(path, card, count, progress)
    elif path.suffix.lower() == ".npy" and path.is_file():
        images = _from_array(path, card, count)
    else:
        raise CalibrationError(f"calibration source {text} is neither a dataset, a folder of images nor a .npy file",
                               f"pass --calib digits, imagefolder:DIR, cifar10:DIR, an image folder or a .npy")
    if len(images) < MIN_CALIBRATION_IMAGES:
        raise CalibrationError(f"found {len(images)} calibration images in {text}; at least "
                               f"{MIN_CALIBRATION_IMAGES} are needed", "add images (200-500 is typical)")
    return images
