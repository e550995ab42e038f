"""Smoke test of a MindSpore Lite setup: convert a tiny ONNX model to fp32 and full-quant int8 `.ms` and run both.

The fp32 result must match ONNX Runtime; the int8 one must run and stay near the float result.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from converters.mslite.backends import Backend, ConvertJob, write_benchmark_data
from converters.mslite.config import full_quant_config, render_config, write_calibration_bins
from toolkit.errors import BackendError

SIZE, CLASSES = 16, 4
FP32_ATOL = 1e-4  # logits are O(1); float32 kernels summing in another order differ by ~1e-6
INT8_ATOL = 0.25  # 8-bit activations on a 2-layer net: a few % of the logit range


def tiny_onnx(path: Path) -> Path:
    """Conv 3x3/2 + ReLU6 + global average pool + Gemm, NCHW [1,3,16,16] -> [1,4], fixed random weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.RandomState(0)
    weights = {"w": rng.randn(8, 3, 3, 3).astype(np.float32) * 0.3, "b": rng.randn(8).astype(np.float32) * 0.1,
               "lo": np.array(0, np.float32), "hi": np.array(6, np.float32),
               "fc_w": rng.randn(CLASSES, 8).astype(np.float32), "fc_b": rng.randn(CLASSES).astype(np.float32) * 0.1}
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["conv"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["conv", "lo", "hi"], ["act"]),
             helper.make_node("GlobalAveragePool", ["act"], ["pool"]),
             helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "smoke",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES])],
                              [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def onnxruntime_logits(path: Path, batch: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: image[None]})[0] for image in batch])


def _convert(backend: Backend, source: Path, prefix: Path, config: dict | None = None) -> Path:
    """One converter run on the backend itself (below `convert.convert_to_ms`, which needs a ready backend)."""
    config_path = None
    if config:
        config_path = prefix.with_suffix(".cfg")
        config_path.write_text(render_config(config))
    job = ConvertJob("onnx", source, prefix, config_path, "NCHW")
    backend.convert(job)
    if not job.output.is_file():
        raise BackendError(f"MindSpore Lite smoke test: the converter wrote no {job.output.name}",
                           "report this with `mnv1-tk --debug setup mslite` output")
    return job.output


def smoke_test(backend: Backend) -> str:
    """Raises BackendError unless `backend` converts and runs both models correctly; returns a summary."""
    with tempfile.TemporaryDirectory(prefix="mnv1tk-mslite-smoke-") as work:
        work = Path(work)
        source = tiny_onnx(work / "smoke.onnx")
        images = np.random.RandomState(1).uniform(-2, 2, (8, 3, SIZE, SIZE)).astype(np.float32)
        reference = onnxruntime_logits(source, images)

        fp32 = _convert(backend, source, work / "smoke.fp32")
        with backend.open(fp32) as session:
            error = float(np.abs(session.run(images) - reference).max())
            output_name = session.outputs[0].name
        if not error <= FP32_ATOL:
            raise BackendError(f"MindSpore Lite smoke test: fp32 logits differ from ONNX Runtime by {error:.2e}",
                               "report this with `mnv1-tk --debug setup mslite` output")

        count = write_calibration_bins(images, work / "calibration")
        config = full_quant_config("input", work / "calibration", count, "max_min")
        int8 = _convert(backend, source, work / "smoke.int8", config)
        with backend.open(int8) as session:
            int8_error = float(np.abs(session.run(images) - reference).max())
        if not int8_error <= INT8_ATOL:
            raise BackendError(f"MindSpore Lite smoke test: int8 logits differ from float by {int8_error:.2f}",
                               "report this with `mnv1-tk --debug setup mslite` output")

        if hasattr(backend, "check_with_benchmark"):
            images[:1].tofile(work / "input.bin")
            write_benchmark_data(work / "expected.out", {output_name: reference[:1]})
            backend.check_with_benchmark(fp32, work / "input.bin", work / "expected.out")
    return f"fp32 max |diff| {error:.1e} vs ONNX Runtime, int8 max |diff| {int8_error:.3f}"
