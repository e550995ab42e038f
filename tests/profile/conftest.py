"""Fixtures for the profiler tests: small converted models, the real adb server, simulated phones.

The adb server is Debian's, started on its own port with its own HOME (so it never meets a real
phone or another test run); simulated phones (tests/profile/fake_device.py) join it with
`adb connect`. The runners installed in the cache are stand-in files: the simulated phone recognises
them by name and runs the pushed model on this host's LiteRT / MindSpore Lite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.profile.fake_device import FakeDevice, free_port


@dataclass(frozen=True)
class ProfileModels:
    onnx: Path
    tflite: Path  # its name has a space in it
    ms: Path


@pytest.fixture(scope="session")
def profile_models(tmp_path_factory) -> ProfileModels:
    """A 32x32 MobileNetV1-like model (ONNX, with its card), converted to fp32 .tflite and .ms."""
    import onnx

    from tests.models import zoo_card
    from tests.onnx_models import mobilenet_like
    from toolkit.card import load_card, save_card
    from toolkit.convert import ConvertOptions, convert

    directory = tmp_path_factory.mktemp("profile models")
    source = directory / "mobilenet_v1_025_32.onnx"
    onnx.save(mobilenet_like(32, 0.25), source)
    save_card(zoo_card(0.25, 32).replace(extra={"val_top1": 0.9}), source)
    outputs = {r.path.suffix: r.path for r in convert(source, ConvertOptions(to=("tflite", "mslite"), check=False))}
    spaced = directory / "my model.fp32.tflite"
    shutil.move(outputs[".tflite"], spaced)
    save_card(load_card(outputs[".tflite"]).replace(extra={"val_top1": 0.8}), spaced)
    return ProfileModels(source, spaced, outputs[".ms"])


class AdbServer:
    def __init__(self, env: dict):
        self.env = env

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["adb", *args], env=self.env, capture_output=True, text=True, timeout=60)
        assert not check or result.returncode == 0, result
        return result

    def states(self) -> dict[str, str]:
        lines = self("devices").stdout.splitlines()[1:]
        return dict(line.split("\t") for line in lines if "\t" in line)

    def connect(self, device: FakeDevice, state: str = "device") -> None:
        self("connect", device.serial)
        deadline = time.monotonic() + 20
        while self.states().get(device.serial) != state:
            assert time.monotonic() < deadline, f"{device.serial} never became {state}: {self.states()}"
            time.sleep(0.1)

    def disconnect(self, device: FakeDevice) -> None:
        self("disconnect", device.serial, check=False)


@pytest.fixture(scope="session")
def adb_server(tmp_path_factory):
    """Debian's adb server on a free port with a private HOME (its keys). Tests reach it through `phones`,
    which points ANDROID_ADB_SERVER_PORT at it."""
    home = tmp_path_factory.mktemp("adb_home")
    server = AdbServer(dict(os.environ, HOME=str(home), ANDROID_ADB_SERVER_PORT=str(free_port())))
    server("start-server")
    try:
        yield server
    finally:
        server("kill-server", check=False)


@pytest.fixture(scope="session")
def runner_files(tmp_path_factory) -> dict[str, Path]:
    """Stand-ins with the official names: the LiteRT binary and a MindSpore Lite android-aarch64 package."""
    root = tmp_path_factory.mktemp("downloads")
    litert = root / "android_aarch64_benchmark_model"
    litert.write_bytes(b"\x7fELF stand-in for LiteRT benchmark_model")
    package = root / "mindspore-lite-2.0.0-android-aarch64"
    for relative in ("tools/benchmark/benchmark", "runtime/lib/libmindspore-lite.so",
                     "runtime/third_party/libc++_shared.so"):
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_bytes(b"\x7fELF stand-in " + relative.encode())
    return {"litert": litert, "mslite": package}


@pytest.fixture()
def runners(tmp_path, monkeypatch, runner_files):
    """An empty runners cache for this test; call it to install the stand-ins."""
    monkeypatch.setenv("MNV1TK_ANDROID_RUNNERS", str(tmp_path / "runners"))

    def install():
        from toolkit.android.runners import setup_runners

        setup_runners(runner_files["litert"], version="test")
        setup_runners(runner_files["mslite"])
    return install


@pytest.fixture()
def phones(adb_server, tmp_path, monkeypatch):
    """Start simulated phones connected to the adb server: phones(n, **device_options) -> [FakeDevice].
    The profiler's adb calls in this test go to that server."""
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", adb_server.env["ANDROID_ADB_SERVER_PORT"])
    started: list[FakeDevice] = []

    def start(count: int = 1, state: str = "device", **options) -> list[FakeDevice]:
        for index in range(count):
            device = FakeDevice(tmp_path / f"phone{len(started)}", lifetime_s=120, **options).start()
            started.append(device)
            adb_server.connect(device, state)
        return started[-count:]

    yield start
    for device in started:
        adb_server.disconnect(device)
        device.stop()
