"""Argument checking and normalisation shared by the three reference cells.

The error messages produced here are part of the public contract: the C++ module
``rnnkit.ops`` raises the identical messages, and ``tests/test_validation.py`` checks both.

Order of checks (forward):
  0. the flags go_backwards, reset_after (GRU only), training: a Python bool or np.bool_
     (never a string or a number: bool("False") is True);
  1. every array argument converted with np.asarray, in signature order (a ragged nested list
     is rejected naming the argument); then the dtype of x, kernel, recurrent_kernel,
     projection_kernel (projected cells), bias, h0, c0 (real numeric), then the dtype of mask
     (bool or real numeric; checked here, before the ndim/shape of mask is looked at);
  2. ndim of x, kernel, recurrent_kernel, projection_kernel, bias, h0, c0, mask;
  3. empty x, zero units (recurrent_kernel's rows, then projection_kernel's rows);
  4. shapes of projection_kernel, recurrent_kernel, kernel, bias, h0, c0, mask; then the
     total size (every array a call holds, 8 bytes per element, must fit in an int64);
     recurrent_kernel's rows are the width S of h: H, or P for a projected cell, whose H is
     projection_kernel's rows;
  5. activation, then recurrent_activation (LSTM, GRU): a name in
     rnnkit.cells.ACTIVATIONS or None (= "linear"); anything else, a non-str included, is a
     ValueError with the text of rnnkit.cells.activation_error.
Backward: the cache type (and that a forward call made it), then dtypes of dy, dh_last,
dc_last, then their shapes.
A copy that cannot be allocated is a MemoryError naming the argument and the bytes needed.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Optional, Tuple

import numpy as np

from .. import cells
from ..cells import ACTIVATIONS

# Number of gate blocks G along the last axis of kernel / recurrent_kernel (see rnnkit.cells).
GATES = cells.GATE_COUNTS

_REAL_KINDS = "iuf"


@dataclass(frozen=True)
class ForwardArgs:
    """Validated forward arguments, all converted to ``dtype`` and C-contiguous (own copies).

    ``x`` and ``keep`` are in PROCESSING order (reversed in time when go_backwards).
    """

    x: np.ndarray  # (B, T, I), processing order
    kernel: np.ndarray  # (I, G*H)
    recurrent_kernel: np.ndarray  # (H, G*H); (P, G*H) for projected cells
    bias: Optional[np.ndarray]  # (G*H,) or (2, 3H) for GRU reset_after=True; None = no bias
    h0: np.ndarray  # (B, H); zeros when not given
    c0: Optional[np.ndarray]  # (B, H) for LSTM (zeros when not given), else None
    keep: Optional[np.ndarray]  # (B, T) bool, processing order; None = no mask
    dtype: np.dtype  # float32 or float64
    go_backwards: bool
    activation: str = "tanh"  # canonical name (None given -> "linear")
    recurrent_activation: Optional[str] = None  # LSTM/GRU only, canonical name
    projection_kernel: Optional[np.ndarray] = None  # (H, P), projected cells only

    @property
    def batch(self) -> int:
        return self.x.shape[0]

    @property
    def units(self) -> int:
        """H (projection_kernel's rows for a projected cell)."""
        if self.projection_kernel is not None:
            return self.projection_kernel.shape[0]
        return self.recurrent_kernel.shape[0]


def _as_array(name: str, value: Any) -> np.ndarray:
    """np.asarray(value); NumPy's refusal (a ragged nested list...) names the argument."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as e:
        raise type(e)(
            f"{name} must be array-like with a regular shape; got {type(value).__name__} "
            f"that NumPy cannot convert ({e})"
        ) from None


def _require_real(name: str, arr: np.ndarray) -> np.ndarray:
    """Reject anything that is not int/uint/float (check 1)."""
    if arr.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    return arr


def _real_array(name: str, value: Any) -> np.ndarray:
    """np.asarray(value), rejecting anything that is not int/uint/float (check 1)."""
    return _require_real(name, _as_array(name, value))


def check_flag(name: str, value: Any) -> bool:
    """A flag argument: exactly a Python bool or a NumPy bool (check 0)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be a bool; got {type(value).__name__}")


def check_sizes(b: int, t: int, i: int, h: int, g: int) -> None:
    """Every array a call may hold at once, 8 bytes per element, must fit in an int64."""
    elements = b * t * (g * h + i + 4 * h) * 2 + (i + h) * g * h
    if elements * 8 > 2**63 - 1:
        raise ValueError(
            f"x and recurrent_kernel are too large: batch={b}, time={t}, features={i}, "
            f"units={h} overflow 64-bit sizes"
        )


def _check_ndim(name: str, arr: np.ndarray, ndim: int, layout: str) -> None:
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array {layout}; got shape {arr.shape}")


def _check_shape(name: str, arr: np.ndarray, expected: Tuple[int, ...]) -> None:
    if arr.shape != expected:
        raise ValueError(f"{name} must have shape {expected}; got {arr.shape}")


def _is_float64(arr: np.ndarray) -> bool:
    """Any 8-byte float, whatever its byte order."""
    return arr.dtype.kind == "f" and arr.dtype.itemsize == 8


def result_dtype(*arrays: Optional[np.ndarray]) -> np.dtype:
    """float64 if any given array is float64 (any byte order), else float32."""
    if any(a is not None and _is_float64(a) for a in arrays):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def _convert(arr: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """A fresh C-contiguous copy in ``dtype`` (the cache must not alias caller memory)."""
    try:
        return np.array(arr, dtype=dtype, order="C", copy=True)
    except (MemoryError, ValueError) as e:
        nbytes = arr.size * dtype.itemsize
        if isinstance(e, ValueError) and nbytes <= 2**63 - 1:
            raise
        raise MemoryError(
            f"not enough memory to copy {name}: a C-contiguous {dtype} array of shape "
            f"{arr.shape} needs {nbytes} bytes"
        ) from None


def validate_forward(
    cell: str,
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any = None,
    *,
    h0: Any = None,
    c0: Any = None,
    mask: Any = None,
    go_backwards: bool = False,
    activation: Any = "tanh",
    recurrent_activation: Any = "sigmoid",
    reset_after: bool = True,
    training: bool = True,
    projection_kernel: Any = None,
) -> ForwardArgs:
    """Check and normalise the arguments of ``{cell}_forward``.

    Args:
        cell: a name in rnnkit.cells.CELLS. ``c0`` is only looked at for cells with a cell
            state (LSTM, LSTMP), ``recurrent_activation`` only for cells that have one,
            ``reset_after`` only for "gru", ``projection_kernel`` only for projected cells
            (where it is required); ``training`` is only checked to be a bool.
        Others: as in the public forward functions.

    Returns:
        ForwardArgs with every array in the result dtype, x / mask in processing order.

    Raises:
        TypeError, ValueError with the messages documented in the module docstring.
    """
    # 0. flags.
    check_flag("go_backwards", go_backwards)
    if cell == "gru":
        check_flag("reset_after", reset_after)
    check_flag("training", training)

    spec = cells.get(cell)
    g = spec.gate_count
    gru_two_biases = spec.has_reset_after and bool(reset_after)

    # 1. every array converted (signature order), then dtypes (real numeric), mask last.
    has_c = "c" in spec.states
    named = [("x", x), ("kernel", kernel), ("recurrent_kernel", recurrent_kernel)]
    if spec.projected:
        named.append(("projection_kernel", projection_kernel))
    if bias is not None:
        named.append(("bias", bias))
    if h0 is not None:
        named.append(("h0", h0))
    if has_c and c0 is not None:
        named.append(("c0", c0))
    arrs = {name: _as_array(name, value) for name, value in named}
    mask_arr = None if mask is None else _as_array("mask", mask)
    for name, arr in arrs.items():
        _require_real(name, arr)
    if mask_arr is not None:
        if mask_arr.dtype != np.bool_ and mask_arr.dtype.kind not in _REAL_KINDS:
            raise TypeError(
                f"mask must be a boolean or numeric array; got dtype {mask_arr.dtype}"
            )

    # 2. ndim, with the expected layout spelled out.
    bias_ndim = 2 if gru_two_biases else 1
    bias_layout = spec.bias_layout(bool(reset_after))
    state = "proj_size" if spec.projected else "units"  # the width of h
    layouts = {
        "x": (3, "(batch, time, features)"),
        "kernel": (2, f"(features, {g}*units)"),
        "recurrent_kernel": (2, f"({state}, {g}*units)"),
        "projection_kernel": (2, "(units, proj_size)"),
        "bias": (bias_ndim, bias_layout),
        "h0": (2, f"(batch, {state})"),
        "c0": (2, "(batch, units)"),
    }
    for name, arr in arrs.items():
        _check_ndim(name, arr, *layouts[name])
    if mask_arr is not None:
        _check_ndim("mask", mask_arr, 2, "(batch, time)")

    # 3. empty problems.
    xa, ka, ra = arrs["x"], arrs["kernel"], arrs["recurrent_kernel"]
    if 0 in xa.shape:
        raise ValueError(
            f"x must have nonzero batch, time and feature sizes; got shape {xa.shape}"
        )
    if ra.shape[0] == 0:
        raise ValueError(f"recurrent_kernel must have at least one unit; got shape {ra.shape}")
    pa = arrs.get("projection_kernel")
    if pa is not None and pa.shape[0] == 0:
        raise ValueError(f"projection_kernel must have at least one unit; got shape {pa.shape}")

    # 4. shapes; S (the width of h) comes from recurrent_kernel, H is S or, for a projected
    # cell, projection_kernel's rows.
    b, t, i = xa.shape
    s_w = ra.shape[0]
    h = pa.shape[0] if pa is not None else s_w
    if pa is not None:
        _check_shape("projection_kernel", pa, (h, s_w))
    _check_shape("recurrent_kernel", ra, (s_w, g * h))
    _check_shape("kernel", ka, (i, g * h))
    if "bias" in arrs:
        _check_shape("bias", arrs["bias"], spec.bias_shape(h, bool(reset_after)))
    if "h0" in arrs:
        _check_shape("h0", arrs["h0"], (b, s_w))
    if "c0" in arrs:
        _check_shape("c0", arrs["c0"], (b, h))
    if mask_arr is not None:
        _check_shape("mask", mask_arr, (b, t))
    check_sizes(b, t, i, max(h, s_w), g)

    # 5. activations.
    act = check_activation(activation)
    rec_act = None
    if spec.recurrent_activation is not None:
        rec_act = check_activation(recurrent_activation, "recurrent_activation")

    dtype = result_dtype(*arrs.values())
    xs = _convert(xa, dtype, "x")
    keep = None
    if mask_arr is not None:
        keep = mask_arr != 0  # (B, T) bool, a new array; NaN counts as nonzero = keep
    if go_backwards:
        # Keras: the sequence AND its mask are consumed from t = T-1 down to 0.
        xs = np.ascontiguousarray(xs[:, ::-1])
        if keep is not None:
            keep = np.ascontiguousarray(keep[:, ::-1])

    return ForwardArgs(
        x=xs,
        kernel=_convert(ka, dtype, "kernel"),
        recurrent_kernel=_convert(ra, dtype, "recurrent_kernel"),
        bias=_convert(arrs["bias"], dtype, "bias") if "bias" in arrs else None,
        h0=_convert(arrs["h0"], dtype, "h0") if "h0" in arrs else np.zeros((b, s_w), dtype),
        c0=(_convert(arrs["c0"], dtype, "c0") if "c0" in arrs else np.zeros((b, h), dtype))
        if has_c
        else None,
        projection_kernel=_convert(pa, dtype, "projection_kernel") if pa is not None else None,
        keep=keep,
        dtype=dtype,
        go_backwards=bool(go_backwards),
        activation=act,
        recurrent_activation=rec_act,
    )


def check_activation(activation: Any, param: str = "activation") -> str:
    """Normalise an activation argument (check 5); None means "linear".

    Raises:
        ValueError: ``rnnkit.cells.activation_error(param, activation)`` for anything that
            is not None or exactly one of ``rnnkit.cells.ACTIVATIONS`` (non-str included).
    """
    return cells.normalize_activation(activation, param)


def check_cache(cache: Any, cache_type: type, cell: str) -> None:
    """Reject anything that is not a cache of ``cache_type`` made by a forward call (check 7):
    an instance made with ``__new__`` has none of its fields."""
    expected = f"cache must be the cache returned by {cell}_forward(..., training=True)"
    if not isinstance(cache, cache_type):
        raise TypeError(f"{expected}; got {type(cache).__name__}")
    if any(not hasattr(cache, f.name) for f in fields(cache_type)):
        raise TypeError(f"{expected}; got an uninitialised {type(cache).__name__}")


def validate_output_grads(
    dtype: np.dtype, specs: "list[tuple[str, Any, Tuple[int, ...]]]"
) -> "list[np.ndarray]":
    """Check and convert upstream gradients (dy, dh_last, dc_last) (check 8).

    Args:
        dtype: result dtype of the forward pass (taken from the cache).
        specs: ``[(name, value or None, expected_shape), ...]``; all dtypes are checked
            before any shape.

    Returns:
        One fresh C-contiguous array in ``dtype`` per spec (zeros where the value was None).
    """
    arrs = [None if v is None else _real_array(name, v) for name, v, _ in specs]
    out = []
    for (name, _, shape), arr in zip(specs, arrs):
        if arr is None:
            out.append(np.zeros(shape, dtype=dtype))
        else:
            _check_shape(name, arr, shape)
            out.append(_convert(arr, dtype, name))
    return out
