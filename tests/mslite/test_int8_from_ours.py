"""Our int8 `.tflite` through the MindSpore Lite converter: the `.ms` keeps our quantization."""

import numpy as np

from toolkit.card import load_card
from toolkit.convert import ConvertOptions, QuantOptions, convert, eval_set
from toolkit.data import DatasetSpec
from toolkit.runtimes import load_predictor


def test_int8_ms_from_our_tflite_agrees_with_litert(trained_digits, mslite_backend, tmp_path, capsys):
    card = trained_digits.card
    options = ConvertOptions(to="tflite,mslite", quant="int8", out_dir=tmp_path, num_eval=8,
                             quantization=QuantOptions(calib="digits", calib_size=200))
    tflite, ms = convert(trained_digits.onnx, options)
    assert (tflite.target, ms.target) == ("tflite", "mslite")
    images, _ = eval_set(card, DatasetSpec("digits"), 359)
    with load_predictor(tflite.path, builtin_only=True) as litert, load_predictor(ms.path) as mslite:
        ours, theirs = litert.run(images), mslite.run(images)
        logits_int8 = next(t for t in litert.interpreter.get_tensor_details()
                           if t["name"] == f"{card.output_name}_int8")
    # Both dequantize int8 logits with the same scale: the difference in output LSB.
    lsb = np.abs(ours - theirs) / logits_int8["quantization"][0]
    agreement = float(np.mean(ours.argmax(1) == theirs.argmax(1)))
    with capsys.disabled():
        print(f"\nint8 .ms vs LiteRT int8 on {len(images)} digits: max {lsb.max():.0f} LSB, "
              f"{np.mean(lsb > 0.5):.1%} of logits differ, top-1 agreement {agreement:.2%}")
    assert agreement >= 0.995
    assert lsb.max() <= 4  # MindSpore Lite's int8 kernels requantize in their own way; same model


def test_float_classifier_ms_from_our_tflite_agrees_with_litert(trained_digits, mslite_backend, tmp_path):
    """`--classifier float` (DEQUANTIZE -> float FULLY_CONNECTED) through the MindSpore Lite converter: the
    `.ms` keeps the classifier in float and computes LiteRT's logits up to its own int8 requantization."""
    from quantize.metrics import compare

    card = trained_digits.card
    options = ConvertOptions(to="tflite,mslite", quant="int8", out_dir=tmp_path, num_eval=8,
                             quantization=QuantOptions(calib="digits", calib_size=200, adaround=False,
                                                       classifier="float"))
    tflite, ms = convert(trained_digits.onnx, options)
    assert load_card(ms.path).extra["quantization"]["float_layers"]  # the classifier
    images, _ = eval_set(card, DatasetSpec("digits"), 359)
    with load_predictor(tflite.path, builtin_only=True) as litert, load_predictor(ms.path) as mslite:
        ours, theirs = litert.run(images), mslite.run(images)
    assert compare(ours, theirs)["sqnr_db"] > 35
    assert float(np.mean(ours.argmax(1) == theirs.argmax(1))) >= 0.995
