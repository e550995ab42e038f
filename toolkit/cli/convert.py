"""`mnv1-tk convert`."""

from pathlib import Path

import click

from toolkit.cli import main
from toolkit.cli.options import card_options
from toolkit.convert import QuantOptions, convert_command


@main.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--to", default="tflite", show_default=True,
              help="Output format(s), comma-separated: tflite, mslite, onnx (QDQ int8), qnn (int8 compiled for "
                   "the Hexagon NPU of each --soc).")
@click.option("--soc", default="", help="--to qnn: Snapdragon SoC(s), comma-separated, e.g. SM8650,SM8750.")
@click.option("--npu", default=None, help="--to tflite --quant int8: also compile the .tflite for an NPU with "
                                          "LiteRT's AOT compiler, e.g. qualcomm:SM8650 (needs QAIRT).")
@click.option("--quant", default="none", show_default=True,
              help="Precision(s), comma-separated: none (float32), fp16, int8.")
@click.option("--width", default=None,
              help="0.25, 0.5, 0.75, 1.0 or all. With a directory SOURCE (e.g. the zoo's training runs): "
                   "which widths to convert, each from its best (else latest) checkpoint.")
@click.option("--image-size", type=int, default=None, help="Export size for a checkpoint (default: its card's).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Output directory (default: next to SOURCE).")
@click.option("--data", default=None, help="Labelled eval images: digits, imagefolder or cifar10 (adds top-1/top-5; "
                                           "default: the card's dataset, else digits, unlabelled).")
@click.option("--data-dir", default=None, help="Root of the --data dataset.")
@click.option("--num-eval", type=int, default=32, show_default=True, help="Eval images the outputs are checked on.")
@click.option("--no-check", is_flag=True, help="Keep outputs that fail their precision's gate.")
@click.option("--calib", default=None, help="int8 calibration images: digits, imagefolder:DIR, cifar10:DIR, "
                                            "a folder of images or a preprocessed .npy batch.")
@click.option("--calib-size", type=int, default=500, show_default=True, help="Calibration images to use.")
@click.option("--quantizer", type=click.Choice(["ours", "mslite"]), default="ours", show_default=True,
              help="mslite: MindSpore Lite's own PTQ (with --to mslite), the anchor to beat.")
@click.option("--recipe", default="default", show_default=True, help="Quantization recipe: a preset or a JSON file.")
@click.option("--method", default=None, help="Activation ranges. ours: auto, minmax, percentile, mse, kl, select "
                                             "(choose per model on held-out calibration images); "
                                             "mslite: max_min, kl, removal_outlier.")
@click.option("--cle/--no-cle", default=None, help="Cross-layer equalization (default: the recipe's).")
@click.option("--act-equalization", type=float, default=None, metavar="HEADROOM",
              help="Activation equalization between layers: each channel's range is its calibration maximum "
                   "x HEADROOM (default: the recipe's, 1.5); 0: off.")
@click.option("--bias-correction/--no-bias-correction", default=None, help="Empirical bias correction.")
@click.option("--adaround/--no-adaround", default=None,
              help="Learnt weight rounding (AdaRound; on in the default recipe; --no-adaround is 3-4x faster).")
@click.option("--io", type=click.Choice(["float", "int8"]), default=None,
              help="int8 model I/O: float (QUANTIZE/DEQUANTIZE at the edges) or int8 (what NPUs want).")
@click.option("--fallback", type=click.Choice(["none", "float"]), default=None,
              help="float: keep the most sensitive layers in float.")
@click.option("--fallback-layers", type=int, default=None, help="How many layers --fallback float keeps.")
@click.option("--classifier", type=click.Choice(["int8", "float"]), default=None,
              help="float: the classifier in float32 on the dequantized pooled features, so the logits carry no "
                   "int8 grid (+1-2 dB logits SQNR; XNNPACK still takes the graph whole; needs --io float).")
@click.option("--report", is_flag=True, help="Per-layer int8 sensitivity table and a PNG chart.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@card_options
def convert(source, to, soc, npu, quant, width, image_size, out_dir, data, data_dir, num_eval, no_check, calib,
            calib_size, quantizer, recipe, method, cle, act_equalization, bias_correction, adaround, io, fallback,
            fallback_layers, classifier, report, as_json, card_overrides):
    """Convert SOURCE (.ckpt, .onnx, a float .tflite, or a checkpoint directory) to phone formats and check
    each output.

    A model without a .json card (from PyTorch, timm, Keras, the TF converter; a mindcv checkpoint)
    gets its card inferred: input name, layout and size and the classes from the model, the rest
    from --mean/--std/--crop-pct/--labels/--input-range. Every output gets a full card.

    \b
    Examples:
      mnv1-tk convert runs/digits/mobilenet_v1_025_best.ckpt --quant none,fp16
      mnv1-tk convert model.onnx --quant int8 --calib digits --report
      mnv1-tk convert model.onnx --to tflite,mslite --quant none,int8 --calib photos/ --io int8
      mnv1-tk convert model.onnx --to mslite --quant int8 --quantizer mslite --method kl --calib photos/
      mnv1-tk convert model.onnx --to onnx,qnn --quant int8 --calib digits --soc SM8650,SM8750
      mnv1-tk convert timm_mobilenetv1.onnx --quant none,int8 --calib photos/ --labels imagenet.txt
      mnv1-tk convert keras_mobilenet.tflite --quant int8 --calib photos/ --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5
      mnv1-tk convert mobilenet_v1_100-cfeea6ed.ckpt --width 1.0 --image-size 224 --quant none,int8 --calib photos/
    """
    quantization = QuantOptions(calib=calib, calib_size=calib_size, quantizer=quantizer, recipe=recipe, method=method,
                                cle=cle, act_equalization=act_equalization, bias_correction=bias_correction,
                                adaround=adaround, io=io, fallback=fallback, fallback_layers=fallback_layers,
                                classifier=classifier, report=report)
    convert_command(source, to=to, quant=quant, width=width, image_size=image_size, out_dir=out_dir, data=data,
                    data_dir=data_dir, num_eval=num_eval, check=not no_check, quantization=quantization,
                    soc=soc, npu=npu, card_overrides=card_overrides, as_json=as_json)
