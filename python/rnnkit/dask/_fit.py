"""``rnnkit.dask.fit``: synchronous data-parallel training on a ``distributed`` cluster.

One Dask Actor per worker holds a replica of the model (unpickled from bytes scattered
once) and the rows it will train on. Every step of a global batch of ``b`` rows, replica
``i`` computes the loss and the gradients of its shard of ``n_i`` rows; the client sums
``n_i / b * g_i`` (the gradient of the global batch's mean loss) and sends the average
back with the next step's call, so each step costs one round trip client <-> workers
(actor calls go straight to the workers, not through the scheduler). Every replica then
applies the same averaged gradients with its own copy of the optimizer, so the replicas
stay identical, as the single-process model would be.
"""
from __future__ import annotations

import pickle
import time
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from . import _common


class _Replica:
    """Dask Actor: a model replica and its rows of the training data."""

    def __init__(self, blob: bytes, xs: List[np.ndarray], ys: List[np.ndarray]) -> None:
        _common.match_worker_threads()
        self.model = pickle.loads(blob)
        self.xs, self.ys = xs, ys

    def _apply(self, grads: Optional[List[np.ndarray]]) -> None:
        if grads is None:
            return
        from .. import constraints as constraints_mod

        tw = self.model.trainable_weights
        self.model.optimizer.apply(grads, [w.value for w in tw])
        constraints_mod.apply_constraints(tw)  # Keras: after optimizer.apply

    def step(self, grads: Optional[List[np.ndarray]], rows: Optional[np.ndarray]
             ) -> Tuple[int, float, Optional[List[np.ndarray]]]:
        """Apply the previous step's averaged ``grads`` (if any), then return ``(n, loss,
        gradients)`` for the shard ``rows`` (indices into this replica's data)."""
        self._apply(grads)
        if rows is None or len(rows) == 0:
            return 0, 0.0, None
        x = [a[rows] for a in self.xs]
        y = [a[rows] for a in self.ys]
        loss, g = self.model.loss_and_gradients(x if len(x) > 1 else x[0],
                                                y if len(y) > 1 else y[0], training=True)
        return len(rows), float(loss), [np.array(a, copy=True) for a in g]

    def finish(self, grads: Optional[List[np.ndarray]]) -> bytes:
        """Apply the last gradients, finalize the optimizer (EMA), return the model bytes."""
        self._apply(grads)
        self.model.optimizer.finalize_variable_values(
            [w.value for w in self.model.trainable_weights])
        return pickle.dumps(self.model, protocol=pickle.HIGHEST_PROTOCOL)


def _to_numpy_list(model: Any, data: Any, names: Sequence[str], where: str, arg: str
                   ) -> List[Any]:
    if isinstance(data, dict):
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"{where}: `{arg}` is missing {missing}")
        return [data[n] for n in names]
    return list(data) if isinstance(data, (list, tuple)) else [data]


def _take(a: Any, rows: np.ndarray, client: Any, worker: str) -> Any:
    """``a[rows]`` placed on ``worker``: computed there for a dask array, scattered for
    NumPy."""
    _, da = _common.require_dask()
    if isinstance(a, da.Array):
        return client.compute(a[rows], workers=[worker], allow_other_workers=False)
    return client.scatter(np.asarray(a)[rows], workers=[worker], hash=False)


def _shards(b: int, k: int) -> List[Tuple[int, int]]:
    """``k`` contiguous ``(start, stop)`` pieces of ``range(b)`` (sizes differ by <= 1)."""
    edges = np.linspace(0, b, k + 1).round().astype(int)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(k)]


def fit(model: Any, x: Any, y: Any, client: Any = None, epochs: int = 1, batch_size: int = 32,
        shuffle: bool = False, workers: Optional[int] = None, timeout: float = 60.0,
        verbose: int = 0) -> Any:
    """Train ``model`` in place, data-parallel over the cluster's workers; returns a
    :class:`~rnnkit.callbacks.History` with the epoch ``loss``.

    ``x``/``y``: NumPy or dask arrays (dask: chunked along the batch axis only), lists or
    dicts for several inputs / outputs. The global batches are those of ``model.fit``
    (``batch_size`` rows, in order; ``shuffle=True`` permutes the rows every epoch with
    rnnkit's RNG as ``fit`` does, and then every worker holds all the data). Each global
    batch is split into one contiguous shard per worker; the gradients of the shards,
    weighted by their sizes, average to the gradient of the whole batch, so with the same
    order the weights equal single-process ``fit``'s up to float32 rounding for losses that
    are means over samples (the default ``sum_over_batch_size``; masks and sample weights
    are not supported here). ``workers``: how many of the cluster's workers to use (default
    all). Dropout and other training-time randomness differ per replica. ``timeout``
    bounds every step (seconds).
    """
    from .. import callbacks as callbacks_mod

    where = "rnnkit.dask.fit"
    _common.require_dask()
    if getattr(model, "optimizer", None) is None:
        raise ValueError(f"{where}: compile the model first")
    if (not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool)
            or batch_size <= 0):
        raise ValueError(f"{where}: `batch_size` must be a positive int, got {batch_size!r}")
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"{where}: `epochs` must be a non-negative int, got {epochs!r}")
    xs = _to_numpy_list(model, x, model.input_names, where, "x")
    ys = _to_numpy_list(model, y, model.output_names, where, "y")
    _, da = _common.require_dask()
    for arg, arrs in (("x", xs), ("y", ys)):
        dask_ones = [a for a in arrs if isinstance(a, da.Array)]
        if dask_ones:
            _common.check_batch_chunked(dask_ones, where, arg)
    n = int(xs[0].shape[0])
    if any(int(a.shape[0]) != n for a in xs + ys):
        raise ValueError(f"{where}: `x` and `y` must have the same number of samples, got "
                         f"{[a.shape[0] for a in xs + ys]}")
    # Shapes and dtypes checked here (on one row) rather than on the workers.
    head = [np.asarray(a[:1]) for a in xs + ys]
    hx, hy = head[:len(xs)], head[len(xs):]
    model._check_xy(model._check_x(hx if len(hx) > 1 else hx[0], where),
                    hy if len(hy) > 1 else hy[0], where)
    blob = _common.model_bytes(model, where)
    client = _common.get_client(client, where, required=True, timeout=timeout)
    _common.check_workers(client, where)
    addresses = sorted(client.scheduler_info()["workers"])
    if workers is not None:
        if not isinstance(workers, int) or not 1 <= workers <= len(addresses):
            raise ValueError(f"{where}: `workers` must be an int in [1, {len(addresses)}], "
                             f"got {workers!r}")
        addresses = addresses[:workers]
    k = len(addresses)
    if k == 0:
        raise ConnectionError(f"{where}: the cluster at {client.scheduler.address!r} has no "
                              "workers")
    starts = list(range(0, n, batch_size))
    pieces = [[(s + a, s + b) for a, b in _shards(min(batch_size, n - s), k)] for s in starts]
    # Each replica's data: its shard rows (fixed order), or everything when shuffling.
    local_rows: List[List[np.ndarray]] = [[] for _ in range(k)]
    if shuffle:
        data_rows = [np.arange(n)] * k
    else:
        data_rows = [np.concatenate([np.arange(*p[i]) for p in pieces]).astype(np.int64)
                     for i in range(k)]
        for i in range(k):
            off = 0
            for p in pieces:
                m = p[i][1] - p[i][0]
                local_rows[i].append(np.arange(off, off + m))
                off += m
    blob_f = client.scatter(blob, broadcast=True, hash=False)
    actor_futures = []
    try:
        for i, addr in enumerate(addresses):
            dx = [_take(a, data_rows[i], client, addr) for a in xs]
            dy = [_take(a, data_rows[i], client, addr) for a in ys]
            actor_futures.append(client.submit(_Replica, blob_f, dx, dy, actor=True,
                                               workers=[addr], allow_other_workers=False,
                                               pure=False))
        actors = [f.result(timeout=timeout) for f in actor_futures]
        history = callbacks_mod.History()
        history.on_train_begin()
        avg: Optional[List[np.ndarray]] = None
        t0 = time.perf_counter()
        steps_done = 0
        for epoch in range(epochs):
            if shuffle:
                from .. import backend

                order = backend.rng().permutation(n)
                rows_per_step = [[order[a:b] for a, b in p] for p in pieces]
            else:
                rows_per_step = [[local_rows[i][s] for i in range(k)]
                                 for s in range(len(pieces))]
            loss_sum = 0.0
            for s, rows in enumerate(rows_per_step):
                calls = [a.step(avg, r) for a, r in zip(actors, rows)]
                results = [c.result(timeout=timeout) for c in calls]
                b = sum(r[0] for r in results)
                avg = None
                for m, loss, g in results:
                    if m == 0:
                        continue
                    w = np.float32(m / b)
                    if avg is None:
                        avg = [gi * w for gi in g]
                    else:
                        for acc, gi in zip(avg, g):
                            acc += gi * w
                loss_sum += sum(r[0] * r[1] for r in results)
                steps_done += 1
            logs = {"loss": loss_sum / n}
            history.on_epoch_end(epoch, logs)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs} - loss: {logs['loss']:.4f}", flush=True)
        finals = [a.finish(avg) for a in actors]
        trained = pickle.loads(finals[0].result(timeout=timeout))
        for c in finals[1:]:
            c.result(timeout=timeout)
        history.params = {"epochs": epochs, "steps": len(pieces), "workers": k,
                          "seconds_per_step": (time.perf_counter() - t0) / max(steps_done, 1)}
    finally:
        for f in actor_futures:
            f.release()
        blob_f.release()
    model.set_weights(trained.get_weights())
    model.optimizer = trained.optimizer
    return history
