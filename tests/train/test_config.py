"""Training config: mindcv's keys, precedence, validation, the resolved config and the shipped configs.

`data/mindcv_mobilenet_v1_1.0_ascend.yaml` is mindcv's `configs/mobilenetv1/mobilenet_v1_1.0_ascend.yaml`
(Apache-2.0), byte for byte: the issue requires that it loads unchanged.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from toolkit.errors import ConfigError
from toolkit.train.config import (
    KEYS, UNSUPPORTED, VALID_KEYS, build_config, dump_config, load_config, shipped_configs,
)
from toolkit.train.scheduler import create_scheduler

MINDCV_YAML = Path(__file__).parent / "data" / "mindcv_mobilenet_v1_1.0_ascend.yaml"

# Every option of mindcv's config.py (the newest version, plus the older dynamic_loss_scale,
# filter_bias_and_bn and modelarts keys) at its mindcv default.
MINDCV_DEFAULTS = {
    "mode": 0, "distribute": False, "val_while_train": False, "val_interval": 1, "log_interval": 100, "seed": 42,
    "device_target": "Ascend", "dataset": "imagenet", "data_dir": "./", "train_split": "train", "val_split": "val",
    "dataset_download": False, "num_parallel_workers": 8, "shuffle": True, "num_samples": None, "batch_size": 128,
    "drop_remainder": True, "image_resize": 224, "scale": (0.08, 1.0), "ratio": (0.75, 1.333), "hflip": 0.5,
    "vflip": 0.0, "color_jitter": 0.4, "interpolation": "bilinear", "auto_augment": None, "aug_splits": 0,
    "re_prob": 0.0, "re_scale": (0.02, 0.33), "re_ratio": (0.3, 3.3), "re_value": 0, "re_max_attempts": 10,
    "mean": [0.485 * 255, 0.456 * 255, 0.406 * 255], "std": [0.229 * 255, 0.224 * 255, 0.225 * 255],
    "crop_pct": 0.875, "mixup": 0.0, "cutmix": 0.0, "cutmix_prob": 1.0, "aug_repeats": 0,
    "model": "mobilenet_v1_100", "num_classes": None, "in_channels": 3, "drop_rate": None, "drop_path_rate": None,
    "pretrained": False, "ckpt_path": "", "resume_opt": False, "keep_checkpoint_max": 10, "ckpt_save_dir": "./ckpt",
    "ckpt_save_interval": 1, "ckpt_save_policy": "latest_k", "epoch_size": 90, "dataset_sink_mode": True,
    "ema": False, "ema_decay": 0.9999, "clip_grad": False, "clip_value": 15.0, "layer_decay": None,
    "gradient_accumulation_steps": 1, "opt": "adam", "momentum": 0.9, "weight_decay": 1e-6, "use_nesterov": False,
    "weight_decay_filter": "disable", "eps": 1e-10, "scheduler": "cosine_decay", "lr": 0.001, "min_lr": 1e-6,
    "warmup_epochs": 3, "warmup_factor": 0.0, "decay_epochs": 100, "decay_rate": 0.9,
    "multi_step_decay_milestones": [30, 60, 90], "lr_epoch_stair": False, "num_cycles": 1, "cycle_decay": 1.0,
    "loss": "CE", "label_smoothing": 0.0, "aux_factor": 0.0, "reduction": "mean", "amp_level": "O0",
    "val_amp_level": "O0", "amp_cast_list": None, "loss_scale_type": "fixed", "loss_scale": 1.0,
    "drop_overflow_update": False, "eval_shuffle": False,
    "dynamic_loss_scale": False, "filter_bias_and_bn": False, "enable_modelarts": False,
    "multi_data_url": "/cache/data/", "data_url": "/cache/data/", "ckpt_url": "/cache/output/",
    "train_url": "/cache/output/", "config": "",
}


def test_mindcv_mobilenet_config_loads_unchanged_with_its_values():
    config = load_config(MINDCV_YAML)
    assert config.model.name == "mobilenet_v1_100" and config.model.num_classes == 1001
    assert config.scheduler.name == "cosine_decay" and config.scheduler.lr == 0.4
    assert config.scheduler.warmup_epochs == 2 and config.scheduler.decay_epochs == 198
    assert config.scheduler.min_lr == 0.0
    assert config.optimizer.name == "momentum" and config.optimizer.momentum == 0.9
    assert config.optimizer.weight_decay == pytest.approx(3e-5) and not config.optimizer.nesterov
    assert config.loss.name == "CE" and config.loss.label_smoothing == 0.1
    assert config.precision.amp_level == "O2"
    assert config.precision.loss_scale_type == "fixed" and config.precision.loss_scale == 1024
    assert config.system.distributed and config.data.batch_size == 64 and config.run.epochs == 200
    assert config.data.name == "imagenet" and config.augment.scale == (0.08, 1.0) and config.augment.hflip == 0.5


def test_every_mindcv_option_at_its_default_is_accepted():
    config = build_config(MINDCV_DEFAULTS)
    assert config.optimizer.name == "adam" and config.data.num_workers == 8 and not config.run.validate
    assert config.data.mean == pytest.approx((123.675, 116.28, 103.53))
    assert set(MINDCV_DEFAULTS) <= set(VALID_KEYS)


@pytest.mark.parametrize("key, value", [("mixup", 0.2), ("auto_augment", "randaug-m9"), ("drop_path_rate", 0.1),
                                        ("re_prob", 0.25), ("in_channels", 1), ("gradient_accumulation_steps", 4)])
def test_unimplemented_mindcv_options_fail_only_when_set(key, value):
    with pytest.raises(ConfigError, match=f"'{key}: .*does not implement") as info:
        build_config({key: value}, where="cfg.yaml")
    assert repr(UNSUPPORTED[key][0]) in info.value.fix


def test_pretrained_true_asks_for_a_path_and_a_path_becomes_the_initial_checkpoint():
    with pytest.raises(ConfigError, match="download"):
        build_config({"pretrained": True})
    assert build_config({"pretrained": "w.ckpt"}).model.checkpoint == "w.ckpt"
    assert build_config({"dynamic_loss_scale": True}).precision.loss_scale_type == "dynamic"
    assert build_config({"filter_bias_and_bn": True}).optimizer.weight_decay_filter == "norm_and_bias"


def test_unknown_key_lists_the_valid_keys_and_suggests_the_closest(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.1\nwarmup_epoch: 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "unknown config key 'warmup_epoch'" in message and str(path) in message
    assert "did you mean 'warmup_epochs'" in message
    assert all(key in info.value.fix for key in ("label_smoothing", "amp_level", "epoch_size", "activation"))


@pytest.mark.parametrize("values, match", [
    ({"lr": -0.1}, "'lr' is -0.1 but must be > 0"),
    ({"amp_level": "O5"}, "'amp_level' is 'O5'"),
    ({"batch_size": "many"}, "'batch_size' must be int"),
    ({"scale": [0.5]}, "'scale' needs 2 values"),
    ({"image_resize": 16}, "must be in 32..224"),
    ({"opt": "lamb"}, "'opt' is 'lamb'"),
])
def test_bad_values_name_the_key(values, match):
    with pytest.raises(ConfigError, match=match):
        build_config(values)


def test_yaml_then_flags_then_set_pairs(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.1\nbatch_size: 16\nepoch_size: 3\nlabel_smoothing: 0.1\n")
    config = load_config(path, {"lr": 0.2, "batch_size": None}, ["epoch_size=7", "scale=[0.5, 1.0]"])
    assert config.scheduler.lr == 0.2  # flag beats YAML
    assert config.data.batch_size == 16  # a flag left at None does not override
    assert config.run.epochs == 7 and config.augment.scale == (0.5, 1.0)  # --set
    assert config.loss.label_smoothing == 0.1  # from YAML
    with pytest.raises(ConfigError, match="the command line"):
        load_config(path, sets=["lrr=1"])


def test_resolved_config_reloads_to_the_same_config(tmp_path):
    config = load_config(MINDCV_YAML, {"activation": "relu", "ema": True})
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config
    assert set(KEYS) == {line.split(":")[0] for line in path.read_text().splitlines() if line and line[0] != "#"}


def test_shipped_configs():
    configs = {path.stem: load_config(path) for path in shipped_configs()}
    for width, name in ((0.25, "025"), (0.5, "050"), (0.75, "075"), (1.0, "100")):
        config = configs[f"mobilenet_v1_{name}_ascend"]
        assert config.model.name == f"mobilenet_v1_{name}" and config.model.activation == "relu6"
        assert config.system.device_target == "Ascend" and config.system.distributed
        assert config.precision.amp_level == "O2" and config.precision.loss_scale == 1024
        assert config.data.name == "imagenet" and config.model.num_classes == 1001
    digits = configs["mobilenet_v1_025_digits"]
    assert digits.data.image_size == 32 and digits.augment.hflip == 0 and digits.augment.scale[0] >= 0.5
    assert digits.system.device_target == "CPU"


def test_warmup_then_cosine_schedule():
    config = build_config({"lr": 0.4, "warmup_epochs": 2, "decay_epochs": 8, "min_lr": 0.0,
                           "scheduler": "cosine_decay"}).scheduler
    lrs = create_scheduler(config, steps_per_epoch=10, epochs=10)
    assert len(lrs) == 100
    assert lrs[0] == 0.0 and lrs[10] == pytest.approx(0.2) and lrs[19] == pytest.approx(0.4 * 19 / 20)
    assert lrs[20] == pytest.approx(0.4)  # the cosine starts at the peak
    assert lrs[60] == pytest.approx(0.2)  # half-way through the 8 decay epochs
    assert all(a >= b for a, b in zip(lrs[20:], lrs[21:])) and lrs[-1] == pytest.approx(0.4 * (1 + math.cos(
        math.pi * 79 / 80)) / 2)


def test_step_schedules():
    step = build_config({"scheduler": "step_decay", "lr": 1.0, "warmup_epochs": 0, "decay_epochs": 2,
                         "decay_rate": 0.5}).scheduler
    assert create_scheduler(step, 1, 6) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    multi = build_config({"scheduler": "multi_step_decay", "lr": 1.0, "warmup_epochs": 0, "decay_rate": 0.1,
                          "multi_step_decay_milestones": [1, 3]}).scheduler
    assert create_scheduler(multi, 1, 4) == pytest.approx([1.0, 0.1, 0.1, 0.01])
