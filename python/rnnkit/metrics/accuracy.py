"""Accuracy metrics (Keras 3 ``metrics/accuracy_metrics.py``): the per-sample functions and
their :class:`MeanMetricWrapper` classes, including top-k."""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from .base import MeanMetricWrapper, _match_rank

__all__ = ["accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
           "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "Accuracy",
           "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
           "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy"]


def accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """Exact equality of values, ``y_true == y_pred`` (Keras ``accuracy``): one value per
    element (the mean reduction then averages the non-batch axes)."""
    y_pred = np.asarray(y_pred)
    t, p = _match_rank(np.asarray(y_true), y_pred)
    return (t == p).astype(np.float64)


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> np.ndarray:
    """``y_true == (y_pred > threshold)`` per element (the mean reduction averages the
    non-batch axes)."""
    y_pred = np.asarray(y_pred)
    t, p = _match_rank(np.asarray(y_true), y_pred)
    return (t == (p > threshold)).astype(np.float64)


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


def _in_top_k(labels: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """TensorFlow ``in_top_k``: the target's score is beaten by fewer than ``k`` scores
    (ties at the boundary count as in); non-finite target scores and labels out of range
    are not in the top k."""
    scores = scores.reshape(-1, scores.shape[-1]).astype(np.float64)
    labels = labels.reshape(-1).astype(np.int64)
    n = scores.shape[-1]
    ok = (labels >= 0) & (labels < n)
    target = scores[np.arange(len(labels)), np.where(ok, labels, 0)]
    above = (scores > target[:, None]).sum(-1)
    return (ok & np.isfinite(target) & (above < k)).astype(np.float64)


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"`k` must be a positive integer, got {k!r}")
    return int(k)


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> np.ndarray:
    """1 where ``argmax(y_true)`` is among the ``k`` largest predictions (one-hot targets)."""
    y_pred = np.asarray(y_pred)
    labels = np.argmax(np.asarray(y_true), axis=-1)
    return _in_top_k(labels, y_pred, k).reshape(labels.shape)


def sparse_top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5,
                                      from_sorted_ids: bool = False) -> np.ndarray:
    """1 where the integer label is among the ``k`` largest predictions; with
    ``from_sorted_ids`` ``y_pred`` holds class ids sorted by score."""
    y_pred = np.asarray(y_pred)
    labels = np.asarray(y_true)
    shape = labels.shape
    if from_sorted_ids:
        ids = y_pred.reshape(-1, y_pred.shape[-1])[:, :k]
        return (ids == labels.reshape(-1, 1)).any(-1).astype(np.float64).reshape(shape)
    return _in_top_k(labels, y_pred, k).reshape(shape)


class Accuracy(MeanMetricWrapper):
    """How often predictions equal the targets exactly."""

    def __init__(self, name: str = "accuracy", dtype: Optional[str] = None) -> None:
        super().__init__(accuracy, name=name, dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches the binary target."""

    def __init__(self, name: str = "binary_accuracy", dtype: Optional[str] = None,
                 threshold: float = 0.5) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise ValueError(f"`threshold` must be a number, got {threshold!r}")
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "threshold": self.threshold}


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of the prediction matches the one-hot target."""

    def __init__(self, name: str = "categorical_accuracy", dtype: Optional[str] = None) -> None:
        super().__init__(categorical_accuracy, name=name, dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of the prediction matches the integer target."""

    def __init__(self, name: str = "sparse_categorical_accuracy",
                 dtype: Optional[str] = None) -> None:
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target is in the top ``k`` predictions (default 5)."""

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy",
                 dtype: Optional[str] = None) -> None:
        self.k = _check_k(k)
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=self.k)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "k": self.k}


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer target is in the top ``k`` predictions (default 5)."""

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy",
                 dtype: Optional[str] = None, from_sorted_ids: bool = False) -> None:
        self.k = _check_k(k)
        if not isinstance(from_sorted_ids, bool):
            raise ValueError(f"`from_sorted_ids` must be True or False, got {from_sorted_ids!r}")
        self.from_sorted_ids = from_sorted_ids
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=self.k,
                         from_sorted_ids=from_sorted_ids)

    def get_config(self) -> Dict[str, Any]:
        config: Dict[str, Any] = {"name": self.name, "dtype": self.dtype, "k": self.k}
        if self.from_sorted_ids:
            config["from_sorted_ids"] = True
        return config
