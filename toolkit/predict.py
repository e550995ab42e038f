"""`mnv1-tk predict`: classify image files with any supported model file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.errors import ConfigError


@dataclass(frozen=True)
class Prediction:
    """The top-k classes of one image, best first; scores are softmax probabilities."""

    image: Path
    labels: tuple[str, ...]
    indices: tuple[int, ...]
    scores: tuple[float, ...]

    def to_dict(self) -> dict:
        return {"image": str(self.image),
                "top": [{"label": label, "index": index, "score": score}
                        for label, index, score in zip(self.labels, self.indices, self.scores)]}


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict(images: list[str | Path], model: str | Path, topk: int = 5, card_overrides: dict | None = None,
            **options) -> list[Prediction]:
    """Preprocess `images` with the model card's eval transform and run `model` on them.

    A model without a card gets one inferred, adjusted by `card_overrides` (see `load_predictor`).
    `options` go to the runtime (e.g. num_threads). Grayscale and RGBA images are converted to RGB.
    """
    from toolkit.preprocess import load_image, preprocess
    from toolkit.runtimes import load_predictor

    if topk < 1:
        raise ConfigError(f"--topk {topk} must be at least 1", "pass --topk 5")
    if not images:
        raise ConfigError("no images given", "pass one or more image files")
    decoded = [load_image(path) for path in images]  # a bad image fails before the model is loaded
    predictor = load_predictor(model, card_overrides=card_overrides, **options)
    card = predictor.card
    probabilities = softmax(predictor.run(np.stack([preprocess(image, card) for image in decoded])))
    k = min(topk, card.num_classes)
    results = []
    for path, p in zip(images, probabilities):
        best = np.argsort(-p, kind="stable")[:k]
        results.append(Prediction(Path(path), tuple(card.labels[i] for i in best), tuple(int(i) for i in best),
                                  tuple(float(p[i]) for i in best)))
    return results


def predict_command(images: list[Path], model: Path, topk: int = 5, as_json: bool = False,
                    card_overrides: dict | None = None) -> list[Prediction]:
    """`mnv1-tk predict`: predict(), printed as a table (or JSON) on stdout."""
    import json

    from rich.console import Console
    from rich.table import Table

    results = predict(images, model, topk, card_overrides=card_overrides)
    if as_json:
        print(json.dumps({"model": str(model), "predictions": [r.to_dict() for r in results]}, indent=2))
        return results
    table = Table(title=f"mnv1-tk predict — {Path(model).name}")
    for column in ("image", "rank", "label", "score"):
        table.add_column(column, justify="right" if column in ("rank", "score") else "left")
    for r in results:
        for rank, (label, score) in enumerate(zip(r.labels, r.scores), start=1):
            table.add_row(r.image.name if rank == 1 else "", str(rank), label, f"{score:.4f}",
                          end_section=rank == len(r.labels))
    Console().print(table)
    return results
