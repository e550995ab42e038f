"""Float .tflite -> IR -> .tflite gives the same logits, for the op forms other writers use: MEAN
instead of AVERAGE_POOL_2D, SOFTMAX at the end, FULLY_CONNECTED on a 4-D input (no RESHAPE)."""

from __future__ import annotations

import numpy as np

from converters.onnx_import import import_onnx
from converters.passes import lower_for_tflite
from converters.tflite import write_tflite
from converters.tflite_import import import_tflite
from tests.onnx_models import mobilenet_like


def _run(model: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_mean_softmax_and_unflattened_fully_connected_round_trip(tmp_path):
    graph = lower_for_tflite(import_onnx(mobilenet_like(pool="reduce_mean", softmax=True, opset=13)), mean_as="mean")
    graph.bypass(next(n for n in graph.nodes if n.op == "reshape"))  # FULLY_CONNECTED reads [1, 1, 1, C]
    written = tmp_path / "other_writer.tflite"
    written.write_bytes(write_tflite(graph))
    imported = import_tflite(written)
    assert {"mean", "softmax"} & set(graph.op_counts()) == {"mean", "softmax"}
    assert imported.op_counts()["avg_pool2d"] == 1 and imported.op_counts()["softmax"] == 1  # MEAN -> pool
    x = np.random.RandomState(4).randn(1, 32, 32, 3).astype(np.float32)
    assert np.abs(_run(written.read_bytes(), x) - _run(write_tflite(imported), x)).max() <= 1e-6
