"""Running an optimizer's update step in C++ (``rnnkit._core.optim_update``).

The kinds of fused update, their slots and coefficients are listed once, in
``cpp/include/rnnkit/optim.def`` (``_core.optim_kinds()`` lists them; the binding checks
each call's slot and coefficient counts against it). An optimizer
class offers a fused update by defining ``_fused_update(i, w, lr)``, returning ``(kind,
slots, coefs)`` built from the same scalar expressions as its NumPy ``update_step``, which
stays the reference: the kernel performs the same IEEE operations in the same order and
precision, so both give bitwise the same weights and slots.

:func:`try_update` runs the kernel when everything allows it and returns False otherwise
(the caller then runs the NumPy formulas): the optimizer's own class is one of rnnkit's
(a subclass may override ``update_step``), ``use_fused_kernels`` is on, the variable is a
C-contiguous, aligned, writeable float32/float64 array, the slots too, and no array shares
memory with another.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from ..sparse_grad import SparseRows

FusedCall = Tuple[str, Sequence[np.ndarray], Sequence[Any]]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _in_place_ok(a: Any, dtype: np.dtype) -> bool:
    return (isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous
            and a.flags.aligned and a.flags.writeable)


def try_update(opt: Any, i: int, g: Any, w: np.ndarray, lr: Any) -> bool:
    """Weight decay (if any) and the update step of variable ``i`` (``w``, in place) from
    gradient ``g`` (an array of w's shape and dtype, or a :class:`SparseRows`) in C++;
    False, with nothing changed, when the NumPy formulas must run instead."""
    from . import _CLASSES
    if not opt.use_fused_kernels or _CLASSES.get(type(opt).__name__) is not type(opt):
        return False
    if not (w.dtype in _FLOATS and _in_place_ok(w, w.dtype)):
        return False
    f = w.dtype.type
    call: Optional[FusedCall] = opt._fused_update(i, w, f(lr))
    if call is None:
        return False
    kind, slots, coefs = call
    if not all(_in_place_ok(s, w.dtype) for s in slots):
        return False
    rows = None
    values = g
    if isinstance(g, SparseRows):
        if w.ndim == 0:
            return False
        rows, values = np.ascontiguousarray(g.rows, dtype=np.int64), g.values
    if not isinstance(values, np.ndarray) or values.dtype != w.dtype:
        return False
    values = np.require(values, requirements="CA")  # a copy does not change the values
    written: List[np.ndarray] = [w, *slots]
    read = [values] + ([rows] if rows is not None else [])
    for k, a in enumerate(written):
        if any(np.may_share_memory(a, b) for b in written[k + 1:] + read):
            return False
    decay = None
    if opt.weight_decay is not None:
        decay = (float(f(opt.weight_decay)), float(f(lr)))
    _core.optim_update(kind, w, values, list(slots), [float(c) for c in coefs], rows, decay)
    return True
