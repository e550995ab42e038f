"""The quantizer facade: one class, one method per stage; the stages live in their own modules.

    quantizer = Quantizer(Recipe.load("default"))
    calibration = quantizer.calibrate(graph, images)       # quantize.calibrator
    result = quantizer.quantize(graph, images, calibration) # cle, ranges, adaround, bias_correction, transform
    metrics = quantizer.validate(result, images, labels)    # quantize.reference + quantize.metrics

`graph` is the lowered float NHWC graph (`converters.passes.lower_for_tflite`); images are the
canonical float NCHW batches of `toolkit.data` / `toolkit.preprocess`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from converters.ir import Graph
from converters.ir.execute import run as run_float
from converters.passes import global_pool_as_mean
from quantize import reference
from quantize.act_equalization import ActivationEqualizationReport, equalize_activations
from quantize.adaround import AdaRoundConfig, adaround
from quantize.bias_correction import correct_biases
from quantize.calibrator import MIN_CALIBRATION_IMAGES, CalibrationResult, calibrate, check_images
from quantize.cle import EqualizationReport, equalize
from quantize.metrics import compare
from quantize.observers import ObserverConfig
from quantize.params import WEIGHT_AXIS, activation_params, weight_params
from quantize.plan import QuantPlan
from quantize.ranges import RangeChoice, choose_ranges
from quantize.recipe import Recipe
from quantize.selection import CandidateScore, select
from quantize.sensitivity import LayerSensitivity, layer_sensitivity, most_sensitive
from quantize.transform import check_quantizable, quantizable_layers, to_int8

Progress = Callable[[str, int, int], None]  # (stage, advance, total)


@dataclass
class QuantizationResult:
    graph: Graph                  # the int8 graph, ready for a writer
    float_graph: Graph            # the float graph it was made from (after CLE)
    plan: QuantPlan
    recipe: Recipe
    ranges: dict[str, RangeChoice] = field(default_factory=dict)
    equalization: EqualizationReport | None = None
    act_equalization: ActivationEqualizationReport | None = None
    bias_correction: dict[str, tuple[float, float]] = field(default_factory=dict)
    sensitivity: list[LayerSensitivity] = field(default_factory=list)
    selection: list[CandidateScore] = field(default_factory=list)  # method "select": every candidate's score


SAMPLE_PIXELS = 64 * 64  # inputs up to this size use the recipe's image counts as they are


def sample(x: np.ndarray, count: int, floor: int) -> np.ndarray:
    """The first `count` images, fewer for inputs over 64x64: a 224x224 image holds 12x the pixels,
    so calibration histograms (at least 64 images), range search (8) and bias correction (32) need
    fewer images for the same number of values per statistic (at least `floor`)."""
    pixels = x.shape[1] * x.shape[2]
    return x[:max(min(floor, count), int(round(count * min(1.0, SAMPLE_PIXELS / pixels))))]


def to_nhwc(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(images, np.float32).transpose(0, 2, 3, 1))


def float_classifier(graph: Graph, classifier: str) -> tuple[str, ...]:
    """The classifier's name when its precision (a recipe's `classifier`) is float, else nothing."""
    return tuple(n.name for n in quantizable_layers(graph) if n.op == "fully_connected" and classifier == "float")


class Quantizer:
    def __init__(self, recipe: Recipe | None = None, progress: Progress | None = None):
        self.recipe = recipe or Recipe()
        self.progress = progress

    def _tick(self, stage: str, total: int):
        if self.progress is None:
            return None
        self.progress(stage, 0, total)
        return lambda n: self.progress(stage, n, total)

    def prepare(self, graph: Graph) -> Graph:
        """The float graph the int8 model is made from: the global pool as the recipe wants it."""
        check_quantizable(graph)
        return global_pool_as_mean(graph) if self.recipe.global_pool == "mean" else graph

    def calibrate(self, graph: Graph, images: np.ndarray, histograms: bool = True) -> CalibrationResult:
        """Histograms of every activation of `graph` over `images` (canonical NCHW), and per-channel maxima."""
        graph = self.prepare(graph)
        x = sample(check_images(graph, to_nhwc(images)), len(images), 64)
        return calibrate(graph, x, progress=self._tick("calibrate", len(x)), histograms=histograms)

    def quantize(self, graph: Graph, images: np.ndarray, calibration: CalibrationResult | None = None
                 ) -> QuantizationResult:
        recipe = self.recipe
        graph = self.prepare(graph)
        x = check_images(graph, to_nhwc(images))
        if recipe.method == "select":
            result, scores = select(lambda fields: Quantizer(recipe.replace(**fields), self.progress), graph, images,
                                    recipe.select_holdout, MIN_CALIBRATION_IMAGES)
            return dataclasses.replace(result, selection=scores)
        recalibrates = recipe.cle or recipe.act_equalization > 0  # the first pass only needs channel maxima
        calibration = calibration or self.calibrate(graph, images, histograms=not recalibrates)
        equalization = act_equalization = None
        if recipe.cle:
            graph, equalization = equalize(graph, calibration.preact_max)
            calibration = calibrate(graph, sample(x, len(x), 64), progress=self._tick("calibrate (after CLE)", len(x)),
                                    histograms=not recipe.act_equalization)
        if recipe.act_equalization:
            graph, act_equalization = equalize_activations(graph, calibration.preact_max, recipe.act_equalization)
            calibration = calibrate(graph, sample(x, len(x), 64),
                                    progress=self._tick("calibrate (after equalization)", len(x)))
        weights = {n.name: weight_params(graph.const(n.inputs[1]), WEIGHT_AXIS[n.op],
                                         per_channel=n.op != "fully_connected" or recipe.fc_per_channel)
                   for n in quantizable_layers(graph)}
        done = self._tick("ranges", 1)
        ranges = choose_ranges(graph, calibration, ObserverConfig(recipe.method, recipe.percentile, recipe.mse_norm),
                               sample(x, recipe.auto_samples, 8), weights,
                               None if recipe.logits_range == "method" else recipe.logits_range)
        if done:
            done(1)
        plan = QuantPlan(activations={t: activation_params(*c.range) for t, c in ranges.items()},
                         weights=weights, io=recipe.io, float_layers=float_classifier(graph, recipe.classifier))
        if recipe.adaround:
            plan.round_up = adaround(graph, plan, sample(x, recipe.correction_images, 32),
                                     AdaRoundConfig(iterations=recipe.adaround_iterations),
                                     progress=self._tick("adaround", len(quantizable_layers(graph))))
        corrections = {}
        if recipe.bias_correction:
            done = self._tick("bias correction", 1)
            biases, corrections = correct_biases(graph, plan, sample(x, recipe.correction_images, 32), recipe.kernels)
            plan = dataclasses.replace(plan, biases=biases)
            if done:
                done(1)
        sensitivity = []
        if recipe.fallback == "float" and recipe.fallback_layers > 0:
            sensitivity = layer_sensitivity(graph, plan, sample(x, recipe.correction_images, 32), recipe.kernels,
                                            progress=self._tick("sensitivity", len(quantizable_layers(graph))))
            fallback = most_sensitive(sensitivity, recipe.fallback_layers)
            plan = dataclasses.replace(plan, float_layers=tuple(dict.fromkeys(plan.float_layers + fallback)))
        qgraph = to_int8(graph, plan)
        input_q = qgraph.tensors[qgraph.inputs[0]].quant or plan.activations[graph.inputs[0]]
        qgraph.meta = {**graph.meta, "precision": "int8", "input_dtype": "int8" if recipe.io == "int8" else "float32",
                       "output_dtype": "int8" if recipe.io == "int8" else "float32",
                       "input_quant": {"scale": float(input_q.scale[0]), "zero_point": int(input_q.zero_point[0])},
                       "quantization": {"recipe": recipe.to_dict(), "float_layers": list(plan.float_layers)}}
        return QuantizationResult(qgraph, graph, plan, recipe, ranges, equalization, act_equalization, corrections,
                                  sensitivity)

    def sensitivity(self, result: QuantizationResult, images: np.ndarray) -> list[LayerSensitivity]:
        """Per-layer SQNR with only that layer quantized (for `--report`)."""
        x = to_nhwc(images)
        return layer_sensitivity(result.float_graph, result.plan, x, self.recipe.kernels,
                                 progress=self._tick("sensitivity", len(quantizable_layers(result.float_graph))))

    def run(self, result: QuantizationResult, images: np.ndarray) -> np.ndarray:
        """float logits of the int8 model on canonical NCHW images (the integer reference executor)."""
        x = to_nhwc(images)
        graph = result.graph
        if result.recipe.io == "int8":
            x = reference.run_quantize_input(graph, x)
        logits = reference.run(graph, x, self.recipe.kernels)[graph.outputs[0]]
        return reference.dequantize_output(graph, logits)

    def float_logits(self, result: QuantizationResult, images: np.ndarray) -> np.ndarray:
        """Logits of the float model the int8 model was made from, on canonical NCHW images."""
        return run_float(result.float_graph, to_nhwc(images))[result.float_graph.outputs[0]]

    def validate(self, result: QuantizationResult, images: np.ndarray, labels: np.ndarray | None = None) -> dict:
        """Float vs int8 logits on `images`: SQNR, KL, top-1 agreement (and accuracy with labels)."""
        return compare(self.float_logits(result, images), self.run(result, images), labels)
