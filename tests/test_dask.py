"""rnnkit.dask (extra ``rnnkit[dask]``): predict / evaluate over dask arrays, data-parallel
fit, GridSearchCV under joblib's dask backend, and the clear errors — all on one
module-scoped LocalCluster of 2 single-thread worker processes on loopback."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import rnnkit  # noqa: E402
import rnnkit.dask as rdask  # noqa: E402
from rnnkit import layers, optimizers  # noqa: E402

TIMEOUT = 60
RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       worker_dashboard_address=None)
    c = distributed.Client(cluster, timeout=TIMEOUT)
    try:
        c.wait_for_workers(2, timeout=TIMEOUT)
        yield c
    finally:
        c.close(timeout=TIMEOUT)
        cluster.close(timeout=TIMEOUT)


def compute(client, arr):
    return client.compute(arr).result(timeout=TIMEOUT)


def _masked_lstm():
    m = rnnkit.Sequential([layers.Input((7, 3)), layers.Masking(0.0), layers.LSTM(5),
                           layers.Dense(2)])
    m.compile(optimizers.Adam(0.01), "mse", metrics=["mae"])
    return m


def _data(n=70, t=7, f=3, out=2):
    x = RNG.standard_normal((n, t, f)).astype(np.float32)
    x[3, 4:] = 0.0  # a masked tail
    y = RNG.standard_normal((n, out)).astype(np.float32)
    return x, y


def test_predict_matches_local(client):
    model = _masked_lstm()
    x, _ = _data()
    dx = da.from_array(x, chunks=(32, 7, 3))  # 3 chunks: 32, 32, 6
    out = rdask.predict(model, dx, client=client, batch_size=16)
    assert isinstance(out, da.Array)
    assert out.chunks == ((32, 32, 6), (2,)) and out.dtype == np.float32
    assert isinstance(out._meta, np.ndarray) and out._meta.ndim == 2
    np.testing.assert_array_equal(compute(client, out), model.predict(x, batch_size=16, verbose=0))


def test_predict_embedding_multi_input_output(client):
    tok = rnnkit.Input((6,), dtype="int32", name="tok")
    aux = rnnkit.Input((6, 2), name="aux")
    e = layers.Embedding(11, 4, mask_zero=True)(tok)
    h = layers.GRU(5, return_sequences=True)(layers.Concatenate()([e, aux]))
    model = rnnkit.Model([tok, aux], [layers.Dense(1)(h), layers.GRU(3)(h)])
    ids = RNG.integers(0, 11, size=(45, 6)).astype(np.int32)
    ids[:5, 3:] = 0
    a = RNG.standard_normal((45, 6, 2)).astype(np.float32)
    outs = rdask.predict(model, {"tok": da.from_array(ids, chunks=20),
                                 "aux": da.from_array(a, chunks=15)}, batch_size=8)
    assert isinstance(outs, list) and len(outs) == 2
    assert outs[0].chunks[0] == (20, 20, 5) and outs[1].shape == (45, 3)
    local = model.predict([ids, a], batch_size=8, verbose=0)
    for got, want in zip(client.gather(client.compute(outs)), local):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_predict_default_client(client):
    model = _masked_lstm()
    x, _ = _data(20)
    out = rdask.predict(model, da.from_array(x, chunks=8), batch_size=8)  # the default client
    np.testing.assert_array_equal(compute(client, out), model.predict(x, batch_size=8, verbose=0))


def test_predict_without_client_runs_on_any_scheduler(monkeypatch):
    def no_client():
        raise ValueError("No clients found")

    monkeypatch.setattr(distributed, "get_client", no_client)
    model = _masked_lstm()
    x, _ = _data(20)
    out = rdask.predict(model, da.from_array(x, chunks=8), client=None, batch_size=8)
    np.testing.assert_array_equal(out.compute(scheduler="sync"),
                                  model.predict(x, batch_size=8, verbose=0))


def test_evaluate_matches_local(client):
    model = _masked_lstm()
    x, y = _data(96)
    want = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    got = rdask.evaluate(model, da.from_array(x, chunks=32), da.from_array(y, chunks=32),
                         client=client, batch_size=16, return_dict=True)
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-6)
    # uneven chunks: still the per-sample mean
    got2 = rdask.evaluate(model, da.from_array(x, chunks=40), da.from_array(y, chunks=40),
                          client=client, batch_size=16)
    assert got2[0] == pytest.approx(want["loss"], rel=1e-5)


def test_evaluate_refuses_non_mean_metrics(client):
    model = rnnkit.Sequential([layers.Input((4, 2)), layers.SimpleRNN(3),
                               layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy", metrics=["auc"])
    x = RNG.standard_normal((20, 4, 2)).astype(np.float32)
    y = (RNG.random((20, 1)) > 0.5).astype(np.float32)
    with pytest.raises(ValueError, match="auc"):
        rdask.evaluate(model, da.from_array(x, chunks=10), da.from_array(y, chunks=10),
                       client=client)


@pytest.mark.parametrize("shuffle", [False, True])
def test_fit_matches_local_fit(client, shuffle):
    def make():
        m = rnnkit.Sequential([layers.Input((6, 3)), layers.GRU(8),
                               layers.Dense(2, kernel_regularizer="l2")])
        m.compile(optimizers.Adam(0.01), "mse")
        return m

    x = RNG.standard_normal((100, 6, 3)).astype(np.float32)
    y = RNG.standard_normal((100, 2)).astype(np.float32)
    local, dist = make(), make()
    dist.set_weights(local.get_weights())
    rnnkit.utils.set_random_seed(3)
    h_local = local.fit(x, y, epochs=2, batch_size=32, shuffle=shuffle, verbose=0)
    rnnkit.utils.set_random_seed(3)
    h = rdask.fit(dist, da.from_array(x, chunks=30), y, client=client, epochs=2,
                  batch_size=32, shuffle=shuffle, timeout=TIMEOUT)
    for a, b in zip(dist.get_weights(), local.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h.history["loss"], h_local.history["loss"], rtol=1e-5)
    assert h.params["workers"] == 2
    # the optimizer state came back too: one more local step agrees
    local.train_on_batch(x[:8], y[:8])
    dist.train_on_batch(x[:8], y[:8])
    for a, b in zip(dist.get_weights(), local.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_gridsearch_on_dask_backend(client):
    pytest.importorskip("sklearn")
    joblib = pytest.importorskip("joblib")
    from sklearn.model_selection import GridSearchCV

    # importable by the workers (tests/ is on their sys.path), so it pickles by reference
    from _dask_estimator import build_regressor
    from rnnkit.wrappers import SKLearnRegressor

    x = RNG.standard_normal((48, 5, 2)).astype(np.float32)
    y = x[:, -1, 0] * 0.5
    est = SKLearnRegressor(model=build_regressor, model_kwargs={"units": 4, "lr": 0.01},
                           fit_kwargs={"epochs": 2, "batch_size": 16, "verbose": 0})
    search = GridSearchCV(est, {"model__units": [2, 4], "model__lr": [0.01, 0.05]}, cv=2,
                          n_jobs=-1)
    with joblib.parallel_backend("dask", wait_for_workers_timeout=TIMEOUT):
        search.fit(x, y)
    assert set(search.best_params_) == {"model__units", "model__lr"}
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


# -- clear errors --------------------------------------------------------------------------
def test_error_chunked_along_time_or_features(client):
    model = _masked_lstm()
    x, y = _data(20)
    with pytest.raises(ValueError, match=r"axis 1 \(time\) into chunks \(4, 3\)"):
        rdask.predict(model, da.from_array(x, chunks=(10, 4, 3)), client=client)
    with pytest.raises(ValueError, match=r"axis 2 \(features\)"):
        rdask.evaluate(model, da.from_array(x, chunks=(10, 7, 2)), y, client=client)
    with pytest.raises(ValueError, match=r"axis 1 \(time\)"):
        rdask.fit(model, da.from_array(x, chunks=(10, 2, 3)), y, client=client)


def test_error_unreachable_client(client):
    model = _masked_lstm()
    x, y = _data(10)
    closed = distributed.Client(client.scheduler.address, timeout=TIMEOUT,
                                set_as_default=False)
    closed.close()
    with pytest.raises(ConnectionError, match="cannot be reached"):
        rdask.predict(model, da.from_array(x, chunks=(5, -1, -1)), client=closed)
    with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler"):
        rdask.fit(model, x, y, client="tcp://127.0.0.1:1", timeout=1)
    with pytest.raises(TypeError, match="`client`"):
        rdask.predict(model, da.from_array(x, chunks=(5, -1, -1)), client=42)


def test_error_unpicklable_model(client):
    inp = rnnkit.Input((7, 3))
    model = rnnkit.Model(inp, layers.Lambda(lambda t: t * 2)(layers.LSTM(2)(inp)))
    model.compile("sgd", "mse")
    x, y = _data(10)
    with pytest.raises(pickle.PicklingError, match="Lambda"):
        rdask.predict(model, da.from_array(x, chunks=(5, -1, -1)), client=client)
    with pytest.raises(pickle.PicklingError, match="cannot be sent to Dask workers"):
        rdask.fit(model, x, y, client=client)


def test_error_arguments(client):
    model = _masked_lstm()
    x, y = _data(10)
    with pytest.raises(ValueError, match="`batch_size`"):
        rdask.predict(model, da.from_array(x, chunks=(5, -1, -1)), batch_size=0)
    with pytest.raises(TypeError, match="dask.array"):
        rdask.predict(model, [[1.0]])
    with pytest.raises(ValueError, match="`workers`"):
        rdask.fit(model, x, y, client=client, workers=5)


def test_missing_extra_names_it():
    import subprocess
    import sys

    code = ("import sys; sys.modules['dask'] = None; sys.modules['dask.array'] = None\n"
            "try:\n    import rnnkit.dask\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "rnnkit[dask]" in out


def test_fit_checks_shapes_before_sending(client):
    model = _masked_lstm()
    x, y = _data(10)
    with pytest.raises(ValueError, match="rnnkit.dask.fit"):
        rdask.fit(model, x[:, :, :2], y, client=client)


_HIDE_RNNKIT = """
def hide(on):
    import sys
    if on:
        sys.modules["_rnnkit_hidden"] = sys.modules.get("rnnkit")
        sys.modules["rnnkit"] = None  # import rnnkit now fails on this worker
    else:
        sys.modules["rnnkit"] = sys.modules.pop("_rnnkit_hidden")
"""


def test_error_worker_without_rnnkit(client):
    """A worker that cannot import rnnkit is named before anything is sent to it."""
    from rnnkit.dask import _common

    namespace = {"__name__": "rnnkit_test_hide"}
    exec(_HIDE_RNNKIT, namespace)
    worker = sorted(client.scheduler_info()["workers"])[0]
    model = _masked_lstm()
    x, _ = _data()
    _common._CHECKED.pop(client, None)
    client.run(namespace["hide"], True, workers=[worker])
    try:
        with pytest.raises(RuntimeError, match="rnnkit cannot be imported on Dask worker"):
            rdask.predict(model, da.from_array(x, chunks=(35, -1, -1)), client=client)
    finally:
        client.run(namespace["hide"], False, workers=[worker])
        _common._CHECKED.pop(client, None)
