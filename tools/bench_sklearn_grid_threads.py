"""Wall time of GridSearchCV over a small LSTM classifier: ``n_jobs=1`` with 2 threads vs
``n_jobs=2`` with 1 thread per worker (README, "Beyond one process").

    python tools/bench_sklearn_grid_threads.py seq|par [epochs]
    RNNKIT_NUM_THREADS=2 python tools/bench_sklearn_grid_threads.py par   # oversubscribed

Needs scikit-learn (``rnnkit[sklearn]``).
"""
from __future__ import annotations

import sys
import time

import numpy as np
from sklearn.model_selection import GridSearchCV

import rnnkit as rk
from rnnkit.layers import LSTM, Dense, Input
from rnnkit.wrappers import SKLearnClassifier


def build(X, y, units=16):
    model = rk.Sequential([Input(X.shape[1:]), LSTM(units),
                           Dense(y.shape[1], activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "seq"
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1536, 20, 4)).astype(np.float32)
    y = (X[:, :, 0].sum(axis=1) > 0).astype(int)
    grid = {"model__units": [16, 32], "fit_kwargs": [{"epochs": epochs, "batch_size": 32}]}
    if mode == "seq":
        rk.set_num_threads(2)
    n_jobs = 1 if mode == "seq" else 2
    start = time.perf_counter()
    GridSearchCV(SKLearnClassifier(build), grid, cv=3, n_jobs=n_jobs).fit(X, y)
    print(mode, round(time.perf_counter() - start, 2))


if __name__ == "__main__":
    main()
