"""MobileNetV1 with fake quantization, as our int8 `.tflite` computes it (see `fake_quant`).

`QATMobileNetV1(float_net)` wraps a trained `MobileNetV1`: every conv-BN-activation triple becomes
one layer with the BN folded into the weights (with its frozen statistics, as the converter folds
them; gamma and beta keep training), per-channel int8 weights, an int32 bias and the activation
quantized after the fused ReLU / ReLU6. The global mean keeps its input's parameters, as the int8
AVERAGE_POOL_2D does (`convert` gives a QAT model's MEAN the same). The parameters keep MobileNetV1's
names (`features.N...`, `classifier...`); the ranges are `qat.<tensor>.lo / .hi` and activation
equalization's channel scales the constants `qat.layerN.out_eq / .in_eq`, so a QAT checkpoint (scales
baked in) loads as a float MobileNetV1 too.
"""

from __future__ import annotations

import numpy as np
from mindspore import dtype as mstype
from mindspore import Parameter, Tensor, nn, ops

from quantize.params import QMAX, QMIN, WEIGHT_AXIS, WEIGHT_MAX
from quantize.qat.fake_quant import (ActivationQuantizer, quantize_bias, quantize_weight, requantize, round_ste,
                                     weight_scale)

RANGE_PREFIX = "qat."
# IR weight layout -> MindSpore's
MINDSPORE_LAYOUT = {"conv2d": (0, 3, 1, 2), "depthwise_conv2d": (3, 0, 1, 2), "fully_connected": (0, 1)}


class FoldedLayer(nn.Cell):
    """Conv + frozen-statistics BN + activation, with int8 weights, int32 bias and an int8 output."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, act: str, quantizer: ActivationQuantizer):
        super().__init__()
        self.conv, self.bn, self.out_quant = conv, bn, quantizer
        self.stride, self.padding, self.groups = conv.stride, conv.padding, conv.group
        self.relu6 = act == "relu6"
        self.eps = bn.eps
        self.depthwise = conv.group > 1
        # Activation equalization's channel scales, constants outside the trained parametrization: the folded
        # output channel times out_eq, the input channel divided by in_eq (see `equalize_network`).
        self.out_eq = Parameter(Tensor(np.ones(conv.out_channels, np.float32)), requires_grad=False)
        self.in_eq = Parameter(Tensor(np.ones(conv.in_channels, np.float32)), requires_grad=False)

    def name_parameters(self, prefix: str) -> None:
        self.out_eq.name, self.in_eq.name = f"{prefix}.out_eq", f"{prefix}.in_eq"

    @property
    def input_channel_shape(self) -> tuple:
        """How a per-input-channel vector broadcasts over conv.weight: [C, 1, kh, kw] depthwise, [O, I, kh, kw]."""
        return (-1, 1, 1, 1) if self.depthwise else (1, -1, 1, 1)

    def weight_multiplier(self):
        """What the folded weight is conv.weight times: the BN factor and out_eq per output channel over in_eq
        per input channel."""
        return (self.bn_factor() * self.out_eq).reshape(-1, 1, 1, 1) / self.in_eq.reshape(self.input_channel_shape)

    def bake_equalization(self) -> None:
        """Move out_eq into the BN's gamma and beta and in_eq into conv.weight, and reset both to 1: the same
        function in the float MobileNetV1's parameters, as `convert` reads a QAT checkpoint."""
        out_eq, in_eq = self.out_eq.asnumpy(), self.in_eq.asnumpy().reshape(self.input_channel_shape)
        for parameter in (self.bn.gamma, self.bn.beta):
            parameter.set_data(Tensor(parameter.asnumpy() * out_eq, parameter.dtype))
        self.conv.weight.set_data(Tensor(self.conv.weight.asnumpy() / in_eq, self.conv.weight.dtype))
        for parameter in (self.out_eq, self.in_eq):
            parameter.set_data(Tensor(np.ones(parameter.shape, np.float32)))

    def bn_factor(self):
        """gamma / sqrt(moving variance + eps): the BN's scale per output channel."""
        return self.bn.gamma / ops.sqrt(self.bn.moving_variance + self.eps)

    def folded(self):
        """BN folded into (weight [O, I, kh, kw], bias [O]) with the moving statistics."""
        factor = self.bn_factor()
        weight = self.conv.weight * self.weight_multiplier()
        bias = (self.bn.beta - self.bn.moving_mean * factor) * self.out_eq
        return weight, bias

    def round_weights_to(self, target: np.ndarray, plan_scale: np.ndarray) -> int:
        """Move the folded weights that nearest rounding would not put on `target` (int8, this layout) onto
        their target grid point (see `off_target`); returns how many moved."""
        weight, _ = self.folded()
        scale = weight_scale(weight, True).asnumpy()
        multiplier = self.weight_multiplier().asnumpy()
        move = off_target(weight.asnumpy(), scale, target, plan_scale) & (multiplier != 0)
        grid = target * scale.reshape(-1, 1, 1, 1) / np.where(multiplier != 0, multiplier, 1)
        self.conv.weight.set_data(Tensor(np.where(move, grid, self.conv.weight.asnumpy()).astype(np.float32)))
        return int(move.sum())

    def construct(self, x, input_scale):
        """x: the input's int8 values minus its zero point; returns the same for the output, scale, zero point."""
        weight, bias = self.folded()
        w_scale = weight_scale(weight, True)
        acc = ops.conv2d(x, quantize_weight(weight, w_scale), stride=self.stride, pad_mode="pad",
                         padding=self.padding, groups=self.groups)
        return requantize_output(acc, quantize_bias(bias, input_scale, w_scale).reshape(1, -1, 1, 1),
                                 input_scale, w_scale.reshape(1, -1, 1, 1), self.out_quant,
                                 "relu6" if self.relu6 else "relu", "double")


def requantize_output(products, bias, input_scale, w_scale, quantizer: ActivationQuantizer, act: str, rounding: str):
    """int32 accumulator (products + bias, both integers) at input_scale * w_scale -> (int8 output minus zero
    point, scale, zero point), clamped to the fused activation's range as `reference.activation_range` does.
    The bias's real value does not depend on the input scale (it is requantized to it), nor its gradient. The
    requantization multiplier is computed in float64 from the float32 scales, as the converter computes it."""
    acc_scale = input_scale * w_scale
    real = products * acc_scale + bias * ops.stop_gradient(acc_scale)
    y = ops.stop_gradient(real)
    y = ops.clamp(y, 0.0, 6.0) if act == "relu6" else ops.relu(y) if act == "relu" else y
    scale, zero_point = quantizer.training_params(y)
    multiplier = ops.stop_gradient(ops.cast(input_scale, mstype.float64) * ops.cast(w_scale, mstype.float64)
                                   / ops.cast(scale, mstype.float64))
    q = requantize(products + bias, multiplier, rounding, real / scale) + zero_point
    lo, hi = ops.full_like(zero_point, QMIN), ops.full_like(zero_point, QMAX)
    if act in ("relu", "relu6"):
        lo = ops.maximum(zero_point, lo)
    if act == "relu6":
        hi = ops.minimum(zero_point + round_ste(6.0 / scale), hi)
    return ops.clip(q, lo, hi) - zero_point, scale, zero_point


class QuantizedDense(nn.Cell):
    """The classifier with int8 weights (per tensor or per channel, as `WEIGHT_AXIS` says), int32 bias."""

    def __init__(self, dense: nn.Dense, quantizer: ActivationQuantizer):
        super().__init__()
        self.dense, self.out_quant = dense, quantizer
        self.per_channel = WEIGHT_AXIS["fully_connected"] is not None

    def round_weights_to(self, target: np.ndarray, plan_scale: np.ndarray) -> int:
        """As `FoldedLayer.round_weights_to`, for the classifier's weights."""
        weight = self.dense.weight.asnumpy()
        scale = weight_scale(self.dense.weight, self.per_channel).asnumpy()
        move = off_target(weight, scale, target, plan_scale)
        grid = target * (scale.reshape(-1, 1) if scale.size > 1 else scale)
        self.dense.weight.set_data(Tensor(np.where(move, grid, weight).astype(np.float32)))
        return int(move.sum())

    def construct(self, x, input_scale):
        w_scale = weight_scale(self.dense.weight, self.per_channel)
        products = ops.matmul(x, quantize_weight(self.dense.weight, w_scale).T)
        return requantize_output(products, quantize_bias(self.dense.bias, input_scale, w_scale), input_scale, w_scale,
                                 self.out_quant, "none", "ruy")


class FloatDense(nn.Cell):
    """The classifier in float32 on the dequantized int8 pooled features (a recipe's `classifier: float`)."""

    def __init__(self, dense: nn.Dense):
        super().__init__()
        self.dense = dense

    def construct(self, x, input_scale):
        return ops.matmul(x * input_scale, self.dense.weight.T) + self.dense.bias


def global_pool(x, zero_point):
    """The int8 global average pool: the mean of the int8 values rounded half away, on the input's grid."""
    total = (x + zero_point).sum(axis=(2, 3))
    count = x.shape[2] * x.shape[3]
    return round_ste(total / count) - zero_point


def _triples(features: nn.SequentialCell) -> list[tuple]:
    cells = []
    for cell in features:
        cells.extend(cell if isinstance(cell, nn.SequentialCell) else [cell])
    return [tuple(cells[i:i + 3]) for i in range(0, len(cells), 3)]


class QATMobileNetV1(nn.Cell):
    """A trained MobileNetV1 under fake quantization; `construct` returns the dequantized int8 logits."""

    def __init__(self, net, ranges: str = "lsq", ema_decay: float = 0.99, fake_quant: bool = True,
                 classifier: str = "int8"):
        super().__init__()
        self.fake_quant = fake_quant  # False: the float model with BN folded (the distillation teacher)
        self.float_classifier = classifier == "float"
        names = {id(p): p.name for p in net.get_parameters()}
        self.width, self.num_classes, self.activation = net.width, net.num_classes, net.activation

        def quantizer(tensor: str, nonnegative: bool) -> ActivationQuantizer:
            return ActivationQuantizer(f"{RANGE_PREFIX}{tensor}", ranges, nonnegative, ema_decay)

        self.input_quant = quantizer("input", False)
        self.layers = nn.CellList([FoldedLayer(conv, bn, net.activation, quantizer(f"layer{i}", True))
                                   for i, (conv, bn, _) in enumerate(_triples(net.features))])
        self.classifier = (FloatDense(net.classifier) if self.float_classifier
                           else QuantizedDense(net.classifier, quantizer("logits", False)))
        for param in self.get_parameters():  # MindSpore renamed them after this cell's attribute paths
            param.name = names.get(id(param), param.name)
        for quantizer_cell in self.quantizers():
            quantizer_cell.name_parameters()
        for i, layer in enumerate(self.layers):
            layer.name_parameters(f"{RANGE_PREFIX}layer{i}")

    def quantizers(self) -> list[ActivationQuantizer]:
        """The activation quantizers in graph order: input, each layer's output, logits (unless in float)."""
        logits = [] if self.float_classifier else [self.classifier.out_quant]
        return [self.input_quant] + [layer.out_quant for layer in self.layers] + logits

    def bake_equalization(self) -> None:
        """Fold every layer's equalization constants into its parameters (see `FoldedLayer.bake_equalization`)."""
        for layer in self.layers:
            layer.bake_equalization()

    def activation_params(self) -> list[tuple[float, int]]:
        """(scale, zero point) per activation tensor, in `quantizers()` order, as training computes them."""
        params = []
        for quantizer in self.quantizers():
            scale, zero_point = quantizer.quant_params()
            params.append((float(scale.asnumpy()[0]), int(zero_point.asnumpy()[0])))
        return params

    def construct(self, x):
        if not self.fake_quant:
            return self.float_forward(x)[-1]
        x, scale, zero_point = self.input_quant(x)
        for layer in self.layers:
            x, scale, zero_point = layer(x, scale)
        pooled = global_pool(x, zero_point)
        if self.float_classifier:
            return self.classifier(pooled, scale)
        logits, scale, _ = self.classifier(pooled, scale)
        return logits * scale

    def float_forward(self, x) -> list:
        """The float model (BN folded with its moving statistics): the tensors QAT quantizes, in order."""
        outputs = [x]
        for layer in self.layers:
            weight, bias = layer.folded()
            x = ops.conv2d(x, weight, stride=layer.stride, pad_mode="pad", padding=layer.padding,
                           groups=layer.groups) + bias.reshape(1, -1, 1, 1)
            x = ops.clamp(x, 0.0, 6.0) if layer.relu6 else ops.relu(x)
            outputs.append(x)
        dense = self.classifier.dense
        outputs.append(ops.matmul(ops.mean(x, (2, 3)), dense.weight.T) + dense.bias)
        return outputs


def initialise_ranges(network: QATMobileNetV1, batches) -> int:
    """Set every range to the min / max its tensor takes over `batches` (NCHW float32 arrays); returns the
    number of images seen."""
    lows = highs = None
    seen = 0
    for images in batches:
        outputs = [o.asnumpy() for o in network.float_forward(Tensor(np.asarray(images, np.float32)))]
        lo, hi = [float(o.min()) for o in outputs], [float(o.max()) for o in outputs]
        lows = lo if lows is None else np.minimum(lows, lo)
        highs = hi if highs is None else np.maximum(highs, hi)
        seen += len(images)
    for quantizer, lo, hi in zip(network.quantizers(), lows, highs):
        quantizer.set_range(float(lo), float(hi))
    return seen


def load_qat_network(path) -> QATMobileNetV1:
    """The fake-quant network of a QAT checkpoint (weights and learnt ranges), in eval mode."""
    from quantize.qat.plan import CARD_KEY
    from toolkit.card import load_card
    from toolkit.models import create_model
    from toolkit.models.checkpoint import read_checkpoint

    card = load_card(path)
    net = create_model(card.model, num_classes=card.num_classes, activation=card.activation)
    qat = card.extra[CARD_KEY]
    network = QATMobileNetV1(net, qat["ranges"], classifier=qat.get("classifier", "int8"))
    saved = read_checkpoint(path)
    for param in network.get_parameters():
        if param.name in saved:  # a checkpoint saves its equalization baked in (its out_eq / in_eq are 1)
            param.set_data(Tensor(saved[param.name].asnumpy(), param.dtype))
    network.set_train(False)
    return network


def equalize_network(network: QATMobileNetV1, graph, equalization) -> None:
    """Give the network the channel scales our PTQ's activation equalization chose (`equalization`: an
    ActivationEqualizationReport of `graph`), as `quantize.act_equalization` rescales the graph: the first
    layer's folded output channel i times s_i, the consuming layer's input channel i divided by s_i. They are
    constants (`out_eq`, `in_eq`) outside the trained parameters: folded into them, s_i would scale those
    parameters' effective learning rate by 1 / s_i^2 (the first layer's) and s_i^2 (the consumer's), up to
    4096x apart at the largest scale."""
    from quantize.transform import quantizable_layers

    nodes = {n.name: n for n in quantizable_layers(graph)}
    cells = dict(zip(nodes, list(network.layers) + [network.classifier], strict=True))
    for name, scales in equalization.scales.items():
        second = graph.consumers(nodes[name].outputs[0])[0]
        cells[name].out_eq.set_data(Tensor(scales.astype(np.float32)))
        cells[second.name].in_eq.set_data(Tensor(scales.astype(np.float32)))


def start_from_plan(network: QATMobileNetV1, graph, plan, equalization=None) -> int:
    """Start where our PTQ ends (`plan`: a QuantPlan of `graph`, the lowered float graph of the same model):
    every range on the int8 grid [(-128 - zp) * s, (127 - zp) * s] of its tensor, every bias at its
    bias-corrected value (the correction's shift over out_eq added to the BN beta, or to the classifier's bias),
    and every weight AdaRound rounded away from nearest moved onto its chosen grid point, so that the fake
    quantization's nearest rounding gives AdaRound's int8 weights. `equalization`: the PTQ's activation
    equalization of `graph`, applied first (see `equalize_network`). Returns the number of weights moved."""
    from quantize.params import quantize_weight as plan_int8_weight
    from quantize.transform import quantizable_layers

    if equalization is not None:
        equalize_network(network, graph, equalization)
    layers = quantizable_layers(graph)
    tensors = [graph.inputs[0]] + [n.outputs[0] for n in layers if n.name not in plan.float_layers]
    for quantizer, tensor in zip(network.quantizers(), tensors, strict=True):
        params = plan.activations[tensor]
        scale, zero_point = float(params.scale[0]), int(params.zero_point[0])
        quantizer.set_range((QMIN - zero_point) * scale, (QMAX - zero_point) * scale)
    biases = [(layer.bn.beta, layer.out_eq.asnumpy()) for layer in network.layers]
    biases.append((network.classifier.dense.bias, 1.0))
    for (bias, out_eq), node in zip(biases, layers, strict=True):
        if node.name in plan.biases:  # the shift is in the equalized graph's units
            shift = (plan.biases[node.name] - graph.const(node.inputs[2])) / out_eq
            bias.set_data(Tensor(bias.asnumpy() + shift.astype(np.float32), bias.dtype))
    moved = 0
    cells = list(network.layers) + [network.classifier]
    for cell, node in zip(cells, layers, strict=True):
        if node.name not in plan.round_up:
            continue
        params = plan.weights[node.name]
        target = plan_int8_weight(graph.const(node.inputs[1]), params, WEIGHT_AXIS[node.op], plan.round_up[node.name])
        moved += cell.round_weights_to(target.transpose(MINDSPORE_LAYOUT[node.op]), params.scale)
    return moved


def off_target(weight: np.ndarray, scale: np.ndarray, target: np.ndarray, plan_scale: np.ndarray) -> np.ndarray:
    """Where `weight` (at per-channel or per-tensor `scale`) would round to nearest elsewhere than `target`
    (int8), True; never a channel's largest |w| (it sets the scale) nor a channel whose scale is not the
    plan's (`plan_scale`: bias fitting raised it, so `target` is on another grid)."""
    shape = (-1,) + (1,) * (weight.ndim - 1) if scale.size > 1 else ()
    s = scale.reshape(shape)
    scaled = weight / s
    nearest = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5), -WEIGHT_MAX, WEIGHT_MAX)
    magnitude = np.abs(weight)
    peak = magnitude.reshape(len(weight), -1).max(axis=1).reshape(shape) if scale.size > 1 else magnitude.max()
    same_grid = np.isclose(scale, plan_scale.astype(np.float32), rtol=1e-5, atol=0).reshape(shape)
    return (nearest != target) & (magnitude < peak) & same_grid
