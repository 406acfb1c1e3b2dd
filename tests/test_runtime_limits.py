"""Resource limits of the runtime: the thread team is capped and shrinks when its limit goes
down; the block pool is capped (set_pool_limit, RNNKIT_POOL_LIMIT_BYTES), reports what it
holds (pool_stats) and gives it back (release_memory)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import rnnkit
import rnnkit.ops as ops
from rnnkit import runtime
from _fork_workers import run_lstm_bytes

needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")


# A thread that has been joined may still be listed in /proc for a moment (the kernel
# wakes the joiner before it removes the task): wait for the expected count, with a bound.
SETTLE = """
import os, time
def threads(): return len(os.listdir('/proc/self/task'))
def settle(expected):
    deadline = time.monotonic() + 5
    while threads() != expected and time.monotonic() < deadline:
        time.sleep(0.005)
    return threads()
"""


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", **env)
    return subprocess.run([sys.executable, "-c", SETTLE + textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, env=full_env)


@pytest.fixture
def restore_runtime():
    threads, limit = rnnkit.get_num_threads(), runtime.get_pool_limit()
    yield
    rnnkit.set_num_threads(threads)
    runtime.set_pool_limit(limit)


# ---------------------------------------------------------------- threads

def test_max_threads_value() -> None:
    assert runtime.max_threads() == max(8, 4 * (os.cpu_count() or 1))
    # Above the core count (tests use 3 threads on 2-core machines).
    assert runtime.max_threads() > (os.cpu_count() or 1)


def test_set_num_threads_is_clamped(restore_runtime, monkeypatch) -> None:
    # n <= 0 restores the threads-per-worker rule; without its variables, the affinity (a
    # LocalCluster started earlier in this process leaves OMP_NUM_THREADS=1 behind).
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("RNNKIT_NUM_THREADS", raising=False)
    cap = runtime.max_threads()
    for n in (cap, cap + 1, 1000, 10**30):
        rnnkit.set_num_threads(n)
        assert rnnkit.get_num_threads() == cap
        assert rnnkit.build_info()["num_threads"] == cap
    rnnkit.set_num_threads(3)
    assert rnnkit.get_num_threads() == 3
    rnnkit.set_num_threads(-10**30)  # any n <= 0: the default
    assert rnnkit.get_num_threads() == min(len(os.sched_getaffinity(0)), cap)


@needs_proc
def test_huge_thread_request_starts_at_most_the_cap() -> None:
    code = """
        import numpy as np, rnnkit
        base = threads()
        rnnkit.set_num_threads(1000)
        rng = np.random.default_rng(0)
        # Large enough that the heuristics would use many threads if allowed.
        x = rng.random((256, 4, 512), dtype=np.float32)
        k = rng.random((512, 2048), dtype=np.float32); r = rng.random((512, 2048), dtype=np.float32)
        rnnkit.ops.lstm_forward(x, k, r)
        print(base, threads(), rnnkit.get_num_threads(), rnnkit.runtime.max_threads())
    """
    out = _python(code)
    assert out.returncode == 0, out.stderr
    base, after, limit, cap = map(int, out.stdout.split())
    assert limit == cap
    assert base < after <= base + cap - 1


@needs_proc
def test_team_shrinks_when_the_limit_goes_down() -> None:
    code = """
        import numpy as np, rnnkit
        rng = np.random.default_rng(0)
        x = rng.random((32, 20, 64)); k = rng.random((64, 512)); r = rng.random((128, 512))
        base = threads()
        seen = []
        for n, expected in ((3, 0), (1, 0), (2, 0), (3, 1), (2, 1), (1, 0)):
            rnnkit.set_num_threads(n)
            seen.append(settle(base + expected))  # shrinking is immediate
            rnnkit.ops.lstm_forward(x, k, r)
            seen.append(threads())       # after a call (growing is lazy)
        print(base, *seen)
    """
    out = _python(code)
    assert out.returncode == 0, out.stderr
    base, *seen = map(int, out.stdout.split())
    assert seen == [base, base + 2,      # 3: workers start on the first call
                    base, base,          # 1: both workers joined
                    base, base + 1,      # 2
                    base + 1, base + 2,  # 3
                    base + 1, base + 1,  # 2
                    base, base]          # 1


@needs_proc
def test_shrink_while_a_call_is_in_flight() -> None:
    """Lowering the limit from another thread during a call: the surplus workers go when
    the run in flight ends; results are unaffected."""
    code = """
        import threading, time, numpy as np, rnnkit
        rng = np.random.default_rng(0)
        x = rng.random((64, 300, 32), dtype=np.float32)
        k = rng.random((32, 1024), dtype=np.float32) * .05
        r = rng.random((256, 1024), dtype=np.float32) * .05
        rnnkit.set_num_threads(1)
        want = rnnkit.ops.lstm_forward(x, k, r)[0]
        base = threads()
        rnnkit.set_num_threads(3)
        got = []
        t = threading.Thread(target=lambda: got.append(rnnkit.ops.lstm_forward(x, k, r)[0]))
        t.start()
        time.sleep(0.05)
        rnnkit.set_num_threads(1)
        t.join()
        print(base, settle(base), int(np.array_equal(got[0], want)))
    """
    out = _python(code)
    assert out.returncode == 0, out.stderr
    base, after, same = map(int, out.stdout.split())
    assert after == base
    assert same == 1


def test_results_identical_across_shrink_and_regrow(restore_runtime) -> None:
    rnnkit.set_num_threads(2)
    want = run_lstm_bytes(2)
    for n in (3, 1, 3, 2, 1000, 1, 2):
        rnnkit.set_num_threads(n)
        assert run_lstm_bytes(n) == want


def test_concurrent_set_num_threads_and_calls(restore_runtime) -> None:
    """Callers on several Python threads while another one keeps changing the limit."""
    rnnkit.set_num_threads(1)
    want = run_lstm_bytes(1)
    stop = threading.Event()
    errors = []

    def churn() -> None:
        i = 0
        while not stop.is_set():
            rnnkit.set_num_threads((1, 2, 3)[i % 3])
            i += 1

    def call() -> None:
        for _ in range(4):
            if run_lstm_bytes(rnnkit.get_num_threads()) != want:
                errors.append("mismatch")

    churner = threading.Thread(target=churn)
    callers = [threading.Thread(target=call) for _ in range(3)]
    churner.start()
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    stop.set()
    churner.join()
    assert errors == []


# ---------------------------------------------------------------- memory pool

def _lstm_call(batch: int = 32, time: int = 50, units: int = 128) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((batch, time, 16), dtype=np.float32)
    k = rng.random((16, 4 * units), dtype=np.float32) * .1
    r = rng.random((units, 4 * units), dtype=np.float32) * .1
    y, _, _, cache = ops.lstm_forward(x, k, r)
    ops.lstm_backward(cache, dy=np.ones_like(y))  # everything freed on return


def test_release_memory_returns_the_cached_bytes(restore_runtime) -> None:
    runtime.set_pool_limit(1 << 30)
    _lstm_call()
    stats = runtime.pool_stats()
    assert stats["cached_bytes"] > 1 << 20 and stats["cached_blocks"] > 0
    assert stats["limit_bytes"] == 1 << 30
    released = runtime.release_memory()
    assert released == stats["cached_bytes"]
    assert runtime.pool_stats()["cached_bytes"] == 0
    assert runtime.pool_stats()["cached_blocks"] == 0
    assert runtime.release_memory() == 0
    assert rnnkit.release_memory() == 0  # re-exported


def test_pool_never_caches_more_than_the_limit(restore_runtime) -> None:
    limit = 3 << 20
    runtime.set_pool_limit(limit)
    assert runtime.get_pool_limit() == limit
    for batch, time in ((8, 10), (32, 50), (64, 100), (16, 20), (64, 100)):
        _lstm_call(batch, time)
        assert runtime.pool_stats()["cached_bytes"] <= limit
    # Lowering the cap releases at once.
    runtime.set_pool_limit(1 << 20)
    assert runtime.pool_stats()["cached_bytes"] <= 1 << 20


def test_pool_limit_zero_disables_caching(restore_runtime) -> None:
    runtime.set_pool_limit(0)
    assert runtime.pool_stats()["cached_bytes"] == 0
    _lstm_call()
    assert runtime.pool_stats() == {"cached_bytes": 0, "cached_blocks": 0, "limit_bytes": 0}
    assert runtime.release_memory() == 0


def test_results_do_not_depend_on_the_pool(restore_runtime) -> None:
    rnnkit.set_num_threads(2)
    want = run_lstm_bytes(2)
    for limit in (0, 1 << 20, 1 << 30):
        runtime.set_pool_limit(limit)
        assert run_lstm_bytes(2) == want
        assert run_lstm_bytes(2) == want  # second call: from cached blocks


def test_pool_limit_validation() -> None:
    with pytest.raises(TypeError, match="nbytes must be an int; got float"):
        runtime.set_pool_limit(1.5)
    with pytest.raises(ValueError, match="nbytes must be >= 0; got -1"):
        runtime.set_pool_limit(-1)


def test_pool_limit_environment_variable() -> None:
    code = "import rnnkit; print(rnnkit.runtime.get_pool_limit())"
    out = _python(code, RNNKIT_POOL_LIMIT_BYTES="12345")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "12345"
    out = _python(code, RNNKIT_POOL_LIMIT_BYTES="0")
    assert out.stdout.strip() == "0"
    out = _python(code, RNNKIT_POOL_LIMIT_BYTES="")
    assert out.stdout.strip() == str(1 << 30)  # empty: the default
    out = _python(code, RNNKIT_POOL_LIMIT_BYTES="lots")
    assert out.returncode != 0
    assert "RNNKIT_POOL_LIMIT_BYTES: expected a number of bytes >= 0; got 'lots'" in out.stderr
