"""`mnv1-tk convert` and `mnv1-tk predict` through the real CLI: results, and every bad input as one line + exit 2."""

import json

import cv2
import numpy as np
import pytest

from tests.cli import assert_one_line_error as _assert_one_line_error
from tests.cli import invoke as _invoke
from tests.convert.graphs import make_card, save_onnx
from tests.onnx_models import mobilenet_like
from toolkit.card import load_card, save_card


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    return save_onnx(mobilenet_like(image_size=32, folded_bn=False), tmp_path_factory.mktemp("src"), make_card(32))


@pytest.fixture(scope="module")
def tflite_model(onnx_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    result = _invoke("convert", onnx_model, "--quant", "none,fp16", "--out", out, "--num-eval", 8, "--json")
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)["outputs"]


def _write_image(path, image):
    ok, encoded = cv2.imencode(path.suffix, image)
    assert ok
    encoded.tofile(path)
    return path


def test_convert_prints_json_and_a_table(onnx_model, tflite_model, tmp_path):
    out, results = tflite_model
    assert [(r["target"], r["precision"]) for r in results] == [("tflite", "fp32"), ("tflite", "fp16")]
    assert all(r["max_abs_diff"] <= 1e-2 and r["top1_agreement"] == 1.0 and r["num_eval"] == 8 for r in results)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"mobilenet_v1_025_32.{p}.tflite{s}" for p in ("fp16", "fp32") for s in ("", ".json")])
    table = _invoke("convert", onnx_model, "--out", tmp_path, "--num-eval", 4)
    assert table.exit_code == 0
    for heading in ("format", "precision", "MB", "max |Δ|", "top-1 agree", "mobilenet_v1_025_32.fp32.tflite"):
        assert heading in table.stdout


def test_predict_labels_images_of_any_channel_count(tflite_model, tmp_path):
    out, _ = tflite_model
    rng = np.random.RandomState(0)
    images = [_write_image(tmp_path / "rgb.jpg", rng.randint(0, 256, (60, 80, 3), dtype=np.uint8)),
              _write_image(tmp_path / "gray.png", rng.randint(0, 256, (50, 50), dtype=np.uint8)),
              _write_image(tmp_path / "rgba.png", rng.randint(0, 256, (40, 70, 4), dtype=np.uint8))]
    result = _invoke("predict", *images, "--model", out / "mobilenet_v1_025_32.fp32.tflite", "--topk", 3, "--json")
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.stdout)["predictions"]
    assert [p["image"] for p in predictions] == [str(p) for p in images]
    labels = make_card(32).labels
    for p in predictions:
        scores = [t["score"] for t in p["top"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1
        assert all(t["label"] == labels[t["index"]] for t in p["top"])
    table = _invoke("predict", images[0], "--model", out / "mobilenet_v1_025_32.fp16.tflite")
    assert table.exit_code == 0 and "rgb.jpg" in table.stdout and table.stdout.count("class_") == 5


# ---- bad input: one line, exit 2, no traceback, nothing written -----------------------------------
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_convert_corrupt_onnx(onnx_model, tmp_path, damage):
    bad = tmp_path / onnx_model.name
    data = onnx_model.read_bytes()
    bad.write_bytes(b"\x08\x07garbage" * 50 if damage == "garbage" else data[: len(data) // 2])
    save_card(make_card(32), bad)
    result = _invoke("convert", bad, "--out", tmp_path / "out")
    _assert_one_line_error(result, "is not a valid ONNX model")
    assert not (tmp_path / "out").exists()


def test_convert_without_card_infers_it(onnx_model, tmp_path):
    """A model without its card converts with the card inferred (tests/external covers the details)."""
    bare = tmp_path / "model.onnx"
    bare.write_bytes(onnx_model.read_bytes())
    result = _invoke("convert", bare, "--out", tmp_path / "out", "--num-eval", "4")
    assert result.exit_code == 0, result.output
    card = load_card(tmp_path / "out" / "model_32.fp32.tflite")
    assert (card.image_size, card.input_name, card.extra["card"]) == (32, "input", "inferred")


def test_convert_card_not_matching(onnx_model, tmp_path):
    wrong = tmp_path / "model.onnx"
    wrong.write_bytes(onnx_model.read_bytes())
    save_card(make_card(64), wrong)
    _assert_one_line_error(_invoke("convert", wrong, "--out", tmp_path / "out"), "model card", "64", "[1, 3, 32, 32]")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--width", "0.3"], "--width 0.3 is not a MobileNetV1 width"),
    (["--width", "1.0"], "has width 0.25"),
    (["--quant", "int3"], "unknown precision int3"),
    (["--to", "coreml"], "unknown target coreml"),
])
def test_convert_bad_options(onnx_model, tmp_path, args, fragment):
    _assert_one_line_error(_invoke("convert", onnx_model, *args, "--out", tmp_path / "out"), fragment)
    assert not (tmp_path / "out").exists()


def test_convert_to_unwritable_directory(onnx_model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a directory")
    _assert_one_line_error(_invoke("convert", onnx_model, "--out", blocker / "out"), "cannot create output directory")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_predict_corrupt_tflite(tflite_model, tmp_path, damage):
    good = tflite_model[0] / "mobilenet_v1_025_32.fp32.tflite"
    bad = tmp_path / good.name
    bad.write_bytes(b"TFL3" * 100 if damage == "garbage" else good.read_bytes()[: good.stat().st_size // 3])
    save_card(make_card(32), bad)
    image = _write_image(tmp_path / "x.jpg", np.zeros((40, 40, 3), np.uint8))
    _assert_one_line_error(_invoke("predict", image, "--model", bad), "is not a valid TFLite model")


def test_predict_missing_or_wrong_card(tflite_model, tmp_path):
    model = tmp_path / "model.tflite"
    model.write_bytes((tflite_model[0] / "mobilenet_v1_025_32.fp32.tflite").read_bytes())
    image = _write_image(tmp_path / "x.jpg", np.zeros((40, 40, 3), np.uint8))
    assert _invoke("predict", image, "--model", model).exit_code == 0  # the card is inferred from the model
    save_card(make_card(32, num_classes=5), model)
    _assert_one_line_error(_invoke("predict", image, "--model", model), "5 classes")


def test_predict_undecodable_image(tflite_model, tmp_path):
    broken = tmp_path / "holiday.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    result = _invoke("predict", broken, "--model", tflite_model[0] / "mobilenet_v1_025_32.fp32.tflite")
    _assert_one_line_error(result, "cannot decode image", "holiday.jpg")


def test_predict_agrees_across_formats(onnx_model, tflite_model, tmp_path):
    image = _write_image(tmp_path / "photo.jpg", np.random.RandomState(1).randint(0, 256, (90, 70, 3), dtype=np.uint8))
    top = {}
    for model in (onnx_model, tflite_model[0] / "mobilenet_v1_025_32.fp32.tflite"):
        result = _invoke("predict", image, "--model", model, "--json")
        assert result.exit_code == 0, result.output
        top[model.suffix] = json.loads(result.stdout)["predictions"][0]["top"]
    assert [t["label"] for t in top[".onnx"]] == [t["label"] for t in top[".tflite"]]
    np.testing.assert_allclose([t["score"] for t in top[".onnx"]], [t["score"] for t in top[".tflite"]], atol=1e-6)
