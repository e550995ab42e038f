"""Fold a BatchNormalization into the conv / depthwise conv / fully-connected layer before it."""

from __future__ import annotations

import numpy as np

from converters.ir import Graph, Node

FOLDABLE = ("conv2d", "depthwise_conv2d", "fully_connected")


def is_bn_foldable(graph: Graph, bn: Node) -> bool:
    """The BN reads the only output of a foldable layer with no fused activation, and nobody else reads it."""
    producer = graph.producer(bn.inputs[0])
    return (producer is not None and producer.op in FOLDABLE
            and producer.attrs.get("act", "none") == "none"
            and len(graph.consumers(bn.inputs[0])) == 1
            and bn.inputs[0] not in graph.outputs
            and all(graph.tensors[t].is_const for t in bn.inputs[1:]))


def fold_bn(graph: Graph) -> Graph:
    graph = graph.copy()
    for bn in [n for n in graph.nodes if n.op == "batch_norm"]:
        if not is_bn_foldable(graph, bn):
            continue
        layer = graph.producer(bn.inputs[0])
        gamma, beta, mean, var = (graph.const(t).astype(np.float64) for t in bn.inputs[1:])
        scale = gamma / np.sqrt(var + bn.attrs.get("epsilon", 1e-5))
        weight = graph.const(layer.inputs[1]).astype(np.float64)
        out_axis = 0
        if layer.op == "depthwise_conv2d" and graph.layout == "NHWC":
            out_axis = 3
        shape = [1] * weight.ndim
        shape[out_axis] = -1
        bias = graph.const(layer.inputs[2]).astype(np.float64) if len(layer.inputs) > 2 else np.zeros_like(scale)
        new_weight = graph.add_const(f"{layer.name}_weight_bn", (weight * scale.reshape(shape)).astype(np.float32))
        new_bias = graph.add_const(f"{layer.name}_bias_bn", ((bias - mean) * scale + beta).astype(np.float32))
        layer.inputs = [layer.inputs[0], new_weight.name, new_bias.name]
        # The layer now writes the BN's output tensor directly.
        graph.tensors[bn.outputs[0]].shape = graph.tensors[layer.outputs[0]].shape
        del graph.tensors[layer.outputs[0]]
        layer.outputs = [bn.outputs[0]]
        graph.remove_node(bn)
    return graph.prune().verify()
