"""The TFLite writer: schema rules, padding, fp16 and int8 layouts, checked by running LiteRT."""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from converters.ir import Graph, QuantParams
from converters.ir.execute import conv_nhwc, depthwise_nhwc, run
from converters.onnx_import import import_onnx
from converters.passes import lower_for_tflite, to_nhwc
from converters.passes.to_fp16 import to_fp16
from converters.tflite import tf_same_pads, write_tflite
from tests.convert.graphs import conv_graph, int8_graph, operators, read_model, run_tflite
from tests.onnx_models import mobilenet_like
from toolkit.errors import UnsupportedOpError

# Two float32 implementations of a 3x3x4 conv sum 36 products in different orders: a few ULPs of O(10).
ATOL = 1e-5
LAYERS = ("conv2d", "depthwise_conv2d", "fully_connected")


def _nhwc_images(n, size, channels=3, seed=0):
    return np.random.RandomState(seed).randn(n, size, size, channels).astype(np.float32)


def _reference(graph: Graph, x: np.ndarray) -> np.ndarray:
    return run(graph, x)[graph.outputs[0]]


@pytest.mark.parametrize("depthwise", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8, 15, 16])
def test_symmetric_pad_1_matches_the_ir_at_every_size_and_stride(size, stride, depthwise):
    graph = conv_graph(size, stride, depthwise=depthwise)
    data = write_tflite(graph)
    ops = [name for name, _ in operators(data)]
    # TF SAME differs from pad 1/1 exactly for stride 2 on even sizes: that case needs an explicit PAD.
    assert ("PAD" in ops) == (stride == 2 and size % 2 == 0)
    x = _nhwc_images(2, size, channels=4)
    np.testing.assert_allclose(run_tflite(data, x), _reference(graph, x), atol=ATOL, rtol=0)


@pytest.mark.parametrize("size, equal", [(8, False), (7, True)])
def test_tf_same_equals_pad_1_on_odd_sizes_only(size, equal):
    """The reason for the PAD rule, numerically: SAME (0 before, 1 after) vs symmetric pad 1 at stride 2."""
    x = _nhwc_images(1, size, channels=4)
    same = tf_same_pads(size, 3, 2)
    w = np.random.RandomState(1).randn(4, 3, 3, 4).astype(np.float32)
    y_same = conv_nhwc(x, w, None, (2, 2), (same[0], same[0], same[1], same[1]), (1, 1), 1)
    y_sym = conv_nhwc(x, w, None, (2, 2), (1, 1, 1, 1), (1, 1), 1)
    assert np.allclose(y_same, y_sym) == equal


def test_asymmetric_pads_equal_to_tf_same_become_same():
    graph = conv_graph(8, 2, pads=(0, 0, 1, 1))
    data = write_tflite(graph)
    assert [name for name, _ in operators(data)] == ["CONV_2D"]
    x = _nhwc_images(2, 8, channels=4)
    np.testing.assert_allclose(run_tflite(data, x), _reference(graph, x), atol=ATOL, rtol=0)


def test_float_model_follows_the_schema_rules():
    graph = lower_for_tflite(import_onnx(mobilenet_like(image_size=32, folded_bn=False, softmax=True)))
    data = write_tflite(graph)
    model = read_model(data)
    assert data[4:8] == b"TFL3"
    assert model.version == 3
    assert model.buffers[0].data is None or len(model.buffers[0].data) == 0
    for code in model.operatorCodes:
        assert code.builtinCode == code.deprecatedBuiltinCode and code.version == 1
    subgraph = model.subgraphs[0]
    for tensor in subgraph.tensors:
        name = tensor.name.decode()
        ir = graph.tensors.get(name)
        if ir is not None and ir.is_const:
            assert tensor.buffer > 0 and len(model.buffers[tensor.buffer].data) == ir.data.nbytes
        elif ir is not None:
            assert tensor.buffer == 0
    assert len({t.buffer for t in subgraph.tensors if t.buffer}) == sum(1 for t in subgraph.tensors if t.buffer)
    assert model.signatureDefs[0].signatureKey == b"serving_default"
    x = _nhwc_images(3, 32)
    np.testing.assert_allclose(run_tflite(data, x), _reference(graph, x), atol=ATOL, rtol=0)


def test_fp16_variant_stores_half_weights_behind_dequantize():
    graph = lower_for_tflite(import_onnx(mobilenet_like(image_size=32, folded_bn=False)))
    half = to_fp16(graph)
    data = write_tflite(half)
    model = read_model(data)
    ops = operators(data)
    layers = sum(1 for n in graph.nodes if n.op in LAYERS)
    assert ops.count(("DEQUANTIZE", 3)) == 2 * layers  # one per weight and one per bias
    float16 = [t for t in model.subgraphs[0].tensors if t.type == 1]  # TensorType.FLOAT16
    assert len(float16) == 2 * layers and all(t.buffer > 0 for t in float16)
    weights = sum(graph.tensors[t].data.nbytes for n in graph.nodes if n.op in LAYERS for t in n.inputs[1:])
    assert 2 * sum(len(model.buffers[t.buffer].data) for t in float16) == weights
    x = _nhwc_images(3, 32)
    # LiteRT runs exactly the fp16-rounded weights the IR holds...
    np.testing.assert_allclose(run_tflite(data, x), _reference(half, x), atol=ATOL, rtol=0)
    # ...and those stay close to float32.
    np.testing.assert_allclose(run_tflite(data, x), _reference(graph, x), atol=1e-2, rtol=0)


def test_unsupported_ops_are_reported_together():
    graph = to_nhwc(import_onnx(mobilenet_like(image_size=32, folded_bn=False)))
    batch_norms = [n.name for n in graph.nodes if n.op == "batch_norm"]
    with pytest.raises(UnsupportedOpError) as info:
        write_tflite(graph)
    message = str(info.value)
    assert all(f"batch_norm (node '{name}')" in message for name in batch_norms)
    assert "lower_for_tflite" in message


def test_nchw_graph_is_refused():
    with pytest.raises(ValueError, match="NHWC"):
        write_tflite(import_onnx(mobilenet_like(image_size=32)))


def _quantize(x, q: QuantParams):
    return np.clip(np.round(x / q.scale[0]) + q.zero_point[0], -128, 127)


def test_int8_graph_keeps_per_channel_quantization_and_matches_integer_reference():
    graph = int8_graph()
    data = write_tflite(graph)
    assert operators(data) == [("QUANTIZE", 1), ("PAD", 2), ("CONV_2D", 3), ("DEPTHWISE_CONV_2D", 3),
                               ("DEQUANTIZE", 2)]
    tensors = {t.name.decode(): t for t in read_model(data).subgraphs[0].tensors}
    for name, axis in (("w1", 0), ("w2", 3), ("b1", 0), ("b2", 0)):
        quant = tensors[name].quantization
        assert quant.quantizedDimension == axis
        np.testing.assert_array_equal(np.float32(quant.scale), graph.tensors[name].quant.scale)
    padded = next(t for n, t in tensors.items() if n.startswith("xq/pad_for/"))
    assert padded.quantization.scale[0] == np.float32(0.02) and padded.quantization.zeroPoint[0] == 3

    interpreter = Interpreter(model_content=data, experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    index = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}
    x = _nhwc_images(1, 8) * 0.8
    interpreter.set_tensor(index["x"], x)
    interpreter.invoke()
    xq, yq, zq = (interpreter.get_tensor(index[n]).astype(np.float64) for n in ("xq", "yq", "zq"))
    t = graph.tensors
    # Each layer, from LiteRT's own int8 input: integer accumulation, then requantize (within 1 step).
    np.testing.assert_array_equal(xq, _quantize(x, t["xq"].quant))
    acc = conv_nhwc(xq - 3, t["w1"].data.astype(np.float64), t["b1"].data, (2, 2), (1, 1, 1, 1), (1, 1), 1)
    y_ref = _quantize(acc * t["b1"].quant.scale, t["yq"].quant)
    y_ref = np.clip(y_ref, -128, -128 + np.round(6 / 0.05))  # fused ReLU6 in the quantized domain
    acc = depthwise_nhwc(yq + 128, t["w2"].data.astype(np.float64), t["b2"].data, (1, 1), (1, 1, 1, 1), (1, 1))
    z_ref = _quantize(acc * t["b2"].quant.scale, t["zq"].quant)
    for got, ref in ((yq, y_ref), (zq, z_ref)):
        assert np.abs(got - ref).max() <= 1 and np.mean(got == ref) > 0.95
    np.testing.assert_allclose(interpreter.get_tensor(index["z"]), (zq - 5) * 0.04, atol=1e-6)


def test_int8_weights_with_float_activations_use_per_channel_dequantize():
    graph = conv_graph(8, 1)
    w = graph.tensors["w"].data
    scale = np.abs(w).reshape(4, -1).max(axis=1) / 127
    graph.add_tensor("w_q", w.shape, "int8", np.round(w / scale[:, None, None, None]).astype(np.int8),
                     QuantParams(scale, np.zeros(4), axis=0))
    graph.add_tensor("w_f", w.shape)
    graph.add_node("dequantize", "w_dequantize", ["w_q"], ["w_f"], index=0)
    graph.node("conv").inputs[1] = "w_f"
    graph.prune().verify()
    data = write_tflite(graph)
    assert ("DEQUANTIZE", 5) in operators(data)
    x = _nhwc_images(2, 8, channels=4)
    np.testing.assert_allclose(run_tflite(data, x), _reference(graph, x), atol=ATOL, rtol=0)


@pytest.mark.parametrize("activation", ["relu", "relu6"])
def test_unfused_graph_writes_every_remaining_op(activation):
    """Without fusions the graph keeps standalone RELU/RELU6, MEAN, a bias ADD and SOFTMAX."""
    from converters.passes import fold_bn

    model = mobilenet_like(image_size=16, folded_bn=False, activation=activation, head="matmul_add",
                           pool="reduce_mean", softmax=True)
    graph = to_nhwc(fold_bn(import_onnx(model)))
    assert {activation, "mean", "add", "reshape", "softmax"} <= set(graph.op_counts())
    data = write_tflite(graph)
    names = {name for name, _ in operators(data)}
    assert {activation.upper(), "MEAN", "ADD", "RESHAPE", "SOFTMAX", "FULLY_CONNECTED"} <= names
    x = _nhwc_images(3, 16)
    np.testing.assert_allclose(run_tflite(data, x), _reference(graph, x), atol=1e-6, rtol=0)
