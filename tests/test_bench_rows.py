"""``python -m rnnkit.bench --suites overhead,streaming,imdb``: the per-call overhead rows, the
streaming LSTM step rows and the Keras IMDB model rows, at tiny sizes. Their JSON fields, the
text tables, argument errors, and that a wrong rnnkit result fails the run (exit 1)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

import rnnkit.ops
from rnnkit.bench.__main__ import build_parser, main
from rnnkit.bench.imdb import (IMDB_SIZE, OPERATIONS, WEIGHT_NAMES, ImdbSize, RnnkitImdb,
                               gradients_by_sgd_step, make_batch, parse_imdb_size)
from rnnkit.bench.imdb_keras import keras_status
from rnnkit.bench.output import extra_speedups
from rnnkit.bench.overhead import OVERHEAD_SHAPE
from rnnkit.bench.shapes import SUITES
from rnnkit.bench.streaming import STREAM_SIZES, reference_states, rnnkit_stepper, stream_problem
from rnnkit.bench.tables import format_sections

TINY_IMDB = "3x7x40x5x4"  # batch x seq_len x vocab x embed x units
TINY_STREAM = "4,8"


def _run(tmp_path: Path, capsys: pytest.CaptureFixture, *extra: str) -> Dict[str, Any]:
    out = tmp_path / "rows.json"
    status = main(["--suites", "overhead,streaming,imdb", "--imdb-size", TINY_IMDB,
                   "--stream-sizes", TINY_STREAM, "--budget", "0", "--settle", "0.05", "--quiet",
                   "--no-keras", "--json", str(out), *extra])
    stdout = capsys.readouterr().out
    assert status == 0, stdout
    report = json.loads(out.read_text())
    report["_stdout"] = stdout
    return report


def _check_common(report: Dict[str, Any], with_torch: bool) -> None:
    assert report["results"] == []  # the cells grid was not asked for
    assert report["meta"]["suites"] == ["overhead", "streaming", "imdb"]
    assert report["meta"]["keras"] == "--no-keras"
    assert report["mismatches"] == []

    over = report["overhead"]
    assert [r["pass"] for r in over] == ["fwd", "fwd+bwd"]
    for r in over:
        assert r["cell"] == "simple_rnn" and tuple(r["shape"][k] for k in "TBIH") == (10, 8, 1, 20)
        mine = r["times"]["rnnkit"]
        assert mine["us"] > 0 and mine["repeats"] >= 10 and mine["best_us"] <= mine["us"]
        assert r["speedup_vs_reference"] == pytest.approx(r["times"]["reference"]["us"] / mine["us"])
        assert r["check"]["ok"] and r["check"]["oracle"] == "reference(fp64)"
        assert (r["speedup_vs_torch"] is not None) == with_torch

    stream = report["streaming"]
    assert [r["H"] for r in stream] == [4, 8]
    for r in stream:
        assert (r["B"], r["T"], r["I"]) == (1, 1, r["H"])
        assert r["check"]["ok"] and r["check"]["max_rel_err"] < 1e-4
        assert r["times"]["rnnkit"]["us"] > 0
        if with_torch:
            assert r["speedup_vs_torch"] == pytest.approx(r["times"]["torch"]["us"] / r["times"]["rnnkit"]["us"])
        else:
            assert r["times"]["torch"] is None and r["speedup_vs_torch"] is None

    imdb = report["imdb"]
    assert imdb["size"] == parse_imdb_size(TINY_IMDB)._asdict()
    assert imdb["frameworks"] == (["rnnkit", "torch"] if with_torch else ["rnnkit"])
    check = imdb["check"]
    assert check["ok"] and check["problems"] == []
    assert check["oracle"] == ("torch" if with_torch else "reference")
    assert 0 < check["max_rel_err"] < 1e-3
    assert set(check["first_loss"]) == set(imdb["frameworks"])
    assert all(math.isfinite(v) for v in check["second_loss"].values())
    assert [r["operation"] for r in imdb["results"]] == list(OPERATIONS)
    for r in imdb["results"]:
        assert r["times"]["rnnkit"]["ms"] > 0 and r["times"]["rnnkit"]["repeats"] >= 5
        assert r["times"]["keras"] is None and r["speedup_vs_keras"] is None
        assert (r["speedup_vs_torch"] is not None) == with_torch

    text = report["_stdout"]
    for title in ("Per-call overhead", "Streaming LSTM step", "IMDB model", "rnnkit us", "xtorch"):
        assert title in text, title
    assert "rnnkit ms  GFLOP/s" not in text  # no cells table


def test_rows_without_torch(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Tiny sizes, no PyTorch: rnnkit alone, checked against the NumPy reference."""
    report = _run(tmp_path, capsys, "--no-torch")
    _check_common(report, with_torch=False)


def test_rows_with_torch(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Tiny sizes with PyTorch: nn.LSTMCell and the PyTorch IMDB loop agree and are timed."""
    pytest.importorskip("torch")
    report = _run(tmp_path, capsys)
    _check_common(report, with_torch=True)
    first = report["imdb"]["check"]["first_loss"]
    assert first["torch"] == pytest.approx(first["rnnkit"], rel=1e-5)
    labels = [label for label, _, _ in extra_speedups(report)]
    assert "stream\nH=4" in labels and "imdb\ntrain_step" in labels


@pytest.mark.parametrize("argv", [
    ["--suites", "cells,bogus"], ["--suites", ""], ["--imdb-size", "32x200"],
    ["--imdb-size", "0x1x1x1x1"], ["--stream-sizes", "0"], ["--stream-sizes", "a,b"],
])
def test_argument_errors(argv: List[str], capsys: pytest.CaptureFixture) -> None:
    """Bad --suites / --imdb-size / --stream-sizes: argparse usage error (exit 2)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_defaults_and_parsers() -> None:
    """Every suite by default; the documented IMDB and streaming sizes."""
    args = build_parser().parse_args([])
    assert args.suites == list(SUITES) == ["cells", "overhead", "streaming", "imdb"]
    assert args.imdb_size == IMDB_SIZE == ImdbSize(32, 200, 20000, 128, 64)
    assert args.stream_sizes == list(STREAM_SIZES) == [32, 128, 512, 1024]
    assert args.keras is True
    assert parse_imdb_size("default") == IMDB_SIZE
    assert parse_imdb_size(" 3x7x40x5x4 ") == ImdbSize(3, 7, 40, 5, 4)
    assert IMDB_SIZE.label == "32x200x20000x128x64"
    assert OVERHEAD_SHAPE.name == "tutorial"
    assert "--suites" in build_parser().format_help()


def test_streaming_mismatch_exits_nonzero(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture) -> None:
    """A wrong carried state from ops.lstm_forward is reported and the exit status is 1."""
    real = rnnkit.ops.lstm_forward

    def broken(*args: Any, **kwargs: Any) -> Any:
        y, h, c, cache = real(*args, **kwargs)
        return y, h, c * 1.01, cache

    monkeypatch.setattr(rnnkit.ops, "lstm_forward", broken)
    status = main(["--suites", "streaming", "--stream-sizes", "4", "--budget", "0", "--settle", "0",
                   "--no-torch", "--quiet"])
    assert status == 1
    err = capsys.readouterr().err
    assert "MISMATCH" in err and "streaming H=4" in err


def test_imdb_gradient_mismatch_exits_nonzero(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    """Wrong LSTM gradients in rnnkit.ops fail the IMDB check against the oracle (exit 1)."""
    real = rnnkit.ops.lstm_backward

    def broken(*args: Any, **kwargs: Any) -> Any:
        grads = real(*args, **kwargs)
        return {k: v * 1.01 if k == "recurrent_kernel" else v for k, v in grads.items()}

    monkeypatch.setattr(rnnkit.ops, "lstm_backward", broken)
    status = main(["--suites", "imdb", "--imdb-size", TINY_IMDB, "--budget", "0", "--settle", "0",
                   "--no-torch", "--no-keras", "--quiet"])
    assert status == 1
    err = capsys.readouterr().err
    assert "MISMATCH" in err and "recurrent_kernel" in err


def test_sgd_probe_reads_gradients() -> None:
    """rnnkit's gradients via one large-rate SGD step equal those of the reference kernels run
    through the same probe, and are non-zero for every weight array."""
    from rnnkit import backend
    size = parse_imdb_size(TINY_IMDB)
    fw = RnnkitImdb(size, make_batch(size))
    grads = fw.gradients()
    assert len(grads) == len(WEIGHT_NAMES) == 15
    with backend.use_kernels("reference"):
        want = fw.gradients()
    for name, g, w in zip(WEIGHT_NAMES, grads, want):
        assert np.abs(g).max() > 0, name
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-3 * np.abs(w).max(), err_msg=name)
    before = [np.ones(3)]
    np.testing.assert_allclose(gradients_by_sgd_step(before, [np.ones(3) - 2e4], lr=1e4), [2 * np.ones(3)])


def test_streaming_stepper_carries_state() -> None:
    """Each rnnkit step feeds (h, c) back: three steps equal the reference's three chained steps,
    and differ from one step."""
    p = stream_problem(6)
    s = rnnkit_stepper(p)
    s.step()
    one = s.state()
    s.step()
    s.step()
    h, c = s.state()
    want = reference_states(p, 3)
    np.testing.assert_allclose(h, want["h"], atol=1e-5)
    np.testing.assert_allclose(c, want["c"], atol=1e-5)
    assert not np.allclose(one[1], c)


def test_keras_status_without_keras(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Keras the imdb rows get a reason, not an exception."""
    import importlib.util
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    mod, why = keras_status(2)
    assert mod is None and "not installed" in why


def test_format_sections_handles_missing_columns() -> None:
    """The text tables print '-' for frameworks that did not run and omit absent sections."""
    check = {"ok": True, "oracle": "reference", "max_rel_err": 1e-6, "problems": [],
             "first_loss": {"rnnkit": 0.69}}
    report = {"overhead": [], "streaming": [],
              "imdb": {"size": IMDB_SIZE._asdict(), "check": check, "results": [
                  {"operation": "train_step", "speedup_vs_torch": None, "speedup_vs_keras": None,
                   "times": {"rnnkit": {"ms": 150.0}, "torch": None, "keras": None}}]}}
    text = format_sections(report)
    assert "Per-call overhead" not in text and "Streaming" not in text
    row = [line for line in text.splitlines() if line.startswith("train_step ") and "=" not in line][0]
    assert row.split() == ["train_step", "150.00", "-", "-", "-", "-"]
    assert format_sections({"overhead": [], "streaming": [], "imdb": None}) == ""
