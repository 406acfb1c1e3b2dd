"""Every Keras element-wise activation as ``activation`` (SimpleRNN, LSTM, GRU) and as
``recurrent_activation`` (LSTM, GRU) in the C++ kernels (rnnkit.ops), on every SIMD path:

* element-wise values and derivatives against NumPy (a SimpleRNN step with an identity
  kernel is act(x) itself; its BPTT with dy = 1 is act'(x));
* whole-sequence forward against an independent NumPy oracle written here (the formulas of
  issue 12, item 4), float64 and float32, with h0/c0, masks and go_backwards in some cases,
  H in {1, 7, 16, 33} (partial and whole vector slices);
* every gradient against float64 central finite differences of ops' own forward
  (directional, one random direction per argument);
* float32 results (outputs and gradients) against float64 ones.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

import numpy as np
import pytest

import rnnkit.ops as ops
from rnnkit import cells
from rnnkit.cells import ACTIVATIONS
SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
KINKS = {"hard_sigmoid": (-3.0, 3.0), "hard_sigmoid_keras2": (-2.5, 2.5), "relu": (0.0,),
         "relu6": (0.0, 6.0), "elu": (0.0,), "selu": (0.0,)}

_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def act_np(name: Optional[str], z: np.ndarray) -> np.ndarray:
    """The activations in float64 NumPy."""
    z = np.asarray(z, dtype=np.float64)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "hard_sigmoid":
        return np.clip(z + 3, 0, 6) / 6
    if name == "hard_sigmoid_keras2":
        return np.clip(0.2 * z + 0.5, 0, 1)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "relu6":
        return np.clip(z, 0, 6)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
    if name == "selu":
        return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0)))
    if name == "softsign":
        return z / (1 + np.abs(z))
    if name == "softplus":
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    if name == "silu":
        return z * _sigmoid(z)
    if name == "gelu":
        return 0.5 * z * _erfc(-z / math.sqrt(2))
    assert name in ("linear", None)
    return z.copy()


def dact_np(name: str, z: np.ndarray) -> np.ndarray:
    """d act / d z in float64 NumPy, from z (away from kinks)."""
    z = np.asarray(z, dtype=np.float64)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "sigmoid":
        s = _sigmoid(z)
        return s * (1 - s)
    if name == "hard_sigmoid":
        return np.where(np.abs(z) < 3, 1 / 6, 0.0)
    if name == "hard_sigmoid_keras2":
        return np.where(np.abs(z) < 2.5, 0.2, 0.0)
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "relu6":
        return ((z > 0) & (z < 6)).astype(np.float64)
    if name == "elu":
        return np.where(z > 0, 1.0, np.exp(np.minimum(z, 0)))
    if name == "selu":
        return np.where(z > 0, SELU_SCALE, SELU_SCALE * SELU_ALPHA * np.exp(np.minimum(z, 0)))
    if name == "softsign":
        return 1 / (1 + np.abs(z)) ** 2
    if name == "softplus":
        return _sigmoid(z)
    if name == "silu":
        s = _sigmoid(z)
        return s + z * s * (1 - s)
    if name == "gelu":
        return 0.5 * _erfc(-z / math.sqrt(2)) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return np.ones_like(z)


# ------------------------------------------------------------------ element-wise values

def _grid() -> np.ndarray:
    g = np.concatenate([
        np.linspace(-12.0013, 12.0017, 1201),
        np.array([1e-300, -1e-300, 1e-30, -1e-30, 1e-10, -1e-10, 1e-5, -1e-5, 3e-3, -3e-3,
                  0.3, -0.3, 0.34, -0.34, 0.36, -0.36, 0.7, -0.7, 30.0, -30.0, 50.0, -50.0]),
    ])
    return g


def _elementwise(name: str, z: np.ndarray, dtype, H: int = 33):
    """act(z) and act'(z) from ops: SimpleRNN, one step, identity kernel, R = 0 (H = 1 for
    inf/NaN inputs, which the product x @ eye would spread over the row)."""
    n = int(math.ceil(z.size / H))
    zz = np.zeros(n * H)
    zz[: z.size] = z
    x = zz.reshape(n, 1, H).astype(dtype)
    y, _, cache = ops.simple_rnn_forward(x, np.eye(H, dtype=dtype), np.zeros((H, H), dtype),
                                         activation=name)
    g = ops.simple_rnn_backward(cache, dy=np.ones_like(y))
    return y.reshape(-1)[: z.size], g["x"].reshape(-1)[: z.size]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_elementwise_value_and_derivative(isa, name, dtype) -> None:
    z = _grid().astype(dtype)
    if dtype == np.float32:
        z = z[np.abs(z) >= 1e-30]  # float32 flushes nothing here, but keep normal numbers
    for k in KINKS.get(name, ()):
        z = z[np.abs(z.astype(np.float64) - k) > 1e-4]
    y, dy = _elementwise(name, z, dtype)
    z64 = z.astype(np.float64)
    want, dwant = act_np(name, z64), dact_np(name, z64)
    if dtype == np.float64:
        np.testing.assert_allclose(y, want, rtol=4e-15, atol=1e-300, err_msg=name)
        # From-output derivatives lose relative accuracy where the output saturates
        # (sigmoid near 1: 1 - a): absolute 1e-14 there.
        np.testing.assert_allclose(dy, dwant, rtol=1e-12, atol=1e-14, err_msg=name)
    else:
        # Absolute 1e-7: the formulas' own float32 rounding where the value cancels to ~0
        # (0.2x + 0.5 near x = -2.5; gelu's far negative tail).
        np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-7, err_msg=name)
        # fp32 tanh is exactly +-1 beyond |x| = 7.9 (derivative < 5.5e-7 there): absolute 1e-6.
        np.testing.assert_allclose(dy, dwant, rtol=2e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("name", ["elu", "selu", "softplus"])
def test_expm1_and_log1p_accuracy_near_zero_f64(isa, name) -> None:
    # elu/selu use expm1 (exp(x) - 1 would lose every digit near 0), softplus log1p.
    z = -np.logspace(-300, 0.5, 400)
    if name == "softplus":
        z = np.concatenate([z, -z, np.linspace(-40, 40, 801)])
    y, _ = _elementwise(name, z, np.float64)
    np.testing.assert_allclose(y, act_np(name, z), rtol=4e-15, atol=0, err_msg=name)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_nan_and_inf(isa, name) -> None:
    z = np.array([np.nan, np.inf, -np.inf, 1.0])
    y, _ = _elementwise(name, z, np.float64, H=1)
    assert np.isnan(y[0]), name  # NaN propagates through every activation
    with np.errstate(all="ignore"):
        want = act_np(name, z)
    np.testing.assert_array_equal(np.isnan(y[1:3]), np.isnan(want[1:3]), err_msg=name)
    finite = ~np.isnan(want[1:3])
    np.testing.assert_allclose(y[1:3][finite], want[1:3][finite], rtol=1e-15, err_msg=name)


def test_sigmoid_saturates_exactly(isa) -> None:
    for dtype, big in ((np.float32, 17.0), (np.float64, 37.0)):
        y, _ = _elementwise("sigmoid", np.array([big, -800.0, np.inf, -np.inf]), dtype, H=1)
        np.testing.assert_array_equal(y, np.array([1.0, 0.0, 1.0, 0.0], dtype))


# ------------------------------------------------------------------ sequences

GATES = cells.GATE_COUNTS
VARIANTS = [("simple_rnn", {}), ("lstm", {}), ("gru", {"reset_after": True}),
            ("gru", {"reset_after": False})]


def _cases():
    out = []
    for vi, (cell, opts) in enumerate(VARIANTS):
        vid = cell if cell != "gru" else ("gru_ra" if opts["reset_after"] else "gru_rb")
        roles = ["activation"] + (["recurrent_activation"] if cell != "simple_rnn" else [])
        for role in roles:
            for ai, name in enumerate(ACTIVATIONS):
                n = vi * 31 + ai * 7 + (role == "recurrent_activation") * 3
                out.append(pytest.param(cell, opts, role, name, n, id=f"{vid}-{role}-{name}"))
    return out


CASES = _cases()


def _problem(cell: str, opts: Dict[str, Any], units: int, n: int) -> Dict[str, Any]:
    """float64 problem; n picks the seed and the options (mask, go_backwards, h0, bias)."""
    rng = np.random.default_rng(1000 + n * 17 + units)
    g = GATES[cell]
    B, T, I = 3, 5, 4
    w = 1.8 / math.sqrt(units + I)
    p: Dict[str, Any] = {
        "x": rng.uniform(-1, 1, (B, T, I)),
        "kernel": rng.uniform(-w, w, (I, g * units)),
        "recurrent_kernel": rng.uniform(-w, w, (units, g * units)),
    }
    two_row = cell == "gru" and opts.get("reset_after", True)
    p["bias"] = rng.uniform(-1.5, 1.5, (2, g * units) if two_row else (g * units,))
    if n % 5 == 4:
        p["bias"] = None
    if n % 3 != 0:
        p["h0"] = rng.uniform(-1, 1, (B, units))
        if cell == "lstm":
            p["c0"] = rng.uniform(-1, 1, (B, units))
    if n % 2 == 0:
        m = rng.random((B, T)) > 0.3
        m[0, 0] = False
        m[1] = True
        p["mask"] = m
    p["go_backwards"] = n % 4 in (1, 2)
    p["dy"] = rng.normal(size=(B, T, units))
    p["dh_last"] = rng.normal(size=(B, units))
    if cell == "lstm":
        p["dc_last"] = rng.normal(size=(B, units))
    return p


ARRAYS = ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0")


def _ops_forward(cell, opts, role, name, p, dtype, training=True):
    kw = dict(opts)
    kw[role] = name
    args = {k: (None if p.get(k) is None else np.asarray(p[k], dtype)) for k in ARRAYS}
    if cell != "lstm":
        args.pop("c0")
    f = getattr(ops, f"{cell}_forward")
    out = f(args.pop("x"), args.pop("kernel"), args.pop("recurrent_kernel"), args.pop("bias"),
            **args, mask=p.get("mask"), go_backwards=p["go_backwards"], training=training, **kw)
    names = ["y", "h_last", "c_last"] if cell == "lstm" else ["y", "h_last"]
    return dict(zip(names, out[:-1])), out[-1]


def _ops_grads(cell, cache, p, dtype):
    up = {"dy": p["dy"].astype(dtype), "dh_last": p["dh_last"].astype(dtype)}
    if cell == "lstm":
        up["dc_last"] = p["dc_last"].astype(dtype)
    return getattr(ops, f"{cell}_backward")(cache, **up)


def oracle_forward(cell, opts, role, name, p) -> Dict[str, np.ndarray]:
    """Keras semantics written out in float64 NumPy."""
    act = name if role == "activation" else "tanh"
    rec = name if role == "recurrent_activation" else "sigmoid"
    A = lambda z: act_np(act, z)  # noqa: E731
    Rc = lambda z: act_np(rec, z)  # noqa: E731
    x, K, R = p["x"], p["kernel"], p["recurrent_kernel"]
    B, T, _ = x.shape
    H = R.shape[0]
    keep = p.get("mask")
    keep = np.ones((B, T), bool) if keep is None else keep.astype(bool)
    if p["go_backwards"]:
        x, keep = x[:, ::-1], keep[:, ::-1]
    h = np.zeros((B, H)) if p.get("h0") is None else p["h0"].copy()
    c = np.zeros((B, H)) if p.get("c0") is None else p["c0"].copy()
    bias = p.get("bias")
    y_prev = np.zeros((B, H))
    ys = []
    for t in range(T):
        xt = x[:, t]
        c_new = c
        if cell == "simple_rnn":
            z = xt @ K + h @ R + (0 if bias is None else bias)
            h_new = A(z)
        elif cell == "lstm":
            z = xt @ K + h @ R + (0 if bias is None else bias)
            zi, zf, zg, zo = np.split(z, 4, axis=1)
            c_new = Rc(zf) * c + Rc(zi) * A(zg)
            h_new = Rc(zo) * A(c_new)
        elif opts.get("reset_after", True):
            b_in = 0 if bias is None else bias[0]
            b_rec = 0 if bias is None else bias[1]
            xz, xr, xh = np.split(xt @ K + b_in, 3, axis=1)
            rz, rr, rh = np.split(h @ R + b_rec, 3, axis=1)
            zg, rg = Rc(xz + rz), Rc(xr + rr)
            h_new = zg * h + (1 - zg) * A(xh + rg * rh)
        else:
            xz, xr, xh = np.split(xt @ K + (0 if bias is None else bias), 3, axis=1)
            zg = Rc(xz + h @ R[:, :H])
            rg = Rc(xr + h @ R[:, H:2 * H])
            h_new = zg * h + (1 - zg) * A(xh + (rg * h) @ R[:, 2 * H:])
        k = keep[:, t][:, None]
        h = np.where(k, h_new, h)
        c = np.where(k, c_new, c)
        y_prev = np.where(k, h_new, y_prev)
        ys.append(y_prev)
    out = {"y": np.stack(ys, axis=1), "h_last": h}
    if cell == "lstm":
        out["c_last"] = c
    return out


UNITS = [1, 7, 16, 33]


@pytest.mark.parametrize("cell, opts, role, name, n", CASES)
def test_forward_matches_oracle(isa, cell, opts, role, name, n) -> None:
    for units in UNITS:
        p = _problem(cell, opts, units, n)
        want = oracle_forward(cell, opts, role, name, p)
        for dtype, rtol in ((np.float64, 1e-11), (np.float32, 2e-4)):
            got, _ = _ops_forward(cell, opts, role, name, p, dtype, training=(dtype == np.float64))
            for k, v in want.items():
                assert got[k].dtype == dtype
                scale = max(1.0, float(np.abs(v).max()))
                np.testing.assert_allclose(got[k], v, rtol=rtol, atol=rtol * scale,
                                           err_msg=f"{k} H={units} {np.dtype(dtype).name}")


def _loss(cell, opts, role, name, p) -> float:
    outs, _ = _ops_forward(cell, opts, role, name, p, np.float64, training=False)
    total = np.sum(outs["y"] * p["dy"]) + np.sum(outs["h_last"] * p["dh_last"])
    if cell == "lstm":
        total += np.sum(outs["c_last"] * p["dc_last"])
    return float(total)


@pytest.mark.parametrize("cell, opts, role, name, n", CASES)
def test_gradients_match_finite_differences_f64(isa, cell, opts, role, name, n) -> None:
    units = UNITS[n % len(UNITS)]
    p = _problem(cell, opts, units, n)
    _, cache = _ops_forward(cell, opts, role, name, p, np.float64)
    grads = _ops_grads(cell, cache, p, np.float64)
    rng = np.random.default_rng(n)
    eps = 1e-6
    for k in ARRAYS:
        if p.get(k) is None or (k == "c0" and cell != "lstm"):
            continue
        v = rng.normal(size=np.shape(p[k]))
        plus, minus = dict(p), dict(p)
        plus[k] = p[k] + eps * v
        minus[k] = p[k] - eps * v
        fd = (_loss(cell, opts, role, name, plus) - _loss(cell, opts, role, name, minus)) / (2 * eps)
        an = float(np.sum(grads[k] * v))
        scale = max(1.0, float(np.sqrt(np.sum(grads[k] ** 2) * v.size)))
        assert abs(an - fd) <= 2e-7 * scale, (k, an, fd)


@pytest.mark.parametrize("cell, opts, role, name, n", CASES)
def test_float32_matches_float64(isa, cell, opts, role, name, n) -> None:
    units = UNITS[(n + 1) % len(UNITS)]
    p = _problem(cell, opts, units, n)
    results = {}
    for dtype in (np.float32, np.float64):
        outs, cache = _ops_forward(cell, opts, role, name, p, dtype)
        results[dtype] = (outs, _ops_grads(cell, cache, p, dtype))
    (o32, g32), (o64, g64) = results[np.float32], results[np.float64]
    for k in o64:
        scale = max(1.0, float(np.abs(o64[k]).max()))
        np.testing.assert_allclose(o32[k], o64[k], rtol=2e-4, atol=2e-4 * scale, err_msg=k)
    for k in g64:
        assert g32[k].dtype == np.float32
        scale = max(1.0, float(np.abs(g64[k]).max()))
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-3, atol=1e-3 * scale, err_msg=k)


# ------------------------------------------------------------------ defaults, names, memory

@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_defaults_are_tanh_and_sigmoid(cell) -> None:
    p = _problem(cell, {}, 7, 1)
    f = getattr(ops, f"{cell}_forward")
    extra = {"c0": p["c0"]} if cell == "lstm" else {}
    base = f(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], h0=p["h0"], **extra,
             go_backwards=p["go_backwards"], training=False)
    named = f(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], h0=p["h0"], **extra,
              go_backwards=p["go_backwards"], training=False, activation="tanh",
              recurrent_activation="sigmoid")
    np.testing.assert_array_equal(named[0], base[0])
    want = oracle_forward(cell, {}, "activation", "tanh", p)
    np.testing.assert_allclose(base[0], want["y"], rtol=1e-12, atol=1e-12)


# Unknown names: tests/test_validation.py (test_rejects_activation, test_rejects_gate_activation)
# checks the exact message in both modules.


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_none_means_linear(cell) -> None:
    p = _problem(cell, {}, 7, 2)
    for role in ("activation", "recurrent_activation"):
        a, _ = _ops_forward(cell, {}, role, None, p, np.float64, training=False)
        b, _ = _ops_forward(cell, {}, role, "linear", p, np.float64, training=False)
        np.testing.assert_array_equal(a["y"], b["y"])


@pytest.mark.parametrize("cell, opts", VARIANTS, ids=["simple_rnn", "lstm", "gru_ra", "gru_rb"])
def test_cache_size_does_not_depend_on_the_activation(cell, opts) -> None:
    p = _problem(cell, opts, 7, 1)
    sizes = {_ops_forward(cell, opts, "activation", name, p, np.float64)[1].nbytes
             for name in ACTIVATIONS}
    assert len(sizes) == 1
