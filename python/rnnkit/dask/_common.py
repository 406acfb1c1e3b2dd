"""Shared pieces of :mod:`rnnkit.dask`: lazy imports, the client, the model as bytes,
input checks and the per-worker model cache."""
from __future__ import annotations

import hashlib
import pickle
import threading
import weakref
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

_EXTRA = "pip install 'rnnkit[dask]'"


def require_dask() -> Tuple[Any, Any]:
    """``(dask, dask.array)``, or an ImportError naming the extra."""
    try:
        import dask  # absolute: the top-level package, not rnnkit.dask
        import dask.array as da
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"rnnkit.dask needs dask[array] and distributed: {_EXTRA}") from e
    return dask, da


def require_distributed() -> Any:
    """The ``distributed`` module, or an ImportError naming the extra."""
    try:
        import distributed
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"rnnkit.dask needs distributed: {_EXTRA}") from e
    return distributed


def get_client(client: Any, where: str, required: bool, timeout: float = 10.0) -> Any:
    """The ``distributed.Client`` to use: ``client`` itself (checked to be running), a
    new client for an address string, the current default client, or None when none is
    needed and none exists. Unreachable schedulers raise ConnectionError naming them."""
    distributed = require_distributed()
    if isinstance(client, str):
        try:
            return distributed.Client(client, timeout=timeout)
        except (OSError, TimeoutError) as e:
            raise ConnectionError(f"{where}: cannot reach the Dask scheduler at {client!r} "
                                  f"within {timeout:g}s ({e})") from e
    if client is None:
        try:
            client = distributed.get_client()
        except ValueError:
            if required:
                raise ValueError(f"{where}: `client` is required (a distributed.Client or a "
                                 "scheduler address) and no default client exists") from None
            return None
    if not isinstance(client, distributed.Client):
        raise TypeError(f"{where}: `client` must be a distributed.Client or a scheduler "
                        f"address string, got {type(client).__name__}")
    if client.status != "running":
        address = getattr(getattr(client, "scheduler", None), "address", None)
        raise ConnectionError(f"{where}: the Dask client for {address or 'its scheduler'!r} "
                              f"cannot be reached (status {client.status!r}); start it or "
                              "pass a running client")
    return client


# Runs on each worker through client.run. Compiled from source so that cloudpickle ships it
# by value: a function of an rnnkit module would itself need rnnkit on the worker.
_PROBE_SOURCE = """
def probe():
    try:
        import rnnkit
    except Exception as exc:  # ImportError, or a broken install
        return None, type(exc).__name__ + ": " + str(exc)
    return rnnkit.__version__, ""
"""
_CHECKED: "weakref.WeakKeyDictionary[Any, frozenset]" = weakref.WeakKeyDictionary()


def check_workers(client: Any, where: str) -> None:
    """Every worker of ``client`` can import the same rnnkit version as this process; else a
    RuntimeError naming the workers and what they lack. Checked once per set of workers."""
    from .. import __version__

    workers = frozenset(client.scheduler_info().get("workers", {}))
    if _CHECKED.get(client) == workers:
        return
    namespace: Dict[str, Any] = {"__name__": "rnnkit_dask_worker_probe"}
    exec(_PROBE_SOURCE, namespace)  # noqa: S102 - fixed source above, no input
    answers = client.run(namespace["probe"])
    missing = {a: why for a, (version, why) in answers.items() if version is None}
    if missing:
        raise RuntimeError(f"{where}: rnnkit cannot be imported on Dask worker(s) "
                           f"{sorted(missing)} ({next(iter(missing.values()))}); install "
                           f"rnnkit {__version__} in the workers' environment")
    other = {a: v for a, (v, _) in answers.items() if v != __version__}
    if other:
        raise RuntimeError(f"{where}: Dask worker(s) run other rnnkit versions {other}; this "
                           f"process has {__version__} (models travel in its file format)")
    _CHECKED[client] = workers


def model_bytes(model: Any, where: str) -> bytes:
    """The model pickled (rnnkit's own format); a clear error for what cannot travel."""
    try:
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise pickle.PicklingError(
            f"{where}: the model cannot be sent to Dask workers because it does not pickle: "
            f"{e}") from e


def token(blob: bytes) -> str:
    """A content hash naming a model's bytes (the worker cache key)."""
    return hashlib.sha256(blob).hexdigest()[:32]


_local = threading.local()
_threads_set = False


def match_worker_threads() -> None:
    """In a Dask worker process, limit rnnkit's kernel thread team to the worker's
    ``nthreads`` (once), so that worker processes sharing a machine do not oversubscribe
    its cores. Outside a worker, nothing."""
    global _threads_set
    if _threads_set:
        return
    _threads_set = True
    try:
        from distributed import get_worker

        nthreads = int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return
    from .. import runtime

    runtime.set_num_threads(max(nthreads, 1))


def cached_model(blob: bytes, key: str) -> Any:
    """The model unpickled from ``blob``, once per worker thread (rnnkit models keep
    per-call buffers, so threads do not share one)."""
    cache: Dict[str, Any] = getattr(_local, "models", None) or {}
    _local.models = cache
    model = cache.get(key)
    if model is None:
        match_worker_threads()
        if len(cache) >= 4:  # a few models at most per thread
            cache.pop(next(iter(cache)))
        model = pickle.loads(blob)
        cache[key] = model
    return model


def as_input_list(model: Any, x: Any, where: str, arg: str = "x") -> List[Any]:
    """``x`` (one dask array, a list, or a dict keyed by input name) as a list in the
    model's input order."""
    names = list(getattr(model, "input_names", None) or [])
    if isinstance(x, dict):
        missing = [n for n in names if n not in x]
        if missing:
            raise ValueError(f"{where}: `{arg}` is missing inputs {missing}")
        return [x[n] for n in names]
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _axis_name(axis: int, ndim: int) -> str:
    """Keras layout: (batch, time, ..., features)."""
    if axis == ndim - 1:
        return "features"
    return "time" if axis == 1 else "inner"


def check_batch_chunked(arrays: Sequence[Any], where: str, arg: str = "x") -> List[Any]:
    """Every array is a dask array (NumPy arrays are wrapped as one chunk) split along
    the batch axis only, all with the same batch length; returns them rechunked to the
    first one's batch chunks."""
    _, da = require_dask()
    out = []
    for i, a in enumerate(arrays):
        label = f"`{arg}`" if len(arrays) == 1 else f"`{arg}` input {i}"
        if not isinstance(a, da.Array):
            if isinstance(a, np.ndarray):
                a = da.from_array(a, chunks=(max(len(a), 1),) + a.shape[1:])
            else:
                raise TypeError(f"{where}: {label} must be a dask.array.Array (or a NumPy "
                                f"array), got {type(a).__name__}")
        if a.ndim == 0:
            raise ValueError(f"{where}: {label} must have a batch axis, got a scalar")
        if any(np.isnan(c) for c in a.chunks[0]) or np.isnan(a.shape[0]):
            raise ValueError(f"{where}: {label} has unknown chunk sizes along the batch axis; "
                             "call .compute_chunk_sizes() first")
        for axis in range(1, a.ndim):
            if len(a.chunks[axis]) != 1:
                raise ValueError(
                    f"{where}: {label} is chunked along axis {axis} "
                    f"({_axis_name(axis, a.ndim)}) into chunks {a.chunks[axis]}; rnnkit.dask "
                    f"splits the batch axis only: use {arg}.rechunk({{{axis}: -1}})")
        out.append(a)
    n = out[0].shape[0]
    for i, a in enumerate(out[1:], 1):
        if a.shape[0] != n:
            raise ValueError(f"{where}: `{arg}` input 0 has {n} samples but input {i} has "
                             f"{a.shape[0]}")
    first = out[0].chunks[0]
    return [a if a.chunks[0] == first else a.rechunk({0: first}) for a in out]
