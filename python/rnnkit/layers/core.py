"""Dense, Dropout and Masking: the non-recurrent NumPy layers."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .. import activations, backend, initializers
from .. import config_schema as cs
from .base import Layer, Shape
from .registry import register

__all__ = ["Dense", "Dropout", "Masking"]


@register
class Dense(Layer):
    """``activation(x @ kernel + bias)`` on the last axis of any-rank input (2-D or 3-D).

    Weights: ``kernel (in, units)``, ``bias (units,)``. Masks pass through unchanged.
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "units": cs.v_dim, "activation": cs.v_activation,
                     "use_bias": cs.v_bool, "kernel_initializer": cs.v_initializer,
                     "bias_initializer": cs.v_initializer,
                     **cs.weight_option_fields("kernel", "bias")}
    CONFIG_REQUIRED: Tuple[str, ...] = ("units",)

    supports_masking = True

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 **kwargs: Any) -> None:
        self._weight_options(kwargs, ("kernel", "bias"))
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"Dense: `units` must be a positive int, got {units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"Dense {self.name!r}: input needs a known last axis, got {input_shape}")
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer,
                                      **self._weight_kw("kernel"))
        self.bias = (self.add_weight("bias", (self.units,), self.bias_initializer,
                                     **self._weight_kw("bias")) if self.use_bias else None)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._cast_input(x)
        if x.shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"Dense {self.name!r}: input last axis is {x.shape[-1]}, "
                             f"expected {self.kernel.shape[0]} (input shape {x.shape})")
        z = x @ self.kernel.value  # (..., in) @ (in, units) -> (..., units)
        if self.bias is not None:
            z = z + self.bias.value
        y = self.activation(z)
        if need_grad:  # z only for activations whose derivative needs it (gelu, elu...)
            self._cache = (x, y, z if self.activation.uses_input else None)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x, y, z = self._cache
        dz = self.activation.backward(y, dy, z)
        x2, dz2 = x.reshape(-1, x.shape[-1]), dz.reshape(-1, dz.shape[-1])  # (N, in), (N, units)
        self.kernel.grad = x2.T @ dz2
        if self.bias is not None:
            self.bias.grad = dz2.sum(axis=0)
        self._cache = None
        return dz @ self.kernel.value.T

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                **self._weight_options_config()}


@register
class Dropout(Layer):
    """Inverted dropout: in training, zero a ``rate`` fraction and scale the rest by 1/(1-rate).

    ``noise_shape`` broadcasts the drop pattern (``None`` entries take the input's size).
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "rate": cs.v_num, "noise_shape": cs.v_shape,
                     "seed": cs.v_seed}
    CONFIG_REQUIRED: Tuple[str, ...] = ("rate",)

    supports_masking = True

    def __init__(self, rate: float, noise_shape: Optional[Sequence[Optional[int]]] = None,
                 seed: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError(f"Dropout: `rate` must be in [0, 1], got {rate!r}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._rng = backend.rng(seed) if seed is not None else None

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._cast_input(x)
        keep = None
        if training and self.rate > 0:
            shape = x.shape if self.noise_shape is None else tuple(
                x.shape[i] if s is None else s for i, s in enumerate(self.noise_shape))
            rng = self._rng if self._rng is not None else backend.rng()
            keep = ((rng.random(shape) >= self.rate) / (1.0 - self.rate)).astype(x.dtype) \
                if self.rate < 1 else np.zeros(shape, x.dtype)
            x = x * keep
        if need_grad:
            self._cache = keep
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        keep, self._cache = self._cache, None
        return dy if keep is None else dy * keep

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape),
                "seed": self.seed}


@register
class Masking(Layer):
    """Masks time steps whose features all equal ``mask_value`` (output zeroed there).

    The mask ``(B, T)`` (True = keep) flows to the following layers, as in Keras.
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "mask_value": cs.v_num}
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    supports_masking = True

    def __init__(self, mask_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def _mask(self, x: np.ndarray) -> np.ndarray:
        return np.any(x != self.mask_value, axis=-1)

    def compute_mask(self, x: Any, mask: Optional[np.ndarray] = None) -> np.ndarray:
        return self._mask(np.asarray(x))

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._cast_input(x)
        keep = self._mask(x)[..., None].astype(x.dtype)
        if need_grad:
            self._cache = keep
        return x * keep

    def backward(self, dy: np.ndarray) -> np.ndarray:
        keep, self._cache = self._cache, None
        return dy * keep

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "mask_value": self.mask_value}
