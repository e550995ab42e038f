"""`mnv1-tk zoo`: the whole pipeline for every width, from data to phone-ready files, in one run.

For each width: train (or resume, or reuse a finished run), export ONNX and MINDIR, convert to
every target and precision (int8 calibrated on the training split), measure every file on the
whole validation split and profile it (`toolkit.profile`). The result is a folder a phone app can
take files from, an index (`zoo.json`), a report and a table. Every step's inputs are hashed into
`zoo.manifest.json`: a re-run redoes only the steps whose inputs changed. On the embedded default
(digits, all four widths, 32x32) it runs in minutes on a laptop CPU; on ImageNet it builds the full zoo.

    out/
      mobilenet_v1_025/          training run: checkpoints, metrics.jsonl, config.yaml
      models/                    <model>_<size>.{onnx,mindir,fp32.tflite,fp16.tflite,int8.tflite,fp32.ms,int8.ms}
                                 + cards
      zoo.json                   every file with its size, top-1, top-5 and agreement with float
      zoo.manifest.json          content hashes of each step's inputs and outputs (what a re-run may reuse)
      report.md, pareto.png      mindcv's model-table columns, then deployment columns; top-1 vs latency
      labels.txt, android/       the labels, and the Android bundle of the Pareto frontier's phone models
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from toolkit.errors import ConfigError
from toolkit.fsutil import ensure_writable_dir, sha256_of, write_json, write_text
from toolkit.report import ReportRow, frontier_rows, write_report

INDEX = "zoo.json"
MANIFEST = "zoo.manifest.json"
REPORT = "report.md"


@dataclass(frozen=True)
class ZooOptions:
    config: str = "mobilenet_v1_025_digits"  # a shipped config's name or a YAML file
    widths: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    image_size: int | None = None  # None: the config's
    epochs: int | None = None  # None: the config's
    out: Path = Path("runs/zoo")
    to: str = "tflite,mslite"
    quant: str = "none,fp16,int8"
    calib: str | None = None  # None: the training split of the config's dataset
    calib_size: int = 300
    recipe: str = "default"
    threads: tuple[int, ...] = (1, 2)  # host profiling thread counts
    profile_runs: int = 30
    device: str | None = None  # an adb serial: also time the phone models on it


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


def parse_threads(text: str) -> tuple[int, ...]:
    try:
        threads = tuple(int(t) for t in text.split(","))
    except ValueError:
        threads = ()
    if not threads or min(threads) < 1:
        raise ConfigError(f"--threads {text} is not a list of thread counts", "pass e.g. 1,2")
    return threads


def _calibration_source(spec) -> str:
    return spec.name if spec.name == "digits" else f"{spec.name}:{spec.root}"


class Manifest:
    """`zoo.manifest.json`: for each step, the content hash of its inputs and what it produced.

    A resumed zoo reuses a step's result when the hash of its inputs (files by content, options by
    value) is the one recorded and its output files still hash the same; anything else is redone.
    """

    def __init__(self, path: Path):
        self.path = path
        self.steps: dict = json.loads(path.read_text()) if path.is_file() else {}

    def result(self, step: str, inputs: dict):
        entry = self.steps.get(step)
        if entry is None or entry["inputs"] != content_key(inputs):
            return None
        if any(not Path(p).is_file() or sha256_of(p) != h for p, h in entry["outputs"].items()):
            return None
        return entry["result"]

    def record(self, step: str, inputs: dict, result, outputs=()) -> None:
        self.steps[step] = {"inputs": content_key(inputs), "outputs": {str(p): sha256_of(p) for p in outputs},
                            "result": result}
        write_json(self.path, self.steps)


def content_key(inputs: dict) -> str:
    """One hash of a step's inputs: Path values count by their content, the rest by value."""
    resolved = {k: (sha256_of(v) if isinstance(v, Path) else v) for k, v in sorted(inputs.items())}
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()


def _config_inputs(options: ZooOptions, width: float) -> dict:
    config = Path(options.config)
    return {"config": config if config.is_file() else options.config, "width": width,
            "image_size": options.image_size, "epochs": options.epochs}


def _seconds_per_epoch(run_dir: Path) -> float | None:
    from statistics import median

    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        return None
    seconds = [r["seconds"] for r in map(json.loads, metrics.read_text().splitlines()) if r.get("event") == "epoch"]
    return median(seconds) if seconds else None


def build_zoo(options: ZooOptions, console=None, step=lambda text: None) -> list[ZooEntry]:
    """Run the pipeline for every width of `options`; returns one entry per file and writes zoo.json, the
    report (report.md, pareto.png), labels.txt and the Android bundle of the frontier's models."""
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
    manifest = Manifest(out / MANIFEST)
    entries: list[ZooEntry] = []
    for width in options.widths:
        name = model_name(width)
        run_dir = out / name
        overrides = {"model": name, "ckpt_save_dir": str(run_dir), "image_resize": options.image_size,
                     "epoch_size": options.epochs, "resume_opt": any(run_dir.glob("*.ckpt")) or None}
        config = load_config(options.config, overrides)
        spec = DatasetSpec(config.data.name, config.data.root, config.data.train_split, config.data.val_split)
        train_inputs = _config_inputs(options, width)
        best = manifest.result(f"{name}/train", train_inputs)
        if best is None:
            step(f"{name}: train ({config.run.epochs} epochs, resumed if interrupted)")
            best = str(train(config, console=console).best_checkpoint)
            manifest.record(f"{name}/train", train_inputs, best, [best, f"{best}.json"])
        exported = manifest.result(f"{name}/export", {"ckpt": Path(best)})
        if exported is None:
            step(f"{name}: export ONNX and MINDIR")
            exported = {k: str(v) for k, v in export_model(Path(best), models).items()}
            manifest.record(f"{name}/export", {"ckpt": Path(best)}, exported, exported.values())
        for fmt, path in {"ckpt": best, **exported}.items():
            inputs = {"model": Path(path), "data": asdict(spec)}
            metrics = manifest.result(f"{name}/validate/{fmt}", inputs)
            if metrics is None:
                step(f"{name}: validate {Path(path).name}")
                with load_predictor(path) as predictor:
                    metrics = {k: v for k, v in evaluate(predictor, spec).items() if k in ("top1", "top5", "count")}
                manifest.record(f"{name}/validate/{fmt}", inputs, metrics)
            card = load_card(path)
            entries.append(ZooEntry(name, width, card.image_size, fmt, "fp32", str(path),
                                    Path(path).stat().st_size / 1e6, metrics["top1"], metrics["top5"], None, None))
        quant = QuantOptions(calib=options.calib or _calibration_source(spec), calib_size=options.calib_size,
                             recipe=options.recipe)
        inputs = {"onnx": Path(exported["onnx"]), "to": options.to, "quant": options.quant, "calib": asdict(quant),
                  "data": asdict(spec), "count": metrics["count"]}
        converted = manifest.result(f"{name}/convert", inputs)
        if converted is None:
            results = convert(exported["onnx"], ConvertOptions(to=options.to, quant=options.quant, out_dir=models,
                                                               eval_data=spec, num_eval=metrics["count"],
                                                               quantization=quant), on_step=step)
            converted = [r.to_dict() for r in results]
            outputs = [p for r in results for p in (r.path, f"{r.path}.json")]
            manifest.record(f"{name}/convert", inputs, converted, outputs)
        entries += [ZooEntry(name, width, r["image_size"], r["target"], r["precision"], r["path"], r["size_mb"],
                             r["top1"], r["top5"], r["top1_agreement"], r["sqnr_db"]) for r in converted]
        write_json(out / INDEX, [asdict(e) for e in entries])  # after each width: an interrupted run keeps it
    profiles = profile_entries(entries, options, manifest, step)
    finish_zoo(entries, profiles, options, manifest, step)
    return entries


def profile_entries(entries: list[ZooEntry], options: ZooOptions, manifest: Manifest, step) -> dict[str, list[dict]]:
    """Host (and with `device`, on-device) profiles of the deployable files (ONNX, .tflite, .ms; not the
    MindSpore ones): path -> ProfileResult dicts.

    A file's profile is reused while the file and the options are unchanged; the others are profiled in one
    call, so the profiler interleaves them.
    """
    from toolkit.profile import ProfileOptions, profile

    runs = [(None, ProfileOptions(threads=options.threads, runs=options.profile_runs), ("onnx", "tflite", "mslite"))]
    if options.device:
        runs.append((options.device, ProfileOptions(threads=options.threads[:1], runs=options.profile_runs,
                                                    device=options.device), ("tflite", "mslite")))
    profiles: dict[str, list[dict]] = {}
    for device, run, formats in runs:
        paths = [e.path for e in entries if e.format in formats]
        key = {p: (f"profile/{Path(p).name}/{device or 'host'}", {"model": Path(p), "options": asdict(run)})
               for p in paths}
        cached = {p: manifest.result(*key[p]) for p in paths}
        stale = [p for p in paths if cached[p] is None]
        if stale:
            step(f"profile {len(stale)} model(s) on {device or 'the host'}")
            fresh = [r.to_dict() for r in profile([Path(p) for p in stale], run)]
            for p in stale:
                cached[p] = [r for r in fresh if r["model"] == Path(p).name]
                manifest.record(*key[p], cached[p])
        for p in paths:
            profiles.setdefault(p, []).extend(cached[p])
    return profiles


def report_rows(entries: list[ZooEntry], profiles: dict[str, list[dict]], out: Path) -> list[ReportRow]:
    """One report row per entry; params and MACs of a width are its ONNX export's (the trained network's,
    before BN folding), as in mindcv's table."""
    counts = {e.model: profiles[e.path][0] for e in entries if e.format == "onnx" and profiles.get(e.path)}
    rows = []
    for e in entries:
        host = [p for p in profiles.get(e.path, []) if p["device"] is None]
        device = [p for p in profiles.get(e.path, []) if p["device"] is not None]
        first = host[0] if host else {}
        model = counts.get(e.model, {})
        rows.append(ReportRow(
            e.model, e.image_size, e.format, e.precision, e.path, e.size_mb, e.top1, e.top5,
            params_m=model["params"] / 1e6 if model.get("params") else None,
            macs_m=model["macs"] / 1e6 if model.get("macs") else None,
            train_seconds_per_epoch=_seconds_per_epoch(out / e.model), top1_agreement=e.top1_agreement,
            sqnr_db=e.sqnr_db, runtime=first.get("runtime"), host_ms={p["threads"]: p["median_ms"] for p in host},
            device_ms=device[0]["median_ms"] if device else None))
    return rows


def finish_zoo(entries: list[ZooEntry], profiles: dict[str, list[dict]], options: ZooOptions, manifest: Manifest,
               step) -> Path:
    """report.md, pareto.png, labels.txt and the Android bundle of the frontier's phone models; returns the
    report's path."""
    from toolkit.card import load_card

    out = Path(options.out)
    rows = report_rows(entries, profiles, out)
    card = load_card(entries[0].path)
    title = f"mnv1-tk zoo: {card.extra.get('dataset', {}).get('name', 'digits')} at {card.image_size}x{card.image_size}"
    report = write_report(rows, out, title, options.device)
    write_text(out / "labels.txt", "\n".join(card.labels) + "\n")
    phone = [Path(r.path) for r in frontier_rows(rows) if r.format in ("tflite", "mslite")]
    inputs = {str(i): path for i, path in enumerate(phone)}
    if phone and manifest.result("bundle", inputs) is None:
        from toolkit.bundle import bundle

        step(f"bundle the frontier's {len(phone)} phone model(s) for Android")
        index = bundle(phone, out / "android")
        manifest.record("bundle", inputs, str(index), [index])
    return report


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
        print(f"report: {Path(options.out) / REPORT}")
    return entries
