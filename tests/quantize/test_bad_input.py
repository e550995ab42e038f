"""The quantizer refuses what it cannot do, with the reason."""

import numpy as np
import pytest

from quantize import Quantizer, Recipe
from toolkit.errors import CalibrationError, UnsupportedOpError


def test_too_few_calibration_images_says_how_many(digits_set):
    with pytest.raises(CalibrationError, match="found 3 calibration images; at least 16"):
        Quantizer().quantize(digits_set.graph, digits_set.calib[:3])
    with pytest.raises(CalibrationError, match="found 0 calibration images"):
        Quantizer().quantize(digits_set.graph, digits_set.calib[:0])


def test_calibration_images_of_the_wrong_size_or_channels(digits_set):
    with pytest.raises(CalibrationError, match=r"shape \[48, 48, 3\] but the model takes \[32, 32, 3\]"):
        Quantizer().quantize(digits_set.graph, np.zeros((16, 3, 48, 48), np.float32))
    with pytest.raises(CalibrationError, match=r"shape \[32, 32, 1\]"):
        Quantizer().quantize(digits_set.graph, np.zeros((16, 1, 32, 32), np.float32))


def test_nan_or_inf_weights_are_named(digits_set):
    graph = digits_set.graph.copy()
    layer = next(n for n in graph.nodes if n.op == "depthwise_conv2d")
    graph.tensors[layer.inputs[1]].data = graph.const(layer.inputs[1]).copy()
    graph.tensors[layer.inputs[1]].data.flat[3] = np.inf
    with pytest.raises(UnsupportedOpError, match=f"weights of '{layer.name}' hold NaN or Inf"):
        Quantizer().quantize(graph, digits_set.calib)


def test_an_op_without_an_int8_scheme_is_named(digits_set):
    graph = digits_set.graph.copy()
    layer = next(n for n in graph.nodes if n.op == "depthwise_conv2d")
    layer.op, layer.inputs, layer.attrs = "relu6", layer.inputs[:1], {}
    with pytest.raises(UnsupportedOpError, match=f"cannot quantize node '{layer.name}' \\(relu6\\)"):
        Quantizer(Recipe(method="minmax")).quantize(graph, digits_set.calib)


def test_a_mean_keeping_its_dims_is_refused(digits_set):
    graph = digits_set.graph.copy()
    pool = next(n for n in graph.nodes if n.op == "avg_pool2d")
    pool.op, pool.attrs = "mean", {"axes": (1, 2), "keepdims": True}
    with pytest.raises(UnsupportedOpError, match=f"mean node '{pool.name}' keeps its reduced dims"):
        Quantizer(Recipe(method="minmax")).quantize(graph, digits_set.calib)


def test_nchw_graph_is_refused(digits_set):
    from converters.onnx_import import import_onnx

    from tests.onnx_models import mobilenet_like

    with pytest.raises(UnsupportedOpError, match="lowered NHWC graph"):
        Quantizer().quantize(import_onnx(mobilenet_like()), digits_set.calib)
