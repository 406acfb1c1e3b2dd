"""A model-building function for tests/test_dask.py's GridSearchCV of
``rnnkit.wrappers.SKLearnRegressor`` on the dask joblib backend: defined in an importable
module (tests/ is on the workers' sys.path) so that it pickles by reference."""
from __future__ import annotations

from typing import Any

import rnnkit
from rnnkit import layers, optimizers


def build_regressor(X: Any, y: Any, units: int = 4, lr: float = 0.01) -> rnnkit.Sequential:
    """SimpleRNN(units) -> Dense(1), compiled with Adam(lr) and mse."""
    model = rnnkit.Sequential([layers.Input(X.shape[1:]), layers.SimpleRNN(units),
                               layers.Dense(1)])
    model.compile(optimizers.Adam(lr), "mse")
    return model
