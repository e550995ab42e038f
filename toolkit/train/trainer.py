"""The training run, as mindcv's train.py: create_dataset, create_transforms, create_model,
create_loss, create_scheduler, create_optimizer, then epochs of steps with validation and checkpoints.

Two copies of the network: the training one (mixed precision and the loss-scaled train cell wrap
it) and a clean float32 one that is validated and saved, with either the training weights or their
EMA copied into it. Checkpoints of the clean copy therefore load anywhere (export, validate, mindcv).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from toolkit.card import ModelCard
from toolkit.data import DatasetSpec, create_dataset, create_loader, create_transforms, dataset_labels, pipeline_error
from toolkit.errors import ConfigError, ToolkitError
from toolkit.fsutil import ensure_writable_dir, write_text
from toolkit.train.checkpoints import TRAIN_PREFIX, CheckpointManager, save_params
from toolkit.train.config import PrecisionConfig, TrainConfig, load_config, save_config
from toolkit.train.distributed import Workers, all_reduce_sum, setup

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


def create_train_step(network, loss_fn, optimizer, precision: PrecisionConfig):
    """MindSpore's train cell with mixed precision and loss scaling (`mindspore.amp.build_train_network`)."""
    import mindspore as ms
    from mindspore.amp import DynamicLossScaleManager, FixedLossScaleManager, build_train_network

    overflow_checked = precision.loss_scale_type == "dynamic" or precision.drop_overflow_update
    if overflow_checked and ms.get_context("device_target") == "CPU":
        raise ConfigError("dynamic loss scaling and drop_overflow_update need an overflow check that MindSpore's "
                          "CPU backend lacks", "on the CPU use loss_scale_type: fixed with drop_overflow_update: "
                          "false (or --set loss_scale=1)")
    if precision.loss_scale_type == "dynamic":
        manager = DynamicLossScaleManager(init_loss_scale=precision.loss_scale, scale_factor=2, scale_window=1000)
    else:
        manager = FixedLossScaleManager(precision.loss_scale, drop_overflow_update=precision.drop_overflow_update)
    step = build_train_network(network, optimizer, loss_fn, level=precision.amp_level, loss_scale_manager=manager)
    step.set_train()
    return step


def optimizer_loss_scale(precision: PrecisionConfig) -> float:
    """A fixed loss scale without overflow checks is divided out by the optimizer (as in mindcv);
    otherwise the loss-scale train cell unscales the gradients itself."""
    fixed = precision.loss_scale_type == "fixed" and not precision.drop_overflow_update
    return precision.loss_scale if fixed else 1.0


def _model_card(config: TrainConfig, network, labels: tuple[str, ...], mean, std) -> ModelCard:
    return ModelCard(model=config.model.name, width=network.width, image_size=config.data.image_size,
                     num_classes=network.num_classes, labels=labels, mean=tuple(mean), std=tuple(std),
                     crop_pct=config.data.crop_pct, interpolation=config.data.interpolation,
                     activation=config.model.activation, format="ckpt", source="mnv1-tk train")


def _copy_weights(arrays: dict, network) -> None:
    from mindspore import Tensor

    for param in network.get_parameters():
        param.set_data(Tensor(arrays[param.name], param.dtype))


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
        cfg, aug = self.config.data, self.config.augment
        from toolkit.models import default_cfgs

        spec = DatasetSpec(name=cfg.name, root=cfg.root, train_split=cfg.train_split, val_split=cfg.val_split)
        labels = dataset_labels(spec)
        pretrained = default_cfgs.get(self.config.model.name)
        if pretrained is None:
            from toolkit.models import list_models

            raise ConfigError(f"unknown model '{self.config.model.name}'", f"use one of: {', '.join(list_models())}")
        mean, std = cfg.mean or pretrained.mean, cfg.std or pretrained.std
        workers = min(cfg.num_workers, os.cpu_count() or 1)  # MindSpore refuses more workers than cores
        dataset = create_dataset(spec, "train", cfg.image_size, shuffle=cfg.shuffle, num_samples=cfg.num_samples,
                                 num_parallel_workers=workers, seed=self.config.system.seed, **self.workers.shard)
        transforms = create_transforms(True, cfg.image_size, mean, std, cfg.crop_pct, cfg.interpolation, aug)
        loader = create_loader(dataset, transforms, cfg.batch_size, drop_remainder=cfg.drop_remainder,
                               num_parallel_workers=workers)
        steps = loader.get_dataset_size()
        if steps == 0:
            raise ConfigError(f"batch_size {cfg.batch_size} is larger than this worker's "
                              f"{dataset.get_dataset_size()} training images", "lower batch_size or drop_remainder")
        return spec, labels, mean, std, loader, steps

    def create_networks(self, num_classes: int):
        from toolkit.models import create_model
        from toolkit.models.checkpoint import load_weights

        cfg = self.config.model
        kwargs = {"num_classes": num_classes, "activation": cfg.activation, "drop_rate": cfg.drop_rate or 0.0}
        network, clean = create_model(cfg.name, **kwargs), create_model(cfg.name, **kwargs)
        if cfg.checkpoint:
            report = load_weights(network, cfg.checkpoint, head="adapt")
            self._print(f"loaded {cfg.checkpoint}: {report.message}")
        clean.set_train(False)
        if self.config.precision.val_amp_level != "O0":
            import mindspore as ms

            ms.amp.auto_mixed_precision(clean, self.config.precision.val_amp_level)
        return network, clean

    # -- the run ---------------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        try:
            return self._fit()
        except (ToolkitError, RuntimeError):
            self._remove_uncommitted_output()
            raise

    def _fit(self) -> TrainResult:
        from toolkit.runtimes.mindspore_rt import MindSporeCkptPredictor
        from toolkit.train.ema import EMA
        from toolkit.train.optim import create_loss, create_optimizer
        from toolkit.train.scheduler import create_scheduler
        from toolkit.validate import evaluate

        config, workers = self.config, self.workers
        spec, labels, mean, std, loader, steps_per_epoch = self.create_data()
        num_classes = config.model.num_classes or len(labels)
        if num_classes < len(labels):
            raise ConfigError(f"num_classes {num_classes} is smaller than the dataset's {len(labels)} classes",
                              f"set num_classes to at least {len(labels)}")
        card_labels = labels + tuple(f"class_{i}" for i in range(len(labels), num_classes))
        network, clean = self.create_networks(num_classes)
        card = _model_card(config, clean, card_labels, mean, std)
        loss_fn = create_loss(config.loss, num_classes)
        epochs = config.run.epochs
        lrs = create_scheduler(config.scheduler, steps_per_epoch, epochs)
        optimizer = create_optimizer(network, config.optimizer, lrs, optimizer_loss_scale(config.precision))
        train_step = create_train_step(network, loss_fn, optimizer, config.precision)
        ema = EMA(network, config.run.ema_decay) if config.run.ema else None

        manager = CheckpointManager(self.directory, config.model.name, config.checkpoint.keep_max,
                                    config.checkpoint.policy)
        metrics = MetricsLog(self.directory / METRICS_FILE, workers.is_main)
        start_epoch, best_top1, best_epoch = 0, -1.0, 0
        if workers.is_main:
            ensure_writable_dir(self.directory)
            save_config(config, self.directory / CONFIG_FILE)
        if config.checkpoint.resume:
            start_epoch, best_top1, best_epoch = self._resume(manager, metrics, network, optimizer, ema)
        if start_epoch >= epochs:
            self._print(f"nothing to do: the run already finished {start_epoch} of {epochs} epochs")
        history, last_path = [], None
        global_step = start_epoch * steps_per_epoch
        iterator = loader.create_tuple_iterator(num_epochs=max(epochs - start_epoch, 1))
        predictor = MindSporeCkptPredictor.from_network(clean, card)
        shard = (workers.size, workers.rank) if workers.size > 1 else None
        with self._progress() as progress:
            for epoch in range(start_epoch + 1, epochs + 1):
                task = progress.add_task("train", total=steps_per_epoch, epoch=f"{epoch}/{epochs}", loss=0.0,
                                         lr=lrs[global_step], ips=0.0)
                loss_sum, seen, started, timed_from = 0.0, 0, time.perf_counter(), None
                for images, target in _batches(iterator):
                    out = train_step(images, target)
                    loss = float((out[0] if isinstance(out, tuple) else out).asnumpy())
                    if not np.isfinite(loss):
                        raise ConfigError(f"the loss became {loss} in epoch {epoch}",
                                          "lower lr or loss_scale, or use amp_level O0")
                    if ema is not None:
                        ema()
                    lr = lrs[global_step]
                    global_step += 1
                    loss_sum += loss
                    seen += 1
                    if timed_from is None:  # the first step includes graph compilation
                        timed_from = (time.perf_counter(), seen)
                    rate = _rate(timed_from, seen, images.shape[0] * workers.size)
                    progress.update(task, advance=1, loss=loss, lr=lr, ips=rate)
                    if global_step % config.run.log_interval == 0:
                        metrics.append({"event": "step", "epoch": epoch, "global_step": global_step, "loss": loss,
                                        "lr": lr, "images_per_s": rate})
                _copy_weights(ema.shadow_arrays() if ema else {p.name: p.asnumpy() for p in network.get_parameters()},
                              clean)
                record = {"event": "epoch", "epoch": epoch, "global_step": global_step,
                          "loss": loss_sum / max(seen, 1), "lr": lrs[global_step - 1],
                          "images_per_s": _rate(timed_from, seen, config.data.batch_size * workers.size),
                          "seconds": time.perf_counter() - started}
                if config.run.validate and (epoch % config.run.val_interval == 0 or epoch == epochs):
                    result = evaluate(predictor, spec, "val", batch_size=config.data.batch_size, shard=shard)
                    counts = all_reduce_sum(np.array([result["correct_top1"], result["correct_top5"],
                                                      result["count"]], np.float64), workers)
                    record.update(top1=float(counts[0] / counts[2]), top5=float(counts[1] / counts[2]),
                                  val_count=int(counts[2]))
                progress.remove_task(task)
                improved = "top1" in record and record["top1"] > best_top1
                if improved:
                    best_top1, best_epoch = record["top1"], epoch
                metrics.append(record)
                history.append(record)
                if epoch % config.checkpoint.interval == 0 or epoch == epochs:
                    last_path = manager.epoch_path(epoch, global_step)
                    if workers.is_main:
                        self._save_epoch(manager, clean, card, record, last_path, improved, network, optimizer,
                                         best_top1, best_epoch, ema)
                        self._committed = True
                self._print(_epoch_line(record, epochs, improved))
        if workers.size > 1 and not workers.is_main and last_path is not None:
            # Each replica's final training weights, so that their equality can be checked.
            save_params([(p.name, p) for p in network.get_parameters()],
                        self.directory / f"rank_{workers.rank}" / last_path.name)
        best = manager.best_path if manager.best_path.is_file() else None
        return TrainResult(directory=self.directory, last_checkpoint=last_path or _latest(manager),
                           best_checkpoint=best, best_top1=best_top1, best_epoch=best_epoch, epochs=epochs,
                           history=history)

    def _save_epoch(self, manager: CheckpointManager, clean, card: ModelCard, record: dict, path: Path,
                    improved: bool, network, optimizer, best_top1: float, best_epoch: int, ema) -> None:
        extra = {k: record[k] for k in ("epoch", "global_step") if k in record}
        extra.update({f"val_{k}": record[k] for k in ("top1", "top5") if k in record}, ema=ema is not None)
        epoch_card = card.replace(extra=extra)
        manager.save_weights(clean, epoch_card, path)
        if improved:
            manager.save_weights(clean, epoch_card, manager.best_path)
        updates = float(ema.updates.asnumpy()) if ema is not None else 0.0
        manager.commit(record["epoch"], record["global_step"], optimizer, network, best_top1, best_epoch, updates)

    def _resume(self, manager: CheckpointManager, metrics: MetricsLog, network, optimizer, ema):
        from mindspore import Tensor

        from toolkit.models.checkpoint import read_checkpoint

        manager.remove_partial_files()
        point = manager.latest()
        if point is None:
            self._print(f"no committed checkpoint in {self.directory}: starting from epoch 1")
            return 0, -1.0, 0
        train_weights = {name[len(TRAIN_PREFIX):]: value.asnumpy() for name, value in point.state.items()
                         if name.startswith(TRAIN_PREFIX)}
        _copy_weights(train_weights, network)
        weights = {id(p) for p in network.get_parameters()}
        for param in optimizer.get_parameters():
            # The learning-rate schedule is rebuilt from the config; everything else is restored.
            if param.name in point.state and param.name != "learning_rate" and id(param) not in weights:
                param.set_data(Tensor(point.state[param.name].asnumpy(), param.dtype))
        if ema is not None:
            saved = read_checkpoint(point.weights)
            ema.load_arrays({name: value.asnumpy() for name, value in saved.items()}, point.ema_updates)
        metrics.truncate_after(point.epoch)
        metrics.append({"event": "resume", "epoch": point.epoch, "global_step": point.global_step,
                        "checkpoint": point.weights.name})
        self._committed = True
        self._print(f"resumed from {point.weights.name} (epoch {point.epoch}, step {point.global_step})")
        return point.epoch, point.best_top1, point.best_epoch

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
        return Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.3g}  "
                                   "{task.fields[ips]:.0f} img/s"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=self.console, disable=not self.workers.is_main, transient=True)

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
    return Trainer(config, console).fit()


def train_from_config(config_file: str | Path | None = None, overrides: dict | None = None,
                      sets: tuple[str, ...] = ()) -> TrainResult:
    """`mnv1-tk train`: load the YAML config (a path or a shipped config's name), apply the CLI
    overrides ({key: value}, None = not given) and `--set KEY=VALUE` pairs, then train."""
    return train(load_config(config_file, overrides, sets))
