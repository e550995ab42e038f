"""Recipes: what a quantization run does, as data. Presets live in `quantize/recipes/*.json`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from quantize.observers import METHODS
from quantize.plan import IO_TYPES
from quantize.reference import KERNEL_PROFILES
from toolkit.errors import ConfigError

GLOBAL_POOLS = ("mean", "avg_pool")
CLASSIFIER_PRECISIONS = ("int8", "float")
PRESETS_DIR = Path(__file__).parent / "recipes"


@dataclass(frozen=True)
class Recipe:
    method: str = "auto"            # auto | minmax | percentile | mse | kl | select (choose per model, see
                                    # quantize.selection)
    select_holdout: float = 0.25    # select: the fraction of calibration images held out to judge candidates
    percentile: float = 99.99
    mse_norm: float = 2.0           # mse: the error's power the range minimises (2: squared error; larger
                                    # weighs clipped outliers more, between mse and minmax)
    logits_range: str = "method"    # the logits' range: "method" (the recipe's method) or "minmax" (never clipped)
    cle: bool = True                # cross-layer equalization
    act_equalization: float = 0.0   # activation equalization (quantize.act_equalization): each channel's range is
                                    # its calibration maximum times this headroom (>= 1), at most the tensor's; 0: off
    bias_correction: bool = True
    adaround: bool = False          # learnt weight rounding (AdaRound)
    adaround_iterations: int = 500
    io: str = "float"               # float: QUANTIZE/DEQUANTIZE at the edges; int8: int8 in and out
    fallback: str = "none"          # none | float
    fallback_layers: int = 1        # how many of the most sensitive layers stay float
    auto_samples: int = 32          # images whose activations `auto` compares candidates on
    correction_images: int = 256    # images bias correction averages over (both counts for inputs up to 64x64;
                                    # larger inputs use proportionally fewer, at least 8 and 32)
    kernels: str = "builtin"        # integer kernels to simulate: TFLite "builtin" (optimized) or "reference"
    fc_per_channel: bool = True     # the classifier's weights per output channel (else one scale)
    classifier: str = "int8"        # the classifier in "int8", or "float": float32 on the dequantized pooled
                                    # features, so the logits carry no int8 grid (needs io=float)
    global_pool: str = "mean"       # the int8 global pool: "mean" (MEAN, as the TF converter; XNNPACK takes it
                                    # whole) or "avg_pool" (AVERAGE_POOL_2D + RESHAPE)

    def __post_init__(self):
        checks = {"method": (self.method, ("auto", "select", *METHODS)), "io": (self.io, IO_TYPES),
                  "fallback": (self.fallback, ("none", "float")), "kernels": (self.kernels, KERNEL_PROFILES),
                  "global_pool": (self.global_pool, GLOBAL_POOLS),
                  "classifier": (self.classifier, CLASSIFIER_PRECISIONS),
                  "logits_range": (self.logits_range, ("method", *METHODS))}
        for key, (value, allowed) in checks.items():
            if value not in allowed:
                raise ConfigError(f"recipe {key}={value!r} is not valid", f"use one of: {', '.join(allowed)}")
        if not 50.0 < self.percentile <= 100.0:
            raise ConfigError(f"recipe percentile={self.percentile} is not valid", "use a value in (50, 100]")
        if not 0.0 < self.select_holdout < 1.0:
            raise ConfigError(f"recipe select_holdout={self.select_holdout} is not valid", "use a value in (0, 1)")
        if not 1.0 <= self.mse_norm <= 8.0:
            raise ConfigError(f"recipe mse_norm={self.mse_norm} is not valid", "use a value in [1, 8]")
        if self.act_equalization != 0.0 and not 1.0 <= self.act_equalization <= 8.0:
            raise ConfigError(f"recipe act_equalization={self.act_equalization} is not valid",
                              "use 0 (off) or a headroom in [1, 8]")
        if self.classifier == "float" and self.io != "float":
            raise ConfigError(f"recipe classifier=float gives float logits, which io={self.io} cannot output",
                              "use io=float (--io float) with classifier=float, or classifier=int8")
        if self.adaround_iterations < 1:
            raise ConfigError("recipe adaround_iterations must be >= 1")
        if self.fallback_layers < 0:
            raise ConfigError("recipe fallback_layers must be >= 0")

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_dict(cls, data: dict) -> "Recipe":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown recipe keys {unknown}", f"valid keys: {', '.join(sorted(names))}")
        return cls(**data)

    @classmethod
    def load(cls, name_or_path: str) -> "Recipe":
        """A preset name (`default`, `minmax_baseline`, ...) or a JSON file."""
        path = Path(name_or_path)
        if not path.is_file():
            path = PRESETS_DIR / f"{name_or_path}.json"
        if not path.is_file():
            presets = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.json")))
            raise ConfigError(f"no recipe '{name_or_path}'", f"use a JSON file or one of: {presets}")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"recipe {path} is not valid JSON: {exc}") from None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
