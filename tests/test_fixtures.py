"""Every implementation reproduces the Keras 3 fixtures (forward and gradients), in both dtypes.

Accuracy contract: max |got - want| <= tol * max |want| per array, tol = 1e-10 (float64),
1e-5 (float32; inputs cast to float32, compared with the float64 Keras results).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from _cases import CELL_VARIANTS, FIXTURES_DIR, backward, forward, make_problem, projection

FIXTURE_FILES = sorted(p.name for p in FIXTURES_DIR.glob("keras_*.npz"))
TOL = {np.float64: 1e-10, np.float32: 1e-5}


def test_fixtures_present(fixtures_dir):
    names = sorted(p.name for p in fixtures_dir.glob("keras_*.npz"))
    assert names, f"no keras_*.npz in {fixtures_dir}"
    for cell in ("simple_rnn", "lstm", "gru"):
        assert any(n.startswith(f"keras_{cell}_") for n in names), f"no fixture for {cell}"


def _check(name: str, got: np.ndarray, want: np.ndarray, dtype) -> None:
    assert got.dtype == dtype, f"{name}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    scale = float(np.abs(want).max())
    err = float(np.abs(got.astype(np.float64) - want).max())
    assert err <= TOL[dtype] * scale, f"{name}: max abs error {err:.3e} > {TOL[dtype]:g} * {scale:.3e}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("fixture_name", FIXTURE_FILES)
def test_matches_keras(impl, fixture_name, dtype, fixtures_dir):
    with np.load(fixtures_dir / fixture_name, allow_pickle=False) as npz:
        d = {k: npz[k] for k in npz.files}
    meta = json.loads(str(d["meta"]))
    cell = meta["cell"]
    options = {"go_backwards": bool(meta["go_backwards"])}
    if cell == "simple_rnn":
        options["activation"] = meta.get("activation", "tanh")
    if cell == "gru":
        options["reset_after"] = bool(meta.get("reset_after", True))
    if "mask" in d:
        options["mask"] = d["mask"]

    def cast(key):
        return d[key].astype(dtype) if key in d else None

    outs, cache = forward(
        impl, cell, cast("x"), cast("kernel"), cast("recurrent_kernel"), cast("bias"),
        h0=cast("h0"), c0=cast("c0"), **options,
    )
    for key in ("y", "h_last", "c_last"):
        if key in d or key in outs:
            _check(key, outs[key], d[key], dtype)

    grads = backward(impl, cell, cache, cast("dy"), cast("dh_last"), cast("dc_last"))
    expected_keys = {"x", "kernel", "recurrent_kernel", "bias", "h0"} | ({"c0"} if cell == "lstm" else set())
    assert set(grads) == expected_keys
    for key in sorted(grads):
        g = grads[key]
        assert g.dtype == dtype, f"d{key}: dtype {g.dtype}"
        if "d" + key in d:  # the fixtures carry dh0/dc0 only when an initial state was given
            _check("d" + key, g, d["d" + key], dtype)
        else:
            assert key in ("h0", "c0") and g.shape == outs["h_last"].shape


# --------------------------------------------------------------------------------------------
# Keras sequence semantics the fixtures do not reach (their masks never mask a first step and
# have no all-masked row): checked against unmasked runs of the same implementation.

SEM_MASK = np.array(
    [
        [False, True, False, True, False],  # first step masked, gaps, trailing masked step
        [False, False, False, False, False],  # never kept: y = 0, states = initial states
        [True, True, False, False, True],
    ]
)


def _problem(cell, options):
    p = make_problem(cell, options, batch=3, time=5, features=4, units=6, seed=3)
    states = {"h0": p["h0"]}
    if "c0" in p:
        states["c0"] = p["c0"]
    return p, states


@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=[v[0] for v in CELL_VARIANTS])
def test_mask_semantics(impl, variant):
    """Masked steps carry the states; y repeats the last kept output, zeros before any."""
    _, cell, options = variant
    p, states = _problem(cell, options)
    options = {**options, **projection(p)}
    outs, _ = forward(impl, cell, p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                      mask=SEM_MASK, **states, **options)
    for b in range(3):
        kept = np.flatnonzero(SEM_MASK[b])
        row_states = {k: v[b : b + 1] for k, v in states.items()}
        if kept.size:
            sub, _ = forward(impl, cell, p["x"][b : b + 1, kept], p["kernel"],
                             p["recurrent_kernel"], p["bias"], **row_states, **options)
        for t in range(5):
            done = np.flatnonzero(kept <= t)
            want = sub["y"][0, done[-1]] if done.size else np.zeros(outs["y"].shape[2])
            np.testing.assert_allclose(outs["y"][b, t], want, rtol=0, atol=1e-13, err_msg=f"y[{b}, {t}]")
        for key, init in (("h_last", "h0"), ("c_last", "c0")):
            if key in outs:
                want = sub[key][0] if kept.size else row_states[init][0]
                np.testing.assert_allclose(outs[key][b], want, rtol=0, atol=1e-13, err_msg=key)


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=[v[0] for v in CELL_VARIANTS])
def test_go_backwards_semantics(impl, variant, masked):
    """go_backwards = the time-reversed sequence (and mask); y in processing order; dx in input order."""
    _, cell, options = variant
    p, states = _problem(cell, options)
    options = {**options, **projection(p)}
    mask = SEM_MASK if masked else None
    up = {"dy": p["dy"], "dh_last": p["dh_last"], "dc_last": p.get("dc_last")}
    outs, cache = forward(impl, cell, p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                          mask=mask, go_backwards=True, **states, **options)
    grads = backward(impl, cell, cache, **up)
    rev_outs, rev_cache = forward(impl, cell, p["x"][:, ::-1], p["kernel"], p["recurrent_kernel"],
                                  p["bias"], mask=None if mask is None else mask[:, ::-1],
                                  **states, **options)
    rev_grads = backward(impl, cell, rev_cache, **up)
    for key in outs:
        np.testing.assert_allclose(outs[key], rev_outs[key], rtol=0, atol=1e-13, err_msg=key)
    rev_grads["x"] = rev_grads["x"][:, ::-1]
    for key in grads:
        np.testing.assert_allclose(grads[key], rev_grads[key], rtol=0, atol=1e-12, err_msg=key)
