"""Activation equalization: the same function, the same int8 weights where the rescaling is free, finer
activation grids on images calibration never saw, and a model LiteRT computes bit for bit."""

import numpy as np
import pytest

from converters.ir.execute import run as run_float
from quantize import Quantizer, Recipe
from quantize.act_equalization import (
    MAX_SCALE, activation_equalization_pairs, channel_scales, equalize_activations,
)
from quantize.calibrator import calibrate
from quantize.params import WEIGHT_AXIS, activation_params, weight_params
from quantize.quantizer import to_nhwc
from tests.quantize.litert import check_exact


HEADROOM = Recipe.load("default").act_equalization


@pytest.fixture(scope="module")
def equalized(digits_set):
    x = to_nhwc(digits_set.calib)
    calibration = calibrate(digits_set.graph, x)
    graph, report = equalize_activations(digits_set.graph, calibration.preact_max, HEADROOM)
    return calibration, graph, report


def test_every_layer_into_a_depthwise_or_pointwise_layer_is_equalized(digits_set, equalized):
    _, _, report = equalized
    pairs = activation_equalization_pairs(digits_set.graph)
    assert len(pairs) == 26  # the stem and 12 pointwise layers into depthwise layers, 13 depthwise into pointwise
    assert sum(second.op == "depthwise_conv2d" for _, second in pairs) == 13
    assert sorted(report.scales) == sorted(first.name for first, _ in pairs)
    assert all(np.sum(scales > 1.0) > 0 for scales in report.scales.values())
    assert HEADROOM > 1.0


def test_the_function_is_kept_on_the_calibration_images(digits_set, equalized):
    _, graph, _ = equalized
    x = to_nhwc(digits_set.calib)
    logits = run_float(digits_set.graph, x)[digits_set.graph.outputs[0]]
    np.testing.assert_allclose(run_float(graph, x)[graph.outputs[0]], logits, atol=1e-4 * np.abs(logits).max())


@pytest.mark.parametrize("headroom", [1.0, HEADROOM])
def test_every_channel_reaches_the_tensor_maximum_but_its_headroom(digits_set, equalized, headroom):
    calibration, _, _ = equalized
    graph, _ = equalize_activations(digits_set.graph, calibration.preact_max, headroom)
    after = calibrate(graph, to_nhwc(digits_set.calib)).preact_max
    for first, _ in activation_equalization_pairs(graph):
        before, peak = (np.clip(p[first.name], 0, 6.0) for p in (calibration.preact_max, after))
        assert peak.max() == pytest.approx(before.max(), rel=1e-5)
        alive = before > before.max() / MAX_SCALE
        np.testing.assert_array_less(peak.max() / headroom * (1 - 1e-4), peak[alive], err_msg=first.name)


def _int8(graph, node):
    axis = WEIGHT_AXIS[node.op]
    weight = graph.const(node.inputs[1])
    return np.round(np.moveaxis(weight, axis, -1) / weight_params(weight, axis, True).scale)


def test_the_int8_weights_change_only_where_input_columns_are_rescaled(digits_set, equalized):
    """Output channels are quantized per channel, and so are a depthwise layer's input channels: the stem's and
    the depthwise layers' int8 weights stay; the pointwise layers after a depthwise layer (input columns
    rescaled inside a row's one scale) change."""
    _, graph, _ = equalized
    pairs = activation_equalization_pairs(digits_set.graph)
    rescaled_columns = {second.name for _, second in pairs if second.op == "conv2d"}
    layers = {n.name: n for pair in pairs for n in pair}
    assert len(layers) == 27 and len(rescaled_columns) == 13
    for name, node in layers.items():
        before, after = _int8(digits_set.graph, node), _int8(graph, node)
        changed = np.mean(before != after)
        if name in rescaled_columns:
            assert changed > 0.01, name
        else:
            assert changed < 1e-3 and np.abs(before - after).max() <= 1, name


def test_the_activation_grids_are_finer_on_held_out_images(digits_set, equalized):
    """Each equalized tensor, quantized on its calibration min/max and measured in the original units on val
    images the calibration never saw, has less quantization noise than the original tensor on its own grid."""
    calibration, graph, report = equalized
    after = calibrate(graph, to_nhwc(digits_set.calib))
    x = to_nhwc(digits_set.val)
    pairs = activation_equalization_pairs(graph)
    names = [first.outputs[0] for first, _ in pairs]
    original, rescaled = run_float(digits_set.graph, x, fetch=names), run_float(graph, x, fetch=names)
    for (first, _), name in zip(pairs, names):
        scales = report.scales[first.name]

        def noise(values, histogram, unit):
            params = activation_params(histogram.min, histogram.max)
            q = np.clip(np.round(values / params.scale[0]) + params.zero_point[0], -128, 127)
            return np.mean(((q - params.zero_point[0]) * params.scale[0] / unit - original[name]) ** 2)

        before = noise(original[name], calibration.histograms[name], 1.0)
        assert noise(rescaled[name], after.histograms[name], scales) < before, name


def test_channel_scales():
    output_max = np.array([6.0, 5.0, 3.0, 1.5, 0.0, 1e-9])
    np.testing.assert_allclose(channel_scales(output_max, 1.0), [1.0, 1.2, 2.0, 4.0, 1.0, MAX_SCALE])
    np.testing.assert_allclose(channel_scales(output_max, 1.5), [1.0, 1.0, 4 / 3, 8 / 3, 1.0, MAX_SCALE])
    np.testing.assert_allclose(channel_scales(np.zeros(3), 1.0), np.ones(3))
    with pytest.raises(ValueError, match="below 1"):
        equalize_activations(None, {}, 0.9)


def test_the_equalized_int8_model_is_bit_exact_in_litert(digits_set):
    recipe = Recipe(method="mse", cle=False, bias_correction=True, act_equalization=HEADROOM, correction_images=16)
    qgraph = Quantizer(recipe).quantize(digits_set.graph, digits_set.calib).graph
    check_exact(qgraph, digits_set.val[:64].transpose(0, 2, 3, 1).copy(), "builtin")
