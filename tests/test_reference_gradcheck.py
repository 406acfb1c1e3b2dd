"""Float64 central-difference check of every gradient of the NumPy reference.

Every cell variant x go_backwards x mask x initial state x bias, on B=3, T=3, I=3, H=4.
The mask has a masked first step, a masked step after a kept one, and an all-masked row.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import pytest

from _cases import VARIANTS, backward, forward, loss, make_problem, numeric_grad, projection
from rnnkit import reference

EPS = 1e-6
RTOL = 1e-6
SHAPE = dict(batch=3, time=3, features=3, units=4)
MASK = np.array(
    [
        [False, True, False],  # first step masked; masked step after a kept one
        [False, False, False],  # all masked: y = 0, h_last = h0
        [True, False, True],
    ]
)


def _relu_safe(cell: str, options: Dict[str, Any], p: Dict[str, np.ndarray], kw: Dict[str, Any]) -> bool:
    """True when no relu pre-activation is within reach of the finite-difference step."""
    if options.get("activation") != "relu":
        return True
    _, cache = forward(reference, cell, p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                       h0=p["h0"], **projection(p), **kw)
    return bool(np.abs(cache.pre).min() > 1e-3)


@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zerostate", "state"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["fwd", "bwd"])
@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_gradients_match_finite_differences(variant, go_backwards, masked, with_state, with_bias):
    _, cell, options = variant
    kw = dict(options, go_backwards=go_backwards, mask=MASK if masked else None)
    # relu has kinks: take the first seed whose pre-activations keep clear of 0.
    for seed in range(50):
        p = make_problem(cell, options, seed=seed, **SHAPE)
        if _relu_safe(cell, options, p, kw):
            break
    else:
        pytest.fail("no seed keeps relu pre-activations away from 0")

    if not with_state:  # h0/c0 = None is the zero state; its gradient is still checked
        p["h0"] = np.zeros_like(p["h0"])
        if "c0" in p:
            p["c0"] = np.zeros_like(p["c0"])
    states = ["h0", "c0"] if "c0" in p else ["h0"]
    params = (["x", "kernel", "recurrent_kernel"] + list(projection(p))
              + (["bias"] if with_bias else []) + states)
    up = dict(dy=p["dy"], dh_last=p["dh_last"], dc_last=p.get("dc_last"))

    def call(training: bool):
        return forward(
            reference, cell, p["x"], p["kernel"], p["recurrent_kernel"],
            p["bias"] if with_bias else None,
            h0=p["h0"] if with_state else None,
            c0=p["c0"] if (with_state and "c0" in p) else None,
            training=training, **projection(p), **kw,
        )

    outs, cache = call(True)
    grads = backward(reference, cell, cache, **up)
    assert set(grads) == set(params)

    def f() -> float:
        # Always pass the states explicitly here so they can be perturbed.
        o, _ = forward(
            reference, cell, p["x"], p["kernel"], p["recurrent_kernel"],
            p["bias"] if with_bias else None,
            h0=p["h0"], c0=p.get("c0"), training=False, **projection(p), **kw,
        )
        return loss(o, **up)

    for name in params:
        num = numeric_grad(f, p[name], EPS)
        ana = grads[name]
        assert ana.shape == p[name].shape and ana.dtype == np.float64
        scale = max(float(np.abs(ana).max()), 1e-8)
        err = float(np.abs(num - ana).max())
        assert err <= RTOL * scale, f"d{name}: max abs error {err:.3e}, max |grad| {scale:.3e}"
