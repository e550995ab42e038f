"""Top-1 / top-5 of any model file on a dataset split, through the one predictor interface.

Eval batches come from `toolkit.data` with the model card's preprocessing (image size, mean/std,
crop_pct, interpolation), so every format is measured on exactly the same input.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress

from toolkit.card import ModelCard
from toolkit.data import DatasetSpec, create_dataset, create_loader, create_transforms, dataset_labels, pipeline_error
from toolkit.errors import DataError, ModelFileError
from toolkit.models.checkpoint import checkpoint_card
from toolkit.runtimes.base import Predictor, load_predictor

DEFAULT_BATCH_SIZE = 64


def eval_loader(card: ModelCard, dataset_spec: DatasetSpec, split: str = "val", limit: int | None = None,
                batch_size: int = DEFAULT_BATCH_SIZE, shard: tuple[int, int] | None = None):
    """A batched MindSpore dataset with the card's eval transform, and its number of images."""
    shards = {"num_shards": shard[0], "shard_id": shard[1]} if shard and shard[0] > 1 else {}
    dataset = create_dataset(dataset_spec, split, card.image_size, shuffle=False, num_samples=limit, **shards)
    transforms = create_transforms(False, card.image_size, card.mean, card.std, card.crop_pct, card.interpolation)
    return create_loader(dataset, transforms, batch_size), dataset.get_dataset_size()


def eval_batches(card: ModelCard, dataset_spec: DatasetSpec, split: str = "val", limit: int | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, shard: tuple[int, int] | None = None, loader=None):
    """Yield (images float32 NCHW, labels int32) preprocessed with the card's eval transform."""
    if loader is None:
        loader, _ = eval_loader(card, dataset_spec, split, limit, batch_size, shard)
    iterator = loader.create_tuple_iterator(num_epochs=1, output_numpy=True)
    while True:
        try:
            images, labels = next(iterator)
        except StopIteration:
            return
        except RuntimeError as exc:
            raise (pipeline_error(exc) or exc) from None
        yield images.astype(np.float32), labels.astype(np.int32)


def evaluate(predictor: Predictor, dataset_spec: DatasetSpec, split: str = "val", limit: int | None = None,
             batch_size: int = DEFAULT_BATCH_SIZE, shard: tuple[int, int] | None = None,
             progress: Progress | None = None) -> dict:
    """Run `predictor` over a split: {"top1", "top5", "count", "correct_top1", "correct_top5", "seconds"}.

    `shard=(num_shards, shard_id)` evaluates one worker's share (the trainer sums the counts);
    `progress` (a rich Progress) gets a task that advances per image.
    """
    card = predictor.card
    classes = len(dataset_labels(dataset_spec))
    if classes > card.num_classes:
        raise DataError(f"the dataset has {classes} classes but the model only {card.num_classes}",
                        "validate on the dataset the model was trained for")
    loader, total = eval_loader(card, dataset_spec, split, limit, batch_size, shard)
    task = progress.add_task(f"{predictor.name} on {dataset_spec.name}/{split}", total=total) if progress else None
    correct1 = correct5 = count = 0
    start = time.perf_counter()
    for images, labels in eval_batches(card, dataset_spec, split, loader=loader):
        logits = predictor.run(images)
        top5 = np.argsort(-logits, axis=1, kind="stable")[:, :5]
        correct1 += int(np.sum(top5[:, 0] == labels))
        correct5 += int(np.sum(np.any(top5 == labels[:, None], axis=1)))
        count += len(labels)
        if progress:
            progress.update(task, advance=len(labels))
    if count == 0 and not shard:
        raise DataError(f"the '{split}' split of {dataset_spec.name} has no images", "check the data directory")
    return {"top1": correct1 / max(count, 1), "top5": correct5 / max(count, 1), "count": count,
            "correct_top1": correct1, "correct_top5": correct5, "seconds": time.perf_counter() - start}


@dataclass(frozen=True)
class ValidationResult:
    model: str
    runtime: str
    dataset: str
    split: str
    top1: float
    top5: float
    count: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def validate(model_path: str | Path, dataset_spec: DatasetSpec, split: str = "val", limit: int | None = None,
             batch_size: int = DEFAULT_BATCH_SIZE, *, width: float | None = None, image_size: int | None = None,
             activation: str | None = None, num_classes: int | None = None,
             card_overrides: dict | None = None) -> ValidationResult:
    """Top-1 / top-5 of a `.ckpt`, `.mindir`, `.onnx`, `.tflite` or `.ms` file (any registered format) on a split.

    The card next to the model supplies the preprocessing; `width`/`image_size`/`activation`/
    `num_classes` stand in for it for checkpoints without one (mindcv's); an `.onnx` or `.tflite`
    without one gets the card inferred from the model (`toolkit.card.infer_card`). `card_overrides`
    (mean, std, crop_pct, labels, input_range) adjust either.
    """
    from toolkit.card import apply_overrides, card_path, resolve_card
    from toolkit.runtimes.base import runtime_for

    path = Path(model_path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist", "check --model")
    runtime_for(path)  # an unknown suffix fails before anything is loaded
    overrides = {k: v for k, v in (card_overrides or {}).items() if v is not None}
    if path.suffix.lower() == ".ckpt" or card_path(path).is_file():
        card = apply_overrides(checkpoint_card(path, width=width, image_size=image_size, activation=activation,
                                               num_classes=num_classes), **overrides)
    else:
        card = resolve_card(path, **overrides)
    with _graph_mode_for(path):
        predictor = load_predictor(path, card=card)
        with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=Console(stderr=True),
                      transient=True) as progress:
            metrics = evaluate(predictor, dataset_spec, split, limit, batch_size, progress=progress)
    return ValidationResult(model=str(path), runtime=predictor.name, dataset=dataset_spec.name, split=split,
                            top1=metrics["top1"], top5=metrics["top5"], count=metrics["count"],
                            seconds=round(metrics["seconds"], 3))


@contextlib.contextmanager
def _graph_mode_for(path: Path):
    """MindSpore runs a rebuilt checkpoint much faster compiled; the caller's mode comes back after."""
    if path.suffix != ".ckpt":
        yield
        return
    import mindspore as ms

    from toolkit.runtimes.mindspore_rt import caller_execution_mode_kept

    with caller_execution_mode_kept():
        ms.set_context(mode=ms.GRAPH_MODE)
        yield


def print_report(result: ValidationResult, as_json: bool = False) -> None:
    """A table on stdout, or one JSON object with `as_json`."""
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    from rich.table import Table

    table = Table(title=f"{Path(result.model).name} on {result.dataset}/{result.split}")
    for column in ("runtime", "images", "top-1", "top-5", "seconds"):
        table.add_column(column, justify="right" if column != "runtime" else "left")
    table.add_row(result.runtime, str(result.count), f"{100 * result.top1:.2f}%", f"{100 * result.top5:.2f}%",
                  f"{result.seconds:.1f}")
    from toolkit.runtimes.base import runtime_for

    table.caption = getattr(runtime_for(result.model), "timing_note", None)  # e.g. an NPU emulator's seconds
    Console().print(table)
