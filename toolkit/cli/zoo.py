"""`mnv1-tk zoo`."""

from pathlib import Path

import click

from toolkit.cli import main
from toolkit.zoo import ZooOptions, parse_threads, parse_widths, zoo_command


@main.command()
@click.option("--config", "-c", default="mobilenet_v1_025_digits", show_default=True,
              help="Training config: a shipped config's name or a YAML file.")
@click.option("--widths", default="all", show_default=True, help="Widths to build: all, or e.g. 0.25,1.0.")
@click.option("--image-size", type=int, default=None, help="Input size (default: the config's).")
@click.option("--epochs", type=int, default=None, help="Training epochs (default: the config's).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/zoo"), show_default=True,
              help="Where runs, models and zoo.json go; an interrupted zoo resumes from here.")
@click.option("--to", default="tflite,mslite", show_default=True, help="Phone formats.")
@click.option("--quant", default="none,fp16,int8", show_default=True, help="Precisions.")
@click.option("--calib", default=None, help="int8 calibration images (default: the dataset's training split).")
@click.option("--calib-size", type=int, default=300, show_default=True)
@click.option("--recipe", default="default", show_default=True, help="Quantization recipe.")
@click.option("--threads", default="1,2", show_default=True, help="Host profiling thread counts.")
@click.option("--device", default=None, help="adb serial of a phone: also time the phone models on it.")
@click.option("--json", "as_json", is_flag=True, help="Print the index as JSON.")
def zoo(config, widths, image_size, epochs, out, to, quant, calib, calib_size, recipe, threads, device, as_json):
    """Train, validate, export and convert every width: the whole pipeline in one run.

    \b
    Examples:
      mnv1-tk zoo                                   # digits, all four widths, 32x32: minutes on a CPU
      mnv1-tk zoo --widths 0.25,1.0 --epochs 3 --device emulator-5554 --out runs/digits-zoo
      mnv1-tk zoo -c mobilenet_v1_100_ascend --widths all --calib imagefolder:/data/imagenet
    """
    zoo_command(ZooOptions(config=config, widths=parse_widths(widths), image_size=image_size, epochs=epochs, out=out,
                           to=to, quant=quant, calib=calib, calib_size=calib_size, recipe=recipe,
                           threads=parse_threads(threads), device=device), as_json=as_json)
