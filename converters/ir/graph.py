"""The graph IR: tensors, nodes from a closed op vocabulary, and the model card as `meta`.

A `Graph` is plain data. Stages have one of three shapes: `X -> Graph`, `Graph -> Graph` or
`Graph -> bytes`; each calls `graph.verify()` on what it receives and what it returns.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from toolkit.errors import UnsupportedOpError

DTYPES = ("float32", "float16", "int8", "uint8", "int32", "int64")
LAYOUTS = ("NCHW", "NHWC")


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point).

    One scale per tensor, or one per channel along `axis` (the TFLite `quantized_dimension`).
    """

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0
    dtype: str = "int8"

    def __post_init__(self):
        object.__setattr__(self, "scale", np.asarray(self.scale, dtype=np.float32).reshape(-1))
        object.__setattr__(self, "zero_point", np.asarray(self.zero_point, dtype=np.int64).reshape(-1))
        if self.scale.shape != self.zero_point.shape:
            raise ValueError(f"scale {self.scale.shape} and zero_point {self.zero_point.shape} differ in length")
        if not np.all(self.scale > 0):
            raise ValueError("quantization scales must be positive")

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    @property
    def qmin(self) -> int:
        return int(np.iinfo(self.dtype).min)

    @property
    def qmax(self) -> int:
        return int(np.iinfo(self.dtype).max)

    def to_dict(self) -> dict:
        return {"scale": self.scale.tolist(), "zero_point": self.zero_point.tolist(),
                "axis": self.axis, "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: dict) -> "QuantParams":
        return cls(np.array(data["scale"]), np.array(data["zero_point"]), data["axis"], data["dtype"])


@dataclass
class Tensor:
    """A named value. Constants carry `data`; activations have `data=None`."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    data: np.ndarray | None = None
    quant: QuantParams | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)


@dataclass
class Graph:
    """Nodes in topological order; `layout` is the layout of every 4-D activation."""

    name: str
    layout: str
    tensors: dict[str, Tensor] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    # ---- building -------------------------------------------------------------------------
    def add_tensor(self, name: str, shape, dtype: str = "float32", data: np.ndarray | None = None,
                   quant: QuantParams | None = None) -> Tensor:
        if name in self.tensors:
            raise ValueError(f"tensor {name!r} already exists")
        tensor = Tensor(name, tuple(int(d) for d in shape), dtype, data, quant)
        self.tensors[name] = tensor
        return tensor

    def add_const(self, name: str, data: np.ndarray) -> Tensor:
        data = np.ascontiguousarray(data)
        return self.add_tensor(self.unique_name(name), data.shape, str(data.dtype), data)

    def add_node(self, op: str, name: str, inputs: list[str], outputs: list[str], index: int | None = None,
                 **attrs) -> Node:
        node = Node(op, name, list(inputs), list(outputs), attrs)
        self.nodes.insert(len(self.nodes) if index is None else index, node)
        return node

    def unique_name(self, base: str) -> str:
        name, i = base, 1
        while name in self.tensors:
            name, i = f"{base}_{i}", i + 1
        return name

    # ---- queries --------------------------------------------------------------------------
    def producer(self, tensor: str) -> Node | None:
        return next((n for n in self.nodes if tensor in n.outputs), None)

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def const(self, name: str) -> np.ndarray | None:
        return self.tensors[name].data

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return counts

    # ---- editing --------------------------------------------------------------------------
    def copy(self) -> "Graph":
        return copy.deepcopy(self)

    def remove_node(self, node: Node) -> None:
        self.nodes.remove(node)

    def replace_uses(self, old: str, new: str) -> None:
        """Make every consumer (and the graph outputs) read `new` instead of `old`."""
        for n in self.nodes:
            n.inputs = [new if t == old else t for t in n.inputs]
        self.outputs = [new if t == old else t for t in self.outputs]

    def bypass(self, node: Node) -> None:
        """Remove a single-input, single-output node, wiring its input to its consumers."""
        src, dst = node.inputs[0], node.outputs[0]
        self.remove_node(node)
        if dst in self.outputs:
            # Keep the graph output's name: rename the producer's output instead.
            producer = self.producer(src)
            producer.outputs = [dst if t == src else t for t in producer.outputs]
            for n in self.nodes:
                n.inputs = [dst if t == src else t for t in n.inputs]
            self.tensors[dst].shape = self.tensors[src].shape
            del self.tensors[src]
        else:
            self.replace_uses(dst, src)
            del self.tensors[dst]

    def prune(self) -> "Graph":
        """Drop nodes whose outputs nobody reads and tensors nobody references."""
        live = set(self.outputs)
        kept: list[Node] = []
        for n in reversed(self.nodes):
            if any(t in live for t in n.outputs):
                kept.append(n)
                live.update(t for t in n.inputs if t)
        self.nodes = kept[::-1]
        used = live | set(self.inputs)
        self.tensors = {k: v for k, v in self.tensors.items() if k in used}
        return self

    # ---- checking -------------------------------------------------------------------------
    def verify(self) -> "Graph":
        """Check structure: known ops, defined tensors, topological order, shapes where inferable."""
        from converters.ir.ops import OPS, check_node

        if self.layout not in LAYOUTS:
            raise ValueError(f"graph layout must be one of {LAYOUTS}, got {self.layout!r}")
        unknown = sorted({n.op for n in self.nodes if n.op not in OPS})
        if unknown:
            raise UnsupportedOpError(f"graph holds ops outside the IR vocabulary: {', '.join(unknown)}")
        available = set(self.inputs) | {k for k, t in self.tensors.items() if t.is_const}
        for name in self.inputs:
            if name not in self.tensors:
                raise ValueError(f"graph input {name!r} has no tensor")
        for n in self.nodes:
            for t in n.inputs:
                if t not in self.tensors:
                    raise ValueError(f"node {n.name} ({n.op}) reads undefined tensor {t!r}")
                if t not in available:
                    raise ValueError(f"node {n.name} ({n.op}) reads {t!r} before it is produced")
            for t in n.outputs:
                if t not in self.tensors:
                    raise ValueError(f"node {n.name} ({n.op}) writes undefined tensor {t!r}")
                if t in available:
                    raise ValueError(f"tensor {t!r} is produced twice")
                available.add(t)
            check_node(self, n)
        for t in self.outputs:
            if t not in available:
                raise ValueError(f"graph output {t!r} is never produced")
        for t in self.tensors.values():
            if t.dtype not in DTYPES:
                raise ValueError(f"tensor {t.name!r} has unknown dtype {t.dtype!r}")
        return self

    def summary(self) -> str:
        counts = ", ".join(f"{op}×{k}" for op, k in sorted(self.op_counts().items()))
        return f"Graph {self.name} [{self.layout}] {len(self.nodes)} nodes: {counts}"
