"""Activation ranges: one estimator for every tensor, or `auto`, which picks per tensor.

`auto` walks the activation tensors in graph order on a sample of calibration images. The model
runs as the int8 model would, in float (int8 weights, int32 biases at scale s_in * s_w, every
tensor already decided fake-quantized); for
the current tensor each estimator's range is tried in turn, the rest of the network runs in
float, and the range whose logits are closest (mean squared error) to the float model's wins and
is kept. A range is judged by what it does to the model's output, not by the tensor's own error,
which rewards clipping that hurts deeper layers.

With a fixed method, the model input still keeps its observed min/max: its range is set by the
preprocessing, and what a histogram method would clip there (the bright strokes of a digit, the
highlights of a photo) is image content every later layer needs. The logits may keep theirs too
(`logits_method="minmax"`): their extremes are the top class's score, the one value a classifier's
answer depends on, which a squared-error criterion over all logits clips as readily as any other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from converters.ir import Graph, Node
from converters.ir.execute import KERNELS
from converters.ir.execute import run as run_float
from quantize.calibrator import CalibrationResult
from quantize.observers import METHODS, ObserverConfig
from quantize.params import (
    SHARES_INPUT_PARAMS, WEIGHT_AXIS, activation_params, bias_params, dequantize_weight, fake_quantize, quantize_bias,
    quantize_weight,
)

Range = tuple[float, float]


@dataclass(frozen=True)
class RangeChoice:
    tensor: str
    method: str
    range: Range
    errors: dict  # method -> logits MSE when this tensor uses that method's range (auto only)


def activation_tensors(graph: Graph) -> list[str]:
    """Tensors that need their own range: the input and every node output not tied to its input's params."""
    names = [graph.inputs[0]]
    for node in graph.nodes:
        if node.op not in SHARES_INPUT_PARAMS and node.op != "softmax":
            names.append(node.outputs[0])
    return names


def with_quantized_weights(graph: Graph, weight_params: dict) -> Graph:
    """A copy of `graph` whose layer weights are their int8 values, dequantized (float simulation)."""
    graph = graph.copy()
    for node in graph.nodes:
        if node.op in WEIGHT_AXIS and node.name in weight_params:
            axis, params = WEIGHT_AXIS[node.op], weight_params[node.name]
            q = quantize_weight(graph.const(node.inputs[1]), params, axis)
            graph.tensors[node.inputs[1]].data = dequantize_weight(q, params, axis)
    return graph


def _quantized_bias(graph: Graph, node: Node, input_params, weight_params) -> np.ndarray:
    """The bias as int32 at scale s_in * s_w represents it (it limits layers with very large weights)."""
    b_params = bias_params(input_params, weight_params)
    return (quantize_bias(graph.const(node.inputs[2]), b_params) * b_params.scale.astype(np.float64)).astype(np.float32)


def _run_nodes(graph: Graph, nodes: list[Node], values: dict, shared: dict, weight_params: dict) -> dict:
    """Run `nodes` on a copy of `values` as the int8 model would, in float: biases at their int32 precision,
    and pass-through outputs of a fake-quantized tensor fake-quantized the same way."""
    values = dict(values)
    for node in nodes:
        inputs = values
        if node.op in WEIGHT_AXIS and node.inputs[0] in shared and node.name in weight_params:
            inputs = {**values, node.inputs[2]: _quantized_bias(graph, node, shared[node.inputs[0]],
                                                                weight_params[node.name])}
        out = KERNELS[node.op](graph, node, inputs)
        if node.op in SHARES_INPUT_PARAMS and node.inputs[0] in shared:
            shared[node.outputs[0]] = shared[node.inputs[0]]
            out = fake_quantize(out, shared[node.inputs[0]])
        values[node.outputs[0]] = out
    return values


def _int8_grid(rng: Range) -> tuple[float, int]:
    params = activation_params(*rng)
    return float(params.scale[0]), int(params.zero_point[0])


def _auto(graph: Graph, calibration: CalibrationResult, config: ObserverConfig, images: np.ndarray,
          weight_params: dict) -> dict[str, RangeChoice]:
    sim = with_quantized_weights(graph, weight_params)
    target = run_float(graph, images)[graph.outputs[0]]
    values = {k: t.data for k, t in sim.tensors.items() if t.is_const}
    values[sim.inputs[0]] = images
    producer_index = {n.outputs[0]: i for i, n in enumerate(sim.nodes)}
    shared: dict = {}
    choices: dict[str, RangeChoice] = {}
    done = 0  # nodes of `sim` already run into `values`
    for tensor in activation_tensors(sim):
        upto = producer_index.get(tensor, -1) + 1
        values = _run_nodes(sim, sim.nodes[done:upto], values, shared, weight_params)
        done = upto
        hist = calibration.histograms[tensor]
        candidates = {m: config.estimate(hist, m) for m in METHODS}
        errors = {}
        for method, rng in candidates.items():
            same = next((m for m in errors if _int8_grid(candidates[m]) == _int8_grid(rng)), None)
            if same is not None:  # the same int8 parameters as a range already tried
                errors[method] = errors[same]
                continue
            trial = dict(values)
            params = activation_params(*rng)
            trial[tensor] = fake_quantize(values[tensor], params)
            logits = _run_nodes(sim, sim.nodes[done:], trial, {**shared, tensor: params}, weight_params)[sim.outputs[0]]
            errors[method] = float(np.mean((logits - target) ** 2))
        best = min(errors, key=lambda m: (errors[m], METHODS.index(m)))
        choices[tensor] = RangeChoice(tensor, best, candidates[best], errors)
        shared[tensor] = activation_params(*candidates[best])
        values[tensor] = fake_quantize(values[tensor], shared[tensor])
    return choices


def choose_ranges(graph: Graph, calibration: CalibrationResult, config: ObserverConfig,
                  images: np.ndarray | None = None, weight_params: dict | None = None,
                  logits_method: str | None = None) -> dict[str, RangeChoice]:
    """A range for every activation tensor. `auto` needs sample `images` (NHWC) and the `weight_params`.
    With a fixed method, `logits_method` overrides it for the last tensor (the logits)."""
    if config.method == "auto":
        return _auto(graph, calibration, config, images, weight_params)
    tensors = activation_tensors(graph)
    methods = {t: config.method for t in tensors}
    methods[graph.inputs[0]] = "minmax"
    methods[tensors[-1]] = logits_method or config.method
    return {t: RangeChoice(t, methods[t], config.estimate(calibration.histograms[t], methods[t]), {}) for t in tensors}
