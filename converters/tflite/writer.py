"""Graph IR (NHWC) -> `.tflite` bytes, built with the schema object API LiteRT ships.

One `emit_<op>` per IR op, looked up in EMITTERS. Every unsupported op (and every op whose
attributes TFLite cannot express) is collected first, then reported together.

Schema rules kept here:
- buffer 0 is the empty sentinel; activations point at it, each constant has its own buffer;
- every operator code sets both `deprecated_builtin_code` and `builtin_code`;
- operator versions follow `versions.op_version` (TFLite's op_version.cc) for the tensor dtypes;
- quantized tensors carry their scales, zero points and `quantized_dimension` as the IR holds them;
- explicit conv padding becomes SAME when it equals TF SAME for that input size, VALID when it is
  zero, and otherwise an explicit PAD op followed by a VALID conv (stride-2 pad-1 convs on even
  sizes: TF SAME pads 0 before and 1 after, the IR pads 1 and 1).
"""

from __future__ import annotations

from typing import Callable

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.schema_py_generated import BuiltinOperator as Op
from ai_edge_litert.schema_py_generated import BuiltinOptions as Options

from converters.ir import Graph, Node, attr
from converters.ir.emit import emit_nodes
from converters.tflite.versions import OpSignature, op_version
from toolkit.errors import QuantizationError, UnsupportedOpError

TENSOR_TYPES = {
    "float32": schema.TensorType.FLOAT32,
    "float16": schema.TensorType.FLOAT16,
    "int8": schema.TensorType.INT8,
    "uint8": schema.TensorType.UINT8,
    "int32": schema.TensorType.INT32,
    "int64": schema.TensorType.INT64,
}
ACTIVATIONS = {
    "none": schema.ActivationFunctionType.NONE,
    "relu": schema.ActivationFunctionType.RELU,
    "relu6": schema.ActivationFunctionType.RELU6,
}
SCHEMA_VERSION = 3
# Builtin codes above this only fit in the int32 `builtin_code`; the int8 field then holds it.
PLACEHOLDER_FOR_GREATER_OP_CODES = 127
SIGNATURE_KEY = "serving_default"


class _ModelBuilder:
    """Accumulates the tensors, buffers, operator codes and operators of one subgraph."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.buffers = [schema.BufferT()]  # buffer 0: the empty sentinel
        self.tensors: list[schema.TensorT] = []
        self.index: dict[str, int] = {}
        self.operators: list[schema.OperatorT] = []
        self.codes: list[schema.OperatorCodeT] = []
        self.code_index: dict[tuple[int, int], int] = {}

    # ---- tensors --------------------------------------------------------------------------
    def tensor(self, name: str) -> int:
        """The index of IR tensor `name`, added on first use."""
        if name not in self.index:
            t = self.graph.tensors[name]
            self.index[name] = self.add_tensor(name, t.shape, t.dtype, t.data, t.quant)
        return self.index[name]

    def add_tensor(self, name: str, shape, dtype: str, data: np.ndarray | None = None, quant=None) -> int:
        tensor = schema.TensorT()
        tensor.name = name
        tensor.shape = np.asarray(shape, dtype=np.int32)
        tensor.type = TENSOR_TYPES[dtype]
        tensor.buffer = 0
        if data is not None:
            if str(data.dtype) != dtype:
                raise ValueError(f"constant {name!r} holds {data.dtype} data but is declared {dtype}")
            buffer = schema.BufferT()
            buffer.data = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
            self.buffers.append(buffer)
            tensor.buffer = len(self.buffers) - 1
        if quant is not None:
            params = schema.QuantizationParametersT()
            params.scale = [float(s) for s in quant.scale]
            params.zeroPoint = [int(z) for z in quant.zero_point]
            params.quantizedDimension = int(quant.axis) if quant.per_channel else 0
            tensor.quantization = params
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def add_const(self, name: str, data: np.ndarray) -> int:
        return self.add_tensor(name, data.shape, str(data.dtype), data)

    def dtype(self, name: str) -> str:
        return self.graph.tensors[name].dtype

    # ---- operators ------------------------------------------------------------------------
    def add_operator(self, code: int, inputs: list[int], outputs: list[int], sig: OpSignature,
                     options_type: int = Options.NONE, options=None) -> None:
        version = op_version(code, sig)
        key = (code, version)
        if key not in self.code_index:
            opcode = schema.OperatorCodeT()
            opcode.builtinCode = code
            opcode.deprecatedBuiltinCode = min(code, PLACEHOLDER_FOR_GREATER_OP_CODES)
            opcode.version = version
            self.code_index[key] = len(self.codes)
            self.codes.append(opcode)
        op = schema.OperatorT()
        op.opcodeIndex = self.code_index[key]
        op.inputs = inputs
        op.outputs = outputs
        op.builtinOptionsType = options_type
        op.builtinOptions = options
        self.operators.append(op)

    def signature(self, node: Node, **facts) -> OpSignature:
        return OpSignature(tuple(self.dtype(t) for t in node.inputs), self.dtype(node.outputs[0]), **facts)

    # ---- model ----------------------------------------------------------------------------
    def model(self, description: str) -> schema.ModelT:
        graph = self.graph
        subgraph = schema.SubGraphT()
        subgraph.name = "main"
        subgraph.tensors = self.tensors
        subgraph.inputs = [self.tensor(t) for t in graph.inputs]
        subgraph.outputs = [self.tensor(t) for t in graph.outputs]
        subgraph.operators = self.operators
        signature = schema.SignatureDefT()
        signature.signatureKey = SIGNATURE_KEY
        signature.subgraphIndex = 0
        signature.inputs = [_tensor_map(t, self.index[t]) for t in graph.inputs]
        signature.outputs = [_tensor_map(t, self.index[t]) for t in graph.outputs]
        model = schema.ModelT()
        model.version = SCHEMA_VERSION
        model.description = description
        model.operatorCodes = self.codes
        model.subgraphs = [subgraph]
        model.buffers = self.buffers
        model.signatureDefs = [signature]
        return model


def _tensor_map(name: str, index: int) -> schema.TensorMapT:
    entry = schema.TensorMapT()
    entry.name = name
    entry.tensorIndex = index
    return entry


# ---- padding --------------------------------------------------------------------------------
def tf_same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding of TF/TFLite SAME: the odd pixel goes after."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _padding_for(b: _ModelBuilder, node: Node, kernel: tuple[int, int]) -> tuple[int, int]:
    """(TFLite padding, input tensor index) for a conv or pool node, inserting a PAD when needed."""
    x = node.inputs[0]
    _, h, w, c = b.graph.tensors[x].shape
    pt, pl, pb, pr = attr(node, "pads")
    sh, sw = attr(node, "strides")
    dh, dw = attr(node, "dilations") if "dilations" in node.attrs else (1, 1)
    if (pt, pl, pb, pr) == (0, 0, 0, 0):
        return schema.Padding.VALID, b.tensor(x)
    if (pt, pb) == tf_same_pads(h, kernel[0], sh, dh) and (pl, pr) == tf_same_pads(w, kernel[1], sw, dw):
        return schema.Padding.SAME, b.tensor(x)
    if node.op == "avg_pool2d":
        raise UnsupportedOpError(f"avg_pool2d node '{node.name}' pads {(pt, pl, pb, pr)}, which is not TF SAME; "
                                 "an explicit PAD would change the averages at the border")
    source = b.graph.tensors[x]
    padded = b.add_tensor(f"{x}/pad_for/{node.name}", (1, h + pt + pb, w + pl + pr, c), source.dtype,
                          quant=source.quant)  # PAD keeps the input's quantization: it only copies values
    pads = b.add_const(f"{node.name}/paddings", np.array([[0, 0], [pt, pb], [pl, pr], [0, 0]], np.int32))
    b.add_operator(Op.PAD, [b.tensor(x), pads], [padded], OpSignature((source.dtype, "int32"), source.dtype),
                   Options.PadOptions, schema.PadOptionsT())
    return schema.Padding.VALID, padded


# ---- emitters -------------------------------------------------------------------------------
def _io(b: _ModelBuilder, node: Node) -> tuple[list[int], list[int]]:
    return [b.tensor(t) for t in node.inputs], [b.tensor(node.outputs[0])]


def emit_conv2d(b: _ModelBuilder, node: Node) -> None:
    _, kh, kw, _ = b.graph.tensors[node.inputs[1]].shape
    padding, x = _padding_for(b, node, (kh, kw))
    inputs, outputs = _io(b, node)
    options = schema.Conv2DOptionsT()
    options.padding = padding
    options.strideH, options.strideW = attr(node, "strides")
    options.dilationHFactor, options.dilationWFactor = attr(node, "dilations")
    options.fusedActivationFunction = ACTIVATIONS[attr(node, "act")]
    sig = b.signature(node, grouped=attr(node, "groups") > 1)
    b.add_operator(Op.CONV_2D, [x] + inputs[1:], outputs, sig, Options.Conv2DOptions, options)


def emit_depthwise_conv2d(b: _ModelBuilder, node: Node) -> None:
    _, kh, kw, out_channels = b.graph.tensors[node.inputs[1]].shape
    padding, x = _padding_for(b, node, (kh, kw))
    inputs, outputs = _io(b, node)
    options = schema.DepthwiseConv2DOptionsT()
    options.padding = padding
    options.strideH, options.strideW = attr(node, "strides")
    options.dilationHFactor, options.dilationWFactor = attr(node, "dilations")
    options.depthMultiplier = out_channels // b.graph.tensors[node.inputs[0]].shape[3]
    options.fusedActivationFunction = ACTIVATIONS[attr(node, "act")]
    sig = b.signature(node, dilated=tuple(attr(node, "dilations")) != (1, 1))
    b.add_operator(Op.DEPTHWISE_CONV_2D, [x] + inputs[1:], outputs, sig, Options.DepthwiseConv2DOptions, options)


def emit_fully_connected(b: _ModelBuilder, node: Node) -> None:
    inputs, outputs = _io(b, node)
    options = schema.FullyConnectedOptionsT()
    options.fusedActivationFunction = ACTIVATIONS[attr(node, "act")]
    options.keepNumDims = False
    b.add_operator(Op.FULLY_CONNECTED, inputs, outputs, b.signature(node), Options.FullyConnectedOptions, options)


def emit_avg_pool2d(b: _ModelBuilder, node: Node) -> None:
    kernel = tuple(attr(node, "kernel"))
    padding, x = _padding_for(b, node, kernel)
    options = schema.Pool2DOptionsT()
    options.padding = padding
    options.filterHeight, options.filterWidth = kernel
    options.strideH, options.strideW = attr(node, "strides")
    options.fusedActivationFunction = ACTIVATIONS[attr(node, "act")]
    b.add_operator(Op.AVERAGE_POOL_2D, [x], [b.tensor(node.outputs[0])], b.signature(node),
                   Options.Pool2DOptions, options)


def emit_mean(b: _ModelBuilder, node: Node) -> None:
    axes = b.add_const(f"{node.name}/axes", np.array(attr(node, "axes"), np.int32))
    options = schema.ReducerOptionsT()
    options.keepDims = bool(attr(node, "keepdims"))
    b.add_operator(Op.MEAN, [b.tensor(node.inputs[0]), axes], [b.tensor(node.outputs[0])],
                   b.signature(node), Options.ReducerOptions, options)


def emit_reshape(b: _ModelBuilder, node: Node) -> None:
    shape = list(attr(node, "shape"))
    shape[0] = -1  # the batch follows the input, so the model can be resized to a larger batch
    target = b.add_const(f"{node.name}/shape", np.array(shape, np.int32))
    b.add_operator(Op.RESHAPE, [b.tensor(node.inputs[0]), target], [b.tensor(node.outputs[0])],
                   b.signature(node), Options.ReshapeOptions, schema.ReshapeOptionsT())


def emit_softmax(b: _ModelBuilder, node: Node) -> None:
    rank = len(b.graph.tensors[node.inputs[0]].shape)
    if attr(node, "axis") % rank != rank - 1:
        raise UnsupportedOpError(f"softmax node '{node.name}' is over axis {attr(node, 'axis')}; "
                                 "TFLite's SOFTMAX is over the last axis")
    options = schema.SoftmaxOptionsT()
    options.beta = float(attr(node, "beta"))
    inputs, outputs = _io(b, node)
    b.add_operator(Op.SOFTMAX, inputs, outputs, b.signature(node), Options.SoftmaxOptions, options)


def emit_pad(b: _ModelBuilder, node: Node) -> None:
    pads = b.add_const(f"{node.name}/paddings", np.array(attr(node, "pads"), np.int32))
    b.add_operator(Op.PAD, [b.tensor(node.inputs[0]), pads], [b.tensor(node.outputs[0])],
                   b.signature(node), Options.PadOptions, schema.PadOptionsT())


def emit_add(b: _ModelBuilder, node: Node) -> None:
    options = schema.AddOptionsT()
    options.fusedActivationFunction = ACTIVATIONS[attr(node, "act")]
    inputs, outputs = _io(b, node)
    b.add_operator(Op.ADD, inputs, outputs, b.signature(node), Options.AddOptions, options)


def _emit_plain(code: int) -> Callable[[_ModelBuilder, Node], None]:
    """An op with no options: RELU, RELU6, DEQUANTIZE."""
    def emit(b: _ModelBuilder, node: Node) -> None:
        inputs, outputs = _io(b, node)
        per_channel = any(b.graph.tensors[t].quant is not None and b.graph.tensors[t].quant.per_channel
                          for t in node.inputs)
        b.add_operator(code, inputs, outputs, b.signature(node, per_channel=per_channel))
    return emit


def emit_quantize(b: _ModelBuilder, node: Node) -> None:
    quant = b.graph.tensors[node.outputs[0]].quant
    if quant is None:
        raise UnsupportedOpError(f"quantize node '{node.name}': its output {node.outputs[0]!r} has no "
                                 "quantization parameters")
    inputs, outputs = _io(b, node)
    b.add_operator(Op.QUANTIZE, inputs, outputs, b.signature(node, per_channel=quant.per_channel))


emit_relu = _emit_plain(Op.RELU)
emit_relu6 = _emit_plain(Op.RELU6)
emit_dequantize = _emit_plain(Op.DEQUANTIZE)

EMITTERS: dict[str, Callable[[_ModelBuilder, Node], None]] = {
    "conv2d": emit_conv2d,
    "depthwise_conv2d": emit_depthwise_conv2d,
    "fully_connected": emit_fully_connected,
    "avg_pool2d": emit_avg_pool2d,
    "mean": emit_mean,
    "reshape": emit_reshape,
    "softmax": emit_softmax,
    "pad": emit_pad,
    "add": emit_add,
    "relu": emit_relu,
    "relu6": emit_relu6,
    "quantize": emit_quantize,
    "dequantize": emit_dequantize,
}


def write_tflite(graph: Graph, description: str = "") -> bytes:
    """Serialise an NHWC graph (float32, fp16 weights + DEQUANTIZE, or int8) as a .tflite flatbuffer."""
    graph.verify()
    if graph.layout != "NHWC":
        raise ValueError(f"the TFLite writer takes an NHWC graph, got {graph.layout}; "
                         "run converters.passes.lower_for_tflite first")
    builder = _ModelBuilder(graph)
    for name in graph.inputs:
        builder.tensor(name)
    emit_nodes(graph, EMITTERS, builder, "TFLite writer",
               "lower the graph with converters.passes.lower_for_tflite; the writer supports ")
    model = builder.model(description or f"mnv1-tk: {graph.name}")
    fb = flatbuffers.Builder(1024)
    fb.Finish(model.Pack(fb), file_identifier=b"TFL3")
    data = bytes(fb.Output())
    _check_output(graph, data)
    return data


def _check_output(graph: Graph, data: bytes) -> None:
    """Load the model in LiteRT (its builtin kernels check every shape, type and quantization on
    prepare) and compare the inputs and outputs with the graph's."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=data,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    try:
        interpreter.allocate_tensors()
    except RuntimeError as exc:  # a kernel's prepare refused a tensor: name the node, keep it one line
        reason = " ".join(str(exc).split())
        raise QuantizationError(f"LiteRT refuses the written {graph.name} model: {reason}",
                                "report this model; --quant none or fp16 still work") from None
    written = interpreter.get_input_details() + interpreter.get_output_details()
    for details, name in zip(written, graph.inputs + graph.outputs):
        expected = graph.tensors[name]
        if details["name"] != name or tuple(details["shape"]) != expected.shape:
            raise ValueError(f"the written model has {details['name']} {tuple(details['shape'])}, "
                             f"the graph has {name} {expected.shape}")
