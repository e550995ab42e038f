"""The training run, as mindcv's train.py: create_dataset, create_transforms, create_model,
create_loss, create_scheduler, create_optimizer, then epochs of steps with validation and checkpoints.

Two copies of the network: the training one (mixed precision and the loss-scaled train cell wrap
it) and a clean float32 one that is validated and saved, with either the training weights or their
EMA copied into it. Checkpoints of the clean copy therefore load anywhere (export, validate, mindcv).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from toolkit.card import ModelCard
from toolkit.data import DatasetSpec, create_dataset, create_loader, create_transforms, dataset_labels, pipeline_error
from toolkit.errors import ConfigError, ToolkitError
from toolkit.fsutil import ensure_writable_dir, interrupts_deferred, write_text
from toolkit.train.checkpoints import TRAIN_PREFIX, CheckpointManager, save_params
from toolkit.train.config import PrecisionConfig, TrainConfig, load_config, save_config
from toolkit.train.distributed import all_reduce_sum, setup
from toolkit.train.qat import card_extra as qat_card_extra
from toolkit.train.qat import (create_qat_networks, distillation_loss, qat_lr_scale, with_equalization_constants,
                                with_source_model)

METRICS_FILE, CONFIG_FILE = "metrics.jsonl", "config.yaml"


@dataclass(frozen=True)
class TrainResult:
    directory: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    best_top1: float
    best_epoch: int
    epochs: int
    history: list[dict] = field(default_factory=list)  # the epoch records of this run


class MetricsLog:
    """metrics.jsonl: one JSON object per line (step and epoch records)."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled

    def append(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    def truncate_after(self, epoch: int) -> None:
        """Drop records of epochs after `epoch` (and a line a crash cut short), before resuming."""
        if not (self.enabled and self.path.is_file()):
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("epoch", 0) <= epoch:
                kept.append(line)
        write_text(self.path, "".join(f"{line}\n" for line in kept))


@contextlib.contextmanager
def _scratch_cwd():
    """MindSpore's mixed precision (its rewrite module) writes `rewritten_network/*.py` into the working
    directory and imports it at once; keep that out of the user's directory."""
    with tempfile.TemporaryDirectory(prefix="mnv1-tk-amp-") as scratch, contextlib.chdir(scratch):
        yield


def create_train_step(network, loss_fn, optimizer, precision: PrecisionConfig, clip_value: float | None = None):
    """MindSpore's train cell with mixed precision and loss scaling (`mindspore.amp.build_train_network`);
    with `clip_value`, our `ClippedTrainStep` around the same mixed-precision network and loss, which
    returns (loss, gradient norm before clipping)."""
    import mindspore as ms
    from mindspore.amp import DynamicLossScaleManager, FixedLossScaleManager, build_train_network

    from toolkit.train.train_step import ClippedTrainStep

    overflow_checked = precision.loss_scale_type == "dynamic" or precision.drop_overflow_update
    if overflow_checked and ms.get_context("device_target") == "CPU":
        raise ConfigError("dynamic loss scaling and drop_overflow_update need an overflow check that MindSpore's "
                          "CPU backend lacks", "on the CPU use loss_scale_type: fixed with drop_overflow_update: "
                          "false (or --set loss_scale=1)")
    if precision.loss_scale_type == "dynamic":
        manager = DynamicLossScaleManager(init_loss_scale=precision.loss_scale, scale_factor=2, scale_window=1000)
    else:
        manager = FixedLossScaleManager(precision.loss_scale, drop_overflow_update=precision.drop_overflow_update)
    with _scratch_cwd():
        step = build_train_network(network, optimizer, loss_fn, level=precision.amp_level,
                                   loss_scale_manager=manager)
    if clip_value is not None:
        scale_sense = manager.get_update_cell() or ms.Tensor(precision.loss_scale, ms.float32)
        step = ClippedTrainStep(step.network, optimizer, scale_sense, clip_value)
    step.set_train()
    return step


def optimizer_loss_scale(precision: PrecisionConfig, clip_grad: bool = False) -> float:
    """A fixed loss scale without overflow checks is divided out by the optimizer (as in mindcv);
    otherwise (and when clipping, which needs the true gradients) the train cell unscales them itself."""
    fixed = precision.loss_scale_type == "fixed" and not precision.drop_overflow_update
    return precision.loss_scale if fixed and not clip_grad else 1.0


def _copy_weights(arrays: dict, network) -> None:
    from mindspore import Tensor

    for param in network.get_parameters():
        param.set_data(Tensor(arrays[param.name], param.dtype))


@dataclass
class _Run:
    """What one run builds, and its progress."""

    spec: DatasetSpec
    loader: object
    steps_per_epoch: int
    network: object  # trained (wrapped by mixed precision and the train cell)
    clean: object  # validated and saved
    predictor: object
    card: ModelCard
    lrs: list[float]
    optimizer: object
    train_step: object
    ema: object | None
    manager: CheckpointManager
    metrics: MetricsLog
    global_step: int = 0
    best_top1: float = -1.0
    best_epoch: int = 0
    last_path: Path | None = None
    history: list[dict] = field(default_factory=list)


class Trainer:
    """One training run; `fit()` runs it. Build it with `Trainer(config)` after `load_config`."""

    def __init__(self, config: TrainConfig, console: Console | None = None):
        self.config = config
        self.console = console or Console(stderr=True)
        self.workers = setup(config.system)
        self.directory = Path(config.checkpoint.directory).expanduser()
        self._created_directory = not self.directory.exists()
        self._committed = False

    # -- building blocks, in mindcv's order ------------------------------------------------------

    def create_data(self):
        """The sharded training loader and what the model card needs from the dataset."""
        from toolkit.models import default_cfgs, list_models

        cfg = self.config.data
        pretrained = default_cfgs.get(self.config.model.name)
        if pretrained is None:
            raise ConfigError(f"unknown model '{self.config.model.name}'", f"use one of: {', '.join(list_models())}")
        spec = DatasetSpec(name=cfg.name, root=cfg.root, train_split=cfg.train_split, val_split=cfg.val_split)
        labels = dataset_labels(spec)
        mean, std = cfg.mean or pretrained.mean, cfg.std or pretrained.std
        workers = min(cfg.num_workers, os.cpu_count() or 1)  # MindSpore refuses more workers than cores
        dataset = create_dataset(spec, "train", cfg.image_size, shuffle=cfg.shuffle, num_samples=cfg.num_samples,
                                 num_parallel_workers=workers, seed=self.config.system.seed, **self.workers.shard)
        transforms = create_transforms(True, cfg.image_size, mean, std, cfg.crop_pct, cfg.interpolation,
                                       self.config.augment)
        loader = create_loader(dataset, transforms, cfg.batch_size, drop_remainder=cfg.drop_remainder,
                               num_parallel_workers=workers)
        if loader.get_dataset_size() == 0:
            raise ConfigError(f"batch_size {cfg.batch_size} is larger than this worker's "
                              f"{dataset.get_dataset_size()} training images", "lower batch_size or drop_remainder")
        return spec, labels, mean, std, loader

    def create_networks(self, num_classes: int):
        """(network to train, clean copy to validate and save, the clean copy's forward at val_amp_level)."""
        import mindspore as ms

        from toolkit.models import create_model
        from toolkit.models.checkpoint import load_weights

        cfg = self.config.model
        kwargs = {"num_classes": num_classes, "activation": cfg.activation, "drop_rate": cfg.drop_rate or 0.0}
        network, clean = create_model(cfg.name, **kwargs), create_model(cfg.name, **kwargs)
        if cfg.checkpoint:
            report = load_weights(network, cfg.checkpoint, head="adapt")
            self._print(f"loaded {cfg.checkpoint}: {report.message}")
        clean.set_train(False)
        forward = clean
        if self.config.precision.val_amp_level != "O0":
            # Casts inside the cell; its Parameters (which are saved) stay float32 and keep their names.
            with _scratch_cwd():
                forward = ms.amp.auto_mixed_precision(clean, self.config.precision.val_amp_level)
        return network, clean, forward

    def build(self) -> _Run:
        from toolkit.runtimes.mindspore_rt import MindSporeCkptPredictor
        from toolkit.train.ema import EMA
        from toolkit.train.optim import create_loss, create_optimizer
        from toolkit.train.scheduler import create_scheduler

        config = self.config
        spec, labels, mean, std, loader = self.create_data()
        num_classes = config.model.num_classes or len(labels)
        if num_classes < len(labels):
            raise ConfigError(f"num_classes {num_classes} is smaller than the dataset's {len(labels)} classes",
                              f"set num_classes to at least {len(labels)}")
        if config.qat.enabled:
            network, clean, forward = create_qat_networks(config, num_classes, spec, self._print)
        else:
            network, clean, forward = self.create_networks(num_classes)
        card = ModelCard(model=config.model.name, width=clean.width, image_size=config.data.image_size,
                         num_classes=num_classes,
                         labels=labels + tuple(f"class_{i}" for i in range(len(labels), num_classes)),
                         mean=tuple(mean), std=tuple(std), crop_pct=config.data.crop_pct,
                         interpolation=config.data.interpolation, activation=config.model.activation, format="ckpt",
                         source="mnv1-tk train")
        loss_fn = (distillation_loss(config, num_classes) if config.qat.enabled
                   else create_loss(config.loss, num_classes))
        steps_per_epoch = loader.get_dataset_size()
        lrs = create_scheduler(config.scheduler, steps_per_epoch, config.run.epochs)
        optim = config.optimizer
        optimizer = create_optimizer(network, optim, lrs, optimizer_loss_scale(config.precision, optim.clip_grad),
                                     qat_lr_scale(config))
        train_step = create_train_step(network, loss_fn, optimizer, config.precision, optim.clip_norm)
        return _Run(spec=spec, loader=loader, steps_per_epoch=steps_per_epoch, network=network, clean=clean,
                    predictor=MindSporeCkptPredictor.from_network(forward, card), card=card, lrs=lrs,
                    optimizer=optimizer, train_step=train_step,
                    ema=EMA(network, config.run.ema_decay) if config.run.ema else None,
                    manager=CheckpointManager(self.directory, config.model.name, config.checkpoint.keep_max,
                                              config.checkpoint.policy),
                    metrics=MetricsLog(self.directory / METRICS_FILE, self.workers.is_main))

    # -- the run ---------------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        state = self.directory / f"optim_{self.config.model.name}.ckpt"
        if state.exists() and not self.config.checkpoint.resume:
            raise ConfigError(f"{self.directory} already holds a training run ({state.name})",
                              "pass --resume to continue it, or another --out")
        try:
            return self._fit()
        except (ToolkitError, RuntimeError, KeyboardInterrupt):
            self._remove_uncommitted_output()
            raise

    def _fit(self) -> TrainResult:
        run, epochs = self.build(), self.config.run.epochs
        if self.workers.is_main:
            ensure_writable_dir(self.directory)
            save_config(self.config, self.directory / CONFIG_FILE)
            if not self.config.checkpoint.resume:  # metrics of an earlier run that never committed an epoch
                (self.directory / METRICS_FILE).unlink(missing_ok=True)
        start_epoch = self._resume(run) if self.config.checkpoint.resume else 0
        if start_epoch >= epochs:
            self._print(f"nothing to do: the run already finished {start_epoch} of {epochs} epochs")
        run.global_step = start_epoch * run.steps_per_epoch
        iterator = run.loader.create_tuple_iterator(num_epochs=max(epochs - start_epoch, 1))
        with self._progress() as progress:
            for epoch in range(start_epoch + 1, epochs + 1):
                record = self._train_epoch(run, epoch, iterator, progress)
                _copy_weights(run.ema.shadow_arrays() if run.ema else
                              {p.name: p.asnumpy() for p in run.network.get_parameters()}, run.clean)
                if self.config.qat.enabled:
                    run.clean.bake_equalization()  # saved as convert reads it
                if self.config.run.validate and (epoch % self.config.run.val_interval == 0 or epoch == epochs):
                    record.update(self._validate(run))
                self._end_epoch(run, record)
        if self.workers.size > 1 and not self.workers.is_main and run.last_path is not None:
            # Each replica's final training weights, so that their equality can be checked.
            save_params([(p.name, p) for p in run.network.get_parameters()],
                        self.directory / f"rank_{self.workers.rank}" / run.last_path.name)
        best = run.manager.best_path if run.manager.best_path.is_file() else None
        if best is not None:
            self._print(f"best: {best} (epoch {run.best_epoch}, val top-1 {100 * run.best_top1:.2f}%)")
        return TrainResult(directory=self.directory, last_checkpoint=run.last_path or _latest(run.manager),
                           best_checkpoint=best, best_top1=run.best_top1, best_epoch=run.best_epoch, epochs=epochs,
                           history=run.history)

    def _train_epoch(self, run: _Run, epoch: int, iterator, progress: Progress) -> dict:
        epochs, log_interval, size = self.config.run.epochs, self.config.run.log_interval, self.workers.size
        task = progress.add_task("train", total=run.steps_per_epoch, epoch=f"{epoch}/{epochs}", loss=0.0,
                                 lr=run.lrs[run.global_step], ips=0.0)
        clip = self.config.optimizer.clip_norm
        losses, norms, started, timed_from = [], [], time.perf_counter(), None
        for images, target in _batches(iterator):
            out = run.train_step(images, target)
            loss = float((out[0] if isinstance(out, tuple) else out).asnumpy())
            if clip is not None:
                norms.append(float(out[1].asnumpy()))
            if not np.isfinite(loss):
                raise ConfigError(f"the loss became {loss} in epoch {epoch}",
                                  "lower lr or loss_scale, or use amp_level O0")
            if run.ema is not None:
                run.ema()
            lr = run.lrs[run.global_step]
            run.global_step += 1
            losses.append(loss)
            if timed_from is None:  # the first step includes graph compilation
                timed_from = (time.perf_counter(), len(losses))
            rate = _rate(timed_from, len(losses), images.shape[0] * size)
            progress.update(task, advance=1, loss=loss, lr=lr, ips=rate)
            if run.global_step % log_interval == 0:
                run.metrics.append({"event": "step", "epoch": epoch, "global_step": run.global_step, "loss": loss,
                                    "lr": lr, "images_per_s": rate, **({"grad_norm": norms[-1]} if norms else {})})
        progress.remove_task(task)
        record = {"event": "epoch", "epoch": epoch, "global_step": run.global_step, "loss": float(np.mean(losses)),
                  "lr": run.lrs[run.global_step - 1],
                  "images_per_s": _rate(timed_from, len(losses), self.config.data.batch_size * size),
                  "seconds": time.perf_counter() - started}
        if norms:  # the gradients' global norm before clipping, and how many steps clip_value cut
            record.update(max_grad_norm=max(norms), clipped_steps=sum(n > clip for n in norms))
        return record

    def _validate(self, run: _Run) -> dict:
        """Top-1 / top-5 of the clean copy; each worker evaluates its shard and the counts are summed."""
        from toolkit.validate import evaluate

        workers = self.workers
        shard = (workers.size, workers.rank) if workers.size > 1 else None
        result = evaluate(run.predictor, run.spec, "val", batch_size=self.config.data.batch_size, shard=shard)
        counts = all_reduce_sum(np.array([result["correct_top1"], result["correct_top5"], result["count"]],
                                         np.float64), workers)
        return {"top1": float(counts[0] / counts[2]), "top5": float(counts[1] / counts[2]),
                "val_count": int(counts[2])}

    def _end_epoch(self, run: _Run, record: dict) -> None:
        """Log the epoch, then save its checkpoint, the best one, and commit the optimizer state."""
        epoch = record["epoch"]
        improved = "top1" in record and record["top1"] > run.best_top1
        if improved:
            run.best_top1, run.best_epoch = record["top1"], epoch
        run.metrics.append(record)
        run.history.append(record)
        if epoch % self.config.checkpoint.interval == 0 or epoch == self.config.run.epochs:
            run.last_path = run.manager.epoch_path(epoch, run.global_step)
            if self.workers.is_main:
                self._save_epoch(run, record, improved)
        self._print(_epoch_line(record, self.config.run.epochs, improved))

    def _save_epoch(self, run: _Run, record: dict, improved: bool) -> None:
        """The epoch's checkpoint and card, the best one, then the optimizer state that commits them: all of
        them or (after Ctrl-C before the block) none."""
        epoch = record["epoch"]
        with interrupts_deferred():
            extra = {"epoch": epoch, "global_step": run.global_step, "ema": run.ema is not None}
            extra.update({f"val_{k}": record[k] for k in ("top1", "top5") if k in record})
            if self.config.qat.enabled:
                extra.update(qat_card_extra(run.clean, self.config))
            card = run.card.replace(extra=extra)
            run.manager.save_weights(run.clean, card, run.last_path)
            if improved:
                run.manager.save_weights(run.clean, card, run.manager.best_path)
            updates = float(run.ema.updates.asnumpy()) if run.ema is not None else 0.0
            run.manager.commit(epoch, run.global_step, run.optimizer, run.network, run.best_top1, run.best_epoch,
                               updates)
            self._committed = True

    def _resume(self, run: _Run) -> int:
        """Restore the last committed epoch; returns it (0 when there is none)."""
        from mindspore import Tensor

        from toolkit.models.checkpoint import read_checkpoint

        run.manager.remove_partial_files()
        point = run.manager.latest()
        if point is None:
            run.metrics.truncate_after(0)  # the step records of a run killed before its first commit
            self._print(f"no committed checkpoint in {self.directory}: starting from epoch 1")
            return 0
        state = {name[len(TRAIN_PREFIX):]: value.asnumpy() for name, value in point.state.items()
                 if name.startswith(TRAIN_PREFIX)}
        _copy_weights(with_equalization_constants(state, run.network) if self.config.qat.enabled else state,
                      run.network)
        weights = {id(p) for p in run.network.get_parameters()}
        for param in run.optimizer.get_parameters():
            # The learning-rate schedule is rebuilt from the config; everything else is restored.
            if param.name in point.state and param.name != "learning_rate" and id(param) not in weights:
                param.set_data(Tensor(point.state[param.name].asnumpy(), param.dtype))
        if run.ema is not None:
            saved = read_checkpoint(point.weights)
            run.ema.load_arrays({name: value.asnumpy() for name, value in saved.items()}, point.ema_updates)
        run.best_top1, run.best_epoch = point.best_top1, point.best_epoch
        run.metrics.truncate_after(point.epoch)
        run.metrics.append({"event": "resume", "epoch": point.epoch, "global_step": point.global_step,
                            "checkpoint": point.weights.name})
        self._committed = True
        self._print(f"resumed from {point.weights.name} (epoch {point.epoch}, step {point.global_step})")
        return point.epoch

    def _remove_uncommitted_output(self) -> None:
        """A run that fails before its first checkpoint leaves nothing behind."""
        if self._committed or not self.workers.is_main:
            return
        if self._created_directory:
            shutil.rmtree(self.directory, ignore_errors=True)
        else:
            for name in (CONFIG_FILE, METRICS_FILE):
                (self.directory / name).unlink(missing_ok=True)

    def _progress(self) -> Progress:
        # Only on a terminal: elsewhere rich would print the bar's last, empty frame as a blank line.
        return Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.3g}  "
                                   "{task.fields[ips]:.0f} img/s"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=self.console, disable=not (self.workers.is_main and self.console.is_interactive),
                        transient=True)

    def _print(self, message: str) -> None:
        if self.workers.is_main:
            self.console.print(message, highlight=False)


def _batches(iterator):
    """The batches of one epoch; a broken image surfaces as a one-line DataError."""
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except RuntimeError as exc:
            raise (pipeline_error(exc) or exc) from None


def _rate(timed_from, seen: int, batch: int) -> float:
    start, first = timed_from
    elapsed = time.perf_counter() - start
    return (seen - first) * batch / elapsed if seen > first and elapsed > 0 else 0.0


def _latest(manager: CheckpointManager) -> Path | None:
    found = manager.epoch_checkpoints()
    return found[-1][1] if found else None


def _epoch_line(record: dict, epochs: int, improved: bool) -> str:
    line = f"epoch {record['epoch']}/{epochs}  loss {record['loss']:.4f}  {record['images_per_s']:.0f} img/s"
    if "top1" in record:
        line += f"  val top-1 {100 * record['top1']:.2f}%  top-5 {100 * record['top5']:.2f}%"
        line += "  (best)" if improved else ""
    return line


def train(config: TrainConfig, console: Console | None = None) -> TrainResult:
    """Train a MobileNetV1 as `config` says; checkpoints, cards, metrics.jsonl and config.yaml go to
    `config.checkpoint.directory`."""
    from toolkit.runtimes.mindspore_rt import caller_execution_mode_kept

    if config.qat.enabled:
        config = with_source_model(config)
    with caller_execution_mode_kept():
        return Trainer(config, console).fit()


def train_from_config(config_file: str | Path | None = None, overrides: dict | None = None,
                      sets: tuple[str, ...] = ()) -> TrainResult:
    """`mnv1-tk train`: load the YAML config (a path or a shipped config's name), apply the CLI
    overrides ({key: value}, None = not given) and `--set KEY=VALUE` pairs, then train."""
    return train(load_config(config_file, overrides, sets))
