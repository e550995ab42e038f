"""Empirical bias correction (Nagel et al. 2019; Finkelstein et al. 2019).

Quantized weights (and quantized inputs) shift the mean of a layer's output. Layer by layer, in
graph order, the quantized model (already corrected up to that layer) and the float model run on
the same images; the mean difference of the pre-activation outputs, per output channel, is
subtracted from the layer's bias. Runs on the integer reference executor, so what is corrected is
exactly what TFLite will compute.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from converters.ir import Graph, Node
from converters.ir.execute import KERNELS as FLOAT_KERNELS
from converters.ir.execute import apply_act
from quantize import reference
from quantize.params import bias_params, quantize_bias
from quantize.plan import QuantPlan
from quantize.transform import LAYERS, to_int8

CHUNK = 16


def _linear(node: Node) -> Node:
    return Node(node.op, node.name, node.inputs, node.outputs, {**node.attrs, "act": "none"})


def _chunked(fn, x: np.ndarray) -> np.ndarray:
    return np.concatenate([fn(x[i:i + CHUNK]) for i in range(0, len(x), CHUNK)])


def _channel_mean(x: np.ndarray) -> np.ndarray:
    """Mean over every axis but the last (channels), summed in float64."""
    return x.reshape(-1, x.shape[-1]).sum(axis=0, dtype=np.float64) / (x.size // x.shape[-1])


def _release_after(graph: Graph) -> dict[str, list[str]]:
    """node name -> activations whose last reader is that node (free them once it has run)."""
    last: dict[str, str] = {}
    for node in graph.nodes:
        for t in node.inputs:
            if not graph.tensors[t].is_const:
                last[t] = node.name
    release: dict[str, list[str]] = {}
    for tensor, node in last.items():
        if tensor not in graph.outputs:
            release.setdefault(node, []).append(tensor)
    return release


def correct_biases(graph: Graph, plan: QuantPlan, images: np.ndarray, kernels: str = "builtin"
                   ) -> tuple[dict[str, np.ndarray], dict[str, tuple[float, float]]]:
    """Corrected float biases per int8 layer, and per layer the mean |output error| before and after."""
    plan = dataclasses.replace(plan, biases=dict(plan.biases), io="float")
    qgraph = to_int8(graph, plan)
    float_nodes = {n.name: n for n in graph.nodes}
    fvals = {k: t.data for k, t in graph.tensors.items() if t.is_const}
    qvals = {k: t.data for k, t in qgraph.tensors.items() if t.is_const}
    fvals[graph.inputs[0]] = qvals[qgraph.inputs[0]] = images.astype(np.float32)
    report: dict[str, tuple[float, float]] = {}
    release_f, release_q = _release_after(graph), _release_after(qgraph)
    for node in qgraph.nodes:
        fnode = float_nodes.get(node.name)
        if fnode is not None:
            pre_f = FLOAT_KERNELS[fnode.op](graph, _linear(fnode), fvals)
            fvals[fnode.outputs[0]] = apply_act(pre_f, fnode.attrs.get("act", "none"))
        if node.op in LAYERS and reference.is_quantized(qgraph, node):
            x_q = qvals[node.inputs[0]]
            acc = _chunked(lambda x: reference.accumulate(qgraph, node, x), x_q)
            s_in = np.float64(qgraph.tensors[node.inputs[0]].quant.scale[0])
            scale = s_in * qgraph.tensors[node.inputs[1]].quant.scale.astype(np.float64)
            error = _channel_mean(acc) * scale - _channel_mean(pre_f)
            bias = plan.biases.get(node.name, graph.const(fnode.inputs[2])).astype(np.float64) - error
            plan.biases[node.name] = bias.astype(np.float32)
            b_params = bias_params(qgraph.tensors[node.inputs[0]].quant, qgraph.tensors[node.inputs[1]].quant)
            new_q = quantize_bias(bias, b_params)
            bias_step = new_q.astype(np.int64) - qgraph.const(node.inputs[2]).astype(np.int64)
            acc += bias_step
            qgraph.tensors[node.inputs[2]].data = new_q
            after = error + bias_step * scale
            report[node.name] = (float(np.mean(np.abs(error))), float(np.mean(np.abs(after))))
            qvals[node.outputs[0]] = reference.finish(acc, qgraph, node, kernels)
        elif reference.is_quantized(qgraph, node):
            qvals[node.outputs[0]] = reference.INT8_KERNELS[node.op](qgraph, node, qvals, kernels)
        else:
            qvals[node.outputs[0]] = FLOAT_KERNELS[node.op](qgraph, node, qvals).astype(np.float32)
        for tensor in release_q.get(node.name, []):
            qvals.pop(tensor, None)
        for tensor in release_f.get(node.name, []) if fnode is not None else []:
            fvals.pop(tensor, None)
    return {k: v for k, v in plan.biases.items()}, report
