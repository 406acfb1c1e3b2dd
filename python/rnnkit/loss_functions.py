"""Regression, probabilistic and hinge losses of Keras 3, each with its exact gradient.

Formulas are Keras 3.15's (``keras/src/losses/losses.py``), including its guards against
division by zero / log of zero, and the gradients follow TensorFlow's rules at the kinks
(``maximum(a, b)`` sends the gradient to ``a`` when ``a >= b``, ``clip`` passes it on the
closed interval, ``abs`` has derivative 0 at 0, ``max`` over an axis shares it between ties).
Every loss reduces the last axis (except :class:`CosineSimilarity`, which reduces ``axis``);
``eps`` is ``backend.epsilon()`` (1e-7). Import them from :mod:`rnnkit.losses`.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

import numpy as np

from . import backend
from .losses import Loss

__all__ = ["Huber", "LogCosh", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError",
           "KLDivergence", "Poisson", "CosineSimilarity", "Hinge", "SquaredHinge",
           "CategoricalHinge"]

_R = Optional[str]
_SOBS = "sum_over_batch_size"


def _eps(x: np.ndarray) -> Any:
    return x.dtype.type(backend.epsilon())


def _per_elem(g: np.ndarray, dl: np.ndarray) -> np.ndarray:
    """``g`` (d value / d y_pred, already divided by the mean's count) times ``dl``."""
    return (g * dl[..., None]).astype(g.dtype, copy=False)


class Huber(Loss):
    """``mean(0.5 e^2 if |e| <= delta else delta |e| - 0.5 delta^2)``, ``e = y_pred - y_true``."""

    def __init__(self, delta: float = 1.0, reduction: _R = _SOBS, name: str = "huber_loss",
                 dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)
        if (isinstance(delta, bool) or not isinstance(delta, (int, float, np.floating))
                or not math.isfinite(delta) or delta < 0):
            raise ValueError(f"`delta` must be a finite number >= 0, got {delta!r}")
        self.delta = float(delta)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        e = y_pred - y_true
        a, d = np.abs(e), y_pred.dtype.type(self.delta)
        return np.mean(np.where(a <= d, 0.5 * e * e, d * a - 0.5 * d * d), axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        e = y_pred - y_true
        d = y_pred.dtype.type(self.delta)
        g = np.where(np.abs(e) <= d, e, d * np.sign(e)) / y_pred.shape[-1]
        return _per_elem(g, dl)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "delta": self.delta}


class LogCosh(Loss):
    """``mean(log(cosh(e)))`` computed as ``e + softplus(-2e) - log 2``; gradient ``tanh(e)``."""

    def __init__(self, reduction: _R = _SOBS, name: str = "log_cosh",
                 dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        x = -2 * (y_pred - y_true)
        softplus = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
        return np.mean((y_pred - y_true) + softplus - np.log(y_pred.dtype.type(2)), axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        return _per_elem(np.tanh(y_pred - y_true) / y_pred.shape[-1], dl)


class MeanAbsolutePercentageError(Loss):
    """``100 * mean(|y_true - y_pred| / max(|y_true|, eps))``."""

    def __init__(self, reduction: _R = _SOBS, name: str = "mean_absolute_percentage_error",
                 dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        d = np.maximum(np.abs(y_true), _eps(y_pred))
        return 100 * np.mean(np.abs((y_true - y_pred) / d), axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        d = np.maximum(np.abs(y_true), _eps(y_pred))
        return _per_elem(100 * np.sign(y_pred - y_true) / d / y_pred.shape[-1], dl)


class MeanSquaredLogarithmicError(Loss):
    """``mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))^2)``."""

    def __init__(self, reduction: _R = _SOBS, name: str = "mean_squared_logarithmic_error",
                 dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        eps = _eps(y_pred)
        diff = np.log(np.maximum(y_pred, eps) + 1) - np.log(np.maximum(y_true, eps) + 1)
        return np.mean(diff * diff, axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        eps = _eps(y_pred)
        pm = np.maximum(y_pred, eps)
        diff = np.log(pm + 1) - np.log(np.maximum(y_true, eps) + 1)
        g = 2 * diff / (pm + 1) * (y_pred >= eps) / y_pred.shape[-1]
        return _per_elem(g, dl)


class KLDivergence(Loss):
    """``sum(t * log(t / p))`` with ``t``, ``p`` clipped to ``[eps, 1]``."""

    def __init__(self, reduction: _R = _SOBS, name: str = "kl_divergence",
                 dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        eps = _eps(y_pred)
        t, p = np.clip(y_true, eps, 1), np.clip(y_pred, eps, 1)
        return np.sum(t * np.log(t / p), axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        eps = _eps(y_pred)
        t, p = np.clip(y_true, eps, 1), np.clip(y_pred, eps, 1)
        return _per_elem(-t / p * ((y_pred >= eps) & (y_pred <= 1)), dl)


class Poisson(Loss):
    """``mean(y_pred - y_true * log(y_pred + eps))``."""

    def __init__(self, reduction: _R = _SOBS, name: str = "poisson",
                 dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(y_pred - y_true * np.log(y_pred + _eps(y_pred)), axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        return _per_elem((1 - y_true / (y_pred + _eps(y_pred))) / y_pred.shape[-1], dl)


class CosineSimilarity(Loss):
    """``-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)``.

    ``l2_normalize(x) = x * min(1/sqrt(sum(x^2, axis)), 1/eps)`` (Keras), so a zero vector
    gives 0. Per-sample values have ``y_pred``'s shape without ``axis``.
    """

    def __init__(self, axis: int = -1, reduction: _R = _SOBS, name: str = "cosine_similarity",
                 dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"`axis` must be an int, got {axis!r}")
        self.axis = int(axis)

    def _inv(self, x: np.ndarray) -> np.ndarray:
        s = np.sum(x * x, axis=self.axis, keepdims=True)
        with np.errstate(divide="ignore"):
            r = 1 / np.sqrt(s)
        return np.minimum(r, x.dtype.type(1 / backend.epsilon())), s, r

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        self._check_axis(y_pred)
        return -np.sum(y_true * self._inv(y_true)[0] * y_pred * self._inv(y_pred)[0],
                       axis=self.axis)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        th = y_true * self._inv(y_true)[0]
        inv, s, r = self._inv(y_pred)
        # d/dp of p * inv: inv * I, plus (where 1/sqrt(s) is the minimum) -p p^T s^-3/2.
        active = r <= y_pred.dtype.type(1 / backend.epsilon())
        with np.errstate(divide="ignore", invalid="ignore"):
            s32 = np.where(active, s ** -1.5, 0)
        proj = np.sum(th * y_pred, axis=self.axis, keepdims=True)
        g = -(inv * th - y_pred * proj * s32)
        return g * np.expand_dims(dl, self.axis)

    def _check_axis(self, y_pred: np.ndarray) -> None:
        if not -y_pred.ndim <= self.axis < y_pred.ndim:
            raise ValueError(f"CosineSimilarity: `axis`={self.axis} is out of range for "
                             f"predictions of rank {y_pred.ndim}")

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


def _hinge_targets(t: np.ndarray) -> np.ndarray:
    """Keras: targets that are all 0 or 1 become -1 / 1; other targets are kept."""
    return 2 * t - 1 if np.all((t == 0) | (t == 1)) else t


class Hinge(Loss):
    """``mean(max(1 - y_true * y_pred, 0))``; 0/1 targets are mapped to -1/1."""

    def __init__(self, reduction: _R = _SOBS, name: str = "hinge",
                 dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)

    def prepare(self, y_true: Any, y_pred: np.ndarray) -> np.ndarray:
        return _hinge_targets(super().prepare(y_true, y_pred))

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(np.maximum(1 - y_true * y_pred, 0), axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        g = -y_true * (1 - y_true * y_pred >= 0) / y_pred.shape[-1]
        return _per_elem(g, dl)


class SquaredHinge(Hinge):
    """``mean(max(1 - y_true * y_pred, 0)^2)``; 0/1 targets are mapped to -1/1."""

    def __init__(self, reduction: _R = _SOBS, name: str = "squared_hinge",
                 dtype: Optional[str] = None) -> None:
        super().__init__(reduction, name, dtype)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(np.square(np.maximum(1 - y_true * y_pred, 0)), axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        g = -2 * y_true * np.maximum(1 - y_true * y_pred, 0) / y_pred.shape[-1]
        return _per_elem(g, dl)


class CategoricalHinge(Loss):
    """``max(max((1 - t) * p) - sum(t * p) + 1, 0)`` (one-hot or -1/1 targets)."""

    def __init__(self, reduction: _R = _SOBS, name: str = "categorical_hinge",
                 dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        pos = np.sum(y_true * y_pred, axis=-1)
        neg = np.max((1 - y_true) * y_pred, axis=-1)
        return np.maximum(neg - pos + 1, 0)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        a = (1 - y_true) * y_pred
        neg = a.max(axis=-1, keepdims=True)
        ties = (a == neg).astype(y_pred.dtype)
        dneg = (1 - y_true) * ties / ties.sum(axis=-1, keepdims=True)  # TF shares ties
        pos = np.sum(y_true * y_pred, axis=-1, keepdims=True)
        on = (neg - pos + 1 >= 0).astype(y_pred.dtype)
        return (dneg - y_true) * on * dl[..., None]
