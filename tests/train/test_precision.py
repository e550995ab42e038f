"""Mixed precision and loss scaling as mindcv's MobileNetV1 recipe sets them (amp O2, fixed scale 1024),
built by the trainer's own factories and run on this CPU."""

from __future__ import annotations

from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

from toolkit.models import create_model
from toolkit.train.config import build_config, load_config
from toolkit.train.optim import create_loss, create_optimizer
from toolkit.train.trainer import create_train_step, optimizer_loss_scale

MINDCV_YAML = Path(__file__).parent / "data" / "mindcv_mobilenet_v1_1.0_ascend.yaml"


@pytest.fixture(scope="module")
def batch():
    rng = np.random.RandomState(0)
    return (ms.Tensor(rng.randn(8, 3, 32, 32).astype(np.float32)),
            ms.Tensor(rng.randint(0, 10, 8).astype(np.int32)))


def _step(config, weights=None, lr=0.1):
    """One training step with `config`'s optimizer, loss and precision; returns (loss, weights after)."""
    network = create_model("mobilenet_v1_025", num_classes=10)
    if weights is not None:
        for param in network.get_parameters():
            param.set_data(ms.Tensor(weights[param.name]))
    start = {p.name: p.asnumpy().copy() for p in network.get_parameters()}
    optimizer = create_optimizer(network, config.optimizer, [lr] * 4, optimizer_loss_scale(config.precision))
    step = create_train_step(network, create_loss(config.loss, 10), optimizer, config.precision)
    return step, optimizer, start, network


def test_mindcv_recipe_scales_the_loss_by_1024_and_the_optimizer_divides_it_out(batch):
    config = load_config(MINDCV_YAML, {"amp_level": "O0", "weight_decay": 0.0})
    step, optimizer, start, network = _step(config)
    assert step.sens == 1024.0 and optimizer.loss_scale == 1024.0
    step(*batch)
    scaled = {p.name: p.asnumpy() for p in network.get_parameters()}

    unscaled_config = config.replace(precision=build_config({"loss_scale": 1.0}).precision)
    step, optimizer, _, network = _step(unscaled_config, weights=start)
    assert step.sens == 1.0 and optimizer.loss_scale == 1.0
    step(*batch)
    moved = 0
    for param in network.get_parameters():
        np.testing.assert_allclose(scaled[param.name], param.asnumpy(), rtol=1e-5, atol=1e-6)
        moved += not np.array_equal(param.asnumpy(), start[param.name])
    assert moved > 50  # the step really updated the weights


def test_amp_o2_runs_float16_on_the_cpu(batch):
    config = load_config(MINDCV_YAML)
    assert config.precision.amp_level == "O2"
    step, _, start, network = _step(config)
    loss_o2 = float(step(*batch).asnumpy())
    step, _, _, _ = _step(load_config(MINDCV_YAML, {"amp_level": "O0"}), weights=start)
    loss_o0 = float(step(*batch).asnumpy())
    # Same weights and batch: only float16 arithmetic makes the losses differ, by float16 rounding.
    assert np.isfinite(loss_o2) and 1e-6 < abs(loss_o2 - loss_o0) < 1e-2
    assert all(p.dtype == ms.float32 for p in network.get_parameters())  # float32 master weights


@pytest.mark.parametrize("values", [{"loss_scale_type": "dynamic", "loss_scale": 1024.0},
                                    {"loss_scale": 1024.0, "drop_overflow_update": True}])
def test_overflow_checked_loss_scaling_is_refused_on_the_cpu_with_a_clear_error(values):
    from toolkit.errors import ConfigError

    config = build_config({"opt": "momentum", **values})  # the config itself is valid (Ascend, GPU)
    assert ms.get_context("device_target") == "CPU"
    with pytest.raises(ConfigError, match="CPU backend lacks"):
        _step(config)
