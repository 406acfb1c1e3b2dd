"""Agreement checks between runners' results.

The error of one array is ``max|got - want| / max|want|`` (relative to the largest magnitude,
rnnkit's accuracy contract); a comparison fails when any array exceeds the tolerance or a key
the runner returned is missing from the oracle's results.
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple

import numpy as np

__all__ = ["TOL_VS_FP64", "TOL_VS_FP32", "Comparison", "compare"]

# rnnkit's fp32 contract vs a float64 oracle is 1e-5 of the largest magnitude; allow 2x.
TOL_VS_FP64 = 2e-5
# Two independent fp32 implementations (rnnkit vs PyTorch) each carry their own rounding.
TOL_VS_FP32 = 1e-4


class Comparison(NamedTuple):
    """Outcome of :func:`compare`: ``ok``, the worst relative error and its key, and problems."""

    ok: bool
    max_err: float
    worst: str
    problems: List[str]

    def describe(self) -> str:
        """One line: ``max rel err 3.1e-07 (d_x)`` or the list of problems."""
        if self.ok:
            return f"max rel err {self.max_err:.1e} ({self.worst})"
        return "; ".join(self.problems)


def compare(got: Dict[str, np.ndarray], want: Dict[str, np.ndarray], tol: float) -> Comparison:
    """Compare every array in ``got`` with the same key in ``want``.

    Args:
        got: results of the runner under test.
        want: results of the oracle (may hold more keys, e.g. gradients for a ``fwd`` check).
        tol: largest allowed ``max|got - want| / max|want|`` per array.
    """
    problems: List[str] = []
    worst, max_err = "", 0.0
    for key, g in got.items():
        if key not in want:
            problems.append(f"{key}: missing from the oracle's results")
            continue
        w = np.asarray(want[key], dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        if g.shape != w.shape:
            problems.append(f"{key}: shape {g.shape} != {w.shape}")
            continue
        if not np.all(np.isfinite(g)):
            problems.append(f"{key}: non-finite values")
            continue
        scale = float(np.abs(w).max()) if w.size else 0.0
        err = float(np.abs(g - w).max()) / scale if scale > 0 else float(np.abs(g).max(initial=0.0))
        if err > max_err or not worst:
            worst, max_err = key, err
        if err > tol:
            problems.append(f"{key}: max rel err {err:.2e} > {tol:.0e}")
    return Comparison(not problems, max_err, worst, problems)
