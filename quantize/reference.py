"""Integer reference executor: computes, in NumPy and numba, exactly what TFLite's int8 kernels compute.

Conv, depthwise conv and fully-connected accumulate (x - x_zp) * w + bias in int32 (done here in
int64 for depthwise layers, and for the others in float32 or float64 GEMMs, whichever holds every
partial sum exactly), requantize with the per-channel fixed-point multiplier and shift, add the
output zero point and clamp to the fused activation range. Average pooling rounds half away from
zero. MEAN (the global pool as the TF converter writes it, keepdims=False) requantizes its sum as
LiteRT's QuantizedMeanOrSum does, in both profiles (see `_mean`). QUANTIZE / DEQUANTIZE follow the
float arithmetic of TFLite's kernels. Float nodes (layers kept in float) run on the float executor.

It is the test oracle for the LiteRT int8 output and the tool for explaining quantization errors:
`run(..., on_tensor=...)` reports every int8 tensor.

Two kernel profiles, both checked bit for bit against LiteRT 2.3 on x86-64:
- "reference": TFLite's reference kernels (OpResolverType.BUILTIN_REF). Every requantization uses
  the default double rounding except FULLY_CONNECTED's, which rounds once (single rounding: at an
  exact tie of the double-rounded result it can land 1 LSB lower, measured: 21.49973 -> 21 where
  double rounding gives 22); QUANTIZE computes round-half-away(float32(x / scale)) and DEQUANTIZE
  float(double(scale) * (q - zero_point)).
- "builtin": TFLite's optimized built-in kernels without delegates
  (BUILTIN_WITHOUT_DEFAULT_DELEGATES), which is what ships. FULLY_CONNECTED (per tensor and per
  channel) runs through ruy, whose x86 requantization rounds its final shift half up (see
  quantize.fixed_point, rounding="ruy"): 1 LSB from double rounding at negative exact ties. QUANTIZE and
  DEQUANTIZE run 8 values at a time: QUANTIZE as round-half-to-even(float32(x * float32(1/scale))),
  DEQUANTIZE as float32(q * scale) + float32(-zero_point * scale); the values left over (a
  sample's size modulo 8) take the scalar formulas, round-half-away(x / double(scale)) and the
  reference DEQUANTIZE. The differences are 1 LSB at ties and 1 ulp.
"""

from __future__ import annotations

import numpy as np

from converters.ir import Graph, Node, QuantParams
from converters.ir.execute import KERNELS as FLOAT_KERNELS
from converters.ir.execute import conv_nhwc, depthwise_nhwc, pool_sums
from converters.ir.ops import attr
from quantize.fixed_point import multiply_by_quantized_multiplier, quantize_multiplier, requantize


def quantize_value(value: float, q: QuantParams) -> int:
    """TFLite's `zero_point + round(f / scale)` in float32 (used for activation ranges)."""
    return int(q.zero_point[0]) + int(round_half_away(np.float32(value) / np.float32(q.scale[0])))


def round_half_away(x):
    """std::round: to nearest, ties away from zero (exact: x - trunc(x) has no rounding error)."""
    x = np.asarray(x)
    whole = np.trunc(x)
    return whole + np.sign(x) * (np.abs(x - whole) >= 0.5)


def activation_range(act: str, q: QuantParams) -> tuple[int, int]:
    """tflite::CalculateActivationRangeQuantized."""
    lo, hi = q.qmin, q.qmax
    if act in ("relu", "relu6"):
        lo = max(lo, quantize_value(0.0, q))
    if act == "relu6":
        hi = min(hi, quantize_value(6.0, q))
    return lo, hi


def requantize_params(graph: Graph, node: Node) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (multiplier, shift) = QuantizeMultiplier(s_in * s_w / s_out), computed in double."""
    s_in = np.float64(graph.tensors[node.inputs[0]].quant.scale[0])
    s_w = graph.tensors[node.inputs[1]].quant.scale.astype(np.float64)
    s_out = np.float64(graph.tensors[node.outputs[0]].quant.scale[0])
    return quantize_multiplier(s_in * s_w / s_out)


KERNEL_PROFILES = ("builtin", "reference")


def rounding_of(node: Node, kernels: str) -> str:
    """The requantization rounding a kernel uses under a profile."""
    if node.op != "fully_connected":
        return "double"
    return "single" if kernels == "reference" else "ruy"


def finish(acc: np.ndarray, graph: Graph, node: Node, kernels: str) -> np.ndarray:
    """Accumulator (int64, channels last) -> int8 output: requantize, add zero point, clamp."""
    rounding = rounding_of(node, kernels)
    multiplier, shift = requantize_params(graph, node)
    out_q = graph.tensors[node.outputs[0]].quant
    lo, hi = activation_range(attr(node, "act"), out_q)
    return requantize(acc, multiplier, shift, rounding, out_q.zero_point[0], lo, hi)


def accumulate(graph: Graph, node: Node, x: np.ndarray) -> np.ndarray:
    """The int32 accumulator of a conv / depthwise / fully-connected node (bias included), as int64.

    Depthwise layers sum their integer products exactly in int64. Conv and fully-connected layers use
    float32 GEMMs when no partial sum can pass 2**24 (float32 then holds every one exactly; most
    pointwise layers), else float64 (exact to 2**53). Padding adds nothing: padded positions hold the
    real value 0, i.e. x - x_zp = 0."""
    x_zp = int(graph.tensors[node.inputs[0]].quant.zero_point[0])
    w = graph.const(node.inputs[1])
    bias = graph.const(node.inputs[2]).astype(np.int64) if len(node.inputs) > 2 else np.int64(0)
    if node.op == "depthwise_conv2d":
        acc = depthwise_nhwc(x.astype(np.int64) - x_zp, w, None, attr(node, "strides"), attr(node, "pads"),
                             attr(node, "dilations"), accumulator=np.int64)
    else:
        largest_input = max(int(x.max(initial=x_zp)) - x_zp, x_zp - int(x.min(initial=x_zp)))
        largest_sum = largest_input * int(np.abs(w.astype(np.int64)).sum(axis=tuple(range(1, w.ndim))).max())
        exact = np.float32 if largest_sum < 2 ** 24 else np.float64
        w, shifted = w.astype(exact), x.astype(exact)
        shifted -= x_zp
        if node.op == "fully_connected":
            acc = shifted.reshape(shifted.shape[0], -1) @ w.T
        else:
            acc = conv_nhwc(shifted, w, None, attr(node, "strides"), attr(node, "pads"), attr(node, "dilations"),
                            attr(node, "groups"))
        acc = acc.astype(np.int64)
    acc += bias
    return acc


def _layer(graph: Graph, node: Node, values: dict, kernels: str) -> np.ndarray:
    return finish(accumulate(graph, node, values[node.inputs[0]]), graph, node, kernels)


def _avg_pool(graph: Graph, node: Node, values: dict, kernels: str) -> np.ndarray:
    total, count = pool_sums(values[node.inputs[0]].astype(np.int64), attr(node, "kernel"), attr(node, "strides"),
                             attr(node, "pads"))
    half = count // 2
    # C++ integer division truncates toward zero: this rounds half away from zero.
    mean = np.where(total > 0, (total + half) // count, -((half - total) // count))
    lo, hi = activation_range(attr(node, "act"), graph.tensors[node.outputs[0]].quant)
    return np.clip(mean, lo, hi).astype(np.int8)


def _mean(graph: Graph, node: Node, values: dict, kernels: str) -> np.ndarray:
    """LiteRT's int8 MEAN with keep_dims=False (reference_ops::QuantizedMeanOrSum, which the built-in
    kernel runs too): the sum minus n * x_zp is requantized by QuantizeMultiplier(s_in / s_out) with
    1/n folded in: multiplier * 2**k // n and shift - k, k = floor(log2 n) (at most 32 and 31 + shift)."""
    x_q = graph.tensors[node.inputs[0]].quant
    out_q = graph.tensors[node.outputs[0]].quant
    axes = tuple(attr(node, "axes"))
    x = values[node.inputs[0]].astype(np.int64)
    count = int(np.prod([x.shape[a] for a in axes]))
    total = x.sum(axis=axes, keepdims=bool(attr(node, "keepdims"))) - int(x_q.zero_point[0]) * count
    multiplier, shift = quantize_multiplier(np.float64(x_q.scale[0]) / np.float64(out_q.scale[0]))
    k = min(count.bit_length() - 1, 32, 31 + int(shift[0]))
    multiplier = (multiplier << k) // count
    y = multiply_by_quantized_multiplier(total, multiplier, shift - k) + out_q.zero_point[0]
    return np.clip(y, out_q.qmin, out_q.qmax).astype(np.int8)


def _pad(graph: Graph, node: Node, values: dict, kernels: str) -> np.ndarray:
    zp = int(graph.tensors[node.outputs[0]].quant.zero_point[0])
    return np.pad(values[node.inputs[0]], [tuple(p) for p in attr(node, "pads")], constant_values=zp)


def _reshape(graph: Graph, node: Node, values: dict, kernels: str) -> np.ndarray:
    x = values[node.inputs[0]]
    shape = list(attr(node, "shape"))
    shape[0] = x.shape[0]
    return x.reshape(shape)


def _simd_blocks(x: np.ndarray) -> np.ndarray:
    """Which values of each sample an optimized kernel handles 8 at a time (the rest is its scalar tail)."""
    per_sample = int(np.prod(x.shape[1:]))
    return (np.arange(per_sample) < per_sample // 8 * 8).reshape(x.shape[1:])


def quantize_array(x: np.ndarray, q: QuantParams, kernels: str = "reference") -> np.ndarray:
    """QUANTIZE float -> int8 as the profile's kernel computes it (see the module doc), clamped."""
    x = np.asarray(x, np.float32)
    if kernels == "reference":
        y = round_half_away(x / np.float32(q.scale[0]))
    else:
        tail = round_half_away(x.astype(np.float64) / np.float64(q.scale[0]))
        y = np.where(_simd_blocks(x), np.rint(x * (np.float32(1) / np.float32(q.scale[0]))), tail)
    y = y.astype(np.int64) + q.zero_point[0]
    return np.clip(y, q.qmin, q.qmax).astype(q.dtype)


def _quantize(graph: Graph, node: Node, values: dict, kernels: str) -> np.ndarray:
    return quantize_array(values[node.inputs[0]], graph.tensors[node.outputs[0]].quant, kernels)


def dequantize_array(x: np.ndarray, q: QuantParams, kernels: str) -> np.ndarray:
    """DEQUANTIZE of a per-tensor int8 array [N, ...] as the profile's kernel computes it (see module doc)."""
    x = np.asarray(x, np.int64)
    exact = (np.float64(q.scale[0]) * (x - q.zero_point[0])).astype(np.float32)
    if kernels == "reference":
        return exact
    s = np.float32(q.scale[0])
    simd = x.astype(np.float32) * s + np.float32(-np.float32(q.zero_point[0]) * s)
    return np.where(_simd_blocks(x), simd, exact).astype(np.float32)


def _dequantize(graph: Graph, node: Node, values: dict, kernels: str) -> np.ndarray:
    src = graph.tensors[node.inputs[0]]
    if src.quant is None:  # fp16 weights
        return values[node.inputs[0]].astype(np.float32)
    return dequantize_array(values[node.inputs[0]], src.quant, kernels)


INT8_KERNELS = {
    "conv2d": _layer,
    "depthwise_conv2d": _layer,
    "fully_connected": _layer,
    "avg_pool2d": _avg_pool,
    "mean": _mean,
    "pad": _pad,
    "reshape": _reshape,
    "quantize": _quantize,
    "dequantize": _dequantize,
}


def is_quantized(graph: Graph, node: Node) -> bool:
    """A node runs in integer arithmetic when its output is int8 or it is a (de)quantize edge."""
    return node.op in ("quantize", "dequantize") or graph.tensors[node.outputs[0]].dtype == "int8"


def run(graph: Graph, x: np.ndarray, kernels: str = "builtin", on_tensor=None,
        fetch: list[str] | None = None) -> dict[str, np.ndarray]:
    """Run a quantized NHWC graph on its native input (float32, or int8 for int8 I/O)."""
    if kernels not in KERNEL_PROFILES:
        raise ValueError(f"kernels must be one of {KERNEL_PROFILES}, got {kernels!r}")
    values: dict[str, np.ndarray] = {k: t.data for k, t in graph.tensors.items() if t.is_const}
    values[graph.inputs[0]] = np.asarray(x)
    for node in graph.nodes:
        if is_quantized(graph, node):
            if node.op not in INT8_KERNELS:
                raise NotImplementedError(f"no int8 reference kernel for {node.op} (node {node.name})")
            out = INT8_KERNELS[node.op](graph, node, values, kernels)
        else:
            out = FLOAT_KERNELS[node.op](graph, node, values).astype(np.float32)
        values[node.outputs[0]] = out
        if on_tensor:
            on_tensor(node.outputs[0], out)
    wanted = fetch if fetch is not None else graph.outputs
    return {name: values[name] for name in wanted}


def run_quantize_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Quantize float input for a model with int8 input, as an app would."""
    return quantize_array(x, graph.tensors[graph.inputs[0]].quant)


def dequantize_output(graph: Graph, y: np.ndarray) -> np.ndarray:
    """int8 output -> float (as an app would, exactly); float output is returned as it is."""
    tensor = graph.tensors[graph.outputs[0]]
    if tensor.dtype != "int8":
        return np.asarray(y, np.float32)
    return dequantize_array(y, tensor.quant, "reference")
