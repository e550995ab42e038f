"""The `.ms` predictor and its failure paths: one worker per predictor, one-line errors, nothing half-written."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from converters.mslite import convert_to_ms, write_mslite
from converters.mslite.backends import OfficialBackend, ConvertJob, write_benchmark_data
from converters.mslite.config import full_quant_config, render_config, write_calibration_bins
from converters.mslite.install import official_shim_command
from tests.models import zoo_card
from toolkit.card import load_card, save_card
from toolkit.errors import BackendError, CalibrationError, ConfigError, ModelCardError, ModelFileError
from toolkit.runtimes import load_predictor

MNV1_TK = str(Path(sys.executable).with_name("mnv1-tk"))


def remove_kept_log(message: str) -> None:
    """The error names the full MindSpore Lite log it kept; check it is there, then tidy it away."""
    log = Path(re.search(r"full log: (\S+?)\)?$", message.strip()).group(1))
    assert log.is_file() and log.stat().st_size > 0
    log.unlink()


@pytest.fixture(scope="module")
def small_ms(mslite_backend, digits_model, tmp_path_factory) -> Path:
    """The trained digits model as fp32 `.ms` with its card."""
    return write_mslite(digits_model.onnx, tmp_path_factory.mktemp("small_ms"), digits_model.card)


def test_predictor_runs_any_batch_size_in_one_worker_and_stops_it(small_ms, digits_model):
    with load_predictor(small_ms, num_threads=1) as predictor:
        assert predictor.input_spec.layout == "NCHW" and predictor.input_spec.shape == (1, 3, 32, 32)
        batch = digits_model.val_images[:5]
        logits = predictor.run(batch)
        assert logits.shape == (5, 10)
        one_by_one = np.concatenate([predictor.run(image[None]) for image in batch])
        np.testing.assert_array_equal(logits, one_by_one)
        process = predictor.session.worker.process
        assert process.poll() is None
    assert process.poll() is not None  # closed with the predictor


def test_card_that_does_not_fit_the_model_is_refused(small_ms, tmp_path):
    wrong = tmp_path / "wrong.ms"
    wrong.write_bytes(small_ms.read_bytes())
    save_card(load_card(small_ms).replace(image_size=64), wrong)
    with pytest.raises(ModelCardError, match="says input 64x64 RGB but the model takes"):
        load_predictor(wrong)


def test_corrupt_ms_file_is_one_line_through_the_cli(mslite_backend, small_ms, tmp_path):
    bad = tmp_path / "broken.ms"
    bad.write_bytes(small_ms.read_bytes()[:4000])
    save_card(load_card(small_ms), bad)
    image = tmp_path / "digit.png"
    cv2.imwrite(str(image), np.full((32, 32, 3), 128, np.uint8))
    result = subprocess.run([MNV1_TK, "predict", "--model", str(bad), str(image)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"MindSpore Lite failed while loading {bad}" in result.stderr
    assert "Import model failed" in result.stderr  # the last lines of the MindSpore Lite log
    assert "is a MindSpore Lite 2.0 .ms model" in result.stderr
    remove_kept_log(result.stderr)


def test_native_abort_in_the_worker_is_one_backend_error(small_ms):
    with load_predictor(small_ms) as predictor:
        os.kill(predictor.session.worker.process.pid, signal.SIGABRT)
        with pytest.raises(BackendError) as caught:
            predictor.run(np.zeros((1, 3, 32, 32), np.float32))
    message = str(caught.value)
    assert "MindSpore Lite was killed by SIGABRT while running" in message and "\n" not in message
    remove_kept_log(message)


def test_bad_onnx_fails_in_the_converter_and_writes_nothing(mslite_backend, tmp_path):
    source = tmp_path / "bad.onnx"
    source.write_bytes(b"not an onnx model" * 64)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(BackendError) as caught:
        convert_to_ms(source, out_dir / "bad.fp32.ms", backend=mslite_backend)
    assert "MindSpore Lite failed while converting bad.onnx" in str(caught.value)
    assert "is a valid ONNX model" in str(caught.value) and "\n" not in str(caught.value)
    assert list(out_dir.iterdir()) == []
    remove_kept_log(str(caught.value))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(precision="fp16"), ConfigError, "precision 'fp16' is not supported"),
    (dict(precision="int8", quantizer="mslite", method="entropy"), ConfigError, "unknown MindSpore Lite calibration"),
    (dict(precision="int8", quantizer="mslite"), CalibrationError, "needs calibration images"),
    (dict(precision="int8", quantizer="mslite", calib_images=np.zeros((4, 3, 64, 64), np.float32)),
     CalibrationError, r"calibration images are \[4, 3, 64, 64\]"),
    (dict(precision="int8", quantizer="ours"), ModelFileError, "converted from our int8 .tflite"),
])
def test_bad_requests_are_refused_before_conversion(tmp_path, kwargs, error, message):
    source = tmp_path / "model.onnx"
    source.write_bytes(b"unused")
    with pytest.raises(error, match=message):
        write_mslite(source, tmp_path, zoo_card(0.25, 32), **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_full_quant_config_has_exactly_the_mindspore_lite_keys(tmp_path):
    text = render_config(full_quant_config("x", tmp_path / "calib", 64, "removal_outlier"))
    assert text.split() == [
        "[common_quant_param]", "quant_type=FULL_QUANT", "bit_num=8",
        "[data_preprocess_param]", f"calibrate_path=x:{tmp_path / 'calib'}", "calibrate_size=64", "input_type=BIN",
        "[full_quant_param]", "activation_quant_method=REMOVAL_OUTLIER", "bias_correction=true", "per_channel=true"]


@pytest.mark.parametrize("layout, shape", [("NCHW", (1, 3, 4, 5)), ("NHWC", (1, 4, 5, 3))])
def test_calibration_files_are_raw_float32_in_the_input_layout(tmp_path, layout, shape):
    batch = np.random.RandomState(0).randn(3, 3, 4, 5).astype(np.float32)
    assert write_calibration_bins(batch, tmp_path, layout) == 3
    files = sorted(tmp_path.glob("*.bin"))
    assert [f.name for f in files] == ["00000.bin", "00001.bin", "00002.bin"]
    stored = np.fromfile(files[1], np.float32).reshape(shape)
    expected = batch[1:2] if layout == "NCHW" else batch[1:2].transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(stored, expected)


def test_official_package_commands(tmp_path):
    home = tmp_path / "mindspore-lite-2.0.0-linux-x64"
    backend = OfficialBackend(home, tmp_path / "shim.so")
    with pytest.raises(BackendError, match="not a MindSpore Lite package: no tools/converter/converter/converter_lite"):
        backend.check_layout()
    (home / "runtime" / "third_party" / "glog" / "lib").mkdir(parents=True)
    job = ConvertJob("onnx", Path("/m/model.onnx"), Path("/o/model.int8"), Path("/o/quant.cfg"), "NCHW")
    assert backend.converter_command(job) == [
        str(home / "tools/converter/converter/converter_lite"), "--fmk=ONNX", "--modelFile=/m/model.onnx",
        "--outputFile=/o/model.int8", "--configFile=/o/quant.cfg", "--inputDataFormat=NCHW"]
    assert backend.converter_command(ConvertJob("tflite", Path("a.tflite"), Path("b")))[1:] == [
        "--fmk=TFLITE", "--modelFile=a.tflite", "--outputFile=b"]
    assert backend.benchmark_command(Path("m.ms"), Path("in.bin"), Path("out.txt"), num_threads=4) == [
        str(home / "tools/benchmark/benchmark"), "--modelFile=m.ms", "--inDataFile=in.bin",
        "--benchmarkDataFile=out.txt", "--accuracyThreshold=0.5", "--numThreads=4", "--device=CPU"]
    command = official_shim_command(backend, "g++")
    assert "-l:libmindspore-lite.so" in command and "-DMNV1_WITH_CONVERTER" not in command
    assert f"-I{home / 'runtime'}" in command
    assert f"-Wl,-rpath,{home / 'runtime/lib'}" in command
    assert f"-Wl,-rpath,{home / 'runtime/third_party/glog/lib'}" in command
    expected = write_benchmark_data(tmp_path / "expected.txt", {"logits": np.array([[0.5, -1.25, 3.0]], np.float32)})
    assert expected.read_text() == "logits 2 1 3\n0.5 -1.25 3\n"
