"""ONNX -> graph IR (NCHW).

One `import_<op>` function per ONNX op type, looked up in `IMPORTERS`. Every unsupported op in
the model is collected first, then reported together, with the list of supported ops.
Covers what `mindspore.onnx.export` writes for MobileNetV1 (Conv, BatchNormalization, Clip,
ReduceMean, Gemm) and what other exporters write for it (Relu, GlobalAveragePool, AveragePool,
Flatten/Reshape, MatMul + Add, Softmax, Pad, Identity/Dropout).

Other exporters (PyTorch's, tf2onnx) also write shape-computing subgraphs around padding and
reshapes (Shape, Gather, Slice, Concat, Cast, ConstantOfShape, Unsqueeze, Range...) and a dynamic
batch dimension. Such a model is first simplified by onnxsim (onnx-simplifier) with the batch fixed
to 1: it constant-folds those subgraphs and fuses Pad into Conv, BatchNormalization into Conv and
MatMul + Add into Gemm, leaving the ops above.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import contextlib
import os
import sys

import numpy as np

from converters.ir import Graph
from toolkit.card import ModelCard
from toolkit.errors import ModelCardError, ModelFileError, UnsupportedOpError


class _Context:
    """Import state: the graph being built and an alias table for ops that vanish (Identity, Dropout)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.alias: dict[str, str] = {}

    def name(self, tensor: str) -> str:
        return self.alias.get(tensor, tensor)

    def const(self, tensor: str) -> np.ndarray | None:
        name = self.name(tensor)
        return self.graph.tensors[name].data if name in self.graph.tensors else None

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.graph.tensors[self.name(tensor)].shape

    def emit(self, onnx_node, op: str, inputs: list[str], **attrs) -> None:
        out = onnx_node.output[0]
        self.graph.add_tensor(out, ())
        node = self.graph.add_node(op, _layer_name(onnx_node), [self.name(t) for t in inputs], [out], **attrs)
        from converters.ir.ops import check_node

        check_node(self.graph, node)  # infers the output shape now, so later importers can read it


def _layer_name(onnx_node) -> str:
    """Name layers after their weight (`features.3.0.weight` -> `features.3.0`) when it has a readable name."""
    if onnx_node.op_type in ("Conv", "Gemm", "MatMul") and onnx_node.input[1].endswith(".weight"):
        return onnx_node.input[1][: -len(".weight")]
    return onnx_node.name or onnx_node.output[0]


def _attrs(onnx_node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in onnx_node.attribute}


def _require_const(ctx: _Context, onnx_node, tensor: str, what: str) -> np.ndarray:
    value = ctx.const(tensor)
    if value is None:
        raise UnsupportedOpError(f"{onnx_node.op_type} node '{onnx_node.name}': {what} must be a constant")
    return value


def _conv_pads(ctx: _Context, onnx_node, attrs: dict, kernel, strides, dilations) -> tuple[int, int, int, int]:
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("NOTSET", ""):
        p = list(attrs.get("pads", [0, 0, 0, 0]))
        return (p[0], p[1], p[2], p[3])
    if auto_pad == "VALID":
        return (0, 0, 0, 0)
    pads = []
    for size, k, s, d in zip(ctx.shape(onnx_node.input[0])[2:], kernel, strides, dilations):
        out = -(-size // s)
        total = max(0, (out - 1) * s + d * (k - 1) + 1 - size)
        small, large = total // 2, total - total // 2
        pads.append((small, large) if auto_pad == "SAME_UPPER" else (large, small))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def import_conv(ctx: _Context, node) -> None:
    attrs = _attrs(node)
    weight = _require_const(ctx, node, node.input[1], "the weight")
    if weight.ndim != 4:
        raise UnsupportedOpError(f"Conv node '{node.name}': only 2-D convolutions are supported")
    kernel = weight.shape[2:]
    strides = tuple(attrs.get("strides", (1, 1)))
    dilations = tuple(attrs.get("dilations", (1, 1)))
    pads = _conv_pads(ctx, node, attrs, kernel, strides, dilations)
    groups = attrs.get("group", 1)
    in_channels = ctx.shape(node.input[0])[1]
    inputs = [t for t in node.input if t]
    common = dict(strides=strides, pads=pads, dilations=dilations)
    if groups > 1 and groups == in_channels and weight.shape[1] == 1:
        ctx.emit(node, "depthwise_conv2d", inputs, **common)
    else:
        ctx.emit(node, "conv2d", inputs, groups=groups, **common)


def import_batch_normalization(ctx: _Context, node) -> None:
    for tensor in node.input[1:5]:
        _require_const(ctx, node, tensor, "scale, bias, mean and variance")
    ctx.emit(node, "batch_norm", list(node.input[:5]), epsilon=float(_attrs(node).get("epsilon", 1e-5)))


def import_relu(ctx: _Context, node) -> None:
    ctx.emit(node, "relu", [node.input[0]])


def import_clip(ctx: _Context, node) -> None:
    attrs = _attrs(node)
    low, high = attrs.get("min", -np.inf), attrs.get("max", np.inf)
    if len(node.input) > 1 and node.input[1]:
        low = float(_require_const(ctx, node, node.input[1], "min"))
    if len(node.input) > 2 and node.input[2]:
        high = float(_require_const(ctx, node, node.input[2], "max"))
    if low == 0 and high == 6:
        ctx.emit(node, "relu6", [node.input[0]])
    elif low == 0 and np.isinf(high):
        ctx.emit(node, "relu", [node.input[0]])
    else:
        raise UnsupportedOpError(f"Clip node '{node.name}' clips to [{low}, {high}]; only ReLU [0, inf) "
                                 "and ReLU6 [0, 6] are supported")


def import_reduce_mean(ctx: _Context, node) -> None:
    attrs = _attrs(node)
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = _require_const(ctx, node, node.input[1], "axes").tolist()
    rank = len(ctx.shape(node.input[0]))
    axes = tuple(sorted(a % rank for a in (axes if axes is not None else range(rank))))
    ctx.emit(node, "mean", [node.input[0]], axes=axes, keepdims=bool(attrs.get("keepdims", 1)))


def import_global_average_pool(ctx: _Context, node) -> None:
    ctx.emit(node, "mean", [node.input[0]], axes=(2, 3), keepdims=True)


def import_average_pool(ctx: _Context, node) -> None:
    attrs = _attrs(node)
    kernel = tuple(attrs["kernel_shape"])
    strides = tuple(attrs.get("strides", (1, 1)))
    pads = _conv_pads(ctx, node, attrs, kernel, strides, (1, 1))
    if any(pads) and attrs.get("count_include_pad", 0):
        raise UnsupportedOpError(f"AveragePool node '{node.name}' counts padding; TFLite averages valid pixels only")
    ctx.emit(node, "avg_pool2d", [node.input[0]], kernel=kernel, strides=strides, pads=pads)


def import_gemm(ctx: _Context, node) -> None:
    attrs = _attrs(node)
    if attrs.get("transA", 0):
        raise UnsupportedOpError(f"Gemm node '{node.name}' transposes its input (transA=1)")
    weight = _require_const(ctx, node, node.input[1], "B (the weight)").astype(np.float32)
    weight = weight if attrs.get("transB", 0) else weight.T
    weight = weight * np.float32(attrs.get("alpha", 1.0))
    graph = ctx.graph
    inputs = [node.input[0], graph.add_const(f"{node.name}_weight", weight).name]
    if len(node.input) > 2 and node.input[2]:
        bias = _require_const(ctx, node, node.input[2], "C (the bias)").astype(np.float32)
        bias = np.broadcast_to(bias * np.float32(attrs.get("beta", 1.0)), (weight.shape[0],))
        inputs.append(graph.add_const(f"{node.name}_bias", bias).name)
    ctx.emit(node, "fully_connected", inputs)


def import_mat_mul(ctx: _Context, node) -> None:
    weight = _require_const(ctx, node, node.input[1], "the second input (the weight)").astype(np.float32)
    if weight.ndim != 2 or len(ctx.shape(node.input[0])) != 2:
        raise UnsupportedOpError(f"MatMul node '{node.name}': only [N, K] x [K, M] is supported")
    ctx.emit(node, "fully_connected", [node.input[0], ctx.graph.add_const(f"{node.name}_weight", weight.T).name])


def import_add(ctx: _Context, node) -> None:
    a, b = node.input[0], node.input[1]
    if ctx.const(a) is not None and ctx.const(b) is None:
        a, b = b, a  # keep the activation first
    ctx.emit(node, "add", [a, b])


def import_flatten(ctx: _Context, node) -> None:
    shape = ctx.shape(node.input[0])
    axis = _attrs(node).get("axis", 1) % len(shape)
    ctx.emit(node, "reshape", [node.input[0]],
             shape=(int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))))


def import_reshape(ctx: _Context, node) -> None:
    target = [int(d) for d in _require_const(ctx, node, node.input[1], "the shape")]
    source = ctx.shape(node.input[0])
    target = [source[i] if d == 0 else d for i, d in enumerate(target)]
    if -1 in target:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = int(np.prod(source)) // known
    ctx.emit(node, "reshape", [node.input[0]], shape=tuple(target))


def import_softmax(ctx: _Context, node) -> None:
    rank = len(ctx.shape(node.input[0]))
    axis = _attrs(node).get("axis", -1) % rank
    if axis != rank - 1:
        raise UnsupportedOpError(f"Softmax node '{node.name}' is over axis {axis}; only the last axis is supported")
    ctx.emit(node, "softmax", [node.input[0]], axis=-1)


def import_pad(ctx: _Context, node) -> None:
    attrs = _attrs(node)
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = attrs.get("pads")
    if pads is None:
        pads = _require_const(ctx, node, node.input[1], "pads").tolist()
    value = 0.0
    if len(node.input) > 2 and node.input[2]:
        value = float(_require_const(ctx, node, node.input[2], "constant_value"))
    if mode != "constant" or value != 0.0:
        raise UnsupportedOpError(f"Pad node '{node.name}' uses mode {mode!r} value {value}; "
                                 "only zero padding is supported")
    half = len(pads) // 2
    ctx.emit(node, "pad", [node.input[0]], pads=tuple((int(pads[i]), int(pads[i + half])) for i in range(half)))


def import_identity(ctx: _Context, node) -> None:
    ctx.alias[node.output[0]] = ctx.name(node.input[0])


IMPORTERS: dict[str, Callable[[_Context, object], None]] = {
    "Conv": import_conv,
    "BatchNormalization": import_batch_normalization,
    "Relu": import_relu,
    "Clip": import_clip,
    "ReduceMean": import_reduce_mean,
    "GlobalAveragePool": import_global_average_pool,
    "AveragePool": import_average_pool,
    "Gemm": import_gemm,
    "MatMul": import_mat_mul,
    "Add": import_add,
    "Flatten": import_flatten,
    "Reshape": import_reshape,
    "Softmax": import_softmax,
    "Pad": import_pad,
    "Identity": import_identity,
    "Dropout": import_identity,
}


def load_onnx(source):
    """Load an ONNX file (or pass a ModelProto through); a corrupt file is a ModelFileError."""
    import onnx

    if isinstance(source, onnx.ModelProto):
        return source
    path = Path(source)
    if not path.is_file():
        raise ModelFileError(f"ONNX file {path} does not exist", "check the path")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf DecodeError, ValidationError, truncated files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path} is not a valid ONNX model ({reason})",
                             "re-export it with `mnv1-tk export`") from None
    if not model.graph.node:
        raise ModelFileError(f"{path} is not a valid ONNX model (empty graph)", "re-export it with `mnv1-tk export`")
    return model


@contextlib.contextmanager
def _native_output_muted():
    """onnxsim's C++ core prints a warning per node it cannot fold in its first rounds (folded later):
    keep them off the terminal unless MNV1TK_DEBUG_NATIVE is set."""
    if os.environ.get("MNV1TK_DEBUG_NATIVE"):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def _image_input(model):
    """The one graph input that is not an initializer; a clear error for anything but one float image."""
    from onnx import TensorProto

    initializers = {i.name for i in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(f"'{v.name}'" for v in inputs)
        raise UnsupportedOpError(f"the model has {len(inputs)} inputs ({names}); one image input is expected",
                                 "export the classifier with a single NCHW image input")
    value = inputs[0]
    tensor_type = value.type.tensor_type
    dims = [d.dim_value if d.dim_value > 0 else (d.dim_param or "?") for d in tensor_type.shape.dim]
    fixed = [d for d in dims[1:] if isinstance(d, int)]
    if (tensor_type.elem_type != TensorProto.FLOAT or len(dims) != 4 or len(fixed) != 3 or dims[1] != 3):
        dtype = TensorProto.DataType.Name(tensor_type.elem_type).lower()
        raise UnsupportedOpError(f"input '{value.name}' is {dtype} {dims}; an RGB image input, float32 "
                                 "[N, 3, H, W] with a fixed size, is expected",
                                 "export the model with an NCHW float image input of a fixed size")
    return value


# Ops exporters use to compute padding amounts and reshape targets from the input's shape.
SHAPE_OPS = frozenset({"Shape", "Size", "Gather", "Slice", "Concat", "Cast", "ConstantOfShape", "Unsqueeze", "Squeeze",
                       "Range", "Expand", "Transpose", "Div", "Mul", "Sub", "Max", "Min", "Neg", "Floor", "Ceil",
                       "Equal", "Where", "Not"})


def _needs_simplifying(model) -> bool:
    """Shape subgraphs to fold, or a batch dimension that is not fixed."""
    batch = _image_input(model).type.tensor_type.shape.dim[0]
    return batch.dim_value != 1 or any(n.op_type in SHAPE_OPS for n in model.graph.node)


def simplify_onnx(model):
    """Constant-fold shape subgraphs with onnxsim, the batch fixed to 1; the model unchanged if it fails."""
    import onnxsim

    value = _image_input(model)
    shape = [1] + [d.dim_value for d in value.type.tensor_type.shape.dim[1:]]
    try:
        with _native_output_muted():
            simplified, ok = onnxsim.simplify(model, overwrite_input_shapes={value.name: shape})
    except Exception:  # onnxsim's own errors (an op it cannot run): import reports the unfolded ops
        return model
    return simplified if ok else model


def _check_card(graph: Graph, card: ModelCard) -> None:
    shape = graph.tensors[graph.inputs[0]].shape
    if tuple(shape[1:]) != (3, card.image_size, card.image_size):
        raise ModelCardError(f"model card says input {card.image_size}x{card.image_size}x3 but the model takes "
                             f"{list(shape)}", "use the card that was exported with this model")
    classes = graph.tensors[graph.outputs[0]].shape[-1]
    if classes != card.num_classes:
        raise ModelCardError(f"model card says {card.num_classes} classes but the model outputs {classes}",
                             "use the card that was exported with this model")


def import_onnx(source, card: ModelCard | None = None) -> Graph:
    """Import an ONNX MobileNetV1 (file path or ModelProto) into an NCHW `Graph` with batch size 1."""
    from onnx import numpy_helper

    model = load_onnx(source)
    if _needs_simplifying(model):
        model = simplify_onnx(model)
    by_op: dict[str, list[str]] = {}
    for n in model.graph.node:
        if n.op_type not in IMPORTERS and n.op_type != "Constant":
            by_op.setdefault(n.op_type, []).append(n.name)
    unsupported = [f"{op} (node '{names[0]}')" if len(names) == 1 else f"{op} ({len(names)} nodes, e.g. '{names[0]}')"
                   for op, names in sorted(by_op.items())]
    if unsupported:
        raise UnsupportedOpError(f"unsupported ONNX ops: {', '.join(unsupported)}",
                                 f"supported: {', '.join(sorted(IMPORTERS))}")
    name = Path(source).stem if isinstance(source, (str, Path)) else (model.graph.name or "model")
    graph = Graph(name=name, layout="NCHW", meta=card.to_dict() if card else {})
    ctx = _Context(graph)
    for init in model.graph.initializer:
        data = numpy_helper.to_array(init)
        graph.add_tensor(init.name, data.shape, str(data.dtype), data)
    value = _image_input(model)
    graph.add_tensor(value.name, [1] + [d.dim_value for d in value.type.tensor_type.shape.dim[1:]])
    graph.inputs.append(value.name)
    for node in model.graph.node:
        if node.op_type == "Constant":
            data = numpy_helper.to_array(node.attribute[0].t)
            graph.add_tensor(node.output[0], data.shape, str(data.dtype), data)
        else:
            IMPORTERS[node.op_type](ctx, node)
    graph.outputs = [ctx.name(o.name) for o in model.graph.output]
    graph.prune().verify()
    if card is not None:
        _check_card(graph, card)
    return graph


def onnx_facts(path) -> dict:
    """What a model card needs that the ONNX file itself says: input name and size, classes, width."""
    from onnx import numpy_helper

    model = load_onnx(path)
    value = _image_input(model)
    _, _, height, width = [d.dim_value for d in value.type.tensor_type.shape.dim]
    if height != width:
        raise UnsupportedOpError(f"input '{value.name}' is {height}x{width}; a square image input is expected",
                                 "export the model at a square size (e.g. 224x224)")
    if _needs_simplifying(model):
        model = simplify_onnx(model)
    output = model.graph.output[0]
    classes = output.type.tensor_type.shape.dim[-1].dim_value if output.type.tensor_type.shape.dim else 0
    if classes <= 0:
        raise UnsupportedOpError(f"output '{output.name}' has no fixed number of classes",
                                 "export the model with a [N, classes] output")
    weights = {i.name: i for i in model.graph.initializer}
    first_conv = next((n for n in model.graph.node if n.op_type == "Conv"), None)
    stem = numpy_helper.to_array(weights[first_conv.input[1]]).shape[0] if first_conv and \
        first_conv.input[1] in weights else 32
    return {"input_name": value.name, "input_layout": "NCHW", "image_size": height, "num_classes": classes,
            "output_name": output.name, "width": stem / 32}
