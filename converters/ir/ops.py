"""The closed op vocabulary of the IR: arity, attributes with defaults, and shape inference.

Weight layouts depend on the graph layout:

| op                 | NCHW graph          | NHWC graph (TFLite)   |
|--------------------|---------------------|-----------------------|
| conv2d             | [O, I/groups, H, W] | [O, H, W, I/groups]   |
| depthwise_conv2d   | [C, 1, H, W]        | [1, H, W, C]          |
| fully_connected    | [O, I]              | [O, I]                |

`pads` of convs and pools are (top, left, bottom, right). `act` is one of ACTIVATIONS and is
applied after the op (a fused activation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

ACTIVATIONS = ("none", "relu", "relu6")


@dataclass(frozen=True)
class OpSpec:
    name: str
    min_inputs: int
    max_inputs: int
    defaults: dict
    infer: Callable  # (graph, node) -> list of output shapes


def _spatial_out(size: int, kernel: int, stride: int, pad_before: int, pad_after: int, dilation: int = 1) -> int:
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def _hw(graph, shape):
    return (shape[2], shape[3]) if graph.layout == "NCHW" else (shape[1], shape[2])


def _make(graph, n, h, w, c):
    return (n, c, h, w) if graph.layout == "NCHW" else (n, h, w, c)


def _infer_conv(graph, node):
    x = graph.tensors[node.inputs[0]].shape
    w = graph.tensors[node.inputs[1]].shape
    kh, kw = _hw(graph, w)  # conv [O,I,H,W] / [O,H,W,I]; depthwise [C,1,H,W] / [1,H,W,C]
    sh, sw = node.attrs["strides"]
    pt, pl, pb, pr = node.attrs["pads"]
    dh, dw = node.attrs["dilations"]
    h, wd = _hw(graph, x)
    if node.op == "depthwise_conv2d":
        out_c = w[0] if graph.layout == "NCHW" else w[3]
    else:
        out_c = w[0]
    return [_make(graph, x[0], _spatial_out(h, kh, sh, pt, pb, dh), _spatial_out(wd, kw, sw, pl, pr, dw), out_c)]


def _infer_pool(graph, node):
    x = graph.tensors[node.inputs[0]].shape
    kh, kw = node.attrs["kernel"]
    sh, sw = node.attrs["strides"]
    pt, pl, pb, pr = node.attrs["pads"]
    h, w = _hw(graph, x)
    c = x[1] if graph.layout == "NCHW" else x[3]
    return [_make(graph, x[0], _spatial_out(h, kh, sh, pt, pb), _spatial_out(w, kw, sw, pl, pr), c)]


def _infer_fc(graph, node):
    x = graph.tensors[node.inputs[0]].shape
    w = graph.tensors[node.inputs[1]].shape
    return [(x[0], w[0])]


def _infer_mean(graph, node):
    x = graph.tensors[node.inputs[0]].shape
    axes = {a % len(x) for a in node.attrs["axes"]}
    if node.attrs["keepdims"]:
        return [tuple(1 if i in axes else d for i, d in enumerate(x))]
    return [tuple(d for i, d in enumerate(x) if i not in axes)]


def _infer_same(graph, node):
    return [graph.tensors[node.inputs[0]].shape]


def _infer_reshape(graph, node):
    return [tuple(node.attrs["shape"])]


def _infer_pad(graph, node):
    x = graph.tensors[node.inputs[0]].shape
    return [tuple(d + before + after for d, (before, after) in zip(x, node.attrs["pads"]))]


def _infer_add(graph, node):
    a = graph.tensors[node.inputs[0]].shape
    b = graph.tensors[node.inputs[1]].shape
    return [tuple(np.broadcast_shapes(a, b))]


_CONV = {"strides": (1, 1), "pads": (0, 0, 0, 0), "dilations": (1, 1), "act": "none"}

OPS: dict[str, OpSpec] = {spec.name: spec for spec in (
    OpSpec("conv2d", 2, 3, {**_CONV, "groups": 1}, _infer_conv),
    OpSpec("depthwise_conv2d", 2, 3, dict(_CONV), _infer_conv),
    OpSpec("fully_connected", 2, 3, {"act": "none"}, _infer_fc),
    OpSpec("batch_norm", 5, 5, {"epsilon": 1e-5}, _infer_same),
    OpSpec("relu", 1, 1, {}, _infer_same),
    OpSpec("relu6", 1, 1, {}, _infer_same),
    OpSpec("mean", 1, 1, {"axes": (2, 3), "keepdims": True}, _infer_mean),
    OpSpec("avg_pool2d", 1, 1, {"kernel": (1, 1), "strides": (1, 1), "pads": (0, 0, 0, 0), "act": "none"},
           _infer_pool),
    OpSpec("reshape", 1, 1, {"shape": ()}, _infer_reshape),
    OpSpec("softmax", 1, 1, {"axis": -1, "beta": 1.0}, _infer_same),
    OpSpec("pad", 1, 1, {"pads": ()}, _infer_pad),
    OpSpec("add", 2, 2, {"act": "none"}, _infer_add),
    OpSpec("quantize", 1, 1, {}, _infer_same),
    OpSpec("dequantize", 1, 1, {}, _infer_same),
)}


def attr(node, key):
    """A node attribute, or the op's default for it."""
    return node.attrs.get(key, OPS[node.op].defaults[key])


def check_node(graph, node) -> None:
    """Fill default attributes, then check arity, attribute names and the output shape."""
    spec = OPS[node.op]
    if not spec.min_inputs <= len(node.inputs) <= spec.max_inputs:
        raise ValueError(f"node {node.name} ({node.op}) has {len(node.inputs)} inputs, "
                         f"expected {spec.min_inputs}..{spec.max_inputs}")
    extra = set(node.attrs) - set(spec.defaults)
    if extra:
        raise ValueError(f"node {node.name} ({node.op}) has unknown attributes {sorted(extra)}")
    for key, value in spec.defaults.items():
        node.attrs.setdefault(key, value)
    if "act" in node.attrs and node.attrs["act"] not in ACTIVATIONS:
        raise ValueError(f"node {node.name} has unknown activation {node.attrs['act']!r}")
    if len(node.outputs) != 1:
        raise ValueError(f"node {node.name} ({node.op}) must have exactly one output")
    inferred = spec.infer(graph, node)[0]
    out = graph.tensors[node.outputs[0]]
    if out.shape and tuple(out.shape) != tuple(inferred):
        raise ValueError(f"node {node.name} ({node.op}) output {out.name!r} has shape {out.shape}, "
                         f"inferred {tuple(inferred)}")
    if not out.shape:
        out.shape = tuple(int(d) for d in inferred)
