"""The whole zoo on digits, every width, timed stage by stage: which stage dominates the quickstart.

Runs `build_zoo` (the `mnv1-tk zoo` defaults: the digits config, all four widths at 32x32, tflite and
mslite in fp32/fp16/int8, host profiling at 1 and 2 threads, the report and the bundle) in a fresh
folder and attributes the wall time between its progress steps to stages: train, export, validate,
convert (evaluation of the source included), profile, report + bundle. Writes a table, `zoo.json` and
`zoo.png` (each stage's share) to bench/results/zoo/.

    .venv/bin/python -m bench.zoo [--widths all] [--epochs N] [--out runs/bench-zoo]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

STAGES = ("train", "export", "validate", "convert", "profile", "report + bundle")
RESULTS = Path(__file__).parent / "results" / "zoo"


def stage_of(step: str) -> str:
    text = step.split(": ", 1)[-1]
    for stage in ("train", "export", "validate", "profile"):
        if text.startswith(stage):
            return stage
    if text.startswith("bundle"):
        return "report + bundle"
    return "convert"


def run(widths: str, epochs: int | None, out: Path) -> dict:
    from toolkit.zoo import ZooOptions, build_zoo, parse_widths

    shutil.rmtree(out, ignore_errors=True)
    marks: list[tuple[float, str]] = []
    start = time.perf_counter()
    entries = build_zoo(ZooOptions(widths=parse_widths(widths), epochs=epochs, out=out),
                        step=lambda text: marks.append((time.perf_counter(), stage_of(text))))
    end = time.perf_counter()
    seconds = dict.fromkeys(STAGES, 0.0)
    seconds["train"] += marks[0][0] - start if marks else 0.0  # config and data before the first step
    for (at, stage), (following, _) in zip(marks, marks[1:] + [(end, "")]):
        # the time after the last profile step is the report and the bundle
        seconds["report + bundle" if stage == "profile" and following == end else stage] += following - at
    total = end - start
    return {"widths": widths, "epochs": epochs, "files": len(entries), "total_s": total,
            "stages": {s: {"seconds": t, "share": t / total} for s, t in seconds.items()}}


def table(result: dict):
    from rich.table import Table

    t = Table(title=f"zoo on digits, widths {result['widths']}: {result['total_s']:.0f} s, {result['files']} files")
    for column in ("stage", "seconds", "share"):
        t.add_column(column, justify="left" if column == "stage" else "right")
    for stage, v in result["stages"].items():
        t.add_row(stage, f"{v['seconds']:.1f}", f"{100 * v['share']:.1f}%")
    return t


def chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(result["stages"])
    shares = [100 * result["stages"][s]["share"] for s in stages]
    figure, axis = plt.subplots(figsize=(7, 3.2))
    axis.barh(stages[::-1], shares[::-1], color="tab:blue")
    for y, share in enumerate(shares[::-1]):
        axis.text(share + 0.5, y, f"{share:.1f}%", va="center", fontsize=8)
    axis.set_xlabel("share of the zoo's wall time (%)")
    axis.set_title(f"mnv1-tk zoo on digits ({result['total_s']:.0f} s)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="all")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-zoo"))
    args = parser.parse_args()
    result = run(args.widths, args.epochs, args.out)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "zoo.json").write_text(json.dumps(result, indent=2) + "\n")
    chart(result, RESULTS / "zoo.png")
    Console().print(table(result))
    shutil.copy(args.out / "report.md", RESULTS / "report.md")
    if (args.out / "pareto.png").is_file():
        shutil.copy(args.out / "pareto.png", RESULTS / "pareto.png")


if __name__ == "__main__":
    main()
