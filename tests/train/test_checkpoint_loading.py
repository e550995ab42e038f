"""Loading checkpoints: mindcv's layout (with optimizer entries), head slicing / re-initialisation,
wrong widths and damaged files."""

from __future__ import annotations

import mindspore as ms
import numpy as np
import pytest

from toolkit.errors import CheckpointError
from toolkit.models import create_model
from toolkit.models.checkpoint import load_weights, read_checkpoint


def _mindcv_style_checkpoint(path, width_name="mobilenet_v1_025", classes=1001, seed=0):
    """A checkpoint as mindcv's training writes it: network weights plus optimizer entries."""
    network = create_model(width_name, num_classes=classes, activation="relu")
    rng = np.random.RandomState(seed)
    for param in network.get_parameters():
        param.set_data(ms.Tensor(rng.randn(*param.shape).astype(np.float32)))
    entries = [{"name": p.name, "data": p} for p in network.get_parameters()]
    entries += [{"name": f"moments.{p.name}", "data": ms.Tensor(np.zeros(p.shape, np.float32))}
                for p in network.trainable_params()]
    entries += [{"name": "global_step", "data": ms.Tensor(np.array([1000], np.int32))},
                {"name": "learning_rate", "data": ms.Tensor(np.array(0.1, np.float32))}]
    ms.save_checkpoint(entries, str(path))
    return {p.name: p.asnumpy() for p in network.get_parameters()}


@pytest.fixture(scope="module")
def mindcv_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("mindcv") / "mobilenet_v1_025-mindcv.ckpt"
    return path, _mindcv_style_checkpoint(path)


def test_same_head_loads_everything(mindcv_ckpt):
    path, weights = mindcv_ckpt
    model = create_model("mobilenet_v1_025", num_classes=1001, activation="relu")
    report = load_weights(model, path)
    assert report.head == "loaded" and "1001 classes loaded" in report.message
    for param in model.get_parameters():
        np.testing.assert_array_equal(param.asnumpy(), weights[param.name])


def test_1001_to_1000_slices_the_head_like_mindcv(mindcv_ckpt):
    path, weights = mindcv_ckpt
    model = create_model("mobilenet_v1_025", num_classes=1000, activation="relu")
    report = load_weights(model, path, head="strict")
    assert report.head == "sliced" and "sliced 1001 -> 1000" in report.message
    np.testing.assert_array_equal(model.classifier.weight.asnumpy(), weights["classifier.weight"][:1000])
    np.testing.assert_array_equal(model.classifier.bias.asnumpy(), weights["classifier.bias"][:1000])
    np.testing.assert_array_equal(model.features[0].weight.asnumpy(), weights["features.0.weight"])


def test_other_class_count_reinitialises_the_head_and_keeps_the_backbone(mindcv_ckpt):
    path, weights = mindcv_ckpt
    model = create_model("mobilenet_v1_025", num_classes=10, activation="relu")
    fresh_head = model.classifier.weight.asnumpy().copy()
    report = load_weights(model, path)
    assert report.head == "reinitialised" and "re-initialised for 10 classes" in report.message
    assert "1001" in report.message
    np.testing.assert_array_equal(model.classifier.weight.asnumpy(), fresh_head)
    np.testing.assert_array_equal(model.features[5][3].weight.asnumpy(), weights["features.5.3.weight"])
    with pytest.raises(CheckpointError, match="1001-class head but the model has 10"):
        load_weights(create_model("mobilenet_v1_025", num_classes=10), path, head="strict")


def test_wrong_width_names_the_first_mismatched_parameter_and_both_shapes(mindcv_ckpt):
    path, _ = mindcv_ckpt
    with pytest.raises(CheckpointError) as info:
        load_weights(create_model("mobilenet_v1_050", num_classes=1001), path)
    assert "parameter 'features.0.weight' has shape [8, 3, 3, 3] in the checkpoint but [16, 3, 3, 3]" in str(info.value)
    assert "width 0.25" in info.value.fix


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_checkpoints_are_a_checkpoint_error(mindcv_ckpt, tmp_path, damage):
    raw = mindcv_ckpt[0].read_bytes()
    data = {"truncated": raw[: len(raw) // 3], "garbage": b"\x08\x96\x01not a checkpoint" * 50, "empty": b""}[damage]
    path = tmp_path / "bad.ckpt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="empty" if damage == "empty" else "corrupt or truncated"):
        read_checkpoint(path)


def test_a_checkpoint_of_another_network_is_refused(tmp_path):
    path = tmp_path / "other.ckpt"
    ms.save_checkpoint([{"name": "conv1.weight", "data": ms.Tensor(np.ones((4, 3, 3, 3), np.float32))}], str(path))
    with pytest.raises(CheckpointError, match="not a MobileNetV1 checkpoint"):
        load_weights(create_model("mobilenet_v1_025", num_classes=10), path)
