"""Fixtures for the converter tests: MindSpore checkpoints of every zoo width."""

from __future__ import annotations

import numpy as np
import pytest


def _layers(cell):
    """The leaf cells of nested SequentialCells, in order."""
    from mindspore import nn

    for child in cell.cells():
        if isinstance(child, nn.SequentialCell):
            yield from _layers(child)
        else:
            yield child


def _randomise(network, images: np.ndarray, seed: int) -> None:
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
    head = network.classifier
    fill(head.weight, rng.randn(*head.weight.shape) * np.sqrt(4.0 / head.weight.shape[1]))
    fill(head.bias, rng.randn(head.bias.shape[0]) * 0.1)


@pytest.fixture(scope="session")
def zoo_checkpoints(tmp_path_factory):
    """A directory with one MindSpore checkpoint (random realistic weights, 10 digit classes,
    trained size 224) and its model card per zoo width."""
    import mindspore as ms

    from tests.convert.graphs import make_card
    from toolkit.card import save_card
    from toolkit.convert import eval_batch
    from toolkit.data.datasets import DIGITS_LABELS
    from toolkit.models import WIDTHS, create_model, model_name
    from toolkit.models.checkpoint import checkpoint_card

    directory = tmp_path_factory.mktemp("zoo")
    images = eval_batch(make_card(64), None, 16)
    for width in WIDTHS:
        network = create_model(model_name(width), num_classes=10)
        _randomise(network, images, seed=int(width * 100))
        path = directory / f"{model_name(width)}.ckpt"
        ms.save_checkpoint(network, str(path))
        save_card(checkpoint_card(path, width=width, image_size=224, num_classes=10, labels=DIGITS_LABELS)
                  .replace(format="ckpt"), path)
    return directory
