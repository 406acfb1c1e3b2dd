"""The examples run end to end and learn (the README's main command runs sine_wave.py)."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str, cwd: Path) -> str:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], check=True,
                          capture_output=True, text=True, timeout=300, cwd=cwd).stdout


def test_ops_quickstart_trains_and_agrees_with_reference(tmp_path: Path) -> None:
    out = _run("ops_quickstart.py", cwd=tmp_path)
    mses = [float(m) for m in re.findall(r"test mse ([0-9.]+)", out)]
    assert len(mses) == 6
    assert mses[-1] < 0.02  # predicting 0 would score ~0.5; the noise floor is 0.0025
    diff = float(re.search(r"max \|ops - reference\|.*: ([0-9.e+-]+)", out).group(1))
    assert diff < 1e-4


def test_sine_wave_tutorial_trains_and_plots_when_it_can(tmp_path: Path) -> None:
    out = _run("sine_wave.py", "--out", str(tmp_path), cwd=tmp_path)
    assert out.count("5/5") >= 20  # the tutorial's 20 epochs of 5 batches
    final = re.search(r"final loss ([0-9.]+), val_loss ([0-9.]+)", out)
    assert final and float(final.group(1)) < 0.3  # the noisy sine's variance is ~0.5
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "loss.png").stat().st_size > 0
        assert (tmp_path / "prediction.png").stat().st_size > 0
    else:
        assert "matplotlib not installed" in out


def test_classify_sequences_beats_chance(tmp_path: Path) -> None:
    out = _run("classify_sequences.py", cwd=tmp_path)
    acc = float(re.search(r"held-out accuracy: ([0-9.]+)", out).group(1))
    assert acc > 0.8  # three classes: chance is 0.333


def test_seq2seq_addition_learns_held_out_sums(tmp_path: Path) -> None:
    """The functional encoder-decoder reaches >= 95% exact match on unseen questions."""
    out = _run("seq2seq_addition.py", cwd=tmp_path)
    exact = float(re.search(r"held-out exact match: ([0-9.]+)%", out).group(1))
    assert exact >= 95.0, out[-2000:]


def test_dask_batch_inference_matches_local(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("dask.array")
    pytest.importorskip("distributed")
    out = _run("dask_batch_inference.py", cwd=tmp_path)
    assert "ok: dask predict matches local predict" in out
    assert float(re.search(r"max \|dask - local\| = ([0-9.e+-]+)", out).group(1)) <= 1e-5
