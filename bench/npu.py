"""NPU benchmark: our int8 models compiled for Snapdragon HTPs and run on the x86_64 HTP emulator.

Per zoo width at 224x224 (10 classes, random weights with a trained network's statistics,
tests/models.py) and per SoC: compile seconds, context binary size, and the emulator's int8 logits
against our integer reference executor (which LiteRT matches bit for bit): max LSB and share of
differing logits, with ONNX Runtime's CPU kernels on the same QDQ model beside it. On the trained
digits model (32x32, `--digits-onnx`, else trained here with the shipped config): top-1 agreement
of the emulator with the reference over the val split, and both top-1s; and layer by layer (each
int8 layer compiled alone and fed the reference's input), how far and how often the HTP's output
differs from the reference, and how near to a rounding tie the exact result was where it does.

Emulator seconds are host time of a simulator: they say nothing about phone latency.

    .venv/bin/python -m bench.npu [--socs SM8650,SM8750] [--images 4] [--digits-onnx runs/digits/....onnx]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results") / "npu"


def _int8(graph, images: np.ndarray):
    from quantize import Quantizer, Recipe

    recipe = Recipe(method="minmax", cle=False, bias_correction=False)
    return Quantizer(recipe).quantize(graph, images).graph


def _logits_lsb(qgraph, logits: np.ndarray, reference_int8: np.ndarray) -> np.ndarray:
    quant = qgraph.tensors[qgraph.producer(qgraph.outputs[0]).inputs[0]].quant
    steps = np.rint(logits.astype(np.float64) / quant.scale[0]) + quant.zero_point[0]
    return np.abs(steps - reference_int8.astype(np.int64))


def _run(session, images: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[None]})[0] for x in images])


def measure(name: str, qgraph, images: np.ndarray, socs: tuple[str, ...], work: Path,
            labels: np.ndarray | None = None) -> list[dict]:
    """One row per SoC: compile, run the emulator on `images` (canonical NCHW), compare with the reference."""
    import onnxruntime as ort

    from converters.onnx_qdq import write_qdq_onnx
    from converters.qnn import compile_epcontext, ensure_qnn
    from converters.qnn.session import htp_options, open_session
    from quantize import reference

    install = ensure_qnn()
    logits_int8 = qgraph.producer(qgraph.outputs[0]).inputs[0]
    ours = reference.run(qgraph, images.transpose(0, 2, 3, 1), "builtin", fetch=[logits_int8, qgraph.outputs[0]])
    model = write_qdq_onnx(qgraph, batch=1)
    cpu = _run(ort.InferenceSession(model, providers=["CPUExecutionProvider"]), images)
    cpu_lsb = _logits_lsb(qgraph, cpu, ours[logits_int8])
    rows = []
    for soc in socs:
        compiled = compile_epcontext(model, work / f"{name}.{soc}.onnx", soc, install, what=name)
        session = open_session(compiled.path, htp_options(install), what=compiled.path.name)
        start = time.perf_counter()
        npu = _run(session, images)
        per_image = (time.perf_counter() - start) / len(images)
        lsb = _logits_lsb(qgraph, npu, ours[logits_int8])
        row = {"model": name, "soc": soc, "compile_s": round(compiled.seconds, 3),
               "context_kb": round(compiled.context_bytes / 1024, 1), "images": len(images),
               "npu_max_lsb": int(lsb.max()), "npu_differ": float(np.mean(lsb > 0)),
               "cpu_max_lsb": int(cpu_lsb.max()), "cpu_differ": float(np.mean(cpu_lsb > 0)),
               "top1_agree": float(np.mean(npu.argmax(1) == ours[qgraph.outputs[0]].argmax(1))),
               "emulator_ms_per_image": round(1000 * per_image, 1)}
        if labels is not None:
            row["npu_top1"] = float(np.mean(npu.argmax(1) == labels))
            row["reference_top1"] = float(np.mean(ours[qgraph.outputs[0]].argmax(1) == labels))
        rows.append(row)
    return rows


def per_layer_rows(qgraph, images: np.ndarray, soc: str, work: Path) -> list[dict]:
    """Each int8 layer alone on the emulator vs the reference, fed the reference's int8 input."""
    from converters.onnx_qdq import write_qdq_onnx
    from converters.qnn import compile_epcontext, ensure_qnn
    from converters.qnn.session import htp_options, open_session
    from quantize.reference import accumulate
    from tests.npu.layers import dequantized, from_nchw, int8_layers, lsb, reference_tensors, single_layer, to_nchw

    install = ensure_qnn()
    x = images.transpose(0, 2, 3, 1).copy()
    values = reference_tensors(qgraph, x)
    rows = []
    for node in int8_layers(qgraph):
        model = write_qdq_onnx(single_layer(qgraph, node), batch=len(x))
        compiled = compile_epcontext(model, work / "layer.onnx", soc, install, what=node.name)
        session = open_session(compiled.path, htp_options(install), what=node.name)
        fed = to_nchw(dequantized(qgraph, node.inputs[0], values[node.inputs[0]]))
        npu = from_nchw(session.run(None, {"input": fed})[0])
        diff = lsb(qgraph, node.outputs[0], npu, values[node.outputs[0]])
        row = {"layer": node.name, "op": node.op, "max_lsb": int(diff.max()), "differ": float(np.mean(diff > 0))}
        if node.op in ("conv2d", "depthwise_conv2d", "fully_connected") and diff.any():
            multiplier = qgraph.tensors[node.inputs[0]].quant.scale[0].astype(np.float64) * \
                qgraph.tensors[node.inputs[1]].quant.scale.astype(np.float64) / \
                np.float64(qgraph.tensors[node.outputs[0]].quant.scale[0])
            exact = accumulate(qgraph, node, values[node.inputs[0]]) * multiplier
            distance = np.abs(exact - np.floor(exact) - 0.5)[diff > 0]  # from the tie, in LSB
            row["max_distance_from_tie"] = float(distance.max())
        rows.append(row)
    return rows


def zoo_rows(socs: tuple[str, ...], count: int, work: Path) -> list[dict]:
    import mindspore as ms

    from converters.onnx_import import import_onnx
    from converters.passes import lower_for_tflite
    from tests.models import ZOO_SIZE, digits_images, export_onnx, randomise_like_trained, zoo_card
    from toolkit.convert import eval_batch
    from toolkit.models import WIDTHS, create_model, model_name

    rows = []
    statistics = digits_images()
    for width in WIDTHS:
        ms.set_seed(int(width * 100))
        network = create_model(model_name(width), num_classes=10)
        randomise_like_trained(network, statistics, seed=int(width * 100))
        card = zoo_card(width, ZOO_SIZE)
        onnx = export_onnx(network, card, work / f"{card.stem}.onnx")
        images = eval_batch(card, None, 16 + count)
        qgraph = _int8(lower_for_tflite(import_onnx(onnx, card)), images[:16])
        rows += measure(card.stem, qgraph, images[16:], socs, work)
    return rows


def digits_rows(socs: tuple[str, ...], onnx: Path | None, work: Path) -> list[dict]:
    from converters.onnx_import import import_onnx
    from converters.passes import lower_for_tflite
    from toolkit.card import load_card
    from toolkit.data import DatasetSpec
    from toolkit.validate import eval_batches

    if onnx is None:
        from rich.console import Console

        from toolkit.export import export_model
        from toolkit.train import load_config, train

        result = train(load_config("mobilenet_v1_025_digits", {"ckpt_save_dir": str(work / "digits")}),
                       console=Console(stderr=True, quiet=True))
        onnx = Path(export_model(result.best_checkpoint, work / "digits_export")["onnx"])
    card = load_card(onnx)
    calib = np.concatenate([x for x, _ in eval_batches(card, DatasetSpec("digits"), "train", limit=200)])
    images, labels = (np.concatenate(v) for v in zip(*eval_batches(card, DatasetSpec("digits"), "val")))
    qgraph = _int8(lower_for_tflite(import_onnx(onnx, card)), calib)
    layers = per_layer_rows(qgraph, images[:8], socs[0], work)
    return measure(f"{card.stem} (digits)", qgraph, images, socs, work, labels), layers


def layer_table(rows: list[dict], soc: str):
    from rich.table import Table

    out = Table(title=f"each int8 layer alone on the {soc} emulator vs the reference (trained digits, 8 images)")
    for column in ("op", "layers", "max LSB", "outputs differing", "max distance from a tie (LSB)"):
        out.add_column(column, justify="left" if column == "op" else "right")
    for op in dict.fromkeys(r["op"] for r in rows):
        group = [r for r in rows if r["op"] == op]
        distances = [r["max_distance_from_tie"] for r in group if "max_distance_from_tie" in r]
        out.add_row(op, str(len(group)), str(max(r["max_lsb"] for r in group)),
                    f"{100 * np.mean([r['differ'] for r in group]):.2f}%",
                    f"{max(distances):.3f}" if distances else "-")
    return out


def table(rows: list[dict]):
    from rich.table import Table

    out = Table(title="int8 on the Hexagon NPU (x86_64 HTP emulator, QAIRT 2.51) vs our integer reference")
    columns = [("model", "model"), ("soc", "SoC"), ("compile_s", "compile s"), ("context_kb", "context KB"),
               ("npu_max_lsb", "HTP max LSB"), ("npu_differ", "HTP differ"), ("cpu_max_lsb", "ORT CPU max LSB"),
               ("cpu_differ", "ORT CPU differ"), ("top1_agree", "top-1 agree"), ("images", "images")]
    for _, title in columns:
        out.add_column(title, justify="left" if title in ("model", "SoC") else "right")
    for row in rows:
        out.add_row(*[f"{100 * row[k]:.1f}%" if k in ("npu_differ", "cpu_differ", "top1_agree") else str(row[k])
                      for k, _ in columns])
    out.caption = "emulator time is host time of a simulator, not phone latency"
    return out


def main() -> None:
    from rich.console import Console

    from converters.qnn import parse_socs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socs", default="SM8650,SM8750")
    parser.add_argument("--images", type=int, default=4, help="224x224 images per width (the emulator is slow)")
    parser.add_argument("--digits-onnx", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    socs = parse_socs(args.socs)
    with tempfile.TemporaryDirectory(prefix="mnv1tk-bench-npu-") as work:
        rows = zoo_rows(socs, args.images, Path(work))
        digits, layers = digits_rows(socs, args.digits_onnx, Path(work))
    rows += digits
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps({"models": rows, "layers": layers}, indent=2))
    console = Console(record=True, width=160)
    console.print(table(rows))
    console.print(layer_table(layers, socs[0]))
    (args.out / "table.txt").write_text(console.export_text())


if __name__ == "__main__":
    main()
