"""The model card: a small JSON file next to every exported or converted model.

It carries what an app needs to feed the model (size, layout, mean/std, crop_pct, input quantization)
and to read its output (labels). Converters, runtimes and the Android demo all read it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.errors import ModelCardError
from toolkit.fsutil import write_json

CARD_SUFFIX = ".json"
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class InputQuant:
    """Quantization of an int8 model input: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class ModelCard:
    model: str
    width: float
    image_size: int
    num_classes: int
    labels: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    activation: str = "relu6"
    format: str = "onnx"
    precision: str = "fp32"
    input_name: str = "x"
    input_layout: str = "NCHW"
    input_dtype: str = "float32"
    input_quant: InputQuant | None = None
    output_name: str = "logits"
    output_dtype: str = "float32"
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def stem(self) -> str:
        """Artifact stem, `<model>_<size>`, e.g. `mobilenet_v1_025_224`."""
        return f"{self.model}_{self.image_size}"

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        s = self.image_size
        return (1, 3, s, s) if self.input_layout == "NCHW" else (1, s, s, 3)

    def replace(self, **changes) -> "ModelCard":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "model card") -> "ModelCard":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ModelCardError(f"{where} has unknown keys {unknown}", f"valid keys: {', '.join(sorted(names))}")
        try:
            data = dict(data)
            data["labels"] = tuple(data["labels"])
            data["mean"] = tuple(data["mean"])
            data["std"] = tuple(data["std"])
            if data.get("input_quant"):
                data["input_quant"] = InputQuant(**data["input_quant"])
            card = cls(**data)
        except (KeyError, TypeError) as exc:
            raise ModelCardError(f"{where} is incomplete: {exc}", "re-export the model with `mnv1-tk export`") from None
        if len(card.labels) != card.num_classes:
            raise ModelCardError(f"{where} lists {len(card.labels)} labels for {card.num_classes} classes",
                                 "fix the labels or re-export the model")
        return card


def card_path(model_path: str | Path) -> Path:
    """`out/mobilenet_v1_025_224.fp32.tflite` -> `out/mobilenet_v1_025_224.fp32.tflite.json`."""
    return Path(str(model_path) + CARD_SUFFIX)


def save_card(card: ModelCard, model_path: str | Path) -> Path:
    return write_json(card_path(model_path), card.to_dict())


def load_card(model_path: str | Path) -> ModelCard:
    """Read the card that sits next to `model_path`."""
    path = card_path(model_path)
    if not path.is_file():
        raise ModelCardError(f"model card {path} is missing",
                             "keep the .json card next to the model, or re-export it with `mnv1-tk export`")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelCardError(f"model card {path} is not valid JSON: {exc}", "re-export the model") from None
    return ModelCard.from_dict(data, where=f"model card {path}")
