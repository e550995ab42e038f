"""ONNX / TFLite -> `.ms` with the real MindSpore Lite converter, written atomically and verified.

    convert_to_ms(source, out, fmk=..., config=..., input_format=...)   one converter run
    write_mslite(source, out_dir, card, precision=..., quantizer=...)    `<stem>.<fp32|int8>.ms` + its card
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from converters.mslite.backends import Backend, ConvertJob
from converters.mslite.config import METHODS, full_quant_config, render_config, write_calibration_bins
from converters.mslite.provision import ensure_mslite
from converters.mslite.smoke import onnxruntime_logits
from toolkit.card import InputQuant, ModelCard, save_card
from toolkit.errors import AtolError, BackendError, CalibrationError, ConfigError, ModelCardError, ModelFileError
from toolkit.fsutil import ensure_writable_dir

SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite"}
PRECISIONS = ("fp32", "int8")
QUANTIZERS = ("ours", "mslite")
# fp32 `.ms` vs ONNX Runtime: both sum float32 products in different orders (MindSpore Lite packs
# and tiles its GEMMs); over MobileNetV1's 28 layers that stays within ~1e-5 of O(10) logits.
FP32_ATOL = 1e-4
VERIFY_IMAGES = 2


def convert_to_ms(source: str | Path, out: str | Path, *, fmk: str = "onnx", config: dict | None = None,
                  input_format: str | None = "NCHW", backend: Backend | None = None) -> Path:
    """Run the MindSpore Lite converter once: `source` (.onnx or .tflite) -> `out` (.ms), atomically.

    config: converter config sections ({section: {key: value}}), e.g. `config.full_quant_config(...)`.
    input_format: layout of the `.ms` input, "NCHW" or "NHWC"; None keeps the converter's default
    (NHWC for ONNX, the model's own layout for TFLite).
    """
    source, out = Path(source), Path(out)
    if fmk not in SUFFIXES:
        raise ConfigError(f"unknown source format '{fmk}'", f"use one of: {', '.join(SUFFIXES)}")
    if not source.is_file():
        raise ModelFileError(f"model file {source} does not exist", "check the path")
    if source.suffix.lower() != SUFFIXES[fmk]:
        raise ModelFileError(f"{source} is not a {SUFFIXES[fmk]} file", f"pass a {SUFFIXES[fmk]} model for fmk={fmk}")
    if out.suffix != ".ms":
        raise ConfigError(f"output {out} must end in .ms", "name the output <stem>.<precision>.ms")
    if input_format not in (None, "NCHW", "NHWC"):
        raise ConfigError(f"unknown input format '{input_format}'", "use NCHW, NHWC or None")
    ensure_writable_dir(out.parent)
    if backend is None:
        backend = ensure_mslite()
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as work:
        work = Path(work)
        config_path = None
        if config:
            config_path = work / "converter.cfg"
            config_path.write_text(render_config(config))
        job = ConvertJob(fmk, source.resolve(), work / out.stem, config_path, input_format)
        backend.convert(job)
        if not job.output.is_file() or job.output.stat().st_size == 0:
            raise BackendError(f"the MindSpore Lite converter reported success but wrote no {job.output.name}",
                               "run again with `mnv1-tk --debug` and check the converter log")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(job.output, 0o666 & ~umask)  # the converter writes its output read-only for the owner
        os.replace(job.output, out)
    return out


def _onnx_input_name(path: Path) -> str:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelFileError(f"{path} has {len(inputs)} inputs, MobileNetV1 has one", "export the model again")
    return inputs[0]


def _check_request(source: Path, card: ModelCard, precision: str, quantizer: str, method: str,
                   calib_images: np.ndarray | None) -> str:
    """Validate the arguments of write_mslite; returns the converter's source format."""
    if precision not in PRECISIONS:
        raise ConfigError(f"MindSpore Lite precision '{precision}' is not supported",
                          f"use one of: {', '.join(PRECISIONS)}")
    if quantizer not in QUANTIZERS:
        raise ConfigError(f"unknown quantizer '{quantizer}'", f"use one of: {', '.join(QUANTIZERS)}")
    if method not in METHODS:
        raise ConfigError(f"unknown MindSpore Lite calibration method '{method}'", f"use one of: {', '.join(METHODS)}")
    fmk = "tflite" if precision == "int8" and quantizer == "ours" else "onnx"
    if source.suffix.lower() != SUFFIXES[fmk]:
        wanted = "our int8 .tflite" if fmk == "tflite" else "the ONNX export"
        raise ModelFileError(f"{precision} .ms with quantizer '{quantizer}' is converted from {wanted}, "
                             f"got {source.name}", f"pass a {SUFFIXES[fmk]} file")
    if precision == "int8" and quantizer == "mslite":
        s = card.image_size
        if calib_images is None or len(calib_images) == 0:
            raise CalibrationError("MindSpore Lite's own quantizer needs calibration images", "pass --calib-data")
        if tuple(calib_images.shape[1:]) != (3, s, s):
            raise CalibrationError(f"calibration images are {list(calib_images.shape)}, "
                                   f"the model takes [N, 3, {s}, {s}]",
                                   "preprocess them with the model card's eval transform")
    return fmk


def _layout_of(shape: tuple[int, ...], size: int, where: Path) -> str:
    if len(shape) == 4 and shape[1:] == (3, size, size):
        return "NCHW"
    if len(shape) == 4 and shape[1:] == (size, size, 3):
        return "NHWC"
    raise ModelCardError(f"{where} takes input {list(shape)}, but its card says {size}x{size} RGB",
                         "convert from the model that belongs to this card")


def verify_ms(path: Path, card: ModelCard, backend: Backend, onnx_reference: Path | None = None) -> ModelCard:
    """Load `path`, check it against `card`, compare fp32 output with ONNX Runtime; returns the `.ms` card."""
    with backend.open(path) as session:
        spec = session.inputs[0]
        layout = _layout_of(spec.shape, card.image_size, path)
        out = session.outputs[0]
        if out.shape[-1] != card.num_classes:
            raise ModelCardError(f"{path} outputs {list(out.shape)}, its card says {card.num_classes} classes",
                                 "convert from the model that belongs to this card")
        images = np.random.RandomState(0).randn(VERIFY_IMAGES, 3, card.image_size, card.image_size).astype(np.float32)
        native = images.transpose(0, 2, 3, 1) if layout == "NHWC" else images
        input_quant = InputQuant(spec.scale, spec.zero_point) if spec.scale is not None else None
        if spec.dtype != "float32":
            if input_quant is None:
                raise ModelFileError(f"{path.name} takes {spec.dtype} input without quantization parameters",
                                     "convert it again")
            info = np.iinfo(spec.dtype)
            native = np.clip(np.round(native / input_quant.scale) + input_quant.zero_point, info.min, info.max)
            native = native.astype(spec.dtype)
        logits = session.run(native)
    if not np.all(np.isfinite(logits)):
        raise BackendError(f"{path.name} produces NaN or Inf logits", "check the source model")
    if onnx_reference is not None:
        error = float(np.abs(logits - onnxruntime_logits(onnx_reference, images)).max())
        if not error <= FP32_ATOL:
            raise AtolError(f"{path.name} differs from ONNX Runtime by {error:.2e} (tolerance {FP32_ATOL:.0e})",
                            "report the model; the MindSpore Lite converter changed its numerics")
    return card.replace(format="ms", input_name=spec.name, input_layout=layout, input_dtype=spec.dtype,
                        output_name=out.name, input_quant=input_quant if spec.dtype != "float32" else None)


def write_mslite(source: str | Path, out_dir: str | Path, card: ModelCard, *, precision: str = "fp32",
                 quantizer: str = "ours", method: str = "max_min", calib_images: np.ndarray | None = None) -> Path:
    """Write `<out_dir>/<stem>.<precision>.ms` and its model card; returns the model path.

    precision="fp32": from the ONNX export, NCHW input, checked against ONNX Runtime.
    precision="int8", quantizer="ours": from our int8 `.tflite`, keeping its quantization parameters.
    precision="int8", quantizer="mslite": MindSpore Lite's own full-quant PTQ of the ONNX export,
        calibrated on `calib_images` (preprocessed float32 NCHW) with `method` (max_min | kl | removal_outlier).
    """
    source = Path(source)
    fmk = _check_request(source, card, precision, quantizer, method, calib_images)
    if not source.is_file():
        raise ModelFileError(f"model file {source} does not exist", "check the path")
    out_dir = ensure_writable_dir(out_dir)
    out = out_dir / f"{card.stem}.{precision}.ms"
    backend = ensure_mslite()
    extra = dict(card.extra, converter=backend.name)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out_dir) as work:
        work = Path(work)
        staged = work / out.name
        if fmk == "tflite":
            convert_to_ms(source, staged, fmk="tflite", input_format=None, backend=backend)
            extra.update(quantizer="ours")
        elif precision == "fp32":
            convert_to_ms(source, staged, fmk="onnx", input_format="NCHW", backend=backend)
        else:
            count = write_calibration_bins(calib_images, work / "calibration", layout="NCHW")
            config = full_quant_config(_onnx_input_name(source), work / "calibration", count, method)
            convert_to_ms(source, staged, fmk="onnx", config=config, input_format="NCHW", backend=backend)
            extra.update(quantizer="mslite", method=METHODS[method], calibration_images=count)
        ms_card = verify_ms(staged, card, backend, onnx_reference=source if precision == "fp32" else None)
        os.replace(staged, out)
    save_card(ms_card.replace(precision=precision, source=source.name, extra=extra), out)
    return out
