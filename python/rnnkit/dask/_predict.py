"""``rnnkit.dask.predict`` and ``rnnkit.dask.evaluate``: inference over dask arrays
chunked along the batch axis, the model shipped to each worker once."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

from . import _common


def _forward_block(model: Any, blocks: Tuple[np.ndarray, ...], batch_size: int
                   ) -> List[np.ndarray]:
    """The model's outputs for one chunk, ``batch_size`` rows at a time (as ``predict``)."""
    xs = model._check_x(list(blocks) if len(blocks) > 1 else blocks[0], "rnnkit.dask.predict")
    n = xs[0].shape[0]
    if n == 0:  # the kernels need one row: run one and keep none
        one = [np.zeros((1,) + a.shape[1:], dtype=a.dtype) for a in xs]
        return [o[:0] for o in model._forward_lists(one, False, False)[0]]
    parts = [model._forward_lists([a[s:s + batch_size] for a in xs], False, False)[0]
             for s in range(0, n, batch_size)]
    return [np.concatenate([p[j] for p in parts], axis=0) for j in range(len(parts[0]))]


def _predict_block(blob: bytes, key: str, batch_size: int, *blocks: np.ndarray
                   ) -> Tuple[np.ndarray, ...]:
    """Worker side: one chunk's outputs (a tuple, one array per model output)."""
    return tuple(_forward_block(_common.cached_model(blob, key), blocks, batch_size))


def _evaluate_block(blob: bytes, key: str, batch_size: int, n_inputs: int, *blocks: np.ndarray
                    ) -> Tuple[int, Dict[str, float], List[str], List[str]]:
    """Worker side: ``(samples, logs, names of metrics that are not means,
    metrics_names)`` for a chunk."""
    from ..metrics import base as metrics_base

    model = _common.cached_model(blob, key)
    xs, ys = list(blocks[:n_inputs]), list(blocks[n_inputs:])
    n = int(xs[0].shape[0])
    if n == 0:
        return 0, {}, [], []
    logs = model.evaluate(xs if len(xs) > 1 else xs[0], ys if len(ys) > 1 else ys[0],
                          batch_size=batch_size, verbose=0, return_dict=True)
    not_mean = [name for _, m, name in (model._metrics or [])
                if not isinstance(m, metrics_base.Mean)]
    return n, logs, not_mean, list(model.metrics_names)


def _model_ref(model: Any, client: Any, where: str) -> Tuple[Any, str]:
    """The pickled model as one graph node: a scattered future with a client (it travels
    to each worker once and stays there), a pure delayed literal otherwise."""
    dask, _ = _common.require_dask()
    blob = _common.model_bytes(model, where)
    key = _common.token(blob)
    if client is not None:
        return client.scatter(blob, hash=False), key
    return dask.delayed(_identity, pure=True, name=f"rnnkit-model-{key}")(blob), key


def _identity(blob: bytes) -> bytes:
    return blob


def _check_batch_size(batch_size: Any, where: str) -> int:
    if (not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool)
            or batch_size <= 0):
        raise ValueError(f"{where}: `batch_size` must be a positive int, got {batch_size!r}")
    return int(batch_size)


def predict(model: Any, x: Any, client: Any = None, batch_size: int = 32) -> Any:
    """Lazy ``model.predict`` over a ``dask.array`` ``x`` chunked along the batch axis only.

    ``x``: one dask array, or a list / dict (keyed by input name) for a model with several
    inputs (rechunked to the first input's batch chunks). Returns a lazy dask array with the
    same batch chunks (one per model output: a list for a model with several outputs);
    ``.compute()`` runs it. ``client``: a ``distributed.Client`` or scheduler address; the
    pickled model is scattered to the cluster once and each worker unpickles it once (per
    thread). Without a client (and no default client) the graph references the model bytes
    as one node and runs on any Dask scheduler.
    """
    dask, da = _common.require_dask()
    where = "rnnkit.dask.predict"
    batch_size = _check_batch_size(batch_size, where)
    if not hasattr(model, "_forward_lists"):
        raise TypeError(f"{where}: `model` must be an rnnkit Model, got {type(model).__name__}")
    arrays = _common.check_batch_chunked(_common.as_input_list(model, x, where), where)
    client = _common.get_client(client, where, required=False)
    if client is not None:
        _common.check_workers(client, where)
    # Output shapes and dtypes from zero samples (checks the inputs' shapes too).
    empty = tuple(np.zeros((0,) + a.shape[1:], dtype=a.dtype) for a in arrays)
    metas = _forward_block(model, empty, batch_size)
    ref, key = _model_ref(model, client, where)
    columns: List[List[Any]] = [[] for _ in metas]
    blocks = [a.to_delayed().reshape(-1) for a in arrays]
    call = dask.delayed(_predict_block, pure=True, nout=len(metas))
    for i, rows in enumerate(arrays[0].chunks[0]):
        outs = call(ref, key, batch_size, *[b[i] for b in blocks])
        for j, meta in enumerate(metas):
            columns[j].append(da.from_delayed(outs[j], shape=(rows,) + meta.shape[1:],
                                              dtype=meta.dtype, meta=meta))
    results = [da.concatenate(c, axis=0) for c in columns]
    return results[0] if len(results) == 1 else results


def evaluate(model: Any, x: Any, y: Any, client: Any = None, batch_size: int = 32,
             return_dict: bool = False) -> Any:
    """``model.evaluate`` over dask arrays chunked along the batch axis only; computes now.

    Each chunk is evaluated on a worker (``batch_size`` rows at a time) and the chunk
    results are combined weighted by their sample counts, which is what Keras's
    evaluate computes over the whole data for the loss and for mean-type metrics
    (accuracy, mae, mse, ...): equal up to float rounding. Metrics that are not means
    (AUC, Precision, ...) cannot be combined that way and raise ValueError. Returns a
    float, a list in ``metrics_names`` order, or a dict with ``return_dict=True``.
    """
    dask, _ = _common.require_dask()
    where = "rnnkit.dask.evaluate"
    batch_size = _check_batch_size(batch_size, where)
    if getattr(model, "optimizer", None) is None and not getattr(model, "_losses", None):
        raise ValueError(f"{where}: compile the model first")
    xs = _common.as_input_list(model, x, where, "x")
    if isinstance(y, dict):
        ys = [y[n] for n in model.output_names]
    else:
        ys = list(y) if isinstance(y, (list, tuple)) else [y]
    arrays = _common.check_batch_chunked(xs + ys, where, "x/y")
    client = _common.get_client(client, where, required=False)
    if client is not None:
        _common.check_workers(client, where)
    ref, key = _model_ref(model, client, where)
    blocks = [a.to_delayed().reshape(-1) for a in arrays]
    call = dask.delayed(_evaluate_block, pure=True)
    tasks = [call(ref, key, batch_size, len(xs), *[b[i] for b in blocks])
             for i in range(len(arrays[0].chunks[0]))]
    parts = client.gather(client.compute(tasks)) if client is not None else dask.compute(*tasks)
    total = sum(p[0] for p in parts)
    if total == 0:
        raise ValueError(f"{where}: `x` has no samples")
    bad = sorted({name for p in parts for name in p[2]})
    if bad:
        raise ValueError(f"{where}: metrics {bad} are not means of per-sample values and "
                         "cannot be combined across chunks; evaluate them locally")
    first = next(p for p in parts if p[0])
    logs = {k: float(sum(p[0] * p[1][k] for p in parts if p[0]) / total) for k in first[1]}
    if return_dict:
        return logs
    values = [logs[k] for k in first[3] if k in logs]
    return values[0] if len(values) == 1 else values
