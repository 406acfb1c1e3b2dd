"""How many threads rnnkit's kernels use by default, so that N worker processes on one machine
do not each start a thread team of every core.

The rule (:func:`default_num_threads`), applied once when rnnkit is imported:

1. ``RNNKIT_NUM_THREADS`` set to a positive integer: that many threads (an explicit request,
   capped only by :func:`rnnkit.max_threads`; ``0`` or empty means "not set").
2. otherwise ``OMP_NUM_THREADS`` set to a positive integer (the first entry of a nested list
   such as ``"2,1"``): ``min(that, available CPUs)``. joblib's process backend (``loky``, what
   scikit-learn's ``n_jobs`` uses) sets it in every worker to ``cpu_count // n_jobs`` (or to
   ``inner_max_num_threads``), so ``GridSearchCV(n_jobs=N)`` gives each worker its share.
3. otherwise the available CPUs: the process's CPU affinity (``os.sched_getaffinity``:
   ``taskset``, cgroup cpusets), or ``os.cpu_count()`` where that is unavailable.

At run time :func:`rnnkit.set_num_threads` changes the limit, and so does
``threadpoolctl.threadpool_limits`` (rnnkit registers itself with threadpoolctl as
``user_api="rnnkit"`` when threadpoolctl is installed; see :mod:`rnnkit._threadpoolctl`).
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

__all__ = ["RNNKIT_NUM_THREADS_ENV", "OMP_NUM_THREADS_ENV", "available_cpus",
           "default_num_threads", "threads_per_worker"]

RNNKIT_NUM_THREADS_ENV = "RNNKIT_NUM_THREADS"
OMP_NUM_THREADS_ENV = "OMP_NUM_THREADS"


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity mask, else ``os.cpu_count()`` (>= 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _rnnkit_request(environ: Mapping[str, str]) -> Optional[int]:
    value = environ.get(RNNKIT_NUM_THREADS_ENV, "").strip()
    if value == "":
        return None
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise ValueError(f"{RNNKIT_NUM_THREADS_ENV}: expected a number of threads >= 0 "
                         f"(0: not set); got {value!r}")
    return n or None


def _omp_request(environ: Mapping[str, str]) -> Optional[int]:
    # OpenMP's own syntax: a comma-separated list for nested levels; the outer one counts.
    # Malformed values are OpenMP's business (it warns); rnnkit ignores them.
    value = environ.get(OMP_NUM_THREADS_ENV, "").split(",")[0].strip()
    try:
        n = int(value)
    except ValueError:
        return None
    return n if n > 0 else None


def default_num_threads(environ: Optional[Mapping[str, str]] = None) -> int:
    """The thread count the rule above gives for ``environ`` (default: ``os.environ``).

    Raises:
        ValueError: ``RNNKIT_NUM_THREADS`` is not an integer >= 0.
    """
    env = os.environ if environ is None else environ
    explicit = _rnnkit_request(env)
    if explicit is not None:
        return explicit
    cpus = available_cpus()
    omp = _omp_request(env)
    return cpus if omp is None else min(cpus, omp)


def threads_per_worker(n_workers: int, environ: Optional[Mapping[str, str]] = None) -> int:
    """The fair share of :func:`default_num_threads` for one of ``n_workers`` processes
    (at least 1): what to pass to ``rnnkit.set_num_threads`` (or ``RNNKIT_NUM_THREADS``) in
    workers started by a pool that does not set ``OMP_NUM_THREADS`` itself.

    Raises:
        TypeError: ``n_workers`` is not an int.
        ValueError: ``n_workers`` < 1.
    """
    if isinstance(n_workers, bool) or not isinstance(n_workers, int):
        raise TypeError(f"n_workers must be an int; got {type(n_workers).__name__}")
    if n_workers < 1:
        raise ValueError(f"n_workers must be >= 1; got {n_workers}")
    return max(1, default_num_threads(environ) // n_workers)
