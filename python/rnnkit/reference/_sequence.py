"""Sequence bookkeeping shared by the three reference cells: mask carry, outputs, go_backwards.

Keras masking rule (docs/spec.md §3), for every row b and processing step t:
  * kept step:   states <- cell(x_t, states);   y_t = h_t
  * masked step: states <- states (carried);     y_t = y_{t-1}, with y_{-1} = 0
Because a carried h equals the output of the last kept step, this is the same as
  y_t = h_t if some step <= t of the row was kept ("seen"), else 0,
which is how both passes implement it:
  forward:  y[:, t] = where(seen[:, t], h_t, 0)
  backward: dh_t += where(seen[:, t], dy[:, t], 0); at a masked step the state gradients pass
            straight to the previous step, at a kept step they go through the cell.
``np.where`` (not multiplication by 0/1) keeps NaN/inf from masked steps out of the results.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

import numpy as np


def seen_mask(keep: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """(B, T) bool: True where the row has kept at least one step at or before t."""
    if keep is None:
        return None
    return np.logical_or.accumulate(keep, axis=1)


def column(flags: Optional[np.ndarray], t: int) -> Optional[np.ndarray]:
    """flags[:, t] as a (B, 1) column that broadcasts over units, or None for no mask."""
    return None if flags is None else flags[:, t, None]


def carry(keep_t: Optional[np.ndarray], new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Per row: ``new`` at a kept step, ``old`` (carried unchanged) at a masked step."""
    return new if keep_t is None else np.where(keep_t, new, old)


def only_kept(keep_t: Optional[np.ndarray], value: np.ndarray) -> np.ndarray:
    """Per row: ``value`` at a kept step, 0 at a masked step (the cell was not applied)."""
    return value if keep_t is None else np.where(keep_t, value, 0)


def output_at(seen_t: Optional[np.ndarray], h: np.ndarray) -> np.ndarray:
    """y_t: h_t once the row has kept a step, zeros before (even when h0 != 0)."""
    return h if seen_t is None else np.where(seen_t, h, 0)


def original_order(a: np.ndarray, go_backwards: bool) -> np.ndarray:
    """(B, T, ...) in processing order -> fresh C-contiguous array in input order."""
    return np.ascontiguousarray(a[:, ::-1] if go_backwards else a)


@dataclass(frozen=True, eq=False)
class SequenceCache:
    """What every cell's backward needs besides its own gate values.

    All arrays are private, read-only copies (backward can be called any number of times).
    """

    x: np.ndarray  # (B, T, I), processing order
    kernel: np.ndarray  # (I, G*H)
    recurrent_kernel: np.ndarray  # (H, G*H)
    has_bias: bool
    keep: Optional[np.ndarray]  # (B, T) bool, processing order; None = no mask
    go_backwards: bool
    h_prev: np.ndarray  # (B, T, H): the h entering each step (h_prev[:, 0] = h0)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False

    @property
    def dtype(self) -> np.dtype:
        return self.x.dtype

    @property
    def shape(self) -> "tuple[int, int, int]":
        """(B, T, H)."""
        b, t, _ = self.x.shape
        return b, t, self.recurrent_kernel.shape[0]
