"""ONNX -> graph IR -> .tflite / .ms. The IR in `converters.ir` is the one contract between stages."""
