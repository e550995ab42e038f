"""QuantPlan: the plain data a quantization run produces, and `to_int8` consumes.

It can be saved (`save`) and loaded back, so a calibration can be reused or inspected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from converters.ir import QuantParams
from toolkit.fsutil import atomic_path

IO_TYPES = ("float", "int8")


@dataclass
class QuantPlan:
    """activations: params per activation tensor; weights: params per layer (node name);
    biases: the float bias per layer (after bias correction); round_up: AdaRound decisions per layer;
    float_layers: layers kept in float; io: "float" (QUANTIZE/DEQUANTIZE at the edges) or "int8".

    Weight params are per channel along `axis`, the output-channel axis of the IR weight (conv2d 0 of
    [O,H,W,I], depthwise 3 of [1,H,W,C], fully_connected 0 of [O,I]); a single scale means per tensor
    (check `scale.size`, not `axis`). The plan belongs to the float graph `Quantizer.prepare` returns
    (`QuantizationResult.float_graph`): with recipe global_pool "mean" its global pool is one `mean`
    node (axes (1, 2), keepdims False) whose output, the former reshape's, has its own activation
    params (the avg_pool2d and reshape are gone)."""

    activations: dict[str, QuantParams] = field(default_factory=dict)
    weights: dict[str, QuantParams] = field(default_factory=dict)
    biases: dict[str, np.ndarray] = field(default_factory=dict)
    round_up: dict[str, np.ndarray] = field(default_factory=dict)
    float_layers: tuple[str, ...] = ()
    io: str = "float"

    def save(self, path: str | Path) -> None:
        arrays = {f"bias/{k}": v for k, v in self.biases.items()}
        arrays.update({f"round_up/{k}": v for k, v in self.round_up.items()})
        header = {
            "activations": {k: v.to_dict() for k, v in self.activations.items()},
            "weights": {k: v.to_dict() for k, v in self.weights.items()},
            "float_layers": list(self.float_layers),
            "io": self.io,
        }
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, header=np.array(json.dumps(header)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "QuantPlan":
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            biases = {k[len("bias/"):]: data[k] for k in data.files if k.startswith("bias/")}
            round_up = {k[len("round_up/"):]: data[k] for k in data.files if k.startswith("round_up/")}
        return cls(
            activations={k: QuantParams.from_dict(v) for k, v in header["activations"].items()},
            weights={k: QuantParams.from_dict(v) for k, v in header["weights"].items()},
            biases=biases, round_up=round_up, float_layers=tuple(header["float_layers"]), io=header["io"])
