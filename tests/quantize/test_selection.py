"""Recipe method "select": candidates judged on held-out calibration images, never on eval data."""

import numpy as np
import pytest

from quantize import Quantizer, Recipe
from quantize.selection import CANDIDATES, split
from toolkit.errors import CalibrationError


def test_select_keeps_the_candidate_best_on_held_out_calibration_images(digits_set):
    recipe = Recipe.load("default").replace(method="select", correction_images=32, adaround_iterations=100)
    calib = digits_set.calib[:64]
    result = Quantizer(recipe).quantize(digits_set.graph, calib)

    assert [s.name for s in result.selection] == list(CANDIDATES)
    chosen = [s for s in result.selection if s.chosen]
    assert len(chosen) == 1
    assert chosen[0].sqnr_db >= max(s.sqnr_db for s in result.selection) - 0.05
    assert result.recipe == recipe.replace(**chosen[0].fields)  # the result says what was chosen

    # The chosen candidate's held-out score is real: its quantization of the calibration part (candidates are
    # judged without AdaRound) scores it.
    fit, held = split(calib, recipe.select_holdout, 16)
    assert len(held) == 16 and len(fit) == 48
    candidate = Quantizer(result.recipe.replace(adaround=False))
    assert np.isclose(candidate.validate(candidate.quantize(digits_set.graph, fit), held)["sqnr_db"], chosen[0].sqnr_db)

    # The result is the chosen recipe's second pass on all the calibration images, AdaRound included.
    assert result.recipe.adaround and result.plan.round_up
    again = Quantizer(result.recipe).quantize(digits_set.graph, calib)
    for name, params in result.plan.activations.items():
        assert np.array_equal(params.scale, again.plan.activations[name].scale), name
        assert np.array_equal(params.zero_point, again.plan.activations[name].zero_point), name
    for name, bias in result.plan.biases.items():
        assert np.array_equal(bias, again.plan.biases[name]), name


def test_select_with_too_few_images_is_one_clear_error(digits_set):
    with pytest.raises(CalibrationError, match="method select holds out"):
        Quantizer(Recipe(method="select")).quantize(digits_set.graph, digits_set.calib[:20])
