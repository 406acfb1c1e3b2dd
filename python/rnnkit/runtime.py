"""Run-time settings of the C++ kernels: threads, memory and instruction set.

The kernels run on a persistent thread team. Its size defaults to
:func:`default_num_threads` -- ``RNNKIT_NUM_THREADS`` if set, else ``min(OMP_NUM_THREADS,
available CPUs)`` if set, else the CPUs in this process's affinity mask (read at import; see
:mod:`rnnkit.thread_rule`, and :func:`threads_per_worker` for worker pools) -- and is capped
at :func:`max_threads`; small problems use fewer threads automatically. With threadpoolctl
installed, ``threadpoolctl.threadpool_limits(n)`` limits the team too (``user_api="rnnkit"``).
Results are bitwise identical for every thread count. A process forked after
the team ran (``os.fork``, ``multiprocessing`` with the ``fork`` start method) gets a fresh
team of its own. Ctrl-C during a long kernel call raises ``KeyboardInterrupt`` within a few
tens of milliseconds (the call's outputs are discarded).

Large arrays (outputs, caches, workspace) come from a block pool that keeps freed memory for
the next call of a similar size, up to a cap (:func:`set_pool_limit`; the environment variable
``RNNKIT_POOL_LIMIT_BYTES``, read at import, sets it too; default 1 GiB).

The SIMD path (``generic``, ``avx2``, ``avx512``) is chosen at import as the best one the CPU
supports; set the environment variable ``RNNKIT_ISA`` before importing rnnkit to force one.
"""
from __future__ import annotations

import os
from typing import Any, Dict

from . import _core
from .thread_rule import available_cpus, default_num_threads, threads_per_worker

__all__ = ["set_num_threads", "get_num_threads", "max_threads", "build_info",
           "release_memory", "set_pool_limit", "get_pool_limit", "pool_stats",
           "available_cpus", "default_num_threads", "threads_per_worker"]

POOL_LIMIT_ENV = "RNNKIT_POOL_LIMIT_BYTES"


def _check_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}")


def set_num_threads(n: int) -> None:
    """Limit the kernels' thread team to ``n`` threads (``n <= 0`` restores the default,
    :func:`default_num_threads`).

    The limit is clamped to :func:`max_threads`. Lowering it stops the surplus worker threads
    (at once, or when a kernel call running in another thread ends).

    Raises:
        TypeError: ``n`` is not an integer.
    """
    _check_int("n", n)
    if n <= 0:
        n = default_num_threads()
    # Clamped here too: pybind11 rejects values outside a C int with a less helpful TypeError.
    _core.set_num_threads(max(-1, min(n, max_threads())))


def get_num_threads() -> int:
    """The current (effective, clamped) limit on the kernels' thread team."""
    return int(_core.get_num_threads())


def max_threads() -> int:
    """The cap on the thread team: ``max(8, 4 * os.cpu_count())``."""
    return int(_core.max_threads())


def release_memory() -> int:
    """Return every block the pool has cached to the system.

    Returns:
        The number of bytes released (0 when nothing was cached). Arrays still in use are
        not affected; their memory returns to the pool (or the system) when they are freed.
    """
    return int(_core.pool_trim())


def set_pool_limit(nbytes: int) -> None:
    """Cap the memory the block pool keeps cached between calls at ``nbytes`` bytes.

    The pool never caches more than the cap; lowering it releases cached blocks at once.
    ``0`` disables caching (every block goes back to the system when freed; calls then pay
    for fresh pages each time). The environment variable ``RNNKIT_POOL_LIMIT_BYTES`` sets
    it at import. Default: 1 GiB.

    Raises:
        TypeError: ``nbytes`` is not an integer.
        ValueError: ``nbytes`` is negative.
    """
    _check_int("nbytes", nbytes)
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0; got {nbytes}")
    _core.set_pool_limit(min(nbytes, 2**63 - 1))


def get_pool_limit() -> int:
    """The block pool's cap in bytes (see :func:`set_pool_limit`)."""
    return int(_core.get_pool_limit())


def pool_stats() -> Dict[str, int]:
    """What the block pool holds now.

    Returns:
        dict with ``cached_bytes`` and ``cached_blocks`` (memory kept for reuse, not in use)
        and ``limit_bytes`` (the cap).
    """
    cached_bytes, cached_blocks = _core.pool_stats()
    return {"cached_bytes": int(cached_bytes), "cached_blocks": int(cached_blocks),
            "limit_bytes": get_pool_limit()}


def _pool_limit_from_environment() -> None:
    value = os.environ.get(POOL_LIMIT_ENV)
    if value is None or value.strip() == "":
        return
    try:
        nbytes = int(value.strip())
    except ValueError:
        nbytes = -1
    if nbytes < 0:
        raise ValueError(f"{POOL_LIMIT_ENV}: expected a number of bytes >= 0; got {value!r}")
    set_pool_limit(nbytes)


_pool_limit_from_environment()


def _threads_from_environment() -> None:
    # The C++ default is already the affinity mask; only an environment limit needs a call.
    n = default_num_threads()
    if n != get_num_threads():
        set_num_threads(n)


_threads_from_environment()


def _register_threadpoolctl() -> None:
    from ._threadpoolctl import register
    try:
        register()
    except Exception:  # noqa: BLE001 -- an optional integration must never break the import
        pass


_register_threadpoolctl()


def build_info() -> Dict[str, Any]:
    """How this rnnkit was built and what it runs on.

    Returns:
        dict with ``isa`` (the SIMD path in use), ``compiled_isas``, ``supported_isas`` (those
        this CPU can run), ``num_threads`` and ``compiler``.
    """
    return dict(_core.build_info())
