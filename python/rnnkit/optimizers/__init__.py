"""Optimizers (Keras 3 formulas, defaults and configs) and learning-rate schedules.

Shared machinery (clipping, weight decay, EMA, gradient accumulation, state, configs) is in
:mod:`.base`; one module per optimizer family; :mod:`.schedules` holds the schedules.
"""
from __future__ import annotations

from typing import Any, Dict, Union

from . import schedules
from .adadelta import Adadelta
from .adam_family import Adamax, AdamW, Nadam
from .base import Optimizer
from .classic import SGD, Adagrad, Adam, RMSprop
from .ftrl import Ftrl
from .lion import Lion

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Nadam", "Adamax", "RMSprop", "Adagrad",
           "Adadelta", "Ftrl", "Lion", "schedules", "get", "serialize", "deserialize"]

_CLASSES = {c.__name__: c for c in (SGD, Adam, AdamW, Nadam, Adamax, RMSprop, Adagrad,
                                    Adadelta, Ftrl, Lion)}
_BY_NAME = {name.lower(): c for name, c in _CLASSES.items()}


def deserialize(config: Dict[str, Any]) -> Optimizer:
    """Rebuild an optimizer from ``{"class_name", "config"}`` (class name case-insensitive,
    as Keras)."""
    name = config.get("class_name") if isinstance(config, dict) else None
    if not isinstance(name, str) or name.lower() not in _BY_NAME:
        raise ValueError(f"Unknown optimizer: {name!r}; expected one of {sorted(_CLASSES)}")
    cfg = config.get("config", {})
    if not isinstance(cfg, dict):
        raise ValueError(f"optimizer config must be a dict, got {cfg!r}")
    return _BY_NAME[name.lower()].from_config(cfg)


def get(identifier: Union[str, Optimizer, Dict[str, Any]]) -> Optimizer:
    """Resolve a name (``"sgd"``, ``"adamw"``, ...), a config dict or an Optimizer."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    if isinstance(identifier, dict) and isinstance(identifier.get("class_name"), str):
        return deserialize(identifier)
    raise ValueError(f"Unknown optimizer: {identifier!r}; expected an Optimizer or one of "
                     f"{sorted(_BY_NAME)}")


def serialize(opt: Optimizer) -> Dict[str, Any]:
    """``{"class_name", "config"}`` for configs."""
    return {"class_name": type(opt).__name__, "config": opt.get_config()}
