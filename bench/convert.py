"""Conversion benchmark: time of each conversion stage per width, and the size of each output.

For every zoo width (ImageNet head, 1001 classes, random weights: sizes and times do not depend on
the values; accuracy is the parity tests' business) a checkpoint is exported to ONNX once (with
export's own verification, as `mnv1-tk export` runs it), then converted to float32 and fp16 .tflite
with metadata `--repeats` times; the table shows the median time of each stage side by side, the
output sizes and the fp16/fp32 size ratio.

    .venv/bin/python bench/convert.py [--image-size 224] [--repeats 3] [--json] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def _timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def stage_times(onnx: Path, card, repeats: int) -> tuple[dict[str, float], dict[str, int]]:
    """Median seconds of import, lower, to_fp16, write (fp32 and fp16) and metadata; output bytes."""
    from converters.onnx_import import import_onnx
    from converters.passes import lower_for_tflite
    from converters.passes.to_fp16 import to_fp16
    from converters.tflite import write_tflite
    from converters.tflite.metadata import add_metadata

    runs: dict[str, list[float]] = {}
    for _ in range(repeats):
        graph, t_import = _timed(import_onnx, onnx, card)
        lowered, t_lower = _timed(lower_for_tflite, graph)
        half, t_fp16 = _timed(to_fp16, lowered)
        fp32, t_write32 = _timed(write_tflite, lowered)
        fp16, t_write16 = _timed(write_tflite, half)
        fp32, t_meta = _timed(add_metadata, fp32, card)
        fp16 = add_metadata(fp16, card.replace(precision="fp16"))
        for key, value in (("import", t_import), ("lower", t_lower), ("to_fp16", t_fp16), ("write_fp32", t_write32),
                           ("write_fp16", t_write16), ("metadata", t_meta)):
            runs.setdefault(key, []).append(value)
    return {key: statistics.median(values) for key, values in runs.items()}, {"fp32": len(fp32), "fp16": len(fp16)}


def bench_width(width: float, image_size: int, repeats: int, work: Path) -> dict:
    import mindspore as ms

    from toolkit.card import load_card, save_card
    from toolkit.export import export_model
    from toolkit.models import create_model, model_name
    from toolkit.models.checkpoint import checkpoint_card

    ckpt = work / f"{model_name(width)}.ckpt"
    network = create_model(model_name(width), num_classes=1001)
    ms.save_checkpoint(network, str(ckpt))
    save_card(checkpoint_card(ckpt, width=width, image_size=image_size, num_classes=1001).replace(format="ckpt"), ckpt)
    exported, export_seconds = _timed(export_model, ckpt, work, ("onnx",))
    onnx = exported["onnx"]
    times, sizes = stage_times(onnx, load_card(onnx), repeats)
    return {
        "width": width, "image_size": image_size, "export_onnx_s": export_seconds,
        "convert_fp32_s": times["import"] + times["lower"] + times["write_fp32"] + times["metadata"],
        "convert_fp16_s": times["import"] + times["lower"] + times["to_fp16"] + times["write_fp16"] + times["metadata"],
        "stages_s": times,
        "onnx_mb": onnx.stat().st_size / 1e6, "fp32_mb": sizes["fp32"] / 1e6, "fp16_mb": sizes["fp16"] / 1e6,
        "fp16_over_fp32": sizes["fp16"] / sizes["fp32"],
    }


def table(rows: list[dict]):
    from rich.table import Table

    t = Table(title=f"mnv1-tk convert benchmark ({rows[0]['image_size']}x{rows[0]['image_size']}, 1001 classes, "
                    "median stage times)")
    for column in ("width", "export ONNX s", "import s", "lower s", "write fp32 s", "to_fp16+write s",
                   "metadata s", "fp32 total s", "fp16 total s", "ONNX MB", "fp32 MB", "fp16 MB", "fp16/fp32"):
        t.add_column(column, justify="right")
    for r in rows:
        s = r["stages_s"]
        t.add_row(f"{r['width']:g}", f"{r['export_onnx_s']:.2f}", f"{s['import']:.3f}", f"{s['lower']:.3f}",
                  f"{s['write_fp32']:.3f}", f"{s['to_fp16'] + s['write_fp16']:.3f}", f"{s['metadata']:.3f}",
                  f"{r['convert_fp32_s']:.3f}", f"{r['convert_fp16_s']:.3f}", f"{r['onnx_mb']:.2f}",
                  f"{r['fp32_mb']:.2f}", f"{r['fp16_mb']:.2f}", f"{r['fp16_over_fp32']:.3f}")
    return t


def main() -> None:
    from rich.console import Console

    from toolkit.models import WIDTHS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON results to this file")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for width in WIDTHS:
            Console(stderr=True).log(f"width {width}: export, convert, {args.repeats} timed repeats")
            rows.append(bench_width(width, args.image_size, args.repeats, Path(work)))
    if args.out:
        from toolkit.fsutil import write_json

        write_json(args.out, rows)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        Console(width=220).print(table(rows))


if __name__ == "__main__":
    main()
