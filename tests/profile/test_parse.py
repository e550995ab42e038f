"""The runner parsers on real recorded outputs (tests/profile/fixtures/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.profile.parse import RunnerOutputError, parse_litert, parse_mslite

FIXTURES = Path(__file__).parent / "fixtures"


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.mark.parametrize("name, expected", [
    ("litert_android_peak_memory.txt", dict(count=50, init_ms=16.242, first_ms=360.262, mean_ms=249.684,
                                            median_ms=None, min_ms=247.067, std_ms=1.442, peak_memory_mb=138.809)),
    ("litert_info_p5_median.txt", dict(count=50, init_ms=5.579, first_ms=1357.602, mean_ms=1240.27,
                                       median_ms=1239.807, min_ms=1238.588, peak_memory_mb=109.832)),
    ("litert_android_aarch64_termux.txt", dict(count=1000, init_ms=119.515, median_ms=51.891, max_ms=686.105)),
    ("litert_op_profiling_riscv.txt", dict(count=50, threads=4, mean_ms=2950.34, peak_memory_mb=46.0859)),
    ("litert_average_old.txt", dict(count=50, init_ms=38.467, first_ms=None, mean_ms=79.7609, min_ms=77.385)),
    ("litert_all_same.txt", dict(count=3, mean_ms=1.0, min_ms=1.0, max_ms=1.0, median_ms=1.0, std_ms=0.0)),
])
def test_litert_outputs(name, expected):
    report = parse_litert(read(name))
    for key, value in expected.items():
        assert getattr(report, key) == (pytest.approx(value) if isinstance(value, float) else value), key


def test_litert_op_profiles():
    regular = parse_litert(read("litert_op_profiling_riscv.txt")).ops  # the regular runs, not initialisation
    assert [op.kind for op in regular][:3] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"]
    slowest = max(regular, key=lambda op: op.avg_ms)
    assert (slowest.name, slowest.avg_ms, slowest.percent) == (
        "[MobilenetV1/MobilenetV1/Conv2d_5_pointwise/Relu6]:10", 277.374, 9.403)
    by_type = parse_litert(read("litert_average_old.txt")).ops  # only the summary by node type
    assert [(op.kind, op.count, op.avg_ms) for op in by_type][:2] == [("CONV_2D", 15, 1.406),
                                                                       ("DEPTHWISE_CONV_2D", 13, 0.169)]


@pytest.mark.parametrize("name, expected", [
    ("mslite_benchmark_numthreads.txt", (2, 72.228996, 72.556, 73.094002)),  # "numThreads", "MaxRuntime"
    ("mslite_benchmark_perf.txt", (1, 0.104, 0.116, 0.179)),  # "NumThreads", "MaxRunTime"
])
def test_mslite_outputs(name, expected):
    report = parse_mslite(read(name))
    assert (report.threads, report.min_ms, report.mean_ms, report.max_ms) == pytest.approx(expected)


def test_mslite_time_profiling():
    ops = parse_mslite(read("mslite_time_profiling.txt") + read("mslite_benchmark_numthreads.txt")).ops
    assert len(ops) == 16
    assert (ops[0].name, ops[0].avg_ms, ops[0].percent, ops[0].count) == (
        "conv2d_1/convolution", 2.2648, pytest.approx(82.4012), 10)


def test_no_result_is_an_error():
    with pytest.raises(RunnerOutputError):
        parse_litert("ERROR: Failed to mmap model x.tflite\n")
    with pytest.raises(RunnerOutputError):
        parse_mslite(read("mslite_time_profiling.txt"))
