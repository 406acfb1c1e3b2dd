"""``set_random_seed``: one call seeds every generator rnnkit uses (Keras's utility)."""
from __future__ import annotations

import random as _py_random

from .. import backend

__all__ = ["set_random_seed"]


def set_random_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and rnnkit's own (initializers,
    dropout, shuffling), as ``keras.utils.set_random_seed`` seeds Python, NumPy and the
    backend."""
    backend.set_random_seed(seed)  # validates `seed`, seeds rnnkit's and NumPy's generators
    _py_random.seed(int(seed))
