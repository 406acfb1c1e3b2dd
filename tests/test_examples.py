"""The README's example runs end to end and trains (its loss reaches the noise floor)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_ops_quickstart_trains_and_agrees_with_reference() -> None:
    out = subprocess.run([sys.executable, str(EXAMPLES / "ops_quickstart.py")], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    mses = [float(m) for m in re.findall(r"test mse ([0-9.]+)", out)]
    assert len(mses) == 6
    assert mses[-1] < 0.02  # predicting 0 would score ~0.5; the noise floor is 0.0025
    diff = float(re.search(r"max \|ops - reference\|.*: ([0-9.e+-]+)", out).group(1))
    assert diff < 1e-4
