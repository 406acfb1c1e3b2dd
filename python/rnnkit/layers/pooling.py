"""1-D pooling over time: MaxPooling1D, AveragePooling1D, GlobalAveragePooling1D,
GlobalMaxPooling1D (channels_last, ``(batch, steps, channels)`` inputs), with exact backward
passes."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from .. import config_schema as cs
from .base import Layer, Shape
from .convolutional import (check_data_format, out_length, size1, tap_slice, v_opt_size1,
                            v_size1, window_padding)
from .registry import register

__all__ = ["MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D"]


def _check_3d(layer: Layer, input_shape: Shape) -> None:
    if len(input_shape) != 3:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: expected input shape "
                         f"(batch, steps, channels), got {tuple(input_shape)}")


class _Pooling1D(Layer):
    """Shared part of the windowed poolings (``pool_size``, ``strides``, ``padding``).

    Masks are not propagated (Keras's pooling layers do not support masking).
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "pool_size": v_size1, "strides": v_opt_size1,
                     "padding": cs.v_choice("valid", "same"),
                     "data_format": cs.v_choice("channels_last")}

    def __init__(self, pool_size: Any, strides: Any = None, padding: str = "valid",
                 data_format: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.pool_size = size1(cls, "pool_size", pool_size)
        self.strides = self.pool_size if strides is None else size1(cls, "strides", strides)
        if padding not in ("valid", "same"):
            raise ValueError(f"{cls}: `padding` must be 'valid' or 'same', got {padding!r}")
        self.padding = padding
        check_data_format(cls, data_format)

    def _check_shape(self, input_shape: Shape) -> None:
        _check_3d(self, input_shape)
        steps = input_shape[1]
        if steps is not None and out_length(steps, self.pool_size, self.strides,
                                            self.padding) < 1:
            raise ValueError(f"{type(self).__name__} {self.name!r}: {steps} steps are too few "
                             f"for pool_size={self.pool_size} with padding='valid' "
                             f"(input shape {tuple(input_shape)})")

    def build(self, input_shape: Shape) -> None:
        self._check_shape(input_shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._check_shape(input_shape)
        return (input_shape[0], out_length(input_shape[1], self.pool_size, self.strides,
                                           self.padding), input_shape[2])

    def compute_mask(self, x: Any, mask: Optional[np.ndarray]) -> None:
        return None

    def _windows(self, x: np.ndarray, fill: float) -> Tuple[np.ndarray, int, int]:
        """``(x_pad (B, T_pad, C), pad_left, T_out)`` with ``fill`` in the padding."""
        left, right, t_out = window_padding(x.shape[1], self.pool_size, self.strides,
                                            self.padding)
        if left or right:
            x = np.pad(x, ((0, 0), (left, right), (0, 0)), constant_values=fill)
        return x, left, t_out

    def _prepare(self, x: Any) -> np.ndarray:
        x = self._cast_input(x)
        self._check_shape((None,) + x.shape[1:])
        return x

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "pool_size": [self.pool_size],
                "padding": self.padding, "strides": [self.strides],
                "data_format": "channels_last"}


@register
class MaxPooling1D(_Pooling1D):
    """Maximum over windows of ``pool_size`` steps taken every ``strides`` steps (default
    ``pool_size``); "same" padding gives ``ceil(steps / strides)`` outputs, padded steps
    never win. Input ``(batch, steps, channels)`` -> ``(batch, steps_out, channels)``.

    The gradient goes to the first maximal step of each window (TensorFlow's rule on ties).
    No weights; masks are dropped (as Keras).
    """

    CONFIG_FIELDS = _Pooling1D.CONFIG_FIELDS
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(pool_size, strides, padding, data_format, **kwargs)

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._prepare(x)
        xp, left, t_out = self._windows(x, -np.inf)
        # The first tap holding the window's maximum (strict > keeps the first on ties).
        best = xp[:, tap_slice(0, 1, self.strides, t_out)].copy()          # (B, T_out, C)
        arg = np.zeros(best.shape, np.int32)
        for j in range(1, self.pool_size):
            cand = xp[:, tap_slice(j, 1, self.strides, t_out)]
            better = cand > best
            best = np.where(better, cand, best)
            arg[better] = j
        if need_grad:
            self._cache = (arg, xp.shape, left, x.shape[1])
        return best

    def backward(self, dy: np.ndarray) -> np.ndarray:
        arg, padded_shape, left, steps = self._cache
        dy = np.asarray(dy)
        dxp = np.zeros(padded_shape, dy.dtype)
        for j in range(self.pool_size):
            dxp[:, tap_slice(j, 1, self.strides, arg.shape[1])] += np.where(arg == j, dy, 0)
        self._cache = None
        return dxp[:, left:left + steps]


@register
class AveragePooling1D(_Pooling1D):
    """Mean over windows of ``pool_size`` steps taken every ``strides`` steps (default
    ``pool_size``); with "same" padding each window averages only its real steps (as
    TensorFlow). Input ``(batch, steps, channels)`` -> ``(batch, steps_out, channels)``.
    No weights; masks are dropped (as Keras). ``pool_size`` is required, as in Keras 3.
    """

    CONFIG_FIELDS = _Pooling1D.CONFIG_FIELDS
    CONFIG_REQUIRED: Tuple[str, ...] = ("pool_size",)

    def __init__(self, pool_size: Any, strides: Any = None, padding: str = "valid",
                 data_format: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(pool_size, strides, padding, data_format, **kwargs)

    def _counts(self, steps: int, dtype: np.dtype) -> Tuple[np.ndarray, int, int]:
        """Real (unpadded) steps in each window ``(T_out, 1)``, pad_left, T_out."""
        left, _, t_out = window_padding(steps, self.pool_size, self.strides, self.padding)
        starts = np.arange(t_out) * self.strides - left
        counts = np.minimum(starts + self.pool_size, steps) - np.maximum(starts, 0)
        return counts.astype(dtype)[:, None], left, t_out

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._prepare(x)
        xp, left, t_out = self._windows(x, 0.0)
        counts, _, _ = self._counts(x.shape[1], x.dtype)
        total = xp[:, tap_slice(0, 1, self.strides, t_out)].copy()          # (B, T_out, C)
        for j in range(1, self.pool_size):
            total += xp[:, tap_slice(j, 1, self.strides, t_out)]
        if need_grad:
            self._cache = (xp.shape, left, x.shape[1], counts)
        return total / counts

    def backward(self, dy: np.ndarray) -> np.ndarray:
        padded_shape, left, steps, counts = self._cache
        g = np.asarray(dy) / counts                                          # (B, T_out, C)
        dxp = np.zeros(padded_shape, g.dtype)
        for j in range(self.pool_size):
            dxp[:, tap_slice(j, 1, self.strides, g.shape[1])] += g
        self._cache = None
        return dxp[:, left:left + steps]


class _GlobalPooling1D(Layer):
    CONFIG_FIELDS = {**cs.BASE_FIELDS, "data_format": cs.v_choice("channels_last"),
                     "keepdims": cs.v_bool}
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    def __init__(self, data_format: Optional[str] = None, keepdims: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_data_format(type(self).__name__, data_format)
        if not isinstance(keepdims, (bool, np.bool_)):
            raise ValueError(f"{type(self).__name__}: `keepdims` must be a bool, "
                             f"got {keepdims!r}")
        self.keepdims = bool(keepdims)

    def build(self, input_shape: Shape) -> None:
        _check_3d(self, input_shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _check_3d(self, input_shape)
        return ((input_shape[0], 1, input_shape[2]) if self.keepdims
                else (input_shape[0], input_shape[2]))

    def compute_mask(self, x: Any, mask: Optional[np.ndarray]) -> None:
        return None

    def _prepare(self, x: Any) -> np.ndarray:
        x = self._cast_input(x)
        _check_3d(self, (None,) + x.shape[1:])
        return x

    def _out(self, y: np.ndarray) -> np.ndarray:
        """``(B, 1, C)`` -> the output shape."""
        return y if self.keepdims else y[:, 0]

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "data_format": "channels_last",
                "keepdims": self.keepdims}


@register
class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over the time axis: ``(batch, steps, channels)`` -> ``(batch, channels)`` (or
    ``(batch, 1, channels)`` with ``keepdims``). With a mask, the mean is over the unmasked
    steps only (a row with every step masked gives NaN, as Keras's 0/0). The output carries
    no mask. No weights.
    """

    CONFIG_FIELDS = _GlobalPooling1D.CONFIG_FIELDS
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    supports_masking = True

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._prepare(x)
        if mask is None:
            w = np.full((x.shape[0], x.shape[1], 1), 1.0 / x.shape[1], x.dtype)
        else:
            m = np.asarray(mask, bool).reshape(x.shape[0], x.shape[1], 1).astype(x.dtype)
            with np.errstate(invalid="ignore", divide="ignore"):
                w = m / m.sum(axis=1, keepdims=True)                 # (B, T, 1) weights
        if need_grad:
            self._cache = w
        return self._out((x * w).sum(axis=1, keepdims=True))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        w, self._cache = self._cache, None
        dy = np.asarray(dy).reshape(w.shape[0], 1, -1)                 # (B, 1, C)
        return dy * w


@register
class GlobalMaxPooling1D(_GlobalPooling1D):
    """Maximum over the time axis: ``(batch, steps, channels)`` -> ``(batch, channels)`` (or
    ``(batch, 1, channels)`` with ``keepdims``). As in Keras 3 the mask is ignored (masked
    steps take part) and dropped. The gradient is shared equally by tied maxima
    (TensorFlow's ``reduce_max`` rule). No weights.
    """

    CONFIG_FIELDS = _GlobalPooling1D.CONFIG_FIELDS
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._prepare(x)
        y = x.max(axis=1, keepdims=True)                                     # (B, 1, C)
        if need_grad:
            hit = (x == y).astype(x.dtype)
            self._cache = hit / hit.sum(axis=1, keepdims=True)
        return self._out(y)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        share, self._cache = self._cache, None
        return np.asarray(dy).reshape(share.shape[0], 1, -1) * share
