"""Shared fixtures for the whole suite.

`trained_digits` trains MobileNetV1 0.25 on the 32x32 digits once per session with the shipped
config (`mobilenet_v1_025_digits`, about a minute on the CPU) and exports it to ONNX and MINDIR.
`zoo_onnx` exports every zoo width at 224x224 with realistic random weights. Any test folder can
use them; nothing may write into their directories.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory) -> TrainedDigits:
    from rich.console import Console

    from toolkit.export import export_model
    from toolkit.train import load_config, train

    run_dir = tmp_path_factory.mktemp("digits_run")
    result = train(load_config("mobilenet_v1_025_digits", {"ckpt_save_dir": str(run_dir)}),
                   console=Console(stderr=True, quiet=True))
    files = export_model(result.best_checkpoint, tmp_path_factory.mktemp("digits_export"))
    return TrainedDigits(run_dir=run_dir, checkpoint=result.best_checkpoint, onnx=files["onnx"],
                         mindir=files["mindir"], history=tuple(result.history))


@pytest.fixture(scope="session")
def zoo_onnx(tmp_path_factory) -> dict[float, Path]:
    """One MobileNetV1 ONNX export (with its card) per zoo width: 224x224, 10 classes, weights random but
    with a trained network's statistics (see tests/models.py)."""
    import mindspore as ms

    from tests.models import ZOO_SIZE, digits_images, export_onnx, randomise_like_trained, zoo_card
    from toolkit.models import WIDTHS, create_model, model_name

    directory = tmp_path_factory.mktemp("zoo_onnx")
    images = digits_images()
    exports = {}
    for width in WIDTHS:
        ms.set_seed(int(width * 100))
        network = create_model(model_name(width), num_classes=10)
        randomise_like_trained(network, images, seed=int(width * 100))
        card = zoo_card(width, ZOO_SIZE)
        exports[width] = export_onnx(network, card, directory / f"{card.stem}.onnx")
    return exports
