"""Post-training int8 quantization over the graph IR, with an integer reference executor."""

from quantize.calibrator import CalibrationResult, calibrate
from quantize.plan import QuantPlan
from quantize.quantizer import QuantizationResult, Quantizer
from quantize.recipe import Recipe
from quantize.transform import to_int8

__all__ = ["CalibrationResult", "QuantPlan", "QuantizationResult", "Quantizer", "Recipe", "calibrate", "to_int8"]
