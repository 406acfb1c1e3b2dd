"""Weight constraints with Keras 3 names, defaults and formulas.

A constraint maps a weight to its projected value; training applies it to every trainable
weight that has one right after each optimizer update (Keras: ``optimizer.apply`` then
``variable.assign(constraint(variable))``). ``norms`` are L2 norms over ``axis`` (kept):

* ``MaxNorm(max_value=2, axis=0)``: ``w * clip(norms, 0, max_value) / (1e-7 + norms)``.
* ``NonNeg()``: ``max(w, 0)``.
* ``UnitNorm(axis=0)``: ``w / (1e-7 + norms)``.
* ``MinMaxNorm(min_value=0.0, max_value=1.0, rate=1.0, axis=0)``:
  ``w * (rate * clip(norms, min_value, max_value) + (1 - rate) * norms) / (1e-7 + norms)``.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm", "get", "serialize",
           "deserialize", "apply_constraints"]

_EPSILON = 1e-7  # keras.config.epsilon()


def _number(value: Any, name: str, cls: str) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(float(value))):
        raise ValueError(f"{cls}: `{name}` must be a finite number, got {value!r}")
    return value


def _axis(axis: Any, cls: str) -> Union[int, Tuple[int, ...]]:
    """An int or a list/tuple of ints (e.g. ``[0, 1]`` for a Conv1D kernel)."""
    if isinstance(axis, (list, tuple)) and axis and all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
        return tuple(int(a) for a in axis)
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        return int(axis)
    raise ValueError(f"{cls}: `axis` must be an int or a list of ints, got {axis!r}")


class Constraint:
    """Base class: ``__call__(w) -> projected w`` and ``get_config()``."""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w

    def get_config(self) -> Dict[str, Any]:
        """Constructor arguments, JSON-serialisable."""
        return {}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Constraint":
        """Rebuild from :meth:`get_config`."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _NormConstraint(Constraint):
    axis: Union[int, Tuple[int, ...]]

    def _norms(self, w: np.ndarray) -> np.ndarray:
        return np.sqrt(np.square(w).sum(axis=self.axis, keepdims=True))

    def _config_axis(self) -> Any:
        return list(self.axis) if isinstance(self.axis, tuple) else self.axis


class MaxNorm(_NormConstraint):
    """Rescale each weight vector (norms over ``axis``) whose norm exceeds ``max_value``."""

    def __init__(self, max_value: float = 2, axis: Any = 0) -> None:
        self.max_value = _number(max_value, "max_value", "MaxNorm")
        self.axis = _axis(axis, "MaxNorm")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w = np.asarray(w)
        norms = self._norms(w)
        desired = np.clip(norms, 0, self.max_value)
        return (w * (desired / (_EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self) -> Dict[str, Any]:
        return {"max_value": self.max_value, "axis": self._config_axis()}


class NonNeg(Constraint):
    """Clip negative weights to 0."""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return np.maximum(np.asarray(w), 0)


class UnitNorm(_NormConstraint):
    """Scale each weight vector (norms over ``axis``) to unit norm."""

    def __init__(self, axis: Any = 0) -> None:
        self.axis = _axis(axis, "UnitNorm")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w = np.asarray(w)
        return (w / (_EPSILON + self._norms(w))).astype(w.dtype, copy=False)

    def get_config(self) -> Dict[str, Any]:
        return {"axis": self._config_axis()}


class MinMaxNorm(_NormConstraint):
    """Move each weight vector's norm into ``[min_value, max_value]`` at ``rate``."""

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0,
                 axis: Any = 0) -> None:
        self.min_value = _number(min_value, "min_value", "MinMaxNorm")
        self.max_value = _number(max_value, "max_value", "MinMaxNorm")
        self.rate = _number(rate, "rate", "MinMaxNorm")
        self.axis = _axis(axis, "MinMaxNorm")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w = np.asarray(w)
        norms = self._norms(w)
        desired = (self.rate * np.clip(norms, self.min_value, self.max_value)
                   + (1 - self.rate) * norms)
        return (w * (desired / (_EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self) -> Dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self._config_axis()}


_CLASSES = {c.__name__: c for c in (Constraint, MaxNorm, NonNeg, UnitNorm, MinMaxNorm)}
_BY_NAME = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm,
            "min_max_norm": MinMaxNorm, **_CLASSES}


def serialize(constraint: Optional[Constraint]) -> Optional[Dict[str, Any]]:
    """``{"class_name": "MaxNorm", "config": {...}}`` (Keras's form), or None."""
    if constraint is None:
        return None
    if not isinstance(constraint, Constraint):
        raise ValueError(f"Could not serialize constraint {constraint!r}")
    return {"class_name": type(constraint).__name__, "config": constraint.get_config()}


def deserialize(config: Dict[str, Any]) -> Constraint:
    """Inverse of :func:`serialize` (known class names only)."""
    if not isinstance(config, dict) or config.get("class_name") not in _CLASSES:
        raise ValueError(f"Could not interpret constraint config {config!r}; known classes: "
                         f"{sorted(_CLASSES)}")
    cfg = config.get("config") or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"constraint config must be a dict, got {cfg!r}")
    return _CLASSES[config["class_name"]].from_config(cfg)


def get(identifier: Any) -> Optional[Constraint]:
    """Resolve None, a name (``"max_norm"``), a config dict, a class or a :class:`Constraint`."""
    if identifier is None:
        return None
    if isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if isinstance(identifier, type) and issubclass(identifier, Constraint):
        return identifier()
    raise ValueError(f"Could not interpret constraint identifier: {identifier!r}; expected "
                     f"None, one of {sorted(k for k in _BY_NAME if k[0].islower())}, a config "
                     "dict or an rnnkit.constraints.Constraint")


def apply_constraints(weights: Sequence[Any]) -> None:
    """Project every weight that has a ``constraint`` (in place), after an optimizer step."""
    for w in weights:
        c = getattr(w, "constraint", None)
        if c is not None:
            w.value[...] = c(w.value)
