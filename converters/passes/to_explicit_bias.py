"""Give every conv, depthwise conv and fully-connected layer a bias tensor (zeros if it had none).

TFLite's int8 kernels expect one, and the quantizer's bias correction needs somewhere to go.
"""

from __future__ import annotations

import numpy as np

from converters.ir import Graph

LAYERS = ("conv2d", "depthwise_conv2d", "fully_connected")


def output_channels(graph: Graph, node) -> int:
    shape = graph.tensors[node.outputs[0]].shape
    return shape[1] if graph.layout == "NCHW" and len(shape) == 4 else shape[-1]


def to_explicit_bias(graph: Graph) -> Graph:
    graph = graph.copy()
    for node in graph.nodes:
        if node.op in LAYERS and len(node.inputs) == 2:
            bias = np.zeros(output_channels(graph, node), np.float32)
            node.inputs.append(graph.add_const(f"{node.name}_bias", bias).name)
    return graph.verify()
