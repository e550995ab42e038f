"""Latency on this host, through the runtime registry (`toolkit.runtimes.load_predictor`).

Every (model, thread count) pair is loaded once (init time), run once (first inference), warmed up,
then timed in rounds: each round runs every pair once, in an order reversed every round, so that
drift on a shared machine (other jobs, frequency scaling, heat) falls on all of them alike.
"""

from __future__ import annotations

import inspect
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from toolkit.errors import ConfigError
from toolkit.profile.model_info import model_stats
from toolkit.profile.results import ProfileOptions, ProfileResult, summarize
from toolkit.runtimes import load_predictor, runtime_for

INTERLEAVING_NOTE = ("runs interleaved round robin across all rows, order reversed every round, "
                     "so machine drift hits every row alike")


@dataclass
class _Subject:
    path: Path
    runtime: str
    threads: int  # 0: the runtime has no thread setting
    predictor: object = None
    timer: Callable[[], float] | None = None
    init_ms: float = 0.0
    first_ms: float = 0.0
    peak_rss_mb: float | None = None
    times: list | None = None


def _vm_kb(field: str) -> int:
    """A field of /proc/self/status in kB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the next peak is this model's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def load_kwargs(runtime_cls, threads: int, xnnpack: bool) -> dict:
    """The load options a runtime accepts: num_threads, and builtin_only for LiteRT without XNNPACK."""
    accepted = inspect.signature(runtime_cls.load).parameters
    kwargs = {}
    if "num_threads" in accepted and threads:
        kwargs["num_threads"] = threads
    if not xnnpack and "builtin_only" in accepted:
        kwargs["builtin_only"] = True
    return kwargs


def _subjects(models: list[Path], options: ProfileOptions) -> list[_Subject]:
    subjects = []
    for path in models:
        runtime_cls = runtime_for(path)
        if options.runtime and runtime_cls.name.split("-")[0] != options.runtime:  # mindspore-mindir: mindspore
            raise ConfigError(f"--runtime {options.runtime} cannot run {path.name} (a {path.suffix} file runs in "
                              f"{runtime_cls.name})", f"drop --runtime or pass {options.runtime} models only")
        has_threads = "num_threads" in inspect.signature(runtime_cls.load).parameters
        for threads in (options.threads if has_threads else (0,)):
            subjects.append(_Subject(path, runtime_cls.name, threads))
    return subjects


def _sample_batch(predictor) -> np.ndarray:
    size = predictor.card.image_size
    return np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)


def profile_host(models: list[Path], options: ProfileOptions, progress=None) -> list[ProfileResult]:
    """Profile `models` on this host; `progress(advance, total, description)` is called as runs complete."""
    subjects = _subjects(models, options)
    total = len(subjects) * (2 + options.warmup + options.runs)
    done = 0

    def step(description: str, count: int = 1) -> None:
        nonlocal done
        done += count
        if progress:
            progress(done, total, description)

    with ExitStack() as stack:
        for subject in subjects:
            runtime_cls = runtime_for(subject.path)
            rss_before = _vm_kb("VmRSS")
            _reset_peak_rss()
            start = time.perf_counter()
            subject.predictor = stack.enter_context(
                load_predictor(subject.path, **load_kwargs(runtime_cls, subject.threads, options.xnnpack)))
            subject.init_ms = (time.perf_counter() - start) * 1e3
            step(f"loaded {subject.path.name}")
            subject.timer = subject.predictor.inference_timer(_sample_batch(subject.predictor))
            subject.first_ms = subject.timer()
            for _ in range(options.warmup):
                subject.timer()
            step(f"warmed up {subject.path.name}", 1 + options.warmup)
            child_peak = subject.predictor.peak_rss_mb()
            subject.peak_rss_mb = child_peak if child_peak is not None else \
                max(_vm_kb("VmHWM") - rss_before, 0) / 1024
            subject.times = []
        for round_index in range(options.runs):
            order = subjects if round_index % 2 == 0 else subjects[::-1]
            for subject in order:
                subject.times.append(subject.timer())
            step(f"round {round_index + 1}/{options.runs}", len(subjects))
    stats = {path: model_stats(path) for path in dict.fromkeys(s.path for s in subjects)}
    results = []
    for subject in subjects:
        macs, params = stats[subject.path]
        results.append(ProfileResult(
            model=subject.path.name, runtime=subject.runtime + ("" if options.xnnpack or subject.runtime != "litert"
                                                                else "-builtin"),
            threads=subject.threads, accelerator="cpu", device=None, init_ms=subject.init_ms,
            first_ms=subject.first_ms, **summarize(subject.times), peak_rss_mb=subject.peak_rss_mb,
            size_bytes=os.path.getsize(subject.path), macs=macs, params=params, runs=options.runs,
            path=str(subject.path)))
    return results
