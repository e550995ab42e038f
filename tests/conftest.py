"""Shared fixtures for the whole suite.

`trained_digits` trains MobileNetV1 0.25 on the 32x32 digits once per session with the shipped
config (`mobilenet_v1_025_digits`, about a minute on the CPU) and exports it to ONNX and MINDIR.
`zoo_checkpoints` holds a checkpoint of every zoo width with realistic random weights, and `zoo_onnx`
exports those same networks at 224x224. Any test folder can use them; nothing may write into their
directories.
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
def zoo_checkpoints(tmp_path_factory) -> Path:
    """A directory with one MindSpore checkpoint (10 digit classes, trained size 224, weights random but with a
    trained network's statistics, see tests/models.py) and its model card per zoo width."""
    import mindspore as ms

    from tests.models import digits_images, randomise_like_trained
    from toolkit.card import save_card
    from toolkit.data.datasets import DIGITS_LABELS
    from toolkit.models import WIDTHS, create_model, model_name
    from toolkit.models.checkpoint import checkpoint_card

    directory = tmp_path_factory.mktemp("zoo")
    images = digits_images()
    for width in WIDTHS:
        network = create_model(model_name(width), num_classes=10)
        randomise_like_trained(network, images, seed=int(width * 100))
        path = directory / f"{model_name(width)}.ckpt"
        ms.save_checkpoint(network, str(path))
        save_card(checkpoint_card(path, width=width, image_size=224, num_classes=10, labels=DIGITS_LABELS)
                  .replace(format="ckpt"), path)
    return directory


@pytest.fixture(scope="session")
def zoo_onnx(zoo_checkpoints, tmp_path_factory) -> dict[float, Path]:
    """One MobileNetV1 ONNX export (with its card) per zoo width: the networks of `zoo_checkpoints` at 224x224."""
    from tests.models import ZOO_SIZE, export_onnx, zoo_card
    from toolkit.models import WIDTHS, create_model, model_name
    from toolkit.models.checkpoint import load_weights

    directory = tmp_path_factory.mktemp("zoo_onnx")
    exports = {}
    for width in WIDTHS:
        network = create_model(model_name(width), num_classes=10)
        load_weights(network, zoo_checkpoints / f"{model_name(width)}.ckpt", head="strict")
        card = zoo_card(width, ZOO_SIZE)
        exports[width] = export_onnx(network, card, directory / f"{card.stem}.onnx")
    return exports
