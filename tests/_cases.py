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
]
# One variant per cell / bias layout, for tests that do not depend on the activation.
CELL_VARIANTS = [v for v in VARIANTS if v[0] in ("simple_rnn_tanh", "lstm", "gru_reset_after", "gru_reset_before")]


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
    """Random float64 inputs, weights, states and upstream gradients for one cell."""
    rng = np.random.default_rng(seed)
    g = GATES[cell]

    def u(*shape: int) -> np.ndarray:
        return rng.uniform(-scale, scale, size=shape)

    p = {
        "x": rng.uniform(-1, 1, size=(batch, time, features)),
        "kernel": u(features, g * units),
        "recurrent_kernel": u(units, g * units),
        "bias": u(*bias_shape(cell, units, options)),
        "h0": u(batch, units),
        "dy": rng.normal(size=(batch, time, units)),
        "dh_last": rng.normal(size=(batch, units)),
    }
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
    **options: Any,
) -> Tuple[Dict[str, np.ndarray], Any]:
    """Call ``mod.<cell>_forward``; returns ({"y", "h_last"[, "c_last"]}, cache)."""
    fwd = getattr(mod, f"{cell}_forward")
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
    if cell == "lstm":
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
