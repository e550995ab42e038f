"""TFLite metadata, so an app needs no side files: image input, normalization, labels, model facts.

Built with the low-level `tensorflow_lite_support.metadata` module (its flatbuffer schema objects and
`MetadataPopulator`); the labels travel inside the .tflite as a TENSOR_AXIS_LABELS associated file.
"""

from __future__ import annotations

import json

from toolkit import __version__
from toolkit.card import ModelCard
from toolkit.errors import ModelFileError

LABELS_FILE = "labels.txt"
AUTHOR = "mnv1-tk"
LICENSE = "Apache-2.0"


def _input_metadata(card: ModelCard):
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as md

    s = card.image_size
    image = md.ImagePropertiesT()
    image.colorSpace = md.ColorSpaceType.RGB
    content = md.ContentT()
    content.contentPropertiesType = md.ContentProperties.ImageProperties
    content.contentProperties = image
    norm = md.NormalizationOptionsT()
    norm.mean = [float(m) for m in card.mean]
    norm.std = [float(v) for v in card.std]
    unit = md.ProcessUnitT()
    unit.optionsType = md.ProcessUnitOptions.NormalizationOptions
    unit.options = norm
    stats = md.StatsT()
    description = (f"RGB image, {s}x{s}, NHWC {card.input_dtype}: resize the shorter side to "
                   f"int({s}/{card.crop_pct}) ({card.interpolation}), centre-crop {s}x{s}, "
                   "then (pixel - mean) / std per channel")
    if card.input_quant is not None:
        q = card.input_quant
        description += (f", then quantize: q = round(x / scale) + zero_point with scale={q.scale!r}, "
                        f"zero_point={q.zero_point}")
        info = {"int8": (-128, 127), "uint8": (0, 255)}[card.input_dtype]
        stats.min, stats.max = [float(info[0])], [float(info[1])]
    else:
        stats.min = [(0.0 - m) / v for m, v in zip(card.mean, card.std)]
        stats.max = [(255.0 - m) / v for m, v in zip(card.mean, card.std)]
    tensor = md.TensorMetadataT()
    tensor.name = "image"
    tensor.description = description
    tensor.content = content
    tensor.processUnits = [unit]
    tensor.stats = stats
    return tensor


def _output_metadata(card: ModelCard):
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as md

    content = md.ContentT()
    content.contentPropertiesType = md.ContentProperties.FeatureProperties
    content.contentProperties = md.FeaturePropertiesT()
    labels = md.AssociatedFileT()
    labels.name = LABELS_FILE
    labels.description = "Class names, one per line, in logit order."
    labels.type = md.AssociatedFileType.TENSOR_AXIS_LABELS
    tensor = md.TensorMetadataT()
    tensor.name = "logits"
    tensor.description = (f"Logits over {card.num_classes} classes ({card.output_dtype}); "
                          "apply softmax for probabilities.")
    tensor.content = content
    tensor.associatedFiles = [labels]
    return tensor


def build_metadata(card: ModelCard) -> bytes:
    """The metadata flatbuffer for a converted model described by `card`."""
    import flatbuffers
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as md
    from tensorflow_lite_support.metadata.python.metadata import MetadataPopulator

    subgraph = md.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [_input_metadata(card)]
    subgraph.outputTensorMetadata = [_output_metadata(card)]
    model = md.ModelMetadataT()
    model.name = card.stem
    model.description = (f"MobileNetV1 width {card.width} ({card.activation}), {card.image_size}x{card.image_size}, "
                         f"{card.num_classes} classes, {card.precision}. Converted by mnv1-tk.")
    model.version = __version__
    model.author = AUTHOR
    model.license = LICENSE
    model.subgraphMetadata = [subgraph]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), MetadataPopulator.METADATA_FILE_IDENTIFIER)
    return bytes(builder.Output())


def add_metadata(model: bytes, card: ModelCard) -> bytes:
    """`model` with the metadata of `card` and its labels file attached."""
    from tensorflow_lite_support.metadata.python import metadata

    class BufferPopulator(metadata._MetadataPopulatorWithBuffer):
        _model_file = ""  # its __del__ reads this even when __init__ failed (a full disk): no noise at exit

    populator = BufferPopulator(model)
    populator.load_metadata_buffer(build_metadata(card))
    populator.load_associated_file_buffers({LABELS_FILE: ("\n".join(card.labels) + "\n").encode("utf-8")})
    populator.populate()
    return bytes(populator.get_model_buffer())


def read_metadata(model: bytes) -> dict:
    """The metadata of a .tflite as a dict (`MetadataDisplayer`'s JSON), with the packed labels under `labels`."""
    from tensorflow_lite_support.metadata.python.metadata import MetadataDisplayer

    try:
        displayer = MetadataDisplayer.with_model_buffer(model)
    except ValueError as exc:
        raise ModelFileError(f"cannot read TFLite metadata: {exc}", "convert the model again") from None
    meta = json.loads(displayer.get_metadata_json())
    files = displayer.get_packed_associated_file_list()
    meta["labels"] = (displayer.get_associated_file_buffer(LABELS_FILE).decode("utf-8").splitlines()
                      if LABELS_FILE in files else [])
    return meta
