"""Fold a global mean over the spatial axes into AVERAGE_POOL_2D (default) or keep it as MEAN.

AVERAGE_POOL_2D over the whole feature map is what TFLite's own converter emits for MobileNetV1
and has the simplest int8 kernel (no requantization). A mean with keepdims=False becomes the
pool followed by a reshape to [N, C].
"""

from __future__ import annotations

from converters.ir import Graph, Node

SPATIAL_AXES = {"NCHW": (2, 3), "NHWC": (1, 2)}


def is_global_mean(graph: Graph, node: Node) -> bool:
    return (node.op == "mean" and len(graph.tensors[node.inputs[0]].shape) == 4
            and tuple(sorted(node.attrs["axes"])) == SPATIAL_AXES[graph.layout])


def fold_mean(graph: Graph, to: str = "avg_pool") -> Graph:
    """`to="avg_pool"` rewrites global means as avg_pool2d; `to="mean"` leaves them as they are."""
    if to not in ("avg_pool", "mean"):
        raise ValueError(f"fold_mean: `to` must be 'avg_pool' or 'mean', got {to!r}")
    graph = graph.copy()
    if to == "mean":
        return graph.verify()
    for mean in [n for n in graph.nodes if is_global_mean(graph, n)]:
        x = graph.tensors[mean.inputs[0]].shape
        hw = (x[2], x[3]) if graph.layout == "NCHW" else (x[1], x[2])
        index = graph.nodes.index(mean)
        if mean.attrs["keepdims"]:
            graph.nodes[index] = Node("avg_pool2d", mean.name, mean.inputs, mean.outputs,
                                      {"kernel": hw, "strides": (1, 1), "pads": (0, 0, 0, 0)})
            continue
        pooled = graph.add_tensor(graph.unique_name(f"{mean.name}_pooled"), ())
        graph.nodes[index] = Node("avg_pool2d", mean.name, mean.inputs, [pooled.name],
                                  {"kernel": hw, "strides": (1, 1), "pads": (0, 0, 0, 0)})
        graph.add_node("reshape", f"{mean.name}_flatten", [pooled.name], mean.outputs, index=index + 1,
                       shape=(x[0], x[1] if graph.layout == "NCHW" else x[3]))
    return graph.verify()


def global_pool_as_mean(graph: Graph) -> Graph:
    """The inverse for the int8 graph: a global avg_pool2d (NHWC) flattened by a reshape to [N, C]
    becomes one MEAN over (1, 2) with keepdims=False, as the TF converter writes it. XNNPACK takes that
    MEAN in int8, where it leaves an int8 AVERAGE_POOL_2D to the CPU kernels between two partitions."""
    graph = graph.copy()
    for pool in [n for n in graph.nodes if n.op == "avg_pool2d" and graph.layout == "NHWC"]:
        x = graph.tensors[pool.inputs[0]].shape
        readers = graph.consumers(pool.outputs[0])
        if (tuple(pool.attrs["kernel"]) != (x[1], x[2]) or tuple(pool.attrs["pads"]) != (0, 0, 0, 0)
                or pool.attrs.get("act", "none") != "none" or pool.outputs[0] in graph.outputs
                or len(readers) != 1 or readers[0].op != "reshape"
                or tuple(graph.tensors[readers[0].outputs[0]].shape) != (x[0], x[3])):
            continue
        flatten = readers[0]
        index = graph.nodes.index(pool)
        graph.nodes[index] = Node("mean", pool.name, pool.inputs, flatten.outputs, {"axes": (1, 2), "keepdims": False})
        graph.remove_node(flatten)
        del graph.tensors[pool.outputs[0]]
    return graph.verify()
