"""Range estimators on data whose right answer is known."""

import numpy as np
import pytest

from quantize.observers import Histogram, expected_errors, kl, minmax, mse, percentile


def _hist(*arrays):
    h = Histogram()
    for a in arrays:
        h.update(a)
    return h


def test_histogram_grows_by_merging_bins_and_counts_zeros_apart():
    rng = np.random.RandomState(0)
    small, large = (rng.uniform(0.1, high, 10000).astype(np.float32) for high in (1.0, 37.0))
    h = _hist(small, np.zeros(500), large)
    assert h.limit == 64.0 and h.zeros == 500 and h.total == 20500
    # The merged histogram equals one built at the final range in one go, but for values that sit
    # within float rounding of a bin edge.
    direct = Histogram()
    direct.limit = 64.0
    direct.update(np.concatenate([small, large]))
    assert direct.counts.sum() == h.counts.sum()
    assert np.abs(direct.counts - h.counts).max() <= 1 and np.count_nonzero(direct.counts - h.counts) <= 4
    assert (h.min, h.max) == (0.0, float(large.max()))


def test_histogram_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        Histogram().update(np.array([1.0, np.nan]))


def test_minmax_is_the_extremes_with_zero():
    h = _hist(np.array([0.5, 2.0, 3.0]))
    assert minmax(h) == (0.0, 3.0)


def test_percentile_cuts_the_tail_of_a_heavy_tailed_tensor():
    x = np.random.RandomState(1).standard_t(2, 400000).astype(np.float32)
    lo, hi = percentile(_hist(x), 99.9)
    assert np.quantile(x, 0.0009) < lo < np.quantile(x, 0.0011)
    assert np.quantile(x, 0.9989) < hi < np.quantile(x, 0.9991)


def test_mse_range_minimises_the_true_quantization_error():
    x = np.random.RandomState(2).laplace(size=200000).astype(np.float32)
    h = _hist(x)
    lo, hi = mse(h)

    def true_error(lo, hi):
        scale = (hi - lo) / 255
        q = np.clip(np.round((x - lo) / scale), 0, 255) * scale + lo
        return np.mean((q - x) ** 2)

    lo0, hi0 = minmax(h)
    best = min(true_error(lo0 * a, hi0 * a) for a in np.linspace(0.3, 1.0, 71))
    assert true_error(lo, hi) <= 1.02 * best < true_error(lo0, hi0)
    # The histogram's estimate tracks the true error.
    assert expected_errors(h, [lo], [hi])[0] / x.size == pytest.approx(true_error(lo, hi), rel=0.1)


@pytest.mark.parametrize("norm", [3.0, 4.0])
def test_mse_norm_minimises_the_true_error_power_and_clips_less(norm):
    x = np.random.RandomState(4).laplace(size=200000).astype(np.float32)
    h = _hist(x)
    lo, hi = mse(h, norm=norm)

    def true_error(lo, hi):
        scale = (hi - lo) / 255
        q = np.clip(np.round((x - lo) / scale), 0, 255) * scale + lo
        return np.mean(np.abs(q - x) ** norm)

    lo0, hi0 = minmax(h)
    best = min(true_error(lo0 * a, hi0 * a) for a in np.linspace(0.2, 1.0, 81))
    assert true_error(lo, hi) <= 1.01 * best < 1.03 * best < true_error(lo0, hi0)
    lo2, hi2 = mse(h)
    assert hi2 < hi < hi0 and lo0 < lo < lo2


def test_kl_keeps_a_uniform_range_and_clips_outliers():
    rng = np.random.RandomState(3)
    uniform = rng.uniform(0, 6, 100000).astype(np.float32)
    assert kl(_hist(uniform))[1] > 5.8
    spiky = np.concatenate([rng.exponential(0.5, 100000), [40.0]]).astype(np.float32)
    assert kl(_hist(spiky))[1] < 10
