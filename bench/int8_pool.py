"""LiteRT latency of our int8 MobileNetV1 with the global pool as MEAN vs as AVERAGE_POOL_2D.

Both files come from the same float model (zoo architecture, trained-like random weights) and the
same calibration (minmax ranges: the ranges do not change the speed). They run in LiteRT with its
default delegate (XNNPACK), one image per invoke, interleaved run by run so that both see the same
machine load; the ratio of the medians is reported (below 1: MEAN is faster), with the number of
XNNPACK partitions of each file.

    .venv/bin/python -m bench.int8_pool [--widths 0.25,1.0] [--size 224] [--runs 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def int8_models(width: float, size: int, work: Path) -> dict[str, bytes]:
    from bench.quantize_speed import lowered_zoo_graph
    from converters.tflite import write_tflite
    from quantize import Quantizer, Recipe

    graph = lowered_zoo_graph(width, size, work)
    calib = np.random.RandomState(0).randn(16, 3, size, size).astype(np.float32)
    recipe = Recipe(method="minmax", cle=False, bias_correction=False)
    return {pool: write_tflite(Quantizer(recipe.replace(global_pool=pool)).quantize(graph, calib).graph)
            for pool in ("mean", "avg_pool")}


def interleaved_medians(models: dict[str, bytes], runs: int, threads: int) -> tuple[dict, dict]:
    from ai_edge_litert.interpreter import Interpreter

    interpreters, partitions = {}, {}
    for name, model in models.items():
        interpreter = Interpreter(model_content=model, num_threads=threads)
        interpreter.allocate_tensors()
        partitions[name] = sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())
        interpreters[name] = interpreter
    x = np.random.RandomState(1).randn(*interpreters["mean"].get_input_details()[0]["shape"]).astype(np.float32)
    times: dict[str, list[float]] = {name: [] for name in models}
    for step in range(runs + 10):
        for name, interpreter in interpreters.items():
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
            start = time.perf_counter()
            interpreter.invoke()
            if step >= 10:  # warm-up
                times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) * 1e3 for name, t in times.items()}, partitions


def main(argv=None) -> int:
    os.environ.setdefault("GLOG_v", "4")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", default="0.25,1.0")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"int8 global pool in LiteRT + XNNPACK, {args.size}x{args.size}, {args.threads} thread(s), "
                        f"medians of {args.runs} interleaved runs")
    for column in ("width", "MEAN ms", "AVERAGE_POOL_2D ms", "ratio MEAN / AVG", "partitions MEAN / AVG"):
        table.add_column(column, justify="right")
    for width in (float(w) for w in args.widths.split(",")):
        with tempfile.TemporaryDirectory() as work:
            medians, partitions = interleaved_medians(int8_models(width, args.size, Path(work)), args.runs,
                                                      args.threads)
        table.add_row(f"{width:g}", f"{medians['mean']:.2f}", f"{medians['avg_pool']:.2f}",
                      f"{medians['mean'] / medians['avg_pool']:.3f}",
                      f"{partitions['mean']} / {partitions['avg_pool']}")
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
