"""Float `.tflite` -> graph IR (NHWC), read with the schema object API LiteRT ships.

So models from Keras, the TF converter or any other tool reach our int8 quantizer
(`mnv1-tk convert model.tflite --quant int8 --calib ...`). One `import_<op>` per TFLite builtin
op, looked up in IMPORTERS; every unsupported op is collected first and reported together.
fp16 weights (FLOAT16 constants behind DEQUANTIZE) become float32 constants. A model that is
already int8 is refused: there is nothing left for our quantizer to do.

The result is the lowered form `converters.passes.lower_for_tflite` returns for ONNX imports:
convs and fully connected layers with a bias and a fused activation, global means as
avg_pool2d, explicit (top, left, bottom, right) padding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from converters.ir import Graph
from converters.ir.ops import check_node
from converters.tflite.writer import tf_same_pads
from toolkit.card import ModelCard
from toolkit.errors import ModelCardError, ModelFileError, UnsupportedOpError

Op = schema.BuiltinOperator
OP_NAMES = {code: name for name, code in vars(Op).items() if not name.startswith("_")}
DTYPES = {schema.TensorType.FLOAT32: "float32", schema.TensorType.FLOAT16: "float16",
          schema.TensorType.INT8: "int8", schema.TensorType.UINT8: "uint8", schema.TensorType.INT32: "int32",
          schema.TensorType.INT64: "int64"}
ACTIVATIONS = {schema.ActivationFunctionType.NONE: "none", schema.ActivationFunctionType.RELU: "relu",
               schema.ActivationFunctionType.RELU6: "relu6"}


def read_model(path) -> "schema.ModelT":
    """The unpacked flatbuffer; anything that is not a TFLite model is a ModelFileError."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"TFLite file {path} does not exist", "check the path")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelFileError(f"{path} is not a TFLite model (no TFL3 identifier)", "pass a .tflite flatbuffer")
    try:
        return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as exc:  # flatbuffers raises struct.error / IndexError on truncated files
        raise ModelFileError(f"{path} is not a valid TFLite model ({type(exc).__name__})",
                             "pass the .tflite again, it looks truncated") from None


class _Context:
    """Import state: the model, its one subgraph, the IR graph and the IR name of each tensor index."""

    def __init__(self, model, graph: Graph):
        self.model = model
        self.sub = model.subgraphs[0]
        self.graph = graph
        self.names: dict[int, str] = {}

    def tensor(self, index: int):
        return self.sub.tensors[index]

    def data(self, index: int) -> np.ndarray | None:
        """A constant tensor's values (fp16 constants stay fp16 here), or None for an activation."""
        t = self.tensor(index)
        buffer = self.model.buffers[t.buffer]
        raw = buffer.data if buffer is not None else None
        if raw is None or len(raw) == 0:
            return None
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        return np.frombuffer(bytes(bytearray(raw)), dtype=DTYPES[t.type]).reshape(shape).copy()

    def name(self, index: int) -> str:
        """The IR tensor for a TFLite tensor index, added on first use (constants as float32 constants)."""
        if index not in self.names:
            t = self.tensor(index)
            base = (t.name.decode() if isinstance(t.name, bytes) else t.name) or f"tensor_{index}"
            value = self.data(index)
            if value is not None and value.dtype == np.float16:
                value = value.astype(np.float32)
            name = self.graph.unique_name(base)
            shape = value.shape if value is not None else tuple(int(d) for d in t.shape)
            self.graph.add_tensor(name, shape, str(value.dtype) if value is not None else DTYPES[t.type], value)
            self.names[index] = name
        return self.names[index]

    def const(self, index: int, what: str, op) -> np.ndarray:
        value = self.data(index)
        if value is None:
            raise UnsupportedOpError(f"{OP_NAMES[self.opcode(op)]} '{self.out_name(op)}': {what} must be a constant")
        return value

    def opcode(self, op) -> int:
        code = self.model.operatorCodes[op.opcodeIndex]
        return max(code.builtinCode, code.deprecatedBuiltinCode)

    def out_name(self, op) -> str:
        t = self.tensor(op.outputs[0])
        return t.name.decode() if isinstance(t.name, bytes) else t.name

    def emit(self, op, ir_op: str, inputs: list[int], **attrs) -> None:
        """One IR node for `op`, reading TFLite tensors `inputs` (-1: an absent optional input)."""
        self.emit_node(ir_op, self.out_name(op), [self.name(i) for i in inputs if i >= 0], op.outputs[0], **attrs)

    def emit_node(self, ir_op: str, name: str, inputs: list[str], output: int | None, **attrs) -> str:
        """An IR node writing TFLite tensor `output` (None: a tensor of its own); returns its output's IR name."""
        out = self.graph.unique_name(name or f"tensor_{output}")
        self.graph.add_tensor(out, ())
        if output is not None:
            self.names[output] = out
        check_node(self.graph, self.graph.add_node(ir_op, name, inputs, [out], **attrs))
        return out

    def alias(self, op, source: int) -> None:
        self.names[op.outputs[0]] = self.name(source)


def _padding(ctx: _Context, op, options, kernel: tuple[int, int]) -> tuple[int, int, int, int]:
    if options.padding == schema.Padding.VALID:
        return (0, 0, 0, 0)
    _, h, w, _ = ctx.tensor(op.inputs[0]).shape
    dh, dw = (getattr(options, "dilationHFactor", 1) or 1), (getattr(options, "dilationWFactor", 1) or 1)
    top, bottom = tf_same_pads(int(h), kernel[0], options.strideH, dh)
    left, right = tf_same_pads(int(w), kernel[1], options.strideW, dw)
    return (top, left, bottom, right)


def _activation(ctx: _Context, op, options) -> str:
    act = options.fusedActivationFunction
    if act not in ACTIVATIONS:
        raise UnsupportedOpError(f"{OP_NAMES[ctx.opcode(op)]} '{ctx.out_name(op)}' fuses activation {act}; "
                                 "only RELU and RELU6 are supported")
    return ACTIVATIONS[act]


def import_conv_2d(ctx: _Context, op) -> None:
    o = op.builtinOptions
    _, kh, kw, _ = ctx.tensor(op.inputs[1]).shape
    ctx.emit(op, "conv2d", list(op.inputs), strides=(o.strideH, o.strideW), pads=_padding(ctx, op, o, (kh, kw)),
             dilations=(o.dilationHFactor, o.dilationWFactor), act=_activation(ctx, op, o))


def import_depthwise_conv_2d(ctx: _Context, op) -> None:
    o = op.builtinOptions
    _, kh, kw, _ = ctx.tensor(op.inputs[1]).shape
    ctx.emit(op, "depthwise_conv2d", list(op.inputs), strides=(o.strideH, o.strideW),
             pads=_padding(ctx, op, o, (kh, kw)), dilations=(o.dilationHFactor, o.dilationWFactor),
             act=_activation(ctx, op, o))


def import_fully_connected(ctx: _Context, op) -> None:
    x = ctx.name(op.inputs[0])
    shape = ctx.graph.tensors[x].shape
    if len(shape) != 2:  # TFLite flattens the input itself; the IR says so with a reshape
        x = ctx.emit_node("reshape", f"{ctx.out_name(op)}/flatten", [x], None, shape=(1, int(np.prod(shape[1:]))))
    ctx.emit_node("fully_connected", ctx.out_name(op), [x] + [ctx.name(i) for i in op.inputs[1:] if i >= 0],
                  op.outputs[0], act=_activation(ctx, op, op.builtinOptions))


def import_average_pool_2d(ctx: _Context, op) -> None:
    o = op.builtinOptions
    kernel = (o.filterHeight, o.filterWidth)
    ctx.emit(op, "avg_pool2d", [op.inputs[0]], kernel=kernel, strides=(o.strideH, o.strideW),
             pads=_padding(ctx, op, o, kernel), act=_activation(ctx, op, o))


def import_mean(ctx: _Context, op) -> None:
    rank = len(ctx.tensor(op.inputs[0]).shape)
    axes = tuple(sorted(int(a) % rank for a in ctx.const(op.inputs[1], "the axes", op).reshape(-1)))
    ctx.emit(op, "mean", [op.inputs[0]], axes=axes, keepdims=bool(op.builtinOptions.keepDims))


def import_reshape(ctx: _Context, op) -> None:
    shape = tuple(int(d) for d in ctx.tensor(op.outputs[0]).shape)
    ctx.emit(op, "reshape", [op.inputs[0]], shape=(1,) + shape[1:])


def import_softmax(ctx: _Context, op) -> None:
    ctx.emit(op, "softmax", [op.inputs[0]], axis=-1, beta=float(op.builtinOptions.beta))


def import_pad(ctx: _Context, op) -> None:
    pads = ctx.const(op.inputs[1], "the paddings", op)
    ctx.emit(op, "pad", [op.inputs[0]], pads=tuple((int(a), int(b)) for a, b in pads))


def import_add(ctx: _Context, op) -> None:
    a, b = op.inputs[0], op.inputs[1]
    if ctx.data(a) is not None and ctx.data(b) is None:
        a, b = b, a  # the activation first
    ctx.emit(op, "add", [a, b], act=_activation(ctx, op, op.builtinOptions))


def import_relu(ctx: _Context, op) -> None:
    ctx.emit(op, "relu", [op.inputs[0]])


def import_relu6(ctx: _Context, op) -> None:
    ctx.emit(op, "relu6", [op.inputs[0]])


def import_dequantize(ctx: _Context, op) -> None:
    """fp16 weights: the FLOAT16 constant is read as float32 directly."""
    ctx.alias(op, op.inputs[0])


IMPORTERS: dict[int, Callable[[_Context, object], None]] = {
    Op.CONV_2D: import_conv_2d,
    Op.DEPTHWISE_CONV_2D: import_depthwise_conv_2d,
    Op.FULLY_CONNECTED: import_fully_connected,
    Op.AVERAGE_POOL_2D: import_average_pool_2d,
    Op.MEAN: import_mean,
    Op.RESHAPE: import_reshape,
    Op.SQUEEZE: import_reshape,
    Op.SOFTMAX: import_softmax,
    Op.PAD: import_pad,
    Op.ADD: import_add,
    Op.RELU: import_relu,
    Op.RELU6: import_relu6,
    Op.DEQUANTIZE: import_dequantize,
}


def _check_float(path: Path, model) -> None:
    """An int8 (or uint8) model is refused: it is already quantized."""
    sub = model.subgraphs[0]
    quantized = [t for t in sub.tensors if t.type in (schema.TensorType.INT8, schema.TensorType.UINT8)]
    if quantized:
        raise UnsupportedOpError(
            f"{path.name} is already an integer-quantized .tflite ({len(quantized)} int8/uint8 tensors); "
            "our quantizer takes float models",
            f"keep it as it is (mnv1-tk validate/predict run it directly), or convert its float source to int8")


def _image_input(path: Path, model) -> int:
    sub = model.subgraphs[0]
    if len(model.subgraphs) != 1 or len(sub.inputs) != 1:
        raise UnsupportedOpError(f"{path.name} has {len(sub.inputs)} inputs in {len(model.subgraphs)} subgraph(s); "
                                 "one image input is expected", "export the classifier with a single image input")
    t = sub.tensors[sub.inputs[0]]
    shape = [int(d) for d in t.shape]
    if t.type != schema.TensorType.FLOAT32 or len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2]:
        name = t.name.decode() if isinstance(t.name, bytes) else t.name
        raise UnsupportedOpError(f"input '{name}' is {DTYPES.get(t.type, t.type)} {shape}; a float32 RGB image "
                                 "[1, S, S, 3] (NHWC, square) is expected",
                                 "export the model with an NHWC float image input")
    return sub.inputs[0]


def tflite_facts(path) -> dict:
    """What a model card needs that the .tflite itself says: input name and size, classes, width."""
    path = Path(path)
    model = read_model(path)
    sub = model.subgraphs[0]
    quantized = any(t.type in (schema.TensorType.INT8, schema.TensorType.UINT8) for t in sub.tensors)
    x = sub.tensors[sub.inputs[0]] if len(sub.inputs) == 1 else None
    if quantized and x is not None and x.type != schema.TensorType.FLOAT32:
        shape = [int(d) for d in x.shape]
        input_dtype = DTYPES[x.type]
    else:
        shape = [int(d) for d in sub.tensors[_image_input(path, model)].shape]
        input_dtype = "float32"
    y = sub.tensors[sub.outputs[0]]
    convs = [op for op in sub.operators if model.operatorCodes[op.opcodeIndex].builtinCode == Op.CONV_2D]
    stem = int(sub.tensors[convs[0].inputs[1]].shape[0]) if convs else 32

    def text(value):
        return value.decode() if isinstance(value, bytes) else value

    facts = {"input_name": text(x.name), "input_layout": "NHWC", "input_dtype": input_dtype, "image_size": shape[1],
             "num_classes": int(y.shape[-1]), "output_name": text(y.name), "width": stem / 32,
             "precision": "int8" if quantized else "fp32"}
    return {**facts, **_metadata_facts(path, facts["num_classes"])}


def _metadata_facts(path: Path, num_classes: int) -> dict:
    """Normalisation (pixel units) and labels from the TFLite metadata, when the file carries them."""
    from converters.tflite.metadata import read_metadata

    try:
        meta = read_metadata(path.read_bytes())
        units = meta["subgraph_metadata"][0]["input_tensor_metadata"][0].get("process_units", [])
    except (ModelFileError, KeyError, IndexError):
        return {}
    facts = {}
    for unit in units:
        options = unit.get("options", {})
        if unit.get("options_type") == "NormalizationOptions" and len(options.get("mean", [])) == 3 \
                and len(options.get("std", [])) == 3:
            facts.update(mean=tuple(options["mean"]), std=tuple(options["std"]))
    if len(meta.get("labels", [])) == num_classes:
        facts["labels"] = tuple(meta["labels"])
    return facts


def import_tflite(path, card: ModelCard | None = None) -> Graph:
    """Import a float `.tflite` MobileNetV1 into a lowered NHWC `Graph` (batch 1)."""
    from converters.passes import fold_mean, fuse_activation, fuse_bias_add, to_explicit_bias

    path = Path(path)
    model = read_model(path)
    _check_float(path, model)
    x = _image_input(path, model)
    sub = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    unsupported = sorted({f"{OP_NAMES.get(codes[op.opcodeIndex], codes[op.opcodeIndex])}" for op in sub.operators
                          if codes[op.opcodeIndex] not in IMPORTERS})
    if unsupported:
        raise UnsupportedOpError(f"unsupported TFLite ops: {', '.join(unsupported)}",
                                 f"supported: {', '.join(sorted(OP_NAMES[c] for c in IMPORTERS))}")
    graph = Graph(name=path.name.split(".")[0], layout="NHWC", meta=card.to_dict() if card else {})
    ctx = _Context(model, graph)
    ctx.name(x)
    graph.tensors[ctx.names[x]].shape = (1,) + graph.tensors[ctx.names[x]].shape[1:]
    graph.inputs.append(ctx.names[x])
    for op in sub.operators:
        IMPORTERS[codes[op.opcodeIndex]](ctx, op)
    graph.outputs = [ctx.name(i) for i in sub.outputs]
    graph.prune().verify()
    for run_pass in (fuse_bias_add, fuse_activation, fold_mean, to_explicit_bias):
        graph = run_pass(graph)
    if card is not None:
        _check_card(graph, card)
    return graph


def _check_card(graph: Graph, card: ModelCard) -> None:
    shape = graph.tensors[graph.inputs[0]].shape
    classes = graph.tensors[graph.outputs[0]].shape[-1]
    if tuple(shape[1:]) != (card.image_size, card.image_size, 3) or classes != card.num_classes:
        raise ModelCardError(f"model card says {card.image_size}x{card.image_size}x3 and {card.num_classes} classes "
                             f"but the model takes {list(shape)} and outputs {classes}",
                             "use the card that was written with this model")
