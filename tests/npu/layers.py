"""Teacher-forced runs: one int8 layer of a graph alone, fed the reference executor's input to it."""

from __future__ import annotations

import numpy as np

from converters.ir import Graph, Node
from quantize import reference


def single_layer(graph: Graph, node: Node) -> Graph:
    """float in -> QUANTIZE (the layer's input params) -> the layer -> DEQUANTIZE -> float out."""
    sub = Graph(f"{graph.name}_{node.name}", graph.layout)
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    sub.add_tensor("input", x.shape)
    sub.add_tensor(x.name, x.shape, "int8", quant=x.quant)
    sub.add_node("quantize", "input_quantize", ["input"], [x.name])
    for name in node.inputs[1:]:
        t = graph.tensors[name]
        sub.add_tensor(name, t.shape, t.dtype, t.data, t.quant)
    sub.add_tensor(y.name, y.shape, "int8", quant=y.quant)
    sub.add_node(node.op, node.name, node.inputs, node.outputs, **node.attrs)
    sub.add_tensor("output", y.shape)
    sub.add_node("dequantize", "output_dequantize", [y.name], ["output"])
    sub.inputs, sub.outputs = ["input"], ["output"]
    return sub.verify()


def int8_layers(graph: Graph) -> list[Node]:
    return [n for n in graph.nodes if n.op not in ("quantize", "dequantize") and reference.is_quantized(graph, n)]


def reference_tensors(graph: Graph, x_nhwc: np.ndarray) -> dict[str, np.ndarray]:
    values: dict[str, np.ndarray] = {}
    reference.run(graph, x_nhwc, "builtin", on_tensor=values.__setitem__)
    values[graph.inputs[0]] = x_nhwc
    return values


def dequantized(graph: Graph, tensor: str, q: np.ndarray) -> np.ndarray:
    return reference.dequantize_array(q, graph.tensors[tensor].quant, "reference")


def lsb(graph: Graph, tensor: str, real: np.ndarray, q: np.ndarray) -> np.ndarray:
    """|difference| in steps of `tensor`'s int8 grid between a float result and int8 values."""
    quant = graph.tensors[tensor].quant
    steps = np.rint(np.asarray(real, np.float64) / np.float64(quant.scale[0])) + quant.zero_point[0]
    return np.abs(steps - q.astype(np.int64)).astype(np.int64)


def to_nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x


def from_nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def minmax_int8(graph: Graph, x_nhwc: np.ndarray) -> Graph:
    """Our int8 graph with min/max ranges from a few images and per-channel weights, without the
    calibrator (fast at 224; the plan's shape, not its quality, is what these tests check)."""
    from converters.ir.execute import run as run_float
    from quantize.params import SHARES_INPUT_PARAMS, WEIGHT_AXIS, activation_params, weight_params
    from quantize.plan import QuantPlan
    from quantize.transform import to_int8

    ranges: dict[str, np.ndarray] = {}
    run_float(graph, x_nhwc, on_tensor=ranges.__setitem__)
    producers = {n.outputs[0]: n for n in graph.nodes}
    activations = {name: activation_params(value.min(), value.max()) for name, value in ranges.items()
                   if name not in producers or producers[name].op not in SHARES_INPUT_PARAMS}
    weights = {n.name: weight_params(graph.const(n.inputs[1]), WEIGHT_AXIS[n.op]) for n in graph.nodes
               if n.op in WEIGHT_AXIS}
    return to_int8(graph, QuantPlan(activations, weights))
