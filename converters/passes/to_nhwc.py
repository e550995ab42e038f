"""Change the graph layout from NCHW (ONNX) to NHWC (TFLite, MindSpore Lite's ARM kernels).

Activations [N,C,H,W] -> [N,H,W,C]; conv weights [O,I,H,W] -> [O,H,W,I]; depthwise weights
[C,1,H,W] -> [1,H,W,C]; axes and paddings follow.
"""

from __future__ import annotations

import numpy as np

from converters.ir import Graph
from toolkit.errors import UnsupportedOpError

NCHW_TO_NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}


def _permute(shape):
    return (shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else tuple(shape)


def to_nhwc(graph: Graph) -> Graph:
    if graph.layout == "NHWC":
        return graph.copy().verify()
    src = graph.copy()
    graph = graph.copy()
    graph.layout = "NHWC"
    for node in graph.nodes:
        if node.op == "conv2d":
            node.inputs[1] = graph.add_const(f"{node.name}_weight_ohwi",
                                             src.const(node.inputs[1]).transpose(0, 2, 3, 1)).name
        elif node.op == "depthwise_conv2d":
            node.inputs[1] = graph.add_const(f"{node.name}_weight_1hwc",
                                             src.const(node.inputs[1]).transpose(1, 2, 3, 0)).name
        elif node.op == "mean" and len(src.tensors[node.inputs[0]].shape) == 4:
            node.attrs["axes"] = tuple(sorted(NCHW_TO_NHWC_AXIS[a] for a in node.attrs["axes"]))
        elif node.op == "pad" and len(node.attrs["pads"]) == 4:
            p = node.attrs["pads"]
            node.attrs["pads"] = (p[0], p[2], p[3], p[1])
        elif node.op == "reshape":
            x = src.tensors[node.inputs[0]].shape
            if len(x) == 4 and x[2] * x[3] != 1 and x[1] != 1:
                raise UnsupportedOpError(f"reshape node '{node.name}' flattens a {list(x)} NCHW feature map; its "
                                         "element order differs in NHWC (only 1x1 maps can be flattened)")
            if len(node.attrs["shape"]) == 4:
                raise UnsupportedOpError(f"reshape node '{node.name}' produces a 4-D tensor; not supported")
        elif node.op == "add":
            for i, name in enumerate(node.inputs):
                value = src.const(name)
                if value is not None and value.ndim >= 1 and len(src.tensors[node.outputs[0]].shape) == 4:
                    value = value.reshape((1,) * (4 - value.ndim) + value.shape).transpose(0, 2, 3, 1)
                    node.inputs[i] = graph.add_const(f"{name}_nhwc", value).name
        elif node.op == "softmax" and len(src.tensors[node.inputs[0]].shape) == 4:
            raise UnsupportedOpError(f"softmax node '{node.name}' runs on a 4-D tensor; not supported")
    for tensor in graph.tensors.values():
        if not tensor.is_const:
            tensor.shape = _permute(tensor.shape)
    return graph.prune().verify()
