"""`mnv1-tk export`."""

from __future__ import annotations

import click

from toolkit.cli import main


@main.command(context_settings={"max_content_width": 100})
@click.option("--ckpt", required=True, metavar="CKPT", help="Checkpoint (its card beside it, or the flags below).")
@click.option("--out", "out_dir", default="out", show_default=True, metavar="DIR", help="Output directory.")
@click.option("--format", "formats", default="onnx,mindir", show_default=True, help="onnx, mindir or both.")
@click.option("--width", type=float, help="Width multiplier (default: the checkpoint's card).")
@click.option("--image-size", type=int, help="Input size (default: the card's).")
@click.option("--activation", type=click.Choice(["relu6", "relu"]), help="Default: the card's; mindcv: relu.")
@click.option("--num-classes", type=int, help="Default: the card's; 1000 slices a 1001-class head.")
@click.option("--no-verify", is_flag=True, help="Skip the ONNX Runtime / MINDIR parity check (1e-4).")
def export(ckpt, out_dir, formats, width, image_size, activation, num_classes, no_verify):
    """Export a checkpoint to ONNX and MINDIR, each with its JSON model card.

    \b
    Examples:
      mnv1-tk export --ckpt runs/digits/mobilenet_v1_025_best.ckpt --out out
      mnv1-tk export --ckpt mobilenet_v1_025-d3377fba.ckpt --width 0.25 --image-size 224 \\
          --activation relu --num-classes 1001 --format onnx
    """
    from toolkit.export import export_model, print_exported

    print_exported(export_model(ckpt, out_dir, formats, width=width, image_size=image_size, activation=activation,
                                num_classes=num_classes, verify=not no_verify))
