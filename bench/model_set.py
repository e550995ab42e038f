"""A shared set of varied MobileNetV1s trained on digits, for benchmarks that must generalize.

Twelve models vary width (0.25-1.0), input size (32-96), activation (relu / relu6), seed, epochs,
augmentation (the digits crop scale) and label smoothing. They are split into a `tuning` group
(defaults and recipe choices are made on it) and a `held_out` group (only reported). Each model is
trained once into the cache directory `$MNV1TK_BENCH_MODELS` (default `runs/bench_models`), one
sub-directory per model, resumed after an interruption and reused afterwards; a lock file per
model lets two benchmarks share the cache at the same time.

    .venv/bin/python -m bench.model_set [--group tuning|held_out|all]   # train what is missing
    from bench.model_set import ensure_models; models = ensure_models("held_out")
"""

from __future__ import annotations

import argparse
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "MNV1TK_BENCH_MODELS"
DEFAULT_CACHE = Path("runs/bench_models")
GROUPS = ("tuning", "held_out")


@dataclass(frozen=True)
class BenchModel:
    group: str
    width: float
    size: int
    activation: str
    seed: int
    epochs: int
    crop_scale: float        # lower bound of the random-resized-crop area (1.0: no crop jitter)
    label_smoothing: float

    @property
    def name(self) -> str:
        from toolkit.models import model_name

        smooth = f"_ls{self.label_smoothing:g}" if self.label_smoothing else ""
        return (f"{model_name(self.width)}_{self.size}_{self.activation}_s{self.seed}_e{self.epochs}"
                f"_c{self.crop_scale:g}{smooth}")

    def overrides(self, run_dir: Path) -> dict:
        from toolkit.models import model_name

        return {"model": model_name(self.width), "image_resize": self.size, "activation": self.activation,
                "seed": self.seed, "epoch_size": self.epochs, "decay_epochs": self.epochs,
                "scale": [self.crop_scale, 1.0], "label_smoothing": self.label_smoothing,
                "ckpt_save_dir": str(run_dir)}


MODELS = (
    BenchModel("tuning", 0.25, 32, "relu6", 1, 5, 0.85, 0.0),
    BenchModel("tuning", 0.5, 48, "relu", 2, 6, 0.85, 0.1),
    BenchModel("tuning", 0.75, 64, "relu6", 3, 4, 0.7, 0.0),
    BenchModel("tuning", 1.0, 48, "relu", 4, 5, 1.0, 0.0),
    BenchModel("tuning", 0.25, 64, "relu", 5, 8, 0.85, 0.1),
    BenchModel("tuning", 0.5, 96, "relu6", 6, 3, 0.85, 0.0),
    BenchModel("held_out", 0.25, 48, "relu", 11, 6, 0.85, 0.0),
    BenchModel("held_out", 0.5, 32, "relu6", 12, 8, 1.0, 0.1),
    BenchModel("held_out", 0.75, 48, "relu", 13, 5, 0.7, 0.0),
    BenchModel("held_out", 1.0, 64, "relu6", 14, 4, 0.85, 0.0),
    BenchModel("held_out", 0.5, 64, "relu", 15, 5, 0.85, 0.1),
    BenchModel("held_out", 1.0, 32, "relu", 16, 6, 0.7, 0.0),
)


@dataclass(frozen=True)
class TrainedModel:
    spec: BenchModel
    checkpoint: Path   # best checkpoint (with its card, `<ckpt>.json`)
    onnx: Path         # exported ONNX (with its card)


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def select(group: str = "all") -> list[BenchModel]:
    if group not in (*GROUPS, "all"):
        raise ValueError(f"group must be one of {GROUPS + ('all',)}, got {group!r}")
    return [m for m in MODELS if group in ("all", m.group)]


def select_models(group: str, limit: int | None = None, names: str | None = None) -> list[BenchModel]:
    """The group's first `limit` models, only those named in `names` (comma-separated) when given."""
    specs = select(group)[:limit]
    if names:
        unknown = set(names.split(",")) - {spec.name for spec in specs}
        if unknown:
            raise ValueError(f"not in the {group} group: {', '.join(sorted(unknown))}")
        specs = [spec for spec in specs if spec.name in names.split(",")]
    return specs


def ensure_model(spec: BenchModel, root: Path | None = None, console=None) -> TrainedModel:
    """Train (or resume, or reuse) one model; returns its best checkpoint and exported ONNX."""
    from toolkit.export import export_model
    from toolkit.train import load_config, train

    run_dir = (root or cache_dir()) / spec.name
    run_dir.mkdir(parents=True, exist_ok=True)
    done = run_dir / "DONE"
    with open(run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            resume = any(run_dir.glob("optim_*.ckpt"))
            config = load_config("mobilenet_v1_025_digits", {**spec.overrides(run_dir), "resume_opt": resume})
            result = train(config, console=console)
            onnx = export_model(result.best_checkpoint, run_dir / "export", formats=("onnx",))["onnx"]
            done.write_text(f"{result.best_checkpoint.name}\n{onnx.name}\n{result.best_top1:.4f}\n")
        checkpoint, onnx, _ = done.read_text().split("\n", 2)
    return TrainedModel(spec, run_dir / checkpoint, run_dir / "export" / onnx)


def ensure_models(group: str = "all", root: Path | None = None, console=None) -> list[TrainedModel]:
    return [ensure_model(spec, root, console) for spec in select(group)]


def main(argv=None) -> int:
    os.environ.setdefault("GLOG_v", "4")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", default="all", choices=(*GROUPS, "all"))
    args = parser.parse_args(argv)

    from rich.console import Console

    console = Console(stderr=True)
    for spec in select(args.group):
        console.print(f"[bold]{spec.group}[/] {spec.name}")
        model = ensure_model(spec, console=console)
        console.print(f"  {model.checkpoint}  {model.onnx}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
