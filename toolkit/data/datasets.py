"""Datasets on MindSpore's dataset engine: ImageFolder, CIFAR-10 binary and the built-in digits.

Every dataset yields two columns, `image` (HWC uint8 RGB) and `label` (int32), and is sharded by
rank for data-parallel training.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toolkit.errors import DataError

DATASETS = ("digits", "imagefolder", "cifar10")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
CIFAR10_LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
DIGITS_LABELS = tuple(str(i) for i in range(10))
DIGITS_VAL_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0
# mindcv calls ImageNet-style folders "imagenet"; accept its dataset names too.
ALIASES = {"imagenet": "imagefolder", "image_folder": "imagefolder", "cifar-10": "cifar10"}


@dataclass(frozen=True)
class DatasetSpec:
    """Where the data is and how it is split: what `create_dataset` needs."""

    name: str = "digits"
    root: str | None = None
    train_split: str = "train"
    val_split: str = "val"


def canonical_name(name: str) -> str:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise DataError(f"unknown dataset '{name}'", f"use one of: {', '.join(DATASETS)}")
    return key


def load_digits(split: str, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits, upsampled (bilinear) to `image_size`, as RGB uint8 [N,S,S,3].

    The split is fixed: a seeded permutation puts 20% of the 1,797 images in `val`.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    data = sklearn_digits()
    order = np.random.RandomState(DIGITS_SPLIT_SEED).permutation(len(data.images))
    n_val = int(round(len(order) * DIGITS_VAL_FRACTION))
    index = {"val": order[:n_val], "train": order[n_val:]}.get(split)
    if index is None:
        raise DataError(f"digits has no split '{split}'", "use 'train' or 'val'")
    small = (data.images[index] * (255.0 / 16.0)).astype(np.float32)
    images = np.stack([cv2.resize(im, (image_size, image_size), interpolation=cv2.INTER_LINEAR) for im in small])
    images = np.clip(np.round(images), 0, 255).astype(np.uint8)
    return np.repeat(images[..., None], 3, axis=3), data.target[index].astype(np.int32)


def _check_image_folder(root: Path) -> list[str]:
    if not root.is_dir():
        raise DataError(f"data directory {root} does not exist",
                        "pass --data-dir pointing at root/{train,val}/<class>/")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no class folders", "lay images out as <split>/<class>/*.jpg")
    for cls in classes:
        if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in (root / cls).iterdir()):
            raise DataError(f"class folder {root / cls} holds no images",
                            f"add images ({', '.join(IMAGE_SUFFIXES)}) or remove the folder")
    return classes


def _cifar_dir(root: Path) -> Path:
    for candidate in (root, root / "cifar-10-batches-bin"):
        if (candidate / "data_batch_1.bin").is_file() or (candidate / "test_batch.bin").is_file():
            return candidate
    raise DataError(f"{root} is not a CIFAR-10 binary folder", "point --data-dir at cifar-10-batches-bin")


def dataset_labels(spec: DatasetSpec) -> tuple[str, ...]:
    """Class names, in label order."""
    name = canonical_name(spec.name)
    if name == "digits":
        return DIGITS_LABELS
    if name == "cifar10":
        return CIFAR10_LABELS
    return tuple(_check_image_folder(_require_root(spec) / spec.train_split))


def _require_root(spec: DatasetSpec) -> Path:
    if not spec.root:
        raise DataError(f"dataset '{spec.name}' needs a data directory", "pass --data-dir")
    root = Path(spec.root).expanduser()
    if not root.is_dir():
        raise DataError(f"data directory {root} does not exist", "pass an existing --data-dir")
    return root


def create_dataset(spec: DatasetSpec, split: str, image_size: int, shuffle: bool = False,
                   num_shards: int | None = None, shard_id: int | None = None, num_parallel_workers: int = 2,
                   num_samples: int | None = None, seed: int = 0):
    """A `mindspore.dataset` with columns `image` (HWC uint8 RGB) and `label` (int32).

    `image_size` only matters for digits, whose 8x8 images are upsampled to it.
    """
    import mindspore.dataset as ds

    name = canonical_name(spec.name)
    split_name = spec.train_split if split == "train" else spec.val_split
    shard = {"num_shards": num_shards, "shard_id": shard_id} if num_shards and num_shards > 1 else {}
    if name == "digits":
        images, labels = load_digits(split, image_size)
        if num_samples:
            images, labels = images[:num_samples], labels[:num_samples]
        return ds.NumpySlicesDataset({"image": images, "label": labels}, shuffle=shuffle, **shard)
    root = _require_root(spec)
    if name == "cifar10":
        usage = "train" if split == "train" else "test"
        dataset = ds.Cifar10Dataset(str(_cifar_dir(root)), usage=usage, shuffle=shuffle,
                                    num_samples=num_samples, num_parallel_workers=num_parallel_workers, **shard)
        return dataset.map(lambda label: label.astype(np.int32), input_columns="label")
    folder = root / split_name
    classes = _check_image_folder(folder)
    dataset = ds.ImageFolderDataset(str(folder), decode=True, shuffle=shuffle, num_samples=num_samples,
                                    class_indexing={c: i for i, c in enumerate(classes)},
                                    extensions=list(IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES)),
                                    num_parallel_workers=num_parallel_workers, **shard)
    return dataset.map(lambda label: label.astype(np.int32), input_columns="label")


_PIPELINE_IMAGE_ERROR = re.compile(r"Invalid image, (.+?) decode failed")


def pipeline_error(exc: Exception) -> DataError | None:
    """Turn a MindSpore dataset pipeline failure about a bad image into a one-line DataError."""
    match = _PIPELINE_IMAGE_ERROR.search(str(exc))
    if match:
        return DataError(f"cannot decode image {match.group(1)}", "remove or replace the file")
    if "Exception thrown from dataset pipeline" in str(exc):
        detail = str(exc).split("Dataset Pipeline Error Message:")[-1].strip().splitlines()
        line = next((ln for ln in detail if ln.strip().startswith("[ERROR]")), detail[0] if detail else str(exc))
        return DataError(f"dataset pipeline failed: {line.replace('[ERROR]', '').strip()}", "check the data directory")
    return None


def count_images(path: str | os.PathLike) -> int:
    return sum(1 for p in Path(path).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
