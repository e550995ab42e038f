"""FULLY_CONNECTED with per-channel int8 weights: written with one scale per output (axis 0), loaded
by every LiteRT kernel set, and bit-exact in the reference executor, also on exact rounding ties."""

import numpy as np
import pytest

from converters.onnx_import import import_onnx
from converters.passes import lower_for_tflite
from converters.tflite import write_tflite
from quantize import Quantizer, Recipe
from tests.onnx_models import mobilenet_like
from tests.quantize.litert import check_exact, litert_interpreter


@pytest.mark.parametrize("per_channel", [True, False])
def test_fc_weights_are_bit_exact(per_channel):
    graph = lower_for_tflite(import_onnx(mobilenet_like(image_size=35, folded_bn=False, seed=4)))
    rng = np.random.RandomState(6)
    recipe = Recipe(method="mse", cle=False, bias_correction=True, correction_images=16, fc_per_channel=per_channel)
    result = Quantizer(recipe).quantize(graph, rng.randn(16, 3, 35, 35).astype(np.float32))
    fc = next(n for n in result.graph.nodes if n.op == "fully_connected")
    weight = result.graph.tensors[fc.inputs[1]]
    assert weight.quant.scale.size == (weight.shape[0] if per_channel else 1)

    model = write_tflite(result.graph)
    written = next(d for d in litert_interpreter(model, "reference").get_tensor_details() if d["name"] == fc.inputs[1])
    assert written["quantization_parameters"]["scales"].size == weight.quant.scale.size
    assert written["quantization_parameters"]["quantized_dimension"] == 0
    np.testing.assert_array_equal(written["quantization_parameters"]["scales"], weight.quant.scale)

    # Real-valued inputs that sit exactly half-way between two int8 steps of the first layer's input.
    scale = np.float32(result.graph.tensors[result.graph.nodes[0].outputs[0]].quant.scale[0])
    ties = ((rng.randint(-40, 40, (6, 35, 35, 3)) + 0.5) * scale).astype(np.float32)
    x = np.concatenate([ties, rng.randn(6, 35, 35, 3).astype(np.float32)])
    for kernels in ("builtin", "reference"):
        check_exact(result.graph, x, kernels)
