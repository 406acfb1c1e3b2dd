"""Conv1D: 1-D convolution over time (channels_last), with its exact backward pass.

The forward pass is im2col + one matrix product: a strided view of the padded input is
copied to ``(B*T_out, k*C)`` rows and multiplied by the kernel reshaped to ``(k*C, F)``. The
backward pass gets ``dW`` from one product with the same rows and ``dx`` by a col2im that adds
each tap's ``(B, T_out, C)`` slab into its strided slice of the padded input (exact, and much
faster than ``np.add.at``).

Measured on 2 cores (B=32, T=100, in=64, filters=64, k=5, median of 30 calls):
im2col fwd 0.9 ms / bwd 2.0 ms (float32), 2.2 / 4.7 ms (float64); a loop over the k taps
(one ``(B, T_out, C) @ (C, F)`` product per tap, summed) fwd 1.3 / bwd 3.3 ms (float32),
2.7 / 6.2 ms (float64). The im2col path is kept.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .. import activations, initializers
from ..logits import LogitsGradient
from .. import config_schema as cs
from .base import Layer, Shape
from .registry import register

__all__ = ["Conv1D"]

def v_size1(v: Any, w: str) -> None:
    """Config checker: a positive int, or a list holding exactly one (Keras writes ``[3]``)."""
    if isinstance(v, list) and len(v) == 1:
        v = v[0]
    if not cs.is_int(v) or not 0 < v <= cs.MAX_DIM:
        cs.fail(w, f"expected an int in [1, {cs.MAX_DIM}] or a list of one, got {cs.short(v)}")


def v_opt_size1(v: Any, w: str) -> None:
    """Like :func:`v_size1`, or null."""
    if v is not None:
        v_size1(v, w)


def size1(layer: str, arg: str, value: Any) -> int:
    """``value`` as a positive int: an int or a 1-element tuple/list (Keras's 1-D tuples)."""
    v = value
    if isinstance(v, (tuple, list)) and len(v) == 1:
        v = v[0]
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{layer}: `{arg}` must be a positive int (or a tuple of one), "
                         f"got {value!r}")
    return int(v)


def pop_unsupported(layer: str, kwargs: Dict[str, Any], names: Sequence[str]) -> None:
    """Accept Keras's regularizer/constraint arguments only when they are None."""
    for name in names:
        if kwargs.pop(name, None) is not None:
            raise ValueError(f"{layer}: `{name}` is not supported by rnnkit")


def check_data_format(layer: str, data_format: Any) -> None:
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{layer}: only data_format='channels_last' is supported, "
                         f"got {data_format!r}")


def window_padding(length: int, window: int, stride: int, padding: str) -> Tuple[int, int, int]:
    """``(pad_left, pad_right, out_length)`` for a window of extent ``window`` (dilated
    kernel or pool) sliding with ``stride`` over ``length`` steps, as TensorFlow pads:
    "same" gives ``ceil(length / stride)`` outputs with ``pad_left = total // 2``; "causal"
    pads ``window - 1`` on the left only."""
    if padding == "same":
        out = -(-length // stride)
        total = max((out - 1) * stride + window - length, 0)
        return total // 2, total - total // 2, out
    left = window - 1 if padding == "causal" else 0
    out = (length + left - window) // stride + 1
    return left, 0, max(out, 0)


def out_length(length: Optional[int], window: int, stride: int, padding: str) -> Optional[int]:
    """Output length (``None`` when the input length is unknown)."""
    return None if length is None else window_padding(length, window, stride, padding)[2]


def tap_slice(j: int, step: int, stride: int, t_out: int) -> slice:
    """The slice of the padded time axis that window tap ``j`` reads for every output."""
    start = j * step
    return slice(start, start + stride * (t_out - 1) + 1, stride)


@register
class Conv1D(Layer):
    """1-D convolution over the time axis of ``(batch, steps, channels)`` inputs.

    ``y[b, t, f] = activation(bias[f] + sum_{j, c} x_pad[b, t*strides + j*dilation_rate, c]
    * kernel[j, c, f])`` where ``x_pad`` is the input padded per ``padding``: "valid" (none),
    "same" (output length ``ceil(steps / strides)``, TensorFlow's split with the smaller half
    on the left) or "causal" (``(kernel_size - 1) * dilation_rate`` zeros on the left).

    Weights (Keras order): ``kernel (kernel_size, channels, filters)``, ``bias (filters,)``.
    Output: ``(batch, steps_out, filters)``. Masks are not propagated (as Keras, whose Conv1D
    does not support masking: the mask is dropped).
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "filters": cs.v_dim, "kernel_size": v_size1,
                     "strides": v_size1, "padding": cs.v_choice("valid", "same", "causal"),
                     "data_format": cs.v_choice("channels_last"), "dilation_rate": v_size1,
                     "groups": cs.v_choice(1), "activation": cs.v_activation,
                     "use_bias": cs.v_bool, "kernel_initializer": cs.v_initializer,
                     "bias_initializer": cs.v_initializer,
                     **cs.weight_option_fields("kernel", "bias")}
    CONFIG_REQUIRED: Tuple[str, ...] = ("filters", "kernel_size")

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: Optional[str] = None, dilation_rate: Any = 1, groups: int = 1,
                 activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 **kwargs: Any) -> None:
        self._weight_options(kwargs, ("kernel", "bias"))
        super().__init__(**kwargs)
        if not isinstance(filters, (int, np.integer)) or isinstance(filters, bool) or filters <= 0:
            raise ValueError(f"Conv1D: `filters` must be a positive int, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = size1("Conv1D", "kernel_size", kernel_size)
        self.strides = size1("Conv1D", "strides", strides)
        self.dilation_rate = size1("Conv1D", "dilation_rate", dilation_rate)
        if padding not in ("valid", "same", "causal"):
            raise ValueError(f"Conv1D: `padding` must be 'valid', 'same' or 'causal', "
                             f"got {padding!r}")
        self.padding = padding
        check_data_format("Conv1D", data_format)
        if groups != 1 or isinstance(groups, bool):
            raise ValueError(f"Conv1D: only groups=1 is supported by rnnkit, got {groups!r}")
        if self.strides > 1 and self.dilation_rate > 1:
            raise ValueError("Conv1D: `strides > 1` is not supported together with "
                             f"`dilation_rate > 1` (got strides={self.strides}, "
                             f"dilation_rate={self.dilation_rate})")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    @property
    def _extent(self) -> int:
        """Span of the dilated kernel in steps."""
        return (self.kernel_size - 1) * self.dilation_rate + 1

    def _check_shape(self, input_shape: Shape) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"Conv1D {self.name!r}: expected input shape (batch, steps, "
                             f"channels) with known channels, got {tuple(input_shape)}")
        steps = input_shape[1]
        if steps is not None and out_length(steps, self._extent, self.strides, self.padding) < 1:
            raise ValueError(f"Conv1D {self.name!r}: {steps} steps are too few for a kernel "
                             f"spanning {self._extent} steps with padding={self.padding!r} "
                             f"(input shape {tuple(input_shape)})")

    def build(self, input_shape: Shape) -> None:
        self._check_shape(input_shape)
        self.kernel = self.add_weight("kernel", (self.kernel_size, input_shape[-1], self.filters),
                                      self.kernel_initializer, **self._weight_kw("kernel"))
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer,
                                     **self._weight_kw("bias")) if self.use_bias else None)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._check_shape(input_shape)
        return (input_shape[0], out_length(input_shape[1], self._extent, self.strides,
                                           self.padding), self.filters)

    def compute_mask(self, x: Any, mask: Optional[np.ndarray]) -> None:
        return None

    def _pad(self, x: np.ndarray) -> Tuple[np.ndarray, int, int]:
        """Padded input ``(B, T_pad, C)``, the left padding and the output length."""
        left, right, t_out = window_padding(x.shape[1], self._extent, self.strides, self.padding)
        if left or right:
            x = np.pad(x, ((0, 0), (left, right), (0, 0)))
        return x, left, t_out

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._cast_input(x)
        self._check_shape((None,) + x.shape[1:])
        if x.shape[-1] != self.kernel.shape[1]:
            raise ValueError(f"Conv1D {self.name!r}: input has {x.shape[-1]} channels, expected "
                             f"{self.kernel.shape[1]} (input shape {x.shape})")
        xp, left, t_out = self._pad(x)                           # (B, T_pad, C)
        w = self.kernel.value                                    # (k, C, F)
        z = self._im2col(xp, t_out) @ w.reshape(-1, self.filters)   # (B*T_out, F)
        z = z.reshape(x.shape[0], t_out, self.filters)
        if self.bias is not None:
            z += self.bias.value
        y = self.activation(z)                                   # (B, T_out, F)
        if need_grad:
            self._cache = (xp, left, x.shape[1], y, z if self.activation.uses_input else None)
        return y

    def _im2col(self, xp: np.ndarray, t_out: int) -> np.ndarray:
        """``(B*T_out, k*C)``: row ``(b, t)`` holds the ``k`` input rows tap ``t`` reads."""
        b, _, c = xp.shape
        sb, st, sc = xp.strides
        view = np.lib.stride_tricks.as_strided(
            xp, (b, t_out, self.kernel_size, c),
            (sb, st * self.strides, st * self.dilation_rate, sc), writeable=False)
        return view.reshape(b * t_out, self.kernel_size * c)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        xp, left, steps, y, z = self._cache
        # (a LogitsGradient -- the loss used our logits -- goes to the activation as is)
        dz = self.activation.backward(y, dy if isinstance(dy, LogitsGradient)
                                      else np.asarray(dy, y.dtype), z)   # (B, T_out, F)
        t_out = dz.shape[1]
        w = self.kernel.value
        dz2 = dz.reshape(-1, self.filters)                        # (B*T_out, F)
        if self.bias is not None:
            self.bias.grad = dz2.sum(axis=0)
        dxp = np.zeros_like(xp)
        self.kernel.grad = (self._im2col(xp, t_out).T @ dz2).reshape(w.shape)   # (k, C, F)
        dcols = (dz2 @ w.reshape(-1, self.filters).T).reshape(
            dz.shape[0], t_out, self.kernel_size, -1)             # (B, T_out, k, C)
        for j in range(self.kernel_size):   # col2im: tap j's rows go back to its slice
            dxp[:, tap_slice(j, self.dilation_rate, self.strides, t_out)] += dcols[:, :, j]
        self._cache = None
        return dxp[:, left:left + steps]

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": [self.kernel_size], "strides": [self.strides],
                "padding": self.padding, "data_format": "channels_last",
                "dilation_rate": [self.dilation_rate], "groups": 1,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                **self._weight_options_config()}
