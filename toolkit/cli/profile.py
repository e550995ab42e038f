"""`mnv1-tk profile`."""

from __future__ import annotations

from pathlib import Path

import click

from toolkit.cli import main


def _threads(ctx, param, value: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of thread counts") from None


@main.command(context_settings={"max_content_width": 110})
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--runtime", type=click.Choice(["litert", "mslite", "onnxruntime", "mindspore"]),
              help="Check that every model runs in this runtime (default: by suffix).")
@click.option("--threads", default="1", callback=_threads, show_default=True, help="Thread counts, e.g. 1,2.")
@click.option("--runs", type=int, default=50, show_default=True, help="Timed runs per model.")
@click.option("--warmup", type=int, default=5, show_default=True, help="Untimed runs first.")
@click.option("--xnnpack/--no-xnnpack", default=True, show_default=True, help="LiteRT's XNNPACK delegate.")
@click.option("--device", help="Profile on phones over adb: a serial, auto (the only one) or all.")
@click.option("--accelerator", type=click.Choice(["cpu", "gpu", "nnapi", "npu"]), default="cpu", show_default=True,
              help="On a device.")
@click.option("--ops", is_flag=True, help="On a device: the slowest ops from the runner's op profiling.")
@click.option("--pin", "pin_cpus", metavar="MASK", help="On a device: taskset CPU mask (hex), e.g. f0 for big cores.")
@click.option("--timeout", "timeout_s", type=float, default=600, show_default=True,
              help="On a device: seconds per model.")
@click.option("--baseline", type=click.Path(path_type=Path), help="Ratios are relative to this model.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the results as JSON.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Write the results as CSV.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path),
              help="PNG of latency against accuracy, Pareto frontier marked.")
@click.option("--accuracy", "accuracy_path", type=click.Path(path_type=Path),
              help="For --plot: `mnv1-tk validate --json` output (default: accuracy on the model cards).")
def profile(models, runtime, threads, runs, warmup, xnnpack, device, accelerator, ops, pin_cpus, timeout_s,
            baseline, json_path, csv_path, plot_path, accuracy_path):
    """Latency of model files on this host or on Android phones (adb).

    Host runs are interleaved round robin across the models (order reversed every round). On a phone
    the official runners do the timing: LiteRT benchmark_model for .tflite and MindSpore Lite benchmark
    for .ms (install them with `mnv1-tk setup android-runners`).

    \b
    Examples:
      mnv1-tk profile out/*.tflite --threads 1,2 --json lat.json --plot lat.png
      mnv1-tk profile m.fp32.tflite m.int8.tflite --baseline m.fp32.tflite --no-xnnpack
      mnv1-tk profile m.int8.tflite m.int8.ms --device all --ops
      mnv1-tk profile m.fp32.tflite --device auto --accelerator gpu --pin f0
    """
    from toolkit.profile import ProfileOptions, profile_command

    profile_command(list(models), ProfileOptions(runtime=runtime, threads=threads, runs=runs, warmup=warmup,
                                                 xnnpack=xnnpack, device=device, accelerator=accelerator, ops=ops,
                                                 pin_cpus=pin_cpus, timeout_s=timeout_s),
                    baseline=baseline, json_path=json_path, csv_path=csv_path, plot_path=plot_path,
                    accuracy_path=accuracy_path)
