"""`mnv1-tk predict`."""

from pathlib import Path

import click

from toolkit.cli import main
from toolkit.cli.options import card_options
from toolkit.predict import predict_command


@main.command()
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--model", "-m", required=True, type=click.Path(path_type=Path),
              help="Model file (.tflite, .onnx, .ckpt, .mindir, ...) with its .json card next to it "
                   "(inferred for .onnx/.tflite without one).")
@click.option("--topk", type=int, default=5, show_default=True, help="Classes to show per image.")
@click.option("--json", "as_json", is_flag=True, help="Print the predictions as JSON.")
@card_options
def predict(images, model, topk, as_json, card_overrides):
    """Classify IMAGES with MODEL, preprocessed with the model card's eval transform.

    \b
    Examples:
      mnv1-tk predict cat.jpg --model out/mobilenet_v1_025_224.int8.tflite
      mnv1-tk predict cat.jpg --model timm_mobilenetv1.onnx --labels imagenet.txt
    """
    predict_command(list(images), model, topk, as_json, card_overrides=card_overrides)
