"""LSTMP (LSTM with an output projection, PyTorch's nn.LSTM(proj_size=P)): rnnkit.ops against
the NumPy reference (every ISA, float32/float64, edge shapes, masks, go_backwards, states,
activations, 1-2 threads), reference gradcheck, determinism, PyTorch parity, argument errors.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np
import pytest

import rnnkit
import rnnkit.ops as ops
import rnnkit.reference as ref
from _cases import numeric_grad

# (B, T, I, H, P): edge shapes, P < H mostly, P > H, partial slices, threads-sized.
SHAPES = [
    (1, 1, 1, 1, 1),
    (3, 5, 4, 6, 3),
    (2, 7, 3, 5, 8),      # P > H
    (4, 6, 5, 9, 1),      # P = 1
    (1, 4, 2, 1, 1),      # H = 1
    (5, 3, 7, 17, 11),
    (13, 12, 20, 70, 33),
]
SHAPE_IDS = ["x".join(map(str, s)) for s in SHAPES]


def make(B: int, T: int, I: int, H: int, P: int, seed: int = 0, scale: float = 0.5
         ) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    u = lambda *s: rng.uniform(-scale, scale, size=s)  # noqa: E731
    return {
        "x": rng.uniform(-1, 1, size=(B, T, I)),
        "kernel": u(I, 4 * H),
        "recurrent_kernel": u(P, 4 * H),
        "projection_kernel": u(H, P),
        "bias": u(4 * H),
        "h0": u(B, P),
        "c0": u(B, H),
        "dy": rng.normal(size=(B, T, P)),
        "dh_last": rng.normal(size=(B, P)),
        "dc_last": rng.normal(size=(B, H)),
    }


def masks(B: int, T: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    m = rng.random((B, T)) > 0.3
    m[0, :] = False  # an all-masked row
    if B > 1:
        m[-1, :] = True
    return m


def run(mod: Any, p: Dict[str, np.ndarray], dtype: Any = np.float64, *, states: bool = True,
        bias: bool = True, upstream: bool = True, **kw: Any
        ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    c = {k: v.astype(dtype) for k, v in p.items()}
    y, h, cl, cache = mod.lstmp_forward(
        c["x"], c["kernel"], c["recurrent_kernel"], c["projection_kernel"],
        c["bias"] if bias else None, h0=c["h0"] if states else None,
        c0=c["c0"] if states else None, **kw)
    if upstream:
        g = mod.lstmp_backward(cache, c["dy"], c["dh_last"], c["dc_last"])
    else:
        g = mod.lstmp_backward(cache, c["dy"])
    return {"y": y, "h_last": h, "c_last": cl}, g


def assert_close(got: Dict[str, np.ndarray], want: Dict[str, np.ndarray], dtype: Any) -> None:
    """Max error within tol * max(1, max |want|) per array (gradients are sums with
    cancellation: an element-wise relative test would fail on float32 rounding)."""
    assert set(got) == set(want)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    for k in want:
        assert got[k].dtype == want[k].dtype == np.dtype(dtype), k
        assert got[k].shape == want[k].shape, k
        scale = max(1.0, float(np.abs(want[k]).max())) if want[k].size else 1.0
        err = float(np.abs(got[k].astype(np.float64) - want[k]).max()) if want[k].size else 0.0
        assert err <= tol * scale, f"{k}: error {err:.3g}, scale {scale:.3g}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_ops_match_reference(isa: str, shape, dtype) -> None:
    B, T, I, H, P = shape
    p = make(*shape)
    for go_backwards in (False, True):
        for mask in (None, masks(B, T)):
            kw = dict(mask=mask, go_backwards=go_backwards)
            want = run(ref, p, dtype, **kw)
            got = run(ops, p, dtype, **kw)
            assert_close(got[0], want[0], dtype)
            assert_close(got[1], want[1], dtype)


@pytest.mark.parametrize("shape", SHAPES[:4], ids=SHAPE_IDS[:4])
def test_no_bias_no_states_no_upstream(shape) -> None:
    p = make(*shape, seed=3)
    kw = dict(states=False, bias=False, upstream=False)
    want = run(ref, p, **kw)
    got = run(ops, p, **kw)
    assert "bias" not in got[1]
    assert_close(got[0], want[0], np.float64)
    assert_close(got[1], want[1], np.float64)


def test_return_sequences_and_last_output() -> None:
    """y[:, -1] is h_last without a mask; with a mask it is the last kept output."""
    p = make(3, 6, 4, 7, 3, seed=5)
    out, _ = run(ops, p)
    np.testing.assert_array_equal(out["y"][:, -1], out["h_last"])
    m = np.ones((3, 6), bool)
    m[1, 3:] = False
    out, _ = run(ops, p, mask=m)
    np.testing.assert_array_equal(out["y"][1, 3:], np.repeat(out["y"][1, 2:3], 3, axis=0))
    np.testing.assert_array_equal(out["y"][:, -1], out["h_last"])


def test_all_masked_returns_initial_states_and_zero_outputs() -> None:
    p = make(2, 4, 3, 5, 2, seed=6)
    out, g = run(ops, p, mask=np.zeros((2, 4), bool))
    np.testing.assert_array_equal(out["y"], 0)
    np.testing.assert_array_equal(out["h_last"], p["h0"])
    np.testing.assert_array_equal(out["c_last"], p["c0"])
    np.testing.assert_array_equal(g["h0"], p["dh_last"])
    np.testing.assert_array_equal(g["c0"], p["dc_last"])
    for k in ("x", "kernel", "recurrent_kernel", "projection_kernel", "bias"):
        np.testing.assert_array_equal(g[k], 0, err_msg=k)


ACTIVATION_PAIRS = [("relu", "hard_sigmoid"), ("silu", "gelu"), (None, "linear"),
                    ("softsign", "hard_sigmoid_keras2"), ("elu", "sigmoid"), ("tanh", "relu6")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("acts", ACTIVATION_PAIRS, ids=[f"{a}-{r}" for a, r in ACTIVATION_PAIRS])
def test_activations_match_reference(isa: str, acts, dtype) -> None:
    act, ract = acts
    p = make(4, 6, 5, 9, 4, seed=7, scale=0.3)
    kw = dict(activation=act, recurrent_activation=ract, mask=masks(4, 6), go_backwards=True)
    want = run(ref, p, dtype, **kw)
    got = run(ops, p, dtype, **kw)
    assert_close(got[0], want[0], dtype)
    assert_close(got[1], want[1], dtype)


@pytest.mark.parametrize("shape", [(2, 4, 3, 5, 3), (2, 3, 2, 3, 5), (1, 2, 1, 1, 1)])
@pytest.mark.parametrize("acts", [("tanh", "sigmoid"), ("silu", "hard_sigmoid")])
def test_reference_gradcheck(shape, acts) -> None:
    B, T, I, H, P = shape
    p = make(*shape, seed=11)
    kw = dict(activation=acts[0], recurrent_activation=acts[1], mask=masks(B, T, seed=2)
              if B > 1 else None, go_backwards=True)

    def loss() -> float:
        y, h, c, _ = ref.lstmp_forward(p["x"], p["kernel"], p["recurrent_kernel"],
                                       p["projection_kernel"], p["bias"], h0=p["h0"],
                                       c0=p["c0"], training=False, **kw)
        return float(np.sum(y * p["dy"]) + np.sum(h * p["dh_last"]) + np.sum(c * p["dc_last"]))

    _, g = run(ref, p, **kw)
    names = {"x": "x", "kernel": "kernel", "recurrent_kernel": "recurrent_kernel",
             "projection_kernel": "projection_kernel", "bias": "bias", "h0": "h0", "c0": "c0"}
    for k, arr in names.items():
        np.testing.assert_allclose(g[k], numeric_grad(loss, p[arr]), rtol=1e-5, atol=1e-7,
                                   err_msg=k)


@pytest.fixture
def restore_threads():
    saved = rnnkit.get_num_threads()
    yield
    rnnkit.set_num_threads(saved)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(13, 12, 40, 70, 33), (16, 10, 20, 64, 96)],
                         ids=["P<H", "P>H"])
def test_bitwise_identical_for_1_2_3_threads_and_runs(isa: str, shape, dtype,
                                                     restore_threads) -> None:
    B, T = shape[:2]
    p = make(*shape, seed=4, scale=0.2)
    kw = dict(mask=masks(B, T), go_backwards=True)
    results = []
    for n in (1, 2, 3, 2):
        rnnkit.set_num_threads(n)
        results.append(run(ops, p, dtype, **kw))
    for outs, grads in results[1:]:
        for k in outs:
            np.testing.assert_array_equal(outs[k], results[0][0][k], err_msg=k)
        for k in grads:
            np.testing.assert_array_equal(grads[k], results[0][1][k], err_msg=k)


def test_cache_properties() -> None:
    p = make(3, 5, 4, 6, 2)
    _, _, _, cache = ops.lstmp_forward(p["x"], p["kernel"], p["recurrent_kernel"],
                                       p["projection_kernel"], p["bias"])
    _, _, _, rcache = ref.lstmp_forward(p["x"], p["kernel"], p["recurrent_kernel"],
                                        p["projection_kernel"], p["bias"])
    assert cache.shape == rcache.shape == (3, 5, 2)
    assert cache.dtype == np.float64
    with pytest.raises(TypeError, match=r"lstmp_forward\(\.\.\., training=True\); got LSTMCache"):
        _, _, _, lcache = ops.lstm_forward(p["x"], np.zeros((4, 24)), np.zeros((6, 24)))
        ops.lstmp_backward(lcache)
    with pytest.raises(TypeError, match="got LSTMPCache"):
        ops.lstm_backward(cache)


def test_training_false_returns_no_cache() -> None:
    p = make(2, 3, 4, 5, 2)
    for mod in (ops, ref):
        *_, cache = mod.lstmp_forward(p["x"], p["kernel"], p["recurrent_kernel"],
                                      p["projection_kernel"], training=False)
        assert cache is None


# ---------------------------------------------------------------------- argument errors

def _err(mod: Any, *args: Any, **kw: Any) -> Tuple[type, str]:
    try:
        mod.lstmp_forward(*args, **kw)
    except (TypeError, ValueError) as e:
        return type(e), str(e)
    raise AssertionError("no error")


BAD = {
    "projection_kernel cols": (lambda p: {"projection_kernel": np.zeros((6, 4))},
                               "projection_kernel must have shape (6, 2); got (6, 4)"),
    "projection_kernel ndim": (lambda p: {"projection_kernel": np.zeros(6)},
                               "projection_kernel must be a 2-D array (units, proj_size); got shape (6,)"),
    "projection_kernel dtype": (lambda p: {"projection_kernel": np.array([["a"]])},
                                "projection_kernel must be a real numeric array; got dtype <U1"),
    "projection_kernel empty": (lambda p: {"projection_kernel": np.zeros((0, 2))},
                                "projection_kernel must have at least one unit; got shape (0, 2)"),
    "projection_kernel rows": (lambda p: {"projection_kernel": np.zeros((5, 2))},
                               "recurrent_kernel must have shape (2, 20); got (2, 24)"),
    "recurrent_kernel ndim": (lambda p: {"recurrent_kernel": np.zeros(3)},
                              "recurrent_kernel must be a 2-D array (proj_size, 4*units); got shape (3,)"),
    "recurrent_kernel rows": (lambda p: {"recurrent_kernel": np.zeros((6, 24))},
                              "projection_kernel must have shape (6, 6); got (6, 2)"),
    "h0 width": (lambda p: {"h0": np.zeros((3, 6))}, "h0 must have shape (3, 2); got (3, 6)"),
    "h0 ndim": (lambda p: {"h0": np.zeros(3)},
                "h0 must be a 2-D array (batch, proj_size); got shape (3,)"),
    "c0 width": (lambda p: {"c0": np.zeros((3, 2))}, "c0 must have shape (3, 6); got (3, 2)"),
    "bias": (lambda p: {"bias": np.zeros(8)}, "bias must have shape (24,); got (8,)"),
    "kernel": (lambda p: {"kernel": np.zeros((4, 8))}, "kernel must have shape (4, 24); got (4, 8)"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_arguments_same_message(case: str) -> None:
    p = make(3, 5, 4, 6, 2)
    change, message = BAD[case]
    args = {k: p[k] for k in ("x", "kernel", "recurrent_kernel", "projection_kernel", "bias")}
    kw = {"h0": p["h0"], "c0": p["c0"]}
    for k, v in change(p).items():
        (args if k in args else kw)[k] = v
    got = _err(ops, *args.values(), **kw)
    want = _err(ref, *args.values(), **kw)
    assert got == want
    assert got[1] == message


def test_bad_upstream_shapes_same_message() -> None:
    p = make(3, 5, 4, 6, 2)
    for mod in (ops, ref):
        *_, cache = mod.lstmp_forward(p["x"], p["kernel"], p["recurrent_kernel"],
                                      p["projection_kernel"])
        with pytest.raises(ValueError, match=r"^dy must have shape \(3, 5, 2\); got \(3, 5, 6\)$"):
            mod.lstmp_backward(cache, np.zeros((3, 5, 6)))
        with pytest.raises(ValueError, match=r"^dh_last must have shape \(3, 2\); got \(3, 6\)$"):
            mod.lstmp_backward(cache, None, np.zeros((3, 6)))
        with pytest.raises(ValueError, match=r"^dc_last must have shape \(3, 6\); got \(3, 2\)$"):
            mod.lstmp_backward(cache, None, None, np.zeros((3, 2)))


def test_projection_kernel_is_required() -> None:
    p = make(2, 3, 4, 5, 2)
    for mod in (ops, ref):
        with pytest.raises(TypeError):
            mod.lstmp_forward(p["x"], p["kernel"], p["recurrent_kernel"])


# ---------------------------------------------------------------------- PyTorch parity

@pytest.mark.parametrize("shape", [(3, 6, 4, 8, 3), (2, 5, 3, 9, 8), (1, 1, 1, 2, 1)])  # torch: P < H
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_matches_torch_forward_and_gradients(shape, dtype) -> None:
    torch = pytest.importorskip("torch")
    from rnnkit.interop import torch as interop
    B, T, I, H, P = shape
    p = {k: v.astype(dtype) for k, v in make(*shape, seed=9).items()}
    module = interop.to_torch("lstmp", p["kernel"], p["recurrent_kernel"], p["bias"],
                              projection_kernel=p["projection_kernel"])
    assert interop.cell_of(module) == "lstmp" and module.proj_size == P
    k, r, pk, b = interop.from_torch(module)
    np.testing.assert_array_equal(pk, p["projection_kernel"])
    np.testing.assert_array_equal(r, p["recurrent_kernel"])
    np.testing.assert_allclose(b, p["bias"], rtol=0, atol=0)

    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(True)  # noqa: E731
    x, h0, c0 = t(p["x"]), t(p["h0"][None]), t(p["c0"][None])
    y, (h, c) = module(x, (h0, c0))
    loss = ((y * torch.from_numpy(p["dy"])).sum() + (h[0] * torch.from_numpy(p["dh_last"])).sum()
            + (c[0] * torch.from_numpy(p["dc_last"])).sum())
    params = list(module.parameters())
    gs = torch.autograd.grad(loss, [x, h0, c0] + params)
    want_grads = {"x": gs[0].numpy(), "h0": gs[1].numpy()[0], "c0": gs[2].numpy()[0],
                  **interop.gradients_from_torch(module, gs[3:])}

    outs, grads = run(ops, p, dtype)
    want_outs = {"y": y.detach().numpy(), "h_last": h.detach().numpy()[0],
                 "c_last": c.detach().numpy()[0]}
    assert_close(outs, want_outs, dtype)
    assert_close(grads, want_grads, dtype)


# ---------------------------------------------------------------------- layer

def test_layer_proj_size_runs_lstmp_and_fits_and_round_trips(tmp_path) -> None:
    from rnnkit import backend, layers as L
    from rnnkit.models import Sequential, load_model
    backend.set_random_seed(3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 7, 5)).astype(np.float32)
    y = rng.normal(size=(16, 2)).astype(np.float32)
    lstm = L.LSTM(6, proj_size=3, return_sequences=True)
    m = Sequential([L.Input((7, 5)), lstm, L.LSTM(4, proj_size=2, go_backwards=True),
                    L.Dense(2)])
    m.compile("adam", "mse")
    assert lstm.projection_kernel.value.shape == (6, 3)
    assert lstm.recurrent_kernel.value.shape == (3, 24)
    assert lstm.kernel.value.shape == (5, 24)
    assert lstm.compute_output_shape((None, 7, 5)) == (None, 7, 3)
    # the layer computes what rnnkit.ops.lstmp_forward does
    want = ops.lstmp_forward(x, lstm.kernel.value, lstm.recurrent_kernel.value,
                             lstm.projection_kernel.value, lstm.bias.value, training=False)[0]
    np.testing.assert_allclose(lstm.forward(x), want, rtol=1e-6, atol=1e-7)
    before = lstm.projection_kernel.value.copy()
    h = m.fit(x, y, epochs=5, batch_size=8, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert not np.array_equal(before, lstm.projection_kernel.value)  # it was trained
    cfg = lstm.get_config()
    assert cfg["proj_size"] == 3 and "projection_initializer" in cfg
    assert "proj_size" not in L.LSTM(4).get_config()  # default: the config stays Keras's
    path = str(tmp_path / "lstmp.npz")
    m.save(path)
    m2 = load_model(path)
    np.testing.assert_array_equal(m.predict(x, verbose=0), m2.predict(x, verbose=0))
    assert m2.layers[0].proj_size == 3 and m2.layers[1].proj_size == 2


def test_layer_states_dropout_and_reference_backend() -> None:
    from rnnkit import backend, layers as L
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 5, 3))
    layer = L.LSTM(6, proj_size=2, return_state=True, recurrent_dropout=0.3, seed=1,
                   dtype="float64")
    layer._ensure_built((None, 5, 3))
    h0, c0 = rng.normal(size=(4, 2)), rng.normal(size=(4, 6))
    out, h, c = layer.forward(x, initial_state=[h0, c0], training=True, need_grad=True)
    assert out.shape == h.shape == (4, 2) and c.shape == (4, 6)
    dx = layer.backward([np.ones((4, 2)), None, np.ones((4, 6))])
    assert dx.shape == x.shape and layer.projection_kernel.grad.shape == (6, 2)
    assert [g.shape for g in layer.initial_state_grads] == [(4, 2), (4, 6)]
    with pytest.raises(ValueError, match=r"initial_state\[0\]` has shape \(4, 6\), expected \(4, 2\)"):
        layer.forward(x, initial_state=[c0, c0])
    with pytest.raises(ValueError, match="proj_size"):
        L.LSTM(4, proj_size=0)
    # the NumPy backend gives the same layer output
    plain = L.LSTM(6, proj_size=2, dtype="float64")
    plain._ensure_built((None, 5, 3))
    want = plain.forward(x)
    with backend.use_kernels("reference"):
        got = plain.forward(x)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_layer_in_functional_model_with_states(tmp_path) -> None:
    """Encoder LSTM(proj_size) hands [h (B, P), c (B, H)] to a decoder of the same kind."""
    import rnnkit
    from rnnkit import layers as L
    from rnnkit.models import Model, load_model
    rnnkit.backend.set_random_seed(5)
    enc_in, dec_in = rnnkit.Input((5, 3)), rnnkit.Input((4, 2))
    _, h, c = L.LSTM(6, proj_size=2, return_state=True)(enc_in)
    assert (h.shape, c.shape) == ((None, 2), (None, 6))
    seq = L.LSTM(6, proj_size=2, return_sequences=True)(dec_in, initial_state=[h, c])
    assert seq.shape == (None, 4, 2)
    with pytest.raises(ValueError, match=r"initial_state\[0\]"):
        L.LSTM(6, proj_size=3)(dec_in, initial_state=[h, c])
    m = Model([enc_in, dec_in], seq)
    m.compile("adam", "mse")
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(8, 5, 3)).astype(np.float32), rng.normal(size=(8, 4, 2)).astype(np.float32)]
    ys = rng.normal(size=(8, 4, 2)).astype(np.float32)
    hist = m.fit(xs, ys, epochs=3, batch_size=4, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    path = str(tmp_path / "f.npz")
    m.save(path)
    np.testing.assert_array_equal(load_model(path).predict(xs, verbose=0), m.predict(xs, verbose=0))
