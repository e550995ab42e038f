"""`mnv1-tk convert`: checkpoint or ONNX -> graph IR -> model files for phones, each checked against its source.

A conversion makes one output per (width, target, precision):

- SOURCE is a `.onnx` with its model card, a `.ckpt` with its card (exported to ONNX first, at
  `image_size`), or, with `width` ("all" or one width), a directory holding checkpoints with cards,
  for instance the training runs of the zoo widths: per width its `<model>_best.ckpt`, else the
  latest epoch (see `_checkpoints_by_width`).
- `TARGETS` maps an output format (`--to`) to how the NCHW graph is lowered and written;
  `PRECISIONS` maps `--quant` to a graph transform and the tolerance its output is held to.
  The int8 quantizer and MindSpore Lite plug in by adding one entry each (plus their options in
  `ConvertOptions`).
- Every output is run next to its source on `num_eval` eval images: max abs logit difference and
  top-1 agreement. Beyond the precision's tolerance the output is not written (AtolError), unless
  `check=False`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from toolkit.card import ModelCard, load_card, save_card
from toolkit.data import DatasetSpec
from toolkit.errors import AtolError, ConfigError, DataError, ModelFileError
from toolkit.fsutil import atomic_path, ensure_writable_dir

WIDTH_CHOICES = ("0.25", "0.5", "0.75", "1.0", "all")


@dataclass(frozen=True)
class ConvertOptions:
    """What to convert to, and how the outputs are checked."""

    to: str | tuple[str, ...] = ("tflite",)  # names in TARGETS (a comma-separated string works too)
    quant: str | tuple[str, ...] = ("none",)  # names in PRECISIONS
    width: str | None = None  # one of WIDTH_CHOICES; None: the source's own width
    image_size: int | None = None  # checkpoint sources only; None: the size on the checkpoint's card
    out_dir: Path | None = None  # None: next to the source
    eval_data: DatasetSpec | None = None  # None: the card's dataset (extra["dataset"]) or digits
    num_eval: int = 32
    check: bool = True


@dataclass(frozen=True)
class Target:
    """An output format: lower the imported NCHW graph for it, then serialise it."""

    name: str
    suffix: str
    lower: Callable  # (Graph) -> Graph
    write: Callable  # (Graph, ModelCard) -> bytes


@dataclass(frozen=True)
class Precision:
    """A numeric format: a graph transform and the logit difference it may cost.

    An output passes when max |output - source| <= atol + rtol * max |source logits|.
    """

    name: str  # fp32 / fp16 / int8: the middle part of the file name
    transform: Callable  # (Graph, ModelCard, ConvertOptions) -> Graph
    atol: float
    rtol: float = 0.0

    def tolerance(self, reference: np.ndarray) -> float:
        return self.atol + self.rtol * float(np.abs(reference).max())


def _lower_tflite(graph):
    from converters.passes import lower_for_tflite

    return lower_for_tflite(graph)


def _write_tflite(graph, card: ModelCard) -> bytes:
    from converters.tflite import write_tflite
    from converters.tflite.metadata import add_metadata

    return add_metadata(write_tflite(graph, description=f"mnv1-tk {card.stem} {card.precision}"), card)


def _to_fp16(graph, card: ModelCard, options: ConvertOptions):
    from converters.passes.to_fp16 import to_fp16

    return to_fp16(graph)


TARGETS: dict[str, Target] = {
    "tflite": Target("tflite", ".tflite", _lower_tflite, _write_tflite),
}
# Tolerances. float32: kernels summing in another order differ by ~1e-5 on logits of a few units.
# fp16: each weight carries a relative rounding error up to 2^-11; through 27 layers that cost
# 0.1-0.5% of the logit scale on trained and trained-like networks (measured), 2-6% on chaotic random
# ones; the gate is 5%: far below what a layout or padding bug costs (the logits themselves).
PRECISIONS: dict[str, Precision] = {
    "none": Precision("fp32", lambda graph, card, options: graph, atol=1e-4, rtol=1e-5),
    "fp16": Precision("fp16", _to_fp16, atol=1e-2, rtol=5e-2),
}


@dataclass
class ConversionResult:
    """One output file and how closely it follows its source."""

    model: str
    width: float
    image_size: int
    target: str
    precision: str
    path: Path
    source: Path
    size_mb: float
    max_abs_diff: float
    top1_agreement: float
    num_eval: int
    convert_seconds: float
    export_seconds: float = 0.0
    within_tolerance: bool = True

    def to_dict(self) -> dict:
        data = asdict(self)
        data["path"], data["source"] = str(self.path), str(self.source)
        return data


@dataclass
class _Source:
    """A model to convert: the file the user named, the ONNX it is imported from, and their card."""

    path: Path
    onnx: Path | None
    card: ModelCard
    export_seconds: float = 0.0


# ---- option checking ------------------------------------------------------------------------------
def _split(value: str | tuple[str, ...] | list[str], choices, what: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip())
    unknown = [n for n in names if n not in choices]
    if unknown or not names:
        raise ConfigError(f"unknown {what} {', '.join(unknown) or '(none given)'}",
                          f"use one of: {', '.join(choices)} (comma-separated for several)")
    return names


def parse_width(width: str | float | None) -> str | None:
    if width is None:
        return None
    text = str(width).strip()
    for choice in WIDTH_CHOICES:
        if text == choice or (choice != "all" and _is_number(text) and float(text) == float(choice)):
            return choice
    raise ConfigError(f"--width {text} is not a MobileNetV1 width", f"use one of: {', '.join(WIDTH_CHOICES)}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---- sources --------------------------------------------------------------------------------------
def _checkpoints_by_width(directory: Path) -> dict[float, Path]:
    """The checkpoint to convert for each width found under `directory` (searched recursively).

    Only checkpoints with a model card count. Of several of one width (a training run keeps its
    epoch checkpoints), `<model>_best.ckpt` wins, then the latest epoch on the card.
    """
    found: dict[float, list[tuple[Path, ModelCard]]] = {}
    for ckpt in sorted(directory.rglob("*.ckpt")):
        if Path(f"{ckpt}.json").is_file():
            card = load_card(ckpt)
            found.setdefault(card.width, []).append((ckpt, card))
    def progress(card: ModelCard) -> tuple[int, int]:
        return card.extra.get("epoch", -1), card.extra.get("global_step", -1)

    chosen = {}
    for width, candidates in found.items():
        best = [path for path, card in candidates if path.name == f"{card.model}_best.ckpt"]
        last = max(progress(card) for _, card in candidates)
        picks = best or [path for path, card in candidates if progress(card) == last]
        if len(picks) > 1:
            names = ", ".join(str(p.relative_to(directory)) for p in picks)
            raise DataError(f"{directory} holds several checkpoints of width {width} and none is the best or the "
                            f"latest: {names}", "pass the checkpoint file, or keep one per width")
        chosen[width] = picks[0]
    return chosen


def _resolve_sources(source: Path, options: ConvertOptions) -> list[_Source]:
    from toolkit.models import WIDTHS

    width = options.width
    if source.is_dir():
        if width is None:
            raise ConfigError(f"{source} is a directory", "pass --width all (or a width) to pick its checkpoints")
        by_width = _checkpoints_by_width(source)
        wanted = WIDTHS if width == "all" else (float(width),)
        missing = [w for w in wanted if w not in by_width]
        if missing:
            raise DataError(f"{source} has no checkpoint (with a model card) for width "
                            f"{', '.join(str(w) for w in missing)}",
                            "train those widths into this directory, or pass --width for one that is there")
        return [_Source(by_width[w], None, load_card(by_width[w])) for w in wanted]
    if not source.is_file():
        raise ModelFileError(f"source {source} does not exist", "pass a .ckpt, an .onnx or a checkpoint directory")
    suffix = source.suffix.lower()
    if suffix not in (".ckpt", ".onnx"):
        raise ModelFileError(f"cannot convert from {suffix or 'a file without suffix'} ({source.name})",
                             "pass a .ckpt, an .onnx (each with its .json card) or a checkpoint directory")
    card = load_card(source)
    if width == "all":
        raise ConfigError("--width all needs a directory with one checkpoint per width",
                          f"pass that directory instead of {source.name}, or drop --width")
    if width is not None and float(width) != card.width:
        raise ConfigError(f"{source.name} has width {card.width} (from its card), not {width}",
                          "drop --width, or pass the model of that width")
    if suffix == ".onnx":
        if options.image_size not in (None, card.image_size):
            raise ConfigError(f"{source.name} is fixed at {card.image_size}x{card.image_size}",
                              "drop --image-size (it applies to checkpoints), or export the size you want")
        return [_Source(source, source, card)]
    return [_Source(source, None, card)]


def _export(src: _Source, out_dir: Path, image_size: int | None) -> _Source:
    """Export a checkpoint source to ONNX in out_dir (toolkit.export does the checking)."""
    from toolkit.export import export_model

    start = time.perf_counter()
    paths = export_model(src.path, out_dir, formats=("onnx",), width=src.card.width,
                         image_size=image_size or src.card.image_size)
    onnx = Path(paths["onnx"])
    return _Source(src.path, onnx, load_card(onnx), time.perf_counter() - start)


# ---- evaluation -----------------------------------------------------------------------------------
def eval_batch(card: ModelCard, spec: DatasetSpec | None, count: int) -> np.ndarray:
    """The first `count` images of the eval split, through the card's eval transform (canonical NCHW)."""
    from toolkit.validate import eval_batches

    if spec is None:
        spec = DatasetSpec(**card.extra["dataset"]) if "dataset" in card.extra else DatasetSpec("digits")
    batch = next(eval_batches(card, spec, "val", limit=count, batch_size=count), None)
    if batch is None:
        raise DataError(f"the {spec.name} eval split is empty", "pass --data / --data-dir with eval images")
    return batch[0]


def compare(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(max abs difference, top-1 agreement) of two logit batches."""
    diff = float(np.abs(reference.astype(np.float64) - candidate).max())
    agreement = float(np.mean(reference.argmax(axis=1) == candidate.argmax(axis=1)))
    return diff, agreement


# ---- conversion -----------------------------------------------------------------------------------
def _output_card(graph, card: ModelCard, target: Target, precision: Precision, source: Path) -> ModelCard:
    from toolkit.card import InputQuant

    x = graph.tensors[graph.inputs[0]]
    y = graph.tensors[graph.outputs[0]]
    quant = InputQuant(float(x.quant.scale[0]), int(x.quant.zero_point[0])) if x.quant is not None else None
    return card.replace(format=target.name, precision=precision.name, input_name=x.name,
                        input_layout=graph.layout, input_dtype=x.dtype, input_quant=quant,
                        output_name=y.name, output_dtype=y.dtype, source=source.name)


def _convert_source(src: _Source, targets: list[Target], precisions: list[Precision], options: ConvertOptions,
                    out_dir: Path, step: Callable[[str], None]) -> list[ConversionResult]:
    from converters.onnx_import import import_onnx
    from toolkit.runtimes import load_predictor

    if src.onnx is None:
        step(f"export {src.path.name} to ONNX")
        src = _export(src, out_dir, options.image_size)
    card = src.card
    step(f"{card.stem}: run the source on {options.num_eval} eval images")
    images = eval_batch(card, options.eval_data, options.num_eval)
    reference = load_predictor(src.path, card=card).run(images)  # the checkpoint itself for .ckpt sources
    results = []
    for target in targets:
        start = time.perf_counter()
        lowered = target.lower(import_onnx(src.onnx, card))
        lower_seconds = time.perf_counter() - start
        for precision in precisions:
            step(f"{card.stem}: {target.name} {precision.name}")
            start = time.perf_counter()
            graph = precision.transform(lowered, card, options)
            out_card = _output_card(graph, card, target, precision, src.path)
            data = target.write(graph, out_card)
            seconds = lower_seconds + time.perf_counter() - start
            path = out_dir / f"{card.stem}.{precision.name}{target.suffix}"
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
                diff, agreement = compare(reference, load_predictor(tmp, card=out_card).run(images))
                tolerance = precision.tolerance(reference)
                if options.check and diff > tolerance:
                    raise AtolError(f"{path.name} differs from {src.path.name} by {diff:.3g} (max abs logit), "
                                    f"beyond the {precision.name} tolerance {tolerance:.3g}; nothing written",
                                    "report this model, or pass --no-check to keep it anyway")
            save_card(out_card, path)
            results.append(ConversionResult(
                card.model, card.width, card.image_size, target.name, precision.name, path, src.path,
                len(data) / 1e6, diff, agreement, len(images), seconds, src.export_seconds, diff <= tolerance))
    return results


def convert(source: str | Path, options: ConvertOptions = ConvertOptions(),
            on_step: Callable[[str], None] | None = None) -> list[ConversionResult]:
    """Convert `source` to every (width, target, precision) in `options`; see the module docstring.

    `on_step(description)` is called as each stage starts (for a progress display). Options and
    sources are checked before anything is written; a failure leaves no new output directory behind.
    """
    targets = [TARGETS[t] for t in _split(options.to, tuple(TARGETS), "target")]
    precisions = [PRECISIONS[q] for q in _split(options.quant, tuple(PRECISIONS), "precision")]
    options = ConvertOptions(**{**asdict(options), "width": parse_width(options.width)})
    source = Path(source)
    sources = _resolve_sources(source, options)
    out_dir = Path(options.out_dir or (source if source.is_dir() else source.parent))
    created = not out_dir.exists()
    ensure_writable_dir(out_dir)
    results = []
    try:
        for src in sources:
            results += _convert_source(src, targets, precisions, options, out_dir, on_step or (lambda _: None))
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    return results


# ---- command line ---------------------------------------------------------------------------------
def results_table(results: list[ConversionResult]):
    from rich.table import Table

    table = Table(title="mnv1-tk convert")
    for column in ("output", "format", "precision", "MB", "max |Δ|", "top-1 agree", "seconds"):
        table.add_column(column, justify="left" if column in ("output", "format", "precision") else "right",
                         no_wrap=column == "output")
    for r in results:
        diff = f"{r.max_abs_diff:.1e}" + ("" if r.within_tolerance else " (!)")
        table.add_row(r.path.name, r.target, r.precision, f"{r.size_mb:.2f}", diff,
                      f"{100 * r.top1_agreement:.0f}%", f"{r.convert_seconds:.2f}")
    table.caption = f"vs the source on {results[0].num_eval} eval images" if results else None
    return table


def convert_command(source: Path, *, to: str = "tflite", quant: str = "none", width: str | None = None,
                    image_size: int | None = None, out_dir: Path | None = None, data: str | None = None,
                    data_dir: str | None = None, num_eval: int = 32, check: bool = True,
                    as_json: bool = False) -> list[ConversionResult]:
    """`mnv1-tk convert`: convert() with a progress line on stderr, then a table (or JSON) on stdout."""
    import json
    import sys

    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if num_eval < 1:
        raise ConfigError(f"--num-eval {num_eval} must be at least 1", "pass --num-eval 32")
    options = ConvertOptions(to=to, quant=quant, width=width, image_size=image_size, out_dir=out_dir,
                             eval_data=DatasetSpec(data, data_dir) if data or data_dir else None,
                             num_eval=num_eval, check=check)
    stderr = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=stderr,
                  transient=True, disable=not stderr.is_terminal) as progress:
        task = progress.add_task("convert", total=None)
        results = convert(source, options, on_step=lambda description: progress.update(task, description=description))
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        Console(width=None if sys.stdout.isatty() else 120).print(results_table(results))  # pipes: no wrapping
    return results
