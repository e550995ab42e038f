"""A QAT checkpoint's learnt ranges -> our int8 graph, with no calibration.

The ranges travel on the checkpoint's card (`extra["qat"]["activations"]`: [scale, zero point] per
quantized tensor, in graph order: the input, each conv / depthwise / fully-connected output). They
map one to one onto the lowered graph's input and layer outputs; a tensor with its own parameters
that QAT does not see (a MEAN output) takes its input's, as the int8 pool in training does.
"""

from __future__ import annotations

import numpy as np

from converters.ir import Graph, QuantParams
from quantize.params import WEIGHT_AXIS, weight_params
from quantize.plan import QuantPlan
from quantize.quantizer import QuantizationResult, Quantizer, float_classifier
from quantize.ranges import activation_tensors
from quantize.recipe import Recipe
from quantize.transform import check_quantizable, quantizable_layers, to_int8
from toolkit.errors import ConfigError

CARD_KEY = "qat"


def qat_ranges(card) -> list[tuple[float, int]] | None:
    """The learnt (scale, zero point) list on a model card, or None for a model without QAT."""
    qat = card.extra.get(CARD_KEY)
    return None if qat is None else [(float(s), int(z)) for s, z in qat["activations"]]


def qat_classifier(card) -> str:
    """The precision a QAT checkpoint's classifier trained in: int8, or float (`classifier: float`)."""
    return card.extra.get(CARD_KEY, {}).get("classifier", "int8")


def qat_plan(graph: Graph, activations: list[tuple[float, int]], io: str = "float",
             classifier: str = "int8") -> QuantPlan:
    """The QuantPlan of a lowered NHWC float graph with the learnt activation parameters (a float classifier
    has no output range)."""
    check_quantizable(graph)
    layers = quantizable_layers(graph)
    float_layers = float_classifier(graph, classifier)
    quantized = [n for n in layers if n.name not in float_layers]
    if len(activations) != len(quantized) + 1:
        raise ConfigError(f"the QAT card has {len(activations)} activation ranges but the graph needs "
                          f"{len(quantized) + 1} (its input and {len(quantized)} int8 layers)",
                          "convert the checkpoint the QAT run wrote, with its own card")
    tensors = [graph.inputs[0]] + [n.outputs[0] for n in quantized]
    params = {t: QuantParams(np.array([s], np.float32), np.array([z], np.int64))
              for t, (s, z) in zip(tensors, activations)}
    float_outputs = {n.outputs[0] for n in layers if n.name in float_layers}
    for tensor in activation_tensors(graph):
        if tensor in float_outputs:
            continue
        source = tensor
        while source not in params:
            source = graph.producer(source).inputs[0]
        params[tensor] = params[source]
    weights = {n.name: weight_params(graph.const(n.inputs[1]), WEIGHT_AXIS[n.op]) for n in quantized}
    return QuantPlan(activations=params, weights=weights, io=io, float_layers=float_layers)


def quantize_qat(graph: Graph, activations: list[tuple[float, int]], recipe: Recipe,
                 classifier: str = "int8") -> QuantizationResult:
    """Our int8 graph with QAT's ranges and weights (only the recipe's `io`, `kernels` and `global_pool` apply),
    the classifier in the precision QAT trained it in."""
    recipe = recipe.replace(classifier=classifier)  # refuses int8 I/O for a float classifier
    graph = Quantizer(recipe).prepare(graph)
    plan = qat_plan(graph, activations, recipe.io, classifier)
    qgraph = to_int8(graph, plan)
    input_q = qgraph.tensors[qgraph.inputs[0]].quant or plan.activations[graph.inputs[0]]
    io_dtype = "int8" if recipe.io == "int8" else "float32"
    qgraph.meta = {**graph.meta, "precision": "int8", "input_dtype": io_dtype, "output_dtype": io_dtype,
                   "input_quant": {"scale": float(input_q.scale[0]), "zero_point": int(input_q.zero_point[0])},
                   "quantization": {"recipe": recipe.to_dict(), "float_layers": list(plan.float_layers), "qat": True}}
    return QuantizationResult(qgraph, graph, plan, recipe)
