"""Row-sparse gradients: an Embedding's gradient as its touched rows.

:class:`SparseRows` holds ``rows`` (the distinct row indices, increasing), ``values``
(``(len(rows),) + shape[1:]``: each row's summed gradient) and the dense ``shape``; every
other row's gradient is zero. Its dense form (:meth:`SparseRows.dense`, ``np.asarray``) is
bitwise the dense gradient the layer would compute (``np.add.at`` into zeros).

Layers produce one only inside :func:`collect_rows` (the training step enters it around the
backward pass, where the optimizer consumes the gradients), and only while
:func:`set_row_gradients` has not turned them off; everywhere else (``backward`` called
directly, ``loss_and_gradients``) gradients stay dense arrays. Adding a SparseRows to
anything (a shared layer's second gradient, a regularizer's gradient) gives a dense array.
"""
from __future__ import annotations

from typing import Any, ContextManager, Sequence, Tuple

import numpy as np

from ._thread_scope import ThreadScoped

__all__ = ["SparseRows", "collect_rows", "rows_wanted", "set_row_gradients", "dense"]

_COLLECTING = ThreadScoped(False)
_ENABLED = [True]


class SparseRows:
    """Gradient of the rows ``rows`` of a ``shape`` array (see the module docstring)."""

    __slots__ = ("rows", "values", "shape")
    __array_ufunc__ = None  # ``ndarray + SparseRows`` defers to __radd__

    def __init__(self, rows: np.ndarray, values: np.ndarray, shape: Sequence[int]) -> None:
        self.rows = rows
        self.values = values
        self.shape: Tuple[int, ...] = tuple(int(s) for s in shape)
        if (rows.ndim != 1 or values.shape != (len(rows),) + self.shape[1:]):
            raise ValueError(f"SparseRows: values of shape {values.shape} do not match rows "
                             f"{rows.shape} of a {self.shape} array")

    @property
    def dtype(self) -> np.dtype:
        """Dtype of the values (and of the dense form)."""
        return self.values.dtype

    @property
    def ndim(self) -> int:
        """Dimensions of the dense form."""
        return len(self.shape)

    def dense(self) -> np.ndarray:
        """The dense gradient: zeros, the rows ``rows`` set to ``values``."""
        out = np.zeros(self.shape, dtype=self.values.dtype)
        out[self.rows] = self.values
        return out

    def astype(self, dtype: Any) -> "SparseRows":
        """Values cast to ``dtype`` (casting commutes with the zero fill)."""
        return SparseRows(self.rows, self.values.astype(dtype, copy=False), self.shape)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        d = self.dense()
        return d if dtype is None else d.astype(dtype, copy=False)

    def __add__(self, other: Any) -> np.ndarray:
        return self.dense() + other  # NumPy's promotion rules, as for the dense gradient

    def __radd__(self, other: Any) -> np.ndarray:
        return other + self.dense()

    def __repr__(self) -> str:
        return f"<SparseRows {len(self.rows)} of {self.shape} {self.dtype}>"


def dense(g: Any) -> Any:
    """``g`` itself, or the dense form of a :class:`SparseRows`."""
    return g.dense() if isinstance(g, SparseRows) else g


def collect_rows() -> ContextManager[None]:
    """Within this block (on this thread), layers may store :class:`SparseRows` gradients."""
    return _COLLECTING.scope(True)


def rows_wanted() -> bool:
    """Whether a layer may store a :class:`SparseRows` gradient now."""
    return _ENABLED[0] and _COLLECTING.value


def set_row_gradients(enabled: bool) -> None:
    """Turn row-sparse gradients on (the default) or off (every gradient dense: the
    reference path, bitwise equal, slower)."""
    if not isinstance(enabled, (bool, np.bool_)):
        raise ValueError(f"set_row_gradients: `enabled` must be a bool, got {enabled!r}")
    _ENABLED[0] = bool(enabled)
