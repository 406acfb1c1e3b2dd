"""Weight initializers with Keras 3 formulas and names.

Every initializer is called as ``init(shape, dtype)`` and returns a NumPy array. Random ones
draw from ``seed`` when given (reproducible), else from :func:`rnnkit.backend.rng`.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from . import backend

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomUniform", "RandomNormal",
           "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "Orthogonal",
           "get", "serialize"]


def _fans(shape: Sequence[int]) -> Tuple[float, float]:
    """Keras's fan computation: (fan_in, fan_out) for a kernel of ``shape``."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = float(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: subclasses implement ``__call__(shape, dtype)`` and ``get_config()``."""

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> Dict[str, Any]:
        """Constructor arguments, JSON-serialisable."""
        return {}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Initializer":
        """Rebuild from :meth:`get_config`."""
        return cls(**config)


class _Seeded(Initializer):
    def __init__(self, seed: Optional[int] = None) -> None:
        self.seed = seed
        self._gen = backend.rng(seed) if seed is not None else None

    def _rng(self) -> np.random.Generator:
        return self._gen if self._gen is not None else backend.rng()


class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> np.ndarray:
        return np.zeros(tuple(shape), dtype or backend.floatx())


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> np.ndarray:
        return np.ones(tuple(shape), dtype or backend.floatx())


class Constant(Initializer):
    """Every element equals ``value`` (a number), or ``value`` is an array broadcast to the
    shape (as Keras 3, e.g. a pretrained embedding matrix; such a one has no config)."""

    def __init__(self, value: Any = 0.0) -> None:
        if np.ndim(value) > 0:
            self.value = np.array(value)
            if not np.issubdtype(self.value.dtype, np.number):
                raise ValueError(f"Constant: `value` must be a number or a numeric array, "
                                 f"got {self.value.dtype}")
        else:
            self.value = float(value)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> np.ndarray:
        if isinstance(self.value, np.ndarray):
            try:
                return np.broadcast_to(self.value, tuple(shape)).astype(dtype or backend.floatx())
            except ValueError:
                raise ValueError(f"Constant: a value of shape {self.value.shape} does not fit "
                                 f"a weight of shape {tuple(shape)}") from None
        return np.full(tuple(shape), self.value, dtype or backend.floatx())

    def get_config(self) -> Dict[str, Any]:
        return {"value": self.value}


class RandomUniform(_Seeded):
    """Uniform on ``[minval, maxval)`` (Keras default ±0.05; Embedding's ``"uniform"``)."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: Optional[int] = None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> np.ndarray:
        return self._rng().uniform(self.minval, self.maxval, tuple(shape)).astype(
            dtype or backend.floatx())

    def get_config(self) -> Dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(_Seeded):
    """Normal with ``mean`` and ``stddev`` (Keras default 0, 0.05)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: Optional[int] = None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> np.ndarray:
        return self._rng().normal(self.mean, self.stddev, tuple(shape)).astype(
            dtype or backend.floatx())

    def get_config(self) -> Dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class _VarianceScaling(_Seeded):
    """Keras VarianceScaling: scale / fan, uniform with limit sqrt(3*var) or truncated normal."""

    scale = 1.0
    mode = "fan_avg"
    distribution = "uniform"

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> np.ndarray:
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, fan)
        shape = tuple(shape)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * var)
            out = self._rng().uniform(-limit, limit, shape)
        else:
            # Truncated normal at 2 stddev; 0.8796... is the stddev of that truncation.
            std = math.sqrt(var) / 0.87962566103423978
            out = self._rng().normal(0.0, std, shape)
            bad = np.abs(out) > 2 * std
            while bad.any():
                out[bad] = self._rng().normal(0.0, std, int(bad.sum()))
                bad = np.abs(out) > 2 * std
        return out.astype(dtype or backend.floatx())

    def get_config(self) -> Dict[str, Any]:
        return {"seed": self.seed}


class GlorotUniform(_VarianceScaling):
    """Uniform on ±sqrt(6 / (fan_in + fan_out)) (the Keras kernel default)."""


class GlorotNormal(_VarianceScaling):
    """Truncated normal with stddev sqrt(2 / (fan_in + fan_out))."""

    distribution = "normal"


class HeUniform(_VarianceScaling):
    """Uniform on ±sqrt(6 / fan_in)."""

    scale, mode = 2.0, "fan_in"


class HeNormal(_VarianceScaling):
    """Truncated normal with stddev sqrt(2 / fan_in)."""

    scale, mode, distribution = 2.0, "fan_in", "normal"


class Orthogonal(_Seeded):
    """Orthogonal matrix from the QR of a normal matrix (Keras's recurrent default).

    For ``(H, G*H)`` the whole matrix has orthonormal rows, as Keras 3 does.
    """

    def __init__(self, gain: float = 1.0, seed: Optional[int] = None) -> None:
        super().__init__(seed)
        self.gain = float(gain)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> np.ndarray:
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: `shape` needs at least 2 dimensions, got {shape}")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = self._rng().normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))  # make the decomposition unique
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(dtype or backend.floatx())

    def get_config(self) -> Dict[str, Any]:
        return {"gain": self.gain, "seed": self.seed}


_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant,
    "random_uniform": RandomUniform, "uniform": RandomUniform,
    "random_normal": RandomNormal, "normal": RandomNormal,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform, "he_normal": HeNormal, "orthogonal": Orthogonal,
}
_CLASSES = {c.__name__: c for c in set(_BY_NAME.values())}


def get(identifier: Union[str, Initializer, Dict[str, Any], None]) -> Initializer:
    """Resolve a name (``"glorot_uniform"``), a config dict or an Initializer."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(f"Unknown initializer: {identifier!r}; expected one of {sorted(_BY_NAME)}")


def serialize(init: Initializer) -> Dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for configs."""
    return {"class_name": type(init).__name__, "config": init.get_config()}
