"""Benchmark: the tutorial's ``fit`` (20 epochs) on the C++ kernels vs the NumPy reference.

Same model, same initial weights, same data, ``shuffle=False``: the two backends must give the
same loss history (float32 rounding). No timing assertions; CI runs this with
``--benchmark-disable`` so it never rots.
"""
from __future__ import annotations

from typing import List

import numpy as np
import pytest

from rnnkit import backend
from rnnkit.layers import Dense, SimpleRNN
from rnnkit.models import Sequential

pytest.importorskip("pytest_benchmark")


def _data():
    rng = np.random.default_rng(0)
    x_data = np.linspace(-2 * np.pi, 2 * np.pi)
    sin_data = np.sin(x_data) + 0.1 * rng.standard_normal(len(x_data))
    n = len(x_data) - 10
    x = np.stack([sin_data[i:i + 10] for i in range(n)])[..., None]
    t = np.stack([sin_data[i + 1:i + 11] for i in range(n)])[..., None]
    return x, t


X, T = _data()
backend.set_random_seed(0)
_TEMPLATE = Sequential([SimpleRNN(20, input_shape=(10, 1), return_sequences=True), Dense(1)])
W0 = _TEMPLATE.get_weights()


def _fit(kernels: str) -> List[float]:
    with backend.use_kernels(kernels):
        model = Sequential([SimpleRNN(20, input_shape=(10, 1), return_sequences=True), Dense(1)])
        model.set_weights(W0)
        model.compile(loss="mean_squared_error", optimizer="sgd")
        return model.fit(X, T, epochs=20, batch_size=8, validation_split=0.1, shuffle=False,
                         verbose=0).history["loss"]


@pytest.mark.benchmark(group="fit_tutorial")
@pytest.mark.parametrize("kernels", ["ops", "reference"])
def test_fit_tutorial(benchmark, kernels: str) -> None:
    losses = benchmark(_fit, kernels)
    other = _fit("reference" if kernels == "ops" else "ops")
    np.testing.assert_allclose(losses, other, rtol=1e-4)
    assert losses[-1] < losses[0]
