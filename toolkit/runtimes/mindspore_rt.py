"""MindSpore predictors: `.ckpt` (the model rebuilt from its card) and `.mindir` (a compiled graph)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from toolkit.card import ModelCard, load_card
from toolkit.errors import ModelCardError, ModelFileError
from toolkit.runtimes.base import InputSpec, Predictor, register_runtime


@contextlib.contextmanager
def caller_execution_mode_kept():
    """Give MindSpore's execution mode (graph or PyNative) back to what it was when the block ends:
    training and checkpoint validation compile in graph mode, a caller may run PyNative."""
    import mindspore as ms

    mode = ms.get_context("mode")
    try:
        yield
    finally:
        ms.set_context(mode=mode)


def build_model(card: ModelCard):
    """A MobileNetV1 cell in eval mode with the architecture the card describes (random weights)."""
    from toolkit.models import create_model

    model = create_model(card.model, num_classes=card.num_classes, activation=card.activation)
    if model.width != card.width:
        raise ModelCardError(f"model card says {card.model} but width {card.width}", "fix the card's width or model")
    model.set_train(False)
    return model


def _run_fixed_batch(forward, x: np.ndarray, batch: int | None) -> np.ndarray:
    """Run `forward` on chunks of `batch` images (all at once when batch is None)."""
    if batch is None or len(x) == batch:
        return forward(x)
    return np.concatenate([forward(x[i:i + batch]) for i in range(0, len(x), batch)])


@register_runtime
class MindSporeCkptPredictor(Predictor):
    """A `.ckpt` checkpoint run by MindSpore; the card (`<ckpt>.json`) says which model to build."""

    suffixes = (".ckpt",)
    name = "mindspore"

    def __init__(self, path: Path, card: ModelCard, network):
        super().__init__(path, card)
        self.network = network

    @classmethod
    def load(cls, path: str | Path, card: ModelCard | None = None) -> "MindSporeCkptPredictor":
        from toolkit.models.checkpoint import load_weights

        path = Path(path)
        card = card or load_card(path)
        model = build_model(card)
        load_weights(model, path, head="strict")
        return cls(path, card, model)

    @classmethod
    def from_network(cls, network, card: ModelCard) -> "MindSporeCkptPredictor":
        """Wrap a live cell (for validation during training)."""
        return cls(Path("<network>"), card, network)

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(self.card.input_name, (-1, 3, self.card.image_size, self.card.image_size), "NCHW", "float32")

    def run(self, batch: np.ndarray) -> np.ndarray:
        import mindspore as ms

        self.network.set_train(False)
        return self.network(ms.Tensor(self.to_native(batch))).asnumpy().astype(np.float32)


@register_runtime
class MindIRPredictor(Predictor):
    """A `.mindir` graph exported by `mnv1-tk export`, run by MindSpore's GraphCell."""

    suffixes = (".mindir",)
    name = "mindspore-mindir"

    def __init__(self, path: Path, card: ModelCard, graph):
        super().__init__(path, card)
        self.graph = graph

    @classmethod
    def load(cls, path: str | Path, card: ModelCard | None = None) -> "MindIRPredictor":
        import mindspore as ms

        path = Path(path)
        card = card or load_card(path)
        try:
            graph = ms.nn.GraphCell(ms.load(str(path)))
        except (RuntimeError, ValueError, TypeError) as exc:
            raise ModelFileError(f"{path} is not a valid MINDIR model ({type(exc).__name__})",
                                 "export it again with `mnv1-tk export --format mindir`") from None
        predictor = cls(path, card, graph)
        predictor._check_card()
        return predictor

    def _check_card(self) -> None:
        """A MINDIR graph does not list its shapes: run the card's input once and check what comes out."""
        try:
            logits = self.run(np.zeros(self.card.input_shape, np.float32))
        except (RuntimeError, ValueError, TypeError) as exc:
            raise ModelCardError(f"model card {self.path}.json says input {list(self.card.input_shape)} but the model "
                                 f"does not run on it ({type(exc).__name__})",
                                 "use the card that was written with this model") from None
        if logits.shape[-1] != self.card.num_classes:
            raise ModelCardError(f"model card {self.path}.json says {self.card.num_classes} classes but the model "
                                 f"outputs {logits.shape[-1]}", "use the card that was written with this model")

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(self.card.input_name, self.card.input_shape, "NCHW", "float32")

    def run(self, batch: np.ndarray) -> np.ndarray:
        import mindspore as ms

        def forward(x: np.ndarray) -> np.ndarray:
            return self.graph(ms.Tensor(x)).asnumpy().astype(np.float32)

        return _run_fixed_batch(forward, self.to_native(batch), self.card.input_shape[0])
