"""Target encoders of the scikit-learn wrappers (Keras's TargetReshaper)."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class TargetReshaper(TransformerMixin, BaseEstimator):
    """1-D targets become ``(n, 1)`` and back (for OneHotEncoder, and for models with one
    output unit)."""

    def fit(self, y: np.ndarray) -> "TargetReshaper":
        self.ndim_ = np.ndim(y)
        return self

    def transform(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        if self.ndim_ == 1 and y.ndim == 2 and y.shape[1] == 1:
            return y[:, 0]
        return y
