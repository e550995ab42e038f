"""Quantization-aware fine-tuning: fake quantization mirroring our int8 scheme, learnt ranges,
distillation from the float model, and the ranges' way into `convert --quant int8`."""

from quantize.qat.plan import CARD_KEY, qat_classifier, qat_plan, qat_ranges, quantize_qat

__all__ = ["CARD_KEY", "qat_classifier", "qat_plan", "qat_ranges", "quantize_qat"]
