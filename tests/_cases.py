"""Test helpers: cell variants, random problems, and uniform calls into an implementation."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Optional, Tuple

import numpy as np

from rnnkit import cells

# Keras 3 recordings of single layers, kept in the repository (see fixtures/keras/README.md).
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures" / "keras"

GATES = cells.GATE_COUNTS  # {cell: G}

# (id, cell, cell-specific forward options)
VARIANTS = [
    ("simple_rnn_tanh", "simple_rnn", {"activation": "tanh"}),
    ("simple_rnn_relu", "simple_rnn", {"activation": "relu"}),
    ("simple_rnn_linear", "simple_rnn", {"activation": "linear"}),
    ("lstm", "lstm", {}),
    ("gru_reset_after", "gru", {"reset_after": True}),
    ("gru_reset_before", "gru", {"reset_after": False}),
    ("lstmp", "lstmp", {}),
]
# One variant per cell / bias layout, for tests that do not depend on the activation.
CELL_VARIANTS = [v for v in VARIANTS if v[0] in ("simple_rnn_tanh", "lstm", "gru_reset_after", "gru_reset_before", "lstmp")]


def projection(p: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """``{"projection_kernel": ...}`` when problem ``p`` has one (lstmp), else ``{}``: spread
    into a :func:`forward` call with the options."""
    return {"projection_kernel": p["projection_kernel"]} if "projection_kernel" in p else {}


def proj_size(cell: str, units: int) -> Optional[int]:
    """P of the problems of a projected cell (half the units, at least 1); None otherwise."""
    return max(1, units // 2) if cells.get(cell).projected else None


def bias_shape(cell: str, units: int, options: Dict[str, Any]) -> Tuple[int, ...]:
    return cells.bias_shape(cell, units, options.get("reset_after", True))


def make_problem(
    cell: str,
    options: Dict[str, Any],
    *,
    batch: int = 3,
    time: int = 5,
    features: int = 4,
    units: int = 6,
    seed: int = 0,
    scale: float = 0.5,
) -> Dict[str, np.ndarray]:
    """Random float64 inputs, weights, states and upstream gradients for one cell.

    A projected cell (lstmp) also gets ``projection_kernel (units, P)``, P = proj_size(); its
    recurrent_kernel, h0, dy and dh_last are P wide.
    """
    rng = np.random.default_rng(seed)
    g = GATES[cell]
    p_size = proj_size(cell, units)
    s = units if p_size is None else p_size  # the width of h

    def u(*shape: int) -> np.ndarray:
        return rng.uniform(-scale, scale, size=shape)

    p = {
        "x": rng.uniform(-1, 1, size=(batch, time, features)),
        "kernel": u(features, g * units),
        "recurrent_kernel": u(s, g * units),
        "bias": u(*bias_shape(cell, units, options)),
        "h0": u(batch, s),
        "dy": rng.normal(size=(batch, time, s)),
        "dh_last": rng.normal(size=(batch, s)),
    }
    if p_size is not None:
        p["projection_kernel"] = u(units, p_size)
    if "c" in cells.state_names(cell):
        p["c0"] = u(batch, units)
        p["dc_last"] = rng.normal(size=(batch, units))
    return p


def forward(
    mod: ModuleType,
    cell: str,
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any = None,
    *,
    h0: Any = None,
    c0: Any = None,
    projection_kernel: Any = ...,
    **options: Any,
) -> Tuple[Dict[str, np.ndarray], Any]:
    """Call ``mod.<cell>_forward``; returns ({"y", "h_last"[, "c_last"]}, cache).

    ``projection_kernel`` is required for a projected cell (lstmp), which takes it after
    recurrent_kernel (None is passed on: the modules reject it).
    """
    fwd = getattr(mod, f"{cell}_forward")
    if cells.get(cell).projected:
        assert projection_kernel is not ..., f"{cell} needs projection_kernel"
        y, h, c, cache = fwd(x, kernel, recurrent_kernel, projection_kernel, bias, h0=h0, c0=c0,
                             **options)
        return {"y": y, "h_last": h, "c_last": c}, cache
    assert projection_kernel is None or projection_kernel is ..., "projection_kernel is only for lstmp"
    if cell == "lstm":
        y, h, c, cache = fwd(x, kernel, recurrent_kernel, bias, h0=h0, c0=c0, **options)
        return {"y": y, "h_last": h, "c_last": c}, cache
    assert c0 is None, "c0 is only for lstm"
    y, h, cache = fwd(x, kernel, recurrent_kernel, bias, h0=h0, **options)
    return {"y": y, "h_last": h}, cache


def backward(
    mod: ModuleType,
    cell: str,
    cache: Any,
    dy: Any = None,
    dh_last: Any = None,
    dc_last: Any = None,
) -> Dict[str, np.ndarray]:
    """Call ``mod.<cell>_backward`` with positional upstream gradients."""
    bwd = getattr(mod, f"{cell}_backward")
    if "c" in cells.state_names(cell):
        return bwd(cache, dy, dh_last, dc_last)
    assert dc_last is None, "dc_last is only for lstm"
    return bwd(cache, dy, dh_last)


def loss(outs: Dict[str, np.ndarray], dy: np.ndarray, dh_last: np.ndarray,
         dc_last: Optional[np.ndarray] = None) -> float:
    """L = sum(y*dy) + sum(h_last*dh_last) [+ sum(c_last*dc_last)]."""
    total = float(np.sum(outs["y"] * dy) + np.sum(outs["h_last"] * dh_last))
    if "c_last" in outs:
        total += float(np.sum(outs["c_last"] * dc_last))
    return total


def numeric_grad(f: Any, arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() w.r.t. every element of arr (perturbed in place,
    restored after each element)."""
    g = np.zeros_like(arr)
    flat, gflat = arr.reshape(-1), g.reshape(-1)
    for k in range(flat.size):
        orig = flat[k]
        flat[k] = orig + eps
        lp = f()
        flat[k] = orig - eps
        lm = f()
        flat[k] = orig
        gflat[k] = (lp - lm) / (2 * eps)
    return g
