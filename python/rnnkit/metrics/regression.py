"""Regression and probabilistic metrics (Keras 3 ``metrics/regression_metrics.py`` and
``probabilistic_metrics.py``): mse, mae, mape, msle, RMSE, cosine similarity, R^2 and the
crossentropies as running means."""
from __future__ import annotations

import warnings
from typing import Any, Dict, Optional

import numpy as np

from .. import backend
from .. import losses as losses_mod
from .base import Mean, MeanMetricWrapper, Metric, _as_array, _match_rank

__all__ = ["mean_absolute_percentage_error", "mean_squared_logarithmic_error",
           "cosine_similarity", "MeanSquaredError", "MeanAbsoluteError",
           "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "RootMeanSquaredError",
           "CosineSimilarity", "R2Score", "BinaryCrossentropy", "CategoricalCrossentropy",
           "SparseCategoricalCrossentropy"]


def _pair(y_true: Any, y_pred: Any) -> "tuple[np.ndarray, np.ndarray]":
    p = _as_array(y_pred, "y_pred").astype(np.float64)
    t = _as_array(y_true, "y_true").astype(np.float64)
    return _match_rank(t, p)


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """``100 * mean(|y_true - y_pred| / max(|y_true|, epsilon), axis=-1)``."""
    t, p = _pair(y_true, y_pred)
    return 100.0 * np.mean(np.abs((t - p) / np.maximum(np.abs(t), backend.epsilon())), axis=-1)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """``mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))**2, axis=-1)``."""
    t, p = _pair(y_true, y_pred)
    eps = backend.epsilon()
    d = np.log(np.maximum(p, eps) + 1.0) - np.log(np.maximum(t, eps) + 1.0)
    return np.mean(d * d, axis=-1)


def _l2_normalize(x: np.ndarray, axis: int) -> np.ndarray:
    # Keras ops.normalize(order=2): x * rsqrt(max(sum(x^2), eps^2)).
    eps = backend.epsilon()
    return x / np.sqrt(np.maximum((x * x).sum(axis=axis, keepdims=True), eps * eps))


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> np.ndarray:
    """``sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)`` (1 = same direction)."""
    t, p = _pair(y_true, y_pred)
    return (_l2_normalize(t, axis) * _l2_normalize(p, axis)).sum(axis=axis)


class MeanSquaredError(MeanMetricWrapper):
    """Running mean squared error."""

    def __init__(self, name: str = "mean_squared_error", dtype: Optional[str] = None) -> None:
        super().__init__(losses_mod.mean_squared_error, name=name, dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class MeanAbsoluteError(MeanMetricWrapper):
    """Running mean absolute error."""

    def __init__(self, name: str = "mean_absolute_error", dtype: Optional[str] = None) -> None:
        super().__init__(losses_mod.mean_absolute_error, name=name, dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class MeanAbsolutePercentageError(MeanMetricWrapper):
    """Running mean absolute percentage error (``mape``)."""

    def __init__(self, name: str = "mean_absolute_percentage_error",
                 dtype: Optional[str] = None) -> None:
        super().__init__(mean_absolute_percentage_error, name=name, dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    """Running mean squared logarithmic error (``msle``)."""

    def __init__(self, name: str = "mean_squared_logarithmic_error",
                 dtype: Optional[str] = None) -> None:
        super().__init__(mean_squared_logarithmic_error, name=name, dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class RootMeanSquaredError(Mean):
    """``sqrt`` of the running (weighted) mean of squared errors."""

    def __init__(self, name: str = "root_mean_squared_error",
                 dtype: Optional[str] = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulate the squared errors (mean per sample, Keras ``Mean`` rules)."""
        t, p = _pair(y_true, y_pred)
        super().update_state((p - t) ** 2, sample_weight=sample_weight)

    def result(self) -> float:
        return float(np.sqrt(super().result()))


class CosineSimilarity(MeanMetricWrapper):
    """Running mean cosine similarity along ``axis`` (default -1)."""

    def __init__(self, name: str = "cosine_similarity", dtype: Optional[str] = None,
                 axis: int = -1) -> None:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"`axis` must be an integer, got {axis!r}")
        self.axis = int(axis)
        super().__init__(cosine_similarity, name=name, dtype=dtype, axis=self.axis)

    def get_config(self) -> Dict[str, Any]:
        # Keras 3.15 leaves `axis` out of the config; rnnkit keeps it when it is not -1.
        config: Dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if self.axis != -1:
            config["axis"] = self.axis
        return config


_R2_AGGREGATIONS = (None, "uniform_average", "variance_weighted_average")


class R2Score(Metric):
    """Coefficient of determination over everything seen (Keras ``R2Score``).

    Inputs are ``(batch, outputs)``. ``class_aggregation``: None (one score per output),
    "uniform_average" or "variance_weighted_average". ``num_regressors`` > 0 gives the
    adjusted R^2 ``1 - (1 - R^2)(n - 1)/(n - p - 1)`` (plain R^2 with a warning when
    ``n - 1 <= p``).
    """

    def __init__(self, class_aggregation: Optional[str] = "uniform_average",
                 num_regressors: int = 0, name: str = "r2_score",
                 dtype: Optional[str] = None) -> None:
        super().__init__(name=name, dtype=dtype)
        if class_aggregation not in _R2_AGGREGATIONS:
            raise ValueError(f"Invalid value for argument `class_aggregation`. Expected one of "
                             f"{_R2_AGGREGATIONS}. Received: class_aggregation="
                             f"{class_aggregation!r}")
        if (isinstance(num_regressors, bool) or not isinstance(num_regressors, (int, np.integer))
                or num_regressors < 0):
            raise ValueError("Invalid value for argument `num_regressors`. Expected an "
                             f"integer >= 0. Received: num_regressors={num_regressors!r}")
        self.class_aggregation = class_aggregation
        self.num_regressors = int(num_regressors)
        self.reset_state()

    def reset_state(self) -> None:
        self._n_out: Optional[int] = None
        self.num_samples = 0.0
        self.sum = self.squared_sum = self.total_mse = self.count = None

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulate weighted sums of ``y``, ``y^2`` and squared residuals per output."""
        t, p = _pair(y_true, y_pred)
        if t.ndim != 2 or p.ndim != 2:
            raise ValueError("R2Score expects 2D inputs with shape (batch_size, output_dim). "
                             f"Received input shapes: y_pred.shape={p.shape} and "
                             f"y_true.shape={t.shape}.")
        if self._n_out is None:
            self._n_out = p.shape[-1]
            z = np.zeros(self._n_out)
            self.sum, self.squared_sum, self.total_mse, self.count = z, z.copy(), z.copy(), z.copy()
        sw = np.asarray(1.0 if sample_weight is None else sample_weight, dtype=np.float64)
        if sw.ndim == 1:
            sw = sw[:, None]
        sw = np.broadcast_to(sw, t.shape)
        wt = t * sw
        self.sum = self.sum + wt.sum(0)
        self.squared_sum = self.squared_sum + (t * wt).sum(0)
        self.total_mse = self.total_mse + ((t - p) ** 2 * sw).sum(0)
        self.count = self.count + sw.sum(0)
        self.num_samples += float((sw != 0).any(-1).sum())

    def result(self) -> Any:
        if self._n_out is None:
            return 0.0  # Keras's unbuilt metric has no variables; nothing seen yet
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = self.sum / self.count
            total = self.squared_sum - self.sum * mean
            raw = 1.0 - self.total_mse / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            r2: Any = float(np.mean(raw))
        elif self.class_aggregation == "variance_weighted_average":
            r2 = float(np.sum(total * raw) / np.sum(total))
        else:
            r2 = raw
        p = self.num_regressors
        if p:
            n = self.num_samples
            if p > n - 1:
                warnings.warn("More independent predictors than datapoints in adjusted R2 "
                              "score. Falling back to standard R2 score.", stacklevel=2)
            elif p == n - 1:
                warnings.warn("Division by zero in Adjusted R2 score. Falling back to "
                              "standard R2 score.", stacklevel=2)
            else:
                r2 = 1.0 - (1.0 - r2) * (n - 1.0) / (n - p - 1.0)
        return r2

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype,
                "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


class _CrossentropyMetric(MeanMetricWrapper):
    _LOSS: type = losses_mod.Loss

    def __init__(self, name: str, dtype: Optional[str] = None, from_logits: bool = False) -> None:
        if not isinstance(from_logits, bool):
            raise ValueError(f"`from_logits` must be True or False, got {from_logits!r}")
        self.from_logits = from_logits
        loss = self._LOSS(from_logits=from_logits, reduction="none")

        def fn(y_true: Any, y_pred: Any) -> np.ndarray:
            return loss(y_true, np.asarray(y_pred, dtype=np.float64))
        super().__init__(fn, name=name, dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "from_logits": self.from_logits}


class BinaryCrossentropy(_CrossentropyMetric):
    """Running mean binary crossentropy."""
    _LOSS = losses_mod.BinaryCrossentropy

    def __init__(self, name: str = "binary_crossentropy", dtype: Optional[str] = None,
                 from_logits: bool = False) -> None:
        super().__init__(name=name, dtype=dtype, from_logits=from_logits)


class CategoricalCrossentropy(_CrossentropyMetric):
    """Running mean categorical crossentropy (one-hot targets)."""
    _LOSS = losses_mod.CategoricalCrossentropy

    def __init__(self, name: str = "categorical_crossentropy", dtype: Optional[str] = None,
                 from_logits: bool = False) -> None:
        super().__init__(name=name, dtype=dtype, from_logits=from_logits)


class SparseCategoricalCrossentropy(_CrossentropyMetric):
    """Running mean sparse categorical crossentropy (integer targets)."""
    _LOSS = losses_mod.SparseCategoricalCrossentropy

    def __init__(self, name: str = "sparse_categorical_crossentropy",
                 dtype: Optional[str] = None, from_logits: bool = False) -> None:
        super().__init__(name=name, dtype=dtype, from_logits=from_logits)
