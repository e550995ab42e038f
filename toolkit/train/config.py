"""Training config: small frozen dataclasses, filled from a YAML file and CLI overrides.

A config file is a flat mapping with mindcv's key names (`configs/mobilenetv1/*.yaml` from mindcv
load unchanged), plus a few of our own (`activation`). Each key belongs to one field of one group
(`SystemConfig`, `DataConfig`, ...); the selector of a group is its `name` field (`opt` sets
`optimizer.name`, `scheduler` sets `scheduler.name`, ...). Precedence: defaults < YAML < CLI.
An unknown key is an error that lists the valid keys. mindcv keys that mnv1-tk does not implement
(mixup, auto_augment, ...) are accepted at their mindcv default and rejected with a clear message
otherwise. `save_config` writes the resolved config in the same format, so it can be run again.

Defaults are mindcv's (config.py), except: dataset `digits` (the embedded dataset), model
`mobilenet_v1_025`, device_target `CPU`, val_while_train `True` (validation every epoch) and
num_parallel_workers 4.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import yaml

from toolkit.data.transforms import INTERPOLATIONS, AugmentConfig
from toolkit.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def option(key: str, default, doc: str, choices: tuple | None = None,
           check: tuple[Callable[[Any], bool], str] | None = None):
    """A config field: `key` is its name in YAML files, `doc` shows in the saved config."""
    return field(default=default, metadata={"key": key, "doc": doc, "choices": choices, "check": check})


POSITIVE = (lambda v: v > 0, "> 0")
NON_NEGATIVE = (lambda v: v >= 0, ">= 0")
PROBABILITY = (lambda v: 0 <= v <= 1, "in [0, 1]")
UNIT_INTERVAL = (lambda v: 0 <= v < 1, "in [0, 1)")


@dataclass(frozen=True)
class SystemConfig:
    device_target: str = option("device_target", "CPU", "where to train", choices=("CPU", "GPU", "Ascend"))
    mode: int = option("mode", 0, "0: graph mode (compiled), 1: PyNative", choices=(0, 1))
    distributed: bool = option("distribute", False, "data-parallel over the msrun workers")
    seed: int = option("seed", 42, "seed for weights, shuffling and augmentation")


@dataclass(frozen=True)
class DataConfig:
    name: str = option("dataset", "digits", "digits | imagefolder (alias imagenet) | cifar10")
    root: Optional[str] = option("data_dir", None, "dataset root (not needed for digits)")
    train_split: str = option("train_split", "train", "training folder under data_dir")
    val_split: str = option("val_split", "val", "validation folder under data_dir")
    shuffle: bool = option("shuffle", True, "shuffle the training set every epoch")
    num_samples: Optional[int] = option("num_samples", None, "use only this many training images", check=POSITIVE)
    batch_size: int = option("batch_size", 128, "images per step and device", check=POSITIVE)
    drop_remainder: bool = option("drop_remainder", True, "drop the last incomplete training batch")
    num_workers: int = option("num_parallel_workers", 4, "dataset worker threads (at most the CPU count)",
                              check=POSITIVE)
    image_size: int = option("image_resize", 224, "input size (32..224)",
                             check=(lambda v: 32 <= v <= 224, "in 32..224"))
    interpolation: str = option("interpolation", "bilinear", "resize interpolation", choices=INTERPOLATIONS)
    crop_pct: float = option("crop_pct", 0.875, "eval centre-crop fraction", check=(lambda v: 0 < v <= 1, "in (0, 1]"))
    mean: Optional[tuple[float, float, float]] = option("mean", None, "per-channel mean (default: the model's)")
    std: Optional[tuple[float, float, float]] = option("std", None, "per-channel std (default: the model's)")


@dataclass(frozen=True)
class ModelConfig:
    name: str = option("model", "mobilenet_v1_025", "mobilenet_v1_025 | _050 | _075 | _100")
    num_classes: Optional[int] = option("num_classes", None, "classes (default: the dataset's)", check=POSITIVE)
    activation: str = option("activation", "relu6", "relu6 (paper, TFLite) or relu (mindcv's checkpoints)",
                             choices=("relu", "relu6"))
    drop_rate: Optional[float] = option("drop_rate", None, "dropout before the classifier", check=UNIT_INTERVAL)
    checkpoint: str = option("ckpt_path", "", "initial weights (.ckpt); the head adapts to num_classes")


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = option("opt", "adam", "optimizer", choices=("sgd", "momentum", "adam", "adamw", "rmsprop"))
    momentum: float = option("momentum", 0.9, "momentum (sgd, momentum, rmsprop)", check=NON_NEGATIVE)
    weight_decay: float = option("weight_decay", 1e-6, "L2 weight decay", check=NON_NEGATIVE)
    nesterov: bool = option("use_nesterov", False, "Nesterov momentum (sgd, momentum)")
    weight_decay_filter: str = option("weight_decay_filter", "disable",
                                      "disable | norm_and_bias (no decay on BN and biases) | auto (= norm_and_bias)",
                                      choices=("disable", "norm_and_bias", "auto"))
    eps: float = option("eps", 1e-10, "denominator epsilon (adam, adamw, rmsprop)", check=POSITIVE)
    clip_grad: bool = option("clip_grad", False, "clip the gradients' global L2 norm (after unscaling and the "
                             "all-reduce) to clip_value before the update")
    clip_value: float = option("clip_value", 15.0, "the largest global gradient norm with clip_grad", check=POSITIVE)

    @property
    def clip_norm(self) -> float | None:
        """The global gradient norm each update is clipped to; None: no clipping."""
        return self.clip_value if self.clip_grad else None


@dataclass(frozen=True)
class SchedulerConfig:
    name: str = option("scheduler", "cosine_decay", "learning-rate schedule",
                       choices=("constant", "cosine_decay", "warmup_cosine_decay", "step_decay", "multi_step_decay",
                                "exponential_decay"))
    lr: float = option("lr", 0.001, "peak learning rate", check=POSITIVE)
    min_lr: float = option("min_lr", 1e-6, "final learning rate of cosine_decay", check=NON_NEGATIVE)
    warmup_epochs: int = option("warmup_epochs", 3, "linear warm-up epochs", check=NON_NEGATIVE)
    warmup_factor: float = option("warmup_factor", 0.0, "warm-up starts at lr * warmup_factor", check=PROBABILITY)
    decay_epochs: int = option("decay_epochs", 100, "cosine: epochs to reach min_lr; step: epochs per decay",
                               check=POSITIVE)
    decay_rate: float = option("decay_rate", 0.9, "factor of step / multi-step / exponential decay", check=POSITIVE)
    milestones: tuple[int, ...] = option("multi_step_decay_milestones", (30, 60, 90), "epochs of multi_step_decay")
    epoch_stair: bool = option("lr_epoch_stair", False, "change the lr once per epoch instead of every step")
    num_cycles: int = option("num_cycles", 1, "cosine cycles", check=POSITIVE)
    cycle_decay: float = option("cycle_decay", 1.0, "peak lr factor per cosine cycle", check=POSITIVE)


@dataclass(frozen=True)
class LossConfig:
    name: str = option("loss", "CE", "CE (softmax cross-entropy) or BCE (per-class sigmoid)", choices=("CE", "BCE"))
    label_smoothing: float = option("label_smoothing", 0.0, "label smoothing", check=UNIT_INTERVAL)
    reduction: str = option("reduction", "mean", "loss reduction over the batch", choices=("mean", "sum"))


@dataclass(frozen=True)
class PrecisionConfig:
    amp_level: str = option("amp_level", "O0", "mixed precision: O0 fp32, O1 white-list fp16, O2 all but BN fp16, "
                            "O3 all fp16", choices=("O0", "O1", "O2", "O3"))
    val_amp_level: str = option("val_amp_level", "O0", "mixed precision of validation",
                                choices=("O0", "O1", "O2", "O3"))
    loss_scale_type: str = option("loss_scale_type", "fixed", "fixed or dynamic loss scaling",
                                  choices=("fixed", "dynamic"))
    loss_scale: float = option("loss_scale", 1.0, "(initial) loss scale", check=POSITIVE)
    drop_overflow_update: bool = option("drop_overflow_update", False,
                                        "skip the update of a step whose gradients overflow")


@dataclass(frozen=True)
class CheckpointConfig:
    directory: str = option("ckpt_save_dir", "./ckpt", "checkpoints, cards, metrics.jsonl and config.yaml")
    keep_max: int = option("keep_checkpoint_max", 10, "epoch checkpoints to keep", check=POSITIVE)
    interval: int = option("ckpt_save_interval", 1, "save every N epochs (and after the last)", check=POSITIVE)
    policy: str = option("ckpt_save_policy", "latest_k", "keep the latest k or the top k by val top-1",
                         choices=("latest_k", "top_k"))
    resume: bool = option("resume_opt", False, "continue from the newest checkpoint in ckpt_save_dir")


@dataclass(frozen=True)
class RunConfig:
    epochs: int = option("epoch_size", 90, "training epochs", check=POSITIVE)
    validate: bool = option("val_while_train", True, "validate (and keep the best checkpoint) while training")
    val_interval: int = option("val_interval", 1, "validate every N epochs", check=POSITIVE)
    log_interval: int = option("log_interval", 100, "steps between metrics.jsonl step records", check=POSITIVE)
    ema: bool = option("ema", False, "validate and save an exponential moving average of the weights")
    ema_decay: float = option("ema_decay", 0.9999, "EMA decay", check=UNIT_INTERVAL)
    sink_mode: bool = option("dataset_sink_mode", True,
                             "accepted for mindcv configs; batches are always fed from the host")


@dataclass(frozen=True)
class QATConfig:
    enabled: bool = option("qat", False, "quantization-aware fine-tuning of ckpt_path, distilled from it")
    ranges: str = option("qat_ranges", "lsq", "activation ranges: lsq (learnt) or ema (of batch min/max)",
                         choices=("lsq", "ema"))
    init: str = option("qat_init", "ptq", "start: ptq (our default PTQ's ranges and bias-corrected biases) or "
                       "minmax (min/max ranges)", choices=("ptq", "minmax"))
    lr: float = option("qat_lr", 0.001, "peak learning rate of the fine-tuning (replaces lr; --lr sets it with --qat)",
                       check=POSITIVE)
    weight_decay: float = option("qat_weight_decay", 0.0, "weight decay of the fine-tuning (replaces weight_decay: "
                                 "decay pulls the weights away from the float model)", check=NON_NEGATIVE)
    clip_value: Optional[float] = option("qat_clip_value", 1.0, "clip the fine-tuning's global gradient norm to this "
                                         "(replaces clip_grad / clip_value; null: no clipping)", check=POSITIVE)
    range_lr: float = option("qat_range_lr", 1.0, "learning rate of the learnt ranges, as a factor of lr",
                             check=POSITIVE)
    classifier: str = option("qat_classifier", "int8", "the classifier's precision: int8, or float (float32 on the "
                             "dequantized pooled features; logits with no int8 grid)", choices=("int8", "float"))
    calib_images: int = option("qat_calib_images", 256, "training images (eval transform) that set the first "
                               "ranges", check=(lambda v: v >= 16, ">= 16"))
    distill: str = option("distill_loss", "mse", "loss on the float model's logits: mse or kl",
                          choices=("mse", "kl"))
    label_weight: float = option("distill_label_weight", 0.0, "weight of a cross-entropy on the labels",
                                 check=NON_NEGATIVE)
    temperature: float = option("distill_temperature", 1.0, "softmax temperature of the kl loss", check=POSITIVE)


@dataclass(frozen=True)
class TrainConfig:
    system: SystemConfig = field(default_factory=SystemConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    run: RunConfig = field(default_factory=RunConfig)
    qat: QATConfig = field(default_factory=QATConfig)

    def replace(self, **groups) -> "TrainConfig":
        return dataclasses.replace(self, **groups)


AUGMENT_DOCS = {"scale": "random-resized-crop area range", "ratio": "random-resized-crop aspect range",
                "hflip": "horizontal flip probability", "vflip": "vertical flip probability",
                "color_jitter": "brightness / contrast / saturation jitter"}

# mindcv keys mnv1-tk does not implement: accepted only at these (no-op) values.
UNSUPPORTED = {
    "dataset_download": (False,), "aug_repeats": (0, 1), "auto_augment": (None, ""), "aug_splits": (0,),
    "re_prob": (0, 0.0), "re_scale": ((0.02, 0.33),), "re_ratio": ((0.3, 3.3),), "re_value": (0,),
    "re_max_attempts": (10,), "mixup": (0, 0.0), "cutmix": (0, 0.0), "cutmix_prob": (1.0,), "in_channels": (3,),
    "drop_path_rate": (None, 0, 0.0), "layer_decay": (None,),
    "gradient_accumulation_steps": (1,), "aux_factor": (0, 0.0), "amp_cast_list": (None,),
    "eval_shuffle": (False,), "enable_modelarts": (False,), "multi_data_url": ("/cache/data/",),
    "data_url": ("/cache/data/",), "ckpt_url": ("/cache/output/",), "train_url": ("/cache/output/",),
}
# mindcv keys that map onto another field: pretrained (bool or path), older mindcv's flags, and `config`
# (the path mindcv's save_args records; it names the file itself and is ignored).
COMPAT_KEYS = ("pretrained", "dynamic_loss_scale", "filter_bias_and_bn", "config")


def _group_fields() -> dict[str, tuple[str, dataclasses.Field]]:
    """{yaml key: (group attribute, field)} for every implemented key."""
    table = {}
    for group in dataclasses.fields(TrainConfig):
        for f in dataclasses.fields(group.default_factory):
            table[f.metadata.get("key", f.name)] = (group.name, f)
    return table


KEYS = _group_fields()
VALID_KEYS = tuple(sorted(set(KEYS) | set(UNSUPPORTED) | set(COMPAT_KEYS)))


def _normalise(value):
    if isinstance(value, list):
        return tuple(_normalise(v) for v in value)
    return value


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value, tp, key: str):
    """Check and convert `value` to the field type `tp` (YAML and `--set` give strings for some numbers)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), key)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace("[", "").replace("]", "").replace("(", "").replace(")", "").split(",")
                     if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}", f"write e.g. {key}: [1, 2]")
        item = args[0]
        if len(args) != 2 or args[1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"config key '{key}' needs {len(args)} values, got {len(value)}",
                                  f"write {key} as a list of {len(args)} numbers")
        return tuple(_coerce(v, item, key) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
    elif tp is int:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"config key '{key}' must be {_type_name(tp)}, got {value!r}", f"fix '{key}' in the config")


def _check(key: str, value, f: dataclasses.Field) -> None:
    choices, check = f.metadata.get("choices"), f.metadata.get("check")
    if value is None:
        return
    if choices and value not in choices:
        raise ConfigError(f"config key '{key}' is {value!r}", f"use one of: {', '.join(map(str, choices))}")
    if check and not check[0](value):
        raise ConfigError(f"config key '{key}' is {value!r} but must be {check[1]}", f"fix '{key}' in the config")


def _unknown_key(key: str, where: str) -> ConfigError:
    close = difflib.get_close_matches(key, VALID_KEYS, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return ConfigError(f"unknown config key '{key}' in {where}", f"{hint}valid keys: {', '.join(VALID_KEYS)}")


def _translate_compat(key: str, value, where: str) -> dict:
    """mindcv compatibility keys -> implemented keys."""
    if key == "config":
        return {}
    if key == "pretrained":
        if value is None or value is False or (isinstance(value, str) and value.lower() in ("false", "no", "0", "")):
            return {}
        if value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "1")):
            raise ConfigError(f"'pretrained: True' in {where} asks to download mindcv's weights, which mnv1-tk does "
                              "not do", "download the .ckpt and pass its path: --pretrained PATH (or ckpt_path)")
        return {"ckpt_path": value}
    if key == "dynamic_loss_scale":
        return {"loss_scale_type": "dynamic" if _coerce(value, bool, key) else "fixed"}
    if key == "filter_bias_and_bn":
        return {"weight_decay_filter": "norm_and_bias" if _coerce(value, bool, key) else "disable"}
    raise AssertionError(key)


def _check_unsupported(key: str, value, where: str) -> None:
    value = _normalise(value)
    defaults = UNSUPPORTED[key]
    if any(value == d or (isinstance(value, (int, float)) and isinstance(d, (int, float)) and not isinstance(d, bool)
                          and math.isclose(value, d)) for d in defaults):
        return
    raise ConfigError(f"config key '{key}: {value!r}' in {where} is a mindcv option that mnv1-tk does not implement",
                      f"remove it or set it to {defaults[0]!r}")


def build_config(values: Mapping[str, Any], where: str = "config") -> TrainConfig:
    """A TrainConfig from a flat {key: value} mapping (mindcv key names); unset keys keep their defaults."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise ConfigError(f"config key {key!r} in {where} is not a name", "use key: value lines")
        if key in COMPAT_KEYS:
            flat.update(_translate_compat(key, value, where))
        elif key in UNSUPPORTED:
            _check_unsupported(key, value, where)
        elif key in KEYS:
            flat[key] = value
        else:
            raise _unknown_key(key, where)
    groups: dict[str, dict] = {}
    for key, value in flat.items():
        group, f = KEYS[key]
        tp = typing.get_type_hints(type(getattr(TrainConfig(), group)))[f.name]
        value = _coerce(value, tp, key)
        _check(key, value, f)
        groups.setdefault(group, {})[f.name] = value
    config = TrainConfig()
    return config.replace(**{g: dataclasses.replace(getattr(config, g), **kw) for g, kw in groups.items()})


def resolve_config_path(name: str | Path) -> Path:
    """A config file path, or the name of a shipped config (`mobilenet_v1_025_digits`)."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    shipped = CONFIG_DIR / f"{Path(name).stem}.yaml"
    if shipped.is_file() and path.parent == Path("."):
        return shipped
    names = ", ".join(p.stem for p in shipped_configs())
    raise ConfigError(f"config file {name} does not exist", f"pass a YAML file or one of: {names}")


def shipped_configs() -> list[Path]:
    return sorted(CONFIG_DIR.glob("*.yaml"))


def read_yaml(path: str | Path) -> dict:
    path = resolve_config_path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config {path} is not valid YAML{where}", "fix the syntax") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}", "check the path") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} is not a mapping of keys to values", "write one `key: value` per line")
    return data


def parse_set_options(pairs: typing.Iterable[str]) -> dict[str, Any]:
    """`("lr=0.1", "scale=[0.5, 1]")` -> {"lr": 0.1, "scale": [0.5, 1]} (values are YAML)."""
    values = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r} is not KEY=VALUE", "write e.g. --set lr=0.1")
        try:
            values[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"--set {pair!r}: the value is not valid YAML", "quote it or fix it") from None
    return values


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                sets: typing.Iterable[str] = ()) -> TrainConfig:
    """Defaults, then the YAML file `path`, then `overrides` ({key: value}, None = not given), then `--set` pairs."""
    file_values = read_yaml(path) if path else {}
    cli_values = {k: v for k, v in (overrides or {}).items() if v is not None}
    cli_values.update(parse_set_options(sets))
    build_config(file_values, where=str(path))  # so that errors name where the bad key is
    build_config(cli_values, where="the command line")
    return build_config({**file_values, **cli_values}, where=str(path) if path else "the command line")


def config_values(config: TrainConfig) -> dict[str, Any]:
    """The flat {key: value} form of a config (lists for tuples), in group order."""
    out = {}
    for group in dataclasses.fields(TrainConfig):
        part = getattr(config, group.name)
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            out[f.metadata.get("key", f.name)] = list(value) if isinstance(value, tuple) else value
    return out


def dump_config(config: TrainConfig) -> str:
    """The resolved config as YAML, one commented section per group."""
    lines = ["# mnv1-tk resolved training config (mindcv key names); run again with: mnv1-tk train --config FILE"]
    values = config_values(config)
    for group in dataclasses.fields(TrainConfig):
        lines.append(f"\n# {group.name}")
        for f in dataclasses.fields(group.default_factory):
            key = f.metadata.get("key", f.name)
            doc = f.metadata.get("doc") or AUGMENT_DOCS.get(key, "")
            text = yaml.safe_dump({key: values[key]}, default_flow_style=True, width=1000).strip()
            lines.append(f"{text[1:-1]}  # {doc}" if doc else text[1:-1])
    return "\n".join(lines) + "\n"


def save_config(config: TrainConfig, path: str | Path) -> Path:
    from toolkit.fsutil import write_text

    return write_text(path, dump_config(config))
