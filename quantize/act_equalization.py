"""Activation equalization: per-channel activation ranges within the per-tensor int8 scheme.

The int8 scheme quantizes activations per tensor and weights per channel, so a channel whose
activations span half of its tensor's range uses half of the int8 grid. For a layer L1 (convolution
or depthwise, ReLU or ReLU6) whose only consumer is L2, output channel i of L1 is multiplied by s_i
(its weights and bias) and input channel i of L2's weights divided by s_i: with s_i = M / m_i (m_i
the channel's calibration maximum after the activation, M the tensor's) every channel would fill the
tensor's grid, as per-channel activation ranges would. ReLU is positively homogeneous, so the network
computes the same function. L1's weights are quantized per output channel, so its int8 weights do
not change. When L2 is depthwise (convolution -> depthwise), its weights are quantized per channel on
that same axis and do not change either: the rescaling is free. When L2 is a 1x1 convolution
(depthwise -> pointwise), its input column i shrinks by s_i inside a row whose scale its largest
weight sets, so that column's weights lose precision in proportion: a trade, which AdaRound's
rounding and the finer activations win on the tuning models.

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
from quantize.cle import is_channelwise, scale_channels

FIRST_OPS = ("conv2d", "depthwise_conv2d")
SECOND_OPS = ("depthwise_conv2d", "conv2d")
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


def activation_equalization_pairs(graph: Graph) -> list[tuple[Node, Node]]:
    """(layer with ReLU/ReLU6, the layer that alone consumes its output): convolution -> depthwise and
    depthwise -> convolution, channel for channel."""
    pairs = []
    for first in graph.nodes:
        if first.op not in FIRST_OPS or first.attrs.get("groups", 1) != 1 \
                or first.attrs.get("act", "none") not in ACTIVATION_LIMIT or first.outputs[0] in graph.outputs:
            continue
        consumers = graph.consumers(first.outputs[0])
        if len(consumers) != 1 or consumers[0].op not in SECOND_OPS or consumers[0].op == first.op:
            continue
        second = consumers[0]
        if second.attrs.get("groups", 1) != 1:
            continue
        if any(len(graph.consumers(t)) != 1 for t in (*first.inputs[1:], second.inputs[1])):
            continue  # a shared constant would be rescaled for its other users too
        if any(n.op == "depthwise_conv2d" and not is_channelwise(graph, n) for n in (first, second)):
            continue
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
    """Rescale every equalizable pair's channels; `preact_max`: layer -> per-channel maximum before its
    activation over the calibration images (a pair's rescaling leaves every other layer's output as it was)."""
    if headroom < 1.0:
        raise ValueError(f"headroom {headroom} is below 1: channels would clip below their calibration maximum")
    graph = graph.copy()
    scales_by_layer = {}
    for first, second in activation_equalization_pairs(graph):
        output_max = np.clip(preact_max[first.name].astype(np.float64), 0.0, ACTIVATION_LIMIT[first.attrs["act"]])
        scales = channel_scales(output_max, headroom, max_scale)
        scale_channels(graph, first, scales, "out")
        scale_channels(graph, second, 1.0 / scales, "in")
        scales_by_layer[first.name] = scales
    return graph.verify(), ActivationEqualizationReport(headroom, scales_by_layer)
