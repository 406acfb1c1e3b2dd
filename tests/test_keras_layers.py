"""Layer semantics: masks, Bidirectional, return_state, go_backwards, stateful, initial_state,
dropout, Embedding, TimeDistributed, Keras weight layouts and clear errors."""
from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from rnnkit import backend, layers as L, ops, reference
from rnnkit.models import Sequential


@pytest.fixture(autouse=True)
def float64():
    backend.set_floatx("float64")
    backend.set_random_seed(3)
    yield
    backend.set_floatx("float32")


RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 5, 2))


def test_weight_layouts_and_initializers() -> None:
    lstm, gru, gru0, srnn = L.LSTM(4), L.GRU(4), L.GRU(4, reset_after=False), L.SimpleRNN(4)
    for layer in (lstm, gru, gru0, srnn):
        layer(X)
    assert [w.shape for w in lstm.weights] == [(2, 16), (4, 16), (16,)]
    assert [w.shape for w in gru.weights] == [(2, 12), (4, 12), (2, 12)]
    assert [w.shape for w in gru0.weights] == [(2, 12), (4, 12), (12,)]
    np.testing.assert_array_equal(lstm.bias.value, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    r = lstm.recurrent_kernel.value  # orthogonal over the whole (H, 4H) matrix
    np.testing.assert_allclose(r @ r.T, np.eye(4), atol=1e-12)
    limit = np.sqrt(6 / (2 + 16))
    assert np.abs(lstm.kernel.value).max() <= limit
    assert lstm.count_params() == 4 * 4 * (2 + 4) + 16


def test_layer_matches_functional_kernel_and_backends() -> None:
    layer = L.GRU(3, return_sequences=True, go_backwards=True)
    mask = np.ones((3, 5), bool)
    mask[1, 3:] = False
    y = layer(X, mask=mask)
    k, r, b = layer.get_weights()
    y_ref, _, _ = reference.gru_forward(X, k, r, b, mask=mask, go_backwards=True, training=False)
    np.testing.assert_allclose(y, y_ref, atol=1e-12)
    with backend.use_kernels("reference"):
        np.testing.assert_allclose(layer(X, mask=mask), y, atol=1e-12)
    assert backend.kernels() is ops


def test_return_state_initial_state_and_state_grads() -> None:
    lstm = L.LSTM(4, return_state=True, return_sequences=True)
    y, h, c = lstm(X)
    assert y.shape == (3, 5, 4) and h.shape == c.shape == (3, 4)
    np.testing.assert_allclose(y[:, -1], h)
    h0, c0 = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    y2, h2, c2 = lstm.forward(X, initial_state=[h0, c0], need_grad=True)
    assert not np.allclose(h2, h)
    dx = lstm.backward([np.ones_like(y2), np.zeros_like(h2), np.zeros_like(c2)])
    assert dx.shape == X.shape and lstm.initial_state_grads[0].shape == (3, 4)
    with pytest.raises(ValueError, match="initial_state"):
        lstm(X, initial_state=[h0])
    with pytest.raises(ValueError, match="return_state"):
        Sequential([L.GRU(2, return_state=True, input_shape=(5, 2))])


def test_stateful_and_reset_state() -> None:
    layer = L.SimpleRNN(3, stateful=True)
    full = L.SimpleRNN(3)
    full(X)
    layer(X[:, :2])
    layer.set_weights(full.get_weights())
    layer.reset_state()
    layer(X[:, :2])
    h = layer(X[:, 2:])  # continues from the carried state
    np.testing.assert_allclose(h, full(X), atol=1e-12)
    layer.reset_state()
    np.testing.assert_allclose(layer.states[0], 0)
    with pytest.raises(ValueError, match="batch size"):
        layer(X[:2])
    with pytest.raises(AttributeError):
        full.reset_state()


def test_bidirectional_merge_modes_and_masks() -> None:
    x = RNG.normal(size=(2, 4, 3))
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    bi = L.Bidirectional(L.LSTM(2, return_sequences=True), merge_mode="concat")
    y = bi(x, mask=mask)
    fw, bw = bi.forward_layer, bi.backward_layer
    assert fw.name.startswith("forward_") and bw.name.startswith("backward_") and bw.go_backwards
    yf = fw(x, mask=mask)
    yb = bw(x, mask=mask)[:, ::-1]
    np.testing.assert_allclose(y, np.concatenate([yf, yb], -1))
    assert np.all(y[~mask] == 0)  # masked steps output zeros (zero_output_for_mask)
    assert len(bi.get_weights()) == 6
    for mode, f in (("sum", np.add), ("mul", np.multiply), ("ave", lambda a, b: (a + b) / 2)):
        b2 = L.Bidirectional(L.SimpleRNN(2), merge_mode=mode)
        out = b2(x)
        np.testing.assert_allclose(out, f(b2.forward_layer(x), b2.backward_layer(x)))
    with pytest.raises(ValueError, match="merge_mode"):
        L.Bidirectional(L.GRU(2), merge_mode="max")


def test_masking_embedding_timedistributed_propagation() -> None:
    m = Sequential([L.Embedding(10, 4, mask_zero=True, input_shape=(5,)),
                    L.LSTM(3, return_sequences=True), L.TimeDistributed(L.Dense(2))])
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0]])
    y, mask = m._chain_forward(ids, None, False, False)
    np.testing.assert_array_equal(mask, ids != 0)
    assert y.shape == (2, 5, 2)
    # padded steps repeat the last kept output, like Keras (zeros only inside Bidirectional)
    np.testing.assert_allclose(y[0, 3], y[0, 2])
    x = RNG.normal(size=(2, 4, 3))
    x[0, 2:] = 0
    mk = L.Masking(0.0)
    assert np.array_equal(mk.compute_mask(x, None), [[1, 1, 0, 0], [1, 1, 1, 1]])
    with pytest.raises(ValueError, match=r"ids must be in \[0, 10\)"):
        m.predict(np.array([[1, 11, 0, 0, 0]]), verbose=0)


def test_dropout_training_only() -> None:
    d = L.Dropout(0.5, seed=1)
    x = np.ones((200, 10))
    np.testing.assert_array_equal(d(x), x)
    y = d(x, training=True)
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.3 < (y == 0).mean() < 0.7
    rnn = L.GRU(4, dropout=0.5, recurrent_dropout=0.5, seed=2)
    a = rnn(X)
    np.testing.assert_allclose(rnn(X), a)  # inference is deterministic
    assert not np.allclose(rnn(X, training=True), a)


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="units"):
        L.LSTM(0)
    with pytest.raises(ValueError, match="LSTM: `activation`"):
        L.LSTM(3, activation="softmax")
    with pytest.raises(ValueError, match="GRU: `recurrent_activation`"):
        L.GRU(3, recurrent_activation="swishy")
    with pytest.raises(ValueError, match="dropout"):
        L.GRU(3, dropout=1.5)
    with pytest.raises(ValueError, match="Unknown activation"):
        L.Dense(3, activation="swishy")
    with pytest.raises(ValueError, match="features"):
        g = L.GRU(2)
        g(X)
        g(RNG.normal(size=(3, 5, 4)))
    with pytest.raises(TypeError, match="unrecognized"):
        L.Dense(3, kernel_size=3)


def test_float32_default_and_float64_on_request() -> None:
    backend.set_floatx("float32")
    m = Sequential([L.LSTM(3, input_shape=(5, 2)), L.Dense(1)])
    assert all(w.dtype == np.float32 for w in m.weights)
    assert m.predict(X, verbose=0).dtype == np.float32
    m64 = Sequential([L.LSTM(3, input_shape=(5, 2), dtype="float64"), L.Dense(1, dtype="float64")])
    assert m64.predict(X, verbose=0).dtype == np.float64
    assert rnnkit.layers.Dense is L.Dense and rnnkit.Sequential is Sequential
