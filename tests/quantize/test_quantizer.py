"""What the quantizer promises on a trained model: agreement with float, and that each technique
does what it claims."""

import dataclasses

import numpy as np
import pytest

from converters.ir.execute import run as run_float
from quantize import CalibrationResult, QuantPlan, Quantizer, Recipe, reference
from quantize.bias_correction import correct_biases
from quantize.calibrator import calibrate
from quantize.cle import channel_spread, cle_pairs, equalize
from quantize.metrics import sqnr_db
from quantize.quantizer import to_nhwc


@pytest.fixture(scope="module")
def default_result(digits_set):
    return Quantizer(Recipe.load("default")).quantize(digits_set.graph, digits_set.calib)


def test_default_recipe_agrees_with_float_but_on_a_few_images(digits_set, default_result):
    """Of the 359 val images at most 5 disagree with float and at most 5 fewer are right (the default: 4 and 4,
    without activation equalization 3 and 3, at the same SQNR): counts this small are Poisson noise of about
    2 images, as the bench's agreement rule says."""
    metrics = Quantizer(Recipe.load("default")).validate(default_result, digits_set.val, digits_set.val_labels)
    images = len(digits_set.val)
    assert round((1 - metrics["top1_agreement"]) * images) <= 5
    assert round((metrics["float_top1"] - metrics["top1"]) * images) <= 5
    assert metrics["sqnr_db"] > 30


def test_every_method_and_io_quantizes(digits_set):
    """KL is left out: entropy calibration clips these ReLU6 activations hard (bench/ reports by how much)."""
    for method in ("minmax", "percentile", "mse", "auto"):
        for io in ("float", "int8"):
            recipe = Recipe(method=method, io=io, cle=False, bias_correction=False, auto_samples=16)
            quantizer = Quantizer(recipe)
            result = quantizer.quantize(digits_set.graph, digits_set.calib)
            agreement = quantizer.validate(result, digits_set.val[:128])["top1_agreement"]
            assert agreement >= 0.98, (method, io, agreement)


def test_cle_equalizes_weight_ranges_and_keeps_the_function(digits_set):
    graph = digits_set.graph
    x = to_nhwc(digits_set.calib)
    calibration = calibrate(graph, x)
    equalized, report = equalize(graph, calibration.preact_max)
    pairs = cle_pairs(graph)
    assert report.pairs == len(pairs) == 26  # 13 x (conv -> depthwise, depthwise -> pointwise)
    # The spread (max/min) of per-output-channel weight ranges of the first layer of each pair.
    before = np.array([report.spread_before[first.name] for first, _ in pairs])
    after = np.array([report.spread_after[first.name] for first, _ in pairs])
    assert np.exp(np.mean(np.log(after / before))) < 0.75
    assert after.max() < before.max()
    # The ReLU6 guard keeps the function exact on the calibration data.
    logits = run_float(graph, x)[graph.outputs[0]]
    np.testing.assert_allclose(run_float(equalized, x)[equalized.outputs[0]], logits, atol=1e-4 * np.abs(logits).max())


def test_cle_without_the_relu6_guard_changes_the_function(digits_set):
    """The guard matters: treating every ReLU6 as never clipping changes the outputs."""
    graph = digits_set.graph
    x = to_nhwc(digits_set.calib)
    calibration = calibrate(graph, x)
    unguarded = {name: np.zeros_like(peak) for name, peak in calibration.preact_max.items()}
    equalized, _ = equalize(graph, unguarded)
    before = run_float(graph, x)[graph.outputs[0]]
    after = run_float(equalized, x)[equalized.outputs[0]]
    assert np.abs(after - before).max() > 1e-2 * np.abs(before).max()


def test_bias_correction_reduces_the_mean_output_error(digits_set):
    recipe = Recipe(method="minmax", cle=False, bias_correction=False)
    result = Quantizer(recipe).quantize(digits_set.graph, digits_set.calib)
    x = to_nhwc(digits_set.calib)
    _, report = correct_biases(result.float_graph, result.plan, x[:64])
    before = np.array([b for b, _ in report.values()])
    after = np.array([a for _, a in report.values()])
    assert np.all(after <= before + 1e-9) and after.sum() < 0.5 * before.sum()
    corrected = Quantizer(recipe.replace(bias_correction=True)).quantize(digits_set.graph, digits_set.calib)
    plain = Quantizer(recipe).validate(result, digits_set.val)["sqnr_db"]
    better = Quantizer(recipe).validate(corrected, digits_set.val)["sqnr_db"]
    assert better > plain


def test_adaround_lowers_the_layer_output_error_on_held_out_images(digits_set):
    """Fitted on calibration patches, judged on val patches: learnt rounding beats nearest on every kind of layer."""
    from quantize.adaround import AdaRoundConfig, layer_arrays, layer_output_range, layer_patches
    from quantize.adaround import reconstruction_error, round_layer

    result = Quantizer(Recipe(method="minmax", cle=False, bias_correction=False)).quantize(digits_set.graph,
                                                                                          digits_set.calib)
    graph, plan = result.float_graph, result.plan
    config = AdaRoundConfig(iterations=300)
    fit = layer_patches(graph, plan, to_nhwc(digits_set.calib), config)
    held_out = layer_patches(graph, plan, to_nhwc(digits_set.val[:200]), dataclasses.replace(config, seed=1))
    convs = [n for n in graph.nodes if n.op == "conv2d"]
    stem, pointwise = convs[0], convs[-1]
    depthwise = next(n for n in graph.nodes if n.op == "depthwise_conv2d")
    classifier = next(n for n in graph.nodes if n.op == "fully_connected")
    for node in (stem, depthwise, pointwise, classifier):
        weight, bias, params = layer_arrays(graph, plan, node)
        span = layer_output_range(plan, node)
        round_up = round_layer(node, weight, bias, params, fit[node.name], span, config)
        nearest = reconstruction_error(node, weight, bias, params, held_out[node.name], span, None)
        learnt = reconstruction_error(node, weight, bias, params, held_out[node.name], span, round_up)
        assert learnt < 0.9 * nearest, node.name


def test_adaround_from_several_threads_matches_one_at_a_time(digits_set):
    """AdaRound's kernels share one thread pool, which aborts the process on concurrent launches: threads
    quantizing at once must wait their turn and get what one thread gets."""
    import threading

    from quantize.adaround import AdaRoundConfig, layer_arrays, layer_output_range, layer_patches, round_layer

    result = Quantizer(Recipe(method="minmax", cle=False, bias_correction=False)).quantize(digits_set.graph,
                                                                                          digits_set.calib[:64])
    graph, plan, config = result.float_graph, result.plan, AdaRoundConfig(iterations=30)
    patches = layer_patches(graph, plan, to_nhwc(digits_set.calib[:64]), config)
    layers = [n for n in graph.nodes if n.name in plan.weights][:4]

    def rounding() -> list[np.ndarray]:
        return [round_layer(n, *layer_arrays(graph, plan, n), patches[n.name], layer_output_range(plan, n), config)
                for n in layers]

    alone = rounding()
    together = {}
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, rounding())) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(3):
        for expected, got in zip(alone, together[i]):
            np.testing.assert_array_equal(got, expected)


def test_adaround_rounding_reaches_the_int8_weights(digits_set):
    from quantize.params import WEIGHT_AXIS

    recipe = Recipe(method="minmax", cle=False, bias_correction=False, adaround=True, adaround_iterations=20)
    result = Quantizer(recipe).quantize(digits_set.graph, digits_set.calib[:64])
    assert set(result.plan.round_up) == {n.name for n in result.float_graph.nodes if n.op in WEIGHT_AXIS}
    node = next(n for n in result.float_graph.nodes if n.op == "conv2d")
    weight = result.float_graph.const(node.inputs[1])
    scale = result.plan.weights[node.name].scale.reshape(-1, 1, 1, 1).astype(np.float64)
    expected = np.clip(np.floor(weight / scale) + result.plan.round_up[node.name], -127, 127)
    np.testing.assert_array_equal(result.graph.const(result.graph.node(node.name).inputs[1]), expected)


def test_fallback_keeps_the_most_sensitive_layers_in_float(digits_set):
    recipe = Recipe(method="mse", cle=False, bias_correction=False, fallback="float", fallback_layers=2)
    quantizer = Quantizer(recipe)
    result = quantizer.quantize(digits_set.graph, digits_set.calib)
    worst = sorted(result.sensitivity, key=lambda r: r.logits_sqnr_db)[:2]
    assert set(result.plan.float_layers) == {r.layer for r in worst}
    for name in result.plan.float_layers:
        node = result.graph.node(name)
        assert result.graph.tensors[node.outputs[0]].dtype == "float32"
        assert result.graph.tensors[node.inputs[1]].dtype == "float32"
    all_int8 = Quantizer(recipe.replace(fallback="none")).quantize(digits_set.graph, digits_set.calib)
    assert (quantizer.validate(result, digits_set.val)["sqnr_db"]
            > quantizer.validate(all_int8, digits_set.val)["sqnr_db"])


def test_sensitivity_report_covers_every_layer(digits_set, default_result):
    report = Quantizer(Recipe.load("default")).sensitivity(default_result, digits_set.calib[:32])
    assert [r.layer for r in report] == [n.name for n in default_result.float_graph.nodes
                                         if n.op in ("conv2d", "depthwise_conv2d", "fully_connected")]
    assert all(np.isfinite(r.logits_sqnr_db) and r.logits_sqnr_db > 20 for r in report)
    # AdaRound (in the default) rounds some weights of nearly every layer away from nearest, never most of them (a
    # depthwise layer on a 1x1 map may keep nearest: only its centre tap sees data).
    flipped = np.array([r.adaround_flipped for r in report])
    assert np.all((flipped >= 0) & (flipped < 0.5)) and np.mean(flipped > 0) > 0.9, flipped


def test_plan_and_calibration_round_trip(tmp_path, digits_set, default_result):
    default_result.plan.save(tmp_path / "plan.npz")
    plan = QuantPlan.load(tmp_path / "plan.npz")
    from quantize import to_int8

    again = to_int8(default_result.float_graph, plan)
    x = to_nhwc(digits_set.val[:16])
    np.testing.assert_array_equal(reference.run(again, x)[again.outputs[0]],
                                  reference.run(default_result.graph, x)[default_result.graph.outputs[0]])
    calibration = calibrate(digits_set.graph, to_nhwc(digits_set.calib[:32]))
    calibration.save(tmp_path / "calib.npz")
    loaded = CalibrationResult.load(tmp_path / "calib.npz")
    assert loaded.count == 32 and set(loaded.histograms) == set(calibration.histograms)
    name = next(iter(calibration.histograms))
    np.testing.assert_array_equal(loaded.histograms[name].counts, calibration.histograms[name].counts)


def test_int8_output_matches_float_within_its_own_quantization(digits_set, default_result):
    """The logits differ from float by a few output LSB, not by the signal."""
    quantizer = Quantizer(Recipe.load("default"))
    q = quantizer.run(default_result, digits_set.val)
    f = run_float(default_result.float_graph, to_nhwc(digits_set.val))[default_result.float_graph.outputs[0]]
    assert sqnr_db(f, q) > 25
    scale = default_result.plan.activations[default_result.float_graph.outputs[0]].scale[0]
    assert np.median(np.abs(q - f)) < 3 * scale


def test_recipe_fields_are_validated():
    from toolkit.errors import ConfigError

    with pytest.raises(ConfigError, match="method='fancy'"):
        Recipe(method="fancy")
    with pytest.raises(ConfigError, match="unknown recipe keys"):
        Recipe.from_dict({"methd": "mse"})
    with pytest.raises(ConfigError, match="adaround_iterations must be >= 1"):
        Recipe(adaround_iterations=0)
    with pytest.raises(ConfigError, match="no recipe 'nope'"):
        Recipe.load("nope")
    assert dataclasses.asdict(Recipe.load("minmax_baseline"))["method"] == "minmax"


def test_logits_range_minmax_never_clips_the_calibration_logits(digits_set):
    from quantize.ranges import activation_tensors

    base = Recipe(method="mse", cle=False, bias_correction=False)
    calibration = Quantizer(base).calibrate(digits_set.graph, digits_set.calib)
    kept = Quantizer(base.replace(logits_range="minmax")).quantize(digits_set.graph, digits_set.calib, calibration)
    clipped = Quantizer(base).quantize(digits_set.graph, digits_set.calib, calibration)
    logits = activation_tensors(kept.float_graph)[-1]
    assert kept.ranges[logits].method == "minmax" and clipped.ranges[logits].method == "mse"
    inner = [t for t in kept.ranges if t not in (logits, kept.float_graph.inputs[0])]
    assert all(kept.ranges[t] == clipped.ranges[t] for t in inner)  # only the logits change

    values = run_float(kept.float_graph, to_nhwc(digits_set.calib))[logits]
    params = kept.plan.activations[logits]
    scale, zero = float(params.scale[0]), int(params.zero_point[0])
    assert (-128 - zero) * scale <= values.min() + scale / 2 and values.max() - scale / 2 <= (127 - zero) * scale
    from toolkit.errors import ConfigError

    with pytest.raises(ConfigError, match="logits_range='middle'"):
        Recipe(logits_range="middle")


def test_mse_norm_widens_the_ranges_mse_clips(digits_set):
    base = Recipe(method="mse", cle=False, bias_correction=False)
    calibration = Quantizer(base).calibrate(digits_set.graph, digits_set.calib)
    squared = Quantizer(base).quantize(digits_set.graph, digits_set.calib, calibration)
    fourth = Quantizer(base.replace(mse_norm=4.0)).quantize(digits_set.graph, digits_set.calib, calibration)
    inner = [t for t in squared.ranges if t != squared.float_graph.inputs[0]]
    widths = {t: [r.ranges[t].range[1] - r.ranges[t].range[0] for r in (squared, fourth)] for t in inner}
    assert all(w2 <= w4 for w2, w4 in widths.values())
    assert sum(w2 < w4 for w2, w4 in widths.values()) >= len(inner) // 2
    assert all(fourth.ranges[t].range[1] <= calibration.histograms[t].max for t in inner)
    from toolkit.errors import ConfigError

    with pytest.raises(ConfigError, match="mse_norm=0.5"):
        Recipe(mse_norm=0.5)
