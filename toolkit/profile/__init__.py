"""Latency profiling on this host and on Android phones over adb (`mnv1-tk profile`).

    results = profile([Path("m.int8.tflite"), Path("m.fp32.tflite")], ProfileOptions(threads=(1, 2)))

Host rows come from `toolkit.runtimes` (any registered runtime), device rows from the official
benchmark binaries (LiteRT `benchmark_model`, MindSpore Lite `benchmark`) run through `adb`.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.errors import ConfigError, ModelFileError
from toolkit.profile.results import ACCELERATORS, OpTime, ProfileOptions, ProfileResult, summarize

__all__ = ["OpTime", "ProfileOptions", "ProfileResult", "profile", "profile_command", "summarize"]


def check_options(models: list[Path], options: ProfileOptions) -> None:
    if not models:
        raise ConfigError("no model to profile", "pass one or more model files")
    for path in models:
        if not Path(path).is_file():
            raise ModelFileError(f"model file {path} does not exist", "check the path")
    if options.runs < 1 or options.warmup < 0:
        raise ConfigError(f"--runs {options.runs} / --warmup {options.warmup} out of range",
                          "use --runs >= 1 and --warmup >= 0")
    if not options.threads or min(options.threads) < 1:
        raise ConfigError(f"--threads {','.join(map(str, options.threads))} is not valid",
                          "pass thread counts >= 1, e.g. --threads 1,2")
    if options.accelerator.split(":")[0] not in ACCELERATORS or \
            (":" in options.accelerator and not options.accelerator.startswith("nnapi:")):
        raise ConfigError(f"unknown accelerator {options.accelerator!r}", f"use one of {', '.join(ACCELERATORS)}")
    if options.device is None and options.accelerator != "cpu":
        raise ConfigError(f"--accelerator {options.accelerator} needs a phone", "add --device SERIAL|auto|all")
    if options.device is None and options.ops:
        raise ConfigError("--ops reads the on-device runners' op profiling", "add --device SERIAL|auto|all")


def profile(models: list[Path], options: ProfileOptions = ProfileOptions(), progress=None) -> list[ProfileResult]:
    """Profile every model (at every thread count) on this host, or on phones when `options.device` is set.

    `progress(done, total, description)` is called as work completes.
    """
    models = [Path(m) for m in models]
    check_options(models, options)
    if options.device is None:
        from toolkit.profile.host import profile_host

        return profile_host(models, options, progress)
    from toolkit.profile.device import profile_devices

    return profile_devices(models, options, progress)


def profile_command(models: list[Path], options: ProfileOptions, *, baseline: Path | None = None,
                    json_path: Path | None = None, csv_path: Path | None = None, plot_path: Path | None = None,
                    accuracy_path: Path | None = None) -> list[ProfileResult]:
    """`mnv1-tk profile`: profile() under a progress bar, then the table and the requested files."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from toolkit.profile import report
    from toolkit.profile.host import INTERLEAVING_NOTE

    models = [Path(m) for m in models]
    if baseline is not None and Path(baseline) not in models:
        models.append(Path(baseline))
    if plot_path:
        report.check_plot_accuracies(models, accuracy_path)
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("profiling", total=None)

        def progress(done: int, total: int, description: str) -> None:
            bar.update(task, completed=done, total=total, description=description)

        results = profile(models, options, progress)
    base = report.baseline_index(results, baseline)
    note = (INTERLEAVING_NOTE if options.device is None else
            "each device runs its models one after another with the official runner; devices run in parallel")
    note += (f"; {options.runs} timed runs after {options.warmup} warm-up; x base = median / median of the * row "
             f"(mean where a runner prints no median)")
    report.print_results(results, base, note)
    if json_path:
        report.save_json(results, json_path, base, note)
    if csv_path:
        report.save_csv(results, csv_path, base)
    if plot_path:
        report.save_plot(results, plot_path, accuracy_path)
    return results
