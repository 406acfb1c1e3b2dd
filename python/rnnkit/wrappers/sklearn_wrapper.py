"""``SKLearnClassifier``, ``SKLearnRegressor`` and ``SKLearnTransformer``: Keras 3's
scikit-learn wrappers for rnnkit models.

``model`` is a compiled rnnkit model (cloned with :func:`rnnkit.models.clone_model` and
compiled the same way before each fit unless ``warm_start``) or a function
``model(X=..., y=..., **model_kwargs)`` returning a compiled model. Differences from Keras:

- nested parameters ``model__<name>`` (``get_params``/``set_params``, ``GridSearchCV``'s
  ``param_grid={"model__units": [8, 16]}``) are the entries of ``model_kwargs`` and so reach
  the build function;
- ``X`` may be 3-D ``(samples, timesteps, features)`` for sequence models (scikit-learn's own
  checks use 2-D data; ``n_features_in_`` is then ``X.shape[1]``, the time steps);
- ``fit`` does not modify ``fit_kwargs``; ``clone`` keeps ``fit_kwargs``;
- predictions of the classifier go through the target encoder fitted in ``fit``
  (one-hot of ``classes_``; string, integer and float labels alike).
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Optional, Union

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.utils.multiclass import type_of_target
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError("rnnkit.wrappers needs scikit-learn: pip install 'rnnkit[sklearn]'") from exc

from ..models import Model, clone_model
from ._target import TargetReshaper

__all__ = ["SKLearnClassifier", "SKLearnRegressor", "SKLearnTransformer"]

ModelArg = Union[Model, Callable[..., Model]]
_NESTED = "model__"


def _check_model(model: Any) -> None:
    if not isinstance(model, Model):
        raise TypeError(f"model must be an rnnkit Model or a function returning one; the function "
                        f"returned {type(model).__name__}")
    if not model.compiled:
        raise RuntimeError("model: the model must be compiled (with a loss and an optimizer)")


def _clone_compiled(model: Model) -> Model:
    """A fresh copy with new weights, compiled like ``model`` with a fresh optimizer."""
    fresh = clone_model(model)
    fresh.compile(**_compile_args(model))
    return fresh


def _compile_args(model: Model) -> Dict[str, Any]:
    args = copy.deepcopy(getattr(model, "_compile_args", None) or {})
    opt = model.optimizer
    if not args or opt is None:
        raise RuntimeError("model: cannot re-compile a clone of this model; pass a function "
                           "that builds and compiles it instead")
    # A fresh optimizer of the same configuration (no slots or step count carried over).
    args["optimizer"] = type(opt).from_config(opt.get_config())
    return args


class SKLBase(BaseEstimator):
    """Base class of the wrappers (see the module docstring).

    Args:
        model: a compiled rnnkit ``Model``, or a callable ``model(X=..., y=..., **model_kwargs)``
            returning one.
        warm_start: reuse the fitted model (and its weights) on the next ``fit``.
        model_kwargs: keyword arguments of ``model`` when it is callable (the ``model__*``
            parameters).
        fit_kwargs: keyword arguments of ``Model.fit`` (``epochs``, ``batch_size``, ...);
            keywords given to ``fit`` itself take precedence.

    Attributes:
        model_: the fitted model. history_: ``History.history`` of the last fit.
    """

    _multi_output = True  # 2-D targets are several outputs (not for the classifier)

    def __init__(self, model: ModelArg, warm_start: bool = False,
                 model_kwargs: Optional[Dict[str, Any]] = None,
                 fit_kwargs: Optional[Dict[str, Any]] = None) -> None:
        self.model = model
        self.warm_start = warm_start
        self.model_kwargs = model_kwargs
        self.fit_kwargs = fit_kwargs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True
        tags.input_tags.allow_nan = False
        tags.target_tags.multi_output = self._multi_output
        return tags

    # -- parameters: model__<name> are entries of model_kwargs ---------------------------
    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        params = super().get_params(deep=False)
        if deep and isinstance(self.model_kwargs, dict):  # validated in fit, not here
            for key, value in self.model_kwargs.items():
                params[_NESTED + key] = value
        return params

    def set_params(self, **params: Any) -> "SKLBase":
        nested = {k[len(_NESTED):]: params.pop(k) for k in list(params) if k.startswith(_NESTED)}
        if "model_kwargs" in params:
            self.model_kwargs = params.pop("model_kwargs")
        if nested:
            base = self.model_kwargs if isinstance(self.model_kwargs, dict) else {}
            self.model_kwargs = {**base, **nested}
        if params:
            super().set_params(**params)
        return self

    # -- fitting ---------------------------------------------------------------------------
    @property
    def epoch_(self) -> int:
        """The number of epochs of the last fit."""
        return len(next(iter(getattr(self, "history_", {}).values()), []))

    def _get_model(self, X: np.ndarray, y: np.ndarray) -> Model:
        if self.warm_start and hasattr(self, "model_"):
            return self.model_
        if isinstance(self.model, Model):
            return self.model if self.warm_start else _clone_compiled(self.model)
        if not callable(self.model):
            raise TypeError(f"model must be an rnnkit Model or a callable returning one; got "
                            f"{type(self.model).__name__}")
        return self.model(X=X, y=y, **(self.model_kwargs or {}))

    def _validate_X(self, X: Any, reset: bool) -> np.ndarray:
        return validate_data(self, X, reset=reset, allow_nd=True, dtype=np.float32)

    def fit(self, X: Any, y: Any, **kwargs: Any) -> "SKLBase":
        """Fit the model on ``X`` (2-D, or 3-D for sequence models) and ``y``; ``kwargs``
        go to ``Model.fit`` on top of ``fit_kwargs``."""
        X, y = validate_data(self, X, y, allow_nd=True, dtype=np.float32,
                             multi_output=self._multi_output,
                             y_numeric=not isinstance(self, ClassifierMixin))
        for name in ("model_kwargs", "fit_kwargs"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict or None; got {type(value).__name__}")
        y = self._process_target(y, reset=True)
        model = self._get_model(X, y)
        _check_model(model)
        fit_kwargs = {"verbose": 0, **(self.fit_kwargs or {}), **kwargs}
        history = model.fit(X, y, **fit_kwargs)
        self.history_ = dict(getattr(history, "history", {}) or {})
        self.model_ = model
        return self

    def _raw_predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return np.asarray(self.model_.predict(X, verbose=0))

    def predict(self, X: Any) -> np.ndarray:
        """Predictions for ``X``, decoded by the target encoder."""
        return self._reverse_process_target(self._raw_predict(X))

    def _process_target(self, y: np.ndarray, reset: bool = False) -> np.ndarray:
        type_of_target(y, raise_unknown=True)
        if reset:
            self._target_encoder = TargetReshaper().fit(y)
        return self._target_encoder.transform(y).astype(np.float32)

    def _reverse_process_target(self, y: np.ndarray) -> np.ndarray:
        return self._target_encoder.inverse_transform(y)


class SKLearnClassifier(ClassifierMixin, SKLBase):
    """scikit-learn classifier around an rnnkit model (Keras 3's ``SKLearnClassifier``).

    Labels (strings, integers, ...) are one-hot encoded over ``classes_`` before training;
    the model should end in ``Dense(n_classes, activation="softmax")`` (the build function
    gets the encoded ``y``: ``y.shape[1]`` is the number of classes) and be compiled with
    ``categorical_crossentropy``. ``predict`` returns labels, ``predict_proba`` the model's
    outputs, ``score`` the accuracy.

    Attributes:
        classes_: the sorted labels seen in ``fit``.
    """

    _multi_output = False  # Keras: binary and multiclass targets only

    def _process_target(self, y: np.ndarray, reset: bool = False) -> np.ndarray:
        target_type = type_of_target(y, raise_unknown=True)
        if target_type not in ("binary", "multiclass"):
            raise ValueError(f"y: only binary and multiclass targets are supported; got "
                             f"{target_type}")
        if reset:
            self._target_encoder = make_pipeline(
                TargetReshaper(), OneHotEncoder(sparse_output=False)).fit(y)
            self.classes_ = np.unique(y)
            if len(self.classes_) == 1:
                raise ValueError("y: the classifier can't train when only one class is present")
        return self._target_encoder.transform(y).astype(np.float32)

    def _reverse_process_target(self, y: np.ndarray) -> np.ndarray:
        # argmax, not the encoder's inverse: model outputs are probabilities, not one-hot.
        return self.classes_[np.argmax(y.reshape(len(y), -1), axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)``, columns in ``classes_`` order."""
        return self._raw_predict(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """The model's outputs (Keras: ``model.predict``); for two classes only the second
        class's column, shape ``(n_samples,)``, as scikit-learn expects of binary
        classifiers (Keras returns both columns)."""
        out = self._raw_predict(X)
        if len(self.classes_) == 2 and out.ndim == 2 and out.shape[1] == 2:
            return out[:, 1]
        return out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True
        return tags


class SKLearnRegressor(RegressorMixin, SKLBase):
    """scikit-learn regressor around an rnnkit model (Keras 3's ``SKLearnRegressor``);
    ``score`` is R^2. 1-D ``y`` is passed as ``(n, 1)`` and predictions come back 1-D, as
    float64 (scikit-learn's convention for regressors; the model computes in float32)."""

    def predict(self, X: Any) -> np.ndarray:
        """Predictions for ``X`` (float64)."""
        return super().predict(X).astype(np.float64)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True
        return tags


class SKLearnTransformer(TransformerMixin, SKLBase):
    """scikit-learn transformer around an rnnkit model (Keras 3's ``SKLearnTransformer``):
    ``fit`` trains the model on ``(X, y)``, ``transform`` returns ``model.predict(X)``
    (e.g. an embedding); wrap it in ``sklearn.frozen.FrozenEstimator`` to skip training."""

    def transform(self, X: Any) -> np.ndarray:
        """``model_.predict(X)``."""
        return self._raw_predict(X)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []
        return tags
