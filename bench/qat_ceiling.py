"""Where the int8 logits SQNR goes, and so what QAT can win: weight rounding vs activation rounding.

For tuning models of `bench/model_set.py`, the fake-quant network of `quantize/qat/` takes our default
PTQ's ranges, and runs on the clean val split with parts of the quantization switched off (float values
instead of rounded ones, same ranges and clipping):

- weights int8 only (rounded to nearest, or AdaRound's), activations int8 only, both, and both with
  AdaRound's weights and the PTQ's bias correction (QAT's start);
- each activation tensor alone (the input, every layer's output, the logits): its share of the
  activation rounding noise.

Fine-tuning the weights can at best remove the weights' share; the activation rounding noise stays
unless the ranges shrink. Logits SQNR is against the original float model (ONNX Runtime).

    .venv/bin/python -m bench.qat_ceiling [--only NAME,...] [--no-per-tensor] [--out bench/results/qat/ceiling.json]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
from pathlib import Path

import numpy as np

from bench.quant_vs_anchors import digits_pixels, evaluate, preprocess_all, run_predictor


@contextlib.contextmanager
def simulated(qat, weights: bool, activations):
    """Run the QATMobileNetV1 `qat` with int8 weights or not, and only the activation quantizers in
    `activations` (a collection of its quantizer cells, or "all") rounding; the others pass float values on
    their grid's scale. PyNative only (patches module functions for the duration)."""
    from mindspore import ops

    import quantize.qat.fake_quant as fake_quant
    import quantize.qat.network as network

    saved = {(m, n): getattr(m, n) for m, n in ((network, "quantize_weight"), (network, "quantize_bias"),
                                                 (network, "requantize_output"), (network, "round_ste"),
                                                 (fake_quant, "quantize_centred"))}
    quantized = (lambda q: True) if activations == "all" else (lambda q: any(q is a for a in activations))
    requantize_output, quantize_centred = network.requantize_output, fake_quant.quantize_centred

    def float_output(products, bias, input_scale, w_scale, quantizer, act, rounding):
        if quantized(quantizer):
            return requantize_output(products, bias, input_scale, w_scale, quantizer, act, rounding)
        y = (products + bias) * (input_scale * w_scale)
        y = ops.clamp(y, 0.0, 6.0) if act == "relu6" else ops.relu(y) if act == "relu" else y
        scale, zero_point = quantizer.training_params(y)
        return y / scale, scale, zero_point

    if not weights:
        network.quantize_weight = lambda w, s: w / (s.reshape((-1,) + (1,) * (w.ndim - 1)) if s.shape[0] > 1
                                                    else s.reshape(()))
        network.quantize_bias = lambda bias, input_scale, w_scale: bias / (input_scale * w_scale)
    if activations != "all":
        network.requantize_output = float_output
        network.round_ste = lambda x: x
        fake_quant.quantize_centred = lambda x, scale, zero_point: (
            quantize_centred(x, scale, zero_point) if quantized(qat.input_quant) else x / scale)
    try:
        yield
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)


def analyse(model, per_tensor: bool, console) -> dict:
    import mindspore as ms

    from converters.onnx_import import import_onnx
    from converters.passes import lower_for_tflite
    from quantize import Quantizer, Recipe
    from toolkit.card import load_card
    from toolkit.train.qat import qat_network_from_plan

    card = load_card(model.onnx)
    train_pixels, _ = digits_pixels("train", model.spec.size)
    val_pixels, labels = digits_pixels("val", model.spec.size)
    images = preprocess_all(val_pixels, card)
    reference = run_predictor(model.onnx, card, images)
    ptq = Quantizer(Recipe.load("default")).quantize(lower_for_tflite(import_onnx(model.onnx, card)),
                                                 preprocess_all(train_pixels[:300], card))

    def network(plan):
        return qat_network_from_plan(model.checkpoint, card, ptq.float_graph, plan, ptq.act_equalization)

    def sqnr(net) -> float:
        logits = np.concatenate([net(ms.Tensor(images[i:i + 128])).asnumpy() for i in range(0, len(images), 128)])
        return evaluate(logits, reference, labels)["sqnr_db"]

    plain = network(dataclasses.replace(ptq.plan, biases={}, round_up={}))
    adarounded = network(dataclasses.replace(ptq.plan, biases={}))
    quantizers = plain.quantizers()
    rows = {}
    for name, net, weights, activations in (("none (ranges only)", plain, False, ()),
                                            ("weights (nearest)", plain, True, ()),
                                            ("weights (AdaRound)", adarounded, True, ()),
                                            ("activations", plain, False, "all"),
                                            ("both (nearest)", plain, True, "all")):
        with simulated(net, weights, activations):
            rows[name] = sqnr(net)
        console.print(f"  {model.spec.name}: int8 {name}: {rows[name]:.2f} dB")
    rows["both, AdaRound + bias correction (QAT's start)"] = sqnr(network(ptq.plan))
    result = {"model": model.spec.name, "sqnr_db": rows}
    if per_tensor:
        names = ["input"] + [f"layer{i}" for i in range(len(quantizers) - 2)] + ["logits"]
        alone = {}
        for name, quantizer in zip(names, quantizers):
            with simulated(plain, False, [quantizer]):
                alone[name] = sqnr(plain)
        noise = {n: 10 ** (-db / 10) for n, db in alone.items()}
        total = sum(noise.values())
        result["activation_alone_sqnr_db"] = alone
        result["activation_noise_share"] = {n: v / total for n, v in sorted(noise.items(), key=lambda kv: -kv[1])}
        result["activation_noise_sum_db"] = -10 * np.log10(total)
    return result


def main(argv=None) -> int:
    os.environ.setdefault("GLOG_v", "4")
    import mindspore as ms
    from rich.console import Console
    from rich.table import Table

    from bench.model_set import ensure_model, select
    from toolkit.fsutil import write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="only the tuning models of these names (comma-separated)")
    parser.add_argument("--no-per-tensor", dest="per_tensor", action="store_false",
                        help="skip the per-tensor activation noise (one evaluation per tensor)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/qat/ceiling.json"))
    args = parser.parse_args(argv)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    console = Console(stderr=True)
    results = [analyse(ensure_model(spec, console=console), args.per_tensor, console)
               for spec in select("tuning") if args.only is None or spec.name in args.only.split(",")]
    write_json(args.out, {"results": results})
    table = Table(title="Logits SQNR (dB, clean val) of the fake-quant network with only these parts int8")
    table.add_column("model")
    for name in results[0]["sqnr_db"]:
        table.add_column(name, justify="right")
    table.add_column("largest activation noise shares")
    for r in results:
        shares = ", ".join(f"{n} {100 * s:.0f}%" for n, s in list(r.get("activation_noise_share", {}).items())[:3])
        table.add_row(r["model"], *(f"{v:.2f}" for v in r["sqnr_db"].values()), shares)
    Console(width=200).print(table)
    console.print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
