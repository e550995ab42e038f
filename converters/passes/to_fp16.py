"""Store the weights and biases of conv / depthwise conv / fully-connected layers as float16.

This is TFLite's standard fp16 layout: each float16 constant feeds a DEQUANTIZE op whose float32
output the layer reads, so the model runs in float32 everywhere (or in fp16 where a delegate such
as the GPU one can) and is half the size.
"""

from __future__ import annotations

import numpy as np

from converters.ir import Graph
from toolkit.errors import QuantizationError

LAYERS = ("conv2d", "depthwise_conv2d", "fully_connected")
FLOAT16_MAX = float(np.finfo(np.float16).max)


def to_fp16(graph: Graph) -> Graph:
    graph = graph.verify().copy()
    dequantized: dict[str, str] = {}  # float32 constant -> float32 output of its DEQUANTIZE
    for node in [n for n in graph.nodes if n.op in LAYERS]:
        for slot, name in enumerate(node.inputs[1:], start=1):
            tensor = graph.tensors[name]
            if not tensor.is_const or tensor.dtype != "float32":
                continue
            if name not in dequantized:
                peak = float(np.abs(tensor.data).max()) if tensor.data.size else 0.0
                if peak > FLOAT16_MAX:
                    raise QuantizationError(f"constant {name!r} of {node.name} reaches {peak:.3g}, beyond the "
                                            f"float16 range ({FLOAT16_MAX:.0f})", "convert with --quant none")
                half = graph.add_const(f"{name}_fp16", tensor.data.astype(np.float16))
                out = graph.add_tensor(graph.unique_name(f"{name}_dequantized"), tensor.shape)
                graph.add_node("dequantize", f"{name}_dequantize", [half.name], [out.name],
                               index=graph.nodes.index(node))
                dequantized[name] = out.name
            node.inputs[slot] = dequantized[name]
    return graph.prune().verify()
