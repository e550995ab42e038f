"""TFLite metadata: written with MetadataPopulator, read back with MetadataDisplayer."""

import numpy as np

from converters.onnx_import import import_onnx
from converters.passes import lower_for_tflite
from converters.tflite import write_tflite
from converters.tflite.metadata import LABELS_FILE, add_metadata, read_metadata
from tests.convert.graphs import make_card, operators, read_model, run_tflite
from tests.onnx_models import mobilenet_like
from toolkit.card import InputQuant


def _model(size=32):
    return write_tflite(lower_for_tflite(import_onnx(mobilenet_like(image_size=size, folded_bn=False))))


def test_metadata_reads_back_with_labels_and_normalization():
    card = make_card(32, labels=tuple(f"digit {i}" for i in range(10)))
    data = add_metadata(_model(), card)
    meta = read_metadata(data)
    assert meta["name"] == "mobilenet_v1_025_32"
    assert meta["version"] and "width 0.25" in meta["description"]
    (subgraph,) = meta["subgraph_metadata"]
    (image,) = subgraph["input_tensor_metadata"]
    assert image["content"]["content_properties"]["color_space"] == "RGB"
    (unit,) = image["process_units"]
    assert unit["options_type"] == "NormalizationOptions"
    np.testing.assert_allclose(unit["options"]["mean"], card.mean, rtol=1e-6)
    np.testing.assert_allclose(unit["options"]["std"], card.std, rtol=1e-6)
    np.testing.assert_allclose(image["stats"]["min"], [(0 - m) / s for m, s in zip(card.mean, card.std)], rtol=1e-5)
    (logits,) = subgraph["output_tensor_metadata"]
    (labels,) = logits["associated_files"]
    assert labels == {"name": LABELS_FILE, "description": labels["description"], "type": "TENSOR_AXIS_LABELS"}
    assert meta["labels"] == list(card.labels)


def test_metadata_leaves_the_model_unchanged():
    plain = _model()
    data = add_metadata(plain, make_card(32))
    assert operators(data) == operators(plain)
    codes = read_model(data).operatorCodes
    assert all(c.builtinCode == c.deprecatedBuiltinCode for c in codes)
    x = np.random.RandomState(0).randn(2, 32, 32, 3).astype(np.float32)
    np.testing.assert_array_equal(run_tflite(data, x), run_tflite(plain, x))


def test_int8_input_metadata_states_the_quantization():
    card = make_card(32, input_dtype="int8", input_quant=InputQuant(0.0187, -14), precision="int8")
    meta = read_metadata(add_metadata(_model(), card))
    image = meta["subgraph_metadata"][0]["input_tensor_metadata"][0]
    assert "scale=0.0187, zero_point=-14" in image["description"]
    assert image["stats"] == {"max": [127.0], "min": [-128.0]}
