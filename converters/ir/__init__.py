"""The graph IR shared by the importer, the passes, the quantizer and the model writers."""

from converters.ir.graph import DTYPES, LAYOUTS, Graph, Node, QuantParams, Tensor
from converters.ir.ops import ACTIVATIONS, OPS, attr

__all__ = ["ACTIVATIONS", "DTYPES", "LAYOUTS", "OPS", "Graph", "Node", "QuantParams", "Tensor", "attr"]
