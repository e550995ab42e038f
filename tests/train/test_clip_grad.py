"""Gradient clipping (mindcv's `clip_grad` / `clip_value`): with plain SGD one step moves the weights by
lr x the clipped gradient, so the step's length measures the global norm the optimizer received."""

from __future__ import annotations

import json

import mindspore as ms
import numpy as np
import pytest
from rich.console import Console

from toolkit.errors import ConfigError
from toolkit.models import create_model
from toolkit.train import build_config, dump_config, load_config, train
from toolkit.train.optim import create_loss, create_optimizer
from toolkit.train.trainer import create_train_step, optimizer_loss_scale

LR = 0.1
SGD = {"opt": "sgd", "momentum": 0.0, "weight_decay": 0.0}


@pytest.fixture(scope="module")
def start():
    """(batch, initial weights) shared by every step."""
    rng = np.random.RandomState(0)
    batch = (ms.Tensor(rng.randn(4, 3, 32, 32).astype(np.float32)), ms.Tensor(rng.randint(0, 10, 4).astype(np.int32)))
    return batch, {p.name: p.asnumpy().copy()
                   for p in create_model("mobilenet_v1_025", num_classes=10).get_parameters()}


def _one_step(start, values: dict):
    """One SGD step from the shared weights; returns (its output, L2 length of the weights' change, optimizer)."""
    batch, weights = start
    config = build_config({**SGD, **values})
    network = create_model("mobilenet_v1_025", num_classes=10)
    for param in network.get_parameters():
        param.set_data(ms.Tensor(weights[param.name]))
    optim = config.optimizer
    optimizer = create_optimizer(network, optim, [LR] * 2, optimizer_loss_scale(config.precision, optim.clip_grad))
    step = create_train_step(network, create_loss(config.loss, 10), optimizer, config.precision, optim.clip_norm)
    out = step(*batch)
    moved = np.sqrt(sum(np.sum((p.asnumpy() - weights[p.name]) ** 2) for p in network.trainable_params()))
    return out, moved, optimizer


def test_clipped_step_moves_the_weights_by_lr_times_clip_value_even_with_a_loss_scale(start):
    (loss, norm), clipped_move, optimizer = _one_step(start, {"clip_grad": True, "clip_value": 0.01,
                                                              "loss_scale": 1024.0})
    assert optimizer.loss_scale == 1.0  # the train cell unscales before clipping, so the optimizer must not
    assert float(norm.asnumpy()) > 100  # the reported norm is the unscaled one (x1024 would be ~2.5e5)
    assert clipped_move == pytest.approx(LR * 0.01, rel=1e-4)

    plain_loss, plain_move, _ = _one_step(start, {})
    assert float(plain_loss.asnumpy()) == pytest.approx(float(loss.asnumpy()), rel=1e-6)
    assert plain_move == pytest.approx(LR * float(norm.asnumpy()), rel=1e-4)  # unclipped: lr x the full norm


def test_a_clip_value_above_the_norm_leaves_the_step_unchanged(start):
    (_, norm), move, _ = _one_step(start, {"clip_grad": True, "clip_value": 1e6, "loss_scale": 1024.0})
    assert move == pytest.approx(LR * float(norm.asnumpy()), rel=1e-4)


def test_yaml_with_clip_grad_loads_and_round_trips(tmp_path):
    path = tmp_path / "clip.yaml"
    path.write_text("clip_grad: True\nclip_value: 5\n")
    config = load_config(path)
    assert config.optimizer.clip_grad and config.optimizer.clip_value == 5.0
    path.write_text(dump_config(config))
    assert load_config(path) == config
    assert not build_config({}).optimizer.clip_grad and build_config({}).optimizer.clip_value == 15.0
    with pytest.raises(ConfigError, match="'clip_value' is 0.0 but must be > 0"):
        build_config({"clip_value": 0})


def test_training_run_logs_the_norm_and_counts_the_clipped_steps(tmp_path):
    config = load_config("mobilenet_v1_025_digits", {"ckpt_save_dir": str(tmp_path), "epoch_size": 1,
                                                     "val_while_train": False},
                         ["num_samples=64", "log_interval=1", "clip_grad=true", "clip_value=1e-3"])
    result = train(config, console=Console(stderr=True, quiet=True))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    norms = [r["grad_norm"] for r in records if r["event"] == "step"]
    assert len(norms) == 2 and min(norms) > 1e-3
    assert result.history[0]["clipped_steps"] == 2 and result.history[0]["max_grad_norm"] == max(norms)
