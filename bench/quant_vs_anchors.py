"""Our int8 quantizer against the converters' own post-training quantization, on models it was not tuned on.

The models are the shared digits set of `bench/model_set.py` (twelve MobileNetV1s of varied width,
input size, activation, seed, schedule, augmentation and label smoothing, trained once into
$MNV1TK_BENCH_MODELS). Defaults and recipe choices are made on its `tuning` group; this bench
reports the `held_out` group (`--group tuning` shows the other). For every model all methods get
the same calibration images and the same eval sets:

- ours:    the default recipe, per-model selection (`select`), each range method, and each
           technique switched on and off;
- ORT:     onnxruntime `quantize_static` (QDQ, per channel): MinMax, Entropy (128 and 2048 bins),
           Percentile, Distribution (activations kept), run in ONNX Runtime with the QDQ nodes kept
           (bench.anchors.run_ort_qdq: this CPU's fused U8S8 kernels saturate);
- LiteRT:  the TFLite converter's own full-integer PTQ (LiteRT's calibrator), run in LiteRT;
- MSLite:  MindSpore Lite 2.0 full-quant PTQ (MAX_MIN / KL / REMOVAL_OUTLIER, bias correction on),
           run in the MindSpore Lite runtime;
- the classifier in float: ours (`classifier: float`) and ORT's methods with the Gemm excluded. This
           format has its own verdict against its own anchors; the default's verdict (and the exit
           status) takes the all-int8 anchors only.

Each int8 model runs in its own runtime on the clean val split and on three perturbed copies of it
(Gaussian pixel noise and shifts, kept inside the valid pixel range). Reported per model and
method: float and int8 top-1, top-1 agreement with float, logits SQNR and the softmax KL. A table
per model, a summary of ours vs the best anchor with a win / tie / loss count, JSON, and a PNG chart.

The verdict reads SQNR first: on clean digits every good method agrees with float on all but a
few images, so agreement only separates methods beyond its noise. Ours wins with more than 0.1 dB
of SQNR, ties within 0.1 dB, and in both cases may not lose more images of agreement than twice
the noise of that difference (and always may lose 2): two methods disagreeing with float on
d_anchor and d_ours images differ by Poisson noise of standard deviation sqrt(d_anchor + d_ours)
(about 1.4 images on clean digits, where each disagrees on about one; 3-4 images on the perturbed
set, where each disagrees on 5-10). The bench exits 1 on any loss. Next to each verdict the summary
shows the 95% interval of the SQNR difference over 1000 paired bootstrap resamples of the eval
images: how much of it the eval set's sampling noise could explain (for reading; the verdict keeps
the fixed 0.1 dB rule). Each model's per-image squared logit errors per method are kept for it in
`<model>.npz` next to `<model>.json`.

    .venv/bin/python -m bench.quant_vs_anchors [--group held_out|tuning] [--limit N | --models A,B]
        [--calib 300] [--out DIR] [--only M1,M2] [--rerun M1,M2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.anchors import (FLOAT_CLASSIFIER, MSLITE_METHODS, ORT_FLOAT_CLASSIFIER_METHODS, ORT_METHODS,
                           litert_quantize, ort_quantize, run_ort_qdq)
from toolkit.fsutil import sha256_of, write_json

PERTURBED_COPIES = 3
SQNR_TIE_DB = 0.1
AGREEMENT_NOISE_IMAGES = 2
BOOTSTRAP_RESAMPLES = 1000
SPLITS = ("clean", "perturbed")
FLOAT_CLASSIFIER_OURS = "ours float classifier"
OURS = {  # name -> recipe fields over the default recipe
    "ours (default)": {},
    "ours no adaround": {"adaround": False},
    "ours minmax": {"method": "minmax", "cle": False, "bias_correction": False},
    "ours percentile": {"method": "percentile", "cle": False, "bias_correction": False},
    "ours mse": {"method": "mse", "mse_norm": 2.0, "cle": False, "bias_correction": False},
    "ours kl": {"method": "kl", "cle": False, "bias_correction": False},
    "ours auto": {"method": "auto", "cle": False, "bias_correction": False},
    "ours auto +bc": {"method": "auto", "cle": False, "bias_correction": True},
    "ours auto +cle +bc": {"method": "auto", "cle": True, "bias_correction": True},
    "ours auto +adaround": {"method": "auto", "cle": False, "bias_correction": False, "adaround": True},
    "ours auto +adaround +bc": {"method": "auto", "cle": False, "bias_correction": True, "adaround": True},
    "ours mse +bc": {"method": "mse", "mse_norm": 2.0, "cle": False, "bias_correction": True},
    "ours minmax +bc": {"method": "minmax", "cle": False, "bias_correction": True},
    "ours mse +bc +logits minmax": {"method": "mse", "mse_norm": 2.0, "cle": False, "bias_correction": True,
                                    "logits_range": "minmax"},
    "ours select": {"method": "select", "adaround": False},
    "ours mse p2.5": {"mse_norm": 2.5, "adaround": False},
    "ours mse p3": {"mse_norm": 3.0, "adaround": False},
    "ours mse p6": {"mse_norm": 6.0, "adaround": False},
    "ours fc per tensor": {"fc_per_channel": False, "adaround": False},
    "ours avg_pool": {"global_pool": "avg_pool", "adaround": False},
    "ours no act-eq": {"act_equalization": 0.0},
    "ours act-eq 1.0": {"act_equalization": 1.0},
    "ours act-eq 1.25": {"act_equalization": 1.25},
    "ours act-eq 2": {"act_equalization": 2.0},
    FLOAT_CLASSIFIER_OURS: {"classifier": "float"},
}


def digits_pixels(split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    from toolkit.data import load_digits

    return load_digits(split, size)


def perturb(images: np.ndarray, seed: int = 0, noise: float = 24.0, max_shift: float = 0.08) -> np.ndarray:
    """Gaussian pixel noise and random shifts (up to 8% of the size), clipped to valid pixels [0, 255]."""
    rng = np.random.RandomState(seed)
    out = np.empty_like(images)
    size = images.shape[1]
    limit = max(1, int(round(max_shift * size)))
    for i, image in enumerate(images):
        dy, dx = rng.randint(-limit, limit + 1, size=2)
        shifted = np.roll(np.roll(image.astype(np.float32), dy, axis=0), dx, axis=1)
        out[i] = np.clip(np.round(shifted + rng.normal(0, noise, image.shape)), 0, 255).astype(np.uint8)
    return out


def preprocess_all(pixels: np.ndarray, card) -> np.ndarray:
    from toolkit.preprocess import preprocess

    return np.stack([preprocess(image, card) for image in pixels])


# ---- methods ------------------------------------------------------------------------------------------
def run_predictor(path: Path, card, images: np.ndarray) -> np.ndarray:
    from toolkit.runtimes import load_predictor

    with load_predictor(path, card=card) as predictor:
        return np.concatenate([predictor.run(images[i:i + 64]) for i in range(0, len(images), 64)])


def build_ours(onnx: Path, card, calib: np.ndarray, fields: dict, work: Path, name: str) -> Path:
    from converters.onnx_import import import_onnx
    from converters.passes import lower_for_tflite
    from converters.tflite import write_tflite
    from quantize import Quantizer, Recipe

    graph = lower_for_tflite(import_onnx(onnx, card))
    result = Quantizer(Recipe.load("default").replace(**fields)).quantize(graph, calib)
    path = work / f"{name}.tflite"
    path.write_bytes(write_tflite(result.graph))
    return path


def build_litert(onnx: Path, card, calib: np.ndarray, work: Path) -> Path:
    from converters.onnx_import import import_onnx
    from converters.passes import lower_for_tflite
    from converters.tflite import write_tflite

    float_model = write_tflite(lower_for_tflite(import_onnx(onnx, card)))
    path = work / "litert.tflite"
    path.write_bytes(litert_quantize(float_model, calib.transpose(0, 2, 3, 1)))
    return path


def build_mslite(onnx: Path, card, calib: np.ndarray, method: str, work: Path) -> Path:
    from converters.mslite import write_mslite

    return write_mslite(onnx, work / f"mslite_{method}", card, precision="int8", quantizer="mslite", method=method,
                        calib_images=calib)


def anchor_builders(onnx: Path, card, calib: np.ndarray, work: Path) -> dict:
    """{anchor name: a function that quantizes `onnx` with it and returns the file's path}."""
    builders = {name: (lambda n=name: ort_quantize(onnx, calib, n, work / f"{n}.onnx")) for name in ORT_METHODS}
    builders.update({name: (lambda n=name, m=method: ort_quantize(onnx, calib, m, work / f"{m}_float_fc.onnx",
                                                                  float_classifier=True))
                     for name, method in ORT_FLOAT_CLASSIFIER_METHODS.items()})
    builders["litert-calibrator"] = lambda: build_litert(onnx, card, calib, work)
    for name, method in MSLITE_METHODS.items():
        builders[name] = lambda m=method: build_mslite(onnx, card, calib, m, work)
    return builders


def run_method(name: str, path: Path, card, images: np.ndarray) -> np.ndarray:
    """Logits of method `name`'s int8 file: ORT's QDQ files with their QDQ nodes kept, the rest in their runtime."""
    ort = name in ORT_METHODS or name in ORT_FLOAT_CLASSIFIER_METHODS
    return run_ort_qdq(path, images) if ort else run_predictor(path, card, images)


def evaluate(logits: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict:
    from quantize.metrics import compare

    metrics = compare(reference, logits, labels)
    return {k: metrics[k] for k in ("top1", "float_top1", "top1_agreement", "sqnr_db", "kl")}


def benchmark_model(spec, onnx: Path, calib_count: int, work: Path, progress, only: set[str] | None = None,
                    previous: dict | None = None, previous_errors: dict | None = None) -> tuple[dict, dict]:
    """(result, per-image errors). `spec`: a bench.model_set.BenchModel. `only`: run just these methods;
    `previous` / `previous_errors`: an earlier result of this model whose other methods are kept. The errors map
    "<method>/<split>" to each eval image's squared logit error against float (sum over the classes)."""
    from toolkit.card import load_card

    card = load_card(onnx)
    train_pixels, _ = digits_pixels("train", spec.size)
    val_pixels, labels = digits_pixels("val", spec.size)
    calib = preprocess_all(train_pixels[:calib_count], card)
    perturbed = np.concatenate([perturb(val_pixels, seed) for seed in range(PERTURBED_COPIES)])
    sets = {"clean": preprocess_all(val_pixels, card), "perturbed": preprocess_all(perturbed, card)}
    perturbed_labels = np.tile(labels, PERTURBED_COPIES)
    reference = {k: run_predictor(onnx, card, x) for k, x in sets.items()}
    low, high = calib.min(axis=(0, 2, 3), keepdims=True), calib.max(axis=(0, 2, 3), keepdims=True)
    clipped = run_predictor(onnx, card, np.clip(sets["perturbed"], low, high))
    checks = {"perturbed_input_clip_top1": float(np.mean(clipped.argmax(1) == perturbed_labels)),
              "perturbed_float_top1": float(np.mean(reference["perturbed"].argmax(1) == perturbed_labels))}
    set_labels = {"clean": labels, "perturbed": perturbed_labels}

    builders = {name: (lambda n=name, f=fields: build_ours(onnx, card, calib, f, work, n.replace(" ", "_")))
                for name, fields in OURS.items()}
    builders.update(anchor_builders(onnx, card, calib, work))

    rows = dict(previous["methods"]) if previous else {}
    errors = dict(previous_errors or {})
    for name, build in builders.items():
        if only is not None and name not in only:
            continue
        progress(f"{spec.name}: {name}")
        start = time.perf_counter()
        try:
            path = build()
            seconds = time.perf_counter() - start
            logits = {k: run_method(name, path, card, x) for k, x in sets.items()}
            rows[name] = {"seconds": seconds, **{k: evaluate(logits[k], reference[k], set_labels[k]) for k in sets}}
            errors.update({f"{name}/{k}": np.sum((logits[k] - reference[k].astype(np.float64)) ** 2, axis=1)
                           .astype(np.float32) for k in sets})
        except Exception as exc:  # an anchor that fails is reported, not fatal
            rows[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
            for k in sets:
                errors.pop(f"{name}/{k}", None)
    return {"model": spec.name, "group": spec.group, "width": spec.width, "size": spec.size,
            "onnx_sha256": sha256_of(onnx), "calibration_images": len(calib),
            "eval_images": {k: len(v) for k, v in set_labels.items()}, "checks": checks, "methods": rows}, errors


def delta_interval(ours: np.ndarray, anchor: np.ndarray, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap interval of SQNR(ours) - SQNR(anchor) in dB, from each image's squared logit error under
    both (the float logits' energy is common to both SQNRs and cancels: the difference is 10 log10 of the ratio
    of the error sums)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(ours), size=(BOOTSTRAP_RESAMPLES, len(ours)))
    ours, anchor = np.asarray(ours, np.float64), np.asarray(anchor, np.float64)
    deltas = 10 * np.log10(anchor[picks].sum(axis=1) / ours[picks].sum(axis=1))
    tail = 100 * (1 - level) / 2
    return float(np.percentile(deltas, tail)), float(np.percentile(deltas, 100 - tail))


def load_errors(path: Path) -> dict:
    if not path.is_file():
        return {}
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def save_errors(path: Path, errors: dict) -> None:
    from toolkit.fsutil import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **errors)


# ---- reporting ----------------------------------------------------------------------------------------
def is_anchor(name: str) -> bool:
    """An anchor of the all-int8 format (the default's)."""
    return not name.startswith("ours") and not name.endswith(FLOAT_CLASSIFIER)


def is_float_classifier_anchor(name: str) -> bool:
    """An anchor of the format with the classifier in float (`classifier: float`)."""
    return not name.startswith("ours") and name.endswith(FLOAT_CLASSIFIER)


def best_anchor(methods: dict, split: str, anchors=is_anchor) -> tuple[str, dict] | None:
    """The anchor (of the format `anchors` picks) with the best SQNR on `split`; None when none ran."""
    ok = {n: r for n, r in methods.items() if anchors(n) and "error" not in r}
    if not ok:
        return None
    name = max(ok, key=lambda n: (ok[n][split]["sqnr_db"], ok[n][split]["top1_agreement"]))
    return name, ok[name][split]


def model_table(result: dict):
    from rich.table import Table

    counts = result["eval_images"]
    table = Table(title=f"{result['model']}: {result['calibration_images']} calibration images; "
                        f"{counts['clean']} clean | {counts['perturbed']} perturbed eval images")
    for column in ("method", "top-1", "agree", "SQNR dB", "KL", "top-1 pert.", "agree pert.", "SQNR pert.", "s"):
        table.add_column(column, justify="left" if column == "method" else "right")
    first = next(r for r in result["methods"].values() if "error" not in r)
    table.add_row("float", f"{100 * first['clean']['float_top1']:.1f}", "", "", "",
                  f"{100 * first['perturbed']['float_top1']:.1f}", "", "", "", style="dim")
    for name, row in result["methods"].items():
        if "error" in row:
            table.add_row(name, f"[red]{row['error'][:70]}", *[""] * 7)
            continue
        c, p = row["clean"], row["perturbed"]
        table.add_row(name, f"{100 * c['top1']:.1f}", f"{100 * c['top1_agreement']:.1f}", f"{c['sqnr_db']:.2f}",
                      f"{c['kl']:.1e}", f"{100 * p['top1']:.1f}", f"{100 * p['top1_agreement']:.1f}",
                      f"{p['sqnr_db']:.2f}", f"{row['seconds']:.1f}",
                      style="bold" if name == "ours (default)" else None)
    return table


def agreement_noise(anchor: dict, ours: dict, images: int) -> float:
    """The images of agreement ours may lose before it counts: twice the standard deviation of the
    difference of the two disagreement counts (Poisson), at least AGREEMENT_NOISE_IMAGES."""
    disagreements = (2.0 - anchor["top1_agreement"] - ours["top1_agreement"]) * images
    return max(AGREEMENT_NOISE_IMAGES, 2.0 * disagreements ** 0.5)


def summary(results: list[dict], errors: dict[str, dict] | None = None, ours_name: str = "ours (default)",
            anchors=is_anchor) -> tuple[list[dict], object]:
    """`ours_name` against the best anchor of the format `anchors` picks. `errors`: per model, its per-image
    errors (benchmark_model); without them there is no interval."""
    from rich.table import Table

    table = Table(title=f"{ours_name} vs the best anchor (by SQNR) per model and eval set")
    for column in ("model", "set", "best anchor", "anchor SQNR", "ours SQNR", "Δ dB", "Δ 95% CI", "anchor agree",
                   "ours agree", "verdict"):
        table.add_column(column)
    verdicts = []
    for result in results:
        ours = result["methods"].get(ours_name)
        per_image = (errors or {}).get(result["model"], {})
        for split in SPLITS:
            best = best_anchor(result["methods"], split, anchors)
            if best is None or ours is None or "error" in ours:
                table.add_row(result["model"], split, *[""] * 7, f"no anchor or no {ours_name} ran: no verdict")
                continue
            name, anchor = best
            delta = ours[split]["sqnr_db"] - anchor["sqnr_db"]
            keys = (f"{ours_name}/{split}", f"{name}/{split}")
            interval = delta_interval(*(per_image[k] for k in keys)) if all(k in per_image for k in keys) else None
            images_lost = round((anchor["top1_agreement"] - ours[split]["top1_agreement"])
                                * result["eval_images"][split])
            if images_lost > agreement_noise(anchor, ours[split], result["eval_images"][split]) or delta < -SQNR_TIE_DB:
                verdict = "LOSS"
            else:
                verdict = "win" if delta > SQNR_TIE_DB else "tie"
            verdicts.append({"model": result["model"], "set": split, "anchor": name, "delta_db": delta,
                             "delta_ci95_db": interval, "verdict": verdict})
            table.add_row(result["model"], split, name, f"{anchor['sqnr_db']:.2f}", f"{ours[split]['sqnr_db']:.2f}",
                          f"{delta:+.2f}", f"[{interval[0]:+.2f}, {interval[1]:+.2f}]" if interval else "",
                          f"{100 * anchor['top1_agreement']:.1f}",
                          f"{100 * ours[split]['top1_agreement']:.1f}", verdict)
    return verdicts, table


def verdict_counts(verdicts: list[dict]) -> dict[str, int]:
    return {v: sum(1 for x in verdicts if x["verdict"] == v) for v in ("win", "tie", "LOSS")}


def plot(results: list[dict], path: Path, window_db: float = 5.0) -> None:
    """Clean and perturbed SQNR per method, zoomed on the top `window_db` (wider where the best all-int8
    anchor would fall below it); dashed: the best all-int8 anchor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(n for result in results for n in result["methods"]))
    figure, axes = plt.subplots(len(results), 1, figsize=(12, 3.4 * len(results)), squeeze=False)
    for axis, result in zip(axes[:, 0], results):
        methods = result["methods"]
        top = max(m[split]["sqnr_db"] for m in methods.values() if "error" not in m for split in SPLITS)
        anchors = [best_anchor(methods, split) for split in SPLITS]
        lowest = min([a[1]["sqnr_db"] for a in anchors if a] or [top])  # the best anchors stay in view
        floor = min(top - window_db, lowest - 1.0)
        colours = ["tab:green" if n == "ours (default)" else "tab:blue" if n.startswith("ours") else "tab:gray"
                   for n in names]
        for offset, split, shade in ((-0.2, "clean", 1.0), (0.2, "perturbed", 0.55)):
            values = [methods[n][split]["sqnr_db"] if "error" not in methods.get(n, {"error": ""}) else floor
                      for n in names]
            x = [i + offset for i in range(len(names))]
            axis.bar(x, [max(v, floor) - floor for v in values], 0.4, bottom=floor, color=colours, alpha=shade,
                     label=split)
            for xi, value in zip(x, values):
                if value < floor:
                    axis.text(xi, floor + 0.1, f"{value:.0f}", ha="center", fontsize=6, rotation=90)
            best = best_anchor(methods, split)
            if best:
                axis.axhline(best[1]["sqnr_db"], color="black", alpha=shade, linestyle="--", linewidth=0.8)
        axis.set_ylim(floor, top + 0.5)
        axis.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        axis.set_ylabel("logits SQNR (dB)")
        axis.set_title(f"{result['model']}: left bar clean, right bar perturbed; dashed: best all-int8 anchor; "
                       "green: our default, blue: our variants, grey: anchors (bars below the axis print their value)",
                       fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv=None) -> int:
    os.environ.setdefault("GLOG_v", "4")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", default="held_out", choices=("held_out", "tuning"),
                        help="which group of bench/model_set.py to report (defaults are tuned on 'tuning')")
    parser.add_argument("--limit", type=int, default=None,
                        help="only the first N models of the group (the report says which ran)")
    parser.add_argument("--models", default=None,
                        help="only these models of the group, comma-separated names (the report says which ran)")
    parser.add_argument("--calib", type=int, default=300, help="calibration images (same for every method)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/quant_vs_anchors"))
    parser.add_argument("--only", default=None,
                        help="run only these methods, comma-separated (e.g. a cheap tuning pass)")
    parser.add_argument("--rerun", default=None,
                        help="re-run these methods, comma-separated, in the models' cached results; keep the rest")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the tables")
    args = parser.parse_args(argv)
    known = (set(OURS) | set(ORT_METHODS) | set(ORT_FLOAT_CLASSIFIER_METHODS) | set(MSLITE_METHODS)
             | {"litert-calibrator"})
    only, rerun = ({*m.split(",")} if m else None for m in (args.only, args.rerun))
    for given in (only, rerun):
        if given and given - known:
            parser.error(f"unknown methods: {', '.join(sorted(given - known))}; known: {', '.join(sorted(known))}")

    from rich.console import Console

    console = Console(stderr=True)
    args.out.mkdir(parents=True, exist_ok=True)
    from bench.model_set import ensure_model, select, select_models

    results, errors = [], {}
    try:
        specs = select_models(args.group, args.limit, args.models)
    except ValueError as exc:
        parser.error(str(exc))
    for spec in specs:
        console.print(f"[bold]{spec.name}[/]: training on digits or reusing the model set's cache")
        model = ensure_model(spec, console=console)
        cached, cached_errors = args.out / f"{spec.name}.json", args.out / f"{spec.name}.npz"
        previous = json.loads(cached.read_text()) if cached.is_file() else None
        if previous and previous.get("onnx_sha256") != sha256_of(model.onnx):
            console.print(f"  {cached} was measured on another training of this model: measuring again")
            previous = None
        errors[spec.name] = load_errors(cached_errors) if previous else {}
        if previous and not rerun:
            results.append(previous)
            continue
        with tempfile.TemporaryDirectory() as work:
            result, errors[spec.name] = benchmark_model(
                spec, model.onnx, args.calib, Path(work), lambda text: console.print(f"  {text}"),
                only=rerun if previous else only, previous=previous, previous_errors=errors[spec.name])
        save_errors(cached_errors, errors[spec.name])
        write_json(cached, result)
        results.append(result)
    verdicts, table = summary(results, errors)
    counts = verdict_counts(verdicts)
    float_verdicts, float_table = summary(results, errors, FLOAT_CLASSIFIER_OURS, is_float_classifier_anchor)
    report = {"group": args.group, "models": [r["model"] for r in results],
              "models_in_group": len(select(args.group)), "results": results, "verdicts": verdicts, "counts": counts,
              "float_classifier": {"verdicts": float_verdicts, "counts": verdict_counts(float_verdicts)}}
    write_json(args.out / f"report_{args.group}.json", report)
    plot(results, args.out / f"sqnr_{args.group}.png")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        out = Console(width=160)
        for result in results:
            out.print(model_table(result))
            out.print(f"checks: {result['checks']}")
        out.print(table)
        out.print(f"{args.group}: {counts['win']} wins, {counts['tie']} ties, {counts['LOSS']} losses against the best "
                  f"anchor")
        if float_verdicts:
            out.print(float_table)
            float_counts = verdict_counts(float_verdicts)
            out.print(f"{args.group}, classifier in float: {float_counts['win']} wins, {float_counts['tie']} ties, "
                      f"{float_counts['LOSS']} losses against the best anchor with its classifier in float")
        out.print(f"JSON: {args.out / f'report_{args.group}.json'}   chart: {args.out / f'sqnr_{args.group}.png'}")
    return 0 if all(v["verdict"] != "LOSS" for v in verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
