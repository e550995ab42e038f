"""The EMA of the weights follows shadow = d * shadow + (1 - d) * weight with the ramped decay."""

from __future__ import annotations

import math

import mindspore as ms
import numpy as np

from toolkit.models import create_model
from toolkit.train.ema import EMA, RAMP_STEPS


def test_ema_update_rule():
    network = create_model("mobilenet_v1_025", num_classes=10)
    ema = EMA(network, decay=0.999)
    weight = network.features[0].weight
    expected = weight.asnumpy().astype(np.float64)
    rng = np.random.RandomState(0)
    for step in range(1, 4):
        new = rng.randn(*weight.shape).astype(np.float32)
        weight.set_data(ms.Tensor(new))
        ema()
        d = 0.999 * (1 - math.exp(-step / RAMP_STEPS))
        expected = d * expected + (1 - d) * new
    np.testing.assert_allclose(ema.shadow_arrays()["features.0.weight"], expected, rtol=1e-5, atol=1e-6)
    assert float(ema.updates.asnumpy()) == 3.0
    assert set(ema.shadow_arrays()) == {p.name for p in network.get_parameters()}  # BN statistics included
