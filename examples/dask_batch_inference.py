"""Batch inference on a Dask cluster with ``rnnkit.dask.predict`` (extra ``rnnkit[dask]``).

Run: ``python examples/dask_batch_inference.py``. Starts a LocalCluster of 2 worker
processes (1 thread each, loopback only), builds a masked LSTM classifier, predicts a
sequence dataset split into several chunks along the batch axis, checks the result against
local ``model.predict`` and prints the comparison and the timings. Takes a few seconds.
"""
from __future__ import annotations

import time

import numpy as np


def build_model():
    """A small masked LSTM classifier (untrained weights are enough to compare outputs)."""
    import rnnkit
    from rnnkit import layers

    model = rnnkit.Sequential([layers.Input((40, 8)), layers.Masking(0.0), layers.LSTM(32),
                               layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    """Start the cluster, predict on it and locally, compare and report."""
    try:
        import dask.array as da
        from distributed import Client, LocalCluster
    except ImportError:
        raise SystemExit("this example needs the dask extra: pip install 'rnnkit[dask]'")
    import rnnkit.dask as rdask

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 40, 8)).astype(np.float32)
    x[::7, 30:] = 0.0  # some padded (masked) tails
    y = rng.integers(0, 3, size=4000)
    model = build_model()

    t = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        print(f"cluster up in {time.perf_counter() - t:.2f}s: {len(cluster.workers)} workers")
        dx = da.from_array(x, chunks=(500, -1, -1))  # 8 chunks along the batch axis only
        lazy = rdask.predict(model, dx, client=client, batch_size=250)
        print(f"lazy result: shape {lazy.shape}, chunks {lazy.chunks[0]}, dtype {lazy.dtype}")
        t = time.perf_counter()
        on_cluster = client.compute(lazy).result(timeout=120)
        t_cold = time.perf_counter() - t  # includes the workers importing rnnkit
        t = time.perf_counter()
        on_cluster = client.compute(rdask.predict(model, dx, client=client, batch_size=250)
                                    ).result(timeout=120)
        t_cluster = time.perf_counter() - t
        t = time.perf_counter()
        local = model.predict(x, batch_size=250, verbose=0)
        t_local = time.perf_counter() - t
        diff = float(np.abs(on_cluster - local).max())
        print(f"dask predict: {t_cold:.3f}s first (workers import rnnkit), {t_cluster:.3f}s "
              f"warm   local predict: {t_local:.3f}s   ({len(x)} sequences)")
        print(f"max |dask - local| = {diff:.3g}")
        loss_acc = rdask.evaluate(model, dx, da.from_array(y, chunks=500), client=client,
                                  batch_size=250)
        print(f"dask evaluate: loss {loss_acc[0]:.4f}, accuracy {loss_acc[1]:.4f}; local: "
              f"{model.evaluate(x, y, batch_size=250, verbose=0)}")
        if diff > 1e-5:
            raise SystemExit("dask and local predictions differ")
    print("ok: dask predict matches local predict")


if __name__ == "__main__":
    main()
