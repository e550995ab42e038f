"""`mnv1-tk convert`."""

from pathlib import Path

import click

from toolkit.cli import main
from toolkit.convert import convert_command


@main.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--to", default="tflite", show_default=True, help="Output format(s), comma-separated.")
@click.option("--quant", default="none", show_default=True,
              help="Precision(s), comma-separated: none (float32) or fp16.")
@click.option("--width", default=None,
              help="0.25, 0.5, 0.75, 1.0 or all. With a directory SOURCE (e.g. the zoo's training runs): "
                   "which widths to convert, each from its best (else latest) checkpoint.")
@click.option("--image-size", type=int, default=None, help="Export size for a checkpoint (default: its card's).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Output directory (default: next to SOURCE).")
@click.option("--data", default=None, help="Eval images for the check: digits, imagefolder or cifar10 "
                                           "(default: the card's dataset, else digits).")
@click.option("--data-dir", default=None, help="Root of the --data dataset.")
@click.option("--num-eval", type=int, default=32, show_default=True, help="Eval images the outputs are checked on.")
@click.option("--no-check", is_flag=True, help="Keep outputs that exceed the tolerance.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def convert(source, to, quant, width, image_size, out_dir, data, data_dir, num_eval, no_check, as_json):
    """Convert SOURCE (.ckpt, .onnx, or a checkpoint directory) to phone formats and check each output."""
    convert_command(source, to=to, quant=quant, width=width, image_size=image_size, out_dir=out_dir, data=data,
                    data_dir=data_dir, num_eval=num_eval, check=not no_check, as_json=as_json)
