"""Thread team and SIMD dispatch: results are bitwise identical for any thread count, the
thread limit is honoured, and RNNKIT_ISA forces a path (or fails clearly)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Dict, Tuple

import numpy as np
import pytest

import rnnkit
import rnnkit.ops as ops
from _cases import VARIANTS, backward, forward, make_problem, projection


@pytest.fixture
def restore_threads():
    saved = rnnkit.get_num_threads()
    yield
    rnnkit.set_num_threads(saved)


def _run(cell: str, options, p, mask) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    outs, cache = forward(ops, cell, p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                          h0=p["h0"], c0=p.get("c0"), mask=mask, go_backwards=True,
                          **projection(p), **options)
    return outs, backward(ops, cell, cache, p["dy"], p["dh_last"], p.get("dc_last"))


# (batch, time, units) large enough that the time loop and the GEMMs both split over threads.
# The time loops split small layers by batch rows (no barrier per step; B=13: 2-3 threads of
# 4-7 rows, the last row tile partial) and the others by hidden units (B=7 is too few rows to
# split: by units, H=200 so each thread gets slices; the last slice is partial in both).
# Two-phase and projected cells always split by units.
# A single step (T=1, H a whole number of slices) reads the recurrent kernel in place and
# computes each thread's share of the product before the step.
SPLITS = {"by_rows": (13, 12, 70), "by_units": (7, 4, 200), "single_step": (2, 1, 512)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("split", sorted(SPLITS))
@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_bitwise_identical_for_1_2_3_threads(isa, variant, split, dtype, restore_threads) -> None:
    _, cell, options = variant
    batch, steps, units = SPLITS[split]
    p = {k: v.astype(dtype) for k, v in make_problem(
        cell, options, batch=batch, time=steps, features=150, units=units, seed=4,
        scale=0.2).items()}
    mask = np.random.default_rng(0).random((batch, steps)) > 0.2
    results = []
    for n in (1, 2, 3):
        rnnkit.set_num_threads(n)
        assert rnnkit.get_num_threads() == n
        results.append(_run(cell, options, p, mask))
    for outs, grads in results[1:]:
        for k in outs:
            np.testing.assert_array_equal(outs[k], results[0][0][k], err_msg=k)
        for k in grads:
            np.testing.assert_array_equal(grads[k], results[0][1][k], err_msg=k)


def _usable_cores() -> int:
    """The cores this process may use: its affinity mask on Linux, else every core."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def test_set_num_threads_validates_and_resets(restore_threads, monkeypatch) -> None:
    # The default is the threads-per-worker rule; without its variables it is the affinity
    # (a LocalCluster started earlier in this process leaves OMP_NUM_THREADS=1 behind).
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("RNNKIT_NUM_THREADS", raising=False)
    with pytest.raises(TypeError, match="n must be an int; got float"):
        rnnkit.set_num_threads(2.0)
    rnnkit.set_num_threads(3)
    assert rnnkit.build_info()["num_threads"] == 3
    rnnkit.set_num_threads(0)
    assert rnnkit.get_num_threads() == _usable_cores()


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, env=full_env)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_thread_limit_is_honoured() -> None:
    """With a limit of 1 no worker thread is ever started; with 3, two workers join."""
    code = """
        import os, numpy as np, rnnkit
        def threads(): return len(os.listdir('/proc/self/task'))
        rng = np.random.default_rng(0)
        x = rng.random((32, 20, 64)); k = rng.random((64, 512)); r = rng.random((128, 512))
        rnnkit.set_num_threads(1)
        base = threads()
        rnnkit.ops.lstm_forward(x, k, r)
        one = threads()
        rnnkit.set_num_threads(3)
        rnnkit.ops.lstm_forward(x, k, r)
        print(base, one, threads())
    """
    out = _python(code, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    assert out.returncode == 0, out.stderr
    base, one, three = map(int, out.stdout.split())
    assert one == base
    assert three == base + 2


def test_rnnkit_isa_environment_forces_a_path() -> None:
    for isa in rnnkit.build_info()["supported_isas"]:
        out = _python("import rnnkit; print(rnnkit.build_info()['isa'])", RNNKIT_ISA=isa)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == isa


def test_rnnkit_isa_environment_rejects_unknown_names() -> None:
    out = _python("import rnnkit", RNNKIT_ISA="sse9")
    assert out.returncode != 0
    assert "RNNKIT_ISA: unknown ISA 'sse9'; this build has: generic" in out.stderr


def test_select_isa_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown ISA 'quantum'"):
        rnnkit._core.select_isa("quantum")


def test_concurrent_python_threads_get_identical_results(restore_threads) -> None:
    """The GIL is released while the kernels run: callers from several Python threads share
    the team (one of them falls back to running alone) and still get identical results."""
    import threading

    rnnkit.set_num_threads(2)
    p = make_problem("lstm", {}, batch=16, time=20, features=40, units=64, seed=3)
    want = _run("lstm", {}, p, None)
    got: list = [None] * 4

    def work(i: int) -> None:
        got[i] = _run("lstm", {}, p, None)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for outs, grads in got:
        for k in outs:
            np.testing.assert_array_equal(outs[k], want[0][k])
        for k in grads:
            np.testing.assert_array_equal(grads[k], want[1][k])
