"""Learning-rate schedules as mindcv defines them: a linear warm-up, then the main schedule, one value per step."""

from __future__ import annotations

import math

from toolkit.train.config import SchedulerConfig


def _epoch_position(step: int, steps_per_epoch: int, stair: bool) -> float:
    """Epochs elapsed at `step`: fractional, or whole epochs with `stair`."""
    position = step / steps_per_epoch
    return math.floor(position) if stair else position


def _warmup(cfg: SchedulerConfig, steps_per_epoch: int) -> list[float]:
    start = cfg.lr * cfg.warmup_factor
    return [start + (cfg.lr - start) * min(_epoch_position(i, steps_per_epoch, cfg.epoch_stair), cfg.warmup_epochs)
            / cfg.warmup_epochs for i in range(cfg.warmup_epochs * steps_per_epoch)]


def _cosine(cfg: SchedulerConfig, epoch: float) -> float:
    """Cosine from lr down to min_lr over decay_epochs, repeated num_cycles times (each peak scaled by cycle_decay)."""
    cycle = int(epoch // cfg.decay_epochs)
    if cycle >= cfg.num_cycles:
        return cfg.min_lr
    peak = cfg.lr * cfg.cycle_decay ** cycle
    t = (epoch - cycle * cfg.decay_epochs) / cfg.decay_epochs
    return cfg.min_lr + 0.5 * (peak - cfg.min_lr) * (1.0 + math.cos(math.pi * t))


def _main(cfg: SchedulerConfig, epoch: float) -> float:
    name = cfg.name
    if name == "constant":
        return cfg.lr
    if name in ("cosine_decay", "warmup_cosine_decay"):
        return _cosine(cfg, epoch)
    if name == "step_decay":
        return cfg.lr * cfg.decay_rate ** math.floor(epoch / cfg.decay_epochs)
    if name == "multi_step_decay":
        return cfg.lr * cfg.decay_rate ** sum(1 for m in cfg.milestones if epoch >= m)
    if name == "exponential_decay":
        return cfg.lr * cfg.decay_rate ** epoch
    raise ValueError(f"unknown scheduler {name!r}")


def create_scheduler(cfg: SchedulerConfig, steps_per_epoch: int, epochs: int) -> list[float]:
    """The learning rate of every step of an `epochs`-epoch run (the optimizer indexes it by its global step)."""
    warmup = _warmup(cfg, steps_per_epoch)[:epochs * steps_per_epoch]
    main_steps = epochs * steps_per_epoch - len(warmup)
    return warmup + [_main(cfg, _epoch_position(i, steps_per_epoch, cfg.epoch_stair)) for i in range(main_steps)]
