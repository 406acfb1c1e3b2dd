"""Threads per worker: rnnkit's default thread count follows RNNKIT_NUM_THREADS, then
OMP_NUM_THREADS (what joblib's process workers get), capped by the CPU affinity; and
threadpoolctl's limits reach the team."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import rnnkit
from rnnkit import runtime
from rnnkit.thread_rule import default_num_threads, threads_per_worker

CPUS = runtime.available_cpus()


def test_available_cpus_is_the_affinity_mask():
    if hasattr(os, "sched_getaffinity"):
        assert CPUS == len(os.sched_getaffinity(0))
    assert CPUS >= 1


@pytest.mark.parametrize("env, expected", [
    ({}, CPUS),
    ({"OMP_NUM_THREADS": "1"}, 1),
    ({"OMP_NUM_THREADS": "1,4"}, 1),                  # nested list: the outer level
    ({"OMP_NUM_THREADS": str(CPUS + 50)}, CPUS),      # capped by the affinity mask
    ({"OMP_NUM_THREADS": "garbage"}, CPUS),           # OpenMP's business; ignored
    ({"OMP_NUM_THREADS": "0"}, CPUS),
    ({"RNNKIT_NUM_THREADS": "3", "OMP_NUM_THREADS": "1"}, 3),  # explicit request wins
    ({"RNNKIT_NUM_THREADS": "0", "OMP_NUM_THREADS": "1"}, 1),  # 0: not set
    ({"RNNKIT_NUM_THREADS": " ", "OMP_NUM_THREADS": "1"}, 1),
])
def test_default_num_threads_rule(env, expected):
    assert default_num_threads(env) == expected


def test_bad_rnnkit_num_threads_names_the_variable():
    with pytest.raises(ValueError, match="RNNKIT_NUM_THREADS"):
        default_num_threads({"RNNKIT_NUM_THREADS": "-2"})
    with pytest.raises(ValueError, match="RNNKIT_NUM_THREADS"):
        default_num_threads({"RNNKIT_NUM_THREADS": "many"})


def test_threads_per_worker():
    assert threads_per_worker(1, {"RNNKIT_NUM_THREADS": "8"}) == 8
    assert threads_per_worker(3, {"RNNKIT_NUM_THREADS": "8"}) == 2
    assert threads_per_worker(100, {}) == 1
    with pytest.raises(ValueError, match="n_workers"):
        threads_per_worker(0)
    with pytest.raises(TypeError, match="n_workers"):
        threads_per_worker(1.5)  # type: ignore[arg-type]


def _import_and_report(env: dict, code: str = "print(rnnkit.get_num_threads())"):
    full = {k: v for k, v in os.environ.items()
            if k not in ("OMP_NUM_THREADS", "RNNKIT_NUM_THREADS")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", "import rnnkit\n" + code], env=full,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("env, expected", [
    ({}, CPUS), ({"OMP_NUM_THREADS": "1"}, 1), ({"RNNKIT_NUM_THREADS": "3"}, 3)])
def test_rule_applied_at_import(env, expected):
    out = _import_and_report(env)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == expected


def test_bad_environment_fails_the_import_clearly():
    out = _import_and_report({"RNNKIT_NUM_THREADS": "lots"})
    assert out.returncode != 0 and "RNNKIT_NUM_THREADS" in out.stderr


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_affinity_mask_limits_the_default():
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "import rnnkit; print(rnnkit.runtime.default_num_threads(), rnnkit.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",
                                                            "RNNKIT_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1"]


def test_threadpoolctl_limits_rnnkit():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not hasattr(threadpoolctl, "register"):
        pytest.skip("threadpoolctl without register()")
    info = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "rnnkit"]
    assert len(info) == 1 and os.path.samefile(info[0]["filepath"], rnnkit._core.__file__)
    before = rnnkit.get_num_threads()
    try:
        rnnkit.set_num_threads(2)
        with threadpoolctl.threadpool_limits(1):
            assert rnnkit.get_num_threads() == 1
        assert rnnkit.get_num_threads() == 2
        with threadpoolctl.threadpool_limits(limits=1, user_api="rnnkit"):
            assert rnnkit.get_num_threads() == 1
        with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
            assert rnnkit.get_num_threads() == 2
    finally:
        rnnkit.set_num_threads(before)


def test_joblib_process_workers_get_their_share():
    joblib = pytest.importorskip("joblib")
    from joblib import Parallel, delayed

    with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
        got = Parallel(n_jobs=2, timeout=60)(delayed(rnnkit.get_num_threads)() for _ in range(2))
    assert got == [1, 1]


def test_set_num_threads_zero_restores_the_rule():
    out = _import_and_report({"OMP_NUM_THREADS": "1"},
                             "rnnkit.set_num_threads(2); rnnkit.set_num_threads(0); "
                             "print(rnnkit.get_num_threads())")
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == 1
