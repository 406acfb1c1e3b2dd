"""RNN(cell) and RNN([cells]) (StackedRNNCells) on the fused layers: Keras 3 references
(tests/fixtures/keras_layers/make_attention.py), float64 finite-difference gradients, masks,
configs, symbolic calls and per-slot caches."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

import rnnkit
from rnnkit import saving
from rnnkit.layers import GRU, LSTM, RNN, GRUCell, Input, LSTMCell, SimpleRNNCell
from rnnkit.layers.node import call_slot

from _cases import numeric_grad

FIX = np.load(Path(__file__).parent / "fixtures" / "keras_layers" / "attention.npz")
X, M = FIX["rnn/x"], FIX["rnn/m"]

CASES: Dict[str, Any] = {
    "lstm": (lambda: LSTMCell(3), dict(return_sequences=True, return_state=True)),
    "gru_back": (lambda: GRUCell(3), dict(return_sequences=True, go_backwards=True)),
    "simple_last": (lambda: SimpleRNNCell(2), dict()),
    "stack": (lambda: [LSTMCell(3), GRUCell(2), SimpleRNNCell(4)],
              dict(return_sequences=True, return_state=True)),
    "stack_back_zero": (lambda: [GRUCell(3, reset_after=False), LSTMCell(2)],
                        dict(return_sequences=True, go_backwards=True,
                             zero_output_for_mask=True)),
    "stack_last_state": (lambda: [SimpleRNNCell(3), LSTMCell(2)], dict(return_state=True)),
}


def _layer(name: str, dtype: str = "float32") -> RNN:
    make, kw = CASES[name]
    layer = RNN(make(), dtype=dtype, **kw)
    layer(X[:1].astype(dtype))
    n = len(FIX[f"rnn/{name}/wnames"])
    layer.set_weights([FIX[f"rnn/{name}/w{i}"] for i in range(n)])
    return layer


@pytest.mark.parametrize("name", sorted(CASES))
def test_rnn_cell_matches_keras(name: str) -> None:
    layer = _layer(name)
    keras_names = [str(n).rsplit("/", 1)[-1] for n in FIX[f"rnn/{name}/wnames"]]
    assert [w.name for w in layer.weights] == keras_names
    out = layer(X, mask=M)
    out = out if isinstance(out, list) else [out]
    assert len(out) == len([k for k in FIX.files if k.startswith(f"rnn/{name}/out")])
    for i, o in enumerate(out):
        np.testing.assert_allclose(o, FIX[f"rnn/{name}/out{i}"], rtol=1e-5, atol=1e-6)


def test_stacked_initial_state_matches_keras() -> None:
    layer = _layer("stack")
    states = [FIX[f"rnn/stack/s{i}"] for i in range(4)]
    out = layer(X, initial_state=states)
    for i, o in enumerate(out):
        np.testing.assert_allclose(o, FIX[f"rnn/stack/init_out{i}"], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="4 tensor"):
        layer(X, initial_state=states[:3])


def test_single_cell_is_the_fused_layer() -> None:
    layer = _layer("lstm")
    assert len(layer.layers) == 1 and isinstance(layer.layers[0], LSTM)
    fused = LSTM(3, return_sequences=True, return_state=True)
    fused(X[:1])
    fused.set_weights(layer.get_weights())
    for a, b in zip(layer(X, mask=M), fused(X, mask=M)):
        np.testing.assert_array_equal(a, b)
    stack = _layer("stack")
    assert [type(x) for x in stack.layers][:2] == [LSTM, GRU]
    assert stack.cell.cells[0].weights == stack.layers[0].weights


@pytest.mark.parametrize("name", ["stack", "stack_back_zero", "stack_last_state", "gru_back"])
def test_rnn_cell_gradients_fd(name: str) -> None:
    layer = _layer(name, "float64")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 4))
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    n_states = sum(layer._state_counts)
    states = [rng.standard_normal((2, u)) for u in
              [lay.units for lay in layer.layers for _ in range(lay._n_states)]]
    inputs = [x] + states
    out = layer.forward(inputs, mask=[mask] + [None] * n_states)
    outs = out if isinstance(out, list) else [out]
    probes = [rng.standard_normal(o.shape) for o in outs]

    def loss() -> float:
        r = layer.forward(inputs, mask=[mask] + [None] * n_states)
        r = r if isinstance(r, list) else [r]
        return float(sum((a * p).sum() for a, p in zip(r, probes)))

    layer.forward(inputs, mask=[mask] + [None] * n_states, need_grad=True)
    grads = layer.backward(probes if layer.return_state else probes[0])
    assert len(grads) == len(inputs)
    for a, g in zip(inputs, grads):
        np.testing.assert_allclose(g, numeric_grad(loss, a), rtol=1e-5, atol=1e-7)
    for w in layer.weights:
        np.testing.assert_allclose(w.grad, numeric_grad(loss, w.value), rtol=1e-5, atol=1e-7)


def test_rnn_masks_shapes_symbolic() -> None:
    layer = RNN([LSTMCell(3), GRUCell(2)], return_sequences=True, return_state=True)
    y = layer(Input((5, 4)))
    assert [t.shape for t in y] == [(None, 5, 2), (None, 3), (None, 3), (None, 2)]
    masks = layer.compute_mask(X, M)
    np.testing.assert_array_equal(masks[0], M)
    assert masks[1:] == [None, None, None]
    assert RNN(LSTMCell(3)).compute_mask(X, M) is None
    y = RNN(SimpleRNNCell(3))(Input((None, 4)))
    assert y.shape == (None, 3)
    with pytest.raises(ValueError, match=r"rnn.*\(None, 4\)"):
        RNN(LSTMCell(3))(Input((4,)))
    shared = RNN(GRUCell(2))
    shared(Input((5, 4)))
    with pytest.raises(ValueError, match=r"\(None, 5, 6\)"):
        shared(Input((5, 6)))
    with pytest.raises(ValueError, match="cell"):
        RNN("lstm")
    with pytest.raises(ValueError, match="LSTMCell.*units"):
        LSTMCell(0)
    with pytest.raises(TypeError, match="RNN"):
        LSTMCell(3).forward(X)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rnn_dtypes(dtype: str) -> None:
    layer = _layer("stack", dtype)
    out = layer(X.astype(dtype), mask=M)
    assert all(o.dtype == dtype for o in out)
    assert all(w.value.dtype == dtype for w in layer.weights)


def test_rnn_config_round_trip() -> None:
    layer = RNN([LSTMCell(3, unit_forget_bias=False, recurrent_activation="hard_sigmoid",
                          name="c1"),
                 GRUCell(2, reset_after=False, dropout=0.1, seed=4), SimpleRNNCell(4, "relu")],
                return_sequences=True, go_backwards=True, name="stacked")
    cfg = layer.get_config()
    assert cfg["cell"]["class_name"] == "StackedRNNCells"
    cells = cfg["cell"]["config"]["cells"]
    assert [c["class_name"] for c in cells] == ["LSTMCell", "GRUCell", "SimpleRNNCell"]
    assert cells[0]["config"]["unit_forget_bias"] is False
    assert cells[0]["config"]["name"] == "c1"
    assert "recurrent_activation" not in cells[2]["config"]
    again = RNN.from_config(cfg)
    assert again.get_config() == cfg
    ser = rnnkit.layers.serialize(layer)
    saving._validate_layer(ser, "where", [0])
    back = rnnkit.layers.deserialize(ser)
    back(X[:1])
    layer(X[:1])
    back.set_weights(layer.get_weights())
    np.testing.assert_array_equal(back(X, mask=M), layer(X, mask=M))
    single = RNN(LSTMCell(3), return_state=True)
    scfg = rnnkit.layers.serialize(single)
    saving._validate_layer(scfg, "where", [0])
    assert scfg["config"]["cell"]["class_name"] == "LSTMCell"
    bad = {"class_name": "RNN", "config": {**cfg, "cell": {
        "class_name": "StackedRNNCells", "config": {"cells": [
            {"class_name": "LSTMCell", "config": {"units": -3}}]}}}}
    with pytest.raises(ValueError, match="units"):
        saving._validate_layer(bad, "where", [0])
    bad = {"class_name": "RNN", "config": {**cfg, "return_state": "yes"}}
    with pytest.raises(ValueError, match="return_state"):
        saving._validate_layer(bad, "where", [0])


def test_rnn_stateful() -> None:
    layer = RNN([LSTMCell(3), GRUCell(2)], stateful=True)
    a = layer(X)
    assert len(layer.states) == 3
    b = layer(X)
    assert not np.allclose(a, b)
    layer.reset_state()
    np.testing.assert_allclose(layer(X), a, rtol=1e-6)


def test_rnn_shared_call_slots() -> None:
    layer = _layer("stack_last_state", "float64")
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((2, 4, 4)) for _ in range(2)]
    ps = [[rng.standard_normal(s) for s in [(2, 2), (2, 3), (2, 2), (2, 2)]] for _ in range(2)]
    expected = []
    for x, p in zip(xs, ps):
        layer.forward(x, need_grad=True)
        expected.append((layer.backward(p), layer.weights[0].grad.copy()))
    for slot, x in enumerate(xs):
        with call_slot(slot):
            layer.forward(x, need_grad=True)
    for slot in (1, 0):
        with call_slot(slot):
            got = layer.backward(ps[slot])
        np.testing.assert_allclose(got, expected[slot][0])
        np.testing.assert_allclose(layer.weights[0].grad, expected[slot][1])
    assert not np.allclose(expected[0][1], expected[1][1])
