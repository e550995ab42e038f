"""Exponential moving average of all network weights (BN statistics included), updated after every step."""

from __future__ import annotations

import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

RAMP_STEPS = 2000.0  # the decay ramps up as 1 - exp(-updates / RAMP_STEPS), as in mindcv and timm


class EMA(nn.Cell):
    """`shadow = d * shadow + (1 - d) * weight`, with `d = decay * (1 - exp(-updates / 2000))`."""

    def __init__(self, network: nn.Cell, decay: float):
        super().__init__()
        self.weights = ParameterTuple(network.get_parameters())
        self.shadow = self.weights.clone(prefix="ema", init="same")
        self.decay = decay
        self.updates = Parameter(Tensor(0.0, ms.float32), name="ema_updates", requires_grad=False)
        self.hyper_map = ops.HyperMap()

    def construct(self):
        updates = ops.assign_add(self.updates, 1.0)
        d = self.decay * (1.0 - ops.exp(-updates / RAMP_STEPS))
        return self.hyper_map(ops.partial(_update, d), self.shadow, self.weights)

    def shadow_arrays(self) -> dict:
        """{network parameter name: EMA value} for copying into a clean model."""
        return {w.name: s.asnumpy() for w, s in zip(self.weights, self.shadow)}

    def load_arrays(self, arrays: dict, updates: float) -> None:
        for w, s in zip(self.weights, self.shadow):
            s.set_data(Tensor(arrays[w.name], s.dtype))
        self.updates.set_data(Tensor(updates, ms.float32))


def _update(d, shadow, weight):
    return ops.assign(shadow, d * shadow + (1.0 - d) * weight.astype(shadow.dtype))
