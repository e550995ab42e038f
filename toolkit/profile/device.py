"""Latency on Android phones with the official runners, through the real `adb`.

For each device (one worker thread per device, all devices in parallel): read the device info, make
/data/local/tmp/mnv1-tk/, push the runner (and its libraries) and the models, run the runner for each
(model, thread count) under `timeout` (and `taskset` when pinned), parse its output, and remove the
folder again, also when something fails.
"""

from __future__ import annotations

import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from toolkit.android.adb import Adb, pick_devices
from toolkit.android.runners import Runner, find_runner
from toolkit.errors import ConfigError, DeviceError
from toolkit.profile.model_info import model_stats
from toolkit.profile.parse import RunnerOutputError, parse_litert, parse_mslite
from toolkit.profile.results import ProfileOptions, ProfileResult

REMOTE_DIR = "/data/local/tmp/mnv1-tk"
TIMEOUT_EXIT = 124  # what `timeout` returns when it had to stop the command
HOT_CELSIUS = 40.0  # battery temperature at which a phone starts to throttle
RUNTIME_OF_SUFFIX = {".tflite": "litert", ".ms": "mslite"}
MSLITE_DEVICE = {"cpu": "CPU", "gpu": "GPU", "npu": "NPU"}


def _runtime(path: Path, options: ProfileOptions) -> str:
    runtime = RUNTIME_OF_SUFFIX.get(path.suffix.lower())
    if runtime is None:
        raise ConfigError(f"{path.name} cannot run on a phone", "profile .tflite (LiteRT) or .ms (MindSpore Lite) "
                                                                "files on a device; convert it with `mnv1-tk convert`")
    if options.runtime and options.runtime != runtime:
        raise ConfigError(f"--runtime {options.runtime} cannot run {path.name}",
                          "drop --runtime or pass matching files")
    accelerator = options.accelerator.split(":")[0]
    if runtime == "litert" and accelerator == "npu":
        raise ConfigError(f"LiteRT reaches an NPU through NNAPI, not --accelerator npu ({path.name})",
                          "use --accelerator nnapi or nnapi:ACCELERATOR_NAME (e.g. nnapi:qti-htp)")
    if runtime == "mslite" and accelerator == "nnapi":
        raise ConfigError(f"MindSpore Lite has no NNAPI backend ({path.name})",
                          "use --accelerator cpu, gpu or npu (Kirin HiAI) for .ms files")
    return runtime


def litert_command(runner: str, model: str, threads: int, options: ProfileOptions) -> list[str]:
    accelerator, _, nnapi_name = options.accelerator.partition(":")
    argv = [runner, f"--graph={model}", f"--num_threads={threads}", f"--num_runs={options.runs}",
            f"--warmup_runs={options.warmup}", f"--use_xnnpack={str(options.xnnpack and accelerator == 'cpu').lower()}",
            "--report_peak_memory_footprint=true"]
    if accelerator == "gpu":
        argv.append("--use_gpu=true")
    if accelerator == "nnapi":
        argv.append("--use_nnapi=true")
        if nnapi_name:
            argv.append(f"--nnapi_accelerator_name={nnapi_name}")
    if options.ops:
        argv.append("--enable_op_profiling=true")
    return argv


def mslite_command(runner: str, model: str, threads: int, options: ProfileOptions, fp16: bool) -> list[str]:
    argv = [runner, f"--modelFile={model}", f"--device={MSLITE_DEVICE[options.accelerator]}",
            f"--numThreads={threads}", f"--loopCount={options.runs}", f"--warmUpLoopCount={options.warmup}",
            f"--cpuBindMode={0 if options.pin_cpus else 1}", f"--enableFp16={str(fp16).lower()}"]
    if options.ops:
        argv.append("--timeProfiling=true")
    return argv


def device_info(adb: Adb, serial: str) -> dict:
    """Model, SoC, Android version, ABI, per-core max frequency (MHz) and battery temperature (deg C)."""
    props = dict(re.findall(r"^\[([^\]]+)\]: \[([^\]]*)\]", adb.check_shell(serial, ["getprop"], "getprop"), re.M))
    freqs = adb.shell(serial, "grep . /sys/devices/system/cpu/cpu*/cpufreq/cpuinfo_max_freq").output
    per_core = {int(m[1]): int(m[2]) // 1000 for m in re.finditer(r"cpu(\d+)/cpufreq/cpuinfo_max_freq:(\d+)", freqs)}
    return {"serial": serial, "model": props.get("ro.product.model", "?"),
            "soc": props.get("ro.soc.model") or props.get("ro.board.platform", "?"),
            "android": props.get("ro.build.version.release", "?"), "sdk": props.get("ro.build.version.sdk", "?"),
            "abi": props.get("ro.product.cpu.abi", "?"),
            "max_freq_mhz": [per_core[c] for c in sorted(per_core)], "battery_c_before": battery_celsius(adb, serial)}


def battery_celsius(adb: Adb, serial: str) -> float | None:
    result = adb.shell(serial, ["cat", "/sys/class/power_supply/battery/temp"])
    try:
        return int(result.output.strip()) / 10 if result.code == 0 else None
    except ValueError:
        return None


class _DeviceJob:
    """Everything done on one phone."""

    def __init__(self, adb: Adb, serial: str, models: list[Path], options: ProfileOptions,
                 runners: dict[str, Runner], tick):
        self.adb, self.serial, self.models, self.options = adb, serial, models, options
        self.runners, self.tick = runners, tick

    def _push(self, local: Path, name: str | None = None) -> str:
        remote = f"{REMOTE_DIR}/{name or local.name}"
        self.adb.push(self.serial, str(local), remote)
        return remote

    def run(self) -> list[ProfileResult]:
        info = device_info(self.adb, self.serial)
        if info["abi"] != "arm64-v8a":
            raise DeviceError(f"device {self.serial} is {info['abi']}, the runners are android_aarch64",
                              "use a 64-bit ARM phone")
        self.adb.check_shell(self.serial, ["rm", "-rf", REMOTE_DIR], "cleaning /data/local/tmp/mnv1-tk")
        try:
            self.adb.check_shell(self.serial, ["mkdir", "-p", REMOTE_DIR], "creating /data/local/tmp/mnv1-tk")
            binaries = {}
            for kind, runner in self.runners.items():
                binaries[kind] = self._push(runner.binary, runner.binary.name)
                for library in runner.libraries:
                    if library.name not in [p.name for p in runner.hiai] or self.options.accelerator == "npu":
                        self._push(library)
                self.adb.check_shell(self.serial, ["chmod", "755", binaries[kind]], f"chmod of {runner.binary.name}")
            results = []
            for model in self.models:
                remote = self._push(model)
                for threads in self.options.threads:
                    results.append(self._profile(model, remote, threads, binaries, info))
                    self.tick(f"{self.serial}: {model.name} x{threads}")
        finally:
            self.adb.shell(self.serial, ["rm", "-rf", REMOTE_DIR])
        after = battery_celsius(self.adb, self.serial)
        for result in results:
            result.device_info.update(battery_c_after=after, hot=after is not None and after >= HOT_CELSIUS)
        return results

    def _profile(self, model: Path, remote: str, threads: int, binaries: dict, info: dict) -> ProfileResult:
        options = self.options
        runtime = _runtime(model, options)
        if runtime == "litert":
            argv = litert_command(binaries["litert"], remote, threads, options)
        else:
            from toolkit.card import load_card
            from toolkit.errors import ModelCardError

            try:
                fp16 = load_card(model).precision == "fp16"
            except ModelCardError:
                fp16 = False
            argv = ["env", f"LD_LIBRARY_PATH={REMOTE_DIR}"] + mslite_command(binaries["mslite"], remote, threads,
                                                                              options, fp16)
        prefix = ["timeout", f"{options.timeout_s:g}"] + (["taskset", options.pin_cpus] if options.pin_cpus else [])
        if argv[0] == "env":
            argv = argv[:2] + prefix + argv[2:]
        else:
            argv = prefix + argv
        result = self.adb.shell(self.serial, argv, timeout=options.timeout_s + 60)
        name = "benchmark_model" if runtime == "litert" else "MindSpore Lite benchmark"
        if result.code == TIMEOUT_EXIT:
            raise DeviceError(f"{name} timed out after {options.timeout_s:g} s on {self.serial} ({model.name})",
                              "raise --timeout or lower --runs")
        if result.code != 0:
            raise DeviceError(f"{name} failed on {self.serial} for {model.name} with exit code {result.code}: "
                              f"{result.tail()}", "check that the model runs with this runner version and accelerator")
        try:
            report = parse_litert(result.output) if runtime == "litert" else parse_mslite(result.output)
        except RunnerOutputError as exc:
            raise DeviceError(f"{name} on {self.serial} printed no result for {model.name} ({exc}): {result.tail()}",
                              "run it by hand with `adb shell` to see its full output") from None
        macs, params = model_stats(model)
        return ProfileResult(
            model=model.name, runtime=runtime, threads=threads, accelerator=options.accelerator, device=self.serial,
            init_ms=report.init_ms, first_ms=report.first_ms, median_ms=report.median_ms,
            mean_ms=report.mean_ms, p90_ms=None, p99_ms=None, min_ms=report.min_ms, std_ms=report.std_ms,
            peak_rss_mb=report.peak_memory_mb, size_bytes=os.path.getsize(model), macs=macs, params=params,
            runs=report.count or options.runs, path=str(model),
            device_info=dict(info, runner_version=self.runners[runtime].version),
            ops=report.ops)


def profile_devices(models: list[Path], options: ProfileOptions, progress=None) -> list[ProfileResult]:
    """Profile `models` on the phones named by `options.device` (a serial, "auto" or "all"), in parallel."""
    kinds = {_runtime(m, options) for m in models}
    runners = {kind: find_runner(kind) for kind in sorted(kinds)}
    if options.accelerator == "npu" and "mslite" in runners and not runners["mslite"].hiai:
        raise ConfigError("the MindSpore Lite package in the cache has no HiAI libraries for --accelerator npu",
                          "install a mindspore-lite-*-android-aarch64 package that ships runtime/third_party/hiai_ddk")
    adb = Adb()
    serials = pick_devices(adb.devices(), options.device)
    total, done, lock = len(serials) * len(models) * len(options.threads), 0, threading.Lock()

    def tick(description: str) -> None:
        nonlocal done
        with lock:
            done += 1
            if progress:
                progress(done, total, description)

    jobs = [_DeviceJob(adb, serial, models, options, runners, tick) for serial in serials]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(job.run) for job in jobs]
        results = []
        for future in futures:
            results += future.result()  # the first device's error is raised after every worker has finished
    return results
