"""Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization").

For two consecutive layers L1 -> L2 (conv or depthwise, ReLU between), output channel i of L1 is
divided by s_i and input channel i of L2 multiplied by s_i, with s_i = sqrt(r1_i / r2_i) (r = max
|w| of the channel), so both channels end with the same range. ReLU is positively homogeneous, so
the network computes the same function.

The ReLU6 caveat: relu6(z) / s = clip(z / s, 0, 6 / s), and TFLite's fused ReLU6 clips at 6 for
every channel. The function stays exact on the calibration data when a channel that reaches 6
before the activation keeps s = 1, and every other channel keeps max(z) / s <= 6, i.e.
s >= max(z) / 6. Scales are constrained to that, using the pre-activation maxima from calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from converters.ir import Graph, Node

PAIR_FIRST = ("conv2d", "depthwise_conv2d")
PAIR_SECOND = ("conv2d", "depthwise_conv2d")
RELU6_LIMIT = 6.0


@dataclass(frozen=True)
class EqualizationReport:
    pairs: int
    iterations: int
    spread_before: dict  # layer -> max/min ratio of per-channel weight ranges
    spread_after: dict


def _out_ranges(graph: Graph, node: Node) -> np.ndarray:
    w = graph.const(node.inputs[1])
    if node.op == "depthwise_conv2d":
        return np.abs(w).max(axis=(0, 1, 2))
    return np.abs(w).reshape(w.shape[0], -1).max(axis=1)


def _in_ranges(graph: Graph, node: Node) -> np.ndarray:
    """Per input channel: the last axis of both [O,H,W,I] and [1,H,W,C]."""
    return np.abs(graph.const(node.inputs[1])).max(axis=(0, 1, 2))


def channel_spread(graph: Graph, node: Node) -> float:
    """max / min of the per-output-channel weight ranges: what per-tensor quantization suffers from."""
    r = _out_ranges(graph, node)
    r = r[r > 0]
    return float(r.max() / r.min()) if r.size else 1.0


def is_channelwise(graph: Graph, node: Node) -> bool:
    """A depthwise layer whose output channel i is its input channel i (depth multiplier 1)."""
    return graph.const(node.inputs[1]).shape[3] == graph.tensors[node.inputs[0]].shape[3]


def cle_pairs(graph: Graph) -> list[tuple[Node, Node]]:
    """(layer, the layer that alone consumes its output) whose weights cross-layer equalization rescales:
    any fused activation that is none, ReLU or ReLU6 (positively homogeneous), the consumer a plain or
    depthwise convolution."""
    pairs = []
    for first in graph.nodes:
        if first.op not in PAIR_FIRST or first.attrs.get("act", "none") not in ("none", "relu", "relu6"):
            continue
        consumers = graph.consumers(first.outputs[0])
        if len(consumers) != 1 or first.outputs[0] in graph.outputs:
            continue
        second = consumers[0]
        if second.op in PAIR_SECOND and (second.op != "conv2d" or second.attrs.get("groups", 1) == 1):
            if first.op == "depthwise_conv2d" and not is_channelwise(graph, first):
                continue
            pairs.append((first, second))
    return pairs


def scale_channels(graph: Graph, node: Node, per_channel: np.ndarray, axis: str) -> None:
    """Multiply output (axis="out") or input (axis="in") channels of a layer's weight by `per_channel`."""
    w = graph.const(node.inputs[1]).astype(np.float64)
    if node.op == "depthwise_conv2d" or axis == "in":
        w = w * per_channel.reshape(1, 1, 1, -1)
    else:
        w = w * per_channel.reshape(-1, 1, 1, 1)
    graph.tensors[node.inputs[1]].data = w.astype(np.float32)
    if axis == "out" and len(node.inputs) > 2:
        bias = graph.const(node.inputs[2]).astype(np.float64) * per_channel
        graph.tensors[node.inputs[2]].data = bias.astype(np.float32)


def equalize(graph: Graph, preact_max: dict[str, np.ndarray], iterations: int = 20,
             tolerance: float = 1e-3) -> tuple[Graph, EqualizationReport]:
    """Equalize every layer pair; `preact_max` (layer -> per-channel max before its activation) guards ReLU6."""
    graph = graph.copy()
    for node in graph.nodes:  # own copies of weights, so shared constants are never scaled twice
        if node.op in PAIR_FIRST:
            for i in (1, 2):
                graph.tensors[node.inputs[i]].data = graph.const(node.inputs[i]).copy()
    pairs = cle_pairs(graph)
    layers = {n.name: n for pair in pairs for n in pair}
    before = {name: channel_spread(graph, n) for name, n in layers.items()}
    cumulative = {first.name: np.ones(_out_ranges(graph, first).shape) for first, _ in pairs}
    done = 0
    for done in range(1, iterations + 1):
        largest_step = 0.0
        for first, second in pairs:
            r1, r2 = _out_ranges(graph, first), _in_ranges(graph, second)
            step = np.where((r1 > 0) & (r2 > 0), np.sqrt(r1 / np.where(r2 > 0, r2, 1)), 1.0)
            total = cumulative[first.name] * step
            if first.attrs.get("act") == "relu6":
                peak = preact_max[first.name]
                total = np.where(peak >= RELU6_LIMIT, 1.0, np.maximum(total, peak / RELU6_LIMIT))
            step = total / cumulative[first.name]
            cumulative[first.name] = total
            scale_channels(graph, first, 1.0 / step, "out")
            scale_channels(graph, second, step, "in")
            largest_step = max(largest_step, float(np.max(np.abs(np.log(step)))))
        if largest_step < tolerance:
            break
    after = {name: channel_spread(graph, n) for name, n in layers.items()}
    return graph.verify(), EqualizationReport(len(pairs), done, before, after)
