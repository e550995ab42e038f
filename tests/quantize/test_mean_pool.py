"""The int8 global pool as MEAN (keepdims=False, as the TF converter writes it): the reference
executor is bit-exact with LiteRT's kernels, and XNNPACK takes the whole int8 graph as one partition."""

import numpy as np
import pytest

from converters.ir.execute import run as run_float
from converters.onnx_import import import_onnx
from converters.passes import global_pool_as_mean, lower_for_tflite
from converters.tflite import write_tflite
from quantize import Quantizer, Recipe
from tests.onnx_models import mobilenet_like
from tests.quantize.litert import check_exact

FAST = Recipe(method="mse", cle=False, bias_correction=True, correction_images=16)


def _graph(image_size: int, seed: int):
    return lower_for_tflite(import_onnx(mobilenet_like(image_size=image_size, folded_bn=False, seed=seed)))


def test_global_pool_becomes_one_mean():
    graph = _graph(56, 1)
    pooled = global_pool_as_mean(graph)
    assert "avg_pool2d" not in pooled.op_counts() and pooled.op_counts()["mean"] == 1
    assert len(pooled.nodes) == len(graph.nodes) - 1  # the flattening reshape is gone
    x = np.random.RandomState(0).randn(2, 56, 56, 3).astype(np.float32)
    np.testing.assert_allclose(run_float(pooled, x)[pooled.outputs[0]], run_float(graph, x)[graph.outputs[0]],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("image_size", [35, 56])  # a 5x5 (25 values) and a 7x7 (49) final feature map
def test_mean_is_bit_exact(image_size):
    rng = np.random.RandomState(image_size)
    result = Quantizer(FAST).quantize(_graph(image_size, 2),
                                      rng.randn(16, 3, image_size, image_size).astype(np.float32))
    mean = next(n for n in result.graph.nodes if n.op == "mean")
    scales = (result.graph.tensors[t].quant.scale[0] for t in (mean.inputs[0], mean.outputs[0]))
    assert len(set(scales)) == 2  # its own output range: the requantization is exercised
    x = rng.randn(6, image_size, image_size, 3).astype(np.float32)
    for kernels in ("builtin", "reference"):
        check_exact(result.graph, x, kernels)


def _xnnpack(model: bytes):
    """LiteRT with its default delegate (XNNPACK), as an app runs it (not keeping every tensor)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    return interpreter


def _delegate_partitions(interpreter) -> list[int]:
    """Node indices of the delegate kernels LiteRT put in the execution plan, one per partition."""
    return [op["index"] for op in interpreter._get_ops_details() if op["op_name"] == "DELEGATE"]


@pytest.mark.parametrize("global_pool,partitions", [("mean", 1), ("avg_pool", 2)])
def test_xnnpack_partitions(global_pool, partitions):
    """MEAN: one partition from the input to the output. AVERAGE_POOL_2D in int8 splits the graph in two."""
    rng = np.random.RandomState(3)
    result = Quantizer(FAST.replace(global_pool=global_pool)).quantize(_graph(56, 3),
                                                                      rng.randn(16, 3, 56, 56).astype(np.float32))
    interpreter = _xnnpack(write_tflite(result.graph))
    assert len(_delegate_partitions(interpreter)) == partitions
    if partitions == 1:
        node = _delegate_partitions(interpreter)[0]
        assert list(interpreter._interpreter.NodeInputs(node))[:1] == list(interpreter._interpreter.InputIndices())
        assert list(interpreter._interpreter.NodeOutputs(node)) == list(interpreter._interpreter.OutputIndices())
