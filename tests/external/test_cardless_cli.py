"""Models the toolkit did not write, through the CLI: a card-less ONNX through `convert --quant int8`,
`validate` and `predict` (card options really change the preprocessing), a float .tflite imported
back and quantized, a mindcv-style checkpoint, and bad inputs as one-line errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from converters.tflite import write_tflite
from converters.tflite_import import import_tflite
from tests.cli import assert_one_line_error, invoke
from tests.external.torch_style import torch_style_mobilenet
from toolkit.card import load_card

CLASSES = 12
FAST_INT8 = ["--calib", "digits", "--calib-size", "32", "--method", "minmax", "--no-bias-correction", "--num-eval", "8"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A card-less PyTorch-style ONNX, and a labels file for it."""
    directory = tmp_path_factory.mktemp("external")
    source = directory / "mobilenetv1_timm.onnx"
    onnx.save(torch_style_mobilenet(width=0.25, image_size=32, num_classes=CLASSES, opset=17, flatten="view"), source)
    labels = directory / "labels.txt"
    labels.write_text("\n".join(f"class-{i}" for i in range(CLASSES)) + "\n")
    return source, labels


@pytest.fixture(scope="module")
def converted(exported, tmp_path_factory):
    """`mnv1-tk convert` of the card-less ONNX to fp32, fp16 and int8 .tflite with card options."""
    source, labels = exported
    out = tmp_path_factory.mktemp("converted")
    result = invoke("convert", source, "--quant", "none,fp16,int8", *FAST_INT8, "--labels", labels,
                    "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25", "--crop-pct", "1.0", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    return {r["precision"]: r for r in json.loads(result.stdout)["outputs"]}


def _images(directory, count=3):
    rng = np.random.RandomState(1)
    paths = []
    for i in range(count):
        path = directory / f"photo{i}.png"
        cv2.imwrite(str(path), rng.randint(0, 256, (40 + 8 * i, 48, 3), np.uint8))
        paths.append(path)
    return paths


def _onnx_logits(source, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": images.astype(np.float32)})[0]


def _raw_crops(paths, size: int, crop_pct: float) -> np.ndarray:
    """Decoded, resized and centre-cropped pixels (0..255, NCHW float): the model input before normalising."""
    from toolkit.data.transforms import eval_resize_size
    from toolkit.preprocess import center_crop, load_image, resize_shorter

    crops = [center_crop(resize_shorter(load_image(p), eval_resize_size(size, crop_pct)), size) for p in paths]
    return np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2)


def test_cardless_onnx_converts_with_a_full_card(converted):
    for precision, gate in (("fp32", lambda r: r["max_abs_diff"] <= 1e-4), ("fp16", lambda r: r["within_tolerance"]),
                            ("int8", lambda r: r["sqnr_db"] >= 10)):
        assert gate(converted[precision]), converted[precision]
    card = load_card(converted["int8"]["path"])
    assert card.labels == tuple(f"class-{i}" for i in range(CLASSES))
    assert np.allclose(card.mean, [127.5] * 3) and np.allclose(card.std, [63.75] * 3) and card.crop_pct == 1.0
    assert (card.input_layout, card.precision, card.input_name, card.source) == \
        ("NHWC", "int8", "input", "mobilenetv1_timm.onnx")


def test_validate_cardless_onnx_matches_its_conversion(exported, converted):
    source, _ = exported
    results = []
    for model, extra in ((source, ["--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25", "--crop-pct", "1.0"]),
                         (converted["fp32"]["path"], [])):
        result = invoke("validate", "--model", model, "--limit", "32", "--json", *extra)
        assert result.exit_code == 0, result.output
        results.append(json.loads(result.stdout))
    assert results[0]["count"] == results[1]["count"] == 32
    assert results[0]["top1"] == results[1]["top1"] and results[0]["runtime"] == "onnxruntime"


@pytest.mark.parametrize("options, normalise", [
    ([], lambda x: ((x / 255 - np.array([0.485, 0.456, 0.406])[:, None, None])
                    / np.array([0.229, 0.224, 0.225])[:, None, None])),
    (["--input-range", "0-255"], lambda x: x),
    (["--input-range", "0-255", "--mean", "100,100,100", "--std", "2,2,2"], lambda x: (x - 100) / 2),
])
def test_predict_cardless_onnx_preprocesses_as_told(exported, tmp_path, options, normalise):
    source, labels = exported
    paths = _images(tmp_path)
    result = invoke("predict", *paths, "--model", source, "--labels", labels, "--topk", "3", "--json", *options)
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.stdout)["predictions"]
    logits = _onnx_logits(source, normalise(_raw_crops(paths, 32, 0.875)))
    for prediction, row in zip(predictions, logits):
        best = np.argsort(-row, kind="stable")[:3]
        assert [t["index"] for t in prediction["top"]] == best.tolist()
        assert [t["label"] for t in prediction["top"]] == [f"class-{i}" for i in best]
        probabilities = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
        assert np.allclose([t["score"] for t in prediction["top"]], probabilities[best], atol=1e-5)


def test_float_tflite_round_trips(converted):
    """import -> write gives the same logits as the file it was read from (fp16 weights become float32)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    def run(model_content, x):
        interpreter = Interpreter(model_content=model_content,
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    x = np.random.RandomState(2).randn(1, 32, 32, 3).astype(np.float32)
    for precision in ("fp32", "fp16"):
        path = converted[precision]["path"]
        graph = import_tflite(path)
        assert {t.dtype for t in graph.tensors.values()} == {"float32"}
        original, rewritten = run(open(path, "rb").read(), x), run(write_tflite(graph), x)
        assert np.abs(original - rewritten).max() <= 1e-6, precision


def test_cardless_float_tflite_quantizes(converted, tmp_path):
    source = tmp_path / "keras_mobilenet.tflite"
    source.write_bytes(open(converted["fp32"]["path"], "rb").read())  # no card next to it
    result = invoke("convert", source, "--quant", "int8", *FAST_INT8, "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    (output,) = json.loads(result.stdout)["outputs"]
    assert output["sqnr_db"] >= 10 and output["source"].endswith("keras_mobilenet.tflite")
    card = load_card(output["path"])
    assert card.extra["card"] == "inferred" and card.num_classes == CLASSES and card.input_layout == "NHWC"
    # the normalisation and labels the fp32 file carries in its TFLite metadata, not the defaults
    assert np.allclose(card.mean, [127.5] * 3) and np.allclose(card.std, [63.75] * 3)
    assert card.labels == tuple(f"class-{i}" for i in range(CLASSES))
    to_mslite = invoke("convert", source, "--to", "mslite", "--out", tmp_path / "again")
    assert_one_line_error(to_mslite, "is made from our int8 .tflite only", "--to mslite --quant int8")
    again = invoke("convert", output["path"], "--quant", "int8", *FAST_INT8, "--out", tmp_path / "again")
    assert_one_line_error(again, "already an integer-quantized .tflite", "keep it as it is")
    assert not (tmp_path / "again").exists()


def test_mindcv_checkpoint_converts_in_one_command(tmp_path):
    """A released mindcv checkpoint: no card, 1001 classes, ReLU; --width and --image-size are enough."""
    import mindspore as ms

    from toolkit.models import create_model

    ms.set_seed(3)
    network = create_model("mobilenet_v1_025", num_classes=1001, activation="relu")
    checkpoint = tmp_path / "mobilenet_v1_025-d7b5ca4b.ckpt"
    ms.save_checkpoint(network, str(checkpoint))
    result = invoke("convert", checkpoint, "--width", "0.25", "--image-size", "32", "--num-eval", "2",
                    "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    (output,) = json.loads(result.stdout)["outputs"]
    assert output["max_abs_diff"] <= 1e-4  # against MindSpore running the checkpoint
    card = load_card(output["path"])
    assert (card.model, card.num_classes, card.activation, card.image_size) == ("mobilenet_v1_025", 1001, "relu", 32)


def _save(tmp_path, name, inputs, nodes, output_shape=(1, 10)):
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)])
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_bad_external_models(tmp_path):
    image = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 32, 32])
    two = _save(tmp_path, "two.onnx", [image, helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 32, 32])],
                [helper.make_node("Add", ["a", "b"], ["y"])], (1, 3, 32, 32))
    assert_one_line_error(invoke("convert", two, "--out", tmp_path / "o"), "2 inputs ('a', 'b')", "single NCHW image")
    tokens = _save(tmp_path, "tokens.onnx", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 128])],
                   [helper.make_node("Cast", ["ids"], ["y"], to=TensorProto.FLOAT)], (1, 128))
    assert_one_line_error(invoke("validate", "--model", tokens), "input 'ids' is int64 [1, 128]", "float image input")
    model = torch_style_mobilenet(opset=17)
    for node in model.graph.node:
        if node.op_type == "Clip":
            node.op_type, node.input[:] = "HardSwish", node.input[:1]
        if node.op_type == "GlobalAveragePool":
            node.op_type = "GlobalMaxPool"
    hard_swish = tmp_path / "hardswish.onnx"
    onnx.save(model, hard_swish)
    line = assert_one_line_error(invoke("convert", hard_swish, "--out", tmp_path / "o"), "unsupported ONNX ops",
                                 "HardSwish", "GlobalMaxPool", "supported: ")
    assert "Shape" not in line.split("(supported")[0]  # the shape subgraphs were folded; only real ops are listed
    assert not (tmp_path / "o").exists()
