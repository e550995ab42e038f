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


# ---- models without a card ---------------------------------------------------------------------
INPUT_RANGES = ("0-1", "0-255")
CARD_OVERRIDES = ("mean", "std", "crop_pct", "labels", "input_range")


def normalization(mean=None, std=None, input_range: str | None = None) -> tuple[tuple, tuple]:
    """Card mean/std (pixel units, 0..255) from options in the units of the model's input range.

    "0-1" (default): the model takes pixel / 255 normalised with mean/std given on the 0..1 scale
    (default ImageNet's, timm's and torchvision's convention); "0-255": the model takes pixels
    normalised with mean/std in pixel units (default 0 and 1: raw pixels).
    """
    from toolkit.models.mobilenetv1 import PretrainedCfg

    input_range = input_range or "0-1"
    if input_range not in INPUT_RANGES:
        raise ModelCardError(f"--input-range {input_range} is not one of {', '.join(INPUT_RANGES)}",
                             "pass 0-1 (pixels / 255) or 0-255 (raw pixels)")
    for name, value in (("mean", mean), ("std", std)):
        if value is not None and len(value) != 3:
            raise ModelCardError(f"--{name} has {len(value)} values", f"pass three, one per RGB channel, e.g. --{name} "
                                 + ("0.485,0.456,0.406" if name == "mean" else "0.229,0.224,0.225"))
    if std is not None and min(std) <= 0:
        raise ModelCardError(f"--std {','.join(map(str, std))} has a value <= 0", "pass positive standard deviations")
    if input_range == "0-1":
        cfg = PretrainedCfg()
        return (tuple(float(m) * 255 for m in mean) if mean is not None else cfg.mean,
                tuple(float(s) * 255 for s in std) if std is not None else cfg.std)
    return (tuple(float(m) for m in (mean if mean is not None else (0.0, 0.0, 0.0))),
            tuple(float(s) for s in (std if std is not None else (1.0, 1.0, 1.0))))


def read_labels(path: str | Path, num_classes: int) -> tuple[str, ...]:
    """One label per line (blank lines skipped); as many as the model has classes."""
    path = Path(path)
    try:
        labels = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelCardError(f"cannot read labels file {path} ({type(exc).__name__})",
                             "pass a text file with one label per line") from None
    if len(labels) != num_classes:
        raise ModelCardError(f"labels file {path} has {len(labels)} labels but the model has {num_classes} classes",
                             "pass a file with one label per line, one per class")
    return labels


def apply_overrides(card: ModelCard, *, mean=None, std=None, crop_pct: float | None = None,
                    labels: str | Path | None = None, input_range: str | None = None) -> ModelCard:
    """`card` with the options the user gave (None: keep the card's value)."""
    changes: dict = {}
    if mean is not None or std is not None or input_range is not None:
        new_mean, new_std = normalization(mean, std, input_range)
        changes.update(mean=new_mean, std=new_std, extra=dict(card.extra, input_range=input_range or "0-1"))
    if crop_pct is not None:
        if not 0 < crop_pct <= 1:
            raise ModelCardError(f"--crop-pct {crop_pct} is outside (0, 1]", "pass e.g. 0.875 (224 of 256)")
        changes["crop_pct"] = float(crop_pct)
    if labels is not None:
        changes["labels"] = read_labels(labels, card.num_classes)
    return card.replace(**changes)


def _model_stem(path: Path, image_size: int) -> str:
    """`mobilenet_v1_100_224.fp32.tflite` -> `mobilenet_v1_100`: the name before the first dot, size dropped."""
    import re

    name = re.sub(r"[^A-Za-z0-9_]+", "_", path.name.split(".")[0]).strip("_") or "model"
    return name[: -len(f"_{image_size}")] if name.endswith(f"_{image_size}") else name


def infer_card(path: str | Path, *, width: float | None = None, image_size: int | None = None,
               activation: str | None = None, **overrides) -> ModelCard:
    """The card of a model file that has none, read from the model itself.

    Input name, layout, size and dtype, the number of classes and the width (the stem's 32 * width
    channels) come from the file (`.onnx`, `.tflite`; a `.ckpt` needs `image_size`, and its
    `width` is read from the stem when not given); a `.tflite` with TFLite metadata also gives its
    normalisation and labels. What a file cannot say comes from `overrides` (CARD_OVERRIDES: mean,
    std, crop_pct, labels file, input_range; see `apply_overrides`), with ImageNet's mean/std and
    crop_pct 0.875 by default.
    """
    from toolkit.errors import ModelFileError

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist", "check the path")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from converters.onnx_import import onnx_facts

        facts = onnx_facts(path)
    elif suffix == ".tflite":
        from converters.tflite_import import tflite_facts

        facts = tflite_facts(path)
    elif suffix == ".ckpt":
        from toolkit.models.checkpoint import checkpoint_facts

        facts = checkpoint_facts(path, width=width, image_size=image_size, activation=activation)
    else:
        raise ModelCardError(f"{path} has no model card ({path.name}.json) and its card cannot be inferred",
                             "pass an .onnx, .tflite or .ckpt, or keep the card next to the model")
    classes = facts["num_classes"]
    card = ModelCard(model=facts.get("model") or _model_stem(path, facts["image_size"]),
                     width=facts["width"], image_size=facts["image_size"], num_classes=classes,
                     labels=facts.get("labels") or tuple(str(i) for i in range(classes)),
                     mean=facts.get("mean", (0.0, 0.0, 0.0)), std=facts.get("std", (1.0, 1.0, 1.0)),
                     activation=facts.get("activation", "relu6"), format=suffix.lstrip("."),
                     precision=facts.get("precision", "fp32"), input_name=facts["input_name"],
                     input_layout=facts["input_layout"], input_dtype=facts.get("input_dtype", "float32"),
                     output_name=facts["output_name"], source=path.name, extra={"card": "inferred"})
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(CARD_OVERRIDES))
    if unknown:
        raise TypeError(f"infer_card got unknown overrides {unknown}")
    if "mean" not in facts or {"mean", "std", "input_range"} & set(overrides):
        overrides.setdefault("input_range", "0-1")
    return apply_overrides(card, **overrides)


def resolve_card(path: str | Path, **overrides) -> ModelCard:
    """The card next to `path` with the given overrides applied, or, when there is none, the inferred card."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if card_path(path).is_file():
        return apply_overrides(load_card(path), **{k: v for k, v in overrides.items() if k in CARD_OVERRIDES})
    return infer_card(path, **overrides)
