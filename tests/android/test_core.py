"""The demo's JVM core (android_demo/core) against the golden vectors `mnv1-tk bundle` writes, and `bundle` itself.

The JUnit tests check the Java preprocessing against the Python tensors on real JPEG and PNG images, the Java
bilinear resize against cv2.resize on ten geometries (bit for bit), int8 quantization probes (exact ties, both
saturation ends) and output dequantization exactly, top-5 from the host logits, models.json and card parsing,
and the self-check.
"""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np

from tests.android.conftest import CORE, JUNIT_CLASSPATH
from tests.cli import assert_one_line_error, invoke
from toolkit.bundle import GOLDEN_DIR, INDEX_NAME

JUNIT_CLASSES = ("org.mnv1tk.core.GoldenVectorsTest", "org.mnv1tk.core.CoreUnitTest")


def run_junit(classes, bundle) -> subprocess.CompletedProcess:
    return subprocess.run(["java", f"-Dmnv1tk.bundle={bundle}", "-cp", ":".join((str(classes), *JUNIT_CLASSPATH)),
                           "org.junit.runner.JUnitCore", *JUNIT_CLASSES], capture_output=True, text=True)


def test_core_junit_passes_on_the_golden_vectors(core_classes, bundle_dir):
    result = run_junit(core_classes, bundle_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    ran = re.search(r"^OK \((\d+) tests\)", result.stdout, re.M)
    assert ran and int(ran.group(1)) >= 14, result.stdout
    print(re.search(r"preprocessing: .*", result.stdout).group(0))  # measured: 0.0, bit for bit


def test_core_junit_fails_on_a_wrong_golden_tensor(core_classes, bundle_dir, tmp_path):
    """The golden comparison can fail: one tensor value moved by 2e-3 is caught."""
    import shutil

    broken = tmp_path / "assets"
    shutil.copytree(bundle_dir, broken)
    golden = json.loads((broken / GOLDEN_DIR / "golden.json").read_text())
    tensor_file = broken / next(iter(golden["models"].values()))["samples"][0]["tensor"]
    tensor = np.fromfile(tensor_file, "<f4")
    tensor[17] += np.float32(2e-3)
    tensor.tofile(tensor_file)
    result = run_junit(core_classes, broken)
    assert result.returncode == 1 and "preprocessingMatchesThePythonTensorsOnRealImages" in result.stdout


def test_core_has_no_android_imports():
    sources = list(CORE.glob("src/main/java/**/*.java"))
    assert len(sources) >= 10
    for path in sources:
        imports = re.findall(r"^import\s+([\w.]+)", path.read_text(), re.M)
        assert not [i for i in imports if i.startswith(("android.", "androidx.", "com.google."))], path


def test_bundle_index_and_golden_files(bundle_dir, digits_models, compiled_model):
    from toolkit.card import load_card
    from toolkit.preprocess import load_image

    index = json.loads((bundle_dir / INDEX_NAME).read_text())
    assert [m["file"] for m in index["models"]] == [p.name for p in (*digits_models, compiled_model)]
    onnx, int8, compiled = index["models"]
    assert (onnx["runtime"], onnx["layout"], onnx["input_quant"]) == ("ort", "NCHW", None)
    card = load_card(digits_models[1])
    io = (int8["input_dtype"], int8["output_dtype"])
    assert (int8["runtime"], int8["layout"], io) == ("litert", "NHWC", ("int8", "int8"))
    assert int8["input_quant"] == {"scale": card.input_quant.scale, "zero_point": card.input_quant.zero_point}
    assert int8["output_quant"]["scale"] > 0 and int8["soc"] is None
    assert (bundle_dir / "labels.txt").read_text().split() == list(card.labels)
    golden = json.loads((bundle_dir / GOLDEN_DIR / "golden.json").read_text())
    kinds = [image["file"].rsplit(".", 1)[1] for image in golden["images"]]
    assert kinds == ["jpg", "png", "jpg", "png"]
    for image in golden["images"]:  # the RGBA pixels are the toolkit's decode of the real image file
        rgb = load_image(bundle_dir / image["file"])
        rgba = np.fromfile(bundle_dir / image["rgba"], np.uint8).reshape(image["height"], image["width"], 4)
        assert np.array_equal(rgba[..., :3], rgb) and (rgba[..., 3] == 255).all()
    for model in index["models"]:
        for sample in golden["models"][model["id"]]["samples"]:
            logits = np.fromfile(bundle_dir / sample["logits"], "<f4")
            assert logits.shape == (10,) and sample["top5"] == list(np.argsort(-logits, kind="stable")[:5])
    # the compiled model: its SoC from the card, the int8 sibling's host logits, its own int8 inputs
    assert (compiled["runtime"], compiled["soc"], compiled["input_quant"]) == ("ort", "sm8650", int8["input_quant"])
    own, sibling = golden["models"][compiled["id"]], golden["models"][int8["id"]]
    assert own["reference"] == int8["id"] and "reference" not in sibling
    for mine, theirs in zip(own["samples"], sibling["samples"]):
        assert mine["logits"] == theirs["logits"] and mine["input"] != theirs["input"]
        assert (bundle_dir / mine["input"]).read_bytes() == (bundle_dir / theirs["input"]).read_bytes()


def test_compiled_model_soc_comes_from_the_card_or_the_name(tmp_path, digits_models):
    from toolkit.bundle import soc_of
    from toolkit.card import load_card

    card = load_card(digits_models[1])
    assert soc_of(tmp_path / "mobilenet_v1_025_224.int8.sm8650.onnx", card) == "sm8650"
    assert soc_of(tmp_path / "mobilenet_v1_025_224.int8.tflite", card) is None
    assert soc_of(tmp_path / "m.int8.tflite", card.replace(extra={"soc": "SM8550"})) == "sm8550"


def test_bundle_cli_writes_the_index(tmp_path, digits_models, compiled_model):
    result = invoke("bundle", "--models", *digits_models, compiled_model, "--out", tmp_path / "assets",
                    "--golden-images", 1)
    assert result.exit_code == 0, result.output
    assert "mnv1-tk bundle" in result.output and "sm8650" in result.output
    index = json.loads((tmp_path / "assets" / INDEX_NAME).read_text())
    golden = json.loads((tmp_path / "assets" / GOLDEN_DIR / "golden.json").read_text())
    assert [m["soc"] for m in index["models"]] == [None, None, "sm8650"] and len(golden["images"]) == 1
    assert not list((tmp_path / "assets").rglob(".*.part*"))  # atomic writes leave no temporary files


def test_bundle_bad_input_is_one_line(tmp_path, digits_models):
    assert_one_line_error(invoke("bundle", "--out", tmp_path / "a"), "no models to bundle")
    assert_one_line_error(invoke("bundle", "--models", tmp_path / "missing.tflite", "--out", tmp_path / "a"),
                          "does not exist")
    other = tmp_path / "m.ckpt"
    other.write_bytes(b"x")
    assert_one_line_error(invoke("bundle", "--models", other, "--out", tmp_path / "a"), "cannot run '.ckpt'")
    assert_one_line_error(invoke("bundle", "--models", *digits_models, "--out", tmp_path / "a", "--golden-images", 0),
                          "--golden-images")
    assert not (tmp_path / "a" / INDEX_NAME).exists()
