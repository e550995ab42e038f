"""Profile results as a rich table (with ratios to a baseline row), JSON, CSV and a latency/accuracy plot."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from toolkit.errors import DataError
from toolkit.fsutil import write_json, write_text
from toolkit.profile.results import ProfileResult

CSV_FIELDS = ("model", "runtime", "threads", "accelerator", "device", "init_ms", "first_ms", "median_ms", "mean_ms",
              "p90_ms", "p99_ms", "min_ms", "std_ms", "peak_rss_mb", "size_bytes", "macs", "params", "runs")


def baseline_index(results: list[ProfileResult], baseline: Path | None) -> int:
    """The row every ratio is relative to: the first row of the baseline model (default: the first row)."""
    if baseline is None:
        return 0
    for index, result in enumerate(results):
        if Path(result.path).resolve() == Path(baseline).resolve() or result.model == Path(baseline).name:
            return index
    raise DataError(f"--baseline {baseline} is not among the profiled models", "pass one of the MODEL arguments")


def ratios(results: list[ProfileResult], base: int) -> list[float | None]:
    """Median latency of each row over the baseline row's; rows on another phone compare to the baseline
    model on that phone (same threads and accelerator as the baseline row) when it was profiled there."""
    reference = results[base]
    out = []
    for result in results:
        same_place = [r for r in results if r.model == reference.model and r.device == result.device
                      and r.threads == reference.threads and r.accelerator == reference.accelerator]
        ref = same_place[0] if same_place else reference
        mine, theirs = _centre(result, ref), _centre(ref, result)
        out.append(mine / theirs if mine and theirs else None)
    return out


def _centre(result: ProfileResult, other: ProfileResult) -> float | None:
    """The median when both rows have one (MindSpore Lite's runner prints only min/avg/max), else the mean."""
    return result.median_ms if result.median_ms and other.median_ms else result.mean_ms


def _num(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _count(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1e6:.1f}M" if value >= 1e5 else f"{value / 1e3:.1f}k"


def build_table(results: list[ProfileResult], base: int, note: str) -> Table:
    on_device = any(r.device for r in results)
    table = Table(title="Latency (ms)", caption=note)
    columns = ["model", "runtime", "thr"] + (["device", "acc"] if on_device else []) + [
        "init", "first", "median", "mean", "p90", "p99", "min", "std", "x base", "RSS MB", "MB", "MACs", "params"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "runtime", "device", "acc") else "right")
    for index, (result, ratio) in enumerate(zip(results, ratios(results, base))):
        device = []
        if on_device:
            hot = " (hot)" if result.device_info.get("hot") else ""
            device = [f"{result.device_info.get('model', result.device)}{hot}", result.accelerator]
        table.add_row(
            result.model + (" *" if index == base else ""), result.runtime, str(result.threads or "-"), *device,
            _num(result.init_ms, 1), _num(result.first_ms), _num(result.median_ms), _num(result.mean_ms),
            _num(result.p90_ms), _num(result.p99_ms), _num(result.min_ms), _num(result.std_ms),
            _num(ratio), _num(result.peak_rss_mb, 1), _num(result.size_bytes / 1e6), _count(result.macs),
            _count(result.params))
    return table


def ops_table(result: ProfileResult, top: int = 10) -> Table:
    table = Table(title=f"Slowest ops: {result.label}")
    for column in ("op", "type", "avg ms", "%", "count"):
        table.add_column(column, justify="left" if column in ("op", "type") else "right")
    for op in sorted(result.ops, key=lambda o: -o.avg_ms)[:top]:
        table.add_row(op.name, op.kind, f"{op.avg_ms:.3f}", f"{op.percent:.1f}", str(op.count))
    return table


def print_results(results: list[ProfileResult], base: int, note: str, console: Console | None = None) -> None:
    console = console or Console(width=max(Console().width, 160))  # 17 columns: never squash them to "…"
    console.print(build_table(results, base, note))
    for result in results:
        if result.ops:
            console.print(ops_table(result))


def save_json(results: list[ProfileResult], path: Path, base: int, note: str) -> Path:
    rows = [dict(r.to_dict(), ratio_to_baseline=ratio) for r, ratio in zip(results, ratios(results, base))]
    return write_json(path, {"note": note, "baseline": results[base].model, "results": rows})


def save_csv(results: list[ProfileResult], path: Path, base: int) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_FIELDS + ("ratio_to_baseline",))
    for result, ratio in zip(results, ratios(results, base)):
        data = result.to_dict()
        writer.writerow([data[k] for k in CSV_FIELDS] + [ratio])
    return write_text(path, buffer.getvalue())


def accuracies(models: list[Path], validation: Path | None) -> dict[str, float]:
    """Top-1 per model file name: from a `validate --json` file (one object per line, or a list), else from
    the model cards (`val_top1`)."""
    found: dict[str, float] = {}
    if validation is not None:
        try:
            text = Path(validation).read_text()
            records = json.loads(text) if text.lstrip().startswith("[") else \
                [json.loads(line) for line in text.splitlines() if line.strip()]
            found = {Path(r["model"]).name: float(r["top1"]) for r in records}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"cannot read accuracies from {validation} ({type(exc).__name__})",
                            "pass the output of `mnv1-tk validate --json`, one object per line") from None
    from toolkit.card import load_card
    from toolkit.errors import ModelCardError

    for model in map(Path, models):
        if model.name not in found:
            try:
                top1 = load_card(model).extra.get("val_top1")
            except ModelCardError:
                top1 = None
            if top1 is not None:
                found[model.name] = float(top1)
    return found


def check_plot_accuracies(models: list[Path], validation: Path | None) -> None:
    """--plot needs the top-1 of at least one model; checked before profiling, not after it."""
    if not accuracies(models, validation):
        raise DataError("no accuracy for any profiled model (neither on its card nor in a validate file)",
                        "pass --accuracy FILE from `mnv1-tk validate --json`")


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both lower latency and higher accuracy."""
    front = []
    for i, (lat, acc) in enumerate(points):
        if not any((l2 <= lat and a2 >= acc) and (l2 < lat or a2 > acc) for l2, a2 in points):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def save_plot(results: list[ProfileResult], path: Path, validation: Path | None = None) -> Path:
    """Median latency against top-1, the Pareto frontier joined and marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top1 = accuracies([Path(r.path) for r in results], validation)
    rows = [r for r in results if r.model in top1 and r.median_ms]
    if not rows:
        raise DataError("no accuracy for any profiled model with a latency (neither on its card nor in a validate "
                        "file)", "pass --accuracy FILE from `mnv1-tk validate --json`")
    points = [(r.median_ms, 100 * top1[r.model]) for r in rows]
    front = pareto_front(points)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.scatter(*zip(*points), color="tab:gray", label="profiled")
    axes.plot([points[i][0] for i in front], [points[i][1] for i in front], "o-", color="tab:red",
              label="Pareto frontier")
    for row, (x, y) in zip(rows, points):
        axes.annotate(f"{row.model} x{row.threads}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    axes.set_xlabel("median latency (ms)")
    axes.set_ylabel("top-1 (%)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    from toolkit.fsutil import write_bytes

    return write_bytes(path, buffer.getvalue())
