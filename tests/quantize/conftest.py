"""Fixtures for the quantizer tests: the trained digits model lowered to the IR, with its data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from converters.ir import Graph


@dataclass(frozen=True)
class DigitsSet:
    graph: Graph              # the trained model, lowered to the NHWC float IR
    calib: np.ndarray         # 200 train images, canonical NCHW
    val: np.ndarray           # the whole val split, canonical NCHW
    val_labels: np.ndarray


def _split(card, split: str, limit: int | None):
    from toolkit.data import DatasetSpec
    from toolkit.validate import eval_batches

    images, labels = zip(*eval_batches(card, DatasetSpec("digits"), split, limit=limit))
    return np.concatenate(images), np.concatenate(labels)


@pytest.fixture(scope="session")
def digits_set(trained_digits) -> DigitsSet:
    from converters.onnx_import import import_onnx
    from converters.passes import lower_for_tflite

    card = trained_digits.card
    calib, _ = _split(card, "train", 200)
    val, labels = _split(card, "val", None)
    return DigitsSet(lower_for_tflite(import_onnx(trained_digits.onnx, card)), calib, val, labels)
