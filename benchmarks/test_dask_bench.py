"""Benchmarks for rnnkit.dask (extra ``rnnkit[dask]``): predict throughput on a
LocalCluster of 1 and 2 single-thread worker processes, and the data-parallel ``fit`` step
time against single-process ``fit``. Only runs with benchmarks enabled
(``pytest benchmarks/test_dask_bench.py --benchmark-enable``); the test suite skips it.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import rnnkit  # noqa: E402
import rnnkit.dask as rdask  # noqa: E402
from rnnkit import layers, optimizers  # noqa: E402

TIMEOUT = 300
RNG = np.random.default_rng(0)
X = RNG.standard_normal((4096, 50, 32)).astype(np.float32)
Y = RNG.standard_normal((4096, 1)).astype(np.float32)


@pytest.fixture(autouse=True)
def _only_when_enabled(request):
    opt = request.config.getoption
    if opt("benchmark_disable", False) and not opt("benchmark_enable", False):
        pytest.skip("a cluster benchmark: run with --benchmark-enable")


def _model():
    m = rnnkit.Sequential([layers.Input((50, 32)), layers.LSTM(128), layers.Dense(1)])
    m.compile(optimizers.Adam(1e-3), "mse")
    return m


@pytest.fixture(scope="module", params=[1, 2], ids=["1worker", "2workers"])
def client(request):
    cluster = distributed.LocalCluster(n_workers=request.param, threads_per_worker=1,
                                       processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    c = distributed.Client(cluster, timeout=TIMEOUT)
    try:
        yield c
    finally:
        c.close(timeout=TIMEOUT)
        cluster.close(timeout=TIMEOUT)


def test_predict_throughput(benchmark, client):
    model = _model()
    dx = da.from_array(X, chunks=(512, -1, -1))
    client.compute(rdask.predict(model, dx, client=client)).result(timeout=TIMEOUT)  # warm up
    out = benchmark(lambda: client.compute(rdask.predict(model, dx, client=client, batch_size=256)
                                           ).result(timeout=TIMEOUT))
    benchmark.extra_info["sequences"] = len(X)
    assert out.shape == (len(X), 1)


def test_predict_local(benchmark):
    model = _model()
    out = benchmark(lambda: model.predict(X, batch_size=256, verbose=0))
    assert out.shape == (len(X), 1) and np.all(np.isfinite(out))


@pytest.mark.parametrize("batch", [64, 512])
def test_fit_step_dask(benchmark, client, batch):
    model = _model()
    n = batch * 4
    rdask.fit(model, X[:n], Y[:n], client=client, batch_size=batch, timeout=TIMEOUT)  # warm up
    h = benchmark.pedantic(lambda: rdask.fit(model, X[:n], Y[:n], client=client,
                                             batch_size=batch, timeout=TIMEOUT),
                           rounds=3, iterations=1)
    benchmark.extra_info["seconds_per_step"] = h.params["seconds_per_step"]
    assert len(h.history["loss"]) == 1 and np.isfinite(h.history["loss"][0])


@pytest.mark.parametrize("batch", [64, 512])
def test_fit_step_local(benchmark, batch):
    model = _model()
    n = batch * 4
    model.fit(X[:n], Y[:n], batch_size=batch, shuffle=False, verbose=0)  # warm up
    h = benchmark.pedantic(lambda: model.fit(X[:n], Y[:n], batch_size=batch, shuffle=False,
                                             verbose=0), rounds=3, iterations=1)
    assert len(h.history["loss"]) == 1 and np.isfinite(h.history["loss"][0])
