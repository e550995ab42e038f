"""The train step with gradient clipping: mindcv's `clip_grad` / `clip_value` (its `TrainStep`).

The gradients of the loss-scaled loss are unscaled, averaged over the data-parallel workers, checked
for overflow (with a loss-scale manager: dynamic, or fixed with `drop_overflow_update`), then scaled
by `clip_value / max(norm, clip_value)` (`ops.clip_by_global_norm`'s rule), where `norm` is the L2
norm over all of them. Clipping follows the all-reduce, so every worker clips the same averaged
gradient and one device clips as many would (mindcv clips each worker's gradient before it).
"""

from __future__ import annotations

from mindspore import Tensor, nn, ops
from mindspore import dtype as mstype

_unscale = ops.MultitypeFuncGraph("unscale")
_square_sum = ops.MultitypeFuncGraph("square_sum")
_scale = ops.MultitypeFuncGraph("scale")


@_unscale.register("Tensor", "Tensor")
def _unscale_tensor(loss_scale, grad):
    return grad * ops.cast(ops.reciprocal(loss_scale), ops.dtype(grad))


@_square_sum.register("Tensor")
def _square_sum_tensor(grad):
    return ops.reduce_sum(ops.square(ops.cast(grad, mstype.float32)))


@_scale.register("Tensor", "Tensor")
def _scale_tensor(factor, grad):
    return grad * ops.cast(factor, ops.dtype(grad))


class ClippedTrainStep(nn.TrainOneStepWithLossScaleCell):
    """One update with the gradients' global L2 norm clipped to `clip_value`; returns (loss, the norm
    before clipping). `scale_sense`: the fixed loss scale (a Tensor) or a loss-scale update cell."""

    def __init__(self, network, optimizer, scale_sense, clip_value: float):
        super().__init__(network, optimizer, scale_sense)
        self.clip_value = Tensor(clip_value, mstype.float32)
        self.overflow_checked = self.loss_scaling_manager is not None

    def construct(self, *inputs):
        loss = self.network(*inputs)
        loss_scale = self.scale_sense
        sens = ops.ones_like(loss) * ops.cast(loss_scale, ops.dtype(loss))
        grads = self.grad(self.network, self.weights)(*inputs, sens)
        grads = self.hyper_map(ops.partial(_unscale, loss_scale), grads)
        grads = self.grad_reducer(grads)
        norm = ops.sqrt(ops.addn(self.hyper_map(_square_sum, grads)))
        clipped = self.hyper_map(ops.partial(_scale, self.clip_value / ops.maximum(norm, self.clip_value)), grads)
        if self.overflow_checked:
            overflow = self.process_loss_scale(self.get_overflow_status(Tensor([0] * 8, mstype.int32), grads))
            if not overflow:
                loss = ops.depend(loss, self.optimizer(clipped))
        else:
            loss = ops.depend(loss, self.optimizer(clipped))
        return loss, norm
