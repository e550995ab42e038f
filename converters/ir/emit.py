"""What every model writer does with the graph's nodes: one emitter per op, every problem listed at once."""

from __future__ import annotations

from typing import Callable

from converters.ir.graph import Graph
from toolkit.errors import UnsupportedOpError


def emit_nodes(graph: Graph, emitters: dict[str, Callable], builder, writer: str, fix: str) -> None:
    """Call `emitters[node.op](builder, node)` for each node in order. Ops without an emitter and the
    problems emitters raise are collected, then reported together as one UnsupportedOpError."""
    problems = []
    for node in graph.nodes:
        if node.op not in emitters:
            problems.append(f"{node.op} (node '{node.name}')")
            continue
        try:
            emitters[node.op](builder, node)
        except UnsupportedOpError as exc:
            problems.append(exc.problem)
    if problems:
        raise UnsupportedOpError(f"the {writer} cannot write: {'; '.join(problems)}",
                                 f"{fix}{', '.join(sorted(emitters))}")
