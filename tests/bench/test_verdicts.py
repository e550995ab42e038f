"""The bench's verdict against the anchors, on hand-made results: the rule the README's win/tie/loss counts rest on."""

from __future__ import annotations

import numpy as np
import pytest

from bench.model_set import GROUPS, MODELS, select_models
from bench.quant_vs_anchors import (FLOAT_CLASSIFIER_OURS, agreement_noise, best_anchor, delta_interval,
                                   is_float_classifier_anchor, summary)

IMAGES = {"clean": 359, "perturbed": 1077}


def split_row(sqnr_db: float, agreement: float = 1.0) -> dict:
    return {"top1": 0.95, "float_top1": 0.95, "top1_agreement": agreement, "sqnr_db": sqnr_db, "kl": 1e-4}


def result(methods: dict[str, tuple[float, float] | dict], model: str = "m") -> dict:
    """`methods`: name -> (clean SQNR, perturbed SQNR), or a full row (e.g. an error)."""
    rows = {name: value if isinstance(value, dict) else {"seconds": 1.0, "clean": split_row(value[0]),
                                                           "perturbed": split_row(value[1])}
            for name, value in methods.items()}
    return {"model": model, "eval_images": IMAGES, "methods": rows}


def verdicts_of(*results, errors=None) -> list[str]:
    verdicts, _ = summary(list(results), errors)
    return [v["verdict"] for v in verdicts]


def test_sqnr_margin_decides_win_tie_and_loss():
    assert verdicts_of(result({"ours (default)": (36.0, 30.0), "ort-minmax": (35.0, 30.05)})) == ["win", "tie"]
    assert verdicts_of(result({"ours (default)": (36.0, 30.0), "mslite-max_min": (36.2, 29.0)})) == ["LOSS", "win"]


def test_ours_is_judged_against_the_best_anchor_only():
    methods = {"ours (default)": (36.0, 33.0), "ours no act-eq": (40.0, 40.0), "ort-minmax": (30.0, 34.0),
               "litert-calibrator": (35.5, 31.0), "mslite-kl": {"error": "RuntimeError: conversion failed"}}
    verdicts, _ = summary([result(methods)])
    assert [(v["anchor"], v["verdict"]) for v in verdicts] == [("litert-calibrator", "win"), ("ort-minmax", "LOSS")]
    assert best_anchor(result(methods)["methods"], "clean")[0] == "litert-calibrator"


def test_each_format_is_judged_against_its_own_anchors():
    """The default (all int8) against the all-int8 anchors only; ours with the classifier in float against the
    anchors with theirs in float (a float classifier anchor beating our int8 default is not a loss)."""
    methods = result({"ours (default)": (36.0, 33.0), FLOAT_CLASSIFIER_OURS: (38.0, 34.0), "ort-minmax": (35.0, 32.0),
                      "ort-minmax float classifier": (37.5, 34.5)})
    default, _ = summary([methods])
    assert [(v["anchor"], v["verdict"]) for v in default] == [("ort-minmax", "win"), ("ort-minmax", "win")]
    floating, _ = summary([methods], None, FLOAT_CLASSIFIER_OURS, is_float_classifier_anchor)
    assert [(v["anchor"], v["verdict"]) for v in floating] == [("ort-minmax float classifier", "win"),
                                                               ("ort-minmax float classifier", "LOSS")]


def test_losing_agreement_beyond_its_noise_is_a_loss_even_with_better_sqnr():
    noisy = result({"ours (default)": (40.0, 40.0), "ort-minmax": (35.0, 35.0)})
    noisy["methods"]["ours (default)"]["clean"]["top1_agreement"] = 1 - 6 / 359  # 6 images lost, noise is 2 * sqrt(6)
    assert verdicts_of(noisy) == ["LOSS", "win"]
    within = result({"ours (default)": (40.0, 40.0), "ort-minmax": (35.0, 35.0)})
    within["methods"]["ours (default)"]["clean"]["top1_agreement"] = 1 - 2 / 359  # the 2 images always allowed
    assert verdicts_of(within) == ["win", "win"]


def test_agreement_noise_is_twice_the_poisson_deviation_with_a_floor_of_two_images():
    assert agreement_noise(split_row(0, 1.0), split_row(0, 1.0), 359) == 2
    assert agreement_noise(split_row(0, 1 - 8 / 1077), split_row(0, 1 - 8 / 1077), 1077) == pytest.approx(8.0)


def test_no_default_or_no_anchor_gives_no_verdict():
    assert verdicts_of(result({"ort-minmax": (35.0, 35.0)})) == []
    assert verdicts_of(result({"ours (default)": (35.0, 35.0), "ours minmax": (30.0, 30.0)})) == []


def test_delta_interval_is_the_paired_error_ratio_in_db():
    errors = np.random.default_rng(0).gamma(1.0, 1.0, size=359)
    assert delta_interval(errors, errors) == (0.0, 0.0)
    low, high = delta_interval(errors / 2, errors)
    assert low == pytest.approx(10 * np.log10(2)) and high == pytest.approx(10 * np.log10(2))
    one_outlier = errors.copy()
    one_outlier[0] = 1000 * errors.sum()  # one image dominates the anchor's error: the interval spans far
    low, high = delta_interval(errors, one_outlier)
    assert low < 1 < 20 < high


def test_summary_reports_the_interval_when_per_image_errors_are_given():
    errors = np.random.default_rng(1).gamma(1.0, 1.0, size=359)
    per_image = {"m": {"ours (default)/clean": errors / 2, "ort-minmax/clean": errors}}
    verdicts, _ = summary([result({"ours (default)": (38.0, 35.0), "ort-minmax": (35.0, 35.0)})], per_image)
    assert verdicts[0]["delta_ci95_db"] == pytest.approx((10 * np.log10(2),) * 2)
    assert verdicts[1]["delta_ci95_db"] is None


def test_model_set_spans_the_issue_and_keeps_its_groups_apart():
    assert len(MODELS) >= 12 and len({m.name for m in MODELS}) == len(MODELS)
    for group in GROUPS:
        models = select_models(group)
        assert {m.width for m in models} == {0.25, 0.5, 0.75, 1.0}
        assert {m.activation for m in models} == {"relu", "relu6"}
        assert any(m.label_smoothing for m in models) and not all(m.label_smoothing for m in models)
    seeds = [{m.seed for m in select_models(g)} for g in GROUPS]
    assert not seeds[0] & seeds[1]
    assert min(m.size for m in MODELS) == 32 and max(m.size for m in MODELS) == 96
    with pytest.raises(ValueError):
        select_models("held_out", names="not_a_model")
