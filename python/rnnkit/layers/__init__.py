"""Keras-style layers: ``Input``, ``SimpleRNN``, ``LSTM``, ``GRU``, ``Dense``, ``Dropout``,
``Bidirectional``, ``Embedding``, ``Masking``, ``TimeDistributed``.

``serialize(layer)`` / ``deserialize(config)`` convert layers to and from
``{"class_name": ..., "config": ...}`` dicts (used by model configs and saving).
"""
from __future__ import annotations

from .base import Input, InputLayer, Layer, Weight
from .core import Dense, Dropout, Masking
from .embedding import Embedding
from .recurrent import GRU, LSTM, SimpleRNN
from .registry import REGISTRY as _REGISTRY
from .registry import deserialize, serialize
from .wrappers import Bidirectional, TimeDistributed
from .reshaping import Activation, Flatten, Lambda, Permute, RepeatVector, Reshape
from .merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract,
                      add, average, concatenate, dot, maximum, minimum, multiply, subtract)

__all__ = ["Input", "InputLayer", "Layer", "Weight", "Dense", "Dropout", "Masking", "Embedding",
           "SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
           "serialize", "deserialize"]
__all__ += ["RepeatVector", "Flatten", "Reshape", "Permute", "Activation", "Lambda"]
__all__ += ["Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot",
            "concatenate", "add", "subtract", "multiply", "average", "maximum", "minimum", "dot"]
