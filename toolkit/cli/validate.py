"""`mnv1-tk validate`."""

from __future__ import annotations

import click

from toolkit.cli import main
from toolkit.cli.options import card_options


@main.command(context_settings={"max_content_width": 100})
@click.option("--model", "model_path", required=True, metavar="PATH",
              help=".ckpt, .mindir, .onnx, .tflite or .ms (card beside it; inferred for .onnx/.tflite without one).")
@click.option("--data-dir", help="Dataset root (not needed for digits).")
@click.option("--dataset", default="digits", show_default=True, help="digits | imagefolder | cifar10.")
@click.option("--split", default="val", show_default=True, help="Split to evaluate.")
@click.option("--limit", type=int, help="Only the first N images.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--width", type=float, help="For a checkpoint without a card (mindcv's).")
@click.option("--image-size", type=int, help="For a checkpoint without a card.")
@click.option("--activation", type=click.Choice(["relu6", "relu"]), help="For a checkpoint without a card.")
@click.option("--num-classes", type=int, help="For a checkpoint without a card (1001 slices to 1000).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@card_options
def validate(model_path, data_dir, dataset, split, limit, batch_size, width, image_size, activation, num_classes,
             as_json, card_overrides):
    """Top-1 and top-5 of a model file on a dataset split.

    \b
    Examples:
      mnv1-tk validate --model runs/digits/mobilenet_v1_025_best.ckpt
      mnv1-tk validate --model out/mobilenet_v1_025_32.onnx --json
      mnv1-tk validate --model timm_mobilenetv1.onnx --dataset imagefolder --data-dir /data/imagenet
      mnv1-tk validate --model mobilenet_v1_100-cfeea6ed.ckpt --width 1.0 --image-size 224 \\
          --activation relu --num-classes 1001 --dataset imagefolder --data-dir /data/imagenet
    """
    from toolkit.data import DatasetSpec
    from toolkit.validate import print_report, validate as run_validation

    print_report(run_validation(model_path, DatasetSpec(name=dataset, root=data_dir), split, limit, batch_size,
                                width=width, image_size=image_size, activation=activation,
                                num_classes=num_classes, card_overrides=card_overrides), as_json=as_json)
