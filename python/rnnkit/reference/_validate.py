"""Argument checking and normalisation shared by the three reference cells.

The error messages produced here are part of the public contract: the C++ module
``rnnkit.ops`` raises the identical messages, and ``tests/test_validation.py`` checks both.

Order of checks (forward):
  1. dtype of x, kernel, recurrent_kernel, bias, h0, c0 (real numeric), then the dtype of mask
     (bool or real numeric; checked here, before the ndim/shape of mask is looked at);
  2. ndim of x, kernel, recurrent_kernel, bias, h0, c0, mask;
  3. empty x, zero units;
  4. shapes of recurrent_kernel, kernel, bias, h0, c0, mask;
  5. SimpleRNN activation.
Backward: the cache type, then dtypes of dy, dh_last, dc_last, then their shapes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

# Number of gate blocks G along the last axis of kernel / recurrent_kernel.
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}

ACTIVATIONS = ("tanh", "relu", "linear")

_REAL_KINDS = "iuf"


@dataclass(frozen=True)
class ForwardArgs:
    """Validated forward arguments, all converted to ``dtype`` and C-contiguous (own copies).

    ``x`` and ``keep`` are in PROCESSING order (reversed in time when go_backwards).
    """

    x: np.ndarray  # (B, T, I), processing order
    kernel: np.ndarray  # (I, G*H)
    recurrent_kernel: np.ndarray  # (H, G*H)
    bias: Optional[np.ndarray]  # (G*H,) or (2, 3H) for GRU reset_after=True; None = no bias
    h0: np.ndarray  # (B, H); zeros when not given
    c0: Optional[np.ndarray]  # (B, H) for LSTM (zeros when not given), else None
    keep: Optional[np.ndarray]  # (B, T) bool, processing order; None = no mask
    dtype: np.dtype  # float32 or float64
    go_backwards: bool

    @property
    def batch(self) -> int:
        return self.x.shape[0]

    @property
    def units(self) -> int:
        return self.recurrent_kernel.shape[0]


def _real_array(name: str, value: Any) -> np.ndarray:
    """np.asarray(value), rejecting anything that is not int/uint/float (check 1)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    return arr


def _check_ndim(name: str, arr: np.ndarray, ndim: int, layout: str) -> None:
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array {layout}; got shape {arr.shape}")


def _check_shape(name: str, arr: np.ndarray, expected: Tuple[int, ...]) -> None:
    if arr.shape != expected:
        raise ValueError(f"{name} must have shape {expected}; got {arr.shape}")


def result_dtype(*arrays: Optional[np.ndarray]) -> np.dtype:
    """float64 if any given array is float64, else float32."""
    if any(a is not None and a.dtype == np.float64 for a in arrays):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def _convert(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A fresh C-contiguous copy in ``dtype`` (the cache must not alias caller memory)."""
    return np.array(arr, dtype=dtype, order="C", copy=True)


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
    reset_after: bool = True,
) -> ForwardArgs:
    """Check and normalise the arguments of ``{cell}_forward``.

    Args:
        cell: "simple_rnn", "lstm" or "gru". ``c0`` is only looked at for "lstm",
            ``activation`` only for "simple_rnn", ``reset_after`` only for "gru".
        Others: as in the public forward functions.

    Returns:
        ForwardArgs with every array in the result dtype, x / mask in processing order.

    Raises:
        TypeError, ValueError with the messages documented in the module docstring.
    """
    g = GATES[cell]
    gru_two_biases = cell == "gru" and bool(reset_after)

    # 1. dtypes (real numeric), in argument order; mask dtype right after.
    named = [("x", x), ("kernel", kernel), ("recurrent_kernel", recurrent_kernel)]
    if bias is not None:
        named.append(("bias", bias))
    if h0 is not None:
        named.append(("h0", h0))
    if cell == "lstm" and c0 is not None:
        named.append(("c0", c0))
    arrs = {name: _real_array(name, value) for name, value in named}

    mask_arr = None
    if mask is not None:
        mask_arr = np.asarray(mask)
        if mask_arr.dtype != np.bool_ and mask_arr.dtype.kind not in _REAL_KINDS:
            raise TypeError(
                f"mask must be a boolean or numeric array; got dtype {mask_arr.dtype}"
            )

    # 2. ndim, with the expected layout spelled out.
    if gru_two_biases:
        bias_ndim, bias_layout = 2, "(2, 3*units)"
    else:
        bias_ndim, bias_layout = 1, f"({g}*units,)"
    layouts = {
        "x": (3, "(batch, time, features)"),
        "kernel": (2, f"(features, {g}*units)"),
        "recurrent_kernel": (2, f"(units, {g}*units)"),
        "bias": (bias_ndim, bias_layout),
        "h0": (2, "(batch, units)"),
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

    # 4. shapes; H comes from recurrent_kernel.
    b, t, i = xa.shape
    h = ra.shape[0]
    _check_shape("recurrent_kernel", ra, (h, g * h))
    _check_shape("kernel", ka, (i, g * h))
    if "bias" in arrs:
        _check_shape("bias", arrs["bias"], (2, 3 * h) if gru_two_biases else (g * h,))
    for name in ("h0", "c0"):
        if name in arrs:
            _check_shape(name, arrs[name], (b, h))
    if mask_arr is not None:
        _check_shape("mask", mask_arr, (b, t))

    # 5. SimpleRNN activation.
    if cell == "simple_rnn":
        check_activation(activation)

    dtype = result_dtype(*arrs.values())
    xs = _convert(xa, dtype)
    keep = None
    if mask_arr is not None:
        keep = mask_arr != 0  # (B, T) bool; NaN counts as nonzero = keep
    if go_backwards:
        # Keras: the sequence AND its mask are consumed from t = T-1 down to 0.
        xs = np.ascontiguousarray(xs[:, ::-1])
        if keep is not None:
            keep = np.ascontiguousarray(keep[:, ::-1])

    zeros_state = np.zeros((b, h), dtype=dtype)
    return ForwardArgs(
        x=xs,
        kernel=_convert(ka, dtype),
        recurrent_kernel=_convert(ra, dtype),
        bias=_convert(arrs["bias"], dtype) if "bias" in arrs else None,
        h0=_convert(arrs["h0"], dtype) if "h0" in arrs else zeros_state,
        c0=(_convert(arrs["c0"], dtype) if "c0" in arrs else zeros_state.copy())
        if cell == "lstm"
        else None,
        keep=keep,
        dtype=dtype,
        go_backwards=bool(go_backwards),
    )


def check_activation(activation: Any) -> str:
    """Normalise a SimpleRNN activation; None means "linear"."""
    if activation is None:
        return "linear"
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return activation
    raise ValueError(
        f"activation must be one of 'tanh', 'relu', 'linear' or None; got {activation!r}"
    )


def check_cache(cache: Any, cache_type: type, cell: str) -> None:
    """Reject anything that is not a cache of ``cache_type`` (check 7)."""
    if not isinstance(cache, cache_type):
        raise TypeError(
            f"cache must be the cache returned by {cell}_forward(..., training=True); "
            f"got {type(cache).__name__}"
        )


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
            out.append(_convert(arr, dtype))
    return out
