"""`mnv1-tk bundle`."""

from pathlib import Path

import click

from toolkit.bundle import bundle_command
from toolkit.cli import main


@main.command()
@click.option("--models", "-m", "models", multiple=True, type=click.Path(path_type=Path),
              help="Model files (.tflite, .ms, .onnx) with their .json cards; list them after --models.")
@click.argument("more_models", nargs=-1, metavar="[MODEL]...", type=click.Path(path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path),
              help="Assets folder, normally android_demo/app/src/main/assets.")
@click.option("--golden-images", type=int, default=4, show_default=True,
              help="Real images whose tensors and host logits become the golden vectors.")
def bundle(models, more_models, out, golden_images):
    """Copy models, cards and labels into the Android demo's assets with a models.json index and golden vectors.

    \b
    mnv1-tk bundle --models models/*.tflite models/*.ms --out android_demo/app/src/main/assets
    """
    bundle_command([*models, *more_models], out, golden_images)
