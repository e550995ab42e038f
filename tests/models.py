"""Zoo models for tests: cards, realistic random weights, ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.card import ModelCard, save_card
from toolkit.data.datasets import DIGITS_LABELS
from toolkit.models import default_cfgs, model_name

ZOO_SIZE = 224


def zoo_card(width: float, image_size: int, fmt: str = "onnx") -> ModelCard:
    """The card of a zoo width with 10 digit classes, as `mnv1-tk export` writes it."""
    cfg = default_cfgs[model_name(width)]
    return ModelCard(model=model_name(width), width=width, image_size=image_size, num_classes=10,
                     labels=DIGITS_LABELS, mean=cfg.mean, std=cfg.std, crop_pct=cfg.crop_pct, format=fmt,
                     input_name="x", output_name="logits")


def _layers(cell):
    """The leaf cells of nested SequentialCells, in order."""
    from mindspore import nn

    for child in cell.cells():
        if isinstance(child, nn.SequentialCell):
            yield from _layers(child)
        else:
            yield child


def randomise_like_trained(network, images: np.ndarray, seed: int) -> None:
    """Random weights with the statistics of a trained network.

    Convs and the classifier are He-scaled; each BatchNorm gets the mean and variance of its real
    input on `images` (perturbed, with random gamma and beta), so activations stay normalised through
    all 27 layers and folding BN into the convs changes every weight. Betas around +1 keep most
    ReLU6 units active, as in trained MobileNets; centred on 0 they make a chaotic network in which
    float32 summation order alone moves the logits by 1e-4 (ORT vs MindSpore, measured).
    """
    import mindspore as ms
    from mindspore import nn

    rng = np.random.RandomState(seed)

    def fill(param, value):
        param.set_data(ms.Tensor(np.asarray(value, np.float32)))

    network.set_train(False)
    x = ms.Tensor(images)
    # Layer by layer in PyNative mode: in graph mode (which training and validation leave set) every
    # call compiles a graph of its own, 15x slower.
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        for cell in _layers(network.features):
            if isinstance(cell, nn.Conv2d):
                fill(cell.weight, rng.randn(*cell.weight.shape) * np.sqrt(2.0 / np.prod(cell.weight.shape[1:])))
            elif isinstance(cell, nn.BatchNorm2d):
                a = x.asnumpy()
                mean, var, c = a.mean(axis=(0, 2, 3)), a.var(axis=(0, 2, 3)), cell.num_features
                var = np.maximum(var, 0.1 * np.median(var))  # near-dead channels would get BN gains of 30+
                fill(cell.moving_mean, mean + 0.1 * np.sqrt(var) * rng.randn(c))
                fill(cell.moving_variance, var * rng.uniform(0.8, 1.25, c))
                fill(cell.gamma, rng.uniform(0.5, 1.5, c))
                fill(cell.beta, 1.0 + 0.2 * rng.randn(c))
            x = cell(x)
    finally:
        ms.set_context(mode=mode)
    head = network.classifier
    fill(head.weight, rng.randn(*head.weight.shape) * np.sqrt(4.0 / head.weight.shape[1]))
    fill(head.bias, rng.randn(head.bias.shape[0]) * 0.1)


def digits_images(count: int = 16) -> np.ndarray:
    """Eval-transformed digits (64x64): realistic input statistics for `randomise_like_trained`."""
    from toolkit.convert import eval_batch

    return eval_batch(zoo_card(0.25, 64), None, count)


def export_onnx(network, card: ModelCard, path: Path) -> Path:
    import mindspore as ms

    network.set_train(False)
    ms.onnx.export(network, ms.Tensor(np.zeros(card.input_shape, np.float32)), file_name=str(path),
                   input_names=[card.input_name], output_names=[card.output_name])
    save_card(card, path)
    return path
