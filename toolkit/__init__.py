"""mnv1-tk: MobileNetV1 from MindSpore training to Android phones."""

__version__ = "0.1.0"
