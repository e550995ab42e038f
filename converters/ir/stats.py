"""Model size from the graph IR: multiply-accumulates of one inference and parameter count.

MACs count the multiplications of conv2d, depthwise_conv2d and fully_connected (the convention of
the MobileNet paper: 569 M for MobileNetV1 1.0 at 224); element-wise ops, pools and activations are
not counted. Parameters are the elements of the constant tensors those ops (and unfolded batch_norm /
add) read.
"""

from __future__ import annotations

import numpy as np

from converters.ir.graph import Graph

_WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected")
_PARAMETERISED = _WEIGHTED + ("batch_norm", "add")


def _kernel_hw(graph: Graph, weight_shape: tuple[int, ...]) -> tuple[int, int]:
    return (weight_shape[2], weight_shape[3]) if graph.layout == "NCHW" else (weight_shape[1], weight_shape[2])


def node_macs(graph: Graph, node) -> int:
    """Multiply-accumulates of one node (0 for ops without weights)."""
    if node.op not in _WEIGHTED:
        return 0
    out = graph.tensors[node.outputs[0]].shape
    weight = graph.tensors[node.inputs[1]].shape
    outputs = int(np.prod(out))
    if node.op == "fully_connected":
        return outputs * int(weight[-1])
    kh, kw = _kernel_hw(graph, weight)
    if node.op == "depthwise_conv2d":
        return outputs * kh * kw
    in_per_group = weight[1] if graph.layout == "NCHW" else weight[3]
    return outputs * kh * kw * int(in_per_group)


def count_macs(graph: Graph) -> int:
    """Multiply-accumulates of one inference at the graph's input shape."""
    return sum(node_macs(graph, node) for node in graph.nodes)


def count_params(graph: Graph) -> int:
    """Elements of the constant tensors read by weighted ops (weights, biases, unfolded BN)."""
    seen: set[str] = set()
    for node in graph.nodes:
        if node.op in _PARAMETERISED:
            seen.update(t for t in node.inputs if t in graph.tensors and graph.tensors[t].is_const)
    return sum(int(graph.tensors[name].data.size) for name in seen)
