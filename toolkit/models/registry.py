"""Model registry: `register_model`, `list_models`, `create_model`, as in timm and mindcv."""

from __future__ import annotations

from typing import Callable

from toolkit.errors import ConfigError

_MODELS: dict[str, Callable] = {}


def register_model(fn: Callable) -> Callable:
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, **kwargs):
    """Build the registered model `name`; keyword arguments go to its builder."""
    if name not in _MODELS:
        raise ConfigError(f"unknown model '{name}'", f"choose one of: {', '.join(list_models())}")
    return _MODELS[name](**kwargs)
