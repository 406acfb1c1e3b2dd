"""Training-time noise layers: SpatialDropout1D, GaussianNoise, GaussianDropout.

Each is the identity at inference; in training it draws fresh noise per call (from its own
generator when ``seed`` is given, else from rnnkit's global one, as :class:`Dropout`), and
its backward pass uses the noise that call drew. Masks pass through unchanged.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .. import backend
from .. import config_schema as cs
from .base import Layer, Shape
from .core import Dropout
from .registry import register

__all__ = ["SpatialDropout1D", "GaussianNoise", "GaussianDropout"]


def _fraction(layer: str, arg: str, value: Any) -> float:
    if not isinstance(value, (int, float, np.floating)) or isinstance(value, bool) \
            or not 0 <= value <= 1:
        raise ValueError(f"{layer}: `{arg}` must be a number in [0, 1], got {value!r}")
    return float(value)


@register
class SpatialDropout1D(Dropout):
    """Dropout of whole channels: in training each ``(sample, channel)`` is zeroed for every
    step with probability ``rate`` and the kept ones are scaled by ``1 / (1 - rate)`` (noise
    shape ``(batch, 1, channels)``). Input and output ``(batch, steps, channels)``; no
    weights; masks pass through.
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "rate": cs.v_num, "seed": cs.v_seed}
    CONFIG_REQUIRED: Tuple[str, ...] = ("rate",)

    def __init__(self, rate: float, seed: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(_fraction("SpatialDropout1D", "rate", rate), seed=seed, **kwargs)
        self.noise_shape = (None, 1, None)

    def _check_shape(self, input_shape: Shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(f"SpatialDropout1D {self.name!r}: expected input shape (batch, "
                             f"steps, channels), got {tuple(input_shape)}")

    def build(self, input_shape: Shape) -> None:
        self._check_shape(input_shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._check_shape(input_shape)
        return tuple(input_shape)

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._cast_input(x)
        self._check_shape(x.shape)
        return super().forward(x, mask=mask, training=training, need_grad=need_grad)

    def get_config(self) -> Dict[str, Any]:
        cfg = super().get_config()
        cfg.pop("noise_shape")
        return cfg


class _Noise(Layer):
    """Shared parts: the seeded generator, identity at inference, gradient ``dy * scale``."""

    supports_masking = True

    def __init__(self, seed: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self._rng = backend.rng(seed) if seed is not None else None

    def _generator(self) -> np.random.Generator:
        return self._rng if self._rng is not None else backend.rng()

    def backward(self, dy: np.ndarray) -> np.ndarray:
        scale, self._cache = self._cache, None
        return dy if scale is True else dy * scale


@register
class GaussianNoise(_Noise):
    """Adds zero-mean Gaussian noise of standard deviation ``stddev`` in training (identity
    at inference). Any input shape; no weights; masks pass through. The gradient is the
    identity."""

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "stddev": cs.v_num, "seed": cs.v_seed}
    CONFIG_REQUIRED: Tuple[str, ...] = ("stddev",)

    def __init__(self, stddev: float, seed: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.stddev = _fraction("GaussianNoise", "stddev", stddev)  # Keras allows [0, 1]

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._cast_input(x)
        if training and self.stddev > 0:
            x = x + (self.stddev * self._generator().standard_normal(x.shape)).astype(x.dtype)
        if need_grad:
            self._cache = True                     # d(x + noise)/dx = 1
        return x

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


@register
class GaussianDropout(_Noise):
    """Multiplies by Gaussian noise of mean 1 and variance ``rate / (1 - rate)`` in training
    (identity at inference). Any input shape; no weights; masks pass through. The gradient
    is ``dy * noise`` with the noise drawn in that call. ``rate`` must be below 1 to train.
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "rate": cs.v_num, "seed": cs.v_seed}
    CONFIG_REQUIRED: Tuple[str, ...] = ("rate",)

    def __init__(self, rate: float, seed: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.rate = _fraction("GaussianDropout", "rate", rate)

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._cast_input(x)
        noise: Any = True
        if training and self.rate > 0:
            if self.rate >= 1:
                raise ValueError(f"GaussianDropout {self.name!r}: rate=1 gives noise of "
                                 "infinite variance; use a rate below 1 in training")
            std = math.sqrt(self.rate / (1.0 - self.rate))
            noise = (1.0 + std * self._generator().standard_normal(x.shape)).astype(x.dtype)
            x = x * noise
        if need_grad:
            self._cache = noise
        return x

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
