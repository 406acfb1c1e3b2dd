"""A minimal scikit-learn estimator around an rnnkit model, for tests/test_dask.py's
GridSearchCV on the dask joblib backend (a stand-in until rnnkit.wrappers lands). Needs
scikit-learn: import it only after ``pytest.importorskip("sklearn")``."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

import rnnkit
from rnnkit import layers, optimizers


class TinyRNNRegressor(RegressorMixin, BaseEstimator):
    """SimpleRNN(units) -> Dense(1), trained with Adam(lr) for ``epochs``."""

    def __init__(self, units: int = 4, lr: float = 0.01, epochs: int = 2) -> None:
        self.units, self.lr, self.epochs = units, lr, epochs

    def fit(self, x: np.ndarray, y: np.ndarray) -> "TinyRNNRegressor":
        self.model_ = rnnkit.Sequential([layers.Input(x.shape[1:]), layers.SimpleRNN(self.units),
                                         layers.Dense(1)])
        self.model_.compile(optimizers.Adam(self.lr), "mse")
        self.model_.fit(x, y, epochs=self.epochs, batch_size=16, verbose=0)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model_.predict(x, verbose=0)[:, 0]
