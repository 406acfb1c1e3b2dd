"""rnnkit.ops against the NumPy reference, forward and forward+backward, per cell and shape.

Each pytest-benchmark group holds one (cell, pass, shape) with both implementations, so the
ratio is measured side by side in one run. Every benchmark asserts that its result agrees
with the other implementation's. CI runs these once with --benchmark-disable.

    pytest benchmarks --benchmark-enable --benchmark-group-by=group --benchmark-columns=mean,stddev,rounds
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

import numpy as np
import pytest

import rnnkit.ops as ops
import rnnkit.reference as reference
from rnnkit.cells import CELL_NAMES
from _cases import backward, forward, make_problem

# (name, B, T, I, H): the tutorial's shape and a mid-sized training shape (lstmp: P = H/2,
# _cases.proj_size).
SHAPES = [("tutorial", 8, 10, 1, 20), ("b32_t100_i128_h256", 32, 100, 128, 256)]
CELLS = [(cell, {}) for cell in CELL_NAMES]
IMPLS = {"ops": ops, "reference": reference}
DTYPE = np.float32


def _problem(cell: str, options: Dict[str, Any], shape) -> Dict[str, np.ndarray]:
    _, b, t, i, h = shape
    p = make_problem(cell, options, batch=b, time=t, features=i, units=h, seed=0, scale=0.1)
    return {k: v.astype(DTYPE) for k, v in p.items()}


def _runner(mod, cell: str, options: Dict[str, Any], p: Dict[str, np.ndarray],
            with_backward: bool) -> Callable[[], Tuple[Dict[str, np.ndarray], ...]]:
    def run():
        outs, cache = forward(mod, cell, p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                              projection_kernel=p.get("projection_kernel"),
                              training=with_backward, **options)
        if not with_backward:
            return (outs,)
        return outs, backward(mod, cell, cache, p["dy"], p["dh_last"], p.get("dc_last"))
    return run


def _assert_agree(got, want) -> None:
    for g, w in zip(got, want):
        for k in w:
            scale = max(1.0, float(np.abs(w[k]).max()))
            assert float(np.abs(g[k] - w[k]).max()) <= 1e-4 * scale, k


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("with_backward", [False, True], ids=["forward", "forward+backward"])
@pytest.mark.parametrize("shape", SHAPES, ids=[s[0] for s in SHAPES])
@pytest.mark.parametrize("cell,options", CELLS, ids=[c[0] for c in CELLS])
def test_cell(benchmark, cell, options, shape, with_backward, impl) -> None:
    p = _problem(cell, options, shape)
    benchmark.group = f"{cell} {'fwd+bwd' if with_backward else 'fwd'} {shape[0]}"
    result = benchmark(_runner(IMPLS[impl], cell, options, p, with_backward))
    other = "reference" if impl == "ops" else "ops"
    _assert_agree(result, _runner(IMPLS[other], cell, options, p, with_backward)())
