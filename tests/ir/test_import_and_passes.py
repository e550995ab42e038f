"""ONNX import and graph passes, checked against ONNX Runtime and the float executor."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from converters.ir.execute import run
from converters.onnx_import import import_onnx
from converters.passes import fold_bn, fold_mean, fuse_activation, fuse_bias_add, lower_for_tflite, to_nhwc
from tests.onnx_models import mobilenet_like, run_onnxruntime
from toolkit.card import ModelCard
from toolkit.errors import ModelCardError, ModelFileError, UnsupportedOpError

# float32 results of two implementations summing in different orders differ by a few ULPs of the
# largest partial sums; logits here are O(1..10), so 1e-5 absolute is a tight bound.
ATOL = 1e-5


def _images(n=4, size=32, seed=0):
    return np.random.RandomState(seed).randn(n, 3, size, size).astype(np.float32)


def _nhwc(x):
    return x.transpose(0, 2, 3, 1)


def _out(graph, x):
    return run(graph, x)[graph.outputs[0]]


@pytest.mark.parametrize("variant", [
    dict(folded_bn=True, head="matmul_add", pool="global", activation="relu6"),
    dict(folded_bn=False, head="gemm", pool="reduce_mean", activation="relu"),
    dict(folded_bn=False, head="gemm", pool="global", activation="relu6", softmax=True, opset=11),
    dict(folded_bn=True, head="gemm", pool="global", activation="relu6", opset=9),
])
def test_import_matches_onnxruntime(variant):
    model = mobilenet_like(**variant)
    x = _images()
    graph = import_onnx(model)
    assert graph.layout == "NCHW"
    np.testing.assert_allclose(_out(graph, x), run_onnxruntime(model, x), atol=ATOL, rtol=0)


def test_lowered_graph_is_nhwc_tflite_ready_and_exact():
    model = mobilenet_like(folded_bn=False, head="matmul_add", activation="relu6", softmax=True)
    x = _images()
    lowered = lower_for_tflite(import_onnx(model))
    assert lowered.layout == "NHWC"
    assert lowered.tensors[lowered.inputs[0]].shape == (1, 32, 32, 3)
    assert set(lowered.op_counts()) == {"conv2d", "depthwise_conv2d", "avg_pool2d", "reshape",
                                        "fully_connected", "softmax"}
    for node in lowered.nodes:
        if node.op in ("conv2d", "depthwise_conv2d", "fully_connected"):
            assert len(node.inputs) == 3, f"{node.name} has no bias"
        if node.op in ("conv2d", "depthwise_conv2d"):
            assert node.attrs["act"] == "relu6"
    np.testing.assert_allclose(_out(lowered, _nhwc(x)), run_onnxruntime(model, x), atol=ATOL, rtol=0)


def test_fold_bn_removes_bn_and_keeps_outputs():
    graph = import_onnx(mobilenet_like(folded_bn=False))
    folded = fold_bn(graph)
    assert "batch_norm" in graph.op_counts() and "batch_norm" not in folded.op_counts()
    x = _images()
    np.testing.assert_allclose(_out(folded, x), _out(graph, x), atol=ATOL, rtol=0)


def test_fold_bn_in_nhwc_scales_depthwise_on_last_axis():
    graph = to_nhwc(import_onnx(mobilenet_like(folded_bn=False)))
    x = _nhwc(_images())
    np.testing.assert_allclose(_out(fold_bn(graph), x), _out(graph, x), atol=ATOL, rtol=0)


def test_fuse_activation_moves_relu6_into_the_conv():
    graph = fold_bn(import_onnx(mobilenet_like(folded_bn=False, activation="relu6")))
    fused = fuse_activation(graph)
    assert graph.op_counts()["relu6"] > 0 and "relu6" not in fused.op_counts()
    assert {n.attrs["act"] for n in fused.nodes if n.op.endswith("conv2d")} == {"relu6"}
    x = _images()
    np.testing.assert_allclose(_out(fused, x), _out(graph, x), atol=ATOL, rtol=0)


def test_fuse_bias_add_turns_matmul_add_into_one_fully_connected():
    graph = import_onnx(mobilenet_like(head="matmul_add"))
    fused = fuse_bias_add(graph)
    assert "add" in graph.op_counts() and "add" not in fused.op_counts()
    fc = next(n for n in fused.nodes if n.op == "fully_connected")
    assert len(fc.inputs) == 3
    x = _images()
    np.testing.assert_allclose(_out(fused, x), _out(graph, x), atol=ATOL, rtol=0)


@pytest.mark.parametrize("pool", ["global", "reduce_mean"])
def test_fold_mean_gives_average_pool_or_keeps_mean(pool):
    graph = import_onnx(mobilenet_like(pool=pool))
    pooled = fold_mean(graph)
    kept = fold_mean(graph, to="mean")
    assert "mean" not in pooled.op_counts() and pooled.op_counts()["avg_pool2d"] == 1
    assert kept.op_counts()["mean"] == 1
    x = _images()
    np.testing.assert_allclose(_out(pooled, x), _out(graph, x), atol=ATOL, rtol=0)


def test_to_nhwc_weight_layouts():
    graph = import_onnx(mobilenet_like(width=0.25))
    nhwc = to_nhwc(graph)
    conv = next(n for n in nhwc.nodes if n.op == "conv2d")
    dw = next(n for n in nhwc.nodes if n.op == "depthwise_conv2d")
    assert nhwc.tensors[conv.inputs[1]].shape == (8, 3, 3, 3)   # [O,H,W,I]
    assert nhwc.tensors[dw.inputs[1]].shape == (1, 3, 3, 8)     # [1,H,W,C]
    x = _images()
    np.testing.assert_allclose(_out(nhwc, _nhwc(x)), _out(graph, x), atol=ATOL, rtol=0)


def test_same_upper_auto_pad_matches_onnxruntime():
    w = np.random.RandomState(1).randn(4, 3, 3, 3).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3], strides=[2, 2],
                          auto_pad="SAME_UPPER")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 5, 5])],
        [onnx.numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    x = _images(2, 10)
    np.testing.assert_allclose(_out(import_onnx(model), x), run_onnxruntime(model, x), atol=ATOL, rtol=0)


def test_unsupported_ops_are_all_listed_with_node_names():
    model = mobilenet_like()
    model.graph.node.insert(1, helper.make_node("Sigmoid", ["t1"], ["s1"], name="gate"))
    model.graph.node.insert(2, helper.make_node("LRN", ["s1"], ["s2"], name="norm", size=3))
    with pytest.raises(UnsupportedOpError) as info:
        import_onnx(model)
    message = str(info.value)
    assert "Sigmoid (node 'gate')" in message and "LRN (node 'norm')" in message
    assert "supported:" in message and "Conv" in message


def test_clip_other_than_relu6_is_refused_by_name():
    model = mobilenet_like(opset=13)
    clip = next(n for n in model.graph.node if n.op_type == "Clip")
    hi = next(i for i in model.graph.initializer if i.name == clip.input[2])
    hi.CopyFrom(onnx.numpy_helper.from_array(np.array(4.0, np.float32), hi.name))
    with pytest.raises(UnsupportedOpError, match=f"Clip node '{clip.name}' clips to \\[0.0, 4.0\\]"):
        import_onnx(model)


def test_flattening_a_spatial_map_cannot_go_to_nhwc():
    model = mobilenet_like()
    pool = next(n for n in model.graph.node if n.op_type == "GlobalAveragePool")
    model.graph.node.remove(pool)
    flatten = next(n for n in model.graph.node if n.op_type == "Flatten")
    flatten.input[0] = pool.input[0]
    matmul_weight = next(i for i in model.graph.initializer if i.name == "fc_w")
    feature = 4 * 4 * 64  # 32px input, stride 8 in `blocks`, 64 channels
    matmul_weight.CopyFrom(onnx.numpy_helper.from_array(np.zeros((feature, 10), np.float32), "fc_w"))
    with pytest.raises(UnsupportedOpError, match="element order differs in NHWC"):
        lower_for_tflite(import_onnx(model))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_onnx_is_a_model_file_error(tmp_path, damage):
    data = mobilenet_like().SerializeToString()
    path = tmp_path / "broken.onnx"
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00\xffnot onnx" * 10, "empty": b""}[damage])
    with pytest.raises(ModelFileError, match="is not a valid ONNX model"):
        import_onnx(path)


def test_model_card_must_match_the_model():
    card = ModelCard(model="mobilenet_v1_025", width=0.25, image_size=64, num_classes=10,
                     labels=tuple("0123456789"), mean=(0, 0, 0), std=(1, 1, 1))
    with pytest.raises(ModelCardError, match="input 64x64x3"):
        import_onnx(mobilenet_like(image_size=32), card)
    with pytest.raises(ModelCardError, match="12 classes"):
        import_onnx(mobilenet_like(image_size=64, num_classes=10),
                    card.replace(num_classes=12, labels=tuple(str(i) for i in range(12))))
    assert import_onnx(mobilenet_like(image_size=64), card).meta["num_classes"] == 10
