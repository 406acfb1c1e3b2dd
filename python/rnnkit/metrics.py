"""Stateful metrics as in Keras 3: accumulate over batches, ``result()`` is the running mean.

Per-sample values are reduced the Keras way (``reduce_to_samplewise_values``): without a mask
each sample contributes the mean over its non-batch axes and counts 1; with a mask ``(B, T)``
the result is the mean over unmasked entries. ``get("accuracy", y_true, y_pred, loss)``
picks binary/categorical/sparse accuracy as Keras's compile does.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Union

import numpy as np

from . import losses as losses_mod

__all__ = ["Metric", "Mean", "MeanMetricWrapper", "MeanSquaredError", "MeanAbsoluteError",
           "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy", "Accuracy",
           "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "get"]


class Metric:
    """Base class: ``update_state``, ``result``, ``reset_state``."""

    def __init__(self, name: Optional[str] = None) -> None:
        self.name = name or type(self).__name__.lower()
        self.reset_state()

    def reset_state(self) -> None:
        """Forget what was accumulated."""
        self.total, self.count = 0.0, 0.0

    def result(self) -> float:
        """The accumulated mean (0 before any update)."""
        return float(self.total / self.count) if self.count else 0.0

    def update_state(self, *args: Any, **kwargs: Any) -> None:  # pragma: no cover
        """Accumulate one batch."""
        raise NotImplementedError


class Mean(Metric):
    """Weighted mean of values; used for the loss tracker (weights = batch sizes)."""

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Add ``values`` (scalar or array) with optional weights."""
        v = np.asarray(values, dtype=np.float64)
        if sample_weight is None:
            self.total += float(v.sum())
            self.count += float(v.size)
        else:
            w = np.broadcast_to(np.asarray(sample_weight, dtype=np.float64), v.shape)
            self.total += float((v * w).sum())
            self.count += float(w.sum())


class MeanMetricWrapper(Metric):
    """Mean of ``fn(y_true, y_pred)`` (per-sample values), Keras reduction rules."""

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], name: str) -> None:
        self.fn = fn
        super().__init__(name)

    def update_state(self, y_true: Any, y_pred: Any, mask: Optional[np.ndarray] = None) -> None:
        """Accumulate one batch of targets/predictions (``mask`` from the model output)."""
        v = np.asarray(self.fn(y_true, np.asarray(y_pred)), dtype=np.float64)
        if v.ndim == 0:
            v = v.reshape(1)
        per = float(np.prod(v.shape[1:])) if v.ndim > 1 else 1.0
        if mask is None:
            self.total += float(v.sum()) / per
            self.count += float(v.shape[0])
        else:
            m = np.asarray(mask, dtype=np.float64)
            m = m.reshape(m.shape + (1,) * (v.ndim - m.ndim))
            m = np.broadcast_to(m, v.shape)
            self.total += float((v * m).sum()) / per
            self.count += float(m.sum()) / per


def _targets(y_true: Any, y_pred: np.ndarray) -> np.ndarray:
    t = np.asarray(y_true)
    if t.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        t = t[..., None]
    return t


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> np.ndarray:
    """Mean over the last axis of ``y_true == (y_pred > threshold)``."""
    y_pred = np.asarray(y_pred)
    t = _targets(y_true, y_pred)
    return np.mean((t == (y_pred > threshold)).astype(np.float64), axis=-1)


def categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """``argmax(y_true) == argmax(y_pred)`` on the last axis."""
    return (np.argmax(np.asarray(y_true), -1) == np.argmax(np.asarray(y_pred), -1)).astype(
        np.float64)


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """``y_true == argmax(y_pred)`` (integer labels, optional trailing axis of 1)."""
    y_pred = np.asarray(y_pred)
    t = np.asarray(y_true)
    if t.ndim == y_pred.ndim and t.shape[-1] == 1:
        t = t[..., 0]
    return (t.astype(np.int64) == np.argmax(y_pred, -1)).astype(np.float64)


def accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """Exact equality of values (Keras's plain ``Accuracy``)."""
    y_pred = np.asarray(y_pred)
    return (_targets(y_true, y_pred) == y_pred).astype(np.float64).mean(axis=-1)


class MeanSquaredError(MeanMetricWrapper):
    """Running mean squared error."""

    def __init__(self, name: str = "mean_squared_error") -> None:
        super().__init__(losses_mod.mean_squared_error, name)


class MeanAbsoluteError(MeanMetricWrapper):
    """Running mean absolute error."""

    def __init__(self, name: str = "mean_absolute_error") -> None:
        super().__init__(losses_mod.mean_absolute_error, name)


class BinaryAccuracy(MeanMetricWrapper):
    """Running binary accuracy (threshold 0.5)."""

    def __init__(self, name: str = "binary_accuracy", threshold: float = 0.5) -> None:
        super().__init__(lambda t, p: binary_accuracy(t, p, threshold), name)


class CategoricalAccuracy(MeanMetricWrapper):
    """Running categorical accuracy (one-hot targets)."""

    def __init__(self, name: str = "categorical_accuracy") -> None:
        super().__init__(categorical_accuracy, name)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """Running sparse categorical accuracy (integer targets)."""

    def __init__(self, name: str = "sparse_categorical_accuracy") -> None:
        super().__init__(sparse_categorical_accuracy, name)


class Accuracy(MeanMetricWrapper):
    """Running exact-match accuracy."""

    def __init__(self, name: str = "accuracy") -> None:
        super().__init__(accuracy, name)


_FUNCS: Dict[str, Callable[..., np.ndarray]] = {
    "mse": losses_mod.mean_squared_error, "mean_squared_error": losses_mod.mean_squared_error,
    "mae": losses_mod.mean_absolute_error, "mean_absolute_error": losses_mod.mean_absolute_error,
    "binary_accuracy": binary_accuracy, "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "binary_crossentropy": losses_mod.binary_crossentropy,
    "categorical_crossentropy": losses_mod.categorical_crossentropy,
    "sparse_categorical_crossentropy": losses_mod.sparse_categorical_crossentropy,
}


def get(identifier: Union[str, Metric], y_true: Any = None, y_pred: Any = None,
        loss: Optional[losses_mod.Loss] = None) -> Metric:
    """Resolve a metric. ``"accuracy"``/``"acc"`` picks the variant from shapes and loss."""
    if isinstance(identifier, Metric):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"`metrics` entries must be names or Metric objects, got {identifier!r}")
    if identifier in ("accuracy", "acc"):
        if y_true is None or y_pred is None:
            return BinaryAccuracy(name=identifier)
        yt, yp = np.asarray(y_true), np.asarray(y_pred)
        if isinstance(loss, losses_mod.BinaryCrossentropy) or yp.shape[-1] == 1:
            return BinaryAccuracy(name=identifier)
        if yt.ndim < yp.ndim or (yt.shape[-1] == 1 and yp.shape[-1] > 1):
            return SparseCategoricalAccuracy(name=identifier)
        return CategoricalAccuracy(name=identifier)
    if identifier in _FUNCS:
        return MeanMetricWrapper(_FUNCS[identifier], identifier)
    raise ValueError(f"Unknown metric: {identifier!r}; expected 'accuracy' or one of "
                     f"{sorted(_FUNCS)}")
