"""`mnv1-tk convert --quant int8` end to end on the trained digits model, and its bad inputs."""

import json

import numpy as np
import pytest

from converters.tflite.metadata import read_metadata
from quantize import Recipe
from tests.cli import assert_one_line_error, invoke
from toolkit.card import load_card


@pytest.fixture(scope="module")
def int8_run(trained_digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8")
    result = invoke("convert", trained_digits.onnx, "--quant", "int8", "--calib", "digits", "--calib-size", 200,
                    "--data", "digits", "--num-eval", 359, "--report", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_int8_tflite_keeps_the_float_decisions(int8_run):
    out, report = int8_run
    (row,) = report["outputs"]
    assert (row["target"], row["precision"]) == ("tflite", "int8")
    assert row["top1_agreement"] >= 0.99 and row["sqnr_db"] > 25
    assert row["top1"] >= row["source_top1"] - 0.01 and row["top5"] >= 0.99
    card = load_card(row["path"])
    assert (card.precision, card.input_dtype) == ("int8", "float32")
    assert card.extra["quantization"]["recipe"] == Recipe.load("default").to_dict()


def test_report_writes_a_chart_and_a_table_of_every_layer(int8_run):
    out, report = int8_run
    (sensitivity,) = report["sensitivity"]
    assert sensitivity["chart"].endswith(".int8.sensitivity.png")
    assert open(sensitivity["chart"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    layers = sensitivity["layers"]
    assert len(layers) == 28 and all(np.isfinite(layer["logits_sqnr_db"]) for layer in layers)
    assert all(0 <= layer["adaround_flipped"] < 0.5 for layer in layers)  # the default recipe's AdaRound
    saved = json.loads((out / "mobilenet_v1_025_32.int8.sensitivity.json").read_text())
    assert [r["layer"] for r in saved] == [r["layer"] for r in layers]
    equalization = json.loads((out / "mobilenet_v1_025_32.int8.equalization.json").read_text())
    assert equalization["headroom"] == Recipe.load("default").act_equalization
    assert len(equalization["layers"]) == 26  # every layer but the last pointwise one feeds an equalized tensor
    assert all(1.0 <= layer["median"] <= layer["largest"] for layer in equalization["layers"].values())


def test_int8_io_records_the_input_quantization(trained_digits, tmp_path):
    result = invoke("convert", trained_digits.onnx, "--quant", "int8", "--calib", "digits", "--calib-size", 64,
                    "--io", "int8", "--method", "mse", "--no-bias-correction", "--no-adaround", "--out", tmp_path,
                    "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["outputs"]
    card = load_card(row["path"])
    assert card.input_dtype == "int8" and card.input_quant is not None
    meta = read_metadata(open(row["path"], "rb").read())
    assert f"{card.input_quant.scale:.6g}" in json.dumps(meta)
    assert row["top1_agreement"] >= 0.95


def test_quantizer_stages_show_in_the_progress_line(trained_digits, tmp_path):
    from toolkit.convert import ConvertOptions, QuantOptions, convert

    steps = []
    options = ConvertOptions(quant="int8", out_dir=tmp_path, num_eval=8,
                             quantization=QuantOptions(calib="digits", calib_size=64))
    convert(trained_digits.onnx, options, on_step=steps.append)
    stem = "mobilenet_v1_025_32: int8"
    assert f"{stem} calibrate 64/64" in steps
    assert [s for s in steps if s.startswith(stem)][-2:] == [f"{stem} bias correction", f"{stem} bias correction"]


def test_calibration_folder_of_real_images(trained_digits, tmp_path):
    import cv2

    from toolkit.data import load_digits

    images, _ = load_digits("train", 40)
    folder = tmp_path / "calib"
    (folder / "nested").mkdir(parents=True)
    for i, image in enumerate(images[:40]):
        cv2.imwrite(str(folder / ("nested" if i % 2 else "") / f"{i}.png"), image[:, :, ::-1])
    result = invoke("convert", trained_digits.onnx, "--quant", "int8", "--calib", folder, "--out", tmp_path / "o",
                    "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outputs"][0]["top1_agreement"] >= 0.95


@pytest.mark.parametrize("setup, args, fragments", [
    ("empty", ["--calib", "{empty}"], ["found 0 calibration images", "at least 16"]),
    ("few", ["--calib", "{few}"], ["found 3 calibration images"]),
    ("npy", ["--calib", "{npy}"], ["have shape [20, 3, 48, 48]", "[N, 3, 32, 32]"]),
    (None, [], ["--quant int8 needs calibration images"]),
    (None, ["--calib", "digits", "--method", "fancy"], ["method='fancy'"]),
    (None, ["--calib", "digits", "--quantizer", "mslite"], ["use it with --to mslite only"]),
    (None, ["--calib", "digits", "--calib-size", "4"], ["--calib-size 4 is too small"]),
])
def test_bad_calibration_input_is_one_line(trained_digits, tmp_path, setup, args, fragments):
    import cv2

    (tmp_path / "empty").mkdir()
    (tmp_path / "few").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "few" / f"{i}.png"), np.full((8, 8, 3), 128, np.uint8))
    np.save(tmp_path / "wrong.npy", np.zeros((20, 3, 48, 48), np.float32))
    paths = {"empty": tmp_path / "empty", "few": tmp_path / "few", "npy": tmp_path / "wrong.npy"}
    args = [str(a).format(**paths) for a in args]
    out = tmp_path / "out"
    result = invoke("convert", trained_digits.onnx, "--quant", "int8", *args, "--out", out)
    assert_one_line_error(result, *fragments)
    assert not out.exists()
