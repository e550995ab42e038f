"""`mnv1-tk zoo`: the whole pipeline for every width, from data to phone-ready files, in one run.

For each width: train (or resume, or reuse a finished run), export ONNX and MINDIR, convert to
every target and precision (int8 calibrated on the training split), and measure every file on the
whole validation split. The result is a folder a phone app can take files from, an index
(`zoo.json`) and a table. On the embedded default (digits, width 0.25, 32x32) it runs in a few
minutes on a laptop CPU; on ImageNet with `--widths all` it builds the full zoo.

    out/
      mobilenet_v1_025/          training run: checkpoints, metrics.jsonl, config.yaml
      models/                    <model>_<size>.{onnx,mindir,fp32.tflite,fp16.tflite,int8.tflite,fp32.ms,int8.ms} + cards
      zoo.json                   every file with its size, top-1, top-5 and agreement with float
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from toolkit.errors import ConfigError
from toolkit.fsutil import ensure_writable_dir, write_json

INDEX = "zoo.json"


@dataclass(frozen=True)
class ZooOptions:
    config: str = "mobilenet_v1_025_digits"  # a shipped config's name or a YAML file
    widths: tuple[float, ...] = (0.25,)
    image_size: int | None = None  # None: the config's
    epochs: int | None = None  # None: the config's
    out: Path = Path("runs/zoo")
    to: str = "tflite,mslite"
    quant: str = "none,fp16,int8"
    calib: str | None = None  # None: the training split of the config's dataset
    calib_size: int = 300
    recipe: str = "default"


@dataclass(frozen=True)
class ZooEntry:
    model: str
    width: float
    image_size: int
    format: str
    precision: str
    path: str
    size_mb: float
    top1: float
    top5: float
    top1_agreement: float | None  # with the float source, on the same images
    sqnr_db: float | None


def parse_widths(text: str) -> tuple[float, ...]:
    from toolkit.models import WIDTHS

    if text.strip() == "all":
        return WIDTHS
    try:
        widths = tuple(float(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if not widths or any(w not in WIDTHS for w in widths):
        raise ConfigError(f"--widths {text} is not a list of MobileNetV1 widths",
                          f"use all or some of {', '.join(str(w) for w in WIDTHS)}, comma-separated")
    return widths


def _calibration_source(spec) -> str:
    return spec.name if spec.name == "digits" else f"{spec.name}:{spec.root}"


def build_zoo(options: ZooOptions, console=None, step=lambda text: None) -> list[ZooEntry]:
    """Run the pipeline for every width of `options`; returns one entry per file and writes zoo.json."""
    from toolkit.card import load_card
    from toolkit.convert import ConvertOptions, QuantOptions, convert
    from toolkit.data import DatasetSpec
    from toolkit.export import export_model
    from toolkit.models import model_name
    from toolkit.runtimes import load_predictor
    from toolkit.train import load_config, train
    from toolkit.validate import evaluate

    out = ensure_writable_dir(options.out)
    models = ensure_writable_dir(out / "models")
    entries: list[ZooEntry] = []
    for width in options.widths:
        name = model_name(width)
        run_dir = out / name
        overrides = {"model": name, "ckpt_save_dir": str(run_dir), "image_resize": options.image_size,
                     "epoch_size": options.epochs, "resume_opt": any(run_dir.glob("*.ckpt")) or None}
        config = load_config(options.config, overrides)
        spec = DatasetSpec(config.data.name, config.data.root, config.data.train_split, config.data.val_split)
        step(f"{name}: train ({config.run.epochs} epochs, resumed if interrupted)")
        result = train(config, console=console)
        step(f"{name}: export ONNX and MINDIR")
        exported = export_model(result.best_checkpoint, models)
        for fmt, path in {"ckpt": result.best_checkpoint, **exported}.items():
            step(f"{name}: validate {path.name}")
            with load_predictor(path) as predictor:
                metrics = evaluate(predictor, spec)
            card = load_card(path)
            entries.append(ZooEntry(name, width, card.image_size, fmt, "fp32", str(path), path.stat().st_size / 1e6,
                                    metrics["top1"], metrics["top5"], None, None))
        val_count = metrics["count"]
        quant = QuantOptions(calib=options.calib or _calibration_source(spec), calib_size=options.calib_size,
                             recipe=options.recipe)
        results = convert(exported["onnx"], ConvertOptions(to=options.to, quant=options.quant, out_dir=models,
                                                           eval_data=spec, num_eval=val_count, quantization=quant),
                          on_step=step)
        entries += [ZooEntry(name, width, r.image_size, r.target, r.precision, str(r.path), r.size_mb, r.top1, r.top5,
                             r.top1_agreement, r.sqnr_db) for r in results]
        write_json(out / INDEX, [asdict(e) for e in entries])  # after each width: an interrupted run keeps it
    return entries


def zoo_table(entries: list[ZooEntry]):
    from rich.table import Table

    table = Table(title="mnv1-tk zoo")
    for column in ("file", "format", "precision", "MB", "top-1", "top-5", "agree w/ float", "SQNR dB"):
        table.add_column(column, justify="left" if column in ("file", "format", "precision") else "right")
    for e in entries:
        table.add_row(Path(e.path).name, e.format, e.precision, f"{e.size_mb:.2f}", f"{100 * e.top1:.1f}%",
                      f"{100 * e.top5:.1f}%", "" if e.top1_agreement is None else f"{100 * e.top1_agreement:.1f}%",
                      "" if e.sqnr_db is None else ("exact" if e.sqnr_db == float("inf") else f"{e.sqnr_db:.1f}"))
    return table


def zoo_command(options: ZooOptions, as_json: bool = False) -> list[ZooEntry]:
    """`mnv1-tk zoo`: build_zoo() with progress on stderr, then the table (or JSON) on stdout."""
    import json
    import sys

    from rich.console import Console

    stderr = Console(stderr=True)
    entries = build_zoo(options, console=stderr, step=lambda text: stderr.print(f"[dim]·[/] {text}"))
    if as_json:
        print(json.dumps([asdict(e) for e in entries], indent=2))
    else:
        Console(width=None if sys.stdout.isatty() else 120).print(zoo_table(entries))
        print(f"index: {Path(options.out) / INDEX}")
    return entries
