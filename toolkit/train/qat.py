"""Quantization-aware fine-tuning inside the normal training run (`mnv1-tk train --qat --from CKPT`).

The trainer asks this module for its networks, its loss and the card entry of each checkpoint:
the network trained is `DistillationNet(QAT student, float teacher)`, both from `ckpt_path`; the
copy validated and saved is the QAT student (its top-1 is the int8 model's), and its checkpoints
carry the learnt ranges as parameters (`qat.*`, for `--resume`) and on their card (for `convert`).
Model, activation, classes, input size and normalisation come from the source checkpoint's card.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from toolkit.errors import ConfigError
from toolkit.train.config import TrainConfig


def source_card(config: TrainConfig):
    from toolkit.card import load_card

    if not config.model.checkpoint:
        raise ConfigError("--qat fine-tunes a trained model", "pass it with --from CKPT")
    return load_card(Path(config.model.checkpoint))


def with_source_model(config: TrainConfig) -> TrainConfig:
    """The config with the source checkpoint's model, input size and normalisation, and the fine-tuning's
    learning rate, weight decay and gradient clipping (`qat_lr`, `qat_weight_decay`, `qat_clip_value`)."""
    card = source_card(config)
    if card.extra.get("qat"):
        raise ConfigError(f"{Path(config.model.checkpoint).name} is already a QAT checkpoint",
                          "fine-tune its float source, or continue that run with --resume")
    model = dataclasses.replace(config.model, name=card.model, activation=card.activation,
                                num_classes=card.num_classes)
    data = dataclasses.replace(config.data, image_size=card.image_size, mean=tuple(card.mean), std=tuple(card.std),
                               crop_pct=card.crop_pct, interpolation=card.interpolation)
    return config.replace(model=model, data=data,
                          scheduler=dataclasses.replace(config.scheduler, lr=config.qat.lr),
                          optimizer=dataclasses.replace(config.optimizer, weight_decay=config.qat.weight_decay,
                                                        clip_grad=config.qat.clip_value is not None,
                                                        clip_value=(config.qat.clip_value
                                                                    or config.optimizer.clip_value)))


def _float_model(config: TrainConfig, num_classes: int):
    from toolkit.models import create_model
    from toolkit.models.checkpoint import load_weights

    network = create_model(config.model.name, num_classes=num_classes, activation=config.model.activation)
    load_weights(network, config.model.checkpoint, head="strict")
    return network


def create_qat_networks(config: TrainConfig, num_classes: int, spec, say=print):
    """(DistillationNet to train, QAT student copy to validate and save, its forward). The student starts
    where our default PTQ ends (its ranges, AdaRound's rounding and bias-corrected biases; `qat_init: minmax`:
    min/max ranges) on the first `qat_calib_images` training images through the eval transform (the same
    on every worker)."""
    from quantize.qat.distill import DistillationNet
    from quantize.qat.network import QATMobileNetV1, initialise_ranges, start_from_plan
    from toolkit.validate import eval_batches

    qat = config.qat
    student = QATMobileNetV1(_float_model(config, num_classes), qat.ranges, classifier=qat.classifier)
    teacher = QATMobileNetV1(_float_model(config, num_classes), fake_quant=False)
    clean = QATMobileNetV1(_float_model(config, num_classes), qat.ranges, classifier=qat.classifier)
    card = source_card(config)
    images = np.concatenate([x for x, _ in eval_batches(card, spec, config.data.train_split, limit=qat.calib_images,
                                                        batch_size=64)])
    if qat.init == "ptq":
        ptq = _ptq(config, images)
        moved = start_from_plan(student, ptq.float_graph, ptq.plan, ptq.act_equalization)
        start = f"our default PTQ (AdaRound's rounding: {moved} weights moved)"
    else:
        initialise_ranges(student, [images[i:i + 64] for i in range(0, len(images), 64)])
        start = "min/max ranges"
    say(f"QAT of {Path(config.model.checkpoint).name}: {qat.ranges} ranges, starting from {start} on "
        f"{len(images)} training images; {qat.distill} distillation"
        + (f" + {qat.label_weight} x labels" if qat.label_weight else ""))
    clean.set_train(False)
    return DistillationNet(student, teacher), clean, clean


def qat_network_from_plan(checkpoint: Path, card, float_graph, plan, equalization=None):
    """The QAT network of a float checkpoint started where a PTQ `plan` (and its activation `equalization`) ends
    (eval mode): fine-tuning's start."""
    from quantize.qat.network import QATMobileNetV1, start_from_plan
    from quantize.quantizer import float_classifier
    from toolkit.models import create_model
    from toolkit.models.checkpoint import load_weights

    float_model = create_model(card.model, num_classes=card.num_classes, activation=card.activation)
    load_weights(float_model, str(checkpoint), head="strict")
    in_float = any(name in plan.float_layers for name in float_classifier(float_graph, "float"))
    network = QATMobileNetV1(float_model, classifier="float" if in_float else "int8")
    start_from_plan(network, float_graph, plan, equalization)
    network.set_train(False)
    return network


def _ptq(config: TrainConfig, images: np.ndarray):
    """Our default recipe's QuantizationResult of the source checkpoint (its classifier as QAT trains it)."""
    from converters.onnx_import import import_onnx
    from converters.passes import lower_for_tflite
    from quantize import Quantizer, Recipe
    from toolkit.card import load_card
    from toolkit.export import export_model

    with tempfile.TemporaryDirectory(prefix="mnv1-tk-qat-") as scratch:
        onnx = export_model(config.model.checkpoint, Path(scratch), formats=("onnx",))["onnx"]
        graph = lower_for_tflite(import_onnx(onnx, load_card(onnx)))
    return Quantizer(Recipe.load("default").replace(classifier=config.qat.classifier)).quantize(graph, images)


def with_equalization_constants(state: dict[str, np.ndarray], network) -> dict[str, np.ndarray]:
    """A QAT training state with every equalization constant of `network` (the out_eq / in_eq of each of its
    folded layers, the student's and the teacher's): a state saved before they existed had the scales baked into
    its parameters, so its constants are 1."""
    from quantize.qat.network import FoldedLayer

    constants = [p for _, cell in network.cells_and_names() if isinstance(cell, FoldedLayer)
                 for p in (cell.out_eq, cell.in_eq)]
    return {**state, **{p.name: np.ones(p.shape, np.float32) for p in constants if p.name not in state}}


def qat_lr_scale(config: TrainConfig) -> dict[str, float]:
    """The learning-rate factor of the learnt ranges (`qat.*` parameters); none outside QAT."""
    from quantize.qat.network import RANGE_PREFIX

    return {RANGE_PREFIX: config.qat.range_lr} if config.qat.enabled else {}


def distillation_loss(config: TrainConfig, num_classes: int):
    from quantize.qat.distill import DistillationLoss

    qat = config.qat
    return DistillationLoss(num_classes, qat.distill, qat.label_weight, qat.temperature)


def card_extra(clean, config: TrainConfig) -> dict:
    """What a QAT checkpoint's card carries: the learnt (scale, zero point) per tensor, for `convert`."""
    from quantize.qat import CARD_KEY

    return {CARD_KEY: {"activations": [list(p) for p in clean.activation_params()], "ranges": config.qat.ranges,
                       "classifier": config.qat.classifier, "distill": config.qat.distill,
                       "label_weight": config.qat.label_weight,
                       "source": Path(config.model.checkpoint).name}}
