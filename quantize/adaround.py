"""AdaRound: learn whether each weight rounds up or down (Nagel et al. 2020).

Nearest rounding minimises each weight's own error, not the layer's output error. Layer by layer,
AdaRound relaxes the choice floor(w/s) + h, h in [0, 1], fits h to reproduce the float layer's
output on calibration patches (with the layer's input fake-quantized and its output clipped to
its int8 range), and anneals a regulariser that drives every h to 0 or 1.

The patches come from the float model: for each layer, `rows` random output positions with their
receptive fields. Each step fits a minibatch of them (an epoch visits them all): all of them for a
small layer, fewer for a large one, so that no step costs much more than `step_work`; a layer so large
that even `min_batch` rows cost more takes proportionally fewer steps (at least `min_iterations`). Conv and
fully-connected layers are one matrix product (BLAS); the rest of a step (the rectified sigmoid, the
soft weights, the regulariser and Adam; a depthwise layer's whole gradient) runs in numba kernels that
each make one pass over their arrays on all cores.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np

from converters.ir import Graph, Node, QuantParams
from converters.ir.execute import run as run_float
from converters.ir.ops import attr
from quantize.params import (
    QMAX, QMIN, WEIGHT_AXIS, WEIGHT_MAX, dequantize_weight, fake_quantize, quantize_weight,
)
from quantize.plan import QuantPlan
from quantize.transform import quantizable_layers, tensor_params

if "NUMBA_THREADING_LAYER" not in os.environ:  # OpenMP's spinning workers slow the BLAS calls between kernels
    numba.config.THREADING_LAYER = "workqueue"
_KERNELS = threading.Lock()  # the workqueue layer aborts the process if two threads launch kernels at once

ZETA, GAMMA = 1.1, -0.1  # the rectified sigmoid's stretch
SATURATES_AT = float(np.log((1 - GAMMA) / (ZETA - 1)))  # |V| beyond which h(V) is 0 or 1 (ZETA - 1 = -GAMMA)
CHUNK = 16
OUTPUT_WORK = 256  # the elementwise work on one output value, in multiply-adds (measured on 2 cores)


@dataclass(frozen=True)
class AdaRoundConfig:
    rows: int = 2048            # output positions per layer the reconstruction is fitted on
    step_work: int = 2 ** 26    # the work of one step, in multiply-adds, sets its minibatch: all rows for a
    min_batch: int = 256        # small layer, down to min_batch rows for the largest
    iterations: int = 500       # fewer, down to min_iterations, for a layer whose min_batch step costs over
    min_iterations: int = 100   # step_work: in proportion, so that it costs no more than iterations x step_work
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


# The steps' elementwise work, each fused into one pass over its arrays on all cores. Weights are viewed
# as 2-D [rows, cols] with the per-channel scale along one of the two (the other's scale is 1).
_F = np.float32
_STRETCH, _SHIFT, _SATURATES = _F(ZETA - GAMMA), _F(GAMMA), _F(SATURATES_AT)
_B1, _B2 = _F(0.9), _F(0.999)


@numba.njit(parallel=True, cache=True)
def _soft_weights(v, base, ceiling, row_scale, col_scale, h, dh_dv, w_soft):
    """h = clip(sigmoid(v) (zeta - gamma) + gamma, 0, 1), dh/dv, and w_soft = (base + min(h, ceiling)) s."""
    for i in numba.prange(v.shape[0]):
        for j in range(v.shape[1]):
            if abs(v[i, j]) < _SATURATES:
                sig = _F(1) / (_F(1) + np.exp(-v[i, j]))
                h[i, j] = min(max(sig * _STRETCH + _SHIFT, _F(0)), _F(1))
                dh_dv[i, j] = sig * (_F(1) - sig) * _STRETCH
            else:  # saturated: h is exactly 0 or 1
                h[i, j] = _F(1) if v[i, j] > 0 else _F(0)
                dh_dv[i, j] = _F(0)
            w_soft[i, j] = (base[i, j] + min(h[i, j], ceiling[i, j])) * (row_scale[i] * col_scale[j])


@numba.njit(parallel=True, cache=True)
def _adam_step(v, grad, h, dh_dv, row_scale, col_scale, m, s2, regularisation, beta, step_size, eps):
    """One Adam step on v from the output gradient (w.r.t. the soft weights) plus the rounding
    regulariser's, d/dh of regularisation * sum(1 - |2h - 1|^beta)."""
    for i in numba.prange(v.shape[0]):
        for j in range(v.shape[1]):
            g = _F(0)
            if dh_dv[i, j] != 0:  # else h is saturated and v gets no gradient
                g = grad[i, j] * (row_scale[i] * col_scale[j])
                centred = _F(2) * h[i, j] - _F(1)
                if regularisation > 0 and centred != 0:
                    g -= regularisation * _F(2) * beta * np.copysign(abs(centred) ** (beta - _F(1)), centred)
                g *= dh_dv[i, j]
            m[i, j] = _B1 * m[i, j] + (_F(1) - _B1) * g
            s2[i, j] = _B2 * s2[i, j] + (_F(1) - _B2) * g * g
            v[i, j] -= step_size * m[i, j] / (np.sqrt(s2[i, j]) + eps)


@numba.njit(parallel=True, cache=True)
def _output_gradient(y, bias, target, lo, hi, coefficient):
    """In place: y + bias -> d loss / d y of the clipped reconstruction loss, times `coefficient`."""
    for i in numba.prange(y.shape[0]):
        for j in range(y.shape[1]):
            out = y[i, j] + bias[j]
            y[i, j] = (out - target[i, j]) * coefficient if lo < out < hi else _F(0)


@numba.njit(parallel=True, cache=True)
def _depthwise_gradient(patches, rows, w, bias, target, lo, hi, coefficient, partial):
    """d loss / d w of a depthwise layer in one pass over its patches: each row's output, its gradient
    (as `_output_gradient`) and its share of dw, summed per thread into partial[t] (sum them after)."""
    threads = len(partial)
    for t in numba.prange(threads):
        y = np.empty(w.shape[1], w.dtype)
        dw = partial[t]
        dw[:] = 0
        for r in range(t * len(rows) // threads, (t + 1) * len(rows) // threads):
            row = patches[rows[r]]
            for c in range(w.shape[1]):
                y[c] = bias[c]
            for k in range(w.shape[0]):
                for c in range(w.shape[1]):
                    y[c] += row[k, c] * w[k, c]
            for c in range(w.shape[1]):
                y[c] = (y[c] - target[r, c]) * coefficient if lo < y[c] < hi else _F(0)
            for k in range(w.shape[0]):
                for c in range(w.shape[1]):
                    dw[k, c] += row[k, c] * y[c]


def _as_matrix(weight: np.ndarray, scale: np.ndarray, axis: int):
    """The weight as [rows, cols] and its scale as (row_scale, col_scale), float64."""
    if axis == 0:
        matrix = weight.reshape(len(weight), -1)
        return matrix, np.broadcast_to(scale, len(matrix)), np.ones(matrix.shape[1])
    matrix = weight.reshape(-1, weight.shape[-1])
    return matrix, np.ones(len(matrix)), np.broadcast_to(scale, matrix.shape[1])


def round_layer(node: Node, weight: np.ndarray, bias: np.ndarray, params: QuantParams, patches: np.ndarray,
                output_range: tuple[float, float], config: AdaRoundConfig) -> np.ndarray:
    """The learnt rounding of one layer: 1 where a weight rounds up from floor(w/s), else 0 (int8)."""
    with _KERNELS:
        return _round_layer(node, weight, bias, params, patches, output_range, config)


def _round_layer(node: Node, weight: np.ndarray, bias: np.ndarray, params: QuantParams, patches: np.ndarray,
                 output_range: tuple[float, float], config: AdaRoundConfig) -> np.ndarray:
    lo, hi = _F(output_range[0]), _F(output_range[1])
    rng = np.random.default_rng(config.seed)
    axis = WEIGHT_AXIS[node.op]
    depthwise = node.op == "depthwise_conv2d"
    patches = np.ascontiguousarray(patches, _F)
    forward, _ = _linear_fns(node, patches)
    target = forward(weight.astype(_F)) + bias.astype(_F)
    np.clip(target, lo, hi, out=target)
    patches = patches.reshape(len(patches), -1, patches.shape[-1]) if depthwise else patches.reshape(len(patches), -1)
    w_float, row_scale, col_scale = _as_matrix(weight, params.scale.astype(np.float64).reshape(-1), axis)
    w_scale = row_scale[:, None] * col_scale[None, :]
    base = np.floor(w_float / w_scale)  # as quantize_weight floors, in float64
    v = _initial_v(w_float / w_scale - base).astype(_F)
    ceiling = (WEIGHT_MAX - base).astype(_F)  # base + h never passes the int8 maximum
    base, bias, row_scale, col_scale = (a.astype(_F) for a in (base, bias, row_scale, col_scale))
    h, dh_dv, w_soft, m, s2 = (np.zeros_like(v) for _ in range(5))
    everything = np.arange(len(patches))
    partial = np.empty((numba.get_num_threads(), *v.shape), _F) if depthwise else None

    def gradient(rows: np.ndarray, target: np.ndarray, coefficient: np.float32) -> np.ndarray:
        """d loss / d w_soft on the patches `rows`, whose clipped float outputs are `target`."""
        if depthwise:
            _depthwise_gradient(patches, rows, w_soft, bias, target, lo, hi, coefficient, partial)
            return partial.sum(axis=0)
        x = patches if rows is everything else patches[rows]
        d_y = x @ w_soft.T
        _output_gradient(d_y, bias, target, lo, hi, coefficient)
        return d_y.T @ x

    outputs = weight.shape[axis]
    row_work = weight.size + OUTPUT_WORK * outputs
    batch = min(len(patches), max(config.min_batch, config.step_work // row_work))
    iterations = max(min(config.iterations, config.min_iterations),  # no layer costs much over iterations x step_work
                     round(config.iterations * min(1.0, config.step_work / (batch * row_work))))
    warm = int(config.warmup * iterations)
    order, cursor = everything, len(patches)
    for step in range(1, iterations + 1):
        if batch == len(patches):
            rows = everything  # every row each step: the order does not matter
        else:
            if cursor + batch > len(patches):  # a new epoch
                order, cursor = rng.permutation(len(patches)), 0
            rows = order[cursor:cursor + batch]
            cursor += batch
        _soft_weights(v, base, ceiling, row_scale, col_scale, h, dh_dv, w_soft)
        grad = gradient(rows, target if rows is everything else target[rows], _F(2 / len(rows)))
        regularisation, beta = _F(0), _F(0)
        if step > warm:
            progress = (step - warm) / max(1, iterations - warm)
            regularisation = _F(config.regularisation)
            beta = _F(config.beta[0] + (config.beta[1] - config.beta[0]) * progress)
        step_size = _F(config.learning_rate * np.sqrt(1 - 0.999 ** step) / (1 - 0.9 ** step))
        _adam_step(v, grad, h, dh_dv, row_scale, col_scale, m, s2, regularisation, beta, step_size,
                   _F(1e-8 * np.sqrt(1 - 0.999 ** step)))
    _soft_weights(v, base, ceiling, row_scale, col_scale, h, dh_dv, w_soft)
    return (h >= 0.5).astype(np.int8).reshape(weight.shape)


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
