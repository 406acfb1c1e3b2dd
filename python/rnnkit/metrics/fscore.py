"""F-scores (Keras 3 ``metrics/f_score_metrics.py``): ``FBetaScore`` and ``F1Score``.

Inputs are ``(batch, classes)``. Predictions become 0/1 by ``y_pred > threshold``, or with
``threshold=None`` by "is the row maximum" (and not ~0). Per class (or pooled with
``average="micro"``) ``precision = tp / (tp + fp + eps)``, ``recall = tp / (tp + fn + eps)``,
``F = (1 + beta^2) * P * R / (beta^2 * P + R + eps)``; "macro" averages the classes,
"weighted" weighs them by their (weighted) number of true labels.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from .. import backend
from .base import Metric, _as_array

__all__ = ["FBetaScore", "F1Score"]

_AVERAGES = (None, "micro", "macro", "weighted")


class FBetaScore(Metric):
    """F-beta score; ``average`` None (one per class), "micro", "macro" or "weighted"."""

    def __init__(self, average: Optional[str] = None, beta: float = 1.0,
                 threshold: Optional[float] = None, name: str = "fbeta_score",
                 dtype: Optional[str] = None) -> None:
        super().__init__(name=name, dtype=dtype)
        if average not in _AVERAGES:
            raise ValueError("Invalid `average` argument value. Expected one of: "
                             f"{{None, 'micro', 'macro', 'weighted'}}. Received: "
                             f"average={average!r}")
        if not isinstance(beta, float):
            raise ValueError("Invalid `beta` argument value. It should be a Python float. "
                             f"Received: beta={beta!r} of type '{type(beta)}'")
        if beta <= 0.0:
            raise ValueError(f"Invalid `beta` argument value. It should be > 0. Received: "
                             f"beta={beta}")
        if threshold is not None:
            if not isinstance(threshold, float):
                raise ValueError("Invalid `threshold` argument value. It should be a Python "
                                 f"float. Received: threshold={threshold!r} of type "
                                 f"'{type(threshold)}'")
            if threshold > 1.0 or threshold <= 0.0:
                raise ValueError("Invalid `threshold` argument value. It should verify "
                                 f"0 < threshold <= 1. Received: threshold={threshold}")
        self.average = average
        self.beta = beta
        self.threshold = threshold
        self.axis = None if average == "micro" else 0
        self.reset_state()

    def reset_state(self) -> None:
        self._classes: Optional[int] = None
        self.true_positives = self.false_positives = self.false_negatives = None
        self.intermediate_weights = None

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulate weighted tp / fp / fn and true-label counts."""
        t = _as_array(y_true, "y_true").astype(np.float64)
        p = _as_array(y_pred, "y_pred").astype(np.float32)
        if p.ndim != 2 or t.ndim != 2:
            raise ValueError("FBetaScore expects 2D inputs with shape (batch_size, output_dim). "
                             f"Received input shapes: y_pred.shape={p.shape} and "
                             f"y_true.shape={t.shape}.")
        if self._classes is None:
            self._classes = p.shape[-1]
            z = np.zeros(self._classes) if self.axis == 0 else 0.0
            self.true_positives = self.false_positives = self.false_negatives = z
            self.intermediate_weights = z
        elif p.shape[-1] != self._classes:
            raise ValueError(f"FBetaScore: `y_pred` has {p.shape[-1]} classes, earlier batches "
                             f"had {self._classes}")
        if self.threshold is None:
            pred = (p >= p.max(axis=-1, keepdims=True)) & (np.abs(p) > 1e-9)
        else:
            pred = p > np.float32(self.threshold)
        pred = pred.astype(np.float64)
        sw = None
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float64)
            sw = sw.reshape(sw.shape + (1,) * (t.ndim - sw.ndim))

        def wsum(v: np.ndarray) -> Any:
            return np.sum(v if sw is None else v * sw, axis=self.axis)
        self.true_positives = self.true_positives + wsum(pred * t)
        self.false_positives = self.false_positives + wsum(pred * (1 - t))
        self.false_negatives = self.false_negatives + wsum((1 - pred) * t)
        self.intermediate_weights = self.intermediate_weights + wsum(t)

    def result(self) -> Any:
        """Per-class scores (``average=None``) or their average."""
        if self._classes is None:
            return 0.0
        eps = backend.epsilon()
        tp = np.asarray(self.true_positives, dtype=np.float64)
        precision = tp / (tp + self.false_positives + eps)
        recall = tp / (tp + self.false_negatives + eps)
        b2 = self.beta ** 2
        f = precision * recall / (b2 * precision + recall + eps) * (1 + b2)
        if self.average == "weighted":
            iw = np.asarray(self.intermediate_weights, dtype=np.float64)
            return float(np.sum(f * iw / (np.sum(iw) + eps)))
        if self.average is not None:
            return float(np.mean(f))
        return f

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "average": self.average,
                "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """F1 score (the F-beta score with ``beta=1``)."""

    def __init__(self, average: Optional[str] = None, threshold: Optional[float] = None,
                 name: str = "f1_score", dtype: Optional[str] = None) -> None:
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        del config["beta"]
        return config
