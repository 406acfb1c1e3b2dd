"""Keras-style layers (Keras 3 names, arguments, weight order and masks).

Recurrent: ``SimpleRNN``, ``LSTM``, ``GRU``, ``Bidirectional``, ``RNN`` with
``SimpleRNNCell`` / ``LSTMCell`` / ``GRUCell`` (and stacked cells), run by the fused kernels.
Core: ``Input``, ``Dense``, ``Dropout``, ``Masking``, ``Embedding``, ``TimeDistributed``,
``Activation``, ``Lambda``. Reshaping: ``RepeatVector``, ``Flatten``, ``Reshape``,
``Permute``. Merging: ``Concatenate``, ``Add``, ``Subtract``, ``Multiply``, ``Average``,
``Maximum``, ``Minimum``, ``Dot`` and their functional forms. Convolution and pooling:
``Conv1D``, ``MaxPooling1D``, ``AveragePooling1D``, ``GlobalAveragePooling1D``,
``GlobalMaxPooling1D``. Normalization: ``LayerNormalization``, ``BatchNormalization``. Noise:
``SpatialDropout1D``, ``GaussianNoise``, ``GaussianDropout``. Attention: ``Attention``,
``AdditiveAttention``, ``MultiHeadAttention``.

``serialize(layer)`` / ``deserialize(config)`` convert layers to and from
``{"class_name": ..., "config": ...}`` dicts (used by model configs and saving).
"""
from __future__ import annotations

from . import registry
from .attention import AdditiveAttention, Attention, MultiHeadAttention
from .base import Input, InputLayer, Layer, Weight
from .convolutional import Conv1D
from .core import Dense, Dropout, Masking
from .embedding import Embedding
from .merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract,
                      add, average, concatenate, dot, maximum, minimum, multiply, subtract)
from .noise import GaussianDropout, GaussianNoise, SpatialDropout1D
from .normalization import BatchNormalization, LayerNormalization
from .pooling import (AveragePooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D,
                      MaxPooling1D)
from .recurrent import GRU, LSTM, SimpleRNN
from .registry import REGISTRY as _REGISTRY
from .registry import deserialize, serialize
from .reshaping import Activation, Flatten, Lambda, Permute, RepeatVector, Reshape
from .rnn_cell import RNN, GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from .wrappers import Bidirectional, TimeDistributed

__all__ = ["Input", "InputLayer", "Layer", "Weight", "Dense", "Dropout", "Masking", "Embedding",
           "SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
           "RNN", "SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells",
           "RepeatVector", "Flatten", "Reshape", "Permute", "Activation", "Lambda",
           "Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot",
           "concatenate", "add", "subtract", "multiply", "average", "maximum", "minimum", "dot",
           "Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D",
           "GlobalMaxPooling1D", "LayerNormalization", "BatchNormalization",
           "SpatialDropout1D", "GaussianNoise", "GaussianDropout",
           "Attention", "AdditiveAttention", "MultiHeadAttention",
           "serialize", "deserialize"]
