"""Losses with Keras 3 formulas, reduction and masking, plus their gradients.

A loss maps ``(y_true, y_pred)`` to per-sample values ``L`` of shape ``y_pred.shape[:-1]``
(the last axis is reduced: mean for mse/mae/bce, sum for crossentropies). Reduction is Keras's
``"sum_over_batch_size"`` by default: ``sum(L * w) / L.size``. A mask (from ``Embedding``/
``Masking`` through the model) enters as Keras 3 ``apply_mask`` does: weights
``mask * L.size / valid`` (0 when nothing is valid), i.e. the mean over unmasked entries.

Crossentropies follow Keras's TensorFlow backend (which produced the project fixtures):
probabilities are renormalised and clipped to ``[eps, 1-eps]`` (``eps = 1e-7``); with
``from_logits=True`` the exact log-softmax / softplus forms are used.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np

from . import backend

__all__ = ["Loss", "MeanSquaredError", "MeanAbsoluteError", "BinaryCrossentropy",
           "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "get", "serialize",
           "mean_squared_error", "mean_absolute_error", "binary_crossentropy",
           "categorical_crossentropy", "sparse_categorical_crossentropy", "mse", "mae"]

_REDUCTIONS = ("sum_over_batch_size", "sum", "none", None)


def _match_rank(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Keras's squeeze_or_expand_to_same_rank for targets: (B,) vs (B, 1) etc."""
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y_true = y_true[..., None]
    elif y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape:
        raise ValueError(f"`y` has shape {y_true.shape} but the model output has shape "
                         f"{y_pred.shape}; they must match")
    return y_true


class Loss:
    """Base class. Subclasses define ``call`` (per-sample values) and ``call_grad``."""

    def __init__(self, name: Optional[str] = None, reduction: Optional[str] = "sum_over_batch_size",
                 dtype: Optional[str] = None) -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(f"`reduction` must be one of {_REDUCTIONS}, got {reduction!r}")
        self.name = name or backend.snake_case(type(self).__name__)
        self.reduction = reduction
        self.dtype = dtype

    # -- to override -------------------------------------------------------------------
    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """Per-sample losses, shape ``y_pred.shape[:-1]``."""
        raise NotImplementedError

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        """``dL/dy_pred`` given ``dl = d(total)/d(per-sample value)``."""
        raise NotImplementedError

    def prepare(self, y_true: Any, y_pred: np.ndarray) -> np.ndarray:
        """Convert targets to the prediction dtype/rank (overridden by the sparse loss)."""
        return _match_rank(backend.as_float(y_true, y_pred.dtype, "y"), y_pred)

    # -- public ----------------------------------------------------------------------
    def _weights(self, values: np.ndarray, sample_weight: Any, mask: Any) -> np.ndarray:
        w = np.ones_like(values)
        if mask is not None:
            m = np.asarray(mask, dtype=values.dtype)
            if self.reduction == "sum_over_batch_size":
                # Keras 3 apply_mask: valid entries weigh total/valid -> mean over valid ones.
                # Keras 3.15 uses divide_no_nan(total, valid) -- no epsilon in the
                # denominator (an older "+ 1e-7" shifted masked losses by ~1e-7/valid,
                # seen against real Keras in tests/test_keras_parity.py).
                valid = m.sum()
                m = m * (m.size / valid) if valid > 0 else np.zeros_like(m)
            w = w * np.broadcast_to(m.reshape(m.shape + (1,) * (values.ndim - m.ndim)),
                                    values.shape)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=values.dtype)
            if sw.ndim < values.ndim:
                sw = sw.reshape(sw.shape + (1,) * (values.ndim - sw.ndim))
            w = w * np.broadcast_to(sw, values.shape)
        return w

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None,
                 mask: Any = None) -> Union[float, np.ndarray]:
        """The reduced loss (a NumPy scalar, or per-sample values with reduction "none")."""
        y_pred = np.asarray(y_pred)
        if not np.issubdtype(y_pred.dtype, np.floating):
            y_pred = y_pred.astype(backend.floatx())
        y_true = self.prepare(y_true, y_pred)
        values = self.call(y_true, y_pred)
        w = self._weights(values, sample_weight, mask)
        if self.reduction in ("none", None):
            return values * w
        total = (values * w).sum(dtype=values.dtype)
        if self.reduction == "sum_over_batch_size":
            total = total / values.dtype.type(max(values.size, 1))
        return total

    def value_and_grad(self, y_true: Any, y_pred: np.ndarray, sample_weight: Any = None,
                       mask: Any = None) -> Tuple[float, np.ndarray]:
        """``(reduced loss, dloss/dy_pred)``; used by the training loop."""
        if self.reduction in ("none", None):
            raise ValueError("value_and_grad needs a reducing `reduction`, not 'none'")
        y_true = self.prepare(y_true, y_pred)
        values = self.call(y_true, y_pred)
        w = self._weights(values, sample_weight, mask)
        total = (values * w).sum(dtype=values.dtype)
        if self.reduction == "sum_over_batch_size":
            n = values.dtype.type(max(values.size, 1))
            total, w = total / n, w / n
        return total, self.call_grad(y_true, y_pred, w)

    def get_config(self) -> Dict[str, Any]:
        """Constructor arguments, JSON-serialisable."""
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Loss":
        """Rebuild from :meth:`get_config`."""
        return cls(**config)


class MeanSquaredError(Loss):
    """``mean((y_pred - y_true)**2, axis=-1)``."""

    def __init__(self, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "mean_squared_error", dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(np.square(y_pred - y_true), axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        n = y_pred.dtype.type(y_pred.shape[-1])
        return (2 * (y_pred - y_true) / n) * dl[..., None]


class MeanAbsoluteError(Loss):
    """``mean(abs(y_pred - y_true), axis=-1)``; the subgradient at 0 is 0 (as TF)."""

    def __init__(self, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "mean_absolute_error", dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(np.abs(y_pred - y_true), axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        n = y_pred.dtype.type(y_pred.shape[-1])
        return (np.sign(y_pred - y_true) / n) * dl[..., None]


def _clip_grad(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Derivative of clip(p, lo, hi): 1 inside the interval, 0 outside (TF's rule)."""
    return ((p >= lo) & (p <= hi)).astype(p.dtype)


class BinaryCrossentropy(Loss):
    """Binary crossentropy, mean over the last axis.

    Probabilities: ``-(t log(p+eps) + (1-t) log(1-p+eps))`` with ``p`` clipped to
    ``[eps, 1-eps]`` (TF backend). Logits: ``max(x,0) - x t + log(1 + exp(-|x|))``.
    """

    def __init__(self, from_logits: bool = False, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "binary_crossentropy", dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)
        self.from_logits = bool(from_logits)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if self.from_logits:
            x = y_pred
            v = np.maximum(x, 0) - x * y_true + np.log1p(np.exp(-np.abs(x)))
        else:
            eps = y_pred.dtype.type(backend.epsilon())
            p = np.clip(y_pred, eps, 1 - eps)
            v = -(y_true * np.log(p + eps) + (1 - y_true) * np.log(1 - p + eps))
        return np.mean(v, axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        n = y_pred.dtype.type(y_pred.shape[-1])
        if self.from_logits:
            e = np.exp(-np.abs(y_pred))
            sig = np.where(y_pred >= 0, 1 / (1 + e), e / (1 + e))
            g = sig - y_true
        else:
            eps = y_pred.dtype.type(backend.epsilon())
            p = np.clip(y_pred, eps, 1 - eps)
            g = (-(y_true / (p + eps)) + (1 - y_true) / (1 - p + eps)) * _clip_grad(
                y_pred, eps, 1 - eps)
        return (g / n) * dl[..., None]

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits}


def _log_softmax(z: np.ndarray) -> np.ndarray:
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


class CategoricalCrossentropy(Loss):
    """``-sum(t * log(p), axis=-1)``; ``p`` renormalised to sum 1 then clipped (TF backend)."""

    def __init__(self, from_logits: bool = False, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "categorical_crossentropy", dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)
        self.from_logits = bool(from_logits)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if self.from_logits:
            return -(y_true * _log_softmax(y_pred)).sum(axis=-1)
        eps = y_pred.dtype.type(backend.epsilon())
        p = np.clip(y_pred / y_pred.sum(axis=-1, keepdims=True), eps, 1 - eps)
        return -(y_true * np.log(p)).sum(axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        if self.from_logits:
            sm = np.exp(_log_softmax(y_pred))
            return (sm * y_true.sum(axis=-1, keepdims=True) - y_true) * dl[..., None]
        eps = y_pred.dtype.type(backend.epsilon())
        s = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / s
        gq = -(y_true / np.clip(q, eps, 1 - eps)) * _clip_grad(q, eps, 1 - eps)
        # q = o / sum(o): dL/do_j = (gq_j - sum_k gq_k q_k) / s
        go = (gq - (gq * q).sum(axis=-1, keepdims=True)) / s
        return go * dl[..., None]

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits}


class SparseCategoricalCrossentropy(Loss):
    """Crossentropy with integer targets (shape ``y_pred.shape[:-1]`` or with a trailing 1).

    Probabilities (TF backend): ``p`` renormalised, clipped, then used as logits of
    ``log p`` -> ``-log(pc[label]) + log(sum(pc))`` (equal to ``-log p[label]`` when no clip).
    """

    def __init__(self, from_logits: bool = False, ignore_class: Optional[int] = None,
                 reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "sparse_categorical_crossentropy", dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)
        if ignore_class is not None:
            raise ValueError("`ignore_class` is not supported by rnnkit; use a mask instead")
        self.from_logits = bool(from_logits)

    def prepare(self, y_true: Any, y_pred: np.ndarray) -> np.ndarray:
        t = np.asarray(y_true)
        if t.ndim == y_pred.ndim and t.shape[-1] == 1:
            t = t[..., 0]
        if t.shape != y_pred.shape[:-1]:
            raise ValueError(f"`y` (integer labels) has shape {np.shape(y_true)}; expected "
                             f"{y_pred.shape[:-1]} for model output {y_pred.shape}")
        ti = t.astype(np.int64)
        if np.any(ti != t) or np.any(ti < 0) or np.any(ti >= y_pred.shape[-1]):
            raise ValueError(f"`y` must hold integer class ids in [0, {y_pred.shape[-1]})")
        return ti

    def _onehot(self, t: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        oh = np.zeros(y_pred.shape, y_pred.dtype)
        np.put_along_axis(oh, t[..., None], 1, axis=-1)
        return oh

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        oh = self._onehot(y_true, y_pred)
        if self.from_logits:
            return -(oh * _log_softmax(y_pred)).sum(axis=-1)
        eps = y_pred.dtype.type(backend.epsilon())
        pc = np.clip(y_pred / y_pred.sum(axis=-1, keepdims=True), eps, 1 - eps)
        return -(oh * np.log(pc)).sum(axis=-1) + np.log(pc.sum(axis=-1))

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        oh = self._onehot(y_true, y_pred)
        if self.from_logits:
            return (np.exp(_log_softmax(y_pred)) - oh) * dl[..., None]
        eps = y_pred.dtype.type(backend.epsilon())
        s = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / s
        pc = np.clip(q, eps, 1 - eps)
        gq = (-oh / pc + 1 / pc.sum(axis=-1, keepdims=True)) * _clip_grad(q, eps, 1 - eps)
        go = (gq - (gq * q).sum(axis=-1, keepdims=True)) / s
        return go * dl[..., None]

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits}


def _fn(cls: type) -> Callable[..., np.ndarray]:
    def f(y_true: Any, y_pred: Any, **kwargs: Any) -> np.ndarray:
        return cls(reduction="none", **kwargs)(y_true, y_pred)
    f.__name__ = backend.snake_case(cls.__name__)
    f.__doc__ = f"Per-sample values of :class:`{cls.__name__}` (no reduction)."
    return f


mean_squared_error = mse = _fn(MeanSquaredError)
mean_absolute_error = mae = _fn(MeanAbsoluteError)
binary_crossentropy = _fn(BinaryCrossentropy)
categorical_crossentropy = _fn(CategoricalCrossentropy)
sparse_categorical_crossentropy = _fn(SparseCategoricalCrossentropy)

_BY_NAME: Dict[str, type] = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_CLASSES = {c.__name__: c for c in set(_BY_NAME.values())}


def get(identifier: Union[str, Loss, Dict[str, Any]]) -> Loss:
    """Resolve a loss name (Keras spellings), a config dict or a :class:`Loss`."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(f"Unknown loss: {identifier!r}; expected a Loss or one of {sorted(_BY_NAME)}")


def serialize(loss: Loss) -> Dict[str, Any]:
    """``{"class_name", "config"}`` for configs."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
