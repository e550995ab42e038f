"""Smoke test of a QNN setup: a tiny QDQ int8 model compiled for SM8650 and run on the x86 HTP emulator.

Its logits must stay within a few LSB of ONNX Runtime's CPU kernels on the same QDQ model (the
HTP requantizes in its own way; a broken setup is off by tens of LSB or fails outright).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from converters.qnn.compile import compile_epcontext
from converters.qnn.install import Installation
from converters.qnn.session import htp_options, open_session
from toolkit.errors import BackendError

SIZE, CLASSES = 16, 4
SOC = "SM8650"
MAX_LSB = 4


def tiny_qdq(seed: int = 0) -> tuple[bytes, float]:
    """Q -> DQ -> Conv 3x3/2 (int8 per-channel weights, int32 bias) + ReLU -> Q -> DQ -> GAP -> Q -> DQ ->
    Flatten -> Gemm -> Q -> DQ, NCHW [1,3,16,16] -> [1,4]; returns the model and its logits scale."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.RandomState(seed)
    x_scale, act_scale, logit_scale = 0.02, 0.03, 0.05
    w_scale = rng.uniform(0.002, 0.004, 8).astype(np.float32)
    fc_scale = np.float32(0.01)
    arrays = {
        "x_s": np.float32(x_scale), "x_z": np.int8(0), "a_s": np.float32(act_scale), "a_z": np.int8(-128),
        "l_s": np.float32(logit_scale), "l_z": np.int8(0),
        "w_q": rng.randint(-127, 128, (8, 3, 3, 3)).astype(np.int8), "w_s": w_scale, "w_z": np.zeros(8, np.int8),
        "b_q": rng.randint(-500, 500, 8).astype(np.int32), "b_s": (x_scale * w_scale).astype(np.float32),
        "b_z": np.zeros(8, np.int32),
        "f_q": rng.randint(-127, 128, (CLASSES, 8)).astype(np.int8), "f_s": fc_scale, "f_z": np.int8(0),
        "fb_q": rng.randint(-100, 100, CLASSES).astype(np.int32), "fb_s": np.float32(act_scale * fc_scale),
        "fb_z": np.int32(0),
    }

    def qdq(name, scale, zero):
        return [helper.make_node("QuantizeLinear", [name, scale, zero], [f"{name}_q"]),
                helper.make_node("DequantizeLinear", [f"{name}_q", scale, zero], [f"{name}_dq"])]

    nodes = [*qdq("input", "x_s", "x_z"),
             helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], axis=0),
             helper.make_node("DequantizeLinear", ["b_q", "b_s", "b_z"], ["b"], axis=0),
             helper.make_node("Conv", ["input_dq", "w", "b"], ["conv"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv"], ["act"]), *qdq("act", "a_s", "a_z"),
             helper.make_node("GlobalAveragePool", ["act_dq"], ["pool"]), *qdq("pool", "a_s", "a_z"),
             helper.make_node("Flatten", ["pool_dq"], ["flat"], axis=1), *qdq("flat", "a_s", "a_z"),
             helper.make_node("DequantizeLinear", ["f_q", "f_s", "f_z"], ["f"]),
             helper.make_node("DequantizeLinear", ["fb_q", "fb_s", "fb_z"], ["fb"]),
             helper.make_node("Gemm", ["flat_dq", "f", "fb"], ["gemm"], transB=1), *qdq("gemm", "l_s", "l_z")]
    graph = helper.make_graph(nodes, "smoke",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
                              [helper.make_tensor_value_info("gemm_dq", TensorProto.FLOAT, [1, CLASSES])],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in arrays.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString(), logit_scale


def smoke_test(install: Installation) -> str:
    """Raises BackendError unless the HTP emulator compiles and runs the tiny model; returns a summary."""
    import onnxruntime as ort

    model, scale = tiny_qdq()
    images = np.random.RandomState(1).uniform(-2, 2, (8, 1, 3, SIZE, SIZE)).astype(np.float32)
    cpu = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    expected = np.concatenate([cpu.run(None, {"input": x})[0] for x in images])
    with tempfile.TemporaryDirectory(prefix="mnv1tk-qnn-smoke-") as work:
        compiled = compile_epcontext(model, Path(work) / "smoke.onnx", SOC, install, what="the smoke-test model")
        session = open_session(compiled.path, htp_options(install), what="the compiled smoke-test model")
        logits = np.concatenate([session.run(None, {"input": x})[0] for x in images])
    lsb = float(np.abs(logits - expected).max() / scale)
    if not lsb <= MAX_LSB:
        raise BackendError(f"QNN smoke test: the HTP emulator's logits differ from ONNX Runtime's CPU by {lsb:.0f} LSB",
                           "report this with `mnv1-tk --debug setup qnn` output")
    return (f"{SOC} context {compiled.context_bytes / 1024:.0f} KB in {compiled.seconds:.2f} s; "
            f"emulator vs CPU max {lsb:.0f} LSB")
