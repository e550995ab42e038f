"""TFLite writer: graph IR -> .tflite, plus TFLite metadata."""

from converters.tflite.writer import EMITTERS, tf_same_pads, write_tflite

__all__ = ["EMITTERS", "tf_same_pads", "write_tflite"]
