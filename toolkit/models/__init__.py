"""The model zoo: MobileNetV1 at four widths, registered by name."""

from toolkit.models.mobilenetv1 import (
    ACTIVATIONS, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, WIDTHS, MobileNetV1, PretrainedCfg, default_cfgs, model_name,
)
from toolkit.models.registry import create_model, list_models, register_model

__all__ = [
    "ACTIVATIONS", "MAX_IMAGE_SIZE", "MIN_IMAGE_SIZE", "WIDTHS", "MobileNetV1", "PretrainedCfg",
    "create_model", "default_cfgs", "list_models", "model_name", "register_model",
]
