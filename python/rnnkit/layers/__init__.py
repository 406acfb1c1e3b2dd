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

__all__ = ["Input", "InputLayer", "Layer", "Weight", "Dense", "Dropout", "Masking", "Embedding",
           "SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
           "serialize", "deserialize"]
from .attention import AdditiveAttention, Attention, MultiHeadAttention  # noqa: E402

__all__ += ["Attention", "AdditiveAttention", "MultiHeadAttention"]
from .rnn_cell import RNN, GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells  # noqa: E402

__all__ += ["RNN", "SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells"]
