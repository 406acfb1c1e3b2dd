"""Float64 finite-difference checks of whole-model loss gradients (priority: exact training)."""
from __future__ import annotations

from typing import Callable, List

import numpy as np
import pytest

from rnnkit import backend, layers as L
from rnnkit.models import Sequential


@pytest.fixture(autouse=True)
def float64():
    backend.set_floatx("float64")
    backend.set_random_seed(1)
    yield
    backend.set_floatx("float32")


def _fd_check(model: Sequential, x: np.ndarray, y: np.ndarray, n_probe: int = 6,
              training: bool = False, h: float = 1e-6) -> None:
    """Compare analytic grads with central differences on ``n_probe`` entries per weight."""
    _, grads = model.loss_and_gradients(x, y, training=training)
    rng = np.random.default_rng(0)
    worst = 0.0
    for w, g in zip(model.trainable_weights, grads):
        assert g.shape == w.shape and g.dtype == np.float64
        flat = w.value.reshape(-1)
        for j in rng.choice(flat.size, size=min(n_probe, flat.size), replace=False):
            old = flat[j]
            flat[j] = old + h
            lp, _ = model.loss_and_gradients(x, y, training=training)
            flat[j] = old - h
            lm, _ = model.loss_and_gradients(x, y, training=training)
            flat[j] = old
            num = (lp - lm) / (2 * h)
            scale = max(1e-3, abs(num), np.abs(g).max())
            worst = max(worst, abs(num - g.reshape(-1)[j]) / scale)
            assert abs(num - g.reshape(-1)[j]) <= 1e-6 * scale, (w.name, j, num, g.reshape(-1)[j])
    assert worst < 1e-6


def test_stacked_lstm_gru_dense_softmax() -> None:
    m = Sequential([L.LSTM(6, return_sequences=True, input_shape=(5, 3)),
                    L.GRU(4), L.Dense(3, activation="softmax")])
    m.compile("sgd", "categorical_crossentropy")
    x = np.random.default_rng(2).normal(size=(4, 5, 3))
    y = np.eye(3)[[0, 2, 1, 2]]
    _fd_check(m, x, y)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_bidirectional(merge_mode: str) -> None:
    m = Sequential([L.Bidirectional(L.SimpleRNN(4, return_sequences=True), merge_mode=merge_mode,
                                    input_shape=(6, 2)),
                    L.Dense(2)])
    m.compile("sgd", "mse")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 6, 2))
    y = rng.normal(size=(3, 6, 2))
    _fd_check(m, x, y)


def test_masked_embedding_timedistributed_sparse_ce() -> None:
    m = Sequential([L.Embedding(12, 5, mask_zero=True, input_shape=(7,)),
                    L.Bidirectional(L.LSTM(4, return_sequences=True)),
                    L.TimeDistributed(L.Dense(3, activation="softmax"))])
    m.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(4)
    x = rng.integers(1, 12, size=(4, 7))
    x[0, 5:] = 0
    x[2, :3] = 0  # padding at both ends
    y = rng.integers(0, 3, size=(4, 7))
    _fd_check(m, x, y)


def test_masking_gru_reset_before_backwards_bce_logits() -> None:
    m = Sequential([L.Masking(0.0, input_shape=(6, 3)),
                    L.GRU(5, reset_after=False, go_backwards=True, return_sequences=True),
                    L.Dense(1)])
    m.compile("sgd", __import__("rnnkit").losses.BinaryCrossentropy(from_logits=True))
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 6, 3))
    x[1, 4:] = 0.0
    y = rng.integers(0, 2, size=(3, 6, 1)).astype(float)
    _fd_check(m, x, y)


def test_simple_rnn_relu_mae_and_probability_bce() -> None:
    m = Sequential([L.SimpleRNN(4, activation="relu", input_shape=(4, 2)),
                    L.Dense(2, activation="sigmoid")])
    m.compile("sgd", "binary_crossentropy")
    rng = np.random.default_rng(6)
    x = rng.normal(size=(5, 4, 2))
    y = rng.integers(0, 2, size=(5, 2)).astype(float)
    _fd_check(m, x, y)


def test_fixed_dropout_masks_including_recurrent(monkeypatch: pytest.MonkeyPatch) -> None:
    """dropout / recurrent_dropout gradients (masks frozen so the loss is deterministic)."""
    m = Sequential([L.LSTM(4, dropout=0.3, recurrent_dropout=0.4, return_sequences=True,
                           input_shape=(5, 3)),
                    L.GRU(3, recurrent_dropout=0.5), L.Dropout(0.2), L.Dense(2)])
    m.compile("sgd", "mse")
    masks: dict = {}

    def frozen(self, rate, shape):  # same mask every call for the same layer and shape
        key = (self.name, rate, shape)
        if key not in masks:
            masks[key] = ((np.random.default_rng(len(masks)).random(shape) >= rate) / (1 - rate))
        return masks[key]

    monkeypatch.setattr(L.LSTM, "_keep_mask", frozen)
    monkeypatch.setattr(L.GRU, "_keep_mask", frozen)
    monkeypatch.setattr(m.layers[2], "rate", 0.0)  # plain dropout is checked elsewhere
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(3, 5, 3)), rng.normal(size=(3, 2))
    _fd_check(m, x, y, training=True)
    # and recurrent dropout really changes the result
    l_train, _ = m.loss_and_gradients(x, y, training=True)
    l_infer, _ = m.loss_and_gradients(x, y, training=False)
    assert abs(l_train - l_infer) > 1e-6


def test_ops_and_reference_backends_agree() -> None:
    m = Sequential([L.GRU(5, return_sequences=True, input_shape=(6, 2)), L.LSTM(3), L.Dense(1)])
    m.compile("sgd", "mse")
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(4, 6, 2)), rng.normal(size=(4, 1))
    l1, g1 = m.loss_and_gradients(x, y)
    with backend.use_kernels("reference"):
        l2, g2 = m.loss_and_gradients(x, y)
    assert abs(l1 - l2) < 1e-12
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * max(1.0, np.abs(b).max()))
