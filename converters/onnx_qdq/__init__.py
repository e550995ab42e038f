"""Our int8 graph (the quantization plan applied by `quantize.transform.to_int8`) as a QDQ int8 ONNX."""

from converters.onnx_qdq.writer import OPSET, write_qdq_onnx

__all__ = ["OPSET", "write_qdq_onnx"]
