"""``python -m rnnkit.bench``: runs end to end, writes a well-formed JSON report, exits 0, and
fails loudly (exit 1) when rnnkit disagrees with its oracle."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit.ops
from rnnkit.bench.__main__ import main
from rnnkit.bench.shapes import SHAPES, SMALL_SHAPES, Shape, flops, parse_shapes
from rnnkit.bench.suite import estimate_reference_seconds


def test_cli_small_json(tmp_path: Path) -> None:
    """The documented quick run: exit 0, a table on stdout, the JSON report's structure."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "rnnkit.bench", "--suites", "cells", "--shapes", "small", "--budget", "0.05",
         "--no-torch", "--json", str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "NumPy sgemm" in proc.stdout and "rnnkit ms" in proc.stdout
    report = json.loads(out.read_text())

    meta = report["meta"]
    for key in ("cpu", "build_info", "rnnkit_threads", "numpy_sgemm_gflops", "numpy", "budget_s"):
        assert key in meta, key
    assert meta["numpy_sgemm_gflops"] > 0
    assert {"isa", "compiler", "num_threads"} <= set(meta["build_info"])
    assert meta["runners"] == ["rnnkit", "reference"]
    assert report["mismatches"] == []

    results = report["results"]
    assert len(results) == 4 * len(SMALL_SHAPES) * 2
    seen = {(r["cell"], tuple(r["shape"][k] for k in "TBIH"), r["pass"]) for r in results}
    assert len(seen) == len(results)
    assert {c for c, _, _ in seen} == {"lstm", "gru", "simple_rnn", "lstmp"}
    assert {s for _, s, _ in seen} == {tuple(s[:4]) for s in SMALL_SHAPES}
    assert {p for _, _, p in seen} == {"fwd", "fwd+bwd"}
    for r in results:
        shape = Shape(**r["shape"])
        assert r["gflop"] == pytest.approx(flops(r["cell"], shape, r["pass"]) / 1e9)
        mine = r["times"]["rnnkit"]
        assert mine["ms"] > 0 and mine["repeats"] >= 3
        assert mine["gflops"] == pytest.approx(r["gflop"] / (mine["ms"] / 1e3))
        ref = r["times"]["reference"]  # small shapes: the reference is always timed
        assert ref["ms"] > 0
        assert r["speedup_vs_reference"] == pytest.approx(ref["ms"] / mine["ms"])
        assert "torch" not in r["times"] and r["speedup_vs_torch"] is None
        assert r["check"]["ok"] and r["check"]["oracle"] == "reference(fp64)"
        assert r["check"]["max_rel_err"] < 2e-5


def test_mismatch_exits_nonzero(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """A wrong rnnkit result is reported on stderr and the exit status is 1."""
    real = rnnkit.ops.simple_rnn_forward

    def broken(*args, **kwargs):
        y, h, cache = real(*args, **kwargs)
        return y * 1.01, h, cache

    monkeypatch.setattr(rnnkit.ops, "simple_rnn_forward", broken)
    status = main(["--cells", "simple_rnn", "--shapes", "10x8x1x20", "--passes", "fwd",
                   "--budget", "0", "--no-torch", "--quiet"])
    assert status == 1
    assert "MISMATCH" in capsys.readouterr().err


def test_png_without_matplotlib_is_a_clear_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:
    """--png without matplotlib: no file, a message naming the extra, still exit 0."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    png = tmp_path / "chart.png"
    status = main(["--cells", "simple_rnn", "--shapes", "10x8x1x20", "--passes", "fwd",
                   "--budget", "0", "--no-torch", "--quiet", "--png", str(png)])
    assert status == 0
    assert not png.exists()
    assert "rnnkit[plot]" in capsys.readouterr().err


def test_shapes_and_flop_model() -> None:
    """The issue's shapes, the FLOP model, and the --shapes parser."""
    assert [tuple(s[:4]) for s in SHAPES] == [(10, 8, 1, 20), (50, 1, 64, 64), (50, 16, 64, 128),
                                              (200, 32, 128, 64), (200, 32, 128, 128),
                                              (100, 32, 128, 256), (100, 64, 256, 512),
                                              (50, 64, 1024, 1024)]
    s = Shape(50, 16, 64, 128)
    assert flops("lstm", s, "fwd") == 2 * 16 * 50 * 4 * 128 * (64 + 128)
    assert flops("lstmp", s, "fwd") == 2 * 16 * 50 * (4 * 128 * (64 + 64) + 128 * 64)
    assert flops("gru", s, "fwd+bwd") == 3 * flops("gru", s, "fwd")
    assert parse_shapes("all") == SHAPES and parse_shapes("small") == SMALL_SHAPES
    assert parse_shapes("10x8x1x20,7x2x3x4") == [SHAPES[0], Shape(7, 2, 3, 4)]
    with pytest.raises(ValueError):
        parse_shapes("big")


def test_reference_estimate() -> None:
    """Scales a measured smaller shape by FLOPs when close; otherwise uses the sgemm model."""
    big, mid = SHAPES[-1], SHAPES[-2]
    f_mid = flops("lstm", mid, "fwd+bwd")
    scaled = estimate_reference_seconds("lstm", big, "fwd+bwd", 100.0, [(f_mid, 1.0)])
    assert scaled == pytest.approx(flops("lstm", big, "fwd+bwd") / f_mid)
    modelled = estimate_reference_seconds("lstm", big, "fwd+bwd", 100.0)
    assert modelled > flops("lstm", big, "fwd+bwd") / 100e9
    assert np.isfinite(modelled)
