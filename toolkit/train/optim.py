"""Optimizer and loss factories (mindcv's `create_optimizer` / `create_loss`, selected by `name`)."""

from __future__ import annotations

from toolkit.errors import ConfigError
from toolkit.train.config import LossConfig, OptimizerConfig

# Parameters that get no weight decay with weight_decay_filter = norm_and_bias: BN scale/shift and biases.
NO_DECAY_SUFFIXES = (".gamma", ".beta", ".bias")
# MindSpore optimizers that take `loss_scale` (they divide the gradients by it themselves).
TAKES_LOSS_SCALE = ("sgd", "momentum", "adam", "rmsprop")


def _param_groups(network, cfg: OptimizerConfig, lr: list[float], lr_scale: dict[str, float]) -> list:
    """The trainable parameters, grouped by their weight decay (`weight_decay_filter`) and by their learning
    rate (`lr_scale`: name prefix -> factor of `lr`)."""
    params = network.trainable_params()
    filtered = cfg.weight_decay_filter != "disable" and cfg.weight_decay != 0

    def group_of(param) -> tuple[float | None, float]:
        decay = (0.0 if param.name.endswith(NO_DECAY_SUFFIXES) else cfg.weight_decay) if filtered else None
        return decay, next((f for prefix, f in lr_scale.items() if param.name.startswith(prefix)), 1.0)

    keys = sorted({group_of(p) for p in params}, key=str)
    if not filtered and keys == [(None, 1.0)]:
        return params
    groups = []
    for decay, factor in keys:
        group = {"params": [p for p in params if group_of(p) == (decay, factor)]}
        if decay is not None:
            group["weight_decay"] = decay
        if factor != 1.0:
            group["lr"] = [factor * x for x in lr]
        groups.append(group)
    return groups + [{"order_params": params}]


def create_optimizer(network, cfg: OptimizerConfig, lr: list[float], loss_scale: float = 1.0,
                     lr_scale: dict[str, float] | None = None):
    """A MindSpore optimizer over `network`'s trainable parameters with a per-step learning rate list
    (times `lr_scale[prefix]` for the parameters whose name starts with that prefix).

    `loss_scale` is the fixed loss scale the optimizer divides out of the gradients (1 when the
    train cell unscales them itself).
    """
    from mindspore import nn

    if loss_scale != 1.0 and cfg.name not in TAKES_LOSS_SCALE:
        raise ConfigError(f"optimizer '{cfg.name}' cannot undo a fixed loss scale of {loss_scale}",
                          "set loss_scale: 1, loss_scale_type: dynamic, or use opt: momentum / sgd / adam")
    params = _param_groups(network, cfg, lr, lr_scale or {})
    weight_decay = cfg.weight_decay if cfg.weight_decay_filter == "disable" else 0.0
    if cfg.name == "momentum":
        return nn.Momentum(params, lr, cfg.momentum, weight_decay=weight_decay, loss_scale=loss_scale,
                           use_nesterov=cfg.nesterov)
    if cfg.name == "sgd":
        return nn.SGD(params, lr, momentum=cfg.momentum, weight_decay=weight_decay, nesterov=cfg.nesterov,
                      loss_scale=loss_scale)
    if cfg.name == "adam":
        return nn.Adam(params, lr, eps=cfg.eps, weight_decay=weight_decay, loss_scale=loss_scale)
    if cfg.name == "adamw":
        return nn.AdamWeightDecay(params, lr, eps=cfg.eps, weight_decay=weight_decay)
    if cfg.name == "rmsprop":
        return nn.RMSProp(params, lr, momentum=cfg.momentum, epsilon=cfg.eps, weight_decay=weight_decay,
                          loss_scale=loss_scale)
    raise ConfigError(f"unknown optimizer '{cfg.name}'", "use sgd, momentum, adam, adamw or rmsprop")


def create_loss(cfg: LossConfig, num_classes: int):
    """CE: softmax cross-entropy with label smoothing; BCE: per-class sigmoid on smoothed one-hot targets."""
    from mindspore import nn, ops

    if cfg.name == "CE":
        return nn.CrossEntropyLoss(reduction=cfg.reduction, label_smoothing=cfg.label_smoothing)

    class SmoothedBCE(nn.LossBase):
        def __init__(self):
            super().__init__(reduction=cfg.reduction)
            self.bce = nn.BCEWithLogitsLoss(reduction="none")
            self.on = 1.0 - cfg.label_smoothing + cfg.label_smoothing / num_classes
            self.off = cfg.label_smoothing / num_classes

        def construct(self, logits, labels):
            target = ops.one_hot(labels, num_classes, self.on, self.off).astype(logits.dtype)
            return self.get_loss(self.bce(logits, target).sum(axis=1))

    return SmoothedBCE()
