"""AdaRound: learn whether each weight rounds up or down (Nagel et al. 2020).

Nearest rounding minimises each weight's own error, not the layer's output error. Layer by layer,
AdaRound relaxes the choice floor(w/s) + h, h in [0, 1], fits h to reproduce the float layer's
output on calibration patches (with the layer's input fake-quantized and its output clipped to
its int8 range), and anneals a regulariser that drives every h to 0 or 1.

The patches come from the float model: for each layer, `rows` random output positions with their
receptive fields. Each step fits a minibatch of them (an epoch visits them all): all of them for a
small layer, fewer for a large one, so that no step costs much more than `step_work`. Conv and
fully-connected layers are one matrix product; a depthwise layer is a product per channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from converters.ir import Graph, Node, QuantParams
from converters.ir.execute import run as run_float
from converters.ir.ops import attr
from quantize.params import (
    QMAX, QMIN, WEIGHT_AXIS, WEIGHT_MAX, broadcast_scale, dequantize_weight, fake_quantize, quantize_weight,
)
from quantize.plan import QuantPlan
from quantize.transform import quantizable_layers, tensor_params

ZETA, GAMMA = 1.1, -0.1  # the rectified sigmoid's stretch
SATURATES_AT = float(np.log((1 - GAMMA) / (ZETA - 1)))  # |V| beyond which h(V) is 0 or 1 (ZETA - 1 = -GAMMA)
CHUNK = 16
OUTPUT_WORK = 256  # the elementwise work on one output value, in multiply-adds (measured on 2 cores)


@dataclass(frozen=True)
class AdaRoundConfig:
    rows: int = 2048            # output positions per layer the reconstruction is fitted on
    step_work: int = 2 ** 26    # the work of one step, in multiply-adds, sets its minibatch: all rows for a
    min_batch: int = 256        # small layer, down to min_batch rows for the largest
    iterations: int = 500
    learning_rate: float = 1e-2
    regularisation: float = 0.01
    warmup: float = 0.2         # share of the iterations without the rounding regulariser
    beta: tuple[float, float] = (20.0, 2.0)
    seed: int = 0


def _initial_v(fraction: np.ndarray) -> np.ndarray:
    p = np.clip((fraction - GAMMA) / (ZETA - GAMMA), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _patches(x: np.ndarray, node: Node, weight_shape, n, oh, ow) -> np.ndarray:
    """Receptive fields [M, kh, kw, C] of output positions (n, oh, ow) of an NHWC conv."""
    pt, pl, pb, pr = attr(node, "pads")
    sh, sw = attr(node, "strides")
    dh, dw = attr(node, "dilations")
    _, kh, kw, _ = weight_shape
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    rows = (oh * sh)[:, None, None] + (np.arange(kh) * dh)[None, :, None]
    cols = (ow * sw)[:, None, None] + (np.arange(kw) * dw)[None, None, :]
    return xp[n[:, None, None], rows, cols]


class _Samples:
    """Collects each layer's input patches from the float model, chunk by chunk."""

    def __init__(self, graph: Graph, layers: list[Node], rows: int, chunks: int, seed: int):
        self.graph, self.rows, self.chunks = graph, rows, chunks
        self.rng = np.random.default_rng(seed)
        self.readers: dict[str, list[Node]] = {}
        for node in layers:
            self.readers.setdefault(node.inputs[0], []).append(node)
        self.patches: dict[str, list[np.ndarray]] = {n.name: [] for n in layers}

    def __call__(self, tensor: str, value: np.ndarray) -> None:
        for node in self.readers.get(tensor, []):
            self._sample(node, value)

    def _sample(self, node: Node, value: np.ndarray) -> None:
        if node.op == "fully_connected":
            self.patches[node.name].append(value.reshape(len(value), -1))
            return
        weight_shape = self.graph.const(node.inputs[1]).shape
        if node.op == "depthwise_conv2d" and weight_shape[3] != value.shape[3]:  # channel multiplier
            value = np.repeat(value, weight_shape[3] // value.shape[3], axis=3)
        out_shape = self.graph.tensors[node.outputs[0]].shape
        take = max(1, self.rows // self.chunks)
        n = self.rng.integers(0, len(value), take)
        oh = self.rng.integers(0, out_shape[1], take)
        ow = self.rng.integers(0, out_shape[2], take)
        self.patches[node.name].append(_patches(value, node, weight_shape, n, oh, ow))


def layer_output_range(plan: QuantPlan, node: Node) -> tuple[float, float]:
    """The float range the layer's int8 output can hold."""
    q = plan.activations[node.outputs[0]]
    s, zp = float(q.scale[0]), int(q.zero_point[0])
    return (QMIN - zp) * s, (QMAX - zp) * s


def _linear_fns(node: Node, patches: np.ndarray):
    """(forward(W) -> Y, backward(dY) -> dW) of the layer on its patches, in the weight's own layout."""
    if node.op == "depthwise_conv2d":  # patches [M,kh,kw,C], weight [1,kh,kw,C]
        flat = patches.reshape(len(patches), -1, patches.shape[-1])
        return (lambda w: np.einsum("mkc,kc->mc", flat, w.reshape(-1, w.shape[-1])),
                lambda dy: np.einsum("mkc,mc->kc", flat, dy).reshape(1, *patches.shape[1:]))
    flat = patches.reshape(len(patches), -1)  # conv [M,kh,kw,I] or fc [M,I]; weight [O,...]
    return (lambda w: flat @ w.reshape(len(w), -1).T,
            lambda dy: (dy.T @ flat).reshape(-1, *patches.shape[1:]))


def layer_arrays(graph: Graph, plan: QuantPlan, node: Node) -> tuple[np.ndarray, np.ndarray, QuantParams]:
    """The layer's float weight and bias, and its weight quantization parameters."""
    weight = graph.const(node.inputs[1]).astype(np.float64)
    bias = graph.const(node.inputs[2]).astype(np.float64)
    return weight, bias, plan.weights[node.name]


class _RelaxedRounding:
    """h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1) and dh/dV, updated in place (the weights can
    number a million, so every pass over them counts)."""

    def __init__(self, v: np.ndarray):
        self.v = v
        self.h, self.dh_dv = np.empty_like(v), np.empty_like(v)

    def update(self) -> None:
        sig, raw = self.dh_dv, self.h
        np.negative(self.v, out=sig)
        np.exp(sig, out=sig)
        sig += 1
        np.reciprocal(sig, out=sig)
        np.multiply(sig, np.float32(ZETA - GAMMA), out=raw)
        raw += np.float32(GAMMA)
        np.clip(raw, 0, 1, out=raw)
        inside = np.abs(self.v) < np.float32(SATURATES_AT)
        sig *= 1 - sig
        sig *= inside
        sig *= np.float32(ZETA - GAMMA)


def _regulariser_gradient(h: np.ndarray, beta: float) -> np.ndarray:
    """d/dh of sum(1 - |2h - 1|^beta), the term that drives every h to 0 or 1."""
    centred = 2 * h - 1
    magnitude = np.abs(centred)
    with np.errstate(divide="ignore"):
        np.log(magnitude, out=magnitude)
    magnitude *= np.float32(beta - 1)
    np.exp(magnitude, out=magnitude)
    return np.copysign(magnitude, centred, out=magnitude) * np.float32(-2 * beta)


def round_layer(node: Node, weight: np.ndarray, bias: np.ndarray, params: QuantParams, patches: np.ndarray,
                output_range: tuple[float, float], config: AdaRoundConfig) -> np.ndarray:
    """The learnt rounding of one layer: 1 where a weight rounds up from floor(w/s), else 0 (int8)."""
    lo, hi = output_range
    rng = np.random.default_rng(config.seed)
    patches = patches.astype(np.float32)
    forward, _ = _linear_fns(node, patches)
    target = np.clip(forward(weight.astype(np.float32)) + bias, lo, hi).astype(np.float32)
    scale = broadcast_scale(params.scale.astype(np.float64), weight.ndim, WEIGHT_AXIS[node.op])
    base = np.floor(weight / scale)
    rounding = _RelaxedRounding(_initial_v(weight / scale - base).astype(np.float32))
    ceiling = np.float32(WEIGHT_MAX) - base.astype(np.float32)  # base + h never passes the int8 maximum
    base, scale, bias = base.astype(np.float32), scale.astype(np.float32), bias.astype(np.float32)
    m, s2 = np.zeros_like(rounding.v), np.zeros_like(rounding.v)
    b1, b2, eps = 0.9, 0.999, 1e-8
    warm = int(config.warmup * config.iterations)
    outputs = weight.shape[WEIGHT_AXIS[node.op]]
    batch = min(len(patches), max(config.min_batch, config.step_work // (weight.size + OUTPUT_WORK * outputs)))
    order, cursor = None, len(patches)
    for step in range(1, config.iterations + 1):
        if cursor + batch > len(patches):  # a new epoch
            order, cursor = rng.permutation(len(patches)), 0
        rows = order[cursor:cursor + batch]
        cursor += batch
        forward, backward = _linear_fns(node, patches[rows])
        rounding.update()
        w_soft = np.minimum(rounding.h, ceiling)
        w_soft += base
        w_soft *= scale
        y = forward(w_soft) + bias
        d_y = (y - target[rows]) * ((y > lo) & (y < hi))
        d_y *= np.float32(2 / batch)
        grad = backward(d_y)
        grad *= scale
        if step > warm:
            progress = (step - warm) / max(1, config.iterations - warm)
            beta = config.beta[0] + (config.beta[1] - config.beta[0]) * progress
            grad += np.float32(config.regularisation) * _regulariser_gradient(rounding.h, beta)
        grad *= rounding.dh_dv
        m *= b1
        m += np.float32(1 - b1) * grad
        grad *= grad
        s2 *= b2
        s2 += np.float32(1 - b2) * grad
        step_size = np.float32(config.learning_rate * np.sqrt(1 - b2 ** step) / (1 - b1 ** step))
        denominator = np.sqrt(s2)
        denominator += np.float32(eps * np.sqrt(1 - b2 ** step))
        np.divide(m, denominator, out=denominator)
        denominator *= step_size
        rounding.v -= denominator
    rounding.update()
    return (rounding.h >= 0.5).astype(np.int8)


def reconstruction_error(node: Node, weight: np.ndarray, bias: np.ndarray, params: QuantParams, patches: np.ndarray,
                         output_range: tuple[float, float], round_up: np.ndarray | None) -> float:
    """Mean squared output error of the layer with its weights rounded (nearest when round_up is None)."""
    lo, hi = output_range
    forward, _ = _linear_fns(node, patches.astype(np.float64))
    axis = WEIGHT_AXIS[node.op]
    w_q = dequantize_weight(quantize_weight(weight, params, axis, round_up), params, axis)
    y_q = forward(w_q.astype(np.float64)) + bias
    y = forward(weight) + bias
    return float(np.mean((np.clip(y_q, lo, hi) - np.clip(y, lo, hi)) ** 2))


def layer_patches(graph: Graph, plan: QuantPlan, images: np.ndarray, config: AdaRoundConfig) -> dict[str, np.ndarray]:
    """Per layer, its input patches from the float model, fake-quantized with the input's int8 parameters."""
    layers = quantizable_layers(graph)
    chunks = max(1, -(-len(images) // CHUNK))
    samples = _Samples(graph, layers, config.rows, chunks, config.seed)
    for i in range(0, len(images), CHUNK):
        run_float(graph, images[i:i + CHUNK], on_tensor=samples, fetch=[])
    return {n.name: fake_quantize(np.concatenate(samples.patches[n.name]), tensor_params(graph, plan, n.inputs[0]))
            for n in layers}


def adaround(graph: Graph, plan: QuantPlan, images: np.ndarray, config: AdaRoundConfig = AdaRoundConfig(),
             progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Learnt rounding per quantized layer of `graph` (NHWC images), for `QuantPlan.round_up`."""
    patches = layer_patches(graph, plan, images, config)
    decisions = {}
    for node in quantizable_layers(graph):
        if node.name in plan.float_layers:
            continue
        weight, bias, params = layer_arrays(graph, plan, node)
        decisions[node.name] = round_layer(node, weight, bias, params, patches[node.name],
                                           layer_output_range(plan, node), config)
        if progress:
            progress(1)
    return decisions
