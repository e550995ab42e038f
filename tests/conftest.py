"""Shared fixtures for the whole suite.

`trained_digits` trains MobileNetV1 0.25 on the 32x32 digits once per session with the shipped
config (`mobilenet_v1_025_digits`, about a minute on the CPU) and exports it to ONNX and MINDIR.
`zoo_checkpoints` holds a checkpoint of every zoo width with realistic random weights, and `zoo_onnx`
exports those same networks at 224x224. Any test folder can use them; nothing may write into their
directories. Under pytest-xdist (`make test` runs two workers) each of them is built once for the
whole run, by the first worker that needs it, and the others reuse its files.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

os.environ.setdefault("GLOG_v", "4")  # MindSpore: only critical messages, here and in child processes


@dataclass(frozen=True)
class TrainedDigits:
    """The session's trained digits model."""

    run_dir: Path  # the training run: epoch checkpoints, best, optimizer state, metrics.jsonl, config.yaml
    checkpoint: Path  # <run_dir>/mobilenet_v1_025_best.ckpt, with its card (format "ckpt")
    onnx: Path  # mobilenet_v1_025_32.onnx, with its card
    mindir: Path  # mobilenet_v1_025_32.mindir, with its card
    history: tuple[dict, ...]  # the epoch records of the run (loss, top1, top5, ...)

    @property
    def card(self):
        from toolkit.card import load_card

        return load_card(self.onnx)

    @property
    def best_top1(self) -> float:
        return max(record["top1"] for record in self.history)


def built_once(tmp_path_factory, name: str, build: Callable[[Path], dict]) -> tuple[Path, dict]:
    """(directory, what `build(directory)` returned): built on the first call of the whole test run. The pytest-xdist
    workers share the run's base temp folder; a lock makes the others wait for the first builder and reuse it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    directory, record = root / name, root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.is_file():
            shutil.rmtree(directory, ignore_errors=True)  # an earlier build that failed
            directory.mkdir()
            record.write_text(json.dumps(build(directory)))
    return directory, json.loads(record.read_text())


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory) -> TrainedDigits:
    def build(directory: Path) -> dict:
        from rich.console import Console

        from toolkit.export import export_model
        from toolkit.train import load_config, train

        result = train(load_config("mobilenet_v1_025_digits", {"ckpt_save_dir": str(directory / "run")}),
                       console=Console(stderr=True, quiet=True))
        files = export_model(result.best_checkpoint, directory / "export")
        return {"checkpoint": str(result.best_checkpoint.relative_to(directory)), "history": result.history,
                **{kind: str(files[kind].relative_to(directory)) for kind in ("onnx", "mindir")}}

    directory, built = built_once(tmp_path_factory, "digits", build)
    return TrainedDigits(run_dir=directory / "run", checkpoint=directory / built["checkpoint"],
                         onnx=directory / built["onnx"], mindir=directory / built["mindir"],
                         history=tuple(built["history"]))


@pytest.fixture(scope="session")
def zoo_checkpoints(tmp_path_factory) -> Path:
    """A directory with one MindSpore checkpoint (10 digit classes, trained size 224, weights random but with a
    trained network's statistics, see tests/models.py) and its model card per zoo width."""
    def build(directory: Path) -> dict:
        import mindspore as ms

        from tests.models import digits_images, randomise_like_trained
        from toolkit.card import save_card
        from toolkit.data.datasets import DIGITS_LABELS
        from toolkit.models import WIDTHS, create_model, model_name
        from toolkit.models.checkpoint import checkpoint_card

        images = digits_images()
        for width in WIDTHS:
            network = create_model(model_name(width), num_classes=10)
            randomise_like_trained(network, images, seed=int(width * 100))
            path = directory / f"{model_name(width)}.ckpt"
            ms.save_checkpoint(network, str(path))
            save_card(checkpoint_card(path, width=width, image_size=224, num_classes=10, labels=DIGITS_LABELS)
                      .replace(format="ckpt"), path)
        return {}

    return built_once(tmp_path_factory, "zoo", build)[0]


@pytest.fixture(scope="session")
def zoo_onnx(zoo_checkpoints, tmp_path_factory) -> dict[float, Path]:
    """One MobileNetV1 ONNX export (with its card) per zoo width: the networks of `zoo_checkpoints` at 224x224."""
    def build(directory: Path) -> dict:
        from tests.models import ZOO_SIZE, export_onnx, zoo_card
        from toolkit.models import WIDTHS, create_model, model_name
        from toolkit.models.checkpoint import load_weights

        exports = {}
        for width in WIDTHS:
            network = create_model(model_name(width), num_classes=10)
            load_weights(network, zoo_checkpoints / f"{model_name(width)}.ckpt", head="strict")
            card = zoo_card(width, ZOO_SIZE)
            exports[str(width)] = export_onnx(network, card, directory / f"{card.stem}.onnx").name
        return exports

    directory, exports = built_once(tmp_path_factory, "zoo_onnx", build)
    return {float(width): directory / name for width, name in exports.items()}
