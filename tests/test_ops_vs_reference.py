"""rnnkit.ops (C++) against rnnkit.reference (NumPy) on a grid of edge shapes and options,
on every SIMD path this CPU can run (the `isa` fixture).

Accuracy contract (docs/design.md): float64 within 1e-10 of the largest magnitude of each result;
float32 within 1e-5 of it. float32 runs are compared with the reference evaluated in float64
on the same (float32-rounded) inputs, so the test measures the kernels' own error.
"""
from __future__ import annotations

import itertools
from typing import Any, Dict

import numpy as np
import pytest

import rnnkit.ops as ops
import rnnkit.reference as reference
from rnnkit import cells
from _cases import CELL_VARIANTS, VARIANTS, backward, forward, make_problem, projection

TOL = {np.float64: 1e-10, np.float32: 1e-5}
# H below, at and around a slice width, and beyond two slices. The slice width is
# slice_width<T>() = max(vector lanes, 4) (cpp/src/cells/recurrent_tile.hpp): 4 for generic
# (fp32 and fp64) and AVX2 fp64, 8 for AVX2 fp32 and AVX-512 fp64, 16 for AVX-512 fp32.
UNITS = [1, 7, 8, 9, 16, 33]


def _mask(batch: int, time: int, seed: int) -> np.ndarray:
    """Random keep-mask whose first step is masked for row 0 and whose row 1 is all masked."""
    rng = np.random.default_rng(seed)
    m = rng.random((batch, time)) > 0.3
    m[0, 0] = False
    if batch > 1:
        m[1, :] = False
    return m


def _assert_close(got: Dict[str, np.ndarray], want: Dict[str, np.ndarray], dtype: Any,
                  what: str) -> None:
    assert set(got) == set(want), what
    for k in want:
        assert got[k].dtype == dtype, f"{what}: {k} dtype {got[k].dtype}"
        assert got[k].shape == want[k].shape, f"{what}: {k} shape"
        scale = max(1.0, float(np.max(np.abs(want[k])))) if want[k].size else 1.0
        err = float(np.max(np.abs(got[k].astype(np.float64) - want[k]))) if want[k].size else 0.0
        assert err <= TOL[dtype] * scale, f"{what}: {k} error {err:.3g} (scale {scale:.3g})"


def _compare(cell: str, options: Dict[str, Any], p: Dict[str, np.ndarray], dtype: Any,
             *, use_bias: bool, use_state: bool, mask: Any, go_backwards: bool) -> None:
    """Forward + backward through both modules; ops in `dtype`, reference in float64."""
    cast = {k: v.astype(dtype) for k, v in p.items()}
    exact = {k: v.astype(np.float64) for k, v in cast.items()}  # reference sees the same values

    def run(mod, a):
        kwargs = dict(options, mask=mask, go_backwards=go_backwards, **projection(a))
        if use_state:
            kwargs["h0"] = a["h0"]
            if "c0" in a:
                kwargs["c0"] = a["c0"]
        outs, cache = forward(mod, cell, a["x"], a["kernel"], a["recurrent_kernel"],
                              a["bias"] if use_bias else None, **kwargs)
        grads = backward(mod, cell, cache, a["dy"], a["dh_last"], a.get("dc_last"))
        return outs, grads

    got_outs, got_grads = run(ops, cast)
    want_outs, want_grads = run(reference, exact)
    what = (f"{cell} {options} {dtype.__name__} B,T,I,H={p['x'].shape + (p['h0'].shape[1],)} "
            f"bias={use_bias} state={use_state} mask={mask is not None} back={go_backwards}")
    _assert_close(got_outs, want_outs, dtype, what)
    _assert_close(got_grads, want_grads, dtype, what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("units", UNITS)
@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_edge_grid(isa, variant, units: int, dtype) -> None:
    """Every option combination at B in {1, 3, 5}, T in {1, 4}, I != H."""
    _, cell, options = variant
    combos = itertools.product([False, True], repeat=4)  # bias, state, mask, go_backwards
    for n, (use_bias, use_state, masked, go_backwards) in enumerate(combos):
        batch, time = [(1, 1), (3, 4), (5, 1), (1, 4)][n % 4]
        features = units + 2 if n % 2 else max(1, units // 2) + 1  # odd and even I, never H
        p = make_problem(cell, options, batch=batch, time=time, features=features, units=units,
                         seed=100 * units + n)
        mask = _mask(batch, time, n) if masked else None
        _compare(cell, options, p, dtype, use_bias=use_bias, use_state=use_state, mask=mask,
                 go_backwards=go_backwards)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_several_blocks(isa, variant, dtype) -> None:
    """Batch spanning several row blocks plus a tail, H spanning several slices plus a tail."""
    _, cell, options = variant
    p = make_problem(cell, options, batch=11, time=9, features=13, units=37, seed=7, scale=0.3)
    _compare(cell, options, p, dtype, use_bias=True, use_state=True, mask=_mask(11, 9, 3),
             go_backwards=True)
    _compare(cell, options, p, dtype, use_bias=True, use_state=False, mask=None,
             go_backwards=False)


@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_saturating_inputs(isa, variant) -> None:
    """Large pre-activations (sigmoid/tanh saturated, exp far out of range) stay finite and agree."""
    _, cell, options = variant
    p = make_problem(cell, options, batch=3, time=6, features=5, units=9, seed=3, scale=0.5)
    p["x"] = p["x"] * 200.0
    for dtype in (np.float64, np.float32):
        _compare(cell, options, p, dtype, use_bias=True, use_state=True, mask=None,
                 go_backwards=False)


@pytest.mark.parametrize("order", ["fortran", "strided"])
@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_memory_layouts(isa, variant, order: str) -> None:
    """Fortran-ordered and sliced (non-contiguous) arrays give the contiguous results."""
    _, cell, options = variant
    p = make_problem(cell, options, batch=4, time=5, features=6, units=9, seed=11)

    def relayout(a: np.ndarray) -> np.ndarray:
        if order == "fortran":
            return np.asfortranarray(a)
        big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
        view = big[tuple(slice(None, None, 2) for _ in a.shape)]
        view[...] = a
        return view

    q = {k: relayout(v) for k, v in p.items()}
    assert not q["x"].flags.c_contiguous
    mask = np.asfortranarray(_mask(4, 5, 0))
    for a, m in ((p, _mask(4, 5, 0)), (q, mask)):
        a_outs, a_cache = forward(ops, cell, a["x"], a["kernel"], a["recurrent_kernel"], a["bias"],
                                  h0=a["h0"], c0=a.get("c0"), mask=m, **projection(a), **options)
        a_grads = backward(ops, cell, a_cache, a["dy"], a["dh_last"], a.get("dc_last"))
        if a is p:
            base = (a_outs, a_grads)
    for k in a_outs:
        np.testing.assert_array_equal(a_outs[k], base[0][k])
    for k in a_grads:
        np.testing.assert_array_equal(a_grads[k], base[1][k])


def test_training_false_matches_training_true(isa) -> None:
    """The inference path (no cache) computes the same outputs as the training path."""
    for _, cell, options in VARIANTS:
        p = make_problem(cell, options, batch=5, time=7, features=3, units=10, seed=5)
        outs_t, cache = forward(ops, cell, p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                                mask=_mask(5, 7, 1), **projection(p), **options)
        outs_i, none = forward(ops, cell, p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                               mask=_mask(5, 7, 1), training=False, **projection(p), **options)
        assert cache is not None and none is None
        for k in outs_t:
            np.testing.assert_array_equal(outs_t[k], outs_i[k])


def test_nan_propagates_without_crash(isa) -> None:
    """NaN in x reaches the outputs of its row like NumPy, and nothing raises."""
    p = make_problem("lstm", {}, batch=2, time=3, features=4, units=5, seed=2)
    x = p["x"].copy()
    x[0, 1, 2] = np.nan
    y, h, c, cache = ops.lstm_forward(x, p["kernel"], p["recurrent_kernel"], p["bias"])
    assert np.isnan(y[0, 1:]).all() and np.isfinite(y[0, 0]).all() and np.isfinite(y[1]).all()
    grads = ops.lstm_backward(cache, p["dy"])
    assert np.isnan(grads["kernel"]).any()


def test_backward_twice_is_identical() -> None:
    """Backward does not consume or modify the cache."""
    p = make_problem("gru", {}, batch=3, time=4, features=2, units=6, seed=9)
    _, cache = forward(ops, "gru", p["x"], p["kernel"], p["recurrent_kernel"], p["bias"])
    g1 = backward(ops, "gru", cache, p["dy"], p["dh_last"])
    g2 = backward(ops, "gru", cache, p["dy"], p["dh_last"])
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])


@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_caches_report_the_same_dtype_and_shape(variant) -> None:
    """Both modules' caches say what they hold the same way (they are swappable)."""
    _, cell, options = variant
    p = make_problem(cell, options, batch=3, time=4, features=5, units=6, seed=1)
    for dtype in (np.float32, np.float64):
        caches = [forward(mod, cell, p["x"].astype(dtype), p["kernel"].astype(dtype),
                          p["recurrent_kernel"].astype(dtype),
                          **{k: v.astype(dtype) for k, v in projection(p).items()}, **options)[1]
                  for mod in (ops, reference)]
        for c in caches:
            assert c.dtype == dtype
            assert tuple(c.shape) == (3, 4, p["h0"].shape[1])  # (B, T, width of h)


def _special_pattern(a: np.ndarray) -> np.ndarray:
    """0 finite, 1 NaN, 2 +inf, 3 -inf."""
    return np.select([np.isnan(a), np.isposinf(a), np.isneginf(a)], [1, 2, 3], 0)


# Values a caller's data may hold: infinities, magnitudes that overflow exp in either dtype
# (but whose sums stay finite, so no result depends on the order of a sum), and values
# between the exp clamp and exp's underflow (|x| in 88..104 for float32).
SPECIALS = np.array([np.inf, -np.inf, 1e30, -1e30, 1e4, -1e4, 95.0, -95.0, 100.0, -100.0,
                     800.0, -800.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_inf_and_huge_inputs_match_reference(isa, variant, dtype) -> None:
    """±inf and huge inputs (and NaN) give outputs and gradients with the reference's exact
    NaN/inf pattern, computed in the same dtype; the finite values agree. sigmoid(-inf) must
    be exactly 0 (a*(1-a)*inf is then NaN, as in NumPy), and sigmoid/tanh exactly ±1 where
    NumPy's are."""
    _, cell, options = variant
    for seed in range(12):
        p = make_problem(cell, options, batch=3, time=4, features=3, units=9, seed=seed)
        rng = np.random.default_rng(seed)
        for name in ("x", "h0", "c0", "bias"):
            if name not in p or (name != "x" and seed % 3):
                continue
            a = p[name]
            hit = rng.random(a.shape) < (0.15 if name == "x" else 0.1)
            a[hit] = rng.choice(SPECIALS, int(hit.sum()))
        if seed == 5:
            p["x"][1, 2, 0] = np.nan
        a = {k: v.astype(dtype) for k, v in p.items()}
        results = []
        for mod in (ops, reference):
            outs, cache = forward(mod, cell, a["x"], a["kernel"], a["recurrent_kernel"],
                                  a["bias"], h0=a["h0"], c0=a.get("c0"), **projection(a),
                                  **options)
            grads = backward(mod, cell, cache, a["dy"], a["dh_last"], a.get("dc_last"))
            results.append({**outs, **{"d_" + k: v for k, v in grads.items()}})
        got, want = results
        for k in want:
            what = f"{cell} {options} {dtype.__name__} seed={seed} {k}"
            np.testing.assert_array_equal(_special_pattern(got[k]), _special_pattern(want[k]),
                                          err_msg=what)
            finite = np.isfinite(want[k])
            scale = max(1.0, float(np.max(np.abs(want[k][finite]), initial=0.0)))
            np.testing.assert_allclose(got[k][finite], want[k][finite], rtol=0,
                                       atol=(1e-9 if dtype == np.float64 else 2e-4) * scale,
                                       err_msg=what)


def test_sigmoid_and_tanh_saturate_exactly(isa) -> None:
    """A one-unit LSTM whose gates see ±inf/NaN: c = f*c0 + i*g exposes sigmoid and tanh."""
    z = np.array([-np.inf, -1e30, -800.0, -110.0, 110.0, 800.0, 1e30, np.inf, np.nan])
    for dtype in (np.float32, np.float64):
        x = z.astype(dtype).reshape(-1, 1, 1)
        kernel = np.ones((1, 4), dtype)
        rk = np.zeros((1, 4), dtype)
        c0 = np.ones((len(z), 1), dtype)
        y, h, c, _ = ops.lstm_forward(x, kernel, rk, h0=np.zeros_like(c0), c0=c0)
        ry, rh, rc, _ = reference.lstm_forward(x, kernel, rk, h0=np.zeros_like(c0), c0=c0)
        np.testing.assert_array_equal(c, rc)  # f*1 + i*g: exact 0 / ±1 / NaN
        np.testing.assert_array_equal(_special_pattern(h), _special_pattern(rh))
        sig = np.array([0, 0, 0, 0, 1, 1, 1, 1, np.nan], dtype)
        np.testing.assert_array_equal(c[:, 0], (sig + sig * np.tanh(z)).astype(dtype)[:])


def _activation_cases():
    """(variant id, cell, options) for every activation in every role a cell has."""
    cases = []
    for vid, cell, options in CELL_VARIANTS:
        for role in cells.get(cell).activation_params:
            for name in cells.ACTIVATIONS:
                cases.append(pytest.param(cell, {**options, role: name},
                                          id=f"{vid}-{role}-{name}"))
    return cases


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cell, options", _activation_cases())
def test_every_activation_matches_reference(isa, cell, options, dtype) -> None:
    # Two slices and a ragged tail (H=19), initial states, a mask with masked first steps and
    # go_backwards: the activation code paths with every piece of sequence bookkeeping.
    # Weights stay small (0.4): unbounded gate activations (linear, elu, softplus, ... as
    # recurrent_activation) otherwise grow the state ~10x a step, and float32 then loses the
    # 1e-5 relative contract to conditioning, not to the kernels. The saturated regions of
    # every activation are covered by test_activations_ops.py and the Keras recordings.
    p = make_problem(cell, options, batch=3, time=6, features=5, units=19, seed=11, scale=0.4)
    _compare(cell, options, p, dtype, use_bias=True, use_state=True, mask=_mask(3, 6, 3),
             go_backwards=True)
