"""Degenerate models quantize: dead tensors, all-zero channels and a dead layer.

The minimum ranges of quantize.params (the TFLite converter's) keep every scale representable:
LiteRT loads each model (the writer's own check allocates it), and the integer reference executor
stays bit-exact with LiteRT's built-in and reference kernels. AdaRound leaves all-zero channels at zero.
"""

import numpy as np
import pytest

from converters.onnx_import import import_onnx
from converters.passes import lower_for_tflite
from quantize import Quantizer, Recipe
from tests.quantize.litert import check_exact

# The default's steps (AdaRound too, for fewer iterations) on fewer images.
FAST = Recipe(method="mse", cle=False, bias_correction=True, adaround=True, adaround_iterations=50,
              correction_images=16)


def _quantize_and_check(graph, calib: np.ndarray, x: np.ndarray, recipe: Recipe = FAST):
    quantizer = Quantizer(recipe)
    result = quantizer.quantize(graph, calib)
    for kernels in ("builtin", "reference"):
        check_exact(result.graph, x.transpose(0, 2, 3, 1).copy(), kernels)
    return result, quantizer.validate(result, x)


def _with_layers(graph, change):
    """A copy of `graph` whose conv / depthwise weights and biases `change(index, node, w, b)` rewrites."""
    graph = graph.copy()
    layers = [n for n in graph.nodes if n.op in ("conv2d", "depthwise_conv2d")]
    for index, node in enumerate(layers):
        w, b = graph.const(node.inputs[1]).copy(), graph.const(node.inputs[2]).copy()
        if change(index, node, w, b):
            graph.tensors[node.inputs[1]].data, graph.tensors[node.inputs[2]].data = w, b
    return graph


def test_minimum_ranges_are_the_converters():
    """A range within 1e-6 grows to contain [-5e-7, 5e-7] (TFLite's ExpandVerySmallRange); wider ones stay."""
    from quantize.params import activation_params, weight_scales

    dead = activation_params(0.0, 0.0)
    assert np.isclose(dead.scale[0], 1e-6 / 255, rtol=1e-6)
    assert 6.0 / dead.scale[0] < 2 ** 31  # a fused ReLU6 bound still fits int32
    assert np.isclose(activation_params(0.0, 2e-6).scale[0], 2e-6 / 255, rtol=1e-6)
    weight = np.zeros((3, 1, 1, 4), np.float32)
    weight[1] = 1e-8
    weight[2, 0, 0, 0] = 0.5
    np.testing.assert_allclose(weight_scales(weight, 0), [5e-7 / 127, 5e-7 / 127, 0.5 / 127], rtol=1e-6)


@pytest.mark.parametrize("method", ["minmax", "percentile", "mse", "kl"])
def test_every_range_method_takes_a_dead_tensor(method):
    from quantize.observers import Histogram, ObserverConfig

    dead = Histogram()
    dead.update(np.zeros((4, 8, 8, 16), np.float32))
    assert ObserverConfig(method).estimate(dead) == (0.0, 0.0)


def test_untrained_model_on_random_images(tmp_path):
    """create_model with BN at its initial statistics, calibrated on random-normal images (the issue's case;
    every range method gets past a dead tensor, see above)."""
    import mindspore as ms

    from tests.models import export_onnx, zoo_card
    from toolkit.models import create_model, model_name

    ms.set_seed(0)
    card = zoo_card(0.25, 32)
    graph = lower_for_tflite(import_onnx(export_onnx(create_model(model_name(0.25), num_classes=10), card,
                                                     tmp_path / "untrained.onnx")))
    rng = np.random.RandomState(0)
    result = Quantizer(FAST).quantize(graph, rng.randn(16, 3, 32, 32).astype(np.float32))
    scales = [float(q.scale[0]) for q in result.plan.activations.values()]
    assert min(scales) < 1e-6  # the model has (near-)dead activations: the minimum range is what holds
    for kernels in ("builtin", "reference"):
        check_exact(result.graph, rng.randn(4, 32, 32, 3).astype(np.float32), kernels)


def test_zeroed_channels(digits_set):
    """Every third output channel of every third layer (convs and depthwise) all zero, bias included."""
    def zero(index, node, w, b):
        if index % 3 != 1:
            return False
        axis = 0 if node.op == "conv2d" else 3
        picked = [slice(None)] * 4
        picked[axis] = slice(0, None, 3)
        w[tuple(picked)] = 0
        b[::3] = 0
        return True

    graph = _with_layers(digits_set.graph, zero)
    result, metrics = _quantize_and_check(graph, digits_set.calib[:32], digits_set.val[:48])
    assert metrics["sqnr_db"] > 25 and metrics["top1_agreement"] > 0.9
    for node in (n for n in graph.nodes if n.op in ("conv2d", "depthwise_conv2d")):
        axis = 0 if node.op == "conv2d" else 3
        weight = np.moveaxis(graph.const(node.inputs[1]), axis, 0)
        int8 = np.moveaxis(result.graph.const(result.graph.node(node.name).inputs[1]), axis, 0)
        zeroed = ~weight.reshape(len(weight), -1).any(axis=1)
        assert not int8[zeroed].any(), node.name  # AdaRound leaves an all-zero channel at zero


def test_dead_layer(digits_set):
    """A pointwise conv with zero weights and a negative bias: its ReLU6 output is 0 on every image,
    and the depthwise layer after it sees a constant input."""
    def kill(index, node, w, b):
        if index != 6:
            return False
        w[:] = 0
        b[:] = -1
        return True

    graph = _with_layers(digits_set.graph, kill)
    dead = next(n for n in graph.nodes if n.op == "conv2d" and not graph.const(n.inputs[1]).any())
    assert dead.attrs["act"] in ("relu", "relu6")
    _, metrics = _quantize_and_check(graph, digits_set.calib[:32], digits_set.val[:48])
    assert metrics["sqnr_db"] > 25
