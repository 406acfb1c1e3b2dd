"""Custom losses: plain NumPy functions, and the finite-difference gradient they train with.

Two ways to train with your own loss:

1. **A function** ``fn(y_true, y_pred) -> per-sample values`` written with NumPy, passed as
   ``compile(loss=fn)`` (or ``losses.get(fn)``). It is wrapped in
   :class:`LossFunctionWrapper`; its gradient w.r.t. ``y_pred`` comes from
   :func:`numerical_gradient` (central finite differences).
2. **A** :class:`~rnnkit.losses.Loss` **subclass** defining ``call(y_true, y_pred)`` and,
   for an exact and faster gradient, ``call_grad(y_true, y_pred, dl)`` returning
   ``dl[..., None] * d value / d y_pred`` (``dl`` has the shape of the values: the reduction
   and the sample weights folded in). Without ``call_grad`` it falls back to
   :func:`numerical_gradient` too.

``y_true`` arrives as a float array of ``y_pred``'s dtype (rank-matched as Keras's
``LossFunctionWrapper`` does: a (B,) target against a (B, 1) prediction gets a trailing
axis). The values must have a leading part of ``y_pred``'s shape, e.g. ``(B,)`` or
``(B, T)`` for ``(B, T, F)`` predictions, or be a scalar; reduction, masks and sample weights
then apply as for built-in losses.

**Cost and accuracy of the finite differences.** The values of a loss are assumed to be
*separable per sample*: value ``i`` depends only on ``y_pred[i]`` (true of every Keras loss;
false for e.g. a loss that normalises over the batch). Then all samples are perturbed at
once: ``2 * prod(y_pred.shape[k:])`` calls of ``fn``, where ``k`` is the rank of the values
(20 calls for ``(B, 10)`` predictions and ``(B,)`` values, whatever ``B``); a scalar-valued
function costs ``2 * y_pred.size`` calls. Evaluation is in float64 with step
``h = cbrt(eps64) * max(1, |y_pred|)`` (about 6e-6; ``cbrt(eps32)`` ~ 5e-3 when ``fn``
returns float32). Measured in tests/test_losses_keras.py against the exact gradients of
smooth losses (mse, log-cosh, Huber away from its kink): relative error below 1e-8 in
float64 (typically ~1e-10). At a kink (``abs`` at 0, a ``maximum`` tie) the central
difference gives the mean of the one-sided slopes, where TensorFlow picks one side.

**Saving.** A model compiled with a custom loss saves its architecture and weights but no
compile settings (a warning says so): the function cannot be named in the file, and saved
files are never allowed to run code. ``load_model`` returns it uncompiled; compile it again.
"""
from __future__ import annotations

import pickle
from typing import Any, Callable, Dict, Optional

import numpy as np

from . import backend
from .losses import Loss

__all__ = ["LossFunctionWrapper", "numerical_gradient"]

_H64 = float(np.finfo(np.float64).eps) ** (1 / 3)
_H32 = float(np.finfo(np.float32).eps) ** (1 / 3)


def _fn_name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _check_values(v: Any, y_pred: np.ndarray, name: str, where: str) -> np.ndarray:
    try:
        arr = np.asarray(v)
    except Exception as exc:  # pragma: no cover - exotic return values
        raise TypeError(f"custom loss {name!r} returned {type(v).__name__}, not an array "
                        f"({where})") from exc
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"custom loss {name!r} must return numbers, got dtype {arr.dtype} "
                        f"({where})")
    if arr.shape != y_pred.shape[:arr.ndim]:
        raise ValueError(f"custom loss {name!r} returned values of shape {arr.shape}; expected "
                         f"per-sample values whose shape is a leading part of y_pred's "
                         f"{y_pred.shape} (e.g. {y_pred.shape[:1]} or {y_pred.shape[:-1]}), "
                         f"or a scalar ({where})")
    return arr


def numerical_gradient(fn: Callable[[np.ndarray, np.ndarray], Any], y_true: np.ndarray,
                       y_pred: np.ndarray, dl: np.ndarray, name: Optional[str] = None
                       ) -> np.ndarray:
    """``sum(dl * d fn(y_true, y_pred) / d y_pred)`` by central finite differences.

    ``dl`` has the shape of ``fn``'s values (a leading part ``S`` of ``y_pred.shape``). Each
    trailing index ``j`` of ``y_pred`` (over ``y_pred.shape[len(S):]``) is perturbed for all
    leading indices at once (values are assumed separable per sample; see the module
    docstring for cost and accuracy). Raises a ValueError / TypeError naming the function when
    it raises, returns another shape, or returns non-finite values at a perturbed point.
    """
    name = name or _fn_name(fn)
    dl = np.asarray(dl)
    k = dl.ndim
    if dl.shape != y_pred.shape[:k]:
        raise ValueError(f"custom loss {name!r}: per-sample values of shape {dl.shape} are not "
                         f"a leading part of y_pred's shape {y_pred.shape}; cannot "
                         "differentiate")
    p0 = y_pred.astype(np.float64)
    t64 = y_true.astype(np.float64) if np.issubdtype(np.asarray(y_true).dtype, np.floating) \
        else y_true

    def run(p: np.ndarray, where: str) -> np.ndarray:
        try:
            v = fn(t64, p)
        except Exception as exc:
            raise ValueError(f"custom loss {name!r} could not be differentiated by finite "
                             f"differences: calling it on perturbed predictions raised "
                             f"{type(exc).__name__}: {exc}. Give it an exact gradient instead "
                             "(a Loss subclass with call_grad)") from exc
        arr = _check_values(v, y_pred, name, where)
        if arr.shape != dl.shape:
            raise ValueError(f"custom loss {name!r} returned shape {arr.shape} for perturbed "
                             f"predictions but {dl.shape} before; cannot differentiate")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"custom loss {name!r} is not finite near y_pred ({where}); "
                             "cannot differentiate it by finite differences")
        return arr

    base = run(p0, "at y_pred")
    h = (_H32 if base.dtype == np.float32 else _H64) * np.maximum(1.0, np.abs(p0))
    grad = np.zeros_like(p0)
    lead = (slice(None),) * k
    for j in np.ndindex(*y_pred.shape[k:]):
        idx = lead + j
        hj = h[idx]
        plus, minus = p0.copy(), p0.copy()
        plus[idx] += hj
        minus[idx] -= hj
        step = plus[idx] - minus[idx]  # the step actually taken, after rounding
        d = (run(plus, "perturbed").astype(np.float64)
             - run(minus, "perturbed").astype(np.float64)) / step
        grad[idx] = d * dl
    return grad.astype(y_pred.dtype, copy=False)


class LossFunctionWrapper(Loss):
    """A loss from a function ``fn(y_true, y_pred, **kwargs) -> per-sample values``.

    The gradient is :func:`numerical_gradient` of ``fn`` (see the module docstring). The
    ``name`` defaults to the function's name.
    """

    def __init__(self, fn: Callable[..., Any], reduction: Optional[str] = "sum_over_batch_size",
                 name: Optional[str] = None, dtype: Optional[str] = None, **kwargs: Any) -> None:
        if not callable(fn):
            raise TypeError(f"LossFunctionWrapper: `fn` must be callable, got {fn!r}")
        super().__init__(name or _fn_name(fn), reduction, dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def prepare(self, y_true: Any, y_pred: np.ndarray) -> np.ndarray:
        # Keras: targets cast to the loss dtype, then squeeze_or_expand_to_same_rank only --
        # their shape may differ otherwise (integer labels for a sparse custom loss).
        t = backend.as_float(y_true, y_pred.dtype, "y")
        if t.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
            t = t[..., None]
        elif t.ndim == y_pred.ndim + 1 and t.shape[-1] == 1:
            t = t[..., 0]
        return t

    def _call_fn(self, y_true: np.ndarray, y_pred: np.ndarray) -> Any:
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        try:
            v = self._call_fn(y_true, y_pred)
        except Exception as exc:
            raise ValueError(f"custom loss {self.name!r} raised {type(exc).__name__}: "
                             f"{exc}") from exc
        return _check_values(v, y_pred, self.name, "at y_pred")

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        return numerical_gradient(self._call_fn, y_true, y_pred, dl, self.name)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "fn": _fn_name(self.fn), **self._fn_kwargs}

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise pickle.PicklingError(
            f"cannot pickle custom loss {self.name!r} (LossFunctionWrapper of "
            f"{_fn_name(self.fn)}): rnnkit pickles through its own format, which never stores "
            "Python code; use a built-in loss, or rebuild this one after unpickling")

    def __deepcopy__(self, memo: Dict[int, Any]) -> Any:
        return backend.plain_deepcopy(self, memo)
