"""Int8 graph IR (NHWC, the TFLite int8 layout) -> QDQ ONNX bytes (NCHW, opset 13).

The same quantization plan as our int8 `.tflite`: every int8 tensor of the IR becomes a
QuantizeLinear with its scale and zero point, every reader of it a DequantizeLinear; weights are
int8 initializers behind a DequantizeLinear (per axis where the IR holds one scale per channel,
whatever the op), biases int32 initializers behind a DequantizeLinear with scale s_in * s_w. ONNX
Runtime and QNN fold each DQ -> op -> Q group into one integer kernel.

One `emit_<op>` per IR op, looked up in EMITTERS; unsupported ops are collected, then reported
together. The ONNX input is float32 NCHW [N,3,S,S] (the batch symbolic unless `batch` is given),
like the float ONNX it came from, so every ONNX runner takes it unchanged.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from converters.ir import Graph, Node, QuantParams, attr
from converters.ir.emit import emit_nodes
from toolkit.errors import UnsupportedOpError

OPSET = 13
IR_VERSION = 8  # ONNX IR of opset 13 (onnx 1.8+)
# NHWC axis -> NCHW axis of a 4-D activation.
NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}
NCHW_TO_NHWC_AXIS = {v: k for k, v in NHWC_TO_NCHW_AXIS.items()}
# IR weight layout -> ONNX weight layout: the permutation that transposes it.
WEIGHT_PERMUTATION = {"conv2d": (0, 3, 1, 2), "depthwise_conv2d": (3, 0, 1, 2), "fully_connected": (0, 1)}
ONNX_DTYPES = {"float32": 1, "uint8": 2, "int8": 3, "int32": 6, "int64": 7}


class _OnnxBuilder:
    """Accumulates the nodes and initializers of one ONNX graph."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.nodes: list = []
        self.initializers: list = []
        self.names: set[str] = set()

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def const(self, base: str, data: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.unique(base)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(data), name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None, name: str, **attrs) -> str:
        from onnx import helper

        output = output or self.unique(f"{name}_out")
        self.names.add(output)
        self.nodes.append(helper.make_node(op, inputs, [output], name=self.unique(name), **attrs))
        return output

    # ---- quantization -----------------------------------------------------------------------------
    def qparams(self, base: str, quant: QuantParams, zero_dtype, axis: int | None = None) -> tuple[list[str], dict]:
        """(scale, zero point) initializers and the `axis` attribute: scalars per tensor, vectors per axis."""
        if quant.per_channel:
            scale, zero = quant.scale, quant.zero_point.astype(zero_dtype)
            attrs = {"axis": int(axis)}
        else:
            scale, zero = quant.scale.reshape(()), quant.zero_point.reshape(()).astype(zero_dtype)
            attrs = {}
        return [self.const(f"{base}_scale", scale.astype(np.float32)), self.const(f"{base}_zero_point", zero)], attrs

    def float_view(self, tensor: str, reader: str) -> str:
        """The float value a node reads for IR tensor `tensor`: itself, or a DequantizeLinear of it (one per reader)."""
        t = self.graph.tensors[tensor]
        if t.dtype != "int8":
            return tensor
        names, attrs = self.qparams(tensor, t.quant, np.int8)
        return self.node("DequantizeLinear", [tensor, *names], self.unique(f"{tensor}_dequantized_for_{reader}"),
                         f"{tensor}_dequantize_for_{reader}", **attrs)

    def output(self, node: Node) -> str:
        """Where a node writes its float result: the IR output itself, or (int8 output) a value then quantized."""
        out = node.outputs[0]
        return out if self.graph.tensors[out].dtype != "int8" else self.unique(f"{out}_float")

    def finish(self, node: Node, value: str) -> None:
        """QuantizeLinear `value` into the node's int8 output (nothing for a float output)."""
        out = self.graph.tensors[node.outputs[0]]
        if out.dtype == "int8":
            names, attrs = self.qparams(out.name, out.quant, np.int8)
            self.node("QuantizeLinear", [value, *names], out.name, f"{node.name}_quantize", **attrs)

    def weight(self, node: Node) -> str:
        """The layer's weight in ONNX layout: float, or int8 with its DequantizeLinear."""
        t = self.graph.tensors[node.inputs[1]]
        permutation = WEIGHT_PERMUTATION[node.op]
        data = np.transpose(t.data, permutation)
        if t.dtype != "int8":
            return self.const(f"{node.name}_weight", data.astype(np.float32))
        q = self.const(f"{node.name}_weight_quantized", data)
        axis = permutation.index(t.quant.axis) if t.quant.per_channel else None
        names, attrs = self.qparams(f"{node.name}_weight", t.quant, np.int8, axis)
        return self.node("DequantizeLinear", [q, *names], self.unique(f"{node.name}_weight_dequantized"),
                         f"{node.name}_weight_dequantize", **attrs)

    def bias(self, node: Node) -> list[str]:
        if len(node.inputs) < 3:
            return []
        t = self.graph.tensors[node.inputs[2]]
        if t.dtype != "int32":
            return [self.const(f"{node.name}_bias", t.data.astype(np.float32))]
        q = self.const(f"{node.name}_bias_quantized", t.data)
        names, attrs = self.qparams(f"{node.name}_bias", t.quant, np.int32, 0)
        return [self.node("DequantizeLinear", [q, *names], self.unique(f"{node.name}_bias_dequantized"),
                          f"{node.name}_bias_dequantize", **attrs)]

    def layer(self, node: Node, op: str, inputs: list[str], **attrs) -> None:
        """A weighted layer, its fused activation as its own node (ORT and QNN fold it into the Q range),
        and the QuantizeLinear of its output."""
        act = attr(node, "act")
        out = self.output(node)
        value = self.node(op, inputs, out if act == "none" else None, node.name, **attrs)
        if act == "relu":
            self.node("Relu", [value], out, f"{node.name}_relu")
        elif act == "relu6":
            bounds = [self.const(f"{node.name}_min", np.array(0, np.float32)),
                      self.const(f"{node.name}_max", np.array(6, np.float32))]
            self.node("Clip", [value, *bounds], out, f"{node.name}_relu6")
        self.finish(node, out)


# ---- emitters ---------------------------------------------------------------------------------------
def emit_conv2d(b: _OnnxBuilder, node: Node) -> None:
    x = b.float_view(node.inputs[0], node.name)
    w = b.weight(node)
    kernel = b.graph.tensors[node.inputs[1]].shape[1:3]
    groups = attr(node, "groups") if node.op == "conv2d" else b.graph.tensors[node.inputs[0]].shape[3]
    b.layer(node, "Conv", [x, w, *b.bias(node)], kernel_shape=list(kernel), strides=list(attr(node, "strides")),
            dilations=list(attr(node, "dilations")), pads=list(attr(node, "pads")), group=int(groups))


def emit_depthwise_conv2d(b: _OnnxBuilder, node: Node) -> None:
    in_channels = b.graph.tensors[node.inputs[0]].shape[3]
    if b.graph.tensors[node.inputs[1]].shape[3] != in_channels:
        raise UnsupportedOpError(f"depthwise node '{node.name}' has a channel multiplier; the QDQ writer takes 1")
    emit_conv2d(b, node)


def emit_fully_connected(b: _OnnxBuilder, node: Node) -> None:
    x = b.float_view(node.inputs[0], node.name)
    b.layer(node, "Gemm", [x, b.weight(node), *b.bias(node)], transB=1)


def _passthrough(emit_op: Callable[[_OnnxBuilder, Node, str, str], None]):
    """An op that moves or averages values: DQ -> op -> Q with the output's own parameters."""
    def emit(b: _OnnxBuilder, node: Node) -> None:
        x = b.float_view(node.inputs[0], node.name)
        out = b.output(node)
        emit_op(b, node, x, out)
        b.finish(node, out)
    return emit


def _avg_pool(b: _OnnxBuilder, node: Node, x: str, out: str) -> None:
    _, h, w, _ = b.graph.tensors[node.inputs[0]].shape
    kernel, pads = tuple(attr(node, "kernel")), tuple(attr(node, "pads"))
    if attr(node, "act") != "none":
        raise UnsupportedOpError(f"avg_pool2d node '{node.name}' has a fused {attr(node, 'act')}")
    if kernel == (h, w) and pads == (0, 0, 0, 0):
        b.node("GlobalAveragePool", [x], out, node.name)
    else:
        b.node("AveragePool", [x], out, node.name, kernel_shape=list(kernel), strides=list(attr(node, "strides")),
               pads=list(pads), count_include_pad=0)


def _mean(b: _OnnxBuilder, node: Node, x: str, out: str) -> None:
    rank = len(b.graph.tensors[node.inputs[0]].shape)
    axes = sorted(NHWC_TO_NCHW_AXIS[a % rank] for a in attr(node, "axes"))
    if rank != 4 or axes != [2, 3]:
        raise UnsupportedOpError(f"mean node '{node.name}' is over axes {attr(node, 'axes')}; "
                                 "the QDQ writer takes the global spatial mean")
    if attr(node, "keepdims"):
        b.node("GlobalAveragePool", [x], out, node.name)
    else:
        pooled = b.node("GlobalAveragePool", [x], None, node.name)
        b.node("Flatten", [pooled], out, f"{node.name}_flatten", axis=1)


def _reshape(b: _OnnxBuilder, node: Node, x: str, out: str) -> None:
    source = b.graph.tensors[node.inputs[0]].shape
    target = tuple(attr(node, "shape"))
    if len(source) == 4 and source[1:3] == (1, 1) and len(target) == 2:
        b.node("Flatten", [x], out, node.name, axis=1)  # NHWC and NCHW flatten 1x1 maps alike
    elif len(source) == len(target) and source == target:
        b.node("Identity", [x], out, node.name)
    else:
        raise UnsupportedOpError(f"reshape node '{node.name}' {source} -> {target} depends on the layout; "
                                 "the QDQ writer takes a flatten of 1x1 maps")


def _pad(b: _OnnxBuilder, node: Node, x: str, out: str) -> None:
    pads = [tuple(p) for p in attr(node, "pads")]
    if len(pads) != 4:
        raise UnsupportedOpError(f"pad node '{node.name}' pads a rank-{len(pads)} tensor; the QDQ writer takes 4-D")
    nchw = [pads[NCHW_TO_NHWC_AXIS[i]] for i in range(4)]
    amounts = b.const(f"{node.name}_pads", np.array([p[0] for p in nchw] + [p[1] for p in nchw], np.int64))
    b.node("Pad", [x, amounts], out, node.name)  # pads with 0.0, which int8 holds exactly (the zero point)


def _softmax(b: _OnnxBuilder, node: Node, x: str, out: str) -> None:
    rank = len(b.graph.tensors[node.inputs[0]].shape)
    if rank != 2 or attr(node, "axis") % rank != 1 or attr(node, "beta") != 1.0:
        raise UnsupportedOpError(f"softmax node '{node.name}' is not over the classes of [N, C] with beta 1")
    b.node("Softmax", [x], out, node.name, axis=1)


def _relu(b: _OnnxBuilder, node: Node, x: str, out: str) -> None:
    b.node("Relu", [x], out, node.name)


def _relu6(b: _OnnxBuilder, node: Node, x: str, out: str) -> None:
    bounds = [b.const(f"{node.name}_min", np.array(0, np.float32)),
              b.const(f"{node.name}_max", np.array(6, np.float32))]
    b.node("Clip", [x, *bounds], out, node.name)


def emit_quantize(b: _OnnxBuilder, node: Node) -> None:
    b.finish(node, node.inputs[0])


def emit_dequantize(b: _OnnxBuilder, node: Node) -> None:
    if b.graph.tensors[node.inputs[0]].quant is None:
        raise UnsupportedOpError(f"dequantize node '{node.name}' reads fp16 weights; the QDQ writer takes int8 graphs")
    t = b.graph.tensors[node.inputs[0]]
    names, attrs = b.qparams(t.name, t.quant, np.int8)
    b.node("DequantizeLinear", [t.name, *names], node.outputs[0], node.name, **attrs)


EMITTERS: dict[str, Callable[[_OnnxBuilder, Node], None]] = {
    "conv2d": emit_conv2d,
    "depthwise_conv2d": emit_depthwise_conv2d,
    "fully_connected": emit_fully_connected,
    "avg_pool2d": _passthrough(_avg_pool),
    "mean": _passthrough(_mean),
    "reshape": _passthrough(_reshape),
    "pad": _passthrough(_pad),
    "softmax": _passthrough(_softmax),
    "relu": _passthrough(_relu),
    "relu6": _passthrough(_relu6),
    "quantize": emit_quantize,
    "dequantize": emit_dequantize,
}


def _value_info(graph: Graph, name: str, batch: int | str):
    from onnx import helper

    t = graph.tensors[name]
    shape = [batch, *(t.shape[i] for i in (3, 1, 2))] if len(t.shape) == 4 else [batch, *t.shape[1:]]
    return helper.make_tensor_value_info(name, ONNX_DTYPES[t.dtype], shape)


def write_qdq_onnx(graph: Graph, batch: int | None = None, description: str = "") -> bytes:
    """Serialise an int8 NHWC graph (float input and output) as a QDQ ONNX model; see the module doc.

    batch: a fixed batch size (NPU compilers want static shapes), or None for a symbolic one.
    """
    import onnx
    from onnx import helper

    graph.verify()
    if graph.layout != "NHWC":
        raise ValueError(f"the QDQ writer takes the NHWC int8 graph, got {graph.layout}")
    for name in graph.inputs + graph.outputs:
        if graph.tensors[name].dtype != "float32":
            raise UnsupportedOpError(f"graph {'input' if name in graph.inputs else 'output'} '{name}' is "
                                     f"{graph.tensors[name].dtype}; the QDQ ONNX keeps float I/O",
                                     "quantize with --io float for ONNX and QNN outputs")
    builder = _OnnxBuilder(graph)
    builder.names.update(graph.tensors)  # the names it makes up must not take an IR tensor's (a float layer's input)
    emit_nodes(graph, EMITTERS, builder, "QDQ ONNX writer", "it supports ")
    dim = batch if batch is not None else "N"
    onnx_graph = helper.make_graph(builder.nodes, graph.name, [_value_info(graph, n, dim) for n in graph.inputs],
                                   [_value_info(graph, n, dim) for n in graph.outputs], builder.initializers)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="mnv1-tk", doc_string=description or f"mnv1-tk QDQ int8 {graph.name}")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()
