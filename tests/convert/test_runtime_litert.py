"""The LiteRT predictor: batching, options, int8 I/O, and the errors a user can cause."""

import numpy as np
import pytest

from converters.ir.execute import run
from converters.onnx_import import import_onnx
from converters.passes import lower_for_tflite
from converters.tflite import write_tflite
from tests.convert.graphs import int8_graph, make_card
from tests.onnx_models import mobilenet_like
from toolkit.card import InputQuant, save_card
from toolkit.errors import ModelCardError, ModelFileError
from toolkit.runtimes import load_predictor
from toolkit.runtimes.litert import LiteRTPredictor

ATOL = 1e-5


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    graph = lower_for_tflite(import_onnx(mobilenet_like(image_size=32, folded_bn=False)))
    path = tmp_path_factory.mktemp("litert") / "mobilenet_v1_025_32.fp32.tflite"
    path.write_bytes(write_tflite(graph))
    save_card(make_card(32), path)
    return path, graph


def _batch(n, size=32, seed=0):
    return np.random.RandomState(seed).randn(n, 3, size, size).astype(np.float32)


def test_predictor_runs_canonical_batches_of_any_size(float_model):
    path, graph = float_model
    predictor = load_predictor(path)
    assert isinstance(predictor, LiteRTPredictor)
    spec = predictor.input_spec
    assert (spec.shape, spec.layout, spec.dtype, spec.quant) == ((1, 32, 32, 3), "NHWC", "float32", None)
    x = _batch(5)
    expected = run(graph, x.transpose(0, 2, 3, 1))[graph.outputs[0]]
    batched = predictor.run(x)
    assert batched.shape == (5, 10) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, expected, atol=ATOL, rtol=0)
    np.testing.assert_allclose(np.concatenate([predictor.run(x[i:i + 1]) for i in range(5)]), batched,
                               atol=ATOL, rtol=0)


def test_builtin_kernels_and_threads_give_the_same_logits(float_model):
    path, _ = float_model
    x = _batch(3)
    default = load_predictor(path).run(x)
    np.testing.assert_allclose(load_predictor(path, builtin_only=True).run(x), default, atol=ATOL, rtol=0)
    np.testing.assert_allclose(load_predictor(path, num_threads=2).run(x), default, atol=ATOL, rtol=0)


def _int8_io_model(tmp_path, quantized_input: bool, quantized_output: bool):
    graph = int8_graph()
    if quantized_input:
        graph.remove_node(graph.node("quant"))
        del graph.tensors["x"]
        graph.inputs = ["xq"]
    if quantized_output:
        graph.remove_node(graph.node("dequant"))
        del graph.tensors["z"]
        graph.outputs = ["zq"]
    path = tmp_path / f"m_{quantized_input}_{quantized_output}.int8.tflite"
    path.write_bytes(write_tflite(graph.prune().verify()))
    card = make_card(8, num_classes=6, precision="int8",
                     input_dtype="int8" if quantized_input else "float32",
                     input_quant=InputQuant(0.02, 3) if quantized_input else None)
    save_card(card, path)
    return path


def test_int8_input_and_output_are_converted_like_the_graph_does(tmp_path):
    x = _batch(2, size=8) * 0.8
    reference = load_predictor(_int8_io_model(tmp_path, False, False)).run(x)
    predictor = load_predictor(_int8_io_model(tmp_path, True, True))
    assert predictor.input_spec.dtype == "int8"
    assert predictor.input_spec.quant == InputQuant(float(np.float32(0.02)), 3)  # as the model stores it
    np.testing.assert_allclose(predictor.run(x), reference, atol=1e-6, rtol=0)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_tflite_is_a_model_file_error(float_model, tmp_path, damage):
    path = tmp_path / "broken.tflite"
    good = float_model[0].read_bytes()
    path.write_bytes(b"not a model at all" * 10 if damage == "garbage" else good[: len(good) // 2])
    save_card(make_card(32), path)
    with pytest.raises(ModelFileError, match="not a valid TFLite model"):
        load_predictor(path)


def test_missing_or_mismatched_card_is_a_model_card_error(float_model, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(float_model[0].read_bytes())
    with load_predictor(path) as predictor:  # no card: inferred from the model
        assert predictor.card.extra["card"] == "inferred" and predictor.card.image_size == 32
    save_card(make_card(64), path)
    with pytest.raises(ModelCardError, match="64x64x3"):
        load_predictor(path)
    save_card(make_card(32, num_classes=1001), path)
    with pytest.raises(ModelCardError, match="1001 classes"):
        load_predictor(path)
