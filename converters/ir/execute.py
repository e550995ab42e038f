"""Float reference executor for the IR, in NumPy (depthwise taps in numba).

It runs either layout, on any batch size, and reports every tensor it computes to an optional
callback: the quantizer calibrates with it, and the passes are tested against it.
"""

from __future__ import annotations

from typing import Callable

import numba
import numpy as np

from converters.ir.graph import Graph, Node
from converters.ir.ops import attr

TensorCallback = Callable[[str, np.ndarray], None]


def apply_act(x: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return np.maximum(x, 0)
    if act == "relu6":
        y = np.maximum(x, 0)
        return np.minimum(y, 6, out=y)  # np.clip's result, without its slow path
    return x


def positions_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x [..., C] @ w [C, O] as one GEMM over every position (NumPy would loop over the leading axes)."""
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[-1])


def pad_nhwc(x: np.ndarray, pads) -> np.ndarray:
    pt, pl, pb, pr = pads
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0))) if any(pads) else x


def conv_nhwc(x: np.ndarray, w_ohwi: np.ndarray, bias, strides, pads, dilations, groups: int) -> np.ndarray:
    """Grouped 2-D convolution. x [N,H,W,C], w [O,kh,kw,C/groups] -> [N,OH,OW,O], in x's and w's dtype."""
    if w_ohwi.shape[1:3] == (1, 1) and groups == 1 and tuple(strides) == (1, 1) and not any(pads):
        out = positions_matmul(x, w_ohwi[:, 0, 0, :].T)
        if bias is not None:
            out += bias
        return out
    sh, sw = strides
    dh, dw = dilations
    o, kh, kw, cg = w_ohwi.shape
    oh = conv_output_size(x.shape[1], kh, sh, pads[0] + pads[2], dh)
    ow = conv_output_size(x.shape[2], kw, sw, pads[1] + pads[3], dw)
    xp = pad_nhwc(x, pads)
    og = o // groups
    out = np.zeros((x.shape[0], oh, ow, o), dtype=np.result_type(x, w_ohwi))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw, :]
            if groups == 1:
                out += positions_matmul(patch, w_ohwi[:, i, j, :].T)
            else:
                for g in range(groups):
                    out[..., g * og:(g + 1) * og] += positions_matmul(patch[..., g * cg:(g + 1) * cg],
                                                                      w_ohwi[g * og:(g + 1) * og, i, j, :].T)
    if bias is not None:
        out += bias
    return out


def conv_output_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int) -> int:
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


@numba.njit(cache=True, nogil=True)
def depthwise_taps(x, w, out, strides, pads, dilations):
    """out[n, y, x, c] += x[n, ., ., c] * w[i, j, c] over the taps in bounds, in row-major tap order, each
    product rounded before it is added (no fused multiply-add: the nine-slice NumPy sum, bit for bit)."""
    sh, sw = strides
    pt, pl = pads
    dh, dw = dilations
    batch, height, width, channels = x.shape
    _, oh, ow, _ = out.shape
    kh, kw, _ = w.shape
    for n in range(batch):
        for oy in range(oh):
            for ox in range(ow):
                for i in range(kh):
                    iy = oy * sh - pt + i * dh
                    if iy < 0 or iy >= height:
                        continue
                    for j in range(kw):
                        ix = ox * sw - pl + j * dw
                        if 0 <= ix < width:
                            for c in range(channels):
                                out[n, oy, ox, c] += x[n, iy, ix, c] * w[i, j, c]


def depthwise_nhwc(x: np.ndarray, w_1hwc: np.ndarray, bias, strides, pads, dilations,
                   accumulator=np.float32) -> np.ndarray:
    """Depthwise convolution, multiplier m. x [N,H,W,C], w [1,kh,kw,C*m] -> [N,OH,OW,C*m], summed in
    `accumulator` (float32; the integer executor passes int64 for exact sums of integer products)."""
    _, kh, kw, cm = w_1hwc.shape
    mult = cm // x.shape[3]
    if mult > 1:
        x = np.repeat(x, mult, axis=3)
    pt, pl, pb, pr = pads
    oh = conv_output_size(x.shape[1], kh, strides[0], pt + pb, dilations[0])
    ow = conv_output_size(x.shape[2], kw, strides[1], pl + pr, dilations[1])
    out = np.zeros((x.shape[0], oh, ow, cm), dtype=accumulator)
    depthwise_taps(np.ascontiguousarray(x, accumulator), np.ascontiguousarray(w_1hwc[0], accumulator), out,
                   tuple(strides), (pt, pl), tuple(dilations))
    if bias is not None:
        out += bias
    return out


def pool_sums(x: np.ndarray, kernel, strides, pads) -> tuple[np.ndarray, np.ndarray]:
    """Window sums of an NHWC tensor (zero padding, in x's dtype) and how many real values each window holds."""
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    valid = np.pad(np.ones(x.shape[1:3], np.int64), ((pt, pb), (pl, pr)))
    kh, kw = kernel
    sh, sw = strides
    oh = conv_output_size(x.shape[1], kh, sh, pt + pb, 1)
    ow = conv_output_size(x.shape[2], kw, sw, pl + pr, 1)
    total = np.zeros((x.shape[0], oh, ow, x.shape[3]), x.dtype)
    count = np.zeros((oh, ow), np.int64)
    for i in range(kh):
        for j in range(kw):
            total += xp[:, i: i + sh * (oh - 1) + 1: sh, j: j + sw * (ow - 1) + 1: sw, :]
            count += valid[i: i + sh * (oh - 1) + 1: sh, j: j + sw * (ow - 1) + 1: sw]
    return total, count[None, :, :, None]


def avg_pool_nhwc(x: np.ndarray, kernel, strides, pads) -> np.ndarray:
    """Average pool that, like TFLite, divides by the number of valid (unpadded) elements."""
    total, count = pool_sums(x.astype(np.float32), kernel, strides, pads)
    return total / count


def _to_nhwc(graph: Graph, x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1) if graph.layout == "NCHW" else x


def _from_nhwc(graph: Graph, x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 3, 1, 2) if graph.layout == "NCHW" else x


def _conv(graph: Graph, node: Node, values: dict) -> np.ndarray:
    x = _to_nhwc(graph, values[node.inputs[0]])
    w = values[node.inputs[1]].astype(np.float32)
    bias = values[node.inputs[2]].astype(np.float32) if len(node.inputs) > 2 else None
    args = (attr(node, "strides"), attr(node, "pads"), attr(node, "dilations"))
    if node.op == "depthwise_conv2d":
        w = w.transpose(1, 2, 3, 0) if graph.layout == "NCHW" else w  # [C,1,H,W] -> [1,H,W,C]
        y = depthwise_nhwc(x, w, bias, *args)
    else:
        w = w.transpose(0, 2, 3, 1) if graph.layout == "NCHW" else w  # OIHW -> OHWI
        y = conv_nhwc(x, w, bias, *args, attr(node, "groups"))
    return _from_nhwc(graph, apply_act(y, attr(node, "act")))


def _fully_connected(graph: Graph, node: Node, values: dict) -> np.ndarray:
    x = values[node.inputs[0]]
    x = x.reshape(x.shape[0], -1)
    y = x @ values[node.inputs[1]].astype(np.float32).T
    if len(node.inputs) > 2:
        y = y + values[node.inputs[2]].astype(np.float32)
    return apply_act(y, attr(node, "act"))


def _batch_norm(graph: Graph, node: Node, values: dict) -> np.ndarray:
    x, gamma, beta, mean, var = (values[t] for t in node.inputs)
    shape = (1, -1, 1, 1) if graph.layout == "NCHW" else (1, 1, 1, -1)
    scale = gamma / np.sqrt(var + attr(node, "epsilon"))
    return x * scale.reshape(shape) + (beta - mean * scale).reshape(shape)


def _avg_pool(graph: Graph, node: Node, values: dict) -> np.ndarray:
    x = _to_nhwc(graph, values[node.inputs[0]])
    y = avg_pool_nhwc(x, attr(node, "kernel"), attr(node, "strides"), attr(node, "pads"))
    return _from_nhwc(graph, apply_act(y, attr(node, "act")))


def _reshape(graph: Graph, node: Node, values: dict) -> np.ndarray:
    x = values[node.inputs[0]]
    shape = list(attr(node, "shape"))
    shape[0] = x.shape[0]  # the batch dimension follows the input
    return x.reshape(shape)


def _softmax(graph: Graph, node: Node, values: dict) -> np.ndarray:
    x = values[node.inputs[0]] * attr(node, "beta")
    e = np.exp(x - x.max(axis=attr(node, "axis"), keepdims=True))
    return e / e.sum(axis=attr(node, "axis"), keepdims=True)


def _pad(graph: Graph, node: Node, values: dict) -> np.ndarray:
    return np.pad(values[node.inputs[0]], [tuple(p) for p in attr(node, "pads")])


def _quantize(graph: Graph, node: Node, values: dict) -> np.ndarray:
    q = graph.tensors[node.outputs[0]].quant
    x = values[node.inputs[0]]
    info = np.iinfo(q.dtype)
    return np.clip(np.round(x / q.scale[0]) + q.zero_point[0], info.min, info.max).astype(q.dtype)


def _dequantize(graph: Graph, node: Node, values: dict) -> np.ndarray:
    src = graph.tensors[node.inputs[0]]
    x = values[node.inputs[0]]
    if src.quant is None:  # fp16 weights -> fp32
        return x.astype(np.float32)
    q = src.quant
    shape = [1] * x.ndim
    if q.per_channel:
        shape[q.axis] = -1
    return ((x.astype(np.float32) - q.zero_point.reshape(shape)) * q.scale.reshape(shape)).astype(np.float32)


KERNELS = {
    "conv2d": _conv,
    "depthwise_conv2d": _conv,
    "fully_connected": _fully_connected,
    "batch_norm": _batch_norm,
    "relu": lambda g, n, v: np.maximum(v[n.inputs[0]], 0),
    "relu6": lambda g, n, v: apply_act(v[n.inputs[0]], "relu6"),
    "mean": lambda g, n, v: v[n.inputs[0]].mean(axis=tuple(attr(n, "axes")), keepdims=attr(n, "keepdims")),
    "avg_pool2d": _avg_pool,
    "reshape": _reshape,
    "softmax": _softmax,
    "pad": _pad,
    "add": lambda g, n, v: apply_act(v[n.inputs[0]] + v[n.inputs[1]], attr(n, "act")),
    "quantize": _quantize,
    "dequantize": _dequantize,
}


def run(graph: Graph, feeds: dict[str, np.ndarray] | np.ndarray, on_tensor: TensorCallback | None = None,
        fetch: list[str] | None = None, on_preact: TensorCallback | None = None) -> dict[str, np.ndarray]:
    """Run `graph` on `feeds` (a dict, or one array for a single-input graph).

    Returns the graph outputs, or the tensors named in `fetch`. `on_tensor(name, value)` sees every
    activation as it is computed; `on_preact(node_name, value)` sees the output of each node with a
    fused activation before that activation is applied.
    """
    if not isinstance(feeds, dict):
        feeds = {graph.inputs[0]: feeds}
    values: dict[str, np.ndarray] = {k: t.data for k, t in graph.tensors.items() if t.is_const}
    for name in graph.inputs:
        values[name] = np.asarray(feeds[name], dtype=np.float32)
        if on_tensor:
            on_tensor(name, values[name])
    for node in graph.nodes:
        act = node.attrs.get("act", "none")
        if on_preact and act != "none":
            linear = KERNELS[node.op](graph, Node(node.op, node.name, node.inputs, node.outputs,
                                                  {**node.attrs, "act": "none"}), values)
            on_preact(node.name, linear)
            out = apply_act(linear, act)
        else:
            out = KERNELS[node.op](graph, node, values)
        if out.dtype == np.float64:
            out = out.astype(np.float32)
        values[node.outputs[0]] = out
        if on_tensor:
            on_tensor(node.outputs[0], out)
    wanted = fetch if fetch is not None else graph.outputs
    return {name: values[name] for name in wanted}
