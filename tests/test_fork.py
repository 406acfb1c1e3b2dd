"""Fork safety of the thread team: a process forked after the team ran (os.fork, or a
multiprocessing pool with the fork start method) must get working threads of its own, and
every start method must give bitwise-identical results. Every wait has a deadline, so a
regression (a child spinning on workers that do not exist) fails instead of hanging."""
from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import time

import pytest

import rnnkit
from _fork_workers import run_lstm_bytes

TIMEOUT_S = 60

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@pytest.fixture
def parent_team_ran():
    """The parent has run a team-sized kernel on 2 threads (so its workers exist)."""
    saved = rnnkit.get_num_threads()
    want = run_lstm_bytes(threads=2)
    yield want
    rnnkit.set_num_threads(saved)


def _wait_child(pid: int, timeout: float) -> int:
    """waitpid with a deadline; kills the child and fails on timeout. Returns its status."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"forked child did not finish within {timeout} s (hung on the team?)")
        time.sleep(0.02)


def test_os_fork_child_runs_the_team(parent_team_ran, tmp_path) -> None:
    out = tmp_path / "child.pickle"  # a file, not a pipe: a full pipe would block the child
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            out.write_bytes(pickle.dumps(run_lstm_bytes(threads=2)))
            code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(_wait_child(pid, TIMEOUT_S)) == 0
    got = pickle.loads(out.read_bytes())
    assert got.keys() == parent_team_ran.keys()
    for k in got:
        assert got[k] == parent_team_ran[k], k
    # The parent's own team still works after the fork.
    assert run_lstm_bytes(threads=2) == parent_team_ran


def test_fork_in_child_of_child(parent_team_ran) -> None:
    """A forked child that ran its own team can fork again (the handler re-arms)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            first = run_lstm_bytes(threads=2)
            grandchild = os.fork()
            if grandchild == 0:
                os._exit(0 if run_lstm_bytes(threads=2) == first else 3)
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline:
                done, status = os.waitpid(grandchild, os.WNOHANG)
                if done == grandchild:
                    code = os.waitstatus_to_exitcode(status)
                    break
                time.sleep(0.02)
            else:
                os.kill(grandchild, signal.SIGKILL)
                code = 4
            if first != parent_team_ran:
                code = 5
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(_wait_child(pid, 2 * TIMEOUT_S)) == 0


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_pool(method: str, parent_team_ran) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method!r} not available here")
    ctx = multiprocessing.get_context(method)
    # spawn and forkserver children import the worker from tests/: make sure they can, also
    # when pytest put tests/ on sys.path some other way than the environment.
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (tests_dir, saved) if p)
    try:
        with ctx.Pool(2) as pool:
            results = pool.map_async(run_lstm_bytes, [2, 2, 1]).get(timeout=TIMEOUT_S)
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    for got in results:
        assert got.keys() == parent_team_ran.keys()
        for k in got:
            assert got[k] == parent_team_ran[k], (method, k)
