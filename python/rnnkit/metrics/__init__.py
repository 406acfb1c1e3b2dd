"""Stateful metrics as in Keras 3 (``keras.metrics``).

Every metric accumulates over ``update_state(y_true, y_pred, sample_weight=None)`` calls,
``result()`` reads the value and ``reset_state()`` forgets it; they work on their own or in
``compile(metrics=..., weighted_metrics=...)``. Names, defaults, string aliases and formulas
are Keras's (TensorFlow backend); ``get`` resolves a name (``"auc"``, ``"AUC"``, ``"mape"``),
a class, an instance, a config dict ``{"class_name", "config"}`` or a plain function
``(y_true, y_pred) -> per-sample values`` (wrapped in :class:`MeanMetricWrapper`).

Modules: ``base`` (Metric, Mean, Sum, MeanMetricWrapper, masks and sample weights),
``accuracy``, ``regression`` (also the crossentropies), ``confusion`` (counts, Precision,
Recall, AUC), ``fscore`` (F1Score, FBetaScore).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Optional, Union

import numpy as np

from .. import backend
from .. import losses as losses_mod
from .accuracy import (Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                       SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy, accuracy,
                       binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
                       sparse_top_k_categorical_accuracy, top_k_categorical_accuracy)
from .base import Mean, MeanMetricWrapper, Metric, Sum, Variable, result_value, update_metric
from .confusion import (AUC, FalseNegatives, FalsePositives, Precision, Recall, TrueNegatives,
                        TruePositives)
from .fscore import F1Score, FBetaScore
from .regression import (BinaryCrossentropy, CategoricalCrossentropy, CosineSimilarity,
                         MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredError,
                         MeanSquaredLogarithmicError, R2Score, RootMeanSquaredError,
                         SparseCategoricalCrossentropy, cosine_similarity,
                         mean_absolute_percentage_error, mean_squared_logarithmic_error)

__all__ = ["Metric", "Variable", "Mean", "Sum", "MeanMetricWrapper", "MeanSquaredError",
           "MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError",
           "RootMeanSquaredError", "CosineSimilarity", "R2Score", "BinaryCrossentropy",
           "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "Accuracy",
           "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
           "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "TruePositives",
           "FalsePositives", "TrueNegatives", "FalseNegatives", "Precision", "Recall", "AUC",
           "F1Score", "FBetaScore", "accuracy", "binary_accuracy", "categorical_accuracy",
           "sparse_categorical_accuracy", "top_k_categorical_accuracy",
           "sparse_top_k_categorical_accuracy", "mean_absolute_percentage_error",
           "mean_squared_logarithmic_error", "cosine_similarity", "get", "serialize",
           "deserialize", "is_builtin", "update_metric", "result_value"]

# Keras's ALL_OBJECTS: every class by its name and its snake-case name, plus the aliases.
_CLASSES: Dict[str, type] = {c.__name__: c for c in (
    Mean, Sum, MeanSquaredError, RootMeanSquaredError, MeanAbsoluteError,
    MeanAbsolutePercentageError, MeanSquaredLogarithmicError, CosineSimilarity, R2Score,
    AUC, FalseNegatives, FalsePositives, Precision, Recall, TrueNegatives, TruePositives,
    BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, Accuracy,
    BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy, F1Score, FBetaScore)}
_BY_NAME: Dict[str, type] = {**_CLASSES,
                             **{backend.snake_case(n): c for n, c in _CLASSES.items()}}
# Keras's to_snake_case gives these (its regex differs from the layer-name rule on digits).
_BY_NAME.update({"auc": AUC, "r2_score": R2Score, "f1_score": F1Score,
                 "f_beta_score": FBetaScore})
for _alias, _cls in (("bce", BinaryCrossentropy), ("mse", MeanSquaredError),
                     ("mae", MeanAbsoluteError), ("mape", MeanAbsolutePercentageError),
                     ("msle", MeanSquaredLogarithmicError)):
    _BY_NAME[_alias] = _BY_NAME[_alias.upper()] = _cls
# Metrics that need inputs other than (y_true, y_pred) cannot be compiled by name.
_NOT_COMPILABLE = {"Mean", "Sum", "mean", "sum"}
# Names accepted in ``compile(metrics=...)`` (and in saved compile configs).
NAMES = sorted(set(_BY_NAME) - _NOT_COMPILABLE) + ["acc", "accuracy"]


def is_builtin(metric: Any) -> bool:
    """True for instances of rnnkit's own metric classes (saved by config)."""
    return type(metric) in _CLASSES.values()


def serialize(metric: Metric) -> Dict[str, Any]:
    """``{"class_name", "config"}`` of a built-in metric."""
    if not is_builtin(metric):
        raise ValueError(f"serialize: {metric!r} is not an rnnkit metric class; custom "
                         "metrics cannot be written to a config")
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config: Dict[str, Any]) -> Metric:
    """Rebuild a metric from :func:`serialize` output."""
    if not isinstance(config, dict) or config.get("class_name") not in _CLASSES:
        raise ValueError(f"Unknown metric config {config!r}; `class_name` must be one of "
                         f"{sorted(_CLASSES)}")
    inner = config.get("config", {})
    if not isinstance(inner, dict):
        raise ValueError(f"metric config: `config` must be a dict, got {inner!r}")
    return _CLASSES[config["class_name"]].from_config(dict(inner))


def _accuracy_for(identifier: str, y_true: Any, y_pred: Any) -> Metric:
    """Keras's compile rule for "accuracy"/"acc": binary, sparse or categorical."""
    if y_true is None or y_pred is None:
        return BinaryAccuracy(name=identifier)
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    if yp.shape[-1] == 1:
        return BinaryAccuracy(name=identifier)
    if yt.ndim < yp.ndim or (yt.shape[-1] == 1 and yp.shape[-1] > 1):
        return SparseCategoricalAccuracy(name=identifier)
    return CategoricalAccuracy(name=identifier)


def get(identifier: Union[str, Metric, type, Dict[str, Any], Callable[..., Any]],
        y_true: Any = None, y_pred: Any = None, loss: Optional[losses_mod.Loss] = None
        ) -> Metric:
    """Resolve a metric as Keras's ``compile`` does.

    A string gives the class of that name (``"auc"``, ``"AUC"``, ``"mape"``...) named after
    the string; ``"accuracy"``/``"acc"`` picks binary/sparse/categorical accuracy from the
    shapes of ``y_true``/``y_pred``; a class is instantiated; a config dict is deserialized;
    a function ``(y_true, y_pred) -> per-sample values`` is wrapped in
    :class:`MeanMetricWrapper` named after the function (its ``name`` attribute, else its
    snake-cased ``__name__``); a :class:`Metric` instance is used as is.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc"):
            return _accuracy_for(identifier, y_true, y_pred)
        cls = _BY_NAME.get(identifier)
        if cls is None or identifier in _NOT_COMPILABLE:
            raise ValueError(f"Unknown metric: {identifier!r}; expected one of {NAMES}, a "
                             "Metric, a Metric class, a config dict or a function "
                             "(y_true, y_pred) -> per-sample values")
        return cls(name=identifier)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if inspect.isclass(identifier) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier) and not inspect.isclass(identifier):
        name = getattr(identifier, "name", None)
        if not isinstance(name, str):
            name = backend.snake_case(getattr(identifier, "__name__", "metric"))
            name = "".join(ch for ch in name if ch.isalnum() or ch == "_") or "metric"
        return MeanMetricWrapper(identifier, name=name)
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}; expected a "
                     "name, a Metric, a Metric class, a config dict or a function")


# Backwards compatible: the per-sample functions by name (rnnkit <= this change).
_FUNCS: Dict[str, Callable[..., np.ndarray]] = {
    "mse": losses_mod.mean_squared_error, "mean_squared_error": losses_mod.mean_squared_error,
    "mae": losses_mod.mean_absolute_error, "mean_absolute_error": losses_mod.mean_absolute_error,
    "mape": mean_absolute_percentage_error,
    "mean_absolute_percentage_error": mean_absolute_percentage_error,
    "msle": mean_squared_logarithmic_error,
    "mean_squared_logarithmic_error": mean_squared_logarithmic_error,
    "binary_accuracy": binary_accuracy, "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "top_k_categorical_accuracy": top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy": sparse_top_k_categorical_accuracy,
    "cosine_similarity": cosine_similarity,
    "binary_crossentropy": losses_mod.binary_crossentropy,
    "categorical_crossentropy": losses_mod.categorical_crossentropy,
    "sparse_categorical_crossentropy": losses_mod.sparse_categorical_crossentropy,
}
