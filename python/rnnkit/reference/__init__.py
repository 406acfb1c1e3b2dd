"""Plain-NumPy reference implementations of the rnnkit kernels (the test oracle).

Same signatures as ``rnnkit.ops``; swapping one module for the other is a one-line change.
Written for clarity, not speed: a Python loop over time, vectorised over the batch.
"""
from .gru import GRUCache, gru_backward, gru_forward
from .lstm import LSTMCache, lstm_backward, lstm_forward
from .lstmp import LSTMPCache, lstmp_backward, lstmp_forward
from .simple_rnn import SimpleRNNCache, simple_rnn_backward, simple_rnn_forward

__all__ = [
    "simple_rnn_forward",
    "simple_rnn_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "lstmp_forward",
    "lstmp_backward",
    "SimpleRNNCache",
    "LSTMCache",
    "GRUCache",
    "LSTMPCache",
]
