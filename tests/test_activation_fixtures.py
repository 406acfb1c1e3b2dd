"""Every implementation reproduces Keras 3 recurrent layers with non-default activations.

The recordings are ``tests/fixtures/keras_activations/keras_*.npz`` (real Keras 3.15.1,
TensorFlow 2.21.0 backend, float64; see the README there). Each file is one SimpleRNN, LSTM or
GRU (``reset_after`` True or False) with ``activation`` and, for LSTM and GRU,
``recurrent_activation`` named in its ``meta``, over every activation rnnkit accepts: tanh,
sigmoid, hard_sigmoid (Keras 3's relu6(x+3)/6), relu, relu6, elu, selu, softsign, softplus,
linear, silu, gelu (exact erf form) and hard_sigmoid_keras2 (Keras 2's clip(0.2x+0.5, 0, 1)).

Both ``rnnkit.reference`` and ``rnnkit.ops`` (every compiled SIMD path) are called with the
``activation=`` / ``recurrent_activation=`` keywords plus the file's bias, initial states,
mask, ``go_backwards`` and ``reset_after``, and must reproduce y, h_last, c_last and every
gradient of ``L = sum(y*dy) + sum(h_last*dh_last) [+ sum(c_last*dc_last)]``.

Accuracy contract: max |got - want| <= tol * max |want| per array, tol = 1e-12 in float64 and
1e-5 in float32 (inputs cast to float32, compared with the float64 Keras results; Keras itself
in float32 stays within 1e-6 on these inputs, the generator checked it). Files with gelu are
held to 1e-7 in float64: TensorFlow's float64 gelu uses 1/sqrt(2) rounded to float32, which
moves the recordings up to 1.9e-8 (relative) away from gelu's definition (the file's meta
``gelu_exact_rel_dev`` says by how much); an implementation of the exact formula and one that
copies TensorFlow's constant both pass.

No pre-activation in these files lies within 1e-3 of an activation's kink, so the gradients
do not depend on the derivative chosen at a kink.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from _cases import backward, forward

ACT_FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures" / "keras_activations"
ACT_FIXTURE_FILES = sorted(p.name for p in ACT_FIXTURES_DIR.glob("keras_*.npz"))

# Every activation rnnkit offers must have Keras recordings in every role.
from rnnkit.cells import ACTIVATIONS  # noqa: E402
TOL = {np.float64: 1e-12, np.float32: 1e-5}
GELU_F64_TOL = 1e-7


def _load(name: str):
    with np.load(ACT_FIXTURES_DIR / name, allow_pickle=False) as npz:
        d = {k: npz[k] for k in npz.files}
    return d, json.loads(str(d.pop("meta")))


def _variant(meta: dict) -> str:
    if meta["cell"] == "gru":
        return "gru" if meta["reset_after"] else "gru_reset_before"
    return meta["cell"]


def test_activation_fixtures_cover_every_activation():
    """Each activation is recorded as `activation` of every cell variant, and as
    `recurrent_activation` of LSTM and both GRU variants."""
    assert ACT_FIXTURES_DIR.is_dir(), f"missing {ACT_FIXTURES_DIR}"
    assert ACT_FIXTURE_FILES, f"no keras_*.npz in {ACT_FIXTURES_DIR}"
    as_act, as_rec = set(), set()
    for name in ACT_FIXTURE_FILES:
        _, meta = _load(name)
        assert meta["activation"] in ACTIVATIONS, name
        as_act.add((_variant(meta), meta["activation"]))
        if meta["cell"] == "simple_rnn":
            assert meta["recurrent_activation"] is None, name
        else:
            assert meta["recurrent_activation"] in ACTIVATIONS, name
            as_rec.add((_variant(meta), meta["recurrent_activation"]))
    for a in ACTIVATIONS:
        for v in ("simple_rnn", "lstm", "gru", "gru_reset_before"):
            assert (v, a) in as_act, f"no {v} fixture with activation={a}"
        for v in ("lstm", "gru", "gru_reset_before"):
            assert (v, a) in as_rec, f"no {v} fixture with recurrent_activation={a}"


def _check(name: str, got: np.ndarray, want: np.ndarray, dtype, tol: float) -> None:
    assert got.dtype == dtype, f"{name}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    scale = float(np.abs(want).max())
    err = float(np.abs(got.astype(np.float64) - want).max())
    assert err <= tol * scale, f"{name}: max abs error {err:.3e} > {tol:g} * {scale:.3e}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("fixture_name", ACT_FIXTURE_FILES)
def test_matches_keras_activations(impl, fixture_name, dtype):
    d, meta = _load(fixture_name)
    cell = meta["cell"]
    options = {"go_backwards": bool(meta["go_backwards"]), "activation": meta["activation"]}
    if cell != "simple_rnn":
        options["recurrent_activation"] = meta["recurrent_activation"]
    if cell == "gru":
        options["reset_after"] = bool(meta["reset_after"])
    if "mask" in d:
        options["mask"] = d["mask"]
    tol = TOL[dtype]
    if dtype == np.float64 and "gelu" in (meta["activation"], meta["recurrent_activation"]):
        tol = GELU_F64_TOL

    def cast(key):
        return d[key].astype(dtype) if key in d else None

    outs, cache = forward(
        impl, cell, cast("x"), cast("kernel"), cast("recurrent_kernel"), cast("bias"),
        h0=cast("h0"), c0=cast("c0"), **options,
    )
    assert set(outs) == ({"y", "h_last", "c_last"} if cell == "lstm" else {"y", "h_last"})
    for key in sorted(outs):
        _check(key, outs[key], d[key], dtype, tol)

    grads = backward(impl, cell, cache, cast("dy"), cast("dh_last"), cast("dc_last"))
    expected_keys = {"x", "kernel", "recurrent_kernel", "bias", "h0"} | ({"c0"} if cell == "lstm" else set())
    assert set(grads) == expected_keys
    for key in sorted(grads):
        if "d" + key in d:  # dh0/dc0 are recorded only when an initial state was given
            _check("d" + key, grads[key], d["d" + key], dtype, tol)
        else:
            assert key in ("h0", "c0")
            assert grads[key].dtype == dtype and grads[key].shape == outs["h_last"].shape
