"""MindSpore fake quantization that mirrors our int8 scheme (quantize/params.py) in float32.

- activations: per-tensor asymmetric int8; scale = (hi - lo) / 255 over the range widened to
  contain 0, zero point = clip(round(-128 - lo / scale)); a ReLU / ReLU6 layer quantizes its output
  after the activation, so the fused clamp is the output range itself;
- weights: symmetric int8 in [-127, 127], scale = max |w| / 127 per output channel (per tensor where
  `quantize.params.WEIGHT_AXIS` says so);
- biases: int32 at scale s_in * s_w.

Layers compute on the integers themselves (int8 values in float32: their products and sums are
exact), then scale the int32 accumulator to the output grid, so the forward pass follows the
integer kernels up to the float32 rounding of that one multiplication. Rounding is half away from
zero, as TFLite's, and passes gradients straight through (STE). Ranges are learnt (LSQ: the gradient of the
quantization error reaches lo and hi, scaled by 1 / sqrt(numel * 127)) or follow an EMA of the batch
min / max. `quant_params` is what the converter writes, computed by the same float32 operations.
"""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore import dtype as mstype

from quantize.params import QMAX, QMIN, WEIGHT_MAX

RANGE_MODES = ("lsq", "ema")
MIN_RANGE = 1e-3  # a dead tensor still gets a usable scale (LiteRT refuses a fused ReLU6 that overflows)


def round_half_away(x):
    """std::round, as TFLite's requantization and average pool round."""
    return ops.sign(x) * ops.floor(ops.abs(x) + 0.5)


def round_ste(x):
    """round(x) forward, identity backward (the straight-through estimator)."""
    return x + ops.stop_gradient(round_half_away(x) - x)


def grad_scale(x, factor: float):
    """x forward, gradient multiplied by `factor` (LSQ's step-size gradient scale)."""
    return x * factor + ops.stop_gradient(x - x * factor)


def scale_zero_point(lo, hi):
    """(scale, zero point) of the range [lo, hi] as `quantize.params.activation_params` computes them."""
    lo = ops.minimum(lo, 0.0)
    hi = ops.maximum(ops.maximum(hi, 0.0), lo + MIN_RANGE)
    scale = (hi - lo) / float(QMAX - QMIN)
    zero_point = ops.clip(round_ste(QMIN - lo / scale), QMIN, QMAX)
    return scale, zero_point


def quantize_centred(x, scale, zero_point):
    """int8 value minus zero point (integers held in float32): the real value is this times scale."""
    return ops.clip(round_ste(x / scale) + zero_point, QMIN, QMAX) - zero_point


def requantize(acc, multiplier, rounding: str, real):
    """round(acc * multiplier) as TFLite's fixed-point requantization rounds it; backward, the gradient
    of `real` (the same value, built so that it differentiates as the layer's real output does).

    TFLite multiplies by the multiplier's significand (in [0.5, 1)) and rounds, then divides by the
    power of two and rounds again: half away from zero in its conv kernels ("double"), half up in ruy's
    fully-connected ("ruy", `quantize.fixed_point`). Values within 2^-shift of a tie end up on
    different sides, so the simulation follows suit. It runs in float64 (`multiplier` is float64): in float32,
    acc * multiplier of a large accumulator is a few hundredths off, and ties then fall the other way.
    """
    acc = ops.cast(acc, mstype.float64)
    power = ops.pow(2.0, ops.maximum(-(ops.floor(ops.log2(multiplier)) + 1), 0.0))
    high = round_half_away(acc * (multiplier * power))
    rounded = round_half_away(high / power) if rounding == "double" else ops.floor(high / power + 0.5)
    return real + ops.stop_gradient(ops.cast(rounded, real.dtype) - real)


def weight_scale(weight, per_channel: bool):
    """max |w| / 127 per output channel (axis 0 of a MindSpore weight) or per tensor; 1 where all zero."""
    magnitude = ops.abs(weight)
    peak = magnitude.reshape(weight.shape[0], -1).max(axis=1) if per_channel else magnitude.max().reshape(1)
    return ops.stop_gradient(ops.where(peak > 0, peak / float(WEIGHT_MAX), ops.ones_like(peak)))


def quantize_weight(weight, scale):
    """int8 weights (integers in float32), symmetric in [-127, 127]."""
    shape = (-1,) + (1,) * (weight.ndim - 1)
    s = scale.reshape(shape) if scale.shape[0] > 1 else scale.reshape(())
    return ops.clip(round_ste(weight / s), -WEIGHT_MAX, WEIGHT_MAX)


def quantize_bias(bias, input_scale, w_scale):
    """int32 bias (integers in float32) at scale s_in * s_w (the int32 limits are far beyond trained biases)."""
    return round_ste(bias / ops.stop_gradient(input_scale * w_scale))


class ActivationQuantizer(nn.Cell):
    """One activation tensor's int8 range: learnt (`lsq`) or an EMA of the batch min / max (`ema`).

    `nonnegative` tensors (after ReLU / ReLU6) keep lo at 0.
    """

    def __init__(self, name: str, mode: str = "lsq", nonnegative: bool = False, ema_decay: float = 0.99):
        super().__init__()
        if mode not in RANGE_MODES:
            raise ValueError(f"range mode must be one of {RANGE_MODES}, got {mode!r}")
        self.ema = mode == "ema"
        self.ema_decay = ema_decay
        self.nonnegative = nonnegative
        self.tensor = name
        self.lo = Parameter(Tensor(np.zeros(1, np.float32)), name=f"{name}.lo",
                            requires_grad=mode == "lsq" and not nonnegative)
        self.hi = Parameter(Tensor(np.full(1, 6.0, np.float32)), name=f"{name}.hi", requires_grad=mode == "lsq")

    def name_parameters(self) -> None:
        """Give lo / hi their tensor's name again (a parent cell renames them after its attribute path)."""
        self.lo.name, self.hi.name = f"{self.tensor}.lo", f"{self.tensor}.hi"

    def set_range(self, lo: float, hi: float) -> None:
        self.lo.set_data(Tensor(np.array([0.0 if self.nonnegative else min(lo, 0.0)], np.float32)))
        self.hi.set_data(Tensor(np.array([max(hi, MIN_RANGE)], np.float32)))

    def quant_params(self):
        """(scale, zero point) as float32 tensors of shape [1]."""
        return scale_zero_point(self.lo, self.hi)

    def training_params(self, x):
        """(scale, zero point) for the batch `x` (float32): EMA ranges first take in its min / max,
        learnt ones pass their gradient on, scaled by 1 / sqrt(numel * 127)."""
        if self.ema and self.training:
            lo = ops.stop_gradient(x.min().reshape(1)) if not self.nonnegative else self.lo
            hi = ops.stop_gradient(x.max().reshape(1))
            ops.assign(self.lo, self.ema_decay * self.lo + (1 - self.ema_decay) * ops.minimum(lo, 0.0))
            ops.assign(self.hi, self.ema_decay * self.hi + (1 - self.ema_decay) * hi)
        lo, hi = self.lo, self.hi
        if not self.ema:
            numel = 1
            for size in x.shape[1:]:
                numel *= size
            factor = (numel * QMAX) ** -0.5
            lo, hi = grad_scale(lo, factor), grad_scale(hi, factor)
        return scale_zero_point(lo, hi)

    def construct(self, x):
        """float x -> (int8 values minus zero point, scale, zero point)."""
        x = x.astype(mstype.float32)
        scale, zero_point = self.training_params(x)
        return quantize_centred(x, scale, zero_point), scale, zero_point
