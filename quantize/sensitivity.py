"""Per-layer sensitivity: each layer quantized alone, the rest of the model in float.

For every layer the report gives the SQNR of that layer's own output and of the model's logits,
both against the float model, and, with AdaRound, the share of its weights AdaRound rounded the
other way from nearest. The least robust layers are the ones to keep in float (`--fallback float`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from converters.ir import Graph
from converters.ir.execute import run as run_float
from quantize import reference
from quantize.metrics import sqnr_db
from quantize.params import WEIGHT_AXIS, quantize_weight
from quantize.plan import QuantPlan
from quantize.transform import quantizable_layers, to_int8


@dataclass(frozen=True)
class LayerSensitivity:
    layer: str
    op: str
    output_sqnr_db: float
    logits_sqnr_db: float
    adaround_flipped: float | None = None  # share of the weights rounded away from nearest (None: no AdaRound)


def flipped_share(graph: Graph, plan: QuantPlan, layer: str) -> float | None:
    """The share of `layer`'s int8 weights that AdaRound rounded the other way from nearest rounding."""
    if layer not in plan.round_up:
        return None
    node = graph.node(layer)
    weight, params, axis = graph.const(node.inputs[1]), plan.weights[layer], WEIGHT_AXIS[node.op]
    learnt = quantize_weight(weight, params, axis, plan.round_up[layer])
    return float(np.mean(learnt != quantize_weight(weight, params, axis)))


def layer_sensitivity(graph: Graph, plan: QuantPlan, images: np.ndarray, kernels: str = "builtin",
                      progress=None) -> list[LayerSensitivity]:
    layers = quantizable_layers(graph)
    names = [n.name for n in layers]
    fetch = [n.outputs[0] for n in layers]
    float_values = run_float(graph, images, fetch=fetch + graph.outputs)
    results = []
    for node in layers:
        alone = dataclasses.replace(plan, float_layers=tuple(n for n in names if n != node.name), io="float")
        mixed = to_int8(graph, alone)
        int8_out = mixed.node(node.name).outputs[0]
        values = reference.run(mixed, images, kernels, fetch=[mixed.outputs[0], int8_out])
        layer_out = reference.dequantize_array(values[int8_out], mixed.tensors[int8_out].quant, "reference")
        results.append(LayerSensitivity(
            node.name, node.op,
            sqnr_db(float_values[node.outputs[0]], layer_out),
            sqnr_db(float_values[graph.outputs[0]], values[mixed.outputs[0]]),
            flipped_share(graph, plan, node.name)))
        if progress:
            progress(1)
    return results


def most_sensitive(report: list[LayerSensitivity], k: int) -> tuple[str, ...]:
    """The k layers whose lone quantization hurts the logits most."""
    return tuple(r.layer for r in sorted(report, key=lambda r: r.logits_sqnr_db)[:k])
