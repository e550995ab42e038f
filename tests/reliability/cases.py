"""The table of bad inputs the sweep feeds to the CLI (tests/reliability/test_bad_input.py runs each).

A case builds its input in a temporary folder from the session's model set and returns the
command line; the CLI must answer with one line `error: ...` naming the problem (the `expect`
fragments), exit 2, print no traceback, and leave no output behind (`out` must not exist, or hold
no half-written file).
"""

from __future__ import annotations

import json
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

FORMATS = (".ckpt", ".onnx", ".mindir", ".tflite", ".ms")
FILE_SIZE_LIMIT = 400_000  # bytes: a checkpoint or .tflite of width 0.25 is larger, JSON and logs are not


@dataclass(frozen=True)
class Case:
    name: str
    group: str  # the README table's row
    build: Callable  # (ModelSet, tmp: Path) -> list of CLI arguments
    expect: tuple[str, ...]  # fragments of the error line
    file_size_limit: int | None = None  # run in a child process under RLIMIT_FSIZE (a full disk)


def _damaged(suffix: str, how: str):
    def build(models, tmp: Path) -> list:
        path = models.copy(suffix, tmp / "model")
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3] if how == "truncated" else np.random.RandomState(7).bytes(len(data)))
        command = ["validate", "--model", path, "--limit", 4]
        if suffix in (".onnx", ".ckpt"):
            command = ["convert", path, "--out", tmp / "out", "--num-eval", 4]
        return command
    return build


def _card(suffix: str, **changes):
    def build(models, tmp: Path) -> list:
        path = models.copy(suffix, tmp / "model")
        card = json.loads(Path(f"{path}.json").read_text())
        card.update(changes)
        Path(f"{path}.json").write_text(json.dumps(card))
        return ["validate", "--model", path, "--limit", 4]
    return build


def _image_folder(root: Path, bad: dict[str, bytes]) -> Path:
    rng = np.random.RandomState(0)
    for split in ("train", "val"):
        for name in ("a", "b"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(3):
                cv2.imwrite(str(folder / f"{i}.png"), rng.randint(0, 255, (16, 16, 3), np.uint8))
    for relative, data in bad.items():
        (root / relative).write_bytes(data)
    return root


def _validate_folder(bad: dict[str, bytes]):
    def build(models, tmp: Path) -> list:
        data = _image_folder(tmp / "data", bad)
        return ["validate", "--model", models.files[".onnx"], "--dataset", "imagefolder", "--data-dir", data]
    return build


def _predict(data: bytes, name: str):
    def build(models, tmp: Path) -> list:
        (tmp / name).write_bytes(data)
        return ["predict", tmp / name, "--model", models.files[".tflite"]]
    return build


def calibration_folder(root: Path, good: int, bad: dict[str, bytes]) -> Path:
    rng = np.random.RandomState(1)
    root.mkdir(parents=True)
    for i in range(good):
        cv2.imwrite(str(root / f"good_{i:02d}.png"), rng.randint(0, 255, (40, 40, 3), np.uint8))
    for name, data in bad.items():
        (root / name).write_bytes(data)
    return root


def _too_few_calibration(models, tmp: Path) -> list:
    calib = calibration_folder(tmp / "calib", 10, {f"empty_{i}.png": b"" for i in range(8)})
    return ["convert", models.files[".onnx"], "--quant", "int8", "--calib", calib, "--out", tmp / "out",
            "--num-eval", 4]


def _under_a_file(command: str):
    def build(models, tmp: Path) -> list:
        (tmp / "file").write_text("not a directory")
        out = tmp / "file" / "out"
        return {"convert": ["convert", models.files[".onnx"], "--out", out],
                "export": ["export", "--ckpt", models.files[".ckpt"], "--out", out],
                "train": ["train", "--out", out, "--epochs", 1],
                "zoo": ["zoo", "--out", out, "--epochs", 1]}[command]
    return build


def _full_disk_convert(models, tmp: Path) -> list:
    return ["convert", models.files[".onnx"], "--quant", "none", "--out", tmp / "out", "--num-eval", 4]


def _full_disk_training(models, tmp: Path) -> list:
    # 32 px (not the default 224), PyNative, no validation: straight to the save; the checkpoint of width 0.25
    # is larger than FILE_SIZE_LIMIT at any input size
    return ["train", "--out", tmp / "out", "--epochs", 1, "--image-size", 32, "--set", "num_samples=32",
            "--set", "batch_size=16", "--set", "mode=1", "--set", "val_while_train=False"]


CASES: list[Case] = [
    *[Case(f"{how} {suffix}", "corrupt model files", _damaged(suffix, how),
           (("corrupt or truncated",) if suffix == ".ckpt" else ("not a valid",) if suffix != ".ms"
            else ("MindSpore Lite",)))
      for suffix in FORMATS for how in ("truncated", "random bytes")],
    *[Case(f"card with 12 classes next to {suffix}", "card does not match its model",
           _card(suffix, num_classes=12, labels=[str(i) for i in range(12)]), ("12",)) for suffix in FORMATS],
    *[Case(f"card with input 48 next to {suffix}", "card does not match its model", _card(suffix, image_size=48),
           ("48",)) for suffix in (".onnx", ".tflite", ".ms")],
    *[Case(f"labels of the wrong count next to {suffix}", "labels of the wrong count",
           _card(suffix, labels=["zero", "one", "two"]), ("3 labels for 10 classes",)) for suffix in FORMATS],
    Case("zero-byte image in a val folder", "unreadable images", _validate_folder({"val/a/empty.png": b""}),
         ("empty.png",)),
    Case("text file named .jpg in a val folder", "unreadable images",
         _validate_folder({"val/b/notes.jpg": b"shopping list"}), ("notes.jpg",)),
    Case("predict a zero-byte image", "unreadable images", _predict(b"", "empty.jpg"), ("empty.jpg",)),
    Case("predict a non-image", "unreadable images", _predict(b"%PDF-1.4", "doc.png"), ("doc.png",)),
    Case("calibration folder with too few good images", "unreadable images", _too_few_calibration,
         ("8 unreadable", "10 good ones left")),
    *[Case(f"{command} --out under a file", "unwritable output directory", _under_a_file(command),
           ("cannot create output directory",)) for command in ("convert", "export", "train", "zoo")],
    Case("disk full during convert", "full disk (RLIMIT_FSIZE)", _full_disk_convert, ("no space left",),
         FILE_SIZE_LIMIT),
    Case("disk full during training checkpoints", "full disk (RLIMIT_FSIZE)", _full_disk_training,
         ("no space left",), FILE_SIZE_LIMIT),
]


def limit_file_size(limit: int):
    """preexec_fn for a child process whose files cannot grow beyond `limit` bytes."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
