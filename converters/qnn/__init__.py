"""Qualcomm's Hexagon NPU (HTP) through ONNX Runtime's QNN execution provider.

Our QDQ int8 ONNX (`converters.onnx_qdq`) is compiled per SoC into an EPContext ONNX holding the
HTP context binary, which ONNX Runtime with the QNN EP loads on the phone without compiling again;
here the x86_64 HTP backend of the `onnxruntime-qnn` wheel emulates the NPU, so the compiled models
run (slowly) on the host. The modules read top-down, each importing only those above it:
`socs` (SoC names -> QNN soc_model ids) -> `install` (the wheel's libraries in the user cache,
with `converters.native`) -> `session` (the EP registered in onnxruntime, HTP sessions) ->
`compile` (QDQ ONNX -> EPContext ONNX) -> `smoke` -> `provision` (setup_qnn, ensure_qnn).
`aot` is LiteRT's route to the same NPU (an AOT-compiled `.tflite`, when QAIRT is present).
"""

from converters.qnn.compile import CompiledModel, compile_epcontext, is_epcontext
from converters.qnn.provision import ensure_qnn, setup_qnn
from converters.qnn.socs import SOC_MODELS, parse_socs

__all__ = ["SOC_MODELS", "CompiledModel", "compile_epcontext", "ensure_qnn", "is_epcontext", "parse_socs",
           "setup_qnn"]
