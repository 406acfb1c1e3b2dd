"""The activation table of the NumPy reference (``activation=`` / ``recurrent_activation=``).

* each entry's f(x) against the formula written out with ``math``, its derivative against
  central differences, and TensorFlow's derivative convention at the kinks;
* a float64 central-difference check of every gradient for every cell x activation (as
  ``activation``) and LSTM/GRU x activation (as ``recurrent_activation``), plain and with a
  mask + go_backwards; pre-activations are kept clear of the kinks;
* one explicit step of LSTM/GRU with non-default activations (which gate gets which);
* None == "linear", the rejection messages, the cell facts of ``rnnkit.cells``;
* the layers: relu/hard_sigmoid LSTM/GRU/SimpleRNN train and round-trip through save/load.
"""
from __future__ import annotations

import math
from typing import Any, Dict

import numpy as np
import pytest

import rnnkit
from _cases import backward, forward, loss, make_problem, numeric_grad
from rnnkit import cells, reference
from rnnkit.reference import _activations

ACTS = list(cells.ACTIVATIONS)
SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


# Scalar formulas, written independently of the table.
SCALAR = {
    "tanh": math.tanh,
    "sigmoid": _sig,
    "hard_sigmoid": lambda x: min(max(x + 3, 0.0), 6.0) / 6,
    "hard_sigmoid_keras2": lambda x: min(max(0.2 * x + 0.5, 0.0), 1.0),
    "relu": lambda x: max(x, 0.0),
    "relu6": lambda x: min(max(x, 0.0), 6.0),
    "elu": lambda x: x if x > 0 else math.expm1(x),
    "selu": lambda x: SELU_SCALE * (x if x > 0 else SELU_ALPHA * math.expm1(x)),
    "softsign": lambda x: x / (1 + abs(x)),
    "softplus": lambda x: math.log1p(math.exp(-abs(x))) + max(x, 0.0),
    "linear": lambda x: x,
    "silu": lambda x: x * _sig(x),
    "gelu": lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2))),
}
# Points where the derivative jumps (central differences must keep away from them).
KINKS = {
    "relu": (0.0,), "relu6": (0.0, 6.0), "hard_sigmoid": (-3.0, 3.0),
    "hard_sigmoid_keras2": (-2.5, 2.5), "selu": (0.0,), "elu": (0.0,),
}
# TensorFlow's derivative at the kinks.
AT_KINKS = {
    "relu": {0.0: 0.0}, "relu6": {0.0: 0.0, 6.0: 0.0},
    "hard_sigmoid": {-3.0: 0.0, 3.0: 0.0}, "hard_sigmoid_keras2": {-2.5: 0.0, 2.5: 0.0},
    "elu": {0.0: 1.0}, "selu": {0.0: SELU_SCALE * SELU_ALPHA},
}
GRID = np.concatenate([np.linspace(-8, 8, 161) + 0.0123, [-40.0, -1e-3, 1e-3, 40.0]])


def test_table_is_the_cell_activation_list():
    assert tuple(_activations.TABLE) == cells.ACTIVATIONS
    assert len(set(cells.ACTIVATIONS)) == 13


@pytest.mark.parametrize("name", ACTS)
def test_forward_matches_formula(name):
    f = _activations.get(name).forward
    got = f(GRID.copy())
    want = np.array([SCALAR[name](float(v)) for v in GRID])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)
    g32 = f(GRID.astype(np.float32))
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, want, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("name", ACTS)
def test_derivative_matches_central_differences(name):
    a = _activations.get(name)
    x = GRID[np.all([np.abs(GRID - k) > 1e-3 for k in KINKS.get(name, ())], axis=0)] \
        if name in KINKS else GRID
    eps = 1e-6
    num = (a.forward(x + eps) - a.forward(x - eps)) / (2 * eps)
    d = a.derivative(x, a.forward(x))
    np.testing.assert_allclose(d, num, rtol=1e-6, atol=1e-8)
    d32 = a.derivative(x.astype(np.float32), a.forward(x.astype(np.float32)))
    assert d32.dtype == np.float32


@pytest.mark.parametrize("name", sorted(AT_KINKS))
def test_derivative_convention_at_kinks(name):
    a = _activations.get(name)
    for x0, want in AT_KINKS[name].items():
        x = np.array([x0])
        assert a.derivative(x, a.forward(x))[0] == pytest.approx(want, rel=1e-15), x0


def test_keras3_constants():
    sel = _activations.get("selu").forward
    assert sel(np.array([1.0]))[0] == SELU_SCALE
    assert sel(np.array([-1e9]))[0] == pytest.approx(-SELU_SCALE * SELU_ALPHA, rel=1e-15)
    hs = _activations.get("hard_sigmoid").forward(np.array([-3.0, 0.0, 1.5, 3.0]))
    np.testing.assert_array_equal(hs, [0.0, 0.5, 0.75, 1.0])
    k2 = _activations.get("hard_sigmoid_keras2").forward(np.array([-2.5, 0.0, 1.0, 2.5]))
    np.testing.assert_allclose(k2, [0.0, 0.5, 0.7, 1.0], rtol=1e-15)
    # gelu is the exact erf form (Keras 3 default approximate=False), not the tanh one.
    g = _activations.get("gelu").forward(np.array([1.0]))[0]
    assert g == pytest.approx(0.8413447460685429, rel=1e-15)
    # softplus is stable far out.
    sp = _activations.get("softplus").forward(np.array([-800.0, 800.0]))
    assert sp[0] == 0.0 and sp[1] == 800.0


# ------------------------------------------------------------------ gradient checks of cells
EPS = 1e-6
RTOL = 2e-6
SHAPE = dict(batch=3, time=3, features=3, units=4)
MASK = np.array([[False, True, False], [False, False, False], [True, False, True]])
# (id, cell, options) -- every cell and GRU bias layout.
CELL_CASES = [
    ("simple_rnn", "simple_rnn", {}),
    ("lstm", "lstm", {}),
    ("gru_reset_after", "gru", {"reset_after": True}),
    ("gru_reset_before", "gru", {"reset_after": False}),
]
GATED = [c for c in CELL_CASES if c[1] != "simple_rnn"]


def _inputs_by_activation(cell: str, cache, acts: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """{activation name: every value fed to it} for the forward that made ``cache``."""
    spec = cells.get(cell)
    act = acts.get("activation", spec.activation)
    ract = acts.get("recurrent_activation", spec.recurrent_activation)
    hu = cache.shape[2]
    out: Dict[str, list] = {}
    for k, letter in enumerate(spec.gate_order):
        # the candidate block ("h" of SimpleRNN/GRU, "c" of LSTM) takes `activation`
        name = act if letter in ("h", "c") else ract
        out.setdefault(name, []).append(cache.pre[..., k * hu:(k + 1) * hu].ravel())
    if hasattr(cache, "c_new"):
        out.setdefault(act, []).append(cache.c_new.ravel())
    return {n: np.concatenate(v) for n, v in out.items()}


def _clear_of_kinks(cell, p, kw, acts) -> bool:
    _, cache = forward(reference, cell, p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                       h0=p["h0"], c0=p.get("c0"), **kw)
    for name, values in _inputs_by_activation(cell, cache, acts).items():
        for k in KINKS.get(name, ()):
            if np.abs(values - k).min() <= 1e-4:
                return False
    return True


def _gradcheck(cell: str, options: Dict[str, Any], acts: Dict[str, Any], sequence: bool) -> None:
    kw = dict(options, **acts)
    if sequence:
        kw.update(mask=MASK, go_backwards=True)
    # Wide weights and inputs where a bounded piecewise activation must reach its flat parts;
    # otherwise the usual small ones (unbounded activations must not blow up the values).
    wide = any(v in ("hard_sigmoid", "hard_sigmoid_keras2", "relu6") for v in acts.values())
    for seed in range(200):
        p = make_problem(cell, options, seed=seed, scale=1.5 if wide else 0.5, **SHAPE)
        if wide:
            p["x"] = p["x"] * 2
        if _clear_of_kinks(cell, p, kw, acts):
            break
    else:
        pytest.fail("no seed keeps the pre-activations away from the kinks")
    has_c = "c" in cells.state_names(cell)
    params = ["x", "kernel", "recurrent_kernel", "bias", "h0"] + (["c0"] if has_c else [])
    up = dict(dy=p["dy"], dh_last=p["dh_last"], dc_last=p.get("dc_last"))

    def run(training: bool):
        return forward(reference, cell, p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                       h0=p["h0"], c0=p.get("c0"), training=training, **kw)

    _, cache = run(True)
    grads = backward(reference, cell, cache, **up)
    assert set(grads) == set(params)

    def f() -> float:
        return loss(run(False)[0], **up)

    for name in params:
        num = numeric_grad(f, p[name], EPS)
        ana = grads[name]
        scale = max(float(np.abs(ana).max()), 1e-8)
        err = float(np.abs(num - ana).max())
        assert err <= RTOL * scale, f"d{name}: max abs error {err:.3e}, max |grad| {scale:.3e}"


@pytest.mark.parametrize("sequence", [False, True], ids=["plain", "mask_backwards"])
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("case", CELL_CASES, ids=[c[0] for c in CELL_CASES])
def test_gradcheck_activation(case, activation, sequence):
    _, cell, options = case
    _gradcheck(cell, options, {"activation": activation}, sequence)


@pytest.mark.parametrize("sequence", [False, True], ids=["plain", "mask_backwards"])
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("case", GATED, ids=[c[0] for c in GATED])
def test_gradcheck_recurrent_activation(case, activation, sequence):
    _, cell, options = case
    _gradcheck(cell, options, {"recurrent_activation": activation}, sequence)


@pytest.mark.parametrize("case", GATED, ids=[c[0] for c in GATED])
def test_gradcheck_both_non_default(case):
    _, cell, options = case
    _gradcheck(cell, options, {"activation": "gelu", "recurrent_activation": "hard_sigmoid"},
               True)


# ------------------------------------------------------------------ semantics
def _f(name):
    return _activations.get(name).forward


def test_lstm_step_applies_activation_to_candidate_and_cell_state():
    p = make_problem("lstm", {}, batch=2, time=1, features=3, units=4, seed=3, scale=1.0)
    y, h, c, _ = reference.lstm_forward(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                                        h0=p["h0"], c0=p["c0"], activation="softsign",
                                        recurrent_activation="hard_sigmoid_keras2")
    z = p["x"][:, 0] @ p["kernel"] + p["h0"] @ p["recurrent_kernel"] + p["bias"]
    act, ract = _f("softsign"), _f("hard_sigmoid_keras2")
    i, f, g, o = ract(z[:, :4]), ract(z[:, 4:8]), act(z[:, 8:12]), ract(z[:, 12:])
    c_want = f * p["c0"] + i * g
    np.testing.assert_allclose(c, c_want, rtol=1e-14)
    np.testing.assert_allclose(h, o * act(c_want), rtol=1e-14)
    np.testing.assert_allclose(y[:, 0], h, rtol=0)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_step_applies_recurrent_activation_to_z_r(reset_after):
    opts = {"reset_after": reset_after}
    p = make_problem("gru", opts, batch=2, time=1, features=3, units=4, seed=4, scale=1.0)
    _, h, _ = reference.gru_forward(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                                    h0=p["h0"], activation="elu", recurrent_activation="relu6",
                                    **opts)
    act, ract = _f("elu"), _f("relu6")
    k, r, b, h0 = p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"]
    xp = p["x"][:, 0] @ k + (b[0] if reset_after else b)
    if reset_after:
        hr = h0 @ r + b[1]
        z, rr = ract(xp[:, :4] + hr[:, :4]), ract(xp[:, 4:8] + hr[:, 4:8])
        hh = act(xp[:, 8:] + rr * hr[:, 8:])
    else:
        hr = h0 @ r[:, :8]
        z, rr = ract(xp[:, :4] + hr[:, :4]), ract(xp[:, 4:8] + hr[:, 4:])
        hh = act(xp[:, 8:] + (rr * h0) @ r[:, 8:])
    np.testing.assert_allclose(h, z * h0 + (1 - z) * hh, rtol=1e-14)


@pytest.mark.parametrize("case, param",
                         [(c, p) for c in CELL_CASES for p in cells.get(c[1]).activation_params],
                         ids=[f"{c[0]}-{p}" for c in CELL_CASES
                              for p in cells.get(c[1]).activation_params])
def test_none_is_linear(case, param):
    _, cell, options = case
    p = make_problem(cell, options, seed=5)
    args = (p["x"], p["kernel"], p["recurrent_kernel"], p["bias"])
    a, ca = forward(reference, cell, *args, h0=p["h0"], c0=p.get("c0"), **options,
                    **{param: None})
    b, cb = forward(reference, cell, *args, h0=p["h0"], c0=p.get("c0"), **options,
                    **{param: "linear"})
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    ga = backward(reference, cell, ca, p["dy"], p["dh_last"], p.get("dc_last"))
    gb = backward(reference, cell, cb, p["dy"], p["dh_last"], p.get("dc_last"))
    for k in ga:
        np.testing.assert_array_equal(ga[k], gb[k])


@pytest.mark.parametrize("bad", ["softmax", "Relu", "swish", b"relu", 0, ["tanh"], True])
@pytest.mark.parametrize("param", ["activation", "recurrent_activation"])
def test_reference_rejection_message(param, bad):
    p = make_problem("gru", {}, seed=0)
    names = ", ".join(f"'{a}'" for a in ACTS)
    with pytest.raises(ValueError) as info:
        reference.gru_forward(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                              **{param: bad})
    assert str(info.value) == f"{param} must be one of {names} or None; got {bad!r}"
    assert str(info.value) == cells.activation_error(param, bad)


def test_float32_stays_float32():
    p = {k: v.astype(np.float32) for k, v in make_problem("lstm", {}, seed=1).items()}
    y, h, c, cache = reference.lstm_forward(p["x"], p["kernel"], p["recurrent_kernel"],
                                            p["bias"], activation="gelu",
                                            recurrent_activation="hard_sigmoid")
    assert y.dtype == h.dtype == c.dtype == np.float32
    g = reference.lstm_backward(cache, p["dy"])
    assert all(v.dtype == np.float32 for v in g.values())


# ------------------------------------------------------------------ cell facts
def test_cell_facts():
    assert cells.CELL_NAMES == ("simple_rnn", "lstm", "gru", "lstmp")
    assert dict(cells.GATE_COUNTS) == {"simple_rnn": 1, "lstm": 4, "gru": 3, "lstmp": 4}
    assert cells.get("lstmp").projected and not cells.get("lstm").projected
    assert cells.recurrent_kernel_shape("lstmp", 5, proj_size=2) == (2, 20)
    assert cells.get("lstm").gate_order == "ifco" and cells.get("gru").gate_order == "zrh"
    assert cells.state_names("lstm") == ("h", "c") and cells.state_names("gru") == ("h",)
    assert cells.bias_shape("gru", 5) == (2, 15)
    assert cells.bias_shape("gru", 5, reset_after=False) == (15,)
    assert cells.bias_shape("lstm", 5, reset_after=True) == (20,)
    assert cells.kernel_shape("lstm", 3, 5) == (3, 20)
    assert cells.recurrent_kernel_shape("simple_rnn", 5) == (5, 5)
    assert cells.get("simple_rnn").activation_params == ("activation",)
    assert cells.get("gru").activation_defaults == {"activation": "tanh",
                                                    "recurrent_activation": "sigmoid"}
    with pytest.raises(ValueError, match=r"^cell must be one of \['gru', 'lstm', 'lstmp', 'simple_rnn'\]"):
        cells.get("rnn")


# ------------------------------------------------------------------ layers
BACKENDS = ["reference", "ops"]


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("layer", ["LSTM", "GRU", "SimpleRNN"])
def test_layer_with_activations_trains_and_round_trips(tmp_path, layer, backend_name):
    L = rnnkit.layers
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5, 3))
    t = rng.normal(size=(16, 1))
    kwargs = {"activation": "relu"}
    if layer != "SimpleRNN":
        kwargs["recurrent_activation"] = "hard_sigmoid"
    with rnnkit.backend.use_kernels(backend_name):
        rnnkit.backend.set_random_seed(1)
        model = rnnkit.Sequential([getattr(L, layer)(4, input_shape=(5, 3), seed=1, **kwargs),
                                   L.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        before = model.evaluate(x, t, verbose=0)
        model.fit(x, t, epochs=15, batch_size=8, verbose=0)
        after = model.evaluate(x, t, verbose=0)
        assert after < before
        cfg = model.layers[0].get_config()
        assert cfg["activation"] == "relu"
        if layer != "SimpleRNN":
            assert cfg["recurrent_activation"] == "hard_sigmoid"
        path = tmp_path / "m.npz"
        model.save(str(path))
        loaded = rnnkit.load_model(str(path))
        assert loaded.layers[0].activation.name == "relu"
        np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                                   rtol=1e-6)


@pytest.mark.parametrize("name", ACTS)
def test_layers_accept_every_name(name):
    L = rnnkit.layers
    lstm = L.LSTM(2, activation=name, recurrent_activation=name)
    assert lstm.activation.name == lstm.recurrent_activation.name == name
    assert L.SimpleRNN(2, activation=name).get_config()["activation"] == name
    assert L.GRU.from_config(L.GRU(2, recurrent_activation=name).get_config()) \
        .recurrent_activation.name == name


def test_layers_take_activation_objects_and_reject_others():
    L, A = rnnkit.layers, rnnkit.activations
    assert L.GRU(2, activation=A.relu, recurrent_activation=A.tanh).activation is A.relu
    assert L.LSTM(2, activation=None).activation.name == "linear"
    with pytest.raises(ValueError, match=r"^LSTM: `activation` must be one of 'tanh', "):
        L.LSTM(2, activation=A.softmax)
    with pytest.raises(ValueError, match="^GRU: `recurrent_activation` must be one of"):
        L.GRU(2, recurrent_activation="Sigmoid")
    with pytest.raises(ValueError, match="^SimpleRNN: `activation`"):
        L.SimpleRNN(2, activation=np.tanh)
