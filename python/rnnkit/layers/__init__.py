"""Keras-style layers: ``Input``, ``SimpleRNN``, ``LSTM``, ``GRU``, ``Dense``, ``Dropout``,
``Bidirectional``, ``Embedding``, ``Masking``, ``TimeDistributed``.

``serialize(layer)`` / ``deserialize(config)`` convert layers to and from
``{"class_name": ..., "config": ...}`` dicts (used by model configs and saving).
"""
from __future__ import annotations

from typing import Any, Dict

from .base import Input, InputLayer, Layer, Weight
from .core import Dense, Dropout, Masking
from .embedding import Embedding
from .recurrent import GRU, LSTM, SimpleRNN
from .wrappers import Bidirectional, TimeDistributed

__all__ = ["Input", "InputLayer", "Layer", "Weight", "Dense", "Dropout", "Masking", "Embedding",
           "SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
           "serialize", "deserialize"]

_REGISTRY = {c.__name__: c for c in (InputLayer, Dense, Dropout, Masking, Embedding, SimpleRNN,
                                     LSTM, GRU, Bidirectional, TimeDistributed)}


def serialize(layer: Layer) -> Dict[str, Any]:
    """``{"class_name": type name, "config": layer.get_config()}``."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config: Dict[str, Any]) -> Layer:
    """Rebuild a layer from :func:`serialize` output; unknown classes raise ValueError."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"layer config must be a dict with 'class_name', got {config!r}")
    cls = _REGISTRY.get(config["class_name"])
    if cls is None:
        raise ValueError(f"Unknown layer class {config['class_name']!r}; known: {sorted(_REGISTRY)}")
    return cls.from_config(dict(config.get("config", {})))
