"""Parsers for the official runners' output: LiteRT `benchmark_model` and MindSpore Lite `benchmark`.

Both return a `RunnerReport` in milliseconds. Fields a runner does not print stay None; nothing is
estimated. Real outputs they are tested on are in tests/profile/fixtures/ (sources in SOURCES.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from toolkit.profile.results import OpTime

_NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
# Newer builds prefix every line with "INFO: "; logcat adds "I tflite  : ".
_PREFIX = re.compile(r"^\s*(?:\S+\s+\S+\s+\d+\s+\d+\s+)?(?:[IWE]\s+tflite\s*:\s*)?(?:INFO:\s*)?")


class RunnerOutputError(ValueError):
    """The text holds no timing result of the runner."""


@dataclass
class RunnerReport:
    count: int | None = None
    init_ms: float | None = None
    first_ms: float | None = None
    mean_ms: float | None = None
    median_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    std_ms: float | None = None
    peak_memory_mb: float | None = None
    threads: int | None = None
    ops: list[OpTime] = field(default_factory=list)


def _lines(text: str) -> list[str]:
    return [_PREFIX.sub("", line.rstrip("\r")) for line in text.splitlines()]


def _stat_fields(line: str) -> dict[str, str]:
    return dict(re.findall(rf"(\w+)=({_NUMBER})", line))


def parse_litert(text: str) -> RunnerReport:
    """`benchmark_model` output (any build since 2019, with or without `INFO: `)."""
    lines = _lines(text)
    report = RunnerReport()
    stats = [line for line in lines if line.startswith("count=")]
    if stats:
        timed = stats[-1]  # the last "count=" line is the timed runs (the first one the warm-up)
        values = {k: float(v) for k, v in _stat_fields(timed).items()}
        report.count = int(values["count"])
        if "(all same)" in timed or ("min" not in values and "curr" in values):
            report.min_ms = report.max_ms = report.mean_ms = report.median_ms = values["curr"] / 1e3
            report.std_ms = 0.0
        else:
            report.min_ms, report.max_ms = values["min"] / 1e3, values["max"] / 1e3
            report.mean_ms, report.std_ms = values["avg"] / 1e3, values["std"] / 1e3
            report.median_ms = values["median"] / 1e3 if "median" in values else None
    joined = "\n".join(lines)
    summary = re.search(rf"Inference timings in us: Init: ({_NUMBER}), First inference: ({_NUMBER}), "
                        rf"Warmup \(avg\): ({_NUMBER}), Inference \(avg\): ({_NUMBER})", joined)
    old = re.search(rf"Average inference timings in us: Warmup: ({_NUMBER}), Init: ({_NUMBER}), "
                    rf"(?:Inference|no stats): ({_NUMBER})", joined)
    if summary:
        report.init_ms, report.first_ms = float(summary[1]) / 1e3, float(summary[2]) / 1e3
        report.mean_ms = float(summary[4]) / 1e3
    elif old:
        report.init_ms, report.mean_ms = float(old[2]) / 1e3, float(old[3]) / 1e3
    if report.mean_ms is None:
        raise RunnerOutputError("no inference timings in the benchmark_model output")
    threads = re.search(r"Num threads: \[(\d+)\]", joined)
    report.threads = int(threads[1]) if threads else None
    report.peak_memory_mb = _litert_memory(joined)
    report.ops = parse_litert_ops(joined)
    return report


def _litert_memory(text: str) -> float | None:
    for pattern in (rf"Overall peak memory footprint \(MB\) via periodic monitoring: ({_NUMBER})",
                    rf"Peak memory footprint \(MB\): init={_NUMBER} overall=({_NUMBER})",
                    rf"Memory footprint delta from the start of the tool \(MB\): init={_NUMBER} overall=({_NUMBER})"):
        match = re.search(pattern, text)
        if match:
            return float(match[1])
    return None


def _table(lines: list[str], start: int) -> list[dict[str, str]]:
    """Rows of the tab-separated table whose header ("[node type] ...") is at lines[start]."""
    header = [cell.strip().strip("[]").lower() for cell in lines[start].split("\t") if cell.strip()]
    rows = []
    for line in lines[start + 1:]:
        cells = [cell.strip() for cell in line.split("\t") if cell.strip()]
        if len(cells) != len(header):
            break
        rows.append(dict(zip(header, cells)))
    return rows


def parse_litert_ops(text: str) -> list[OpTime]:
    """Per-node times of the regular (not initialisation) runs: the "Run Order" table, else the summary by
    node type."""
    marker = "Operator-wise Profiling Info for Regular Benchmark Runs:"
    section = text.split(marker, 1)[1] if marker in text else text
    lines = section.splitlines()
    for title, per_node in (("Run Order", True), ("Summary by node type", False)):
        for i, line in enumerate(lines):
            if f"== {title} ==" in line and i + 1 < len(lines):
                rows = _table(lines, i + 1)
                if rows:
                    return [OpTime(name=row["name"] if per_node else row["node type"], kind=row["node type"],
                                   avg_ms=float(row["avg ms"]),
                                   percent=float(row.get("%", row.get("avg %", "0")).rstrip("%")),
                                   count=int(row.get("count", 1))) for row in rows]
    return []


_MSLITE_RESULT = re.compile(
    rf"Model\s*=\s*(?P<model>[^,]+),\s*NumThreads\s*=\s*(?P<threads>\d+),\s*MinRunTime\s*=\s*(?P<min>{_NUMBER})\s*ms,"
    rf"\s*MaxRunTime\s*=\s*(?P<max>{_NUMBER})\s*ms,\s*AvgRunTime\s*=\s*(?P<avg>{_NUMBER})\s*ms", re.IGNORECASE)


def parse_mslite(text: str) -> RunnerReport:
    """MindSpore Lite `benchmark` output; the capitalisation of the result line varies across versions."""
    matches = list(_MSLITE_RESULT.finditer(text))
    if not matches:
        raise RunnerOutputError("no 'Model = ..., AvgRunTime = ...' line in the MindSpore Lite benchmark output")
    last = matches[-1]
    return RunnerReport(mean_ms=float(last["avg"]), min_ms=float(last["min"]), max_ms=float(last["max"]),
                        threads=int(last["threads"]), ops=parse_mslite_ops(text))


def parse_mslite_ops(text: str) -> list[OpTime]:
    """The `--timeProfiling` per-op table (opName avg(ms) percent calledTimes opTotalTime)."""
    lines = text.splitlines()
    ops = []
    for i, line in enumerate(lines):
        if re.match(r"\s*opName\s+avg\(ms\)", line):
            for row in lines[i + 1:]:
                cells = row.split()
                if len(cells) != 5 or not re.fullmatch(_NUMBER, cells[1]):
                    break
                ops.append(OpTime(name=cells[0], kind="", avg_ms=float(cells[1]), percent=100 * float(cells[2]),
                                  count=int(float(cells[3]))))
            break
    return ops
