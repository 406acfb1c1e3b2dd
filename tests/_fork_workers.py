"""Worker functions for tests/test_fork.py. A module of its own so that the ``spawn`` and
``forkserver`` start methods can import them in a fresh interpreter (functions defined in a
test module would drag pytest's import machinery along)."""
from __future__ import annotations

from typing import Dict

import numpy as np

# Big enough that the LSTM's time loop and its GEMMs run on the thread team (2 threads):
# T=20, B=32, I=64, H=128.
SHAPE = (20, 32, 64, 128)


def problem(seed: int = 0) -> Dict[str, np.ndarray]:
    T, B, I, H = SHAPE
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((B, T, I)).astype(np.float32),
        "kernel": (rng.standard_normal((I, 4 * H)) * 0.1).astype(np.float32),
        "recurrent_kernel": (rng.standard_normal((H, 4 * H)) * 0.1).astype(np.float32),
        "bias": (rng.standard_normal(4 * H) * 0.1).astype(np.float32),
        "dy": rng.standard_normal((B, T, H)).astype(np.float32),
    }


def run_lstm(threads: int = 2, seed: int = 0) -> Dict[str, np.ndarray]:
    """Forward and backward of the LSTM problem on ``threads`` threads; every output."""
    import rnnkit
    import rnnkit.ops as ops

    rnnkit.set_num_threads(threads)
    p = problem(seed)
    y, h, c, cache = ops.lstm_forward(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"])
    grads = ops.lstm_backward(cache, dy=p["dy"])
    out = {"y": y, "h": h, "c": c}
    out.update({f"d_{k}": v for k, v in grads.items()})
    return out


def run_lstm_bytes(threads: int = 2) -> Dict[str, bytes]:
    """run_lstm with every array as raw bytes (a bitwise comparison survives pickling)."""
    return {k: v.tobytes() for k, v in run_lstm(threads).items()}


def predict_pickled(model, x: np.ndarray) -> np.ndarray:
    """tests/test_pickling.py: the model arrives pickled (rnnkit's format); predict with it."""
    return model.predict(x, verbose=0)
