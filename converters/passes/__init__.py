"""Graph passes: each is `Graph -> Graph`, small, and verifies what it returns.

`lower_for_tflite` runs them in order and yields the NHWC graph the TFLite and MindSpore Lite
writers and the quantizer work on: conv2d / depthwise_conv2d / fully_connected with a bias and a
fused activation, avg_pool2d, reshape, softmax, pad.
"""

from __future__ import annotations

from converters.ir import Graph
from converters.passes.fold_bn import fold_bn
from converters.passes.fold_mean import fold_mean, global_pool_as_mean
from converters.passes.fuse_activation import fuse_activation
from converters.passes.fuse_bias_add import fuse_bias_add
from converters.passes.to_explicit_bias import to_explicit_bias
from converters.passes.to_nhwc import to_nhwc

PIPELINE = (fold_bn, fuse_bias_add, fuse_activation, fold_mean, to_nhwc, to_explicit_bias)


def lower_for_tflite(graph: Graph, mean_as: str = "avg_pool") -> Graph:
    """Run the passes of PIPELINE in order; `mean_as` picks AVERAGE_POOL_2D ("avg_pool") or MEAN ("mean")."""
    graph.verify()
    for run_pass in PIPELINE:
        graph = run_pass(graph, to=mean_as) if run_pass is fold_mean else run_pass(graph)
    return graph


__all__ = ["PIPELINE", "fold_bn", "fold_mean", "fuse_activation", "fuse_bias_add", "global_pool_as_mean",
           "lower_for_tflite", "to_explicit_bias", "to_nhwc"]
