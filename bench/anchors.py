"""The anchors our quantizer is measured against, each set up at its best (see shared ANCHORS.md).

- ONNX Runtime `quantize_static`: QDQ, per-channel, int8 weights and activations, after the
  model is upgraded to opset 13 and pre-processed (BatchNormalization folded into Conv); every
  calibration method, Entropy with both bin settings, Distribution with its activations kept.
  `quantize_static` (ORT 1.32) does not pass a bin count on to its calibrator (its extra_options
  forward only CalibTensorRangeSymmetric, CalibMovingAverage*, CalibMaxIntermediateOutputs and
  CalibPercentile), so Entropy with 2048 bins calibrates through ORT's own `create_calibrator` and
  hands the ranges to `quantize_static` as its calibration cache. The QDQ file runs in ONNX Runtime
  with its QDQ nodes kept (`run_ort_qdq`): fused into x86 U8S8 integer kernels it loses 20 dB here.
  Each method also runs with the classifier excluded (`nodes_to_exclude`), the anchor of our
  `classifier: float` format.
- LiteRT's calibrator: the TFLite converter's own post-training quantization (the calibration
  wrapper that ships in ai-edge-litert), applied to our float .tflite.
- MindSpore Lite full-quant PTQ (MAX_MIN / KL / REMOVAL_OUTLIER, bias correction on), through
  `converters.mslite`, in a child process.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np

ORT_METHODS = {  # name -> (calibration method, quantize_static extra_options, calibrator extra_options)
    "ort-minmax": ("MinMax", {}, {}),
    "ort-entropy": ("Entropy", {}, {}),
    "ort-entropy-2048": ("Entropy", {}, {"num_bins": 2048}),
    "ort-percentile": ("Percentile", {}, {}),
    "ort-distribution": ("Distribution", {"QDQKeepRemovableActivations": True}, {}),
}
MSLITE_METHODS = {"mslite-max_min": "max_min", "mslite-kl": "kl", "mslite-removal_outlier": "removal_outlier"}
FLOAT_CLASSIFIER = " float classifier"  # an anchor's variant with the classifier kept in float (its Gemm excluded)
ORT_FLOAT_CLASSIFIER_METHODS = {f"{name}{FLOAT_CLASSIFIER}": name for name in ORT_METHODS}


def ort_quantize(onnx_path: Path, calib_nchw: np.ndarray, anchor: str, out_path: Path,
                 float_classifier: bool = False) -> Path:
    """Quantize `onnx_path` with ONNX Runtime's static quantization as configured by `anchor`;
    `float_classifier`: the classifier (Gemm / MatMul) excluded, so it runs in float."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static,
    )
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
    from onnxruntime.quantization.shape_inference import quant_pre_process

    method, extra, calibrator_options = ORT_METHODS[anchor]
    model = onnx.load(str(onnx_path))
    input_name = model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.images = iter(calib_nchw)

        def get_next(self):
            image = next(self.images, None)
            return None if image is None else {input_name: image[None].astype(np.float32)}

    with tempfile.TemporaryDirectory() as tmp:
        upgraded = Path(tmp) / "opset13.onnx"
        onnx.save(version_converter.convert_version(model, 13), str(upgraded))
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(upgraded), str(prepared), skip_symbolic_shape=True)
        calibrate_method = getattr(CalibrationMethod, method)
        ranges = None
        with contextlib.redirect_stdout(io.StringIO()):  # ORT's calibrators print their progress
            if calibrator_options:
                calibrator = create_calibrator(prepared, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                               calibrate_method=calibrate_method, extra_options=calibrator_options)
                calibrator.collect_data(Reader())
                ranges = Path(tmp) / "ranges.json"
                save_tensors_data(calibrator.compute_data(), ranges)
            excluded = ([n.name for n in onnx.load(str(prepared)).graph.node if n.op_type in ("Gemm", "MatMul")]
                        if float_classifier else None)
            quantize_static(str(prepared), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
                            calibrate_method=calibrate_method, extra_options=extra, calibration_cache_path=ranges)
    return out_path


def run_ort_qdq(path: Path, images: np.ndarray) -> np.ndarray:
    """Logits of an ORT QDQ model on NCHW float32 `images`, its QDQ nodes executed as written (basic optimizations)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # The extended level fuses QDQ into U8S8 integer kernels whose AVX2 VPMADDUBSW (no VNNI on this CPU)
    # saturates int16 pair sums: 13.6 dB instead of 35.3 dB; ORT's ARM kernels accumulate in int32.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed, fixed = session.get_inputs()[0].name, session.get_inputs()[0].shape[0]
    step = fixed if isinstance(fixed, int) else len(images)
    return np.concatenate([session.run(None, {feed: images[i:i + step].astype(np.float32)})[0]
                           for i in range(0, len(images), step)]).reshape(len(images), -1)


def litert_quantize(float_tflite: bytes, calib_nhwc: np.ndarray) -> bytes:
    """The TFLite converter's post-training full-integer quantization (float I/O), via LiteRT's calibrator."""
    from ai_edge_litert import _pywrap_tensorflow_lite_calibration_wrapper as calibration

    calibrator = calibration.CalibrationWrapper(float_tflite, [], [])
    calibrator.Prepare([[1, *calib_nhwc.shape[1:]]])
    for image in calib_nhwc:
        calibrator.FeedTensor([image[None].astype(np.float32)])
    float32, int8, int32 = (np.dtype(t).num for t in (np.float32, np.int8, np.int32))
    return bytes(calibrator.QuantizeModel(float32, float32, False, int8, int32, False, False))
