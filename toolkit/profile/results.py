"""What a profile run takes and returns: plain, serialisable data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

ACCELERATORS = ("cpu", "gpu", "nnapi", "npu")


@dataclass(frozen=True)
class ProfileOptions:
    """How to profile.

    runtime: check that every model runs in this runtime (None: chosen by suffix).
    threads: thread counts; every model is profiled at each.
    xnnpack: LiteRT's XNNPACK delegate (False: the built-in kernels).
    device: None profiles on this host; an adb serial, "auto" (the only device) or "all".
    accelerator: on a device, cpu | gpu | nnapi | npu.
    ops: per-op profile (on a device, from the runner's own op profiling).
    pin_cpus: on a device, `taskset` mask (hex, e.g. "f0") for the runner; None: no pinning.
    timeout_s: on a device, the runner's time limit per model.
    """

    runtime: str | None = None
    threads: tuple[int, ...] = (1,)
    runs: int = 50
    warmup: int = 5
    xnnpack: bool = True
    device: str | None = None
    accelerator: str = "cpu"
    ops: bool = False
    pin_cpus: str | None = None
    timeout_s: float = 600.0


@dataclass(frozen=True)
class OpTime:
    """One op type (or node) in a per-op profile."""

    name: str
    kind: str
    avg_ms: float
    percent: float
    count: int = 1


@dataclass
class ProfileResult:
    """One (model, runtime, threads, accelerator, device) measurement; times in milliseconds."""

    model: str
    runtime: str
    threads: int
    accelerator: str
    device: str | None
    init_ms: float | None
    first_ms: float | None
    median_ms: float | None
    mean_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    min_ms: float | None
    std_ms: float | None
    peak_rss_mb: float | None
    size_bytes: int
    macs: int | None
    params: int | None
    runs: int = 0
    path: str = ""
    device_info: dict = field(default_factory=dict)
    ops: list[OpTime] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ops"] = [asdict(op) for op in self.ops]
        return data

    @property
    def label(self) -> str:
        where = f" @{self.device}" if self.device else ""
        return f"{self.model} {self.runtime}/{self.accelerator} x{self.threads}{where}"


def summarize(times_ms: list[float]) -> dict[str, float]:
    """median, mean, p90, p99, min and std (population) of the timed runs."""
    t = np.asarray(times_ms, dtype=np.float64)
    return {"median_ms": float(np.median(t)), "mean_ms": float(t.mean()), "p90_ms": float(np.percentile(t, 90)),
            "p99_ms": float(np.percentile(t, 99)), "min_ms": float(t.min()), "std_ms": float(t.std())}
