"""`mnv1-tk convert`: checkpoint or ONNX -> graph IR -> model files for phones, each checked against its source.

A conversion makes one output per (width, target, precision):

- SOURCE is a `.onnx` or a float `.tflite`, a `.ckpt` (exported to ONNX first, at `image_size`),
  or, with `width` ("all" or one width), a directory holding checkpoints with cards, for instance
  the training runs of the zoo widths: per width its `<model>_best.ckpt`, else the latest epoch
  (see `_checkpoints_by_width`). A file without a model card (a model the toolkit did not write,
  a mindcv checkpoint) gets the card inferred from the model (`toolkit.card.infer_card`), with
  `card_overrides` (mean, std, crop_pct, labels, input_range) for what the model cannot say; every
  output gets a full card.
- `TARGETS` maps an output format (`--to`) to how a file of one precision is built: TFLite lowers
  the NCHW graph, transforms it (fp16 weights, or our int8 quantizer) and writes it; MindSpore Lite
  runs its own converter on the ONNX (float32, or its own PTQ with `quantizer="mslite"`) or on our
  int8 `.tflite` (`quantizer="ours"`, the default, which keeps our quantization parameters).
  `PRECISIONS` maps `--quant` to a graph transform and the gate its output is held to.
- Every output is built in a work directory, run next to its source on `num_eval` eval images
  (max abs logit difference, logits SQNR, top-1 agreement, and top-1 / top-5 when the eval data is
  labelled), and only then moved into place. Beyond the precision's gate the output is not written
  (AtolError), unless `check=False`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from toolkit.card import ModelCard, load_card, save_card
from toolkit.data import DatasetSpec
from toolkit.errors import AtolError, ConfigError, DataError, ModelFileError
from toolkit.fsutil import ensure_writable_dir, write_json

WIDTH_CHOICES = ("0.25", "0.5", "0.75", "1.0", "all")
WORK_PREFIX = ".mnv1-tk-convert."  # + pid: scratch directories inside the output directory


@dataclass(frozen=True)
class QuantOptions:
    """How int8 outputs are made: our quantizer (a recipe, overridable field by field) or MindSpore Lite's PTQ."""

    calib: str | None = None  # digits, imagefolder:DIR, cifar10:DIR, an image folder or a .npy batch
    calib_size: int = 500
    quantizer: str = "ours"  # ours | mslite (MindSpore Lite target only)
    recipe: str = "default"  # a preset in quantize/recipes or a JSON file
    method: str | None = None  # ours: auto|minmax|percentile|mse|kl; mslite: max_min|kl|removal_outlier
    cle: bool | None = None
    act_equalization: float | None = None  # headroom; 0: off
    bias_correction: bool | None = None
    adaround: bool | None = None
    io: str | None = None  # float | int8
    fallback: str | None = None  # none | float
    fallback_layers: int | None = None
    classifier: str | None = None  # int8 | float
    report: bool = False  # per-layer sensitivity table + PNG chart


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
    quantization: QuantOptions = field(default_factory=QuantOptions)
    soc: str | tuple[str, ...] = ()  # --to qnn: Snapdragon SoCs to compile for (converters.qnn.SOC_MODELS)
    npu: str | None = None  # --to tflite: also compile the int8 .tflite with LiteRT's AOT compiler, "qualcomm:SM8650"
    card_overrides: dict = field(default_factory=dict)  # toolkit.card.CARD_OVERRIDES given by the user


@dataclass
class Job:
    """One source being converted: what every target needs, computed once and shared."""

    onnx: Path  # the float model the graph is imported from: an .onnx, or a float .tflite
    card: ModelCard
    options: ConvertOptions
    work: Path  # scratch directory inside the output directory
    lowered: dict = field(default_factory=dict)  # target name -> lowered float graph
    calibration: np.ndarray | None = None
    quantized: object = None  # our QuantizationResult, once made
    int8_tflite: Path | None = None
    step: Callable[[str], None] = lambda description: None  # the progress display

    def quantizer_progress(self):
        """The quantizer's (stage, advance, total) ticks as progress lines: `<stem>: int8 calibrate 64/300`."""
        done: dict[str, int] = {}

        def tick(stage: str, advance: int, total: int) -> None:
            done[stage] = done.get(stage, 0) + advance if advance else 0  # 0: the stage (re)starts
            count = f" {done[stage]}/{total}" if total > 1 else ""
            self.step(f"{self.card.stem}: int8 {stage}{count}")
        return tick

    def calibration_images(self) -> np.ndarray:
        from quantize.dataset import load_calibration_images

        q = self.options.quantization
        if q.calib is None:
            raise ConfigError("int8 needs calibration images", "pass --calib digits, an image folder or a .npy batch")
        if self.calibration is None:
            self.calibration = load_calibration_images(q.calib, self.card, q.calib_size)
        return self.calibration


@dataclass(frozen=True)
class Precision:
    """A numeric format and the gate its output must pass against the source.

    Float outputs pass when max |output - source| <= atol + rtol * max |source logits|; int8 outputs
    when their logits SQNR is at least `min_sqnr_db` (a broken model sits near 0 dB).
    """

    name: str  # fp32 / fp16 / int8: the middle part of the file name
    atol: float = np.inf
    rtol: float = 0.0
    min_sqnr_db: float = -np.inf

    def tolerance(self, reference: np.ndarray) -> float:
        return self.atol + self.rtol * float(np.abs(reference).max())

    def passes(self, diff: float, sqnr: float, reference: np.ndarray) -> bool:
        return diff <= self.tolerance(reference) and sqnr >= self.min_sqnr_db


# Gates. float32: kernels summing in another order differ by ~1e-5 on logits of a few units.
# fp16: each weight carries a relative rounding error up to 2^-11; through 27 layers that costs up to
# ~0.5% of the logit scale (measured), so the gate is 1%: far below what a layout or padding bug costs.
# int8: a correct MobileNetV1 keeps 20-40 dB of logits SQNR; a wrong scale or layout drops to ~0 dB.
PRECISIONS: dict[str, Precision] = {
    "none": Precision("fp32", atol=1e-4, rtol=1e-5),
    "fp16": Precision("fp16", atol=1e-2, rtol=1e-2),
    "int8": Precision("int8", min_sqnr_db=10.0),
}


@dataclass(frozen=True)
class Target:
    """An output format: `build(job, precision)` writes one file into `job.work` and returns it with its card."""

    name: str
    suffix: str
    build: Callable  # (Job, Precision) -> (Path, ModelCard)
    precisions: tuple[str, ...]  # the precisions it can write
    runs_on_host: bool = True  # False: checked by its compiler only (an NPU-only .tflite)


def _output_card(graph, card: ModelCard, target: str, precision: str) -> ModelCard:
    from toolkit.card import InputQuant

    x = graph.tensors[graph.inputs[0]]
    y = graph.tensors[graph.outputs[0]]
    quant = InputQuant(float(x.quant.scale[0]), int(x.quant.zero_point[0])) if x.quant is not None else None
    extra = dict(card.extra, quantization=graph.meta["quantization"]) if "quantization" in graph.meta else card.extra
    return card.replace(format=target, precision=precision, input_name=x.name, input_layout=graph.layout,
                        input_dtype=x.dtype, input_quant=quant, output_name=y.name, output_dtype=y.dtype,
                        extra=extra)


def _recipe(options: QuantOptions):
    from quantize import Recipe

    recipe = Recipe.load(options.recipe)
    return recipe.replace(method=options.method, cle=options.cle, act_equalization=options.act_equalization,
                          bias_correction=options.bias_correction, adaround=options.adaround, io=options.io,
                          fallback=options.fallback, fallback_layers=options.fallback_layers,
                          classifier=options.classifier)


def _quantize(job: Job, graph):
    """Our int8 graph of `graph` (the lowered float graph), made once per source."""
    from quantize import Quantizer
    from quantize.qat import qat_classifier, qat_ranges, quantize_qat

    if job.quantized is None:
        options = job.options.quantization
        if options.quantizer != "ours":
            raise ConfigError(f"--quantizer {options.quantizer} only applies to --to mslite",
                              "drop --quantizer, or convert to mslite only")
        learnt = qat_ranges(job.card)  # a QAT checkpoint (its classifier checked by _check_quant_options)
        job.quantized = (quantize_qat(graph, learnt, _recipe(options), qat_classifier(job.card)) if learnt is not None
                         else Quantizer(_recipe(options), job.quantizer_progress()).quantize(
                             graph, job.calibration_images()))
    return job.quantized.graph


def lowered_graph(model: Path, card: ModelCard):
    """The lowered NHWC float graph of an .onnx or a float .tflite."""
    from converters.onnx_import import import_onnx
    from converters.passes import lower_for_tflite
    from converters.tflite_import import import_tflite

    if model.suffix.lower() == ".tflite":
        return import_tflite(model, card)
    return lower_for_tflite(import_onnx(model, card))


def _build_tflite(job: Job, precision: Precision) -> tuple[Path, ModelCard]:
    from converters.tflite import write_tflite
    from converters.tflite.metadata import add_metadata

    if "tflite" not in job.lowered:
        job.lowered["tflite"] = lowered_graph(job.onnx, job.card)
    graph = job.lowered["tflite"]
    if precision.name == "fp16":
        from converters.passes.to_fp16 import to_fp16

        graph = to_fp16(graph)
    elif precision.name == "int8":
        graph = _quantize(job, graph)
    card = _output_card(graph, job.card, "tflite", precision.name)
    path = job.work / f"{job.card.stem}.{precision.name}.tflite"
    path.write_bytes(add_metadata(write_tflite(graph, description=f"mnv1-tk {card.stem} {card.precision}"), card))
    if precision.name == "int8":
        job.int8_tflite = path
    return path, card


def _build_mslite(job: Job, precision: Precision) -> tuple[Path, ModelCard]:
    from converters.mslite import write_mslite

    q = job.options.quantization
    work = job.work / "mslite"
    if precision.name == "fp32":
        path = write_mslite(job.onnx, work, job.card, precision="fp32")
    elif q.quantizer == "mslite":
        path = write_mslite(job.onnx, work, job.card, precision="int8", quantizer="mslite",
                            method=q.method or "max_min", calib_images=job.calibration_images())
    else:
        if job.int8_tflite is None:
            _build_tflite(job, precision)  # our int8 .tflite, kept in the work directory
        quantization = job.quantized.graph.meta["quantization"]  # how, as on the .tflite's card
        card = job.card.replace(extra=dict(job.card.extra, quantization=quantization))
        path = write_mslite(job.int8_tflite, work, card, precision="int8", quantizer="ours")
    return path, load_card(path)


def _int8_graph(job: Job):
    """Our int8 graph of the source: the plan every int8 writer shares."""
    from converters.onnx_import import import_onnx
    from converters.passes import lower_for_tflite

    if "tflite" not in job.lowered:
        job.lowered["tflite"] = lower_for_tflite(import_onnx(job.onnx, job.card))
    return _quantize(job, job.lowered["tflite"])


def _build_qdq_onnx(job: Job, precision: Precision) -> tuple[Path, ModelCard]:
    """Our int8 plan (the one the int8 .tflite holds) as a QDQ ONNX: float32 NCHW in, float32 logits out."""
    from converters.onnx_qdq import write_qdq_onnx

    graph = _int8_graph(job)
    card = _output_card(graph, job.card, "onnx", precision.name).replace(input_layout="NCHW")
    path = job.work / f"{job.card.stem}.{precision.name}.onnx"
    path.write_bytes(write_qdq_onnx(graph, description=f"mnv1-tk {card.stem} QDQ int8"))
    return path, card


def _build_qnn(job: Job, precision: Precision, soc: str) -> tuple[Path, ModelCard]:
    """The QDQ int8 ONNX (batch 1) compiled for `soc`'s HTP: an EPContext ONNX with the context binary embedded."""
    from converters.onnx_qdq import write_qdq_onnx
    from converters.qnn import compile_epcontext, ensure_qnn
    from converters.qnn.install import QAIRT_VERSION

    graph = _int8_graph(job)
    path = job.work / f"{job.card.stem}.{precision.name}.{soc}.onnx"
    compiled = compile_epcontext(write_qdq_onnx(graph, batch=1), path, soc, ensure_qnn(), what=job.card.stem)
    card = _output_card(graph, job.card, "qnn", precision.name).replace(input_layout="NCHW")
    qnn = {"soc": soc, "soc_model": compiled.soc_model, "qairt": QAIRT_VERSION,
           "context_bytes": compiled.context_bytes, "compile_seconds": round(compiled.seconds, 3)}
    return path, card.replace(extra=dict(card.extra, qnn=qnn))


def _build_tflite_npu(job: Job, precision: Precision, soc: str, qairt: Path) -> tuple[Path, ModelCard]:
    """Our int8 .tflite compiled ahead of time by LiteRT for `soc` (one DISPATCH_OP holding a QNN context binary)."""
    from converters.qnn.aot import compile_tflite

    if job.int8_tflite is None:
        _build_tflite(job, precision)
    card = load_card(job.int8_tflite) if Path(f"{job.int8_tflite}.json").is_file() else \
        _output_card(job.quantized.graph, job.card, "tflite", precision.name)
    path = compile_tflite(job.int8_tflite, job.work / f"{job.card.stem}.{precision.name}.{soc}.tflite", soc, qairt)
    return path, card.replace(extra=dict(card.extra, npu={"vendor": "qualcomm", "soc": soc}))


def _npu_targets(npu: str, targets: list[Target], precisions: list[Precision]) -> list[Target]:
    """`--npu qualcomm:SOC` adds LiteRT's AOT-compiled .tflite; QAIRT is looked for before any work."""
    from functools import partial

    from converters.qnn.aot import find_qairt, parse_npu

    soc = parse_npu(npu)
    if [t.name for t in targets] != ["tflite"] or [p.name for p in precisions] != ["int8"]:
        raise ConfigError("--npu compiles our int8 .tflite for the NPU", "use it with --to tflite --quant int8")
    qairt = find_qairt()
    return [Target(f"tflite-npu-{soc}", ".tflite", partial(_build_tflite_npu, soc=soc, qairt=qairt), ("int8",),
                   runs_on_host=False)]


def _qnn_targets(socs: str | tuple[str, ...]) -> list[Target]:
    """`--to qnn` is one target per SoC."""
    from functools import partial

    from converters.qnn import parse_socs

    return [Target(f"qnn-{soc}", ".onnx", partial(_build_qnn, soc=soc), ("int8",)) for soc in parse_socs(socs)]


TARGETS: dict[str, Target] = {
    "tflite": Target("tflite", ".tflite", _build_tflite, ("fp32", "fp16", "int8")),
    # The float32 ONNX is the source itself; this target writes our int8 plan as QDQ.
    "onnx": Target("onnx", ".onnx", _build_qdq_onnx, ("int8",)),
    # Expanded into one target per --soc by _qnn_targets.
    "qnn": Target("qnn", ".onnx", _build_qnn, ("int8",)),
    # MindSpore Lite runs float32 models in fp16 on the phone itself (its enable_float16 option).
    "mslite": Target("mslite", ".ms", _build_mslite, ("fp32", "int8")),
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
    sqnr_db: float
    top1_agreement: float
    num_eval: int
    convert_seconds: float
    export_seconds: float = 0.0
    within_tolerance: bool = True
    top1: float | None = None  # on labelled eval data
    top5: float | None = None
    source_top1: float | None = None

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
    if suffix not in (".ckpt", ".onnx", ".tflite"):
        raise ModelFileError(f"cannot convert from {suffix or 'a file without suffix'} ({source.name})",
                             "pass a .ckpt, an .onnx, a float .tflite or a checkpoint directory")
    card = _source_card(source, options)
    if width == "all":
        raise ConfigError("--width all needs a directory with one checkpoint per width",
                          f"pass that directory instead of {source.name}, or drop --width")
    if width is not None and float(width) != card.width:
        raise ConfigError(f"{source.name} has width {card.width} (from its card), not {width}",
                          "drop --width, or pass the model of that width")
    if suffix in (".onnx", ".tflite"):
        lowered_graph(source, card)  # an unsupported op or an int8 .tflite fails before any work
        if options.image_size not in (None, card.image_size):
            raise ConfigError(f"{source.name} is fixed at {card.image_size}x{card.image_size}",
                              "drop --image-size (it applies to checkpoints), or export the size you want")
        return [_Source(source, source, card)]
    return [_Source(source, None, card)]


def _source_card(source: Path, options: ConvertOptions) -> ModelCard:
    """The source's card with the user's overrides; inferred from the model when it has none."""
    from toolkit.card import card_path, infer_card, resolve_card

    if card_path(source).is_file() or source.suffix.lower() != ".ckpt":
        return resolve_card(source, **options.card_overrides)
    return infer_card(source, width=float(options.width) if options.width not in (None, "all") else None,
                      image_size=options.image_size, **options.card_overrides)


def _export(src: _Source, out_dir: Path, image_size: int | None) -> _Source:
    """Export a checkpoint source to ONNX in out_dir (toolkit.export does the checking)."""
    from toolkit.export import export_model

    start = time.perf_counter()
    card = src.card
    paths = export_model(src.path, out_dir, formats=("onnx",), width=card.width,
                         image_size=image_size or card.image_size, activation=card.activation,
                         num_classes=card.num_classes, labels=card.labels)
    onnx = Path(paths["onnx"])
    exported = load_card(onnx).replace(mean=card.mean, std=card.std, crop_pct=card.crop_pct,
                                       interpolation=card.interpolation, extra=card.extra)
    return _Source(src.path, onnx, exported, time.perf_counter() - start)


# ---- evaluation -----------------------------------------------------------------------------------
def eval_set(card: ModelCard, spec: DatasetSpec | None, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` images of the eval split through the card's eval transform (canonical NCHW), and labels."""
    from toolkit.validate import eval_batches

    if spec is None:
        spec = DatasetSpec(**card.extra["dataset"]) if "dataset" in card.extra else DatasetSpec("digits")
    batch = next(eval_batches(card, spec, "val", limit=count, batch_size=count), None)
    if batch is None:
        raise DataError(f"the {spec.name} eval split is empty", "pass --data / --data-dir with eval images")
    return batch


def eval_batch(card: ModelCard, spec: DatasetSpec | None, count: int) -> np.ndarray:
    return eval_set(card, spec, count)[0]


def compare(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(max abs difference, top-1 agreement) of two logit batches."""
    diff = float(np.abs(reference.astype(np.float64) - candidate).max())
    agreement = float(np.mean(reference.argmax(axis=1) == candidate.argmax(axis=1)))
    return diff, agreement


# ---- conversion -----------------------------------------------------------------------------------
def _convert_source(src: _Source, targets: list[Target], precisions: list[Precision], options: ConvertOptions,
                    out_dir: Path, step: Callable[[str], None], report: Callable[[tuple], None]
                    ) -> list[ConversionResult]:
    from quantize.metrics import sqnr_db, topk_accuracy
    from toolkit.runtimes import load_predictor

    if src.onnx is None:
        step(f"export {src.path.name} to ONNX")
        src = _export(src, out_dir, options.image_size)
    card = src.card
    step(f"{card.stem}: run the source on {options.num_eval} eval images")
    images, labels = eval_set(card, options.eval_data, options.num_eval)
    reference = load_predictor(src.path, card=card).run(images)  # the checkpoint itself for .ckpt sources
    labelled = options.eval_data is not None
    results = []
    _remove_stale_work_dirs(out_dir)
    with tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{os.getpid()}.", dir=out_dir) as work:
        job = Job(src.onnx, card, options, Path(work), step=step)
        for target in targets:
            for precision in precisions:
                if precision.name not in target.precisions:
                    continue  # e.g. fp16 .ms: checked in convert(), skipped in a cross product
                step(f"{card.stem}: {target.name} {precision.name}")
                start = time.perf_counter()
                built, out_card = target.build(job, precision)
                out_card = out_card.replace(source=src.path.name)  # the file the user converted
                seconds = time.perf_counter() - start
                path = out_dir / built.name
                if target.runs_on_host:
                    with load_predictor(built, card=out_card) as predictor:
                        output = predictor.run(images)
                    diff, agreement = compare(reference, output)
                    sqnr = sqnr_db(reference, output)
                    passed = precision.passes(diff, sqnr, reference)
                else:  # only the phone's NPU runs it
                    output, diff, agreement, sqnr, passed = None, float("nan"), float("nan"), float("nan"), True
                if options.check and not passed:
                    raise AtolError(f"{path.name} differs from {src.path.name} by {diff:.3g} (max abs logit), "
                                    f"{sqnr:.1f} dB logits SQNR, beyond the {precision.name} gate; nothing written",
                                    "report this model, or pass --no-check to keep it anyway")
                size = built.stat().st_size
                os.replace(built, path)
                if built == job.int8_tflite:  # MindSpore Lite converts it from where it now is
                    job.int8_tflite = path
                save_card(out_card, path)
                results.append(ConversionResult(
                    card.model, card.width, card.image_size, target.name, precision.name, path, src.path,
                    size / 1e6, diff, sqnr, agreement, len(images), seconds, src.export_seconds, passed,
                    topk_accuracy(output, labels, 1) if labelled and output is not None else None,
                    topk_accuracy(output, labels, 5) if labelled and output is not None else None,
                    topk_accuracy(reference, labels, 1) if labelled else None))
        if job.quantized is not None and options.quantization.report:
            step(f"{card.stem}: per-layer sensitivity")
            report(write_sensitivity_report(job, out_dir))
    return results


def _remove_stale_work_dirs(out_dir: Path) -> None:
    """Work directories of conversions that were killed (SIGKILL cannot clean up): those of dead processes."""
    for work in out_dir.glob(f"{WORK_PREFIX}*.*"):
        pid = work.name[len(WORK_PREFIX):].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(work, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def write_sensitivity_report(job: Job, out_dir: Path) -> tuple[Path, list]:
    """Per-layer SQNR of our int8 model (each layer quantized alone): a JSON table and a PNG bar chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from quantize import Quantizer

    result = job.quantized
    sample = job.calibration_images()[:64]
    rows = Quantizer(result.recipe).sensitivity(result, sample)
    stem = out_dir / f"{job.card.stem}.int8.sensitivity"
    write_json(Path(f"{stem}.json"), [asdict(r) for r in rows])
    if result.selection:  # recipe method "select": what each candidate scored on held-out calibration images
        write_json(out_dir / f"{job.card.stem}.int8.selection.json", [asdict(s) for s in result.selection])
    if result.act_equalization:  # per equalized layer: channels rescaled, median and largest scale
        write_json(out_dir / f"{job.card.stem}.int8.equalization.json", result.act_equalization.to_dict())
    figure, axis = plt.subplots(figsize=(max(6.0, 0.32 * len(rows)), 4.0))
    colours = {"conv2d": "tab:blue", "depthwise_conv2d": "tab:orange", "fully_connected": "tab:green"}
    axis.bar(range(len(rows)), [r.logits_sqnr_db for r in rows], color=[colours[r.op] for r in rows])
    axis.set_xticks(range(len(rows)), [r.layer for r in rows], rotation=90, fontsize=7)
    axis.set_ylabel("logits SQNR, only this layer int8 (dB)")
    axis.set_title(f"{job.card.stem}: per-layer int8 sensitivity (lower = more sensitive)")
    axis.legend(handles=[Patch(color=colour, label=op) for op, colour in colours.items()], fontsize=8,
                loc="lower right", framealpha=0.9)
    figure.tight_layout()
    png = Path(f"{stem}.png")
    with tempfile.NamedTemporaryFile(dir=out_dir, suffix=".png", delete=False) as handle:
        figure.savefig(handle.name, dpi=120)
    os.replace(handle.name, png)
    plt.close(figure)
    return png, rows, result.selection


def convert(source: str | Path, options: ConvertOptions = ConvertOptions(),
            on_step: Callable[[str], None] | None = None,
            on_report: Callable[[tuple], None] | None = None) -> list[ConversionResult]:
    """Convert `source` to every (width, target, precision) in `options`; see the module docstring.

    `on_step(description)` is called as each stage starts (for a progress display); with
    `quantization.report`, `on_report((png_path, rows, selection))` receives each sensitivity report and
    the candidate scores of recipe method "select" (else empty). Options and sources are checked before
    anything is written; a failure leaves no new output directory behind.
    """
    targets = [TARGETS[t] for t in _split(options.to, tuple(TARGETS), "target")]
    precisions = [PRECISIONS[q] for q in _split(options.quant, tuple(PRECISIONS), "precision")]
    for target in targets:
        unsupported = [p.name for p in precisions if p.name not in target.precisions]
        if len(unsupported) == len(precisions):
            raise ConfigError(f"{target.name} output has no {', '.join(unsupported)} precision",
                              f"use --quant {' or '.join(target.precisions)} with --to {target.name}")
    if any(t.name == "qnn" for t in targets):
        from converters.qnn import ensure_qnn

        targets = [u for t in targets for u in (_qnn_targets(options.soc) if t.name == "qnn" else [t])]
        ensure_qnn()  # before any work: `mnv1-tk setup qnn` first
    elif options.soc:
        raise ConfigError("--soc applies to --to qnn", "add qnn to --to, or drop --soc")
    if options.npu:
        targets = targets + _npu_targets(options.npu, targets, precisions)
    _check_quant_options(options, targets, precisions, qat_classifier=_qat_classifier(Path(source)))
    options = ConvertOptions(**{**options.__dict__, "width": parse_width(options.width)})
    source = Path(source)
    if source.suffix.lower() == ".tflite" and any(t.name == "mslite" for t in targets) and \
            (any(p.name == "fp32" for p in precisions) or options.quantization.quantizer == "mslite"):
        raise ConfigError(f"--to mslite from a .tflite ({source.name}) is made from our int8 .tflite only",
                          "pass --to mslite --quant int8 (our quantizer), or convert the model's ONNX")
    sources = _resolve_sources(source, options)
    out_dir = Path(options.out_dir or (source if source.is_dir() else source.parent))
    created = not out_dir.exists()
    ensure_writable_dir(out_dir)
    results = []
    try:
        for src in sources:
            results += _convert_source(src, targets, precisions, options, out_dir, on_step or (lambda _: None),
                                       on_report or (lambda _: None))
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    return results


def _qat_classifier(source: Path) -> str | None:
    """For a model file whose card carries QAT's learnt ranges (it needs no calibration images): the precision its
    classifier trained in; else None."""
    from quantize.qat import CARD_KEY, qat_classifier
    from toolkit.errors import ModelCardError

    try:
        card = load_card(source) if source.is_file() else None
    except ModelCardError:
        return None
    return qat_classifier(card) if card is not None and CARD_KEY in card.extra else None


def _check_quant_options(options: ConvertOptions, targets: list[Target], precisions: list[Precision],
                         qat_classifier: str | None = None) -> None:
    """int8 options are checked before any work: recipe, quantizer, method; for a QAT checkpoint
    (`qat_classifier`: its classifier's precision), the classifier's."""
    q = options.quantization
    if not any(p.name == "int8" for p in precisions):
        return
    if qat_classifier is not None and q.quantizer == "ours" and q.classifier not in (None, qat_classifier):
        raise ConfigError(f"--classifier {q.classifier} does not match this QAT checkpoint, whose classifier "
                          f"trained in {qat_classifier}", "drop --classifier: a QAT checkpoint converts as it trained")
    if q.calib is None and not (qat_classifier is not None and q.quantizer == "ours"):
        raise ConfigError("--quant int8 needs calibration images", "pass --calib digits, an image folder or a .npy")
    if q.quantizer not in ("ours", "mslite"):
        raise ConfigError(f"unknown --quantizer {q.quantizer}", "use ours or mslite")
    if q.quantizer == "mslite":
        from converters.mslite.config import METHODS

        if [t.name for t in targets] != ["mslite"]:
            raise ConfigError("--quantizer mslite makes MindSpore Lite's own int8 .ms", "use it with --to mslite only")
        if (q.method or "max_min") not in METHODS:
            raise ConfigError(f"--method {q.method} is not a MindSpore Lite PTQ method",
                              f"use one of: {', '.join(METHODS)}")
    else:
        recipe = _recipe(q)  # raises ConfigError for a bad recipe or field
        if recipe.io == "int8" and any(t.name.split("-")[0] in FLOAT_IO_TARGETS for t in targets):
            raise ConfigError("--io int8 is not available for ONNX outputs (they take float32 NCHW input)",
                              "drop --io int8, or convert to tflite only")


FLOAT_IO_TARGETS = ("onnx", "qnn")


# ---- command line ---------------------------------------------------------------------------------
def results_table(results: list[ConversionResult]):
    from rich.table import Table

    labelled = any(r.top1 is not None for r in results)
    table = Table(title="mnv1-tk convert")
    columns = ["output", "format", "precision", "MB", "max |Δ|", "SQNR dB", "top-1 agree", "seconds"]
    columns += ["top-1", "top-5"] if labelled else []
    for column in columns:
        table.add_column(column, justify="left" if column in ("output", "format", "precision") else "right",
                         no_wrap=column == "output")
    for r in results:
        diff = f"{r.max_abs_diff:.1e}" + ("" if r.within_tolerance else " (!)")
        row = [r.path.name, r.target, r.precision, f"{r.size_mb:.2f}", diff,
               "exact" if r.sqnr_db == float("inf") else f"{r.sqnr_db:.1f}", f"{100 * r.top1_agreement:.1f}%",
               f"{r.convert_seconds:.2f}"]
        if labelled:
            row += [f"{100 * r.top1:.1f}%", f"{100 * r.top5:.1f}%"] if r.top1 is not None else ["NPU only"] * 2
        table.add_row(*row)
    if results:
        table.caption = f"vs the source on {results[0].num_eval} eval images"
        if labelled:
            table.caption += f"; source top-1 {100 * results[0].source_top1:.1f}%"
    return table


def sensitivity_table(rows):
    from rich.table import Table

    table = Table(title="int8 sensitivity: each layer quantized alone")
    adaround = any(r.adaround_flipped is not None for r in rows)
    columns = ("layer", "op", "layer SQNR dB", "logits SQNR dB") + (("AdaRound: not nearest %",) if adaround else ())
    for column in columns:
        table.add_column(column, justify="left" if column in ("layer", "op") else "right")
    worst = {r.layer for r in sorted(rows, key=lambda r: r.logits_sqnr_db)[:3]}
    for r in rows:
        style = "bold red" if r.layer in worst else None
        flipped = (f"{100 * r.adaround_flipped:.1f}" if r.adaround_flipped is not None else "",) if adaround else ()
        table.add_row(r.layer, r.op, f"{r.output_sqnr_db:.1f}", f"{r.logits_sqnr_db:.1f}", *flipped, style=style)
    return table


def selection_table(scores):
    """Recipe method "select": every candidate's score on the held-out calibration images, the chosen one bold."""
    from rich.table import Table

    table = Table(title="int8 recipe chosen per model: logits SQNR on held-out calibration images")
    for column in ("candidate", "SQNR dB", "top-1 agreement", ""):
        table.add_column(column, justify="left" if column == "candidate" else "right")
    for s in scores:
        table.add_row(s.name, f"{s.sqnr_db:.2f}", f"{100 * s.top1_agreement:.1f}%", "chosen" if s.chosen else "",
                      style="bold" if s.chosen else None)
    return table


def convert_command(source: Path, *, to: str = "tflite", quant: str = "none", width: str | None = None,
                    image_size: int | None = None, out_dir: Path | None = None, data: str | None = None,
                    data_dir: str | None = None, num_eval: int = 32, check: bool = True,
                    quantization: QuantOptions = QuantOptions(), soc: str = "", npu: str | None = None,
                    card_overrides: dict | None = None,
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
                             num_eval=num_eval, check=check, quantization=quantization, soc=soc or (),
                             npu=npu, card_overrides=card_overrides or {})
    stderr = Console(stderr=True)
    reports = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=stderr,
                  transient=True, disable=not stderr.is_terminal) as progress:
        task = progress.add_task("convert", total=None)
        results = convert(source, options, on_step=lambda description: progress.update(task, description=description),
                          on_report=reports.append)
    if as_json:
        print(json.dumps({"outputs": [r.to_dict() for r in results],
                          "sensitivity": [{"chart": str(png), "layers": [asdict(r) for r in rows]}
                                          for png, rows, _ in reports],
                          "selection": [[asdict(s) for s in scores] for _, _, scores in reports if scores]},
                         indent=2))
    else:
        console = Console(width=None if sys.stdout.isatty() else 160)  # pipes: no wrapping
        console.print(results_table(results))
        for png, rows, scores in reports:
            if scores:
                console.print(selection_table(scores))
            console.print(sensitivity_table(rows))
            console.print(f"chart: {png}")
    return results
