"""Operator versions, as TFLite's `tensorflow/lite/tools/versioning/op_version.cc` assigns them.

A runtime refuses an op whose version it does not know, and accepts any lower one, so the writer
stamps each operator with the lowest version that covers its tensor types. Only the rules for the
ops this writer emits are kept; `OpSignature` holds just the facts those rules read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ai_edge_litert.schema_py_generated import BuiltinOperator as Op


@dataclass(frozen=True)
class OpSignature:
    """Input and output dtypes (IR names) plus the op facts the version rules depend on."""

    inputs: tuple[str, ...]
    output: str
    per_channel: bool = False  # a per-channel quantized input (DEQUANTIZE) or output (QUANTIZE)
    grouped: bool = False  # CONV_2D with groups > 1
    dilated: bool = False
    options: dict = field(default_factory=dict)


def _int8_in_out(sig: OpSignature) -> bool:
    return sig.inputs[0] == "int8" and sig.output == "int8"


def _conv_2d(sig: OpSignature) -> int:
    if sig.grouped:
        return 6
    if _int8_in_out(sig) and sig.inputs[1] == "int8":
        return 3
    return 1


def _depthwise_conv_2d(sig: OpSignature) -> int:
    if _int8_in_out(sig) and sig.inputs[1] == "int8":
        return 3
    return 2 if sig.dilated else 1


def _fully_connected(sig: OpSignature) -> int:
    if len(sig.inputs) == 2:  # no bias
        return 6
    if _int8_in_out(sig) and sig.inputs[1] == "int8":
        return 4
    return 1


def _int8_is_2(sig: OpSignature) -> int:
    """AVERAGE_POOL_2D, MEAN, SOFTMAX, ADD, PAD (rank <= 4), RELU, RELU6."""
    return 2 if sig.inputs[0] == "int8" else 1


def _dequantize(sig: OpSignature) -> int:
    if sig.inputs[0] in ("float16", "int16"):
        return 3
    if sig.inputs[0] == "int8":
        return 5 if sig.per_channel else 2
    return 1


def _quantize(sig: OpSignature) -> int:
    if sig.per_channel:
        return 3
    return 2 if sig.output == "int16" else 1


RULES = {
    Op.CONV_2D: _conv_2d,
    Op.DEPTHWISE_CONV_2D: _depthwise_conv_2d,
    Op.FULLY_CONNECTED: _fully_connected,
    Op.AVERAGE_POOL_2D: _int8_is_2,
    Op.MEAN: _int8_is_2,
    Op.SOFTMAX: _int8_is_2,
    Op.ADD: _int8_is_2,
    Op.PAD: _int8_is_2,
    Op.RELU: _int8_is_2,
    Op.RELU6: _int8_is_2,
    Op.DEQUANTIZE: _dequantize,
    Op.QUANTIZE: _quantize,
    Op.RESHAPE: lambda sig: 1,
}


def op_version(code: int, sig: OpSignature) -> int:
    """The version of builtin operator `code` for the signature `sig`."""
    return RULES[code](sig)
