"""Per-model recipe choice without eval data (recipe method "select").

The calibration images are split: the last `select_holdout` fraction is held out, the rest
calibrates. One calibration serves every candidate (they differ only in range method, bias
correction and the classifier's weight granularity, not in the float graph). Each candidate
quantizes the model on the calibration part, and the one whose int8 logits are closest to the
float logits on the held-out part (logits SQNR) is chosen; the result is the chosen recipe quantizing
the model again on all the calibration images (a second pass: the held-out images calibrate and
correct biases too). Inputs over 64x64 are scored on proportionally fewer held-out images (at least 16).
Ties within 0.05 dB go to the earlier candidate, the cheaper one. Candidates are judged without
AdaRound (it refines whichever ranges it is given, at 10x a candidate's time); the second pass uses
the recipe's `adaround`. What was chosen and why is reported per candidate (`--report`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantize.metrics import compare
from toolkit.errors import CalibrationError

SQNR_TIE_DB = 0.05
SCORE_PIXELS = 64 * 64  # inputs up to this size are scored on every held-out image, larger ones on fewer
CANDIDATES = {  # name -> recipe fields; every candidate keeps the base recipe's other fields
    "minmax +bc": {"method": "minmax", "bias_correction": True},
    "mse +bc": {"method": "mse", "bias_correction": True},
    "percentile +bc": {"method": "percentile", "bias_correction": True},
    "minmax +bc, fc per tensor": {"method": "minmax", "bias_correction": True, "fc_per_channel": False},
    "mse +bc, fc per tensor": {"method": "mse", "bias_correction": True, "fc_per_channel": False},
    "minmax": {"method": "minmax", "bias_correction": False},
    "mse": {"method": "mse", "bias_correction": False},
}


@dataclass(frozen=True)
class CandidateScore:
    name: str
    fields: dict
    sqnr_db: float          # held-out calibration images: int8 vs float logits
    top1_agreement: float
    chosen: bool = False


def split(images: np.ndarray, holdout: float, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    """(calibration part, held-out part); the held-out part has at least `minimum` images when possible."""
    count = max(int(round(len(images) * holdout)), min(minimum, len(images) // 2))
    return images[:len(images) - count], images[len(images) - count:]


def select(quantizer_for, graph, images: np.ndarray, holdout: float, minimum: int):
    """Quantize `graph` with every candidate; returns (best result, scores in candidate order).

    `quantizer_for(fields)` makes the Quantizer of a candidate; images are canonical NCHW.
    """
    fit, held = split(images, holdout, minimum)
    if len(fit) < minimum:
        raise CalibrationError(f"method select holds out {len(held)} of {len(images)} calibration images and keeps "
                               f"{len(fit)}; calibration needs at least {minimum}",
                               "pass more calibration images (200-500 is typical) or a smaller select_holdout")
    calibration = quantizer_for({}).calibrate(graph, fit)
    pixels = images.shape[2] * images.shape[3]
    held = held[:max(minimum, int(round(len(held) * min(1.0, SCORE_PIXELS / pixels))))]
    best, best_score, scores = None, -np.inf, []
    for name, fields in CANDIDATES.items():
        quantizer = quantizer_for({**fields, "adaround": False})
        result = quantizer.quantize(graph, fit, calibration)
        metrics = compare(quantizer.float_logits(result, held), quantizer.run(result, held))
        scores.append(CandidateScore(name, fields, metrics["sqnr_db"], metrics["top1_agreement"]))
        if metrics["sqnr_db"] > best_score + SQNR_TIE_DB:
            best, best_score = name, metrics["sqnr_db"]
    scores = [CandidateScore(s.name, s.fields, s.sqnr_db, s.top1_agreement, s.name == best) for s in scores]
    return quantizer_for(CANDIDATES[best]).quantize(graph, images), scores
