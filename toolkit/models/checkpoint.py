"""Load MobileNetV1 weights from a MindSpore checkpoint: mindcv's released ones or the toolkit's own.

The backbone must match exactly; a mismatch names the first parameter that differs and both shapes.
The head adapts: mindcv's 1001-class ImageNet head is sliced to 1000 classes (as mindcv does, the
1001st class is the unused one), any other class count is re-initialised (fine-tuning). The
returned `LoadReport.message` says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.errors import CheckpointError

HEAD = "classifier"
IMAGENET_CLASSES, MINDCV_IMAGENET_CLASSES = 1000, 1001
STEM_WEIGHT = "features.0.weight"
HEAD_MODES = ("adapt", "strict")


@dataclass(frozen=True)
class LoadReport:
    """What `load_weights` did."""

    path: Path
    head: str  # "loaded", "sliced" or "reinitialised"
    message: str
    checkpoint_classes: int


def read_checkpoint(path: str | Path) -> dict:
    """All entries of a `.ckpt` file as {name: Parameter}; a corrupt or truncated file is a CheckpointError."""
    import mindspore as ms

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist", "check the path")
    try:
        params = ms.load_checkpoint(str(path))
    except (ValueError, RuntimeError, TypeError, OSError) as exc:
        reason = "is empty" if path.stat().st_size == 0 else "is corrupt or truncated"
        raise CheckpointError(f"checkpoint {path} {reason} ({type(exc).__name__})",
                              "re-download it or pick another checkpoint") from None
    if not params:
        raise CheckpointError(f"checkpoint {path} holds no parameters", "re-download it or pick another checkpoint")
    return params


def checkpoint_num_classes(params: dict, path: str | Path = "checkpoint") -> int:
    weight = params.get(f"{HEAD}.weight")
    if weight is None:
        raise CheckpointError(f"{path} has no '{HEAD}.weight'", "pass a MobileNetV1 checkpoint (mindcv or mnv1-tk)")
    return int(weight.shape[0])


def checkpoint_width(params: dict) -> float | None:
    """The width multiplier the stem convolution implies (32 * width output channels), if it is a standard one."""
    from toolkit.models.mobilenetv1 import STEM_CHANNELS, WIDTHS

    stem = params.get(STEM_WEIGHT)
    if stem is None:
        return None
    return next((w for w in WIDTHS if int(STEM_CHANNELS * w) == stem.shape[0]), None)


def _head_arrays(params: dict, model_classes: int, head: str, path: Path) -> tuple[dict, str, str]:
    """The head entries to load, what was done and a message."""
    ckpt_classes = checkpoint_num_classes(params, path)
    weight, bias = params[f"{HEAD}.weight"].asnumpy(), params[f"{HEAD}.bias"].asnumpy()
    if ckpt_classes == model_classes:
        return {f"{HEAD}.weight": weight, f"{HEAD}.bias": bias}, "loaded", f"head: {ckpt_classes} classes loaded"
    if ckpt_classes == MINDCV_IMAGENET_CLASSES and model_classes == IMAGENET_CLASSES:
        message = "head: sliced 1001 -> 1000 classes (kept the first 1000 rows, as mindcv does)"
        return {f"{HEAD}.weight": weight[:IMAGENET_CLASSES], f"{HEAD}.bias": bias[:IMAGENET_CLASSES]}, "sliced", message
    if head == "strict":
        raise CheckpointError(f"checkpoint {path} has a {ckpt_classes}-class head but the model has {model_classes}",
                              f"pass --num-classes {ckpt_classes}")
    return {}, "reinitialised", (f"head: re-initialised for {model_classes} classes "
                                 f"(the checkpoint has {ckpt_classes}); the backbone is loaded")


def load_weights(model, source: str | Path | dict, head: str = "adapt", path: str | Path | None = None) -> LoadReport:
    """Load a checkpoint (a path or the dict `read_checkpoint` returns) into a MobileNetV1 cell.

    `head="adapt"` re-initialises a head of another class count (fine-tuning); `head="strict"` only
    allows the 1001 -> 1000 slice; a re-initialised head keeps the model's own fresh initialisation.
    Entries the model does not have (optimizer moments, step counters) are ignored; a missing or
    differently shaped backbone parameter is a CheckpointError.
    """
    import mindspore as ms

    if head not in HEAD_MODES:
        raise ValueError(f"head must be one of {HEAD_MODES}")
    if isinstance(source, dict):
        params, path = source, Path(path or "checkpoint")
    else:
        path = Path(source)
        params = read_checkpoint(path)
    if f"{HEAD}.weight" not in params and STEM_WEIGHT not in params:
        raise CheckpointError(f"{path} is not a MobileNetV1 checkpoint (no '{STEM_WEIGHT}' or '{HEAD}.weight')",
                              "pass a checkpoint written by mindcv or mnv1-tk")
    arrays, state, message = _head_arrays(params, model.num_classes, head, path)
    for param in model.get_parameters():
        name = param.name
        if name.startswith(f"{HEAD}."):
            continue
        if name not in params:
            raise CheckpointError(f"checkpoint {path} lacks parameter '{name}'",
                                  "pass a MobileNetV1 checkpoint written by mindcv or mnv1-tk")
        ckpt_shape, model_shape = tuple(params[name].shape), tuple(param.shape)
        if ckpt_shape != model_shape:
            width = checkpoint_width(params)
            hint = f"the checkpoint looks like width {width}: pass --width {width}" if width else \
                "pass the --width the checkpoint was trained with"
            raise CheckpointError(f"checkpoint {path} does not fit {_model_label(model)}: parameter '{name}' has shape "
                                  f"{list(ckpt_shape)} in the checkpoint but {list(model_shape)} in the model", hint)
        arrays[name] = params[name].asnumpy()
    for param in model.get_parameters():
        if param.name in arrays:
            param.set_data(ms.Tensor(np.ascontiguousarray(arrays[param.name]), dtype=param.dtype))
    return LoadReport(path=path, head=state, message=message, checkpoint_classes=checkpoint_num_classes(params, path))


def _model_label(model) -> str:
    from toolkit.models.mobilenetv1 import model_name

    return f"{model_name(model.width)} ({model.num_classes} classes)"


def checkpoint_card(model_path: str | Path, *, width: float | None = None, image_size: int | None = None,
                    activation: str | None = None, num_classes: int | None = None,
                    labels: tuple[str, ...] | None = None):
    """The card of a model file with the given options replacing its values.

    A file without a card (a checkpoint from mindcv) gets one built from the options and the zoo's
    preprocessing; then width and image size are required.
    """
    from toolkit.card import ModelCard, card_path, load_card
    from toolkit.errors import ModelCardError
    from toolkit.models.mobilenetv1 import WIDTHS, default_cfgs, model_name

    if width is not None and width not in WIDTHS:
        raise ModelCardError(f"there is no MobileNetV1 of width {width}", f"use one of {', '.join(map(str, WIDTHS))}")
    if card_path(model_path).is_file():  # a card that is there but wrong is an error, not a missing card
        card = load_card(model_path)
    else:
        if width is None or image_size is None:
            raise ModelCardError(f"{model_path} has no model card ({Path(model_path).name}.json)",
                                 "pass --width and --image-size (mindcv's ImageNet checkpoints also need "
                                 "--activation relu --num-classes 1001)")
        cfg = default_cfgs[model_name(width)]
        classes = num_classes or cfg.num_classes
        return ModelCard(model=model_name(width), width=width, image_size=image_size, num_classes=classes,
                         labels=tuple(labels) if labels else tuple(str(i) for i in range(classes)),
                         mean=cfg.mean, std=cfg.std, crop_pct=cfg.crop_pct, interpolation=cfg.interpolation,
                         activation=activation or "relu6", format=Path(model_path).suffix.lstrip("."),
                         source=Path(model_path).name)
    changes = {k: v for k, v in {"width": width, "image_size": image_size, "activation": activation,
                                 "num_classes": num_classes}.items() if v is not None}
    if width is not None:
        changes["model"] = model_name(width)
    if labels is not None:
        changes["labels"] = tuple(labels)
    elif num_classes is not None and num_classes != card.num_classes:
        changes["labels"] = tuple(str(i) for i in range(num_classes))
    card = card.replace(**changes)
    if len(card.labels) != card.num_classes:
        raise ModelCardError(f"{len(card.labels)} labels for {card.num_classes} classes",
                             "pass as many labels as classes")
    return card


def checkpoint_facts(path: str | Path, *, width: float | None = None, image_size: int | None = None,
                     activation: str | None = None) -> dict:
    """Card facts of a checkpoint without a card (mindcv's released ones, `mobilenet_v1_100-<hash>.ckpt`).

    Classes and width come from the checkpoint (its head and its stem convolution); the image size
    must be given; the activation defaults to ReLU, what mindcv's MobileNetV1 is trained with.
    """
    from toolkit.errors import ModelCardError
    from toolkit.models.mobilenetv1 import WIDTHS, model_name

    if image_size is None:
        raise ModelCardError(f"{Path(path).name} has no model card, and a checkpoint does not say its input size",
                             "pass --image-size (224 for mindcv's ImageNet checkpoints)")
    params = read_checkpoint(path)
    found = checkpoint_width(params)
    if width is None and found is None:
        raise ModelCardError(f"{Path(path).name} has no model card and its width is not one of "
                             f"{', '.join(map(str, WIDTHS))}", "pass --width")
    if width is not None and found is not None and width != found:
        raise ModelCardError(f"{Path(path).name} has width {found} (its stem convolution), not {width}",
                             f"pass --width {found}")
    width = width if width is not None else found
    return {"model": model_name(width), "width": width, "image_size": image_size,
            "num_classes": checkpoint_num_classes(params, path), "activation": activation or "relu",
            "input_name": "x", "input_layout": "NCHW", "output_name": "logits"}
