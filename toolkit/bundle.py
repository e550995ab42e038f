"""`mnv1-tk bundle`: the models, their cards and labels, a `models.json` index and golden vectors,
laid out as the Android demo's assets (`android_demo/app/src/main/assets`).

Golden vectors let the phone (the app's self-check) and the JVM tests of `android_demo/core` check
themselves against the host: a few real images (JPEG photos from scikit-learn and PNG digits), their
decoded RGBA pixels, each model's input tensor (`toolkit.preprocess`, in the model's layout, before
and after input quantization), and each model's logits from the host runtime.

Layout under `out/` (all little-endian, row-major):
    models.json                     index: one entry per model (see `model_entry`)
    <model file>, <model file>.json the models and their cards, copied
    labels.txt, labels_2.txt, ...   one file per distinct label list
    golden/golden.json              images and, per model, the files below
    golden/image_<i>.<jpg|png>      the source images; image_<i>.rgba: decoded RGBA uint8 [H, W, 4]
    golden/<model>/tensor_<i>.f32   float32 input in the model's layout, before quantization
    golden/<model>/input_<i>.i8     the int8 input (int8-input models only)
    golden/<model>/logits_<i>.f32   host logits (float32, dequantized); a file compiled for one SoC, which the
                                    host cannot run, names a portable sibling as its `reference` and uses its logits
    golden/<model>/quant_probe.f32 / .i8, dequant_probe.f32   int8 rounding / saturation probes
    golden/resize/*.rgb             OpenCV INTER_LINEAR resizes of random RGB images over varied geometries
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.card import ModelCard, card_path, load_card
from toolkit.errors import BackendError, ConfigError, DataError, ModelFileError
from toolkit.fsutil import ensure_writable_dir, write_bytes, write_json, write_text

INDEX_NAME = "models.json"
GOLDEN_DIR = "golden"
INDEX_VERSION = 1
RUNTIMES = {".tflite": "litert", ".ms": "mslite", ".onnx": "ort"}
ACCELERATORS = {"litert": ["cpu", "gpu", "npu"], "mslite": ["cpu", "gpu", "npu"], "ort": ["cpu", "npu"]}
TOP_K = 5
# (height, width) -> (height, width): downscales, upscales, an exact halving (OpenCV's area path), 1-pixel edges
RESIZE_PROBES = (((120, 180), (10, 15)), ((72, 72), (36, 36)), ((64, 100), (32, 50)), ((37, 100), (32, 86)),
                 ((8, 8), (36, 36)), ((1, 5), (3, 9)), ((96, 128), (51, 68)), ((99, 61), (71, 43)),
                 ((30, 200), (32, 213)), ((5, 3), (2, 7)))


@dataclass(frozen=True)
class GoldenImage:
    name: str  # file name under golden/
    rgb: np.ndarray  # decoded RGB uint8 [H, W, 3], as toolkit.preprocess.load_image gives it


def sample_images(count: int, directory: Path) -> list[GoldenImage]:
    """`count` real images written into `directory`: scikit-learn's two JPEG photos (China, flower)
    and digits from scikit-learn's digits set upscaled 8x to PNG, alternating."""
    import cv2
    import sklearn.datasets
    from sklearn.datasets import load_digits

    from toolkit.preprocess import load_image

    photos = sorted((Path(sklearn.datasets.__file__).parent / "images").glob("*.jpg"))
    digits = load_digits()
    sources = []
    for i in range(count):
        if i % 2 == 0 and i // 2 < len(photos):
            name = f"image_{i}.jpg"
            shutil.copyfile(photos[i // 2], directory / name)
        else:
            pixels = (digits.images[i] * (255 / 16)).round().astype(np.uint8)
            big = cv2.resize(pixels, None, fx=8, fy=8, interpolation=cv2.INTER_NEAREST)
            name = f"image_{i}.png"
            _, png = cv2.imencode(".png", big)
            write_bytes(directory / name, png.tobytes())
        sources.append(GoldenImage(name, load_image(directory / name)))
    return sources


def soc_of(path: Path, card: ModelCard) -> str | None:
    """The SoC a model was compiled for: the card's `extra["soc"]` (or `extra["npu"]["soc"]`), else the
    name segment after the precision (`mobilenet_v1_025_224.int8.sm8650.onnx`); None for portable models."""
    extra = card.extra or {}
    soc = extra.get("soc") or (extra.get("npu") or {}).get("soc")
    if soc:
        return str(soc).lower()
    parts = path.name.split(".")
    if len(parts) >= 4 and parts[-3] in ("fp32", "fp16", "int8") and re.fullmatch(r"[a-z]+\d+[a-z0-9]*", parts[-2]):
        return parts[-2]
    return None


def output_quant(path: Path, card: ModelCard) -> dict | None:
    """Quantization of an int8 output, read from the model file (TFLite keeps it in the tensor)."""
    if card.output_dtype == "float32":
        return None
    if path.suffix == ".tflite":
        from toolkit.runtimes.litert import _interpreter_module, _native_log_muted

        with _native_log_muted():
            details = _interpreter_module().Interpreter(model_path=str(path)).get_output_details()[0]
        scale, zero_point = details["quantization"]
        return {"scale": float(scale), "zero_point": int(zero_point)}
    raise ModelFileError(f"{path.name} has an {card.output_dtype} output whose quantization the bundler cannot read",
                         "bundle the .tflite with --io int8, or a model with a float32 output")


def model_entry(path: Path, card: ModelCard, labels_file: str) -> dict:
    """One models.json entry: what the app needs to pick, feed and read the model."""
    runtime = RUNTIMES[path.suffix]
    quant = card.input_quant
    return {
        "id": path.name,
        "file": path.name,
        "card": card_path(path).name,
        "labels": labels_file,
        "model": card.model,
        "width": card.width,
        "runtime": runtime,
        "accelerators": ACCELERATORS[runtime],
        "precision": card.precision,
        "soc": soc_of(path, card),
        "image_size": card.image_size,
        "num_classes": card.num_classes,
        "layout": card.input_layout,
        "input_shape": list(card.input_shape),
        "input_dtype": card.input_dtype,
        "input_quant": {"scale": quant.scale, "zero_point": quant.zero_point} if quant else None,
        "output_dtype": card.output_dtype,
        "output_quant": output_quant(path, card),
        "mean": list(card.mean),
        "std": list(card.std),
        "crop_pct": card.crop_pct,
        "interpolation": card.interpolation,
    }


def _check_models(models: list[Path]) -> list[tuple[Path, ModelCard]]:
    if not models:
        raise ConfigError("no models to bundle", "pass --models FILE... (.tflite, .ms or .onnx with their cards)")
    checked, names = [], set()
    for path in map(Path, models):
        if not path.is_file():
            raise ModelFileError(f"model file {path} does not exist", "check the path")
        if path.suffix not in RUNTIMES:
            raise ModelFileError(f"{path.name}: the app cannot run '{path.suffix}' files",
                                 f"bundle {', '.join(RUNTIMES)} files (mnv1-tk convert writes them)")
        if path.name in names:
            raise ConfigError(f"two models are named {path.name}", "bundle each file name once")
        names.add(path.name)
        card = load_card(path)
        if card.interpolation != "bilinear":
            raise ModelFileError(f"{path.name} uses {card.interpolation} resizing; the app implements bilinear only",
                                 "export the model with interpolation bilinear")
        checked.append((path, card))
    return checked


def _golden_for_model(path: Path, card: ModelCard, entry: dict, images: list[GoldenImage], out: Path) -> dict:
    """Writes golden/<model>/...; returns the model's golden.json record (without logits when the host cannot
    run a model compiled for a phone's NPU)."""
    from toolkit.preprocess import preprocess
    from toolkit.runtimes import load_predictor

    directory = f"{GOLDEN_DIR}/{path.name}"
    canonical = np.stack([preprocess(image.rgb, card) for image in images])
    in_layout = canonical.transpose(0, 2, 3, 1) if card.input_layout == "NHWC" else canonical
    try:
        predictor = load_predictor(path, card=card)
    except (BackendError, ModelFileError):
        if entry["soc"] is None:
            raise
        predictor = None  # compiled for a phone's NPU: the logits come from a portable sibling (see bundle)
    record = {"dir": directory, "samples": []}
    logits = native = None
    if predictor is not None:
        with predictor:
            logits, native = predictor.run(canonical), predictor.to_native(canonical)
    elif card.input_dtype == "int8":
        native = quantize_like_toolkit(in_layout, card.input_quant.scale, card.input_quant.zero_point)
    for i, tensor in enumerate(in_layout):
        sample = {"tensor": f"{directory}/tensor_{i}.f32"}
        write_bytes(out / sample["tensor"], np.ascontiguousarray(tensor, "<f4").tobytes())
        if native is not None and native.dtype == np.int8:
            sample["input"] = f"{directory}/input_{i}.i8"
            write_bytes(out / sample["input"], native[i].tobytes())
        if logits is not None:
            sample["logits"] = f"{directory}/logits_{i}.f32"
            sample["top5"] = [int(k) for k in np.argsort(-logits[i], kind="stable")[:TOP_K]]
            write_bytes(out / sample["logits"], np.ascontiguousarray(logits[i], "<f4").tobytes())
        record["samples"].append(sample)
    if entry["input_quant"]:
        record.update(_quant_probes(entry, directory, out))
    return record


def quantize_like_toolkit(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float32 -> int8 exactly as `Predictor.to_native` does it (float32 divide, half-to-even, saturate)."""
    return np.clip(np.round(np.asarray(x, np.float32) / scale) + zero_point, -128, 127).astype(np.int8)


def _quant_probes(entry: dict, directory: str, out: Path) -> dict:
    """Input quantization probes (exact ties, both saturation ends) and output dequantization of every int8."""
    scale, zero_point = entry["input_quant"]["scale"], entry["input_quant"]["zero_point"]
    steps = np.arange(-300, 300, dtype=np.float32) / np.float32(2)  # every half step: ties round to even
    probe = np.concatenate([steps * np.float32(scale), np.float32([-1e6, 1e6, 0.0, -0.0])]).astype(np.float32)
    files = {"quant_probe": f"{directory}/quant_probe.f32", "quant_expected": f"{directory}/quant_probe.i8"}
    write_bytes(out / files["quant_probe"], probe.astype("<f4").tobytes())
    write_bytes(out / files["quant_expected"], quantize_like_toolkit(probe, scale, zero_point).tobytes())
    if entry["output_quant"]:
        q = np.arange(-128, 128, dtype=np.int8)
        oq = entry["output_quant"]
        dequant = (q.astype(np.float32) - oq["zero_point"]) * np.float32(oq["scale"])  # as the LiteRT predictor
        files["dequant_probe"] = f"{directory}/dequant_probe.f32"
        write_bytes(out / files["dequant_probe"], dequant.astype("<f4").tobytes())
    return files


def _borrow_sibling_logits(entries: list[dict], golden_models: dict) -> None:
    """A model compiled for one SoC that the host cannot run is checked against the host logits of a portable
    model of the same network, size and precision in the bundle (recorded as its `reference`)."""
    for entry in entries:
        record = golden_models[entry["id"]]
        if "logits" in record["samples"][0]:
            continue
        sibling = next((e for e in entries if e["soc"] is None and "logits" in golden_models[e["id"]]["samples"][0]
                        and (e["model"], e["image_size"], e["precision"]) ==
                        (entry["model"], entry["image_size"], entry["precision"])), None)
        if sibling is None:
            continue
        record["reference"] = sibling["id"]
        for sample, reference in zip(record["samples"], golden_models[sibling["id"]]["samples"]):
            sample.update(logits=reference["logits"], top5=reference["top5"])


def _resize_probes(out: Path) -> list[dict]:
    """Random RGB images and their cv2.resize(INTER_LINEAR), which the app's resize reproduces bit for bit."""
    import cv2

    rng = np.random.default_rng(0)
    probes = []
    for k, ((h, w), (out_h, out_w)) in enumerate(RESIZE_PROBES):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        probe = {"src": f"{GOLDEN_DIR}/resize/src_{k}.rgb", "width": w, "height": h,
                 "expected": f"{GOLDEN_DIR}/resize/dst_{k}.rgb", "out_width": out_w, "out_height": out_h}
        write_bytes(out / probe["src"], image.tobytes())
        write_bytes(out / probe["expected"],
                    cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_LINEAR).tobytes())
        probes.append(probe)
    return probes


def bundle(models: list[Path], out: Path, *, golden_images: int = 4) -> Path:
    """Copy `models` (with cards and labels) into `out`, write golden vectors and the `models.json`
    index last; returns the path of `models.json`."""
    if golden_images < 1:
        raise ConfigError(f"--golden-images {golden_images} must be at least 1", "pass --golden-images 4")
    checked = _check_models(models)
    out = ensure_writable_dir(out)
    golden_dir = ensure_writable_dir(out / GOLDEN_DIR)
    try:
        images = sample_images(golden_images, golden_dir)
    except ImportError as exc:
        raise DataError(f"the golden images need {exc.name}", "pip install scikit-learn") from None

    labels_files: dict[tuple[str, ...], str] = {}
    entries, golden_models = [], {}
    for path, card in checked:
        if card.labels not in labels_files:
            name = "labels.txt" if not labels_files else f"labels_{len(labels_files) + 1}.txt"
            labels_files[card.labels] = name
            write_text(out / name, "".join(label + "\n" for label in card.labels))
        write_bytes(out / path.name, path.read_bytes())
        write_bytes(out / card_path(path).name, card_path(path).read_bytes())
        entry = model_entry(path, card, labels_files[card.labels])
        entries.append(entry)
        golden_models[entry["id"]] = _golden_for_model(path, card, entry, images, out)
    _borrow_sibling_logits(entries, golden_models)

    write_json(golden_dir / "golden.json", {
        "images": [{"file": f"{GOLDEN_DIR}/{image.name}", "rgba": f"{GOLDEN_DIR}/{Path(image.name).stem}.rgba",
                    "width": int(image.rgb.shape[1]), "height": int(image.rgb.shape[0])} for image in images],
        "models": golden_models,
        "resize": _resize_probes(out),
    })
    for image in images:
        rgba = np.concatenate([image.rgb, np.full(image.rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
        write_bytes(golden_dir / f"{Path(image.name).stem}.rgba", rgba.tobytes())
    return write_json(out / INDEX_NAME, {"version": INDEX_VERSION, "golden": f"{GOLDEN_DIR}/golden.json",
                                         "models": entries})


def bundle_command(models: list[Path], out: Path, golden_images: int = 4) -> Path:
    """`mnv1-tk bundle`: bundle(), then a table of what went in."""
    import json

    from rich.console import Console
    from rich.table import Table

    index = bundle(models, out, golden_images=golden_images)
    table = Table(title=f"mnv1-tk bundle — {index}")
    for column in ("file", "runtime", "precision", "input", "soc", "golden"):
        table.add_column(column)
    golden = json.loads((index.parent / GOLDEN_DIR / "golden.json").read_text())["models"]
    for entry in json.loads(index.read_text())["models"]:
        record = golden[entry["id"]]
        with_logits = sum("logits" in s for s in record["samples"])
        source = f" (logits of {record['reference']})" if "reference" in record else ""
        table.add_row(entry["file"], entry["runtime"], entry["precision"],
                      f"{entry['layout']} {entry['input_dtype']} {entry['image_size']}", entry["soc"] or "-",
                      f"{with_logits} images{source}" if with_logits else "no host logits")
    Console().print(table)
    return index
