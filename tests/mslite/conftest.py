"""Fixtures for the MindSpore Lite tests: the real setup and the trained digits model with its data.

The zoo exports (`zoo_onnx`) and the trained model come from tests/conftest.py. MindSpore runs in
this (pytest) process to build and export the models; MindSpore Lite runs in worker child
processes, so the two never share a process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from toolkit.card import ModelCard


@pytest.fixture(scope="session")
def mslite_backend():
    """The default MindSpore Lite setup; on a fresh machine this runs the whole setup once."""
    from converters.mslite import ensure_mslite

    return ensure_mslite(quiet=True)


@dataclass(frozen=True)
class TrainedModel:
    onnx: Path
    card: ModelCard
    val_images: np.ndarray  # preprocessed NCHW float32
    val_labels: np.ndarray
    calib_images: np.ndarray  # from the train split


@pytest.fixture(scope="session")
def digits_model(trained_digits) -> TrainedModel:
    """The session's trained digits model (tests/conftest.py) with its val split and 64 calibration images.

    A trained model has the wide logit margins of real use, so int8 agreement with float is meaningful.
    """
    from toolkit.convert import eval_set
    from toolkit.data import DatasetSpec
    from toolkit.validate import eval_batches

    card = trained_digits.card
    val_images, val_labels = eval_set(card, DatasetSpec("digits"), 359)
    calib_images = next(eval_batches(card, DatasetSpec("digits"), "train", limit=64, batch_size=64))[0]
    return TrainedModel(trained_digits.onnx, card, val_images, val_labels, calib_images)
