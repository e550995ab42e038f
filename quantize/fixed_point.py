"""TFLite's fixed-point requantization arithmetic, vectorised in NumPy, and fused in one numba pass.

`quantize_multiplier` follows tflite::QuantizeMultiplier (frexp, round to Q31, shift).
`multiply_by_quantized_multiplier` follows tflite::MultiplyByQuantizedMultiplier in its default
(double-rounding) build: gemmlowp's SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT.
`rounding="single"` gives the TFLITE_SINGLE_ROUNDING variant (one rounding of x * m >> (31 - shift)).
`rounding="ruy"` is what ruy's x86 kernels compute for LiteRT's optimized FULLY_CONNECTED: the same
doubling high multiply, then a right shift that rounds half up, (x + 2**(e-1)) >> e, instead of
half away from zero (measured on exact ties: -10.5006 -> -10, 91.4991 -> 92).
`requantize` computes the same, plus the output zero point and the clamp, in one pass over a layer's
accumulators (the NumPy form makes eight passes over int64 arrays).
"""

from __future__ import annotations

import numba
import numpy as np

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


def quantize_multiplier(real_multiplier) -> tuple[np.ndarray, np.ndarray]:
    """Real multipliers (float64) -> (Q31 significands int64, shifts int64), as tflite::QuantizeMultiplier."""
    real = np.atleast_1d(np.asarray(real_multiplier, dtype=np.float64))
    fraction, shift = np.frexp(real)
    # TfLiteRound is std::round: half away from zero.
    q = np.sign(fraction) * np.floor(np.abs(fraction) * (1 << 31) + 0.5)
    q = q.astype(np.int64)
    shift = shift.astype(np.int64)
    overflow = q == (1 << 31)
    q[overflow] //= 2
    shift[overflow] += 1
    tiny = shift < -31
    q[tiny] = 0
    shift[tiny] = 0
    q[real == 0] = 0
    shift[real == 0] = 0
    return q, shift


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp::SaturatingRoundingDoublingHighMul on int32 values held in int64 arrays.

    gemmlowp adds a nudge of 2**30 (1 - 2**30 for a negative product) and divides by 2**31, truncating
    toward zero; for both signs that is floor((a b + 2**30) / 2**31), one shift."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    result = a * b
    result += np.int64(1 << 30)
    result >>= 31
    if np.any(b == INT32_MIN):
        result = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, result)
    return result


def rounding_divide_by_pot(x: np.ndarray, exponent) -> np.ndarray:
    """gemmlowp::RoundingDivideByPOT: divide by 2**exponent, rounding half away from zero, i.e.
    floor((x + 2**(exponent-1) - [x < 0]) / 2**exponent) for exponent >= 1, x itself for 0."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    half = (np.int64(1) << exponent) >> 1
    nudged = x + half
    nudged -= (x < 0) & (exponent > 0)
    nudged >>= exponent
    return nudged


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier, shift, rounding: str = "double") -> np.ndarray:
    """Requantize int32 accumulators: x * multiplier * 2**(shift - 31), rounded as TFLite does.

    `multiplier` and `shift` broadcast against `x` (per-channel along the last axis).
    """
    x = np.asarray(x, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if rounding == "single":
        total_shift = 31 - shift
        return (x * multiplier + (np.int64(1) << (total_shift - 1))) >> total_shift
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    high = saturating_rounding_doubling_high_mul(x << left if np.any(left) else x, multiplier)
    if rounding == "ruy":
        return (high + ((np.int64(1) << right) >> 1)) >> right
    return rounding_divide_by_pot(high, right)


ROUNDINGS = ("double", "single", "ruy")


@numba.njit(cache=True, nogil=True)
def _requantize_rows(acc, multiplier, shift, rounding, zero_point, lo, hi, out):
    for r in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            x, m, s = acc[r, c], multiplier[c], shift[c]
            if rounding == 1:
                total_shift = 31 - s
                y = (x * m + (1 << (total_shift - 1))) >> total_shift
            else:
                right = -s if s < 0 else 0
                a = x << s if s > 0 else x
                high = INT32_MAX if a == INT32_MIN and m == INT32_MIN else (a * m + (1 << 30)) >> 31
                nudge = (1 << right) >> 1
                if rounding == 0 and high < 0 and right > 0:
                    nudge -= 1
                y = (high + nudge) >> right
            y += zero_point
            out[r, c] = lo if y < lo else (hi if y > hi else y)


def requantize(acc: np.ndarray, multiplier, shift, rounding: str, zero_point: int, lo: int, hi: int) -> np.ndarray:
    """int8 clamp(multiply_by_quantized_multiplier(acc, multiplier, shift, rounding) + zero_point, lo, hi),
    per channel along the last axis of `acc` (int64), in one pass."""
    channels = acc.shape[-1]
    rows = np.ascontiguousarray(acc, np.int64).reshape(-1, channels)
    out = np.empty(rows.shape, np.int8)
    _requantize_rows(rows, np.broadcast_to(np.asarray(multiplier, np.int64), (channels,)).copy(),
                     np.broadcast_to(np.asarray(shift, np.int64), (channels,)).copy(), ROUNDINGS.index(rounding),
                     int(zero_point), int(lo), int(hi), out)
    return out.reshape(acc.shape)
