"""Wall and CPU time of `Quantizer(Recipe.load(RECIPE)).quantize` per width, stage by stage.

The model is the zoo architecture with trained-like random weights (tests/models.py) at 224x224; the
calibration set is N random-normal images, as in issue #14's measurement. Each stage's wall time
comes from the quantizer's progress callback (the time between the first tick of a stage and the
first tick of the next). The issue's goal: width 1.0 at 224, default recipe, under 60 s on 2 cores.

    .venv/bin/python -m bench.quantize_speed [--widths 0.25,1.0] [--size 224] [--images 300]
        [--recipe default] [--json bench/results/quantize_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def lowered_zoo_graph(width: float, size: int, work: Path):
    import mindspore as ms

    from converters.onnx_import import import_onnx
    from converters.passes import lower_for_tflite
    from tests.models import digits_images, export_onnx, randomise_like_trained, zoo_card
    from toolkit.models import create_model, model_name

    ms.set_seed(int(width * 100))
    network = create_model(model_name(width), num_classes=10)
    randomise_like_trained(network, digits_images(), seed=int(width * 100))
    return lower_for_tflite(import_onnx(export_onnx(network, zoo_card(width, size), work / "model.onnx")))


def time_quantize(graph, images: np.ndarray, recipe_name: str) -> dict:
    from quantize import Quantizer, Recipe

    starts: dict[str, float] = {}

    def progress(stage: str, done: int, total: int):
        starts.setdefault(stage, time.perf_counter())

    cpu0, wall0 = os.times(), time.perf_counter()
    Quantizer(Recipe.load(recipe_name), progress=progress).quantize(graph, images)
    cpu1, wall1 = os.times(), time.perf_counter()
    marks = sorted(starts.items(), key=lambda kv: kv[1]) + [("end", wall1)]
    stages = {name: round(marks[i + 1][1] - start, 2) for i, (name, start) in enumerate(marks[:-1])}
    return {"wall_s": round(wall1 - wall0, 2),
            "cpu_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 2),
            "stages_wall_s": {"before first stage": round(marks[0][1] - wall0, 2), **stages}}


def main(argv=None) -> int:
    os.environ.setdefault("GLOG_v", "4")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", default="0.25,1.0")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--json", type=Path, default=Path("bench/results/quantize_speed.json"))
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    images = np.random.RandomState(0).randn(args.images, 3, args.size, args.size).astype(np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width in (float(w) for w in args.widths.split(",")):
            graph = lowered_zoo_graph(width, args.size, Path(tmp))
            rows.append({"width": width, "size": args.size, "images": args.images, "recipe": args.recipe,
                         "load_average": round(os.getloadavg()[0], 2), **time_quantize(graph, images, args.recipe)})
    table = Table(title=f"Quantize time, recipe {args.recipe!r}, {args.images} random images, {os.cpu_count()} cores")
    for column in ("width", "size", "wall s", "CPU s", "stages (wall s)", "load"):
        table.add_column(column)
    for r in rows:
        stages = ", ".join(f"{k} {v}" for k, v in r["stages_wall_s"].items())
        table.add_row(f"{r['width']:g}", str(r["size"]), f"{r['wall_s']:.1f}", f"{r['cpu_s']:.1f}", stages,
                      f"{r['load_average']:.2f}")
    Console().print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp_json = args.json.with_suffix(".tmp")
    tmp_json.write_text(json.dumps(rows, indent=2) + "\n")
    tmp_json.replace(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
