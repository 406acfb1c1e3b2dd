"""Streaming inference: feeding a sequence one step at a time (T=1 calls carrying the
states) gives bitwise the outputs of one call over the whole sequence, for every cell, on
every ISA, on the single-step path (H a whole number of SIMD slices: the recurrent kernel is
read in place and each thread's share of the product is computed before the step) and on
the packed path (H not a multiple of the slice width)."""
from __future__ import annotations

import numpy as np
import pytest

import rnnkit
import rnnkit.ops as ops
from _cases import VARIANTS, forward, make_problem, projection


@pytest.fixture
def restore_threads():
    saved = rnnkit.get_num_threads()
    yield
    rnnkit.set_num_threads(saved)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("units", [64, 70, 512], ids=["whole_slices", "partial_slice", "wide"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_step_by_step_equals_one_sequence_call(isa, variant, dtype, units, threads,
                                               restore_threads) -> None:
    _, cell, options = variant
    rnnkit.set_num_threads(threads)
    batch, steps = (2, 3) if units == 512 else (3, 4)
    p = {k: v.astype(dtype) for k, v in make_problem(
        cell, options, batch=batch, time=steps, features=24, units=units, seed=7,
        scale=0.3).items()}
    whole, _ = forward(ops, cell, p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                       h0=p["h0"], c0=p.get("c0"), training=False, **projection(p), **options)
    h, c = p["h0"], p.get("c0")
    for t in range(steps):
        out, _ = forward(ops, cell, np.ascontiguousarray(p["x"][:, t:t + 1]), p["kernel"],
                         p["recurrent_kernel"], p["bias"], h0=h, c0=c, training=False,
                         **projection(p), **options)
        np.testing.assert_array_equal(out["y"][:, 0], whole["y"][:, t], err_msg=f"step {t}")
        h, c = out["h_last"], out.get("c_last")
    np.testing.assert_array_equal(h, whole["h_last"])
    if c is not None:
        np.testing.assert_array_equal(c, whole["c_last"])
