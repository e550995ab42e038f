"""Where MindSpore Lite comes from: the 2.0 wheel (through the shim) or an official package (`MSLITE_HOME`).

Both take the same `ConvertJob` (same config file, same calibration files) and both run `.ms` models
through the shim in a worker process; they differ only in how the converter is called:
    WheelBackend     the converter library, through the shim, in a worker process;
    OfficialBackend  `tools/converter/converter/converter_lite`, as a subprocess; its shim links the
                     package's `runtime/lib/libmindspore-lite.so`, and `tools/benchmark/benchmark`
                     checks the setup.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.mslite.client import WorkerProcess, log_tail
from converters.mslite.install import Installation
from toolkit.errors import BackendError


@dataclass(frozen=True)
class ConvertJob:
    """One converter run. The converter writes `output_prefix` + ".ms"."""

    fmk: str  # "onnx" | "tflite"
    model: Path
    output_prefix: Path
    config: Path | None = None
    input_format: str | None = None  # "NCHW" | "NHWC" | None (converter default: NHWC)

    @property
    def output(self) -> Path:
        return Path(str(self.output_prefix) + ".ms")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str
    format: str
    scale: float | None = None
    zero_point: int | None = None

    @classmethod
    def from_dict(cls, data: dict) -> "TensorSpec":
        return cls(data["name"], tuple(data["shape"]), data["dtype"], data["format"], data.get("scale"),
                   data.get("zero_point"))


class Session:
    """A `.ms` model built in its own worker process; `run` takes and returns the model's native arrays."""

    def __init__(self, shim: Path, model: Path, num_threads: int = 2):
        self.model = Path(model)
        self.worker = WorkerProcess(shim, purpose=f"running {self.model.name}")
        try:
            reply = self.worker.request("open", action=f"loading {self.model}", model=str(self.model),
                                        num_threads=num_threads,
                                        fix=f"check that {self.model.name} is a MindSpore Lite 2.0 .ms model, "
                                            f"e.g. from `mnv1-tk convert --to mslite`")
        except BackendError:
            self.worker.close()
            raise
        self.inputs = [TensorSpec.from_dict(t) for t in reply["inputs"]]
        self.outputs = [TensorSpec.from_dict(t) for t in reply["outputs"]]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """[N, ...] in the model's input layout and dtype -> first output as float32 [N, ...]."""
        return self.worker.run(batch, action=f"running {self.model.name}")

    def set_timing_input(self, batch: np.ndarray) -> None:
        """The native input that `time_once` runs on (kept in the worker)."""
        path = self.worker.scratch / "timing_input.npy"
        np.save(path, batch)
        self.worker.request("set_timing_input", action=f"loading an input for {self.model.name}", input=str(path))

    def time_once(self) -> float:
        """One inference on the timing input, timed inside the worker, in milliseconds."""
        return float(self.worker.request("time", action=f"timing {self.model.name}")["ms"])

    def peak_rss_mb(self) -> float:
        """The worker's peak resident memory."""
        return float(self.worker.request("peak_rss", action="reading the worker's memory")["mb"])

    def close(self) -> None:
        self.worker.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Backend:
    name = ""
    shim: Path

    def convert(self, job: ConvertJob) -> None:
        raise NotImplementedError

    def open(self, model: Path, num_threads: int = 2) -> Session:
        return Session(self.shim, model, num_threads)


class WheelBackend(Backend):
    """The libraries from the mindspore-lite 2.0.0 wheel, set up by `install.setup_wheel`."""

    name = "mindspore-lite 2.0.0 (PyPI wheel)"

    def __init__(self, install: Installation):
        self.install = install
        self.shim = install.shim

    def convert(self, job: ConvertJob) -> None:
        with WorkerProcess(self.shim, purpose="converting") as worker:
            worker.request("convert", action=f"converting {job.model.name}",
                           fix=f"check that {job.model.name} is a valid {job.fmk.upper()} model",
                           fmk=job.fmk, model=str(job.model), output_prefix=str(job.output_prefix),
                           config=str(job.config) if job.config else None, input_format=job.input_format)


class OfficialBackend(Backend):
    """An official MindSpore Lite package unpacked at `home` (`MSLITE_HOME`)."""

    def __init__(self, home: Path, shim: Path):
        self.home = Path(home)
        self.shim = shim
        self.name = f"MindSpore Lite package at {self.home}"

    @property
    def converter(self) -> Path:
        return self.home / "tools" / "converter" / "converter" / "converter_lite"

    @property
    def benchmark(self) -> Path:
        return self.home / "tools" / "benchmark" / "benchmark"

    @property
    def runtime_include(self) -> Path:
        return self.home / "runtime"

    @property
    def runtime_lib_dirs(self) -> list[Path]:
        """runtime/lib plus the third-party library folders the package ships (glog, dnnl)."""
        return [self.home / "runtime" / "lib"] + sorted(p for p in (self.home / "runtime" / "third_party").glob("*/lib")
                                                        if p.is_dir())

    def check_layout(self) -> None:
        needed = [self.converter, self.benchmark, self.home / "runtime" / "lib" / "libmindspore-lite.so",
                  self.home / "runtime" / "include" / "api" / "model.h"]
        missing = [str(p.relative_to(self.home)) for p in needed if not p.exists()]
        if missing:
            raise BackendError(f"MSLITE_HOME={self.home} is not a MindSpore Lite package: no {', '.join(missing)}",
                               "point MSLITE_HOME at an unpacked mindspore-lite-*-linux-x64 package, or unset it "
                               "to use the PyPI wheel")

    def converter_command(self, job: ConvertJob) -> list[str]:
        command = [str(self.converter), f"--fmk={job.fmk.upper()}", f"--modelFile={job.model}",
                   f"--outputFile={job.output_prefix}"]
        if job.config:
            command.append(f"--configFile={job.config}")
        if job.input_format:
            command.append(f"--inputDataFormat={job.input_format}")
        return command

    def benchmark_command(self, model: Path, input_file: Path, expected_file: Path, num_threads: int = 2,
                          accuracy_threshold: float = 0.5) -> list[str]:
        """`benchmark` runs `model` on a raw input file and compares with `expected_file` (see
        `write_benchmark_data`); it exits non-zero when the mean relative error exceeds the threshold (%)."""
        return [str(self.benchmark), f"--modelFile={model}", f"--inDataFile={input_file}",
                f"--benchmarkDataFile={expected_file}", f"--accuracyThreshold={accuracy_threshold}",
                f"--numThreads={num_threads}", "--device=CPU"]

    def environment(self, *lib_dirs: Path) -> dict:
        paths = [str(d) for d in lib_dirs] + [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
        return dict(os.environ, LD_LIBRARY_PATH=":".join(paths), GLOG_v="2")

    def _run(self, command: list[str], env: dict, action: str, fix: str) -> None:
        """Run a package tool; a failure keeps its log in the temp directory and names it."""
        with tempfile.NamedTemporaryFile(prefix=f"mnv1tk-{Path(command[0]).name}-", suffix=".log",
                                         delete=False) as log:
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
        if code == 0:
            os.unlink(log.name)
            return
        tail = log_tail(Path(log.name))
        raise BackendError(f"{Path(command[0]).name} failed (exit {code}) while {action}"
                           + (f" [log: {tail}]" if tail else ""), f"{fix}; full log: {log.name}")

    def convert(self, job: ConvertJob) -> None:
        self._run(self.converter_command(job), self.environment(self.home / "tools" / "converter" / "lib"),
                  f"converting {job.model.name}", f"check that {job.model.name} is a valid {job.fmk.upper()} model")

    def check_with_benchmark(self, model: Path, input_file: Path, expected_file: Path) -> None:
        self._run(self.benchmark_command(model, input_file, expected_file), self.environment(*self.runtime_lib_dirs),
                  f"benchmarking {model.name}", f"check the package in {self.home}")


def write_benchmark_data(path: Path, outputs: dict[str, np.ndarray]) -> Path:
    """The `--benchmarkDataFile` text format: per output a line `name ndims dim...`, then a line of values."""
    lines = []
    for name, value in outputs.items():
        lines.append(" ".join([name, str(value.ndim), *map(str, value.shape)]))
        lines.append(" ".join(f"{v:.9g}" for v in np.asarray(value, np.float32).ravel()))
    path.write_text("\n".join(lines) + "\n")
    return path
