"""Converter config files: MindSpore Lite 2.0's full-quant PTQ INI and its calibration BIN files.

The keys are exactly the ones MindSpore Lite 2.0 accepts (an unknown key fails the conversion
with -600). Calibration files are raw float32 in the model's input layout: NCHW when the
converter is told `input_format="NCHW"`, NHWC otherwise.
"""

from __future__ import annotations

import configparser
import io
from pathlib import Path

import numpy as np

from toolkit.errors import CalibrationError, ConfigError

METHODS = {"max_min": "MAX_MIN", "kl": "KL", "removal_outlier": "REMOVAL_OUTLIER"}


def full_quant_config(input_name: str, calibration_dir: Path, count: int, method: str = "max_min") -> dict:
    """Full int8 quantization (weights per channel, activations per tensor) with bias correction."""
    if method not in METHODS:
        raise ConfigError(f"unknown MindSpore Lite calibration method '{method}'", f"use one of: {', '.join(METHODS)}")
    return {
        "common_quant_param": {"quant_type": "FULL_QUANT", "bit_num": "8"},
        "data_preprocess_param": {"calibrate_path": f"{input_name}:{calibration_dir}", "calibrate_size": str(count),
                                  "input_type": "BIN"},
        "full_quant_param": {"activation_quant_method": METHODS[method], "bias_correction": "true",
                             "per_channel": "true"},
    }


def render_config(config: dict) -> str:
    """{section: {key: value}} -> INI text, `key=value` with case kept."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    for section, values in config.items():
        parser[section] = {key: str(value) for key, value in values.items()}
    text = io.StringIO()
    parser.write(text, space_around_delimiters=False)
    return text.getvalue()


def write_calibration_bins(images: np.ndarray, directory: Path, layout: str = "NCHW") -> int:
    """One raw float32 file per image ([1,3,S,S] for NCHW, [1,S,S,3] for NHWC); returns the count."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 3 or len(images) == 0:
        raise CalibrationError(f"calibration images must be a non-empty float32 batch [N,3,S,S], got "
                               f"{images.dtype}{list(images.shape)}", "pass preprocessed NCHW images")
    if not np.all(np.isfinite(images)):
        raise CalibrationError("calibration images contain NaN or Inf", "check the preprocessing")
    if layout == "NHWC":
        images = images.transpose(0, 2, 3, 1)
    directory.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        np.ascontiguousarray(image[None], dtype=np.float32).tofile(directory / f"{index:05d}.bin")
    return len(images)
