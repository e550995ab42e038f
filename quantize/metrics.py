"""Metrics that tell quantizers apart: logits SQNR, KL of the softmax, top-1 agreement, top-k accuracy."""

from __future__ import annotations

import numpy as np


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """10 log10(sum f^2 / sum (f - q)^2) over the whole set; inf when identical."""
    f = np.asarray(reference, np.float64)
    noise = np.sum((f - np.asarray(test, np.float64)) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(f ** 2) / noise))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def mean_kl(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean KL(softmax(f) || softmax(q)) per image."""
    p = _softmax(np.asarray(reference, np.float64))
    q = _softmax(np.asarray(test, np.float64))
    return float(np.mean(np.sum(p * (np.log(p + 1e-30) - np.log(q + 1e-30)), axis=-1)))


def top1_agreement(reference: np.ndarray, test: np.ndarray) -> float:
    return float(np.mean(np.argmax(reference, -1) == np.argmax(test, -1)))


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    k = min(k, logits.shape[-1])
    top = np.argsort(-logits, axis=-1)[:, :k]
    return float(np.mean(np.any(top == np.asarray(labels)[:, None], axis=1)))


def compare(reference: np.ndarray, test: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """All metrics of `test` logits against `reference` logits (and labels when given)."""
    result = {"sqnr_db": sqnr_db(reference, test), "kl": mean_kl(reference, test),
              "top1_agreement": top1_agreement(reference, test)}
    if labels is not None:
        result.update({"top1": topk_accuracy(test, labels, 1), "top5": topk_accuracy(test, labels, 5),
                       "float_top1": topk_accuracy(reference, labels, 1)})
    return result
