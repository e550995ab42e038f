"""Activation observers: a mergeable histogram per tensor and the range estimators that read it.

Estimators return a float range (lo, hi) with lo <= 0 <= hi, to be mapped onto int8 by
`quantize.params`:
- minmax:     the observed extremes;
- percentile: the p-th / (100-p)-th percentiles (default 99.99);
- mse:        the clipping range that minimises the expected quantization error's p-th power (p = 2,
              squared error, by default; a larger p weighs the rare large values a clip cuts more,
              as LAPQ's Lp-norm ranges do);
- kl:         the entropy (KL-divergence) threshold of TensorRT-style calibration.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np

LEVELS = 256  # int8
METHODS = ("minmax", "percentile", "mse", "kl")


class Histogram:
    """Counts over [-limit, limit] in BINS bins; `limit` doubles (pairs of bins merge) as data grows.

    Exact zeros (ReLU outputs) are counted apart: zero is always representable, so they carry no error.
    """

    BINS = 4096
    SAMPLES = 1 << 20

    def __init__(self):
        self.counts = np.zeros(self.BINS, np.int64)
        self.limit = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.zeros = 0

    def update(self, values: np.ndarray) -> None:
        """Add `values`: their extremes exactly; into the bins at most SAMPLES of them (a fixed random
        subset, uniform over positions and channels), which keeps the distribution at a fraction of
        the cost on large inputs (a 224x224 width-1.0 layer holds 25M values per batch of 32)."""
        x = np.ascontiguousarray(values, dtype=np.float32).ravel()
        lo, hi = float(x.min()), float(x.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError("activation holds NaN or Inf")
        self.min = min(self.min, lo)
        self.max = max(self.max, hi)
        peak = max(abs(lo), abs(hi))
        if peak == 0.0:
            self.zeros += min(x.size, self.SAMPLES)
            return
        if self.limit == 0.0:
            self.limit = float(2.0 ** np.ceil(np.log2(peak)))
        while peak > self.limit:
            merged = self.counts.reshape(-1, 2).sum(axis=1)
            self.counts = np.zeros(self.BINS, np.int64)
            self.counts[self.BINS // 4: 3 * self.BINS // 4] = merged
            self.limit *= 2
        self.zeros += _bin_nonzero(x, _sample_positions(x.size, self.SAMPLES), self.limit, self.counts)

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(-self.limit, self.limit, self.BINS + 1)

    @property
    def centers(self) -> np.ndarray:
        e = self.edges
        return (e[:-1] + e[1:]) / 2

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.zeros

    def to_dict(self) -> dict:
        return {"counts": self.counts, "limit": self.limit, "min": self.min, "max": self.max, "zeros": self.zeros}

    @classmethod
    def from_dict(cls, data: dict) -> "Histogram":
        h = cls()
        h.counts = np.asarray(data["counts"], np.int64)
        h.limit, h.min, h.max, h.zeros = (float(data["limit"]), float(data["min"]), float(data["max"]),
                                          int(data["zeros"]))
        return h


@functools.lru_cache(maxsize=16)
def _sample_positions(size: int, samples: int) -> np.ndarray:
    """The positions a histogram bins from a tensor of `size` values: all of them, or over `samples`
    a fixed random subset, sorted so that reading it streams through memory (counts ignore order)."""
    if size <= samples:
        return np.arange(size)
    return np.sort(np.random.default_rng(size).integers(0, size, samples))


@numba.njit(cache=True, nogil=True)
def _bin_nonzero(x, positions, limit, counts):
    """Count x[positions] into `counts` (bins over [-limit, limit]) except exact zeros; return how many were zero."""
    zeros = 0
    bins = counts.shape[0]
    per_unit = bins / (2 * limit)
    for k in positions:
        v = x[k]
        if v == 0:
            zeros += 1
        else:
            b = int(np.floor((np.float64(v) + limit) * per_unit))
            counts[min(max(b, 0), bins - 1)] += 1
    return zeros


def minmax(h: Histogram) -> tuple[float, float]:
    return min(h.min, 0.0), max(h.max, 0.0)


def percentile(h: Histogram, p: float = 99.99) -> tuple[float, float]:
    cdf = np.cumsum(h.counts) / max(h.counts.sum(), 1)
    e = h.edges
    lo = float(e[np.searchsorted(cdf, (100 - p) / 100)]) if h.min < 0 else 0.0
    hi = float(e[np.searchsorted(cdf, p / 100) + 1]) if h.max > 0 else 0.0
    return max(min(lo, 0.0), h.min if h.min < 0 else 0.0), min(max(hi, 0.0), max(h.max, 0.0))


def expected_errors(h: Histogram, lo: np.ndarray, hi: np.ndarray, norm: float = 2.0) -> np.ndarray:
    """Expected |x - q(x)|^norm, summed over the histogrammed data, for each int8 range [lo[i], hi[i]].

    Values inside a range round: they err uniformly within half a step s, E|u|^p = (s/2)^p / (p+1)
    (s^2/12 for p = 2; zeros are exact). Values outside clip to the edge.
    """
    lo, hi = np.asarray(lo, np.float64)[:, None], np.asarray(hi, np.float64)[:, None]
    scale = (hi[:, 0] - lo[:, 0]) / (LEVELS - 1)
    occupied = h.counts > 0  # empty bins add nothing
    c, counts = h.centers[occupied][None, :], h.counts[occupied][None, :]
    clipped = np.abs(np.where(c < lo, c - lo, np.where(c > hi, c - hi, 0.0)))
    inside = (c >= lo) & (c <= hi)
    return np.sum(counts * inside, axis=1) * (scale / 2) ** norm / (norm + 1) + np.sum(counts * clipped ** norm, axis=1)


def mse(h: Histogram, steps: int = 200, norm: float = 2.0) -> tuple[float, float]:
    """Shrink both ends of the min/max range together; keep the range with the least `expected_errors`
    (every shrink factor at once; the first of equal errors wins)."""
    lo0, hi0 = minmax(h)
    if lo0 == hi0:
        return float(lo0), float(hi0)
    alphas = np.linspace(1.0, 0.05, steps)
    best = int(np.argmin(expected_errors(h, lo0 * alphas, hi0 * alphas, norm)))
    return float(lo0 * alphas[best]), float(hi0 * alphas[best])


def _kl_threshold(hist: np.ndarray, edges: np.ndarray, levels: int, block: int = 64) -> float:
    """TensorRT entropy calibration on a one-sided histogram (bin 0 starts at 0).

    For each candidate threshold (a bin edge), P is the histogram up to it with the clipped tail
    added to its last bin, and Q the same bins merged into `levels` quantization levels and spread
    back evenly over their non-empty bins; the threshold with the smallest KL(P || Q) wins.
    Candidates are evaluated `block` at a time as rows of one array: bin j of candidate i (i bins)
    falls in level floor(((j + 1) * levels - 1) / i), the last level whose first bin is <= j.
    """
    nbins = hist.size
    counts = hist.astype(np.float64)
    tails = np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])  # tails[i] = counts[i:].sum()
    bins = np.arange(nbins)
    occupied = counts > 0
    best_t, best_kl = float(edges[-1]), np.inf
    for first in range(min(levels, nbins), nbins + 1, block):
        sizes = np.arange(first, min(first + block, nbins + 1))
        inside = bins[None, :] < sizes[:, None]
        level = np.where(inside, ((bins[None, :] + 1) * levels - 1) // sizes[:, None], 0)
        slot = level + levels * np.arange(len(sizes))[:, None]
        p = np.where(inside, counts[None, :], 0.0)
        p[np.arange(len(sizes)), sizes - 1] += tails[sizes]
        totals = np.bincount(slot.ravel(), np.where(inside, counts, 0.0).ravel(), len(sizes) * levels)
        nonempty = np.bincount(slot.ravel(), (inside & occupied).ravel().astype(np.float64), len(sizes) * levels)
        spread = np.where(nonempty > 0, totals / np.maximum(nonempty, 1), 0.0)
        q = np.where(inside & occupied, spread[slot], 0.0)
        p_sum, q_sum = p.sum(axis=1, keepdims=True), q.sum(axis=1, keepdims=True)
        valid = p > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            pn, qn = p / p_sum, q / np.where(q_sum > 0, q_sum, 1.0)
            terms = np.where(valid, pn * np.log(np.where(valid, pn, 1.0) / np.where(valid & (qn > 0), qn, 1.0)), 0.0)
        usable = valid.any(axis=1) & (q_sum[:, 0] > 0) & ~np.any(valid & (qn == 0), axis=1)
        divergence = np.where(usable, terms.sum(axis=1), np.inf)
        row = int(np.argmin(divergence))
        if divergence[row] < best_kl:
            best_kl, best_t = float(divergence[row]), float(edges[sizes[row]])
    return best_t


def kl(h: Histogram, bins: int = 2048) -> tuple[float, float]:
    """Entropy threshold on |x|, on at most `bins` one-sided bins (the histogram's own, folded)."""
    if h.limit == 0.0:  # only zeros seen (a dead tensor): nothing to clip
        return minmax(h)
    half = h.BINS // 2
    folded = h.counts[half:] + h.counts[:half][::-1]
    peak = max(abs(h.min), abs(h.max))
    used = max(int(np.ceil(peak / h.limit * half)), 1)
    folded = folded[:used]
    factor = max(int(np.ceil(used / bins)), 1)
    pad = (-len(folded)) % factor
    coarse = np.concatenate([folded, np.zeros(pad, np.int64)]).reshape(-1, factor).sum(axis=1)
    edges = np.arange(coarse.size + 1) * (h.limit / half) * factor
    signed = h.min < 0 and h.max > 0
    threshold = _kl_threshold(coarse, edges, LEVELS // 2 if signed else LEVELS - 1)
    lo0, hi0 = minmax(h)
    return max(lo0, -threshold), min(hi0, threshold)


ESTIMATORS = {"minmax": minmax, "percentile": percentile, "mse": mse, "kl": kl}


@dataclass(frozen=True)
class ObserverConfig:
    """Which estimator(s) to use; `auto` tries all of them per tensor (see quantize.auto_range)."""

    method: str = "auto"
    percentile: float = 99.99
    mse_norm: float = 2.0

    def estimate(self, h: Histogram, method: str | None = None) -> tuple[float, float]:
        method = method or self.method
        if method == "percentile":
            return percentile(h, self.percentile)
        if method == "mse":
            return mse(h, norm=self.mse_norm)
        return ESTIMATORS[method](h)
