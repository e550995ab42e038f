"""`to_int8`: float NHWC graph + QuantPlan -> int8 graph (the TFLite int8 layout of the IR).

Layers run in int8 unless listed in `plan.float_layers`; pass-through ops (avg_pool2d, reshape,
pad) follow their input. Where a tensor crosses between the float and int8 parts, a QUANTIZE or
DEQUANTIZE node is inserted; with `io="float"` this puts QUANTIZE after the input and DEQUANTIZE
before the output, with `io="int8"` the model's input and output are int8 themselves.
"""

from __future__ import annotations

import numpy as np

from converters.ir import Graph, Node, QuantParams
from quantize.params import (
    SHARES_INPUT_PARAMS, SOFTMAX_PARAMS, WEIGHT_AXIS, bias_params, fit_bias, quantize_bias, quantize_weight,
)
from quantize.plan import IO_TYPES, QuantPlan
from toolkit.errors import UnsupportedOpError

INT8_OPS = ("conv2d", "depthwise_conv2d", "fully_connected", "avg_pool2d", "mean", "reshape", "pad", "softmax")
LAYERS = tuple(WEIGHT_AXIS)


def quantizable_layers(graph: Graph) -> list[Node]:
    return [n for n in graph.nodes if n.op in LAYERS]


def check_quantizable(graph: Graph) -> None:
    """The graph must be the lowered NHWC float graph, with ops the int8 scheme covers."""
    if graph.layout != "NHWC":
        raise UnsupportedOpError("the quantizer needs the lowered NHWC graph (run converters.passes.lower_for_tflite)")
    for node in graph.nodes:
        if node.op not in INT8_OPS:
            raise UnsupportedOpError(f"cannot quantize node '{node.name}' ({node.op})",
                                     f"int8 covers: {', '.join(INT8_OPS)}")
        if node.op == "mean" and node.attrs.get("keepdims"):
            raise UnsupportedOpError(f"mean node '{node.name}' keeps its reduced dims; int8 covers keepdims=False",
                                     "lower the graph with mean_as='avg_pool'")
        if node.op in LAYERS and len(node.inputs) < 3:
            raise UnsupportedOpError(f"layer '{node.name}' has no bias tensor (run to_explicit_bias)")
    for tensor in graph.tensors.values():
        if tensor.is_const and tensor.data.dtype.kind == "f" and not np.all(np.isfinite(tensor.data)):
            owner = next((n.name for n in graph.nodes if tensor.name in n.inputs), tensor.name)
            raise UnsupportedOpError(f"weights of '{owner}' hold NaN or Inf", "retrain or re-export the model")


def _domains(graph: Graph, plan: QuantPlan) -> dict[str, str]:
    """'int8' or 'float' for every node."""
    domain: dict[str, str] = {}
    home = {graph.inputs[0]: plan.io}
    for node in graph.nodes:
        if node.op in SHARES_INPUT_PARAMS:
            domain[node.name] = home[node.inputs[0]]
        else:
            domain[node.name] = "float" if node.name in plan.float_layers else "int8"
        home[node.outputs[0]] = domain[node.name]
    return domain


def tensor_params(graph: Graph, plan: QuantPlan, tensor: str) -> QuantParams:
    """A float graph tensor's int8 params; pass-through outputs share those of the tensor they copy."""
    producer = graph.producer(tensor)
    while tensor not in plan.activations and producer is not None and producer.op in SHARES_INPUT_PARAMS:
        tensor = producer.inputs[0]
        producer = graph.producer(tensor)
    if tensor not in plan.activations:
        raise UnsupportedOpError(f"no quantization range for tensor '{tensor}'", "calibrate the model first")
    return plan.activations[tensor]


def to_int8(graph: Graph, plan: QuantPlan) -> Graph:
    if plan.io not in IO_TYPES:
        raise ValueError(f"io must be one of {IO_TYPES}, got {plan.io!r}")
    check_quantizable(graph)
    src = graph
    graph = graph.copy()
    domain = _domains(graph, plan)
    home = {graph.inputs[0]: plan.io}
    home.update({n.outputs[0]: domain[n.name] for n in graph.nodes})

    # Activation tensors that live in int8.
    for name, where in home.items():
        if where == "int8":
            producer = graph.producer(name)
            tensor = graph.tensors[name]
            tensor.dtype = "int8"
            if producer is not None and producer.op == "softmax":
                tensor.quant = SOFTMAX_PARAMS
            elif producer is not None and producer.op in SHARES_INPUT_PARAMS:
                tensor.quant = graph.tensors[producer.inputs[0]].quant
            else:
                tensor.quant = tensor_params(src, plan, name)

    # Crossings between the float and int8 parts.
    converted: dict[tuple[str, str], str] = {}

    def convert(tensor: str, to: str, index: int) -> str:
        key = (tensor, to)
        if key not in converted:
            suffix = "int8" if to == "int8" else "float"
            out = graph.add_tensor(graph.unique_name(f"{tensor}_{suffix}"), src.tensors[tensor].shape,
                                   "int8" if to == "int8" else "float32",
                                   quant=tensor_params(src, plan, tensor) if to == "int8" else None)
            graph.add_node("quantize" if to == "int8" else "dequantize",
                           f"{tensor}_{'quantize' if to == 'int8' else 'dequantize'}",
                           [tensor], [out.name], index=index)
            converted[key] = out.name
        return converted[key]

    for node in list(graph.nodes):
        index = graph.nodes.index(node)
        x = node.inputs[0]
        if home[x] != domain[node.name]:
            node.inputs[0] = convert(x, domain[node.name], index)

    # Weights and biases of int8 layers.
    for node in graph.nodes:
        if node.op not in LAYERS or domain[node.name] != "int8":
            continue
        axis = WEIGHT_AXIS[node.op]
        weight = src.const(node.inputs[1])
        bias = plan.biases.get(node.name, src.const(node.inputs[2]))
        input_params = graph.tensors[node.inputs[0]].quant
        w_params = fit_bias(plan.weights[node.name], input_params, bias)
        round_up = plan.round_up.get(node.name) if w_params is plan.weights[node.name] else None
        w_q = quantize_weight(weight, w_params, axis, round_up)
        w_name = graph.add_tensor(graph.unique_name(f"{node.name}_weight_int8"), w_q.shape, "int8", w_q, w_params).name
        b_params = bias_params(input_params, w_params)
        b_q = quantize_bias(bias, b_params)
        b_name = graph.add_tensor(graph.unique_name(f"{node.name}_bias_int32"), b_q.shape, "int32", b_q, b_params).name
        node.inputs = [node.inputs[0], w_name, b_name]

    # Graph output in the requested I/O type.
    out = graph.outputs[0]
    if home[out] != plan.io:
        inner = graph.unique_name(f"{out}_{home[out] if home[out] == 'int8' else 'float'}")
        producer = graph.producer(out)
        graph.tensors[inner] = graph.tensors.pop(out)
        graph.tensors[inner].name = inner
        producer.outputs = [inner]
        for n in graph.consumers(out):
            n.inputs = [inner if t == out else t for t in n.inputs]
        final = graph.add_tensor(out, src.tensors[out].shape, "float32" if plan.io == "float" else "int8",
                                 quant=None if plan.io == "float" else graph.tensors[inner].quant)
        graph.add_node("dequantize" if plan.io == "float" else "quantize", f"{out}_output", [inner], [final.name])
    if plan.io == "int8":
        graph.tensors[graph.inputs[0]].dtype = "int8"
        graph.tensors[graph.inputs[0]].quant = tensor_params(src, plan, graph.inputs[0])
    return graph.prune().verify()
