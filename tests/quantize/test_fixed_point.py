"""The vectorised fixed-point arithmetic equals gemmlowp's scalar C++ definitions, transcribed literally."""

import numpy as np
import pytest

from quantize.fixed_point import (ROUNDINGS, multiply_by_quantized_multiplier, requantize, rounding_divide_by_pot,
                                  saturating_rounding_doubling_high_mul)

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


def _c_divide(a: int, b: int) -> int:
    """C++ integer division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def gemmlowp_high_mul(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _c_divide(ab + nudge, 1 << 31)


def gemmlowp_divide_by_pot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


@pytest.fixture(scope="module")
def values():
    edges = [INT32_MIN, INT32_MIN + 1, -(1 << 30) - 1, -(1 << 30), -3, -2, -1, 0, 1, 2, 3, 1 << 30, INT32_MAX]
    rng = np.random.default_rng(0)
    return np.array(edges + list(rng.integers(INT32_MIN, INT32_MAX, 3000)) + list(rng.integers(-4096, 4096, 1000)))


def test_high_mul_is_gemmlowps(values):
    rng = np.random.default_rng(1)
    for b in [INT32_MIN, INT32_MAX, 1 << 30, 1, -1, *rng.integers(1 << 30, INT32_MAX, 5)]:
        expected = [gemmlowp_high_mul(int(a), int(b)) for a in values]
        np.testing.assert_array_equal(saturating_rounding_doubling_high_mul(values, np.int64(b)), expected)


def test_divide_by_pot_is_gemmlowps(values):
    for exponent in (0, 1, 2, 5, 12, 30, 31):
        expected = [gemmlowp_divide_by_pot(int(x), exponent) for x in values]
        np.testing.assert_array_equal(rounding_divide_by_pot(values, exponent), expected)
    per_channel = np.arange(values.size) % 32
    expected = [gemmlowp_divide_by_pot(int(x), int(e)) for x, e in zip(values, per_channel)]
    np.testing.assert_array_equal(rounding_divide_by_pot(values, per_channel), expected)


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_fused_requantize_is_the_vectorised_arithmetic(values, rounding):
    """`requantize` (one numba pass) = clamp(multiply_by_quantized_multiplier + zero point) on every
    rounding, per-channel shifts of both signs, and the int32 extremes."""
    rng = np.random.default_rng(2)
    acc = np.resize(values, (values.size // 16, 16))
    if rounding != "single":  # TFLite shifts left only where the multiplier is below 1 / 2**31
        acc = np.clip(acc, -(1 << 20), 1 << 20)
    multiplier = rng.integers(1 << 30, INT32_MAX, 16)
    shift = rng.integers(-31 if rounding != "single" else -30, 12 if rounding != "single" else 1, 16)
    expected = np.clip(multiply_by_quantized_multiplier(acc, multiplier, shift, rounding) - 5, -128, 100)
    np.testing.assert_array_equal(requantize(acc, multiplier, shift, rounding, -5, -128, 100), expected)
