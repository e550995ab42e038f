"""Fixtures for the converter tests: MindSpore checkpoints of every zoo width."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def zoo_checkpoints(tmp_path_factory):
    """A directory with one MindSpore checkpoint (random realistic weights, 10 digit classes,
    trained size 224) and its model card per zoo width."""
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
