"""Activation functions with their backward rules (what Dense needs).

Each activation is an :class:`Activation` with ``forward(z) -> y`` and
``backward(y, dy) -> dz`` written in terms of the output ``y`` (all five only need ``y``),
so layers cache one array. ``get(name)`` resolves Keras names; ``None`` means linear.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Union

import numpy as np

from . import logits as logits_mod

__all__ = ["Activation", "get", "serialize", "linear", "relu", "sigmoid", "tanh", "softmax"]


class Activation:
    """An element-wise (or, for softmax, last-axis) activation and its derivative."""

    def __init__(self, name: str, forward: Callable[[np.ndarray], np.ndarray],
                 backward: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 keeps_logits: bool = False) -> None:
        self.__name__ = name
        self.name = name
        self._forward = forward
        self._backward = backward
        # sigmoid / softmax: the output remembers its logits (Keras's TF backend
        # ``_keras_logits``), so crossentropies compute from them; see rnnkit.logits.
        self.keeps_logits = keeps_logits

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Apply the activation to ``z``."""
        z = np.asarray(z)
        y = self._forward(z)
        return logits_mod.attach(y, z) if self.keeps_logits else y

    def backward(self, y: np.ndarray, dy: Any) -> Any:
        """Gradient w.r.t. the pre-activation, given the output ``y`` and ``dL/dy``.

        ``dy`` may be a :class:`~rnnkit.logits.LogitsGradient` (the loss was computed from
        the logits of ``y``): it already is ``dL/dz``. ``linear`` is the identity and hands
        any gradient on unchanged."""
        if self.name == "linear":
            return dy
        if isinstance(dy, logits_mod.LogitsGradient):
            return dy.to_pre_activation(y, self._backward)
        return self._backward(y, dy)

    def __repr__(self) -> str:
        return f"<activation {self.name}>"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # Stable for large |z|: exp of a non-positive number only.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


linear = Activation("linear", lambda z: z, lambda y, dy: dy)
relu = Activation("relu", lambda z: np.maximum(z, 0), lambda y, dy: dy * (y > 0))
sigmoid = Activation("sigmoid", _sigmoid, lambda y, dy: dy * y * (1 - y), keeps_logits=True)
tanh = Activation("tanh", np.tanh, lambda y, dy: dy * (1 - y * y))
# Softmax Jacobian-vector product on the last axis: y * (dy - <dy, y>).
softmax = Activation("softmax", _softmax,
                     lambda y, dy: y * (dy - (dy * y).sum(axis=-1, keepdims=True)),
                     keeps_logits=True)

_ALL: Dict[str, Activation] = {a.name: a for a in (linear, relu, sigmoid, tanh, softmax)}


def get(identifier: Union[None, str, Activation]) -> Activation:
    """Resolve ``None``/a name/an :class:`Activation`; unknown names raise ValueError."""
    if identifier is None:
        return linear
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str) and identifier in _ALL:
        return _ALL[identifier]
    raise ValueError(f"Unknown activation: {identifier!r}; expected one of {sorted(_ALL)} or None")


def serialize(act: Optional[Activation]) -> str:
    """Name of an activation, for configs."""
    return get(act).name
