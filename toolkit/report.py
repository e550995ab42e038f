"""The zoo's report: `report.md` (mindcv's model-table columns first, then the deployment columns) and
`pareto.png` (top-1 against host latency, the Pareto frontier marked and labelled).

Inputs are plain rows (`ReportRow`), one per width x format x precision, so the report can be rebuilt
from `zoo.json` alone.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.fsutil import write_text


@dataclass(frozen=True)
class ReportRow:
    model: str  # e.g. mobilenet_v1_025
    image_size: int
    format: str  # ckpt / onnx / mindir / tflite / mslite
    precision: str
    path: str
    size_mb: float
    top1: float
    top5: float
    params_m: float | None = None
    macs_m: float | None = None
    train_seconds_per_epoch: float | None = None
    top1_agreement: float | None = None
    sqnr_db: float | None = None
    runtime: str | None = None  # the host runtime that timed it
    host_ms: dict[int, float] = field(default_factory=dict)  # threads -> median latency
    device_ms: float | None = None

    @property
    def label(self) -> str:
        return f"{self.model.removeprefix('mobilenet_v1_')} {self.format} {self.precision}"


def pareto_frontier(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (latency, accuracy) points no other point beats: as fast or faster and as accurate or
    more, better in one. Sorted by latency."""
    frontier = []
    for i, (latency, accuracy) in enumerate(points):
        dominated = any(l2 <= latency and a2 >= accuracy and (l2, a2) != (latency, accuracy)
                        for l2, a2 in points)
        if not dominated:
            frontier.append(i)
    return sorted(frontier, key=lambda i: points[i])


def timed_rows(rows: list[ReportRow]) -> tuple[list[ReportRow], int | None]:
    """The rows with a host latency at the smallest thread count they share, and that thread count."""
    counts = sorted({t for r in rows for t in r.host_ms})
    if not counts:
        return [], None
    return [r for r in rows if counts[0] in r.host_ms], counts[0]


def frontier_rows(rows: list[ReportRow]) -> list[ReportRow]:
    timed, threads = timed_rows(rows)
    return [timed[i] for i in pareto_frontier([(r.host_ms[threads], r.top1) for r in timed])]


def _number(value, digits: int = 2, scale: float = 1.0, suffix: str = "") -> str:
    if value is None:
        return "—"
    if value == float("inf"):
        return "exact"
    return f"{value * scale:.{digits}f}{suffix}"


def report_markdown(rows: list[ReportRow], title: str, device: str | None = None) -> str:
    threads = sorted({t for r in rows for t in r.host_ms})
    frontier = {r.path for r in frontier_rows(rows)}
    header = ["Model", "Top-1", "Top-5", "Params (M)", "Train s/epoch", "Format", "Precision", "MACs (M)",
              "Size (MB)", "Agree w/ float", "SQNR (dB)", "Runtime", *[f"Host {t}T (ms)" for t in threads]]
    header += [f"{device} (ms)"] if device else []
    lines = [f"# {title}", "",
             "Seed columns first (as in mindcv's model table), then deployment: one row per width x format x "
             "precision. Latency is the median of the profiler's runs; **bold** rows are on the Pareto frontier "
             "of top-1 against host latency (pareto.png).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [f"**{r.model}_{r.image_size}**" if r.path in frontier else f"{r.model}_{r.image_size}",
                 _number(r.top1, 2, 100), _number(r.top5, 2, 100), _number(r.params_m, 3),
                 _number(r.train_seconds_per_epoch, 1), r.format, r.precision, _number(r.macs_m, 1),
                 _number(r.size_mb, 2), _number(r.top1_agreement, 1, 100, "%"), _number(r.sqnr_db, 1),
                 r.runtime or "—", *[_number(r.host_ms.get(t), 3) for t in threads]]
        cells += [_number(r.device_ms, 3)] if device else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_pareto_png(rows: list[ReportRow], path: Path, title: str) -> Path | None:
    """Top-1 against host latency, one point per timed variant, the frontier joined and labelled; None when
    nothing was timed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed, threads = timed_rows(rows)
    if not timed:
        return None
    frontier = frontier_rows(rows)
    markers = {"tflite": "o", "mslite": "s", "onnx": "^", "mindir": "v", "ckpt": "D"}
    figure, axis = plt.subplots(figsize=(8, 5))
    for r in timed:
        axis.scatter(r.host_ms[threads], 100 * r.top1, marker=markers.get(r.format, "x"), color="tab:gray",
                     alpha=0.6, s=28)
    axis.plot([r.host_ms[threads] for r in frontier], [100 * r.top1 for r in frontier], "-o", color="tab:red",
              label="Pareto frontier", zorder=3)
    for r in frontier:
        axis.annotate(r.label, (r.host_ms[threads], 100 * r.top1), textcoords="offset points", xytext=(5, -10),
                      fontsize=8, color="tab:red")
    for fmt, marker in markers.items():
        if any(r.format == fmt for r in timed):
            axis.scatter([], [], marker=marker, color="tab:gray", label=fmt)
    axis.set_xscale("log")
    axis.set_xlabel(f"host latency, {threads} thread(s), median (ms, log scale)")
    axis.set_ylabel("top-1 (%)")
    axis.set_title(title)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".png", delete=False) as handle:
        figure.savefig(handle.name, dpi=120)
    os.replace(handle.name, path)
    plt.close(figure)
    return path


def write_report(rows: list[ReportRow], out: Path, title: str, device: str | None = None) -> Path:
    """report.md (and pareto.png when something was timed) in `out`; returns the report's path."""
    write_pareto_png(rows, out / "pareto.png", title)
    return write_text(out / "report.md", report_markdown(rows, title, device))
