"""GridSearchCV wall time of rnnkit's scikit-learn estimator: serial (n_jobs=1, rnnkit's 2
threads) vs 2 worker processes (n_jobs=2: joblib gives each worker OMP_NUM_THREADS=1, which
rnnkit's threads-per-worker rule honours), and on the dask joblib backend with a 2-worker
LocalCluster. Extras ``rnnkit[sklearn]`` (+ ``rnnkit[dask]``); runs only with
``pytest benchmarks/test_gridsearch.py --benchmark-enable``. Compare the rows' ratios, not
their absolute times (shared machines are noisy)."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")
pytest.importorskip("sklearn")
from sklearn.model_selection import GridSearchCV  # noqa: E402

from _dask_estimator import build_regressor  # noqa: E402
from rnnkit.wrappers import SKLearnRegressor  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.standard_normal((768, 20, 4)).astype(np.float32)
Y = (X[:, -1, 0] - X[:, 0, 1]).astype(np.float32)
GRID = {"model__units": [16, 32], "model__lr": [0.01]}


@pytest.fixture(autouse=True)
def _only_when_enabled(request: Any) -> None:
    opt = request.config.getoption
    if opt("benchmark_disable", False) and not opt("benchmark_enable", False):
        pytest.skip("a multi-process benchmark: run with --benchmark-enable")


@contextlib.contextmanager
def _dask_backend() -> Iterator[None]:
    distributed = pytest.importorskip("distributed")
    joblib = pytest.importorskip("joblib")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster), joblib.parallel_backend("dask"):
        yield


@pytest.mark.parametrize("mode", ["serial", "n_jobs=2", "dask-2-workers"])
def test_gridsearch_wall_time(benchmark: Any, mode: str) -> None:
    est = SKLearnRegressor(model=build_regressor, model_kwargs={"units": 16, "lr": 0.01},
                           fit_kwargs={"epochs": 20, "batch_size": 64, "verbose": 0})
    n_jobs = 1 if mode == "serial" else -1 if mode.startswith("dask") else 2
    search = GridSearchCV(est, GRID, cv=3, n_jobs=n_jobs)
    ctx = _dask_backend() if mode.startswith("dask") else contextlib.nullcontext()
    with ctx:
        benchmark.pedantic(search.fit, args=(X, Y), rounds=1, iterations=1)
    assert np.isfinite(search.best_score_)
