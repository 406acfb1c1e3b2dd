"""Random benchmark problems: inputs, weights, initial states and upstream gradients.

Weights follow PyTorch's default ``U(-1/sqrt(H), 1/sqrt(H))`` (activations stay in range at
every size), inputs are ``N(0, 1)``, ``dy`` is ``N(0, 1)`` and the gradients w.r.t. the last
states (``dh_last``, ``dc_last``) are zeros, which is what PyTorch computes when only ``y``
receives a gradient. GRUs use Keras 3's default ``reset_after=True`` (bias ``(2, 3H)``),
SimpleRNNs ``tanh``. LSTMP (LSTM with projection) uses ``P = H/2`` (``shapes.proj_size``):
its recurrent_kernel is ``(P, 4H)``, ``h0``, ``dy``, ``dh_last`` are P wide.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, Optional

import numpy as np

from .. import cells
from .shapes import Shape, proj_size

__all__ = ["Problem", "make_problem"]


@dataclass(frozen=True)
class Problem:
    """One benchmark problem in rnnkit's (Keras) layout; arrays are C-contiguous."""

    cell: str
    shape: Shape
    x: np.ndarray                   # (B, T, I)
    kernel: np.ndarray              # (I, G*H)
    recurrent_kernel: np.ndarray    # (H, G*H)
    bias: np.ndarray                # (G*H,); GRU (2, 3H)
    h0: np.ndarray                  # (B, H)
    dy: np.ndarray                  # (B, T, H)
    dh_last: np.ndarray             # (B, H) zeros
    c0: Optional[np.ndarray] = None       # LSTM only, (B, H)
    dc_last: Optional[np.ndarray] = None  # LSTM only, (B, H) zeros
    options: Dict[str, Any] = field(default_factory=dict)  # cell options for rnnkit.ops
    projection_kernel: Optional[np.ndarray] = None  # LSTMP only, (H, P)

    def astype(self, dtype: Any) -> "Problem":
        """The same problem with every array cast to ``dtype`` (e.g. float64 for an oracle)."""
        cast = {k: (None if v is None else np.ascontiguousarray(v, dtype=dtype))
                for k, v in self.arrays().items()}
        return replace(self, **cast)

    def arrays(self) -> Dict[str, Optional[np.ndarray]]:
        """All array fields by name."""
        names = ("x", "kernel", "recurrent_kernel", "bias", "h0", "dy", "dh_last", "c0", "dc_last",
                 "projection_kernel")
        return {n: getattr(self, n) for n in names}


def make_problem(cell: str, shape: Shape, *, dtype: Any = np.float32, seed: int = 0) -> Problem:
    """A reproducible random problem for ``cell`` at ``shape``."""
    spec = cells.get(cell)  # ValueError naming the known cells
    rng = np.random.default_rng(seed)
    t, b, i, h = shape.T, shape.B, shape.I, shape.H
    g = spec.gate_count
    s = 1.0 / np.sqrt(h)

    def u(*dims: int) -> np.ndarray:
        return np.ascontiguousarray(rng.uniform(-s, s, size=dims), dtype=dtype)

    def n(*dims: int) -> np.ndarray:
        return np.ascontiguousarray(rng.standard_normal(size=dims), dtype=dtype)

    bias_shape = spec.bias_shape(h, reset_after=True)
    has_c = "c" in spec.states
    p = proj_size(cell, h)
    sw = p or h  # the width of h
    return Problem(
        cell=cell, shape=shape, x=n(b, t, i), kernel=u(i, g * h), recurrent_kernel=u(sw, g * h),
        bias=u(*bias_shape), h0=u(b, sw), dy=n(b, t, sw), dh_last=np.zeros((b, sw), dtype),
        c0=u(b, h) if has_c else None,
        dc_last=np.zeros((b, h), dtype) if has_c else None,
        projection_kernel=u(h, p) if p else None,
        options={"reset_after": True} if spec.has_reset_after else
                ({"activation": spec.activation} if cell == "simple_rnn" else {}),
    )
