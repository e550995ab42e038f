"""MindSpore training: config (mindcv keys), optimizer / scheduler / loss factories, EMA,
checkpoints that survive `kill -9`, and data-parallel runs under msrun."""

from toolkit.train.config import TrainConfig, build_config, dump_config, load_config, save_config
from toolkit.train.trainer import Trainer, TrainResult, train, train_from_config

__all__ = ["TrainConfig", "TrainResult", "Trainer", "build_config", "dump_config", "load_config", "save_config",
           "train", "train_from_config"]
