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
from . import registry
from .registry import REGISTRY as _REGISTRY
from .registry import deserialize, serialize
from .wrappers import Bidirectional, TimeDistributed
from .convolutional import Conv1D
from .pooling import AveragePooling1D
from .pooling import GlobalAveragePooling1D
from .pooling import GlobalMaxPooling1D
from .pooling import MaxPooling1D
from .normalization import BatchNormalization
from .normalization import LayerNormalization
from .noise import GaussianDropout
from .noise import GaussianNoise
from .noise import SpatialDropout1D

__all__ = ["Input", "InputLayer", "Layer", "Weight", "Dense", "Dropout", "Masking", "Embedding",
           "SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
           "serialize", "deserialize"]
__all__ += ["Conv1D"]
__all__ += ["MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D"]
__all__ += ["LayerNormalization", "BatchNormalization"]
__all__ += ["SpatialDropout1D", "GaussianNoise", "GaussianDropout"]
from .attention import AdditiveAttention, Attention, MultiHeadAttention  # noqa: E402

__all__ += ["Attention", "AdditiveAttention", "MultiHeadAttention"]
from .rnn_cell import RNN, GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells  # noqa: E402

__all__ += ["RNN", "SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells"]
