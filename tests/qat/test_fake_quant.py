"""The fake-quant cells against our int8 scheme (quantize/params.py), and their range updates."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("lo, hi", [(-1.3, 4.1), (0.0, 6.0), (-0.02, 0.5), (-7.5, 2.25)])
def test_range_gives_the_converter_s_scale_and_zero_point(lo, hi):
    from quantize.params import activation_params
    from quantize.qat.fake_quant import ActivationQuantizer

    quantizer = ActivationQuantizer("t")
    quantizer.set_range(lo, hi)
    scale, zero_point = quantizer.quant_params()
    expected = activation_params(lo, hi)
    assert float(scale.asnumpy()[0]) == pytest.approx(float(expected.scale[0]), rel=1e-6)
    assert int(zero_point.asnumpy()[0]) == int(expected.zero_point[0])


def test_ema_range_follows_the_batch_and_learnt_range_gets_the_clipping_gradient():
    import mindspore as ms
    from mindspore import Tensor

    from quantize.qat.fake_quant import ActivationQuantizer

    x = Tensor(np.linspace(0.0, 4.0, 64, dtype=np.float32).reshape(1, 64))
    ema = ActivationQuantizer("t", "ema", nonnegative=True, ema_decay=0.9)
    ema.set_range(0.0, 6.0)
    ema.set_train(True)
    ema(x)
    assert float(ema.hi.asnumpy()[0]) == pytest.approx(0.9 * 6.0 + 0.1 * 4.0, rel=1e-6)
    assert float(ema.lo.asnumpy()[0]) == 0.0

    learnt = ActivationQuantizer("t", "lsq", nonnegative=True)
    learnt.set_range(0.0, 2.0)  # half of x lies above the range and is clipped

    def dequantized_sum(values):
        q, scale, _ = learnt(values)
        return (q * scale).sum()

    grad = ms.grad(dequantized_sum, grad_position=None, weights=[learnt.hi])(x)[0]
    assert float(grad.asnumpy()[0]) > 0  # a wider range lets the clipped values grow


@pytest.mark.parametrize("decay_filter", ["disable", "norm_and_bias"])
def test_ranges_learn_at_their_own_rate(decay_filter):
    from mindspore import Parameter, Tensor, nn

    from toolkit.train.config import OptimizerConfig
    from toolkit.train.optim import create_optimizer

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.weight = Parameter(Tensor(np.ones(3, np.float32)), name="features.0.weight")
            self.beta = Parameter(Tensor(np.ones(3, np.float32)), name="features.1.beta")
            self.hi = Parameter(Tensor(np.ones(1, np.float32)), name="qat.input.hi")

        def construct(self, x):
            return x * self.weight + self.beta + self.hi

    net = Net()
    config = OptimizerConfig(name="momentum", weight_decay=1e-4, weight_decay_filter=decay_filter)
    optimizer = create_optimizer(net, config, [0.1, 0.05], lr_scale={"qat.": 10.0})
    rates = {p.name: optimizer.get_lr_parameter(p).asnumpy() for p in net.trainable_params()}
    np.testing.assert_allclose(rates["qat.input.hi"], [1.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(rates["features.0.weight"], [0.1, 0.05], rtol=1e-6)
    np.testing.assert_allclose(rates["features.1.beta"], [0.1, 0.05], rtol=1e-6)
    decay = dict(zip((p.name for p in optimizer.parameters), (float(d.asnumpy()) for d in optimizer.weight_decay)))
    assert decay == pytest.approx({"features.0.weight": 1e-4, "qat.input.hi": 1e-4,
                                   "features.1.beta": 0.0 if decay_filter == "norm_and_bias" else 1e-4})
