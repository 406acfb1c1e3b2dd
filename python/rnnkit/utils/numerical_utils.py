"""``to_categorical`` (one-hot) and ``normalize`` (unit L-p norm) on NumPy arrays, as Keras 3."""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

__all__ = ["to_categorical", "normalize"]


def to_categorical(x: Any, num_classes: Optional[int] = None) -> np.ndarray:
    """Class indices -> one-hot float64 array with the class axis last.

    ``x`` of shape ``s`` gives ``s + (num_classes,)``; a trailing axis of size 1 is dropped
    first (``(n, 1)`` -> ``(n, num_classes)``), as Keras. ``num_classes`` defaults to
    ``max(x) + 1``.
    """
    labels = np.array(x, dtype="int64")
    shape = labels.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    flat = labels.reshape(-1)
    if not num_classes:
        if flat.size == 0:
            raise ValueError("to_categorical: `num_classes` is required when `x` is empty")
        num_classes = int(flat.max()) + 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise ValueError(f"to_categorical: `num_classes` must be a positive int, got {num_classes!r}")
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        raise ValueError(f"to_categorical: class indices must be in [0, {num_classes}), got "
                         f"values from {flat.min()} to {flat.max()}")
    out = np.zeros((flat.shape[0], int(num_classes)))
    out[np.arange(flat.shape[0]), flat] = 1
    return out.reshape(tuple(shape) + (int(num_classes),))


def normalize(x: Any, axis: Optional[int] = -1, order: Union[int, float] = 2) -> np.ndarray:
    """``x`` divided by its ``order``-norm along ``axis`` (zero norms are left as 1, so zero
    rows stay zero). ``order`` is any ``np.linalg.norm`` order (1, 2, ``np.inf``...)."""
    arr = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(arr, order, axis))
    norm[norm == 0] = 1
    return arr / np.expand_dims(norm, -1 if axis is None else axis)
