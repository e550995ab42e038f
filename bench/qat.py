"""Quantization-aware fine-tuning against post-training quantization, on the held-out models.

For every held-out model of `bench/model_set.py` (trained once, cached in $MNV1TK_BENCH_MODELS;
`--group tuning` for the other group, `--models A,B` for some of them):

- QAT: `mnv1-tk train --qat --from <best.ckpt>` for --epochs epochs at --lr, the gradients' global
  norm clipped to --clip-value (`qat_clip_value`; `none`: not clipped), distilled from the float
  model's logits (runs cached in --runs, default $MNV1TK_BENCH_MODELS/qat/, resumed; each step's loss
  and gradient norm go into the result), then
  `convert --quant int8` on its last checkpoint (the learnt ranges, no calibration) and run in LiteRT;
- PTQ: our default recipe, and the anchors: their numbers from quant_vs_anchors' per-model JSON when
  it holds this model (--anchors DIR), else run here (ORT's methods, LiteRT's calibrator, MindSpore
  Lite's MAX_MIN / KL / REMOVAL_OUTLIER) on the same calibration images.

Every int8 file is judged against the ORIGINAL float checkpoint's logits, on the clean val split and
three perturbed copies (as in quant_vs_anchors): logits SQNR, top-1 agreement, top-1 (and float top-1).
Goal per model: QAT >= best PTQ anchor + 3 dB of SQNR on both sets, and QAT top-1 >= float top-1.
Exit status 1 when a model misses it. `--classifier float` trains and converts the classifier in float
(`qat_classifier: float`); it is judged against the same all-int8 anchors, and the table also gives its
margin over the best anchor with its classifier in float (ORT's methods with the Gemm excluded, from
quant_vs_anchors' JSON), the same format.

    .venv/bin/python -m bench.qat [--group held_out|tuning] [--limit N | --models A,B] [--epochs 3] [--lr 0.001]
        [--clip-value 1|none] [--classifier int8|float] [--anchors bench/results/quant_vs_anchors] [--runs DIR]
        [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.quant_vs_anchors import (
    FLOAT_CLASSIFIER_OURS, PERTURBED_COPIES, anchor_builders, build_ours, digits_pixels, evaluate, is_anchor,
    is_float_classifier_anchor, perturb, preprocess_all, run_method, run_predictor,
)
from bench.anchors import FLOAT_CLASSIFIER
from toolkit.fsutil import sha256_of

GOAL_DB = 3.0
QAT_EPOCHS = 3
RUN_TAG = "adaround"  # QAT runs that start from our default PTQ with AdaRound (cached runs of earlier code differ)
SPLITS = ("clean", "perturbed")
SETTING_BEFORE = {"classifier": "int8"}  # what results saved before a setting existed ran with


def qat_settings(args) -> dict:
    return {"epochs": args.epochs, "lr": args.lr, "clip_value": args.clip_value, "start": RUN_TAG,
            "classifier": args.classifier}


def clip_value(text: str) -> float | None:
    if text.lower() == "none":
        return None
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 or 'none', got {text}")
    return value


def train_qat(model, root: Path, settings: dict, console) -> tuple[Path, float, dict]:
    """The last checkpoint of the QAT run of `model` (trained, resumed or reused), its training seconds and
    its curve (per step: loss and, when clipping, the gradient norm before clipping; per epoch: mean loss)."""
    from toolkit.train import load_config, train

    epochs, lr, clip, classifier = settings["epochs"], settings["lr"], settings["clip_value"], settings["classifier"]
    run_dir = root / (f"{model.spec.name}_e{epochs}_lr{lr:g}_{RUN_TAG}" + (f"_clip{clip:g}" if clip else "")
                      + ("_float_classifier" if classifier == "float" else ""))
    done = run_dir / "DONE"
    if not done.is_file():
        start = time.perf_counter()
        resume = any(run_dir.glob("optim_*.ckpt"))
        config = load_config("mobilenet_v1_025_digits", {
            "qat": True, "ckpt_path": str(model.checkpoint), "epoch_size": epochs, "decay_epochs": epochs,
            "qat_lr": lr, "ckpt_save_dir": str(run_dir), "resume_opt": resume, "seed": model.spec.seed,
            "scale": [model.spec.crop_scale, 1.0], "val_while_train": False, "log_interval": 1,
            "qat_classifier": classifier},
            [f"qat_clip_value={'null' if clip is None else clip}"])
        result = train(config, console=console)
        done.write_text(json.dumps({"checkpoint": result.last_checkpoint.name,
                                    "seconds": time.perf_counter() - start}))
    record = json.loads(done.read_text())
    return run_dir / record["checkpoint"], record["seconds"], training_curve(run_dir / "metrics.jsonl")


def training_curve(metrics: Path) -> dict:
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    steps = [r for r in records if r["event"] == "step"]
    curve = {"step_loss": [r["loss"] for r in steps],
             "epoch_loss": [r["loss"] for r in records if r["event"] == "epoch"]}
    if steps and "grad_norm" in steps[0]:
        curve["step_grad_norm"] = [r["grad_norm"] for r in steps]
    return curve


def convert_qat(checkpoint: Path, out: Path) -> Path:
    from toolkit.convert import ConvertOptions, convert

    results = convert(checkpoint, ConvertOptions(to="tflite", quant="int8", out_dir=out))
    return next(r.path for r in results if r.precision == "int8")


def saved_anchors(directory: Path, model) -> tuple[dict | None, str]:
    """(the anchors' rows saved for `model`, why not when None). Rows measured on another ONNX file of
    the model (another SHA-256: the model set's cache was retrained since) are stale."""
    path = directory / f"{model.spec.name}.json"
    if not path.is_file():
        return None, "none saved"
    saved = json.loads(path.read_text())
    anchors = {k: v for k, v in saved.get("methods", {}).items() if is_anchor(k) or is_float_classifier_anchor(k)}
    if not anchors:
        return None, "none saved"
    if saved.get("onnx_sha256") != sha256_of(model.onnx):
        return None, "saved ones are stale (measured on another training of the model)"
    return anchors, str(directory)


def run_anchors(onnx: Path, card, calib: np.ndarray, work: Path, score, progress) -> dict:
    rows = {}
    for name, build in anchor_builders(onnx, card, calib, work).items():
        progress(name)
        try:
            rows[name] = score(build(), name)
        except Exception as exc:  # an anchor that fails is reported, not fatal
            rows[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    return rows


def benchmark_model(model, args, work: Path, console) -> dict:
    from toolkit.card import load_card

    card = load_card(model.onnx)
    size = model.spec.size
    train_pixels, _ = digits_pixels("train", size)
    val_pixels, labels = digits_pixels("val", size)
    perturbed = np.concatenate([perturb(val_pixels, seed) for seed in range(PERTURBED_COPIES)])
    sets = {"clean": preprocess_all(val_pixels, card), "perturbed": preprocess_all(perturbed, card)}
    set_labels = {"clean": labels, "perturbed": np.tile(labels, PERTURBED_COPIES)}
    reference = {k: run_predictor(model.onnx, card, x) for k, x in sets.items()}  # the original float model

    def score(path: Path, method: str = "ours") -> dict:
        return {k: evaluate(run_method(method, path, card, x), reference[k], set_labels[k]) for k, x in sets.items()}

    progress = lambda text: console.print(f"  {model.spec.name}: {text}")  # noqa: E731
    methods = {}
    progress("QAT fine-tuning")
    checkpoint, seconds, curve = train_qat(model, args.runs, qat_settings(args), console)
    methods["ours QAT"] = {**score(convert_qat(checkpoint, work)), "train_seconds": seconds}
    calib = preprocess_all(train_pixels[:args.calib], card)
    progress("ours PTQ (default recipe)")
    methods["ours (default)"] = score(build_ours(model.onnx, card, calib, {}, work, "ours_default"))
    if args.classifier == "float":
        progress(f"{FLOAT_CLASSIFIER_OURS} (PTQ)")
        methods[FLOAT_CLASSIFIER_OURS] = score(build_ours(model.onnx, card, calib, {"classifier": "float"}, work,
                                                          "ours_float_classifier"))
    anchors, source = saved_anchors(args.anchors, model)
    if anchors is None:
        source = f"run here ({source} in {args.anchors})"
        anchors = run_anchors(model.onnx, card, calib, work, score, progress)
    methods.update(anchors)
    return {"model": model.spec.name, "width": model.spec.width, "size": size, "anchors_from": source,
            "calibration_images": len(calib), "eval_images": {k: len(v) for k, v in set_labels.items()},
            "qat": {**qat_settings(args), "checkpoint": str(checkpoint), "curve": curve}, "methods": methods}


def ptq_name(result: dict) -> str:
    """Our PTQ row in the format the QAT run trained in: the default, or the classifier in float."""
    return FLOAT_CLASSIFIER_OURS if result["qat"].get("classifier") == "float" else "ours (default)"


def verdict(result: dict) -> dict:
    """The goal against the best all-int8 anchor; a float-classifier QAT also gets its margin over the best
    anchor with its classifier in float (the same format), and its PTQ is ours with the classifier in float."""
    methods = result["methods"]
    float_classifier = result["qat"].get("classifier") == "float"
    anchors = {n: r for n, r in methods.items() if is_anchor(n) and "error" not in r}
    same_format = {n: r for n, r in methods.items() if is_float_classifier_anchor(n) and "error" not in r}
    qat = methods["ours QAT"]
    ptq = methods[ptq_name(result)]
    row = {"model": result["model"], "classifier": "float" if float_classifier else "int8"}
    passed = True
    for split in SPLITS:
        best = max(anchors, key=lambda n: anchors[n][split]["sqnr_db"])
        margin = qat[split]["sqnr_db"] - anchors[best][split]["sqnr_db"]
        row[split] = {"best_anchor": best, "anchor_sqnr_db": anchors[best][split]["sqnr_db"],
                      "qat_sqnr_db": qat[split]["sqnr_db"], "margin_db": margin,
                      "ptq_sqnr_db": ptq[split]["sqnr_db"],
                      "qat_top1": qat[split]["top1"], "float_top1": qat[split]["float_top1"],
                      "qat_agreement": qat[split]["top1_agreement"]}
        if float_classifier and same_format:
            fair = max(same_format, key=lambda n: same_format[n][split]["sqnr_db"])
            row[split].update(same_format_anchor=fair, same_format_margin_db=qat[split]["sqnr_db"]
                              - same_format[fair][split]["sqnr_db"])
        passed &= margin >= GOAL_DB and qat[split]["top1"] >= qat[split]["float_top1"]
    row["verdict"] = "PASS" if passed else "MISS"
    return row


def table(verdicts: list[dict]):
    from rich.table import Table

    out = Table(title=f"QAT vs the best PTQ anchor (goal: +{GOAL_DB:g} dB logits SQNR vs the original float model, "
                      "top-1 >= float)")
    for column in ("model", "set", "best anchor", "anchor dB", "ours PTQ dB", "QAT dB", "margin dB",
                   "margin, same format", "QAT agree", "QAT top-1", "float top-1", "verdict"):
        out.add_column(column, justify="left" if column in ("model", "set", "best anchor") else "right",
                       no_wrap=column == "model")
    for v in verdicts:
        for split in SPLITS:
            r = v[split]
            fair = (f"{r['same_format_margin_db']:+.1f} ({r['same_format_anchor'].removesuffix(FLOAT_CLASSIFIER)})"
                    if "same_format_anchor" in r else "")
            out.add_row(v["model"] if split == "clean" else "", split, r["best_anchor"], f"{r['anchor_sqnr_db']:.1f}",
                        f"{r['ptq_sqnr_db']:.1f}", f"{r['qat_sqnr_db']:.1f}", f"{r['margin_db']:+.1f}", fair,
                        f"{100 * r['qat_agreement']:.1f}%", f"{100 * r['qat_top1']:.1f}%",
                        f"{100 * r['float_top1']:.1f}%",
                        v["verdict"] if split == "clean" else "",
                        style=None if v["verdict"] == "PASS" else "red")
    return out


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(SPLITS), figsize=(4 + 1.3 * len(results), 4.2), sharey=True)
    x = np.arange(len(results))
    for axis, split in zip(axes, SPLITS):
        best = [max(r[split]["sqnr_db"] for n, r in res["methods"].items() if is_anchor(n) and "error" not in r)
                for res in results]
        ptq = [res["methods"][ptq_name(res)][split]["sqnr_db"] for res in results]
        qat = [res["methods"]["ours QAT"][split]["sqnr_db"] for res in results]
        axis.bar(x - 0.27, best, 0.27, label="best all-int8 PTQ anchor", color="tab:gray")
        axis.bar(x, ptq, 0.27, label=f"ours PTQ: {ptq_name(results[0])}", color="tab:blue")
        axis.bar(x + 0.27, qat, 0.27, label="ours QAT", color="tab:green")
        axis.scatter(x + 0.27, np.array(best) + GOAL_DB, marker="_", s=300, color="black",
                     label=f"goal: anchor + {GOAL_DB:g} dB")
        axis.set_xticks(x, [res["model"].replace("mobilenet_v1_", "") for res in results], rotation=30, ha="right",
                        fontsize=7)
        axis.set_title(f"{split} val set")
        axis.set_ylabel("logits SQNR vs the original float model (dB)")
    axes[0].legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".png", delete=False) as handle:
        figure.savefig(handle.name, dpi=110)
    os.replace(handle.name, path)
    plt.close(figure)


def plot_curves(results: list[dict], path: Path) -> None:
    """Per step of each QAT run: the loss, and the gradient norm before clipping (with the clip value)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axis, norm_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for res in results:
        curve, label = res["qat"]["curve"], res["model"].replace("mobilenet_v1_", "")
        loss_axis.plot(np.arange(1, len(curve["step_loss"]) + 1), curve["step_loss"], label=label)
        if "step_grad_norm" in curve:
            norm_axis.plot(np.arange(1, len(curve["step_grad_norm"]) + 1), curve["step_grad_norm"], label=label)
    clip = results[0]["qat"].get("clip_value")
    if clip is not None and clip < max((max(r["qat"]["curve"].get("step_grad_norm", [0])) for r in results)):
        norm_axis.axhline(clip, color="black", linestyle="--", label=f"clip value {clip:g}")
    loss_axis.set(yscale="log", xlabel="step", ylabel="distillation loss (batch)", title="QAT loss")
    norm_axis.set(yscale="log", xlabel="step", ylabel="global gradient norm before clipping",
                  title=f"gradient norm (lr {results[0]['qat']['lr']:g})")
    loss_axis.legend(fontsize=7)
    norm_axis.legend(fontsize=7)
    figure.tight_layout()
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".png", delete=False) as handle:
        figure.savefig(handle.name, dpi=110)
    os.replace(handle.name, path)
    plt.close(figure)


def main(argv=None) -> int:
    os.environ.setdefault("GLOG_v", "4")
    from bench.model_set import cache_dir, ensure_model, select_models
    from toolkit.train.config import QATConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=QAT_EPOCHS, help="QAT epochs")
    parser.add_argument("--lr", type=float, default=QATConfig.lr, help="QAT peak learning rate (cosine decay)")
    parser.add_argument("--clip-value", type=clip_value, default=QATConfig.clip_value,
                        help="clip the QAT gradients' global norm to this (qat_clip_value), or 'none'")
    parser.add_argument("--classifier", default="int8", choices=("int8", "float"),
                        help="the classifier's precision in QAT and its converted file (qat_classifier)")
    parser.add_argument("--calib", type=int, default=300, help="calibration images of the PTQ methods")
    parser.add_argument("--anchors", type=Path, default=Path("bench/results/quant_vs_anchors"),
                        help="quant_vs_anchors' results directory, whose per-model JSON is reused when present")
    parser.add_argument("--group", default="held_out", choices=("held_out", "tuning"),
                        help="which group of bench/model_set.py (QAT settings are chosen on 'tuning')")
    parser.add_argument("--limit", type=int, help="only the first N models of the group")
    parser.add_argument("--models", help="only these models of the group, comma-separated names")
    parser.add_argument("--runs", type=Path, default=None,
                        help="where the QAT runs are kept (default: $MNV1TK_BENCH_MODELS/qat)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/qat"))
    args = parser.parse_args(argv)
    args.runs = args.runs or cache_dir() / "qat"

    from rich.console import Console

    from toolkit.fsutil import write_json, write_text

    console = Console(stderr=True)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        specs = select_models(args.group, args.limit, args.models)
    except ValueError as exc:
        parser.error(str(exc))
    results = []
    for spec in specs:
        cached = args.out / f"{spec.name}.json"
        settings = qat_settings(args)
        if cached.is_file() and {k: json.loads(cached.read_text())["qat"].get(k, SETTING_BEFORE.get(k))
                                 for k in settings} == settings:
            results.append(json.loads(cached.read_text()))
            continue
        model = ensure_model(spec, console=console)
        with tempfile.TemporaryDirectory() as work:
            result = benchmark_model(model, args, Path(work), console)
        write_json(cached, result)
        results.append(result)
    verdicts = [verdict(r) for r in results]
    write_json(args.out / "report.json", {"goal_db": GOAL_DB, "results": results, "verdicts": verdicts})
    plot(results, args.out / "sqnr.png")
    if all("curve" in r["qat"] for r in results):  # results of earlier code have none
        plot_curves(results, args.out / "curves.png")
    printer = Console(width=200, record=True)  # the table's twelve columns unwrapped
    printer.print(table(verdicts))
    write_text(args.out / "table.txt", printer.export_text())
    console.print(f"JSON: {args.out / 'report.json'}   chart: {args.out / 'sqnr.png'}")
    return 0 if all(v["verdict"] == "PASS" for v in verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
