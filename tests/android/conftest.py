"""Fixtures for the Android demo tests: a bundle of the session's trained digits model, and the compiled JVM core."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "android_demo"
CORE = DEMO / "core"
JUNIT_CLASSPATH = ("/usr/share/java/junit4.jar", "/usr/share/java/hamcrest-core.jar")


@pytest.fixture(scope="session")
def digits_models(trained_digits, tmp_path_factory) -> list[Path]:
    """The trained digits model as the app would get it: the fp32 ONNX (NCHW) and an int8 .tflite with int8
    input and output (NHWC), quantized with a quick recipe (the bundle needs its arithmetic, not its accuracy)."""
    from toolkit.convert import ConvertOptions, QuantOptions, convert

    out = tmp_path_factory.mktemp("demo_models")
    quick = QuantOptions(calib="digits", calib_size=32, method="minmax", bias_correction=False, io="int8")
    (int8,) = convert(trained_digits.onnx, ConvertOptions(quant="int8", out_dir=out, num_eval=8, quantization=quick))
    return [trained_digits.onnx, int8.path]


@pytest.fixture(scope="session")
def compiled_model(digits_models) -> Path:
    """Stands in for a model compiled for one phone's NPU (a QNN EPContext .onnx for the SM8650): the host cannot
    run it (its bytes are no ONNX), its card is the int8 model's with the SoC in `extra`."""
    from toolkit.card import load_card, save_card

    int8 = digits_models[1]
    path = int8.parent / "mobilenet_v1_025_32.int8.sm8650.onnx"
    path.write_bytes(b"EPContext binary for the Hexagon HTP, not loadable on the host")
    card = load_card(int8)
    save_card(card.replace(format="onnx", output_dtype="float32", extra={**card.extra, "soc": "SM8650"}), path)
    return path


@pytest.fixture(scope="session")
def bundle_dir(digits_models, compiled_model, tmp_path_factory) -> Path:
    from toolkit.bundle import bundle

    assets = tmp_path_factory.mktemp("assets")
    bundle([*digits_models, compiled_model], assets, golden_images=4)
    return assets


@pytest.fixture(scope="session")
def core_classes(tmp_path_factory) -> Path:
    """android_demo/core (main and tests) compiled with javac against Debian's junit4."""
    if not shutil.which("javac") or not Path(JUNIT_CLASSPATH[0]).is_file():
        pytest.fail("javac and junit4 are missing: run scripts/install.sh (default-jdk-headless, junit4)")
    classes = tmp_path_factory.mktemp("core_classes")
    sources = sorted(str(p) for p in CORE.glob("src/*/java/**/*.java"))
    javac = subprocess.run(["javac", "-Xlint:all", "-Werror", "--release", "8", "-d", str(classes),
                            "-cp", ":".join(JUNIT_CLASSPATH), *sources], capture_output=True, text=True)
    assert javac.returncode == 0, javac.stderr
    return classes
