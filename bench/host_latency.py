"""Host latency of MobileNetV1 at every width (224x224, 1000 classes), float32 and int8, in LiteRT,
MindSpore Lite and ONNX Runtime, at 1 and 2 threads, with `mnv1-tk profile`'s interleaved timing.

Models: MindSpore's MobileNetV1 with random weights that have a trained network's statistics
(`tests.models.randomise_like_trained`, as the test zoo; latency does not depend on the values) exported to
ONNX, converted by `mnv1-tk convert` to .tflite and .ms (float32, and int8 through our quantizer with
32 digits images for calibration), and ONNX Runtime's own `quantize_static` (QDQ, per channel, MinMax)
for the int8 ONNX. Each width is profiled as one interleaved group (all its files and thread counts in
round robin, order reversed every round), so the int8/float32 ratios compare runs that shared the same
machine conditions. Runs are kept modest: the machine is shared, so absolute times are noisy; the
ratios are what to read.

    .venv/bin/python -m bench.host_latency [--runs 20] [--warmup 3] [--widths 0.25,0.5,0.75,1.0]

Writes bench/results/host_latency/{table.txt,results.json,latency.png}. Headline: LiteRT int8/fp32 at
width 1.0, against TFLite's published Pixel 3 figure for MobileNetV1 1.0 224 (13 ms / 24 ms = 0.54).
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

PUBLISHED_PIXEL3 = {"fp32_ms": 24.0, "int8_ms": 13.0}  # tensorflow.org/lite/performance/model_optimization
RESULTS = Path(__file__).parent / "results" / "host_latency"
RUNTIMES = ("litert", "mslite", "onnxruntime")


def build_models(width: float, work: Path) -> dict[tuple[str, str], Path]:
    """{(runtime, precision): file} for one width, built once into `work` (reused when present)."""
    import mindspore as ms

    from bench.anchors import ort_quantize
    from toolkit.card import load_card, save_card
    from toolkit.convert import ConvertOptions, QuantOptions, convert, eval_set
    from toolkit.data import DatasetSpec
    from toolkit.export import export_model
    from toolkit.models import create_model, model_name

    stem = f"{model_name(width)}_224"
    files = {("onnxruntime", "fp32"): work / f"{stem}.onnx", ("onnxruntime", "int8"): work / f"{stem}.ort-int8.onnx",
             ("litert", "fp32"): work / f"{stem}.fp32.tflite", ("litert", "int8"): work / f"{stem}.int8.tflite",
             ("mslite", "fp32"): work / f"{stem}.fp32.ms", ("mslite", "int8"): work / f"{stem}.int8.ms"}
    if all(p.is_file() for p in files.values()):
        return files
    work.mkdir(parents=True, exist_ok=True)
    from tests.models import digits_images, randomise_like_trained

    ms.set_seed(0)
    network = create_model(model_name(width), num_classes=1000)
    randomise_like_trained(network, digits_images(), seed=int(width * 100))
    checkpoint = work / f"{model_name(width)}.ckpt"
    ms.save_checkpoint(network, str(checkpoint))
    onnx = export_model(checkpoint, work, formats=("onnx",), width=width, image_size=224, num_classes=1000,
                        verify=False)["onnx"]
    convert(onnx, ConvertOptions(to=("tflite", "mslite"), quant=("none", "int8"), check=False,
                                 quantization=QuantOptions(calib="digits", calib_size=32)))
    card = load_card(onnx)
    calibration = eval_set(card, DatasetSpec("digits"), 32)[0]
    ort_quantize(onnx, calibration, "ort-minmax", files[("onnxruntime", "int8")])
    save_card(card.replace(precision="int8", source=onnx.name), files[("onnxruntime", "int8")])
    return files


def profile_width(width: float, files: dict, runs: int, warmup: int, progress) -> list[dict]:
    from toolkit.profile import ProfileOptions, profile

    by_path = {str(path): key for key, path in files.items()}
    results = profile(list(files.values()), ProfileOptions(threads=(1, 2), runs=runs, warmup=warmup), progress)
    rows = []
    for r in results:
        runtime, precision = by_path[r.path]
        rows.append({"width": width, "runtime": runtime, "precision": precision, **r.to_dict()})
    return rows


def add_ratios(rows: list[dict]) -> None:
    """int8 over fp32 (same width, runtime, threads) and each row over LiteRT fp32 at 1 thread (same width)."""
    index = {(r["width"], r["runtime"], r["precision"], r["threads"]): r for r in rows}
    for r in rows:
        fp32 = index[(r["width"], r["runtime"], "fp32", r["threads"])]
        base = index[(r["width"], "litert", "fp32", 1)]
        r["int8_over_fp32"] = r["median_ms"] / fp32["median_ms"] if r["precision"] == "int8" else None
        r["over_litert_fp32_1t"] = r["median_ms"] / base["median_ms"]


def table(rows: list[dict]):
    from rich.table import Table

    t = Table(title="Host latency, MobileNetV1 224x224 (median ms over interleaved runs)")
    for column in ("width", "runtime", "precision", "threads", "median", "p90", "min", "int8/fp32", "x LiteRT fp32 1t",
                   "MMACs"):
        t.add_column(column, justify="left" if column in ("runtime", "precision") else "right")
    for r in rows:
        t.add_row(f"{r['width']}", r["runtime"], r["precision"], str(r["threads"]), f"{r['median_ms']:.2f}",
                  f"{r['p90_ms']:.2f}", f"{r['min_ms']:.2f}",
                  "" if r["int8_over_fp32"] is None else f"{r['int8_over_fp32']:.2f}",
                  f"{r['over_litert_fp32_1t']:.2f}", f"{r['macs'] / 1e6:.0f}" if r["macs"] else "-")
    return t


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    widths = sorted({r["width"] for r in rows})
    series = [(rt, p) for rt in RUNTIMES for p in ("fp32", "int8")]
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, threads in zip(axes, (1, 2)):
        step = 0.8 / len(series)
        for i, (runtime, precision) in enumerate(series):
            values = [next(r["median_ms"] for r in rows if (r["width"], r["runtime"], r["precision"], r["threads"])
                           == (w, runtime, precision, threads)) for w in widths]
            ax.bar(np.arange(len(widths)) + i * step, values, step, label=f"{runtime} {precision}",
                   hatch="//" if precision == "int8" else None)
        ax.set_xticks(np.arange(len(widths)) + 0.4 - step / 2, [str(w) for w in widths])
        ax.set_xlabel("width multiplier")
        ax.set_title(f"{threads} thread{'s' if threads > 1 else ''}")
        ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3, which="both")
    axes[0].set_ylabel("median latency (ms, log scale)")
    axes[1].legend(fontsize=8)
    figure.suptitle("MobileNetV1 224x224 on this host (shared 2-core CPU: read the ratios)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--widths", default="0.25,0.5,0.75,1.0")
    parser.add_argument("--work", type=Path, default=Path("runs/bench_host_latency"), help="where the models are kept")
    args = parser.parse_args(argv)
    os.environ.setdefault("GLOG_v", "4")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from rich.console import Console
    from rich.progress import Progress

    from toolkit.fsutil import write_json, write_text

    console = Console(width=140)
    rows = []
    with Progress(console=Console(stderr=True), transient=True) as bar:
        for width in [float(w) for w in args.widths.split(",")]:
            task = bar.add_task(f"width {width}: building models", total=None)
            files = build_models(width, args.work / f"w{width}")

            def progress(done, total, description, task=task, width=width):
                bar.update(task, completed=done, total=total, description=f"width {width}: {description}")

            rows += profile_width(width, files, args.runs, args.warmup, progress)
    add_ratios(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    headline = next((r for r in rows if (r["width"], r["runtime"], r["precision"], r["threads"])
                     == (1.0, "litert", "int8", 1)), None)
    summary = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
                          " (shared with other jobs)",
               "runs": args.runs, "warmup": args.warmup, "published_pixel3": PUBLISHED_PIXEL3,
               "published_ratio": PUBLISHED_PIXEL3["int8_ms"] / PUBLISHED_PIXEL3["fp32_ms"],
               "litert_int8_over_fp32_width1_1thread": headline["int8_over_fp32"] if headline else None}
    write_json(RESULTS / "results.json", {"summary": summary, "rows": [{k: v for k, v in r.items() if k != "ops"}
                                                                        for r in rows]})
    with console.capture() as captured:
        console.print(table(rows))
    text = captured.get()
    if headline:
        text += (f"\nHeadline: LiteRT int8/fp32 at width 1.0, 1 thread = {headline['int8_over_fp32']:.2f} "
                 f"(TFLite's published Pixel 3: 13 ms / 24 ms = {summary['published_ratio']:.2f})\n")
    write_text(RESULTS / "table.txt", text)
    plot(rows, RESULTS / "latency.png")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
