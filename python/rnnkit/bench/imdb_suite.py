"""The IMDB model rows: verify rnnkit against PyTorch / Keras on the same weights, then time
one training step, ``predict`` and the direct call of each framework.

Verification (before any timing, every framework from rnnkit's initial weights):

1. ``predict`` probabilities agree with rnnkit's within :data:`PREDICT_TOL`.
2. The gradients of the batch loss (all 15 weight arrays) agree with the oracle's within
   :data:`GRAD_TOL` of each array's largest magnitude -- the oracle is PyTorch's autograd when
   PyTorch is importable, else the same rnnkit model on the NumPy reference kernels
   (``rnnkit.backend.use_kernels("reference")``). rnnkit and Keras read their gradients with one
   plain SGD step (:func:`rnnkit.bench.imdb.gradients_by_sgd_step`).
3. The first ``train_step`` losses (before any update) agree within :data:`LOSS_TOL`
   (relative) and are finite. The second step's losses are recorded, not checked: Keras and
   rnnkit put Adam's epsilon inside the bias correction, PyTorch outside, so PyTorch's first
   update differs for tiny gradients (mostly embedding rows).

Timing: :func:`rnnkit.bench.timing.measure` with at least :data:`MIN_REPEATS` calls; the
training step keeps training on the same batch.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .imdb import OPERATIONS, WEIGHT_NAMES, ImdbFramework, ImdbSize, RnnkitImdb, make_batch
from .timing import measure
from .verify import TOL_VS_FP32, compare

__all__ = ["GRAD_TOL", "LOSS_TOL", "PREDICT_TOL", "MIN_REPEATS", "FRAMEWORKS", "run_imdb"]

# Whole-model gradients: 2 stacked bidirectional LSTMs, BPTT sums over T steps and B rows in
# different orders per framework; fp32.
GRAD_TOL = 1e-3
LOSS_TOL = 1e-5
PREDICT_TOL = TOL_VS_FP32
MIN_REPEATS = 5
FRAMEWORKS = ("rnnkit", "torch", "keras")  # report order


def _frameworks(size: ImdbSize, torch: Any, keras: Any, threads: int,
                seed: int) -> Dict[str, ImdbFramework]:
    batch = make_batch(size, seed)
    out: Dict[str, ImdbFramework] = {"rnnkit": RnnkitImdb(size, batch, seed=seed)}
    weights = out["rnnkit"].weights()  # type: ignore[attr-defined]
    if torch is not None:
        from .imdb_torch import TorchImdb
        out["torch"] = TorchImdb(size, batch, weights, threads)
    if keras is not None:
        from .imdb_keras import KerasImdb
        out["keras"] = KerasImdb(keras, size, batch, weights)
    return out


def _reference_gradients(rnnkit_fw: ImdbFramework) -> List[np.ndarray]:
    from .. import backend
    with backend.use_kernels("reference"):
        return rnnkit_fw.gradients()


def verify_imdb(fws: Dict[str, ImdbFramework], log: Callable[[str], None]) -> Dict[str, Any]:
    """Run the checks in the module docstring; returns the check record (``ok``, ``oracle``,
    ``max_rel_err`` of the gradients, ``problems``, ``first_loss`` / ``second_loss`` per
    framework). Leaves every framework after two training steps."""
    rec: Dict[str, Any] = {"ok": True, "problems": [], "max_rel_err": 0.0}

    def fail(msg: str) -> None:
        rec["ok"] = False
        rec["problems"].append(msg)
        log(f"!!! MISMATCH imdb: {msg}")

    want_p = fws["rnnkit"].predict()
    for name, fw in fws.items():
        got = {"predict": fw.predict(), "call": fw.call()}
        cmp = compare(got, {"predict": want_p, "call": want_p}, PREDICT_TOL)
        if not cmp.ok:
            fail(f"{name} predict/call vs rnnkit predict: {cmp.describe()}")

    if "torch" in fws:
        rec["oracle"], want_g = "torch", fws["torch"].gradients()
    else:
        rec["oracle"], want_g = "reference", _reference_gradients(fws["rnnkit"])
    want = dict(zip(WEIGHT_NAMES, want_g))
    for name, fw in fws.items():
        if name == rec["oracle"]:
            continue
        cmp = compare(dict(zip(WEIGHT_NAMES, fw.gradients())), want, GRAD_TOL)
        rec["max_rel_err"] = max(rec["max_rel_err"], cmp.max_err)
        if not cmp.ok:
            fail(f"{name} gradients vs {rec['oracle']}: {cmp.describe()}")

    rec["first_loss"] = {name: fw.train_step() for name, fw in fws.items()}
    rec["second_loss"] = {name: fw.train_step() for name, fw in fws.items()}
    base = rec["first_loss"]["rnnkit"]
    for name, loss in rec["first_loss"].items():
        if not math.isfinite(loss) or not math.isfinite(rec["second_loss"][name]):
            fail(f"{name}: non-finite loss")
        elif abs(loss - base) > LOSS_TOL * abs(base):
            fail(f"{name} first-step loss {loss:.7g} vs rnnkit {base:.7g}")
    return rec


def run_imdb(size: ImdbSize, torch: Any, keras: Any, threads: int, budget: float, settle: float,
             log: Callable[[str], None], seed: int = 0) -> Dict[str, Any]:
    """Verify, then time :data:`~rnnkit.bench.imdb.OPERATIONS` for each framework present.

    Args:
        torch: the torch module, or None to leave PyTorch out.
        keras: the keras module (:func:`rnnkit.bench.imdb_keras.keras_status`), or None.
        threads: PyTorch's thread count (rnnkit's is already set).

    Returns:
        ``{"size": {...}, "frameworks": [...], "check": {...}, "results": [...]}``; one result
        per operation with ``times`` (per framework ``ms``, ``best_ms``, ``repeats``, or None
        when absent) and ``speedup_vs_torch`` / ``speedup_vs_keras`` (their ms / rnnkit's).
    """
    log(f"imdb {size.label}: building models ...")
    fws = _frameworks(size, torch, keras, threads, seed)
    log(f"imdb {size.label}: verifying ({', '.join(fws)}) ...")
    check = verify_imdb(fws, log)
    results: List[Dict[str, Any]] = []
    for op in OPERATIONS:
        times: Dict[str, Optional[Dict[str, float]]] = {n: None for n in FRAMEWORKS}
        for name, fw in fws.items():
            t = measure(getattr(fw, op), budget, settle=settle, min_repeats=MIN_REPEATS)
            times[name] = {"ms": t.median * 1e3, "best_ms": t.best * 1e3, "repeats": t.repeats}
        rec: Dict[str, Any] = {"operation": op, "times": times}
        for other in ("torch", "keras"):
            theirs = times[other]
            rec[f"speedup_vs_{other}"] = theirs["ms"] / times["rnnkit"]["ms"] if theirs else None
        results.append(rec)
        log(f"imdb {op}: " + " ".join(f"{n} {v['ms']:.1f} ms" for n, v in times.items() if v))
    return {"size": size._asdict(), "frameworks": list(fws), "check": check, "results": results}
