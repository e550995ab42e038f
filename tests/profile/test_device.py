"""On-device profiling through the real adb client and server, against simulated phones."""

from __future__ import annotations

import csv
import json

import pytest

from tests.cli import assert_one_line_error, invoke


def test_profile_tflite_and_ms_on_a_phone(profile_models, runners, phones, tmp_path):
    runners()
    (phone,) = phones(1)
    out = tmp_path / "device.json"
    result = invoke("profile", profile_models.tflite, profile_models.ms, "--device", "auto", "--threads", "1,2",
                    "--runs", "6", "--warmup", "2", "--ops", "--pin", "f0", "--json", out)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["results"]
    assert [(r["model"], r["runtime"], r["threads"]) for r in rows] == [
        ("my model.fp32.tflite", "litert", 1), ("my model.fp32.tflite", "litert", 2),
        ("mobilenet_v1_025_32.fp32.ms", "mslite", 1), ("mobilenet_v1_025_32.fp32.ms", "mslite", 2)]
    for row in rows:
        assert row["device"] == phone.serial and row["runs"] == 6
        assert 0 < row["min_ms"] <= row["mean_ms"]
        info = row["device_info"]
        assert (info["model"], info["soc"], info["android"], info["abi"]) == ("Pixel 7", "GS201", "14", "arm64-v8a")
        assert info["max_freq_mhz"] == [1803, 1803, 1803, 1803, 2348, 2348, 2850, 2850]
        assert info["battery_c_before"] == 31.0 and info["hot"] is False
    litert = rows[0]
    assert litert["init_ms"] > 0 and litert["first_ms"] > 0 and litert["min_ms"] <= litert["median_ms"]
    assert litert["macs"] == rows[2]["macs"] > 0  # counted from the .tflite graph and from the .ms card's source
    slowest = max(litert["ops"], key=lambda op: op["avg_ms"])
    assert slowest["kind"] in ("CONV_2D", "DEPTHWISE_CONV_2D")
    assert "Slowest ops" in result.output
    # Every argument reached the device quoted: the model name keeps its space, taskset pins the runner.
    runs = [c for c in phone.commands if "--graph=" in c]
    assert runs and all(c.startswith("timeout 600 taskset f0 ") for c in runs)
    assert "'--graph=/data/local/tmp/mnv1-tk/my model.fp32.tflite'" in runs[0]
    assert any("env LD_LIBRARY_PATH=/data/local/tmp/mnv1-tk timeout 600 taskset f0 " in c and "--cpuBindMode=0" in c
               for c in phone.commands)
    assert phone.files() == []


def test_all_devices_in_parallel_into_one_table(profile_models, runners, phones, tmp_path):
    runners()
    cool, hot = phones(1)[0], phones(1, props={"ro.product.model": "Mate 40", "ro.soc.model": "",
                                               "ro.board.platform": "kirin9000"}, battery_temp_c=44.5)[0]
    out = tmp_path / "all.csv"
    result = invoke("profile", profile_models.tflite, "--device", "all", "--runs", "4", "--warmup", "1",
                    "--accelerator", "gpu", "--csv", out)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert {row["device"] for row in rows} == {cool.serial, hot.serial}
    assert "Mate 40 (hot)" in result.output and "Pixel 7" in result.output
    assert all("--use_gpu=true" in c for d in (cool, hot) for c in d.commands if "--graph=" in c)
    nnapi = invoke("profile", profile_models.tflite, "--device", cool.serial, "--runs", "2", "--accelerator",
                   "nnapi:qti-htp")
    assert nnapi.exit_code == 0, nnapi.output
    assert any("--use_nnapi=true --nnapi_accelerator_name=qti-htp" in c for c in cool.commands)
    assert cool.files() == [] and hot.files() == []


@pytest.mark.parametrize("case", ["no device", "two devices", "unauthorized", "runner missing"])
def test_device_selection_errors(case, profile_models, runners, phones):
    if case != "runner missing":
        runners()
    if case == "two devices":
        phones(2)
    elif case == "unauthorized":
        phones(1, state="unauthorized", unauthorized=True)
    elif case == "runner missing":
        phones(1)
    result = invoke("profile", profile_models.tflite, "--device", "auto")
    expected = {"no device": ("no Android device is connected", "adb devices"),
                "two devices": ("2 devices are connected", "--device SERIAL"),
                "unauthorized": ("is unauthorized", "Allow USB debugging"),
                "runner missing": ("benchmark_model runner for android_aarch64 is not installed",
                                   "https://storage.googleapis.com/")}[case]
    assert_one_line_error(result, *expected)


def test_runner_failure_and_timeout_leave_nothing_behind(profile_models, runners, phones, tmp_path):
    runners()
    (phone,) = phones(1)
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"not a flatbuffer" * 100)
    failed = invoke("profile", corrupt, "--device", phone.serial)
    assert_one_line_error(failed, "benchmark_model failed on", "exit code 1", "Benchmarking failed")
    assert phone.files() == []
    slow = invoke("profile", profile_models.tflite, "--device", phone.serial, "--runs", "1000000", "--timeout", "1")
    assert_one_line_error(slow, "timed out after 1 s", "--timeout")
    assert phone.files() == []


def test_setup_android_runners_records_hashes(runner_files, monkeypatch, tmp_path):
    from toolkit.android.runners import find_runner
    from toolkit.fsutil import sha256_of

    monkeypatch.setenv("MNV1TK_ANDROID_RUNNERS", str(tmp_path / "cache"))
    wrong = invoke("setup", "android-runners", "--from", runner_files["litert"], "--sha256", "0" * 64)
    assert_one_line_error(wrong, "has SHA-256", "download the file again")
    digest = sha256_of(runner_files["litert"])
    assert invoke("setup", "android-runners", "--from", runner_files["litert"], "--sha256", digest,
                  "--version", "2.16.1").exit_code == 0
    assert invoke("setup", "android-runners", "--from", runner_files["mslite"]).exit_code == 0
    litert, mslite = find_runner("litert"), find_runner("mslite")
    assert (litert.sha256, litert.version) == (digest, "2.16.1")
    assert mslite.version == "2.0.0" and [p.name for p in mslite.libraries] == ["libmindspore-lite.so",
                                                                                  "libc++_shared.so"]
    manifest = json.loads((tmp_path / "cache" / "runners.json").read_text())
    assert manifest["mslite"]["files"]["benchmark"] == sha256_of(mslite.binary)
    assert_one_line_error(invoke("setup", "android-runners", "--from", tmp_path / "nothing"), "does not exist")
