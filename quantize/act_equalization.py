"""Activation equalization into depthwise layers: per-channel activation ranges within the int8 scheme.

The int8 scheme quantizes activations per tensor and weights per channel, so a channel whose
activations span half of its tensor's range uses half of the int8 grid. For a layer L1 (convolution,
ReLU or ReLU6) whose only consumer is a depthwise layer L2, output channel i of L1 is multiplied by
s_i (its weights and bias) and channel i of L2's weights divided by s_i. L1's weights are quantized
per output channel and L2's per channel on that same axis, so neither layer's int8 weights change;
only the activation between them does: with s_i = M / m_i (m_i the channel's calibration maximum
after the activation, M the tensor's) every channel would fill the tensor's grid, as per-channel
activation ranges would. ReLU is positively homogeneous, so the network computes the same function.

A channel's calibration maximum underestimates what unseen images reach, and a channel that fills the
grid is clipped at it: on a width-1.0 model a few val images exceed their channels' maxima by
1.3-1.5x in the deep layers, and equalizing that far cost 2 dB of logits SQNR. So each channel keeps
`headroom` over its maximum: s_i = M / min(M, headroom * m_i); a channel within 1 / headroom of the
tensor's maximum keeps s_i = 1. s_i is at most `max_scale`, so a nearly dead channel keeps a grid
its int32 bias can hold.

The ReLU6 caveat: TFLite's fused ReLU6 clips every channel at 6, so channel i now clips at 6 / s_i in
its original units. A channel that reaches 6 has m_i = M = 6 and s_i = 1; every other channel has
m_i * s_i <= M <= 6, so no calibration value is clipped that was not before; values above 6 / s_i
(at least headroom * m_i) that calibration never showed are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from converters.ir import Graph, Node

FIRST_OPS = ("conv2d",)
ACTIVATION_LIMIT = {"relu": np.inf, "relu6": 6.0}
MAX_SCALE = 64.0


@dataclass(frozen=True)
class ActivationEqualizationReport:
    headroom: float
    scales: dict  # first layer -> its per-channel scales s_i

    def to_dict(self) -> dict:
        """Per first layer: channels rescaled, median and largest scale."""
        return {"headroom": self.headroom,
                "layers": {name: {"rescaled": int(np.sum(s != 1.0)), "median": float(np.median(s)),
                                  "largest": float(s.max())} for name, s in self.scales.items()}}


def depthwise_pairs(graph: Graph) -> list[tuple[Node, Node]]:
    """(convolution with ReLU/ReLU6, the depthwise layer that alone consumes its output), channel for channel."""
    pairs = []
    for first in graph.nodes:
        if first.op not in FIRST_OPS or first.attrs.get("groups", 1) != 1 \
                or first.attrs.get("act", "none") not in ACTIVATION_LIMIT or first.outputs[0] in graph.outputs:
            continue
        consumers = graph.consumers(first.outputs[0])
        if len(consumers) != 1 or consumers[0].op != "depthwise_conv2d":
            continue
        second = consumers[0]
        if any(len(graph.consumers(t)) != 1 for t in (*first.inputs[1:], second.inputs[1])):
            continue  # a shared constant would be rescaled for its other users too
        if graph.const(second.inputs[1]).shape[3] != graph.tensors[second.inputs[0]].shape[3]:
            continue  # depth multiplier > 1: channel i of the output is not channel i of the input
        pairs.append((first, second))
    return pairs


def channel_scales(output_max: np.ndarray, headroom: float, max_scale: float = MAX_SCALE) -> np.ndarray:
    """s_i = M / min(M, headroom * m_i), at most max_scale; a channel that never fired keeps 1."""
    peak = float(output_max.max(initial=0.0))
    alive = output_max > 0
    target = np.where(alive, np.minimum(peak, headroom * output_max), 1.0)
    return np.where(alive, np.minimum(peak / target, max_scale), 1.0)


def equalize_activations(graph: Graph, preact_max: dict[str, np.ndarray], headroom: float,
                         max_scale: float = MAX_SCALE) -> tuple[Graph, ActivationEqualizationReport]:
    """Rescale every (convolution -> depthwise) pair's channels; `preact_max`: layer -> per-channel maximum
    before its activation over the calibration images."""
    if headroom < 1.0:
        raise ValueError(f"headroom {headroom} is below 1: channels would clip below their calibration maximum")
    graph = graph.copy()
    scales_by_layer = {}
    for first, second in depthwise_pairs(graph):
        output_max = np.clip(preact_max[first.name].astype(np.float64), 0.0, ACTIVATION_LIMIT[first.attrs["act"]])
        scales = channel_scales(output_max, headroom, max_scale)
        weight = graph.const(first.inputs[1]).astype(np.float64) * scales.reshape(-1, 1, 1, 1)
        graph.tensors[first.inputs[1]].data = weight.astype(np.float32)
        if len(first.inputs) > 2:
            bias = graph.const(first.inputs[2]).astype(np.float64) * scales
            graph.tensors[first.inputs[2]].data = bias.astype(np.float32)
        depthwise = graph.const(second.inputs[1]).astype(np.float64) / scales.reshape(1, 1, 1, -1)
        graph.tensors[second.inputs[1]].data = depthwise.astype(np.float32)
        scales_by_layer[first.name] = scales
    return graph.verify(), ActivationEqualizationReport(headroom, scales_by_layer)
