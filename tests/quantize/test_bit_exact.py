"""The integer reference executor against LiteRT, bit for bit.

LiteRT runs one image per invoke (as an app does). With its optimized built-in kernels and the
default delegates off, and with its reference kernels, every int8 tensor and the float output must
equal the reference executor's exactly (see quantize/reference.py for the two kernel profiles).
XNNPACK requantizes in its own way; its difference is reported in LSB, not asserted.
"""

import numpy as np
import pytest

from converters.onnx_import import import_onnx
from converters.passes import lower_for_tflite
from converters.tflite import write_tflite
from quantize import Quantizer, Recipe, reference
from tests.quantize.litert import check_exact, run_litert


def _quantized(graph, calib, io="float"):
    recipe = Recipe(method="mse", cle=False, bias_correction=True, io=io, correction_images=16)
    return Quantizer(recipe).quantize(graph, calib).graph


@pytest.mark.parametrize("kernels", ["builtin", "reference"])
def test_trained_digits_model_is_bit_exact(digits_set, kernels):
    x = digits_set.val[:64].transpose(0, 2, 3, 1).copy()
    check_exact(_quantized(digits_set.graph, digits_set.calib), x, kernels)


def test_int8_io_model_is_bit_exact(digits_set):
    qgraph = _quantized(digits_set.graph, digits_set.calib, io="int8")
    assert qgraph.tensors[qgraph.inputs[0]].dtype == "int8" and qgraph.tensors[qgraph.outputs[0]].dtype == "int8"
    x = reference.run_quantize_input(qgraph, digits_set.val[:32].transpose(0, 2, 3, 1))
    check_exact(qgraph, x, "builtin")


@pytest.mark.parametrize("width", [0.25, 0.5, 0.75, 1.0])
def test_every_width_is_bit_exact(zoo_onnx, width):
    card_path = zoo_onnx[width]
    graph = lower_for_tflite(import_onnx(card_path))
    rng = np.random.RandomState(int(width * 100))
    size = graph.tensors[graph.inputs[0]].shape[1]
    calib = rng.randn(16, 3, size, size).astype(np.float32)
    x = rng.randn(3, size, size, 3).astype(np.float32)
    check_exact(_quantized(graph, calib), x, "builtin")


def test_xnnpack_difference_is_reported_in_lsb(digits_set, capsys):
    qgraph = _quantized(digits_set.graph, digits_set.calib)
    x = digits_set.val[:64].transpose(0, 2, 3, 1).copy()
    logits = qgraph.producer(qgraph.outputs[0]).inputs[0]  # the int8 logits before DEQUANTIZE
    theirs = run_litert(write_tflite(qgraph), "xnnpack", x, [logits])[logits].astype(np.int64)
    ours = reference.run(qgraph, x, "builtin", fetch=[logits])[logits].astype(np.int64)
    lsb = np.abs(theirs - ours)
    with capsys.disabled():
        print(f"\nXNNPACK vs reference int8 logits: max {lsb.max()} LSB, {np.mean(lsb > 0):.1%} differ")
    assert lsb.max() <= 8  # a different requantization, not a different model


def test_rounding_ties_in_simd_blocks_and_scalar_tails():
    """Inputs that sit exactly half-way between two int8 steps, on a 35x35x3 input (not a multiple of 8):
    QUANTIZE rounds them half-to-even in its 8-wide blocks and half-away-from-zero in its scalar tail.

    FULLY_CONNECTED meets exact ties of its double-rounded result here too (single rounding in the
    reference kernels, double rounding in the built-in ones, see quantize/reference.py)."""
    from tests.onnx_models import mobilenet_like

    graph = lower_for_tflite(import_onnx(mobilenet_like(image_size=35, folded_bn=False, seed=3)))
    rng = np.random.RandomState(5)
    qgraph = _quantized(graph, rng.randn(16, 3, 35, 35).astype(np.float32))
    scale = np.float32(qgraph.tensors[qgraph.nodes[0].outputs[0]].quant.scale[0])
    ties = ((rng.randint(-40, 40, (4, 35, 35, 3)) + 0.5) * scale).astype(np.float32)
    assert np.mean(ties / scale % 1 == 0.5) > 0.5  # most of them are exact ties in float32
    check_exact(qgraph, ties, "builtin")
    check_exact(qgraph, ties, "reference")
