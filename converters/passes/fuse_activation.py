"""Fuse a ReLU / ReLU6 into the op that produces its input (TFLite's fused_activation_function)."""

from __future__ import annotations

from converters.ir import Graph, Node

FUSABLE = ("conv2d", "depthwise_conv2d", "fully_connected", "avg_pool2d", "add")


def is_fusable_activation(graph: Graph, act: Node) -> bool:
    producer = graph.producer(act.inputs[0])
    return (producer is not None and producer.op in FUSABLE and producer.attrs.get("act", "none") == "none"
            and len(graph.consumers(act.inputs[0])) == 1 and act.inputs[0] not in graph.outputs)


def fuse_activation(graph: Graph) -> Graph:
    graph = graph.copy()
    for act in [n for n in graph.nodes if n.op in ("relu", "relu6")]:
        if not is_fusable_activation(graph, act):
            continue
        producer = graph.producer(act.inputs[0])
        producer.attrs["act"] = act.op
        del graph.tensors[producer.outputs[0]]
        producer.outputs = [act.outputs[0]]
        graph.remove_node(act)
    return graph.prune().verify()
