"""Export a checkpoint to ONNX and MINDIR, each with its model card, verified against MindSpore.

`<out>/<model>_<size>.onnx` (opset 11, input "x" NCHW float32 batch 1, output "logits") and
`<out>/<model>_<size>.mindir`. All files are written atomically and only after verification: the
ONNX model must match MindSpore within 1e-4 + 1e-5 * max |logit| (max abs, under ONNX Runtime): 1e-4 on
the logits of a few units the tests use, and room for float32 summation order on large ImageNet logits.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
from rich.console import Console

from toolkit.card import ModelCard, save_card
from toolkit.errors import AtolError, ConfigError, ModelFileError
from toolkit.fsutil import atomic_path, ensure_writable_dir

FORMATS = ("onnx", "mindir")
ATOL, RTOL = 1e-4, 1e-5
VERIFY_IMAGES = 4


def parse_formats(formats) -> tuple[str, ...]:
    """`"onnx,mindir"` or `("onnx",)` -> a checked tuple."""
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    items = [f.strip().lower() for f in items if f.strip()]
    unknown = [f for f in items if f not in FORMATS]
    if unknown or not items:
        raise ConfigError(f"unknown export format(s) {unknown or formats!r}", f"use {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(items))


def _name_graph(path: Path, card: ModelCard) -> None:
    """Give the ONNX graph the card's input and output names, whatever MindSpore chose, and the card's stem as
    its name: MindSpore names it after its compile counters, which depend on what the process compiled before,
    so the same checkpoint exported in two processes gave two files (and a bench cache keyed on the file's
    SHA-256 measured the same model again)."""
    import onnx

    model = onnx.load(str(path))
    model.graph.name = card.stem
    renames = {model.graph.input[0].name: card.input_name, model.graph.output[0].name: card.output_name}
    renames = {old: new for old, new in renames.items() if old != new}
    for value in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        value.name = renames.get(value.name, value.name)
    for node in model.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _export_onnx(network, card: ModelCard, path: Path) -> None:
    import mindspore as ms

    sample = ms.Tensor(np.zeros(card.input_shape, np.float32))
    ms.onnx.export(network, sample, file_name=str(path), input_names=[card.input_name],
                   output_names=[card.output_name])
    _name_graph(path, card)


def _export_mindir(network, card: ModelCard, path: Path) -> None:
    import mindspore as ms

    sample = ms.Tensor(np.zeros(card.input_shape, np.float32))
    ms.export(network, sample, file_name=str(path), file_format="MINDIR")


def verification_images(card: ModelCard, count: int = VERIFY_IMAGES) -> np.ndarray:
    """A few real images (the digits validation split) through the card's eval transform."""
    from toolkit.data import DatasetSpec
    from toolkit.validate import eval_batches

    return next(eval_batches(card, DatasetSpec("digits"), "val", limit=count, batch_size=count))[0]


def verify_exports(network, card: ModelCard, files: dict[str, Path]) -> dict[str, float]:
    """Max abs logit difference of each exported file against `network`; AtolError beyond the tolerance."""
    import mindspore as ms

    from toolkit.runtimes.mindspore_rt import MindIRPredictor
    from toolkit.runtimes.onnxrt import OnnxRuntimePredictor

    images = verification_images(card)
    expected = network(ms.Tensor(images)).asnumpy()  # once for every format: at 224 px a forward takes seconds
    tolerance = ATOL + RTOL * float(np.abs(expected).max())
    loaders = {"onnx": OnnxRuntimePredictor, "mindir": MindIRPredictor}
    differences = {}
    for fmt, path in files.items():
        predictor = loaders[fmt].load(path, card=card.replace(format=fmt))
        difference = float(np.max(np.abs(predictor.run(images) - expected)))
        if not difference <= tolerance:
            raise AtolError(f"the exported {fmt.upper()} differs from MindSpore by {difference:.2e} max abs on the "
                            f"logits (tolerance {tolerance:.2g})",
                            "nothing was written; report it, or pass --no-verify")
        differences[fmt] = difference
    return differences


def export_model(ckpt: str | Path, out_dir: str | Path, formats=FORMATS, *, width: float | None = None,
                 image_size: int | None = None, activation: str | None = None, num_classes: int | None = None,
                 labels: tuple[str, ...] | None = None, verify: bool = True) -> dict[str, Path]:
    """Write `<out_dir>/<model>_<size>.<format>` and its card for each format; returns {format: path}.

    Options left None come from the checkpoint's card (`<ckpt>.json`, written by `mnv1-tk train`);
    a checkpoint without one (mindcv's) needs width and image_size. With `verify`, ONNX Runtime and
    MindSpore (for MINDIR) must reproduce MindSpore's logits within 1e-4, else AtolError and
    nothing is written.
    """
    from toolkit.models.checkpoint import checkpoint_card, load_weights
    from toolkit.runtimes.mindspore_rt import build_model

    formats = parse_formats(formats)
    ckpt = Path(ckpt)
    if not ckpt.is_file():
        raise ModelFileError(f"checkpoint {ckpt} does not exist", "check --ckpt")
    card = checkpoint_card(ckpt, width=width, image_size=image_size, activation=activation,
                           num_classes=num_classes, labels=labels)
    card = card.replace(source=ckpt.name, precision="fp32", input_layout="NCHW", input_dtype="float32",
                        input_quant=None)
    network = build_model(card)
    load_weights(network, ckpt, head="strict")
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    targets = {fmt: ensure_writable_dir(out_dir) / f"{card.stem}.{fmt}" for fmt in formats}
    exporters = {"onnx": _export_onnx, "mindir": _export_mindir}
    try:
        with contextlib.ExitStack() as stack, Console(stderr=True).status(f"exporting {card.stem}"):
            temporary = {fmt: stack.enter_context(atomic_path(path)) for fmt, path in targets.items()}
            for fmt, tmp in temporary.items():
                exporters[fmt](network, card, tmp)
            if verify:
                verify_exports(network, card, temporary)
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    for fmt, path in targets.items():
        save_card(card.replace(format=fmt), path)
    return targets


def print_exported(files: dict[str, Path]) -> None:
    """One line per written file (the CLI's output)."""
    for fmt, path in files.items():
        print(f"{fmt:7s} {path}  (card {path.name}.json)")
