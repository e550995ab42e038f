"""Export: ONNX under ONNX Runtime matches MindSpore within 1e-4 on the logits at every width (224 px,
1001 classes, realistic weights); mindcv checkpoints export with their head sliced; a mismatch is fatal.

MindSpore's CPU forward at 224 px is slow (about 2 images/s at width 1.0), so these tests use few images.
"""

from __future__ import annotations

import mindspore as ms
import numpy as np
import onnx
import pytest

from toolkit.card import load_card, save_card
from tests.models import digits_images, randomise_like_trained
from toolkit.data import DatasetSpec
from toolkit.errors import AtolError
from toolkit.export import ATOL, export_model, verify_exports
from toolkit.models import WIDTHS, create_model, model_name
from toolkit.models.checkpoint import checkpoint_card
from toolkit.runtimes import load_predictor
from toolkit.validate import eval_batches

SIZE = 224


def _digits(size: int, count: int) -> np.ndarray:
    """Real images (digits validation split) through the eval transform at `size`."""
    card = checkpoint_card("digits.ckpt", width=0.25, image_size=size)
    return next(eval_batches(card, DatasetSpec("digits"), "val", limit=count, batch_size=count))[0]


def _save(network, directory, width, size=SIZE, activation="relu6", card=True):
    path = directory / f"{model_name(width)}.ckpt"
    ms.save_checkpoint(network, str(path))
    if card:
        save_card(checkpoint_card(path, width=width, image_size=size, activation=activation,
                                  num_classes=network.num_classes).replace(format="ckpt"), path)
    return path


@pytest.mark.parametrize("width", WIDTHS)
def test_onnx_matches_mindspore_within_1e4_at_every_width(width, tmp_path):
    network = create_model(model_name(width), num_classes=1001)
    randomise_like_trained(network, digits_images(), seed=int(width * 100))
    files = export_model(_save(network, tmp_path, width), tmp_path / "out")  # verifies ONNX and MINDIR
    stem = f"{model_name(width)}_224"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"{stem}.mindir", f"{stem}.mindir.json", f"{stem}.onnx", f"{stem}.onnx.json"]
    images = _digits(SIZE, 4)  # the images export verified on, checked here independently
    expected = network(ms.Tensor(images)).asnumpy()
    difference = float(np.max(np.abs(load_predictor(files["onnx"]).run(images) - expected)))
    print(f"width {width}: ONNX Runtime vs MindSpore max abs {difference:.2e} "
          f"(logits up to {np.abs(expected).max():.2f})")
    assert np.abs(expected).max() > 2.5  # 1e-4 is then at most a relative 4e-5
    assert difference <= ATOL
    card = load_card(files["onnx"])
    assert (card.width, card.image_size, card.num_classes, card.format) == (width, SIZE, 1001, "onnx")
    model = onnx.load(str(files["onnx"]))
    assert model.graph.input[0].name == card.input_name == "x"
    assert model.graph.output[0].name == card.output_name == "logits"


def test_mindcv_checkpoint_exports_with_the_head_sliced_to_1000(tmp_path):
    mindcv = create_model("mobilenet_v1_025", num_classes=1001, activation="relu")
    randomise_like_trained(mindcv, digits_images(), seed=7)
    path = _save(mindcv, tmp_path, 0.25, card=False)  # mindcv checkpoints come without a card
    files = export_model(path, tmp_path / "out", ("onnx",), width=0.25, image_size=SIZE, activation="relu",
                         num_classes=1000)
    card = load_card(files["onnx"])
    assert card.num_classes == 1000 and len(card.labels) == 1000 and card.activation == "relu"
    assert card.mean == pytest.approx((123.675, 116.28, 103.53)) and card.crop_pct == 0.875
    images = _digits(SIZE, 2)
    expected = mindcv(ms.Tensor(images)).asnumpy()[:, :1000]
    got = load_predictor(files["onnx"]).run(images)
    assert got.shape == (2, 1000) and np.max(np.abs(got - expected)) <= ATOL


def test_a_model_that_does_not_match_raises_atol_error(tmp_path):
    network = create_model("mobilenet_v1_025", num_classes=10)
    files = export_model(_save(network, tmp_path, 0.25, size=32), tmp_path / "out", ("onnx",))
    other = create_model("mobilenet_v1_025", num_classes=10)
    for mine, theirs in zip(other.get_parameters(), network.get_parameters()):
        mine.set_data(ms.Tensor(theirs.asnumpy()))
    other.classifier.bias.set_data(ms.Tensor(network.classifier.bias.asnumpy() + 2e-4))  # just over 1e-4
    with pytest.raises(AtolError, match="differs from MindSpore by 2.00e-04"):
        verify_exports(other, load_card(files["onnx"]), files)


def test_a_checkpoint_exports_to_the_same_onnx_bytes_whatever_ran_before(tmp_path):
    """MindSpore names the ONNX graph after its compile counters; the export names it after the model, so the
    file (and its SHA-256, which the benches key their caches on) depends on the checkpoint alone."""
    path = _save(create_model("mobilenet_v1_025", num_classes=10), tmp_path, 0.25, size=32)
    first = export_model(path, tmp_path / "first", formats=("onnx",))["onnx"]
    (tmp_path / "other").mkdir()
    other = _save(create_model("mobilenet_v1_050", num_classes=10), tmp_path / "other", 0.5, size=32)
    export_model(other, tmp_path / "other_out", formats=("onnx",))  # moves MindSpore's counters on
    second = export_model(path, tmp_path / "second", formats=("onnx",))["onnx"]
    assert onnx.load(str(first)).graph.name == "mobilenet_v1_025_32"
    assert first.read_bytes() == second.read_bytes()
