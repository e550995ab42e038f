"""Fold a constant Add after a conv or fully-connected layer into the layer's bias (MatMul + Add -> FC)."""

from __future__ import annotations

import numpy as np

from converters.ir import Graph, Node

TARGETS = ("conv2d", "depthwise_conv2d", "fully_connected")


def _channel_vector(graph: Graph, layer: Node, value: np.ndarray) -> np.ndarray | None:
    """The constant as one value per output channel, or None if it is not of that form."""
    out_shape = graph.tensors[layer.outputs[0]].shape
    axis = 1 if (graph.layout == "NCHW" or len(out_shape) == 2) else len(out_shape) - 1
    try:
        full = np.broadcast_to(value, out_shape)
    except ValueError:
        return None
    per_channel = np.moveaxis(full, axis, 0).reshape(out_shape[axis], -1)
    if not np.all(per_channel == per_channel[:, :1]):
        return None
    return per_channel[:, 0]


def is_bias_add(graph: Graph, add: Node) -> bool:
    producer = graph.producer(add.inputs[0])
    return (producer is not None and producer.op in TARGETS and producer.attrs.get("act", "none") == "none"
            and add.attrs.get("act", "none") == "none"
            and graph.tensors[add.inputs[1]].is_const
            and len(graph.consumers(add.inputs[0])) == 1 and add.inputs[0] not in graph.outputs
            and _channel_vector(graph, producer, graph.const(add.inputs[1])) is not None)


def fuse_bias_add(graph: Graph) -> Graph:
    graph = graph.copy()
    for add in [n for n in graph.nodes if n.op == "add"]:
        if not is_bias_add(graph, add):
            continue
        layer = graph.producer(add.inputs[0])
        extra = _channel_vector(graph, layer, graph.const(add.inputs[1])).astype(np.float32)
        bias = graph.const(layer.inputs[2]) if len(layer.inputs) > 2 else np.zeros_like(extra)
        layer.inputs = layer.inputs[:2] + [graph.add_const(f"{layer.name}_bias", bias + extra).name]
        del graph.tensors[layer.outputs[0]]
        layer.outputs = [add.outputs[0]]
        graph.remove_node(add)
    return graph.prune().verify()
