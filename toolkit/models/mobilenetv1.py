"""MobileNetV1 in MindSpore.

Paper: MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications,
https://arxiv.org/abs/1704.04861

The layer order, explicit padding and parameter names (`features.N...`, `classifier...`) follow
mindcv's `mobilenetv1.py`, so mindcv's released ImageNet checkpoints load unchanged (with
activation="relu", which is what they were trained with).
"""

from __future__ import annotations

from dataclasses import dataclass

import mindspore.common.initializer as init
from mindspore import Tensor, nn, ops

from toolkit.models.registry import register_model

# (output channels, depthwise stride) of the 13 depthwise-separable blocks.
BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)
STEM_CHANNELS = 32
WIDTHS = (0.25, 0.5, 0.75, 1.0)
ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6}
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 224


def _conv_bn_act(in_ch: int, out_ch: int, kernel: int, stride: int, groups: int, act: str) -> list[nn.Cell]:
    return [
        nn.Conv2d(in_ch, out_ch, kernel, stride, pad_mode="pad", padding=kernel // 2, group=groups, has_bias=False),
        nn.BatchNorm2d(out_ch),
        ACTIVATIONS[act](),
    ]


class MobileNetV1(nn.Cell):
    """MobileNetV1 with a width multiplier; any input size from 32 to 224."""

    def __init__(self, width: float = 1.0, num_classes: int = 1001, in_channels: int = 3,
                 activation: str = "relu6", drop_rate: float = 0.0) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.width = width
        self.activation = activation
        self.num_classes = num_classes
        channels = int(STEM_CHANNELS * width)
        features = _conv_bn_act(in_channels, channels, 3, 2, 1, activation)
        for out_ch, stride in BLOCKS:
            out_ch = int(out_ch * width)
            features.append(nn.SequentialCell(
                _conv_bn_act(channels, channels, 3, stride, channels, activation)
                + _conv_bn_act(channels, out_ch, 1, 1, 1, activation)))
            channels = out_ch
        self.features = nn.SequentialCell(features)
        self.num_features = channels
        self.dropout = nn.Dropout(p=drop_rate) if drop_rate > 0 else nn.Identity()
        self.classifier = nn.Dense(channels, num_classes)
        self._initialize_weights()

    def _initialize_weights(self) -> None:
        for _, cell in self.cells_and_names():
            if isinstance(cell, nn.Conv2d):
                cell.weight.set_data(init.initializer(init.XavierUniform(), cell.weight.shape, cell.weight.dtype))
            elif isinstance(cell, nn.Dense):
                cell.weight.set_data(init.initializer(init.TruncatedNormal(), cell.weight.shape, cell.weight.dtype))

    def get_classifier(self) -> nn.Dense:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = nn.Dense(self.num_features, num_classes)
        self.classifier.weight.set_data(
            init.initializer(init.TruncatedNormal(), self.classifier.weight.shape, self.classifier.weight.dtype))

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = ops.mean(x, (2, 3), keep_dims=False)
        if pre_logits:
            return x
        return self.classifier(self.dropout(x))

    def construct(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _create(width: float, **kwargs) -> MobileNetV1:
    return MobileNetV1(width=width, **kwargs)


def model_name(width: float) -> str:
    """`0.25 -> "mobilenet_v1_025"`."""
    return f"mobilenet_v1_{round(width * 100):03d}"


@dataclass(frozen=True)
class PretrainedCfg:
    """Preprocessing and head facts that travel with the model (the only copy of mean/std)."""

    input_size: tuple[int, int, int] = (3, 224, 224)
    interpolation: str = "bilinear"
    crop_pct: float = 0.875
    mean: tuple[float, float, float] = (0.485 * 255, 0.456 * 255, 0.406 * 255)
    std: tuple[float, float, float] = (0.229 * 255, 0.224 * 255, 0.225 * 255)
    num_classes: int = 1001
    first_conv: str = "features.0"
    classifier: str = "classifier"


default_cfgs = {model_name(w): PretrainedCfg() for w in WIDTHS}


@register_model
def mobilenet_v1_025(**kwargs) -> MobileNetV1:
    """MobileNetV1, width 0.25 (0.47 M parameters with 1001 classes)."""
    return _create(0.25, **kwargs)


@register_model
def mobilenet_v1_050(**kwargs) -> MobileNetV1:
    """MobileNetV1, width 0.5 (1.34 M parameters)."""
    return _create(0.5, **kwargs)


@register_model
def mobilenet_v1_075(**kwargs) -> MobileNetV1:
    """MobileNetV1, width 0.75 (2.60 M parameters)."""
    return _create(0.75, **kwargs)


@register_model
def mobilenet_v1_100(**kwargs) -> MobileNetV1:
    """MobileNetV1, width 1.0 (4.25 M parameters)."""
    return _create(1.0, **kwargs)
