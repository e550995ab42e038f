"""Checkpoints of a training run, every file written atomically.

    <dir>/<model>-<epoch>_<step>.ckpt (+ .json card)   weights after an epoch (EMA weights when EMA is on)
    <dir>/<model>_best.ckpt (+ .json card)             the weights with the best validation top-1 so far
    <dir>/optim_<model>.ckpt                           optimizer state, training weights and progress

The optimizer-state file is written last and names the epoch checkpoint it belongs to, so it is the
commit point: `--resume` after a crash or `kill -9` restarts from it and loses at most the epoch
that was running.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from toolkit.card import ModelCard, card_path, save_card
from toolkit.errors import CheckpointError
from toolkit.fsutil import atomic_path, ensure_writable_dir

TRAIN_PREFIX = "train."  # training weights inside the optimizer-state file
PROGRESS = "progress."  # run progress inside the optimizer-state file (the optimizer has its own global_step)
STATE_KEYS = ("epoch", "global_step", "best_top1", "best_epoch", "ema_updates")


@dataclass(frozen=True)
class ResumePoint:
    """Where a run stopped: the committed epoch and what is needed to continue after it."""

    epoch: int
    global_step: int
    best_top1: float
    best_epoch: int
    ema_updates: float
    weights: Path  # the epoch checkpoint
    state: dict  # optimizer and training-weight entries of the state file


def save_params(entries: list[tuple[str, object]], path: Path, append: dict | None = None) -> Path:
    """`[(name, Parameter or Tensor)]` -> `path` atomically."""
    import mindspore as ms

    with atomic_path(path) as tmp:
        ms.save_checkpoint([{"name": n, "data": p} for n, p in entries], str(tmp), append_dict=append)
    return path


class CheckpointManager:
    """Writes, prunes and finds the checkpoints of one run."""

    def __init__(self, directory: str | Path, model_name: str, keep_max: int = 10, policy: str = "latest_k"):
        self.directory = Path(directory)
        self.model_name = model_name
        self.keep_max = keep_max
        self.policy = policy
        self._pattern = re.compile(rf"^{re.escape(model_name)}-(\d+)_(\d+)\.ckpt$")

    def epoch_path(self, epoch: int, step: int) -> Path:
        return self.directory / f"{self.model_name}-{epoch}_{step}.ckpt"

    @property
    def best_path(self) -> Path:
        return self.directory / f"{self.model_name}_best.ckpt"

    @property
    def state_path(self) -> Path:
        return self.directory / f"optim_{self.model_name}.ckpt"

    def epoch_checkpoints(self) -> list[tuple[int, Path]]:
        """(epoch, path) of the epoch checkpoints on disk, oldest first."""
        found = []
        for path in self.directory.glob(f"{self.model_name}-*.ckpt"):
            match = self._pattern.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def save_weights(self, network, card: ModelCard, path: Path) -> Path:
        """A model checkpoint and its card."""
        ensure_writable_dir(self.directory)
        save_params([(p.name, p) for p in network.get_parameters()], path)
        save_card(card, path)
        return path

    def commit(self, epoch: int, global_step: int, optimizer, network, best_top1: float, best_epoch: int,
               ema_updates: float = 0.0) -> Path:
        """Write the optimizer-state file for the epoch checkpoint just saved, then prune old checkpoints."""
        weights = {id(p) for p in network.get_parameters()}
        entries = [(TRAIN_PREFIX + p.name, p) for p in network.get_parameters()]
        entries += [(p.name, p) for p in optimizer.get_parameters() if id(p) not in weights]
        progress = {"epoch": epoch, "global_step": global_step, "best_top1": float(best_top1),
                    "best_epoch": best_epoch, "ema_updates": float(ema_updates)}
        append = {PROGRESS + key: value for key, value in progress.items()}
        save_params(entries, self.state_path, append)
        self.prune(keep=self.epoch_path(epoch, global_step))
        return self.state_path

    def prune(self, keep: Path) -> None:
        """Keep `keep_max` epoch checkpoints: the newest, or the best by val top-1 (`top_k`), plus `keep`."""
        from toolkit.card import load_card

        found = [path for _, path in self.epoch_checkpoints()]
        if self.policy == "top_k":
            def top1(path: Path) -> float:
                try:
                    return float(load_card(path).extra.get("val_top1", -1.0))
                except Exception:  # a card that cannot be read ranks last
                    return -1.0
            found.sort(key=top1)
        for path in found[:max(len(found) - self.keep_max, 0)]:
            if path != keep:
                path.unlink(missing_ok=True)
                card_path(path).unlink(missing_ok=True)

    def remove_partial_files(self) -> None:
        """Temporary files of writes that a crash interrupted (`atomic_path` names them `.<name>.*.part*`)."""
        for path in self.directory.glob(".*.part*"):
            path.unlink(missing_ok=True)

    def latest(self) -> ResumePoint | None:
        """The committed state to resume from, or None if the run has not committed an epoch yet."""
        from toolkit.models.checkpoint import read_checkpoint

        if not self.state_path.is_file():
            return None
        state = read_checkpoint(self.state_path)
        missing = [PROGRESS + k for k in STATE_KEYS if PROGRESS + k not in state]
        if missing:
            raise CheckpointError(f"{self.state_path} lacks {missing}", "it was not written by mnv1-tk train; "
                                  "move it away to start afresh")
        meta = {k: state.pop(PROGRESS + k).asnumpy().item() for k in STATE_KEYS}
        weights = self.epoch_path(int(meta["epoch"]), int(meta["global_step"]))
        if not weights.is_file():
            raise CheckpointError(f"{self.state_path} belongs to {weights.name}, which is missing",
                                  "restore that checkpoint or start afresh without --resume")
        return ResumePoint(epoch=int(meta["epoch"]), global_step=int(meta["global_step"]),
                           best_top1=float(meta["best_top1"]), best_epoch=int(meta["best_epoch"]),
                           ema_updates=float(meta["ema_updates"]), weights=weights, state=state)
