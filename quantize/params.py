"""The TFLite int8 scheme: how float ranges and weights become quantization parameters.

- weights: symmetric int8 in [-127, 127], zero point 0; per output channel for conv2d (axis 0,
  [O,H,W,I]) and depthwise_conv2d (axis 3, [1,H,W,C]); fully_connected ([O,I]) per output channel
  (axis 0) or per tensor (one scale, recipe fc_per_channel=False);
- bias: int32, scale = input_scale * weight_scale, zero point 0;
- activations: asymmetric int8 per tensor, the range nudged so that 0.0 is exact;
- degenerate ranges are widened as the TFLite converter widens them (ExpandVerySmallRange in its
  quantization_utils.cc): a float range (activation, or a weight channel's min..max) no wider than
  NEAR_ZERO_RANGE = 1e-6 grows to contain [-5e-7, 5e-7]. A dead activation then gets the scale
  1e-6 / 255 (its ReLU6 bound, 6 / scale, still fits int32) and an all-zero weight channel the
  scale 5e-7 / 127, instead of scales that overflow or divide by zero;
- avg_pool2d, reshape and pad keep their input's parameters; softmax outputs 1/256, zero point -128.
"""

from __future__ import annotations

import numpy as np

from converters.ir import QuantParams

WEIGHT_AXIS = {"conv2d": 0, "depthwise_conv2d": 3, "fully_connected": 0}  # the output-channel axis
SHARES_INPUT_PARAMS = ("avg_pool2d", "reshape", "pad")
SOFTMAX_PARAMS = QuantParams(np.array([1.0 / 256]), np.array([-128]))
QMIN, QMAX = -128, 127
WEIGHT_MAX = 127


NEAR_ZERO_RANGE = 1e-6
SMALLEST_HALF_RANGE = NEAR_ZERO_RANGE / 2


def expand_small_range(lo: float, hi: float) -> tuple[float, float]:
    """The converter's minimum range: [lo, hi] no wider than 1e-6 grows to contain [-5e-7, 5e-7]."""
    if hi - lo > NEAR_ZERO_RANGE:
        return lo, hi
    return min(lo, -SMALLEST_HALF_RANGE), max(hi, SMALLEST_HALF_RANGE)


def activation_params(lo: float, hi: float) -> QuantParams:
    """Asymmetric int8 parameters for the float range [lo, hi] (widened to contain 0, and to 1e-6)."""
    lo, hi = expand_small_range(min(float(lo), 0.0), max(float(hi), 0.0))
    scale = np.float32((hi - lo) / (QMAX - QMIN))
    zero_point = int(np.clip(np.round(QMIN - lo / float(scale)), QMIN, QMAX))
    return QuantParams(np.array([scale]), np.array([zero_point]))


def weight_scales(weight: np.ndarray, axis: int | None) -> np.ndarray:
    """Symmetric scales: max |w| / 127, per channel along `axis` (or per tensor when None), at least
    5e-7 / 127 (a channel whose min..max is within 1e-6 gets the half range 5e-7, see above)."""
    if axis is None:
        peak = np.array([np.abs(weight).max()])
    else:
        peak = np.abs(np.moveaxis(weight, axis, 0).reshape(weight.shape[axis], -1)).max(axis=1)
    return (np.maximum(peak.astype(np.float64), SMALLEST_HALF_RANGE) / WEIGHT_MAX).astype(np.float32)


def weight_params(weight: np.ndarray, axis: int, per_channel: bool = True) -> QuantParams:
    """Symmetric params along `axis`, or one scale for the whole tensor (still tagged with `axis`)."""
    scales = weight_scales(weight, axis if per_channel else None)
    return QuantParams(scales, np.zeros(scales.size, np.int64), axis=axis)


def broadcast_scale(values: np.ndarray, ndim: int, axis: int | None) -> np.ndarray:
    """Per-channel values shaped to broadcast along `axis` of an ndim tensor (a scalar when per tensor)."""
    if axis is None or values.size == 1:
        return values.reshape(())
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


def quantize_weight(weight: np.ndarray, params: QuantParams, axis: int | None,
                    round_up: np.ndarray | None = None) -> np.ndarray:
    """int8 weights; `round_up` (bool, weight-shaped) overrides nearest rounding (AdaRound)."""
    scaled = weight / broadcast_scale(params.scale.astype(np.float64), weight.ndim, axis)
    q = np.floor(scaled) + round_up if round_up is not None else np.round(scaled)
    return np.clip(q, -WEIGHT_MAX, WEIGHT_MAX).astype(np.int8)


def dequantize_weight(q: np.ndarray, params: QuantParams, axis: int | None) -> np.ndarray:
    return (q.astype(np.float32) * broadcast_scale(params.scale, q.ndim, axis)).astype(np.float32)


BIAS_LIMIT = 2 ** 30  # |bias| in int32 units, with headroom for the accumulator it is added to


def fit_bias(weight: QuantParams, input_params: QuantParams, bias: np.ndarray) -> QuantParams:
    """Raise the weight scale of channels whose bias would not fit int32 at scale s_in * s_w.

    This happens in channels whose weights are (nearly) all zero but whose folded BN left a bias:
    their tiny weight scale makes the bias scale tiny too. Their weights stay (nearly) zero.
    """
    needed = np.abs(bias.astype(np.float64)) / (np.float64(input_params.scale[0]) * BIAS_LIMIT)
    if weight.scale.size == 1:  # per-tensor (fully connected): one scale serves every output
        needed = needed.max(keepdims=True)
    if np.all(weight.scale >= needed):
        return weight
    scale = np.maximum(weight.scale.astype(np.float64), needed).astype(np.float32)
    return QuantParams(scale, weight.zero_point, weight.axis)


def bias_params(input_params: QuantParams, weight: QuantParams) -> QuantParams:
    scale = (np.float64(input_params.scale[0]) * weight.scale.astype(np.float64)).astype(np.float32)
    return QuantParams(scale, np.zeros(scale.size, np.int64), axis=0)


def quantize_bias(bias: np.ndarray, params: QuantParams) -> np.ndarray:
    q = np.round(bias.astype(np.float64) / params.scale.astype(np.float64))
    return np.clip(q, -(2 ** 31) + 1, 2 ** 31 - 1).astype(np.int32)


def fake_quantize(x: np.ndarray, params: QuantParams) -> np.ndarray:
    """Quantize then dequantize a per-tensor activation (float simulation)."""
    s, zp = float(params.scale[0]), int(params.zero_point[0])
    return ((np.clip(np.round(x / s) + zp, QMIN, QMAX) - zp) * s).astype(np.float32)
