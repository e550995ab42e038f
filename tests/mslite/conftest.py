"""Fixtures for the MindSpore Lite tests: the real setup, random-weight zoo exports, a trained digits model.

MindSpore runs in this (pytest) process to build and export the models; MindSpore Lite runs in
worker child processes, so the two never share a process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from toolkit.card import ModelCard, save_card
from toolkit.data.datasets import DIGITS_LABELS
from toolkit.models import WIDTHS, create_model, default_cfgs, model_name

ZOO_SIZE = 224


@pytest.fixture(scope="session")
def mslite_backend():
    """The default MindSpore Lite setup; on a fresh machine this runs the whole setup once."""
    from converters.mslite import ensure_mslite

    return ensure_mslite(quiet=True)


def make_card(width: float, image_size: int, fmt: str = "onnx") -> ModelCard:
    cfg = default_cfgs[model_name(width)]
    return ModelCard(model=model_name(width), width=width, image_size=image_size, num_classes=10,
                     labels=DIGITS_LABELS, mean=cfg.mean, std=cfg.std, crop_pct=cfg.crop_pct, format=fmt,
                     input_name="x", output_name="logits")


def export_onnx(network, card: ModelCard, path: Path) -> Path:
    import mindspore as ms

    network.set_train(False)
    ms.onnx.export(network, ms.Tensor(np.zeros(card.input_shape, np.float32)), file_name=str(path),
                   input_names=[card.input_name], output_names=[card.output_name])
    save_card(card, path)
    return path


def randomise(network, seed: int) -> None:
    """Random BN statistics and affine parameters, and a He-scaled classifier (logits of a few units)."""
    import mindspore as ms
    from mindspore import nn

    rng = np.random.RandomState(seed)
    for _, cell in network.cells_and_names():
        if isinstance(cell, nn.BatchNorm2d):
            c = cell.num_features
            for param, value in ((cell.moving_mean, rng.randn(c) * 0.2), (cell.moving_variance, rng.uniform(0.5, 2, c)),
                                 (cell.gamma, rng.uniform(0.5, 1.5, c)), (cell.beta, rng.randn(c) * 0.2)):
                param.set_data(ms.Tensor(value.astype(np.float32)))
    head = network.classifier.weight
    head.set_data(ms.Tensor((rng.randn(*head.shape) * np.sqrt(16.0 / head.shape[1])).astype(np.float32)))


@pytest.fixture(scope="session")
def zoo_onnx(tmp_path_factory) -> dict[float, Path]:
    """One random-weight MobileNetV1 ONNX export (with its card) per zoo width, at 224x224, 10 classes."""
    import mindspore as ms

    directory = tmp_path_factory.mktemp("mslite_zoo")
    exports = {}
    for width in WIDTHS:
        ms.set_seed(int(width * 100))  # the conv initialisers draw from MindSpore's generator
        network = create_model(model_name(width), num_classes=10)
        randomise(network, seed=int(width * 100))
        card = make_card(width, ZOO_SIZE)
        exports[width] = export_onnx(network, card, directory / f"{card.stem}.onnx")
    return exports


@dataclass(frozen=True)
class TrainedModel:
    onnx: Path
    card: ModelCard
    val_images: np.ndarray  # preprocessed NCHW float32
    val_labels: np.ndarray
    calib_images: np.ndarray  # from the train split


def _normalise(images: np.ndarray, card: ModelCard) -> np.ndarray:
    mean = np.asarray(card.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(card.std, np.float32).reshape(1, 3, 1, 1)
    return ((images.transpose(0, 3, 1, 2).astype(np.float32) - mean) / std).astype(np.float32)


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory) -> TrainedModel:
    """MobileNetV1 0.25 trained for 3 epochs on the 32x32 digits (~85% val accuracy), exported to ONNX.

    A trained model has the wide logit margins of real use, so int8 agreement with float is meaningful.
    """
    import mindspore as ms
    from mindspore import nn

    from toolkit.data.datasets import load_digits

    card = make_card(0.25, 32)
    train_x, train_y = load_digits("train", 32)
    val_x, val_y = load_digits("val", 32)
    train_x, val_x = _normalise(train_x, card), _normalise(val_x, card)
    ms.set_seed(0)
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        network = create_model(card.model, num_classes=10)
        loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
        step = nn.TrainOneStepCell(nn.WithLossCell(network, loss), nn.Adam(network.trainable_params(), 2e-3))
        step.set_train()
        rng = np.random.RandomState(0)
        for _ in range(3):
            order = rng.permutation(len(train_x))
            for start in range(0, len(order) - 31, 32):
                batch = order[start:start + 32]
                step(ms.Tensor(train_x[batch]), ms.Tensor(train_y[batch]))
    finally:
        ms.set_context(mode=mode)
    path = export_onnx(network, card, tmp_path_factory.mktemp("mslite_digits") / f"{card.stem}.onnx")
    return TrainedModel(path, card, val_x, val_y, train_x[:64])
