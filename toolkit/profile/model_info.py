"""File size, MACs and parameters of a model file, counted from the graph IR.

`.onnx` is imported with the project's ONNX importer; `.tflite` ops are read from LiteRT's own
op list into the IR (weighted ops only: that is all MACs and parameters need); `.ms`, `.ckpt`,
`.mindir` and files the importers cannot read (QDQ ONNX) use the source named on their model card
when that file sits next to them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from converters.ir.graph import Graph
from converters.ir.stats import count_macs, count_params

_TFLITE_OPS = {"CONV_2D": "conv2d", "DEPTHWISE_CONV_2D": "depthwise_conv2d", "FULLY_CONNECTED": "fully_connected",
               "ADD": "add"}


def tflite_graph(path: Path) -> Graph:
    """The weighted ops of a .tflite model as an NHWC IR graph (shapes from the interpreter)."""
    from toolkit.runtimes.litert import _interpreter_module, _native_log_muted

    with _native_log_muted():
        interpreter = _interpreter_module().Interpreter(model_path=str(path))
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    # Constants (weights, biases) are the tensors that no op produces and that are not model inputs.
    produced = {int(i) for op in ops for i in op["outputs"]} | {t["index"] for t in interpreter.get_input_details()}
    graph = Graph(name=path.stem, layout="NHWC")

    def tensor(index: int) -> str:
        name = f"t{index}"
        if name not in graph.tensors:
            shape = tuple(int(d) for d in details[index]["shape"])
            graph.add_tensor(name, shape, data=None if index in produced else np.zeros(shape, np.int8))
        return name

    for op in ops:
        kind = _TFLITE_OPS.get(op["op_name"])
        if kind is None:
            continue
        inputs = [tensor(int(i)) for i in op["inputs"] if int(i) >= 0]
        graph.add_node(kind, f"op{op['index']}", inputs, [tensor(int(i)) for i in op["outputs"]])
    return graph


def graph_of(path: Path) -> Graph | None:
    """The IR graph of a model file, or None when it cannot be built from what is here."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".onnx":
            from converters.onnx_import import import_onnx

            return import_onnx(path)
        if suffix == ".tflite":
            return tflite_graph(path)
    except Exception:  # e.g. a QDQ ONNX file: count the float source it was made from, when it is there
        pass
    from toolkit.card import load_card
    from toolkit.errors import ModelCardError

    try:
        source = load_card(path).source
    except ModelCardError:
        return None
    sibling = path.parent / source if source else None
    if sibling and sibling != path and sibling.suffix.lower() in (".onnx", ".tflite") and sibling.is_file():
        return graph_of(sibling)
    return None


def model_stats(path: Path) -> tuple[int | None, int | None]:
    """(MACs, parameters) from the graph IR, or (None, None)."""
    try:
        graph = graph_of(Path(path))
    except Exception:  # a model the IR cannot represent still gets profiled, without these two columns
        return None, None
    if graph is None:
        return None, None
    return count_macs(graph), count_params(graph)
