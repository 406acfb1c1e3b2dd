"""The functional architectures of issue 8, written once for both Keras and rnnkit.

Each builder takes the API module (``keras`` or ``rnnkit``: both have ``Input``,
``layers.<Layer>`` and ``Model``) and returns ``(model, inputs, target)``, where ``inputs``
and ``target`` are fixed float32 arrays drawn from a seeded generator. The recording script
(``fixtures/keras_architectures/make_architectures.py``, run in a throwaway Keras venv, never
in CI) builds them with Keras; ``test_keras_architectures.py`` builds them with rnnkit, copies
the recorded weights in with ``set_weights`` and compares. Nothing here imports Keras.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

import numpy as np

Built = Tuple[Any, List[np.ndarray], np.ndarray]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _onehot(ids: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[ids]


def encoder_decoder_gru(K: Any) -> Built:
    """GRU encoder's final state starts a GRU decoder (return_state -> initial_state)."""
    enc_in, dec_in = K.Input((6, 4), name="enc_in"), K.Input((5, 3), name="dec_in")
    _, h = K.layers.GRU(8, return_state=True, name="encoder")(enc_in)
    seq = K.layers.GRU(8, return_sequences=True, name="decoder")(dec_in, initial_state=[h])
    out = K.layers.Dense(3, activation="softmax", name="probs")(seq)
    r = _rng(1)
    x = [_f32(r.normal(size=(4, 6, 4))), _f32(r.normal(size=(4, 5, 3)))]
    y = _onehot(r.integers(0, 3, size=(4, 5)), 3)
    return K.Model([enc_in, dec_in], out), x, y


def seq2seq_lstm_attention(K: Any) -> Built:
    """LSTM encoder-decoder with Luong (dot-product) attention over the encoder outputs."""
    enc_in, dec_in = K.Input((7, 4), name="enc_in"), K.Input((5, 4), name="dec_in")
    enc_seq, h, c = K.layers.LSTM(8, return_sequences=True, return_state=True,
                                  name="encoder")(enc_in)
    dec_seq = K.layers.LSTM(8, return_sequences=True, name="decoder")(dec_in,
                                                                      initial_state=[h, c])
    context = K.layers.Attention(name="attention")([dec_seq, enc_seq])
    merged = K.layers.Concatenate(name="concat")([dec_seq, context])
    out = K.layers.Dense(4, activation="softmax", name="probs")(merged)
    r = _rng(2)
    x = [_f32(r.normal(size=(4, 7, 4))), _f32(r.normal(size=(4, 5, 4)))]
    y = _onehot(r.integers(0, 4, size=(4, 5)), 4)
    return K.Model([enc_in, dec_in], out), x, y


def two_inputs(K: Any) -> Built:
    """A sequence (LSTM) and static features (Dense) concatenated into one regression head."""
    seq_in, static_in = K.Input((7, 3), name="sequence"), K.Input((4,), name="static")
    a = K.layers.LSTM(6, name="lstm")(seq_in)
    b = K.layers.Dense(5, activation="relu", name="static_dense")(static_in)
    out = K.layers.Dense(1, name="head")(K.layers.Concatenate(name="concat")([a, b]))
    r = _rng(3)
    x = [_f32(r.normal(size=(5, 7, 3))), _f32(r.normal(size=(5, 4)))]
    return K.Model([seq_in, static_in], out), x, _f32(r.normal(size=(5, 1)))


def conv_pool_lstm(K: Any) -> Built:
    """Conv1D -> MaxPooling1D -> LSTM -> softmax classifier."""
    x_in = K.Input((12, 3), name="signal")
    h = K.layers.Conv1D(8, 3, activation="relu", padding="same", name="conv")(x_in)
    h = K.layers.MaxPooling1D(2, name="pool")(h)
    h = K.layers.LSTM(6, name="lstm")(h)
    out = K.layers.Dense(3, activation="softmax", name="probs")(h)
    r = _rng(4)
    x = [_f32(r.normal(size=(5, 12, 3)))]
    return K.Model(x_in, out), x, _onehot(r.integers(0, 3, size=5), 3)


def lstm_autoencoder(K: Any) -> Built:
    """LSTM encoder -> RepeatVector -> LSTM decoder -> TimeDistributed(Dense)."""
    x_in = K.Input((6, 2), name="series")
    code = K.layers.LSTM(5, name="encoder")(x_in)
    h = K.layers.RepeatVector(6, name="repeat")(code)
    h = K.layers.LSTM(5, return_sequences=True, name="decoder")(h)
    out = K.layers.TimeDistributed(K.layers.Dense(2), name="reconstruction")(h)
    r = _rng(5)
    x = [_f32(r.normal(size=(4, 6, 2)))]
    return K.Model(x_in, out), x, x[0]


#: name -> (builder, loss) for every architecture the tests and the recording share.
ARCHITECTURES: Dict[str, Tuple[Callable[[Any], Built], str]] = {
    "encoder_decoder_gru": (encoder_decoder_gru, "categorical_crossentropy"),
    "seq2seq_lstm_attention": (seq2seq_lstm_attention, "categorical_crossentropy"),
    "two_inputs": (two_inputs, "mse"),
    "conv_pool_lstm": (conv_pool_lstm, "categorical_crossentropy"),
    "lstm_autoencoder": (lstm_autoencoder, "mse"),
}
#: The recorded training: plain SGD at this rate, full batch, this many steps.
TRAIN_LR = 0.1
TRAIN_STEPS = 3
