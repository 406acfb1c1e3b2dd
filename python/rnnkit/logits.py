"""Logits carried by sigmoid / softmax outputs, as Keras 3's TensorFlow backend does.

Keras's TensorFlow ``sigmoid`` and ``softmax`` attach their input to the output tensor
(``output._keras_logits``), and ``binary_crossentropy`` / ``categorical_crossentropy`` /
``sparse_categorical_crossentropy`` given such an output compute the loss from those logits
with the exact fused formulas (``from_logits`` is then ignored). So a confidently wrong
``Dense(1, activation="sigmoid")`` costs its full logit (e.g. 30) instead of the clipped
``-log(1e-7)`` ~ 16.1, and its gradient never vanishes.

rnnkit does the same without a tensor type: :func:`attach` records, for an activation output
array, the pre-activation array it came from; :func:`logits_of` finds it again only for that
very array object (a reshape, slice, copy or any arithmetic makes a new array and drops it --
exactly when Keras's attribute is lost, e.g. after ``TimeDistributed``'s transpose). The
record lives as long as the output array does (a weak reference), so keeping predictions
keeps their logits too.

A loss that used the logits returns :class:`LogitsGradient` as ``dL/dy_pred``: the gradient
w.r.t. the *logits*. :meth:`rnnkit.activations.Activation.backward` given it for its own output
returns it as ``dL/dz`` without the activation's derivative (which is what keeps the gradient
alive when the sigmoid saturates). Layers that pass their input through unchanged (a linear
``Activation``, ``Dropout`` with nothing dropped) hand it on untouched.
"""
from __future__ import annotations

import weakref
from typing import Any, Dict, Optional, Tuple

import numpy as np

__all__ = ["attach", "logits_of", "LogitsGradient"]

# id(output) -> (weak reference to the output, its logits).
_REGISTRY: Dict[int, Tuple["weakref.ref[np.ndarray]", np.ndarray]] = {}


def _forget(key: int, ref: "weakref.ref[np.ndarray]") -> None:
    entry = _REGISTRY.get(key)
    if entry is not None and entry[0] is ref:
        del _REGISTRY[key]


def attach(output: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Remember that ``output`` (a sigmoid / softmax result) came from ``logits``; returns
    ``output``. ``output`` must be a new array (not a view of ``logits``)."""
    if isinstance(output, np.ndarray) and output is not logits:
        key = id(output)
        ref = weakref.ref(output, lambda r, k=key: _forget(k, r))
        _REGISTRY[key] = (ref, logits)
    return output


def logits_of(output: Any) -> Optional[np.ndarray]:
    """The logits ``output`` was computed from, or None (not an activation output, or a
    different array that happens to reuse a freed one's id)."""
    entry = _REGISTRY.get(id(output))
    if entry is None or entry[0]() is not output:
        return None
    return entry[1]


class LogitsGradient:
    """``dL/dz`` for an output ``y = activation(z)`` whose loss was computed from ``z``.

    ``owner`` is that output array (so the activation can tell it is its own); ``extra`` is
    an ordinary ``dL/dy`` added by other consumers of ``y`` (summed in a graph), which still
    goes through the activation's derivative. Supports ``g * scalar`` (loss weights) and
    ``g + array`` (gradient accumulation) so the training loop can treat it as an array.
    """

    __slots__ = ("dz", "owner", "extra")

    def __init__(self, dz: np.ndarray, owner: np.ndarray, extra: Optional[np.ndarray] = None
                 ) -> None:
        self.dz = dz
        self.owner = owner
        self.extra = extra

    @property
    def dtype(self) -> np.dtype:
        return self.dz.dtype

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.dz.shape

    def __mul__(self, scale: Any) -> "LogitsGradient":
        s = np.asarray(scale)
        if s.ndim:
            raise TypeError("a LogitsGradient can only be scaled by a scalar")
        return LogitsGradient(self.dz * s, self.owner,
                              None if self.extra is None else self.extra * s)

    __rmul__ = __mul__

    def __add__(self, other: Any) -> "LogitsGradient":
        if isinstance(other, LogitsGradient):
            if other.owner is not self.owner:
                raise ValueError("cannot add logits gradients of different outputs")
            extra = (other.extra if self.extra is None else
                     self.extra if other.extra is None else self.extra + other.extra)
            return LogitsGradient(self.dz + other.dz, self.owner, extra)
        other = np.asarray(other)
        return LogitsGradient(self.dz, self.owner,
                              other if self.extra is None else self.extra + other)

    __radd__ = __add__

    def to_pre_activation(self, y: np.ndarray, backward: Any) -> np.ndarray:
        """``dL/dz`` for the activation whose output is ``y`` (``backward(y, dy)`` is its
        ordinary derivative rule, used for :attr:`extra`)."""
        if y is not self.owner:
            raise RuntimeError("a logits gradient reached an activation that did not produce "
                               "the output it belongs to")
        return self.dz if self.extra is None else self.dz + backward(y, self.extra)

    def __repr__(self) -> str:
        return f"LogitsGradient(shape={self.dz.shape}, extra={self.extra is not None})"
