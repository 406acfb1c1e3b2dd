"""Activation functions with their exact derivatives (Dense, Conv1D and the Activation layer).

Each activation is an :class:`Activation`: ``act(z)`` is the forward, ``act.backward(y, dy, z)``
the gradient w.r.t. the pre-activation ``z`` given the output ``y`` and ``dL/dy``. Those whose
derivative is a function of ``y`` alone have ``uses_input = False`` (layers then keep only
``y``); the others need ``z`` (``uses_input = True``). Formulas and defaults follow Keras 3
(``keras/src/activations/activations.py``, TensorFlow backend); at kinks the derivative is
TensorFlow's (relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha, selu'(0) = s, open
intervals for relu6 and hard_sigmoid).

=================  =============================================  ==============================
name               f(z)                                           f'(z)
=================  =============================================  ==============================
linear             z                                              1
relu               max(z, 0)                                      z > 0
leaky_relu         z > 0 ? z : 0.2 z   (``negative_slope``)       z > 0 ? 1 : 0.2
relu6              min(max(z, 0), 6)                              1 on (0, 6)
sigmoid            1 / (1 + exp(-z))                              y (1 - y)
tanh               tanh(z)                                        1 - y^2
elu                z > 0 ? z : alpha expm1(z)   (``alpha`` 1)     z > 0 ? 1 : alpha exp(z)
selu               s (z > 0 ? z : a expm1(z))                     z >= 0 ? s : s a exp(z)
softplus           log1p(exp(-|z|)) + max(z, 0)                   sigmoid(z)
softsign           z / (1 + |z|)                                  1 / (1 + |z|)^2
silu (swish)       z sigmoid(z)                                   s (1 + z (1 - s))
gelu               z Phi(z)   (``approximate=False``)             Phi(z) + z phi(z)
gelu approximate   z/2 (1 + tanh(c (z + 0.044715 z^3)))           product and chain rule
hard_sigmoid       relu6(z + 3) / 6                               1/6 on (-3, 3)
hard_silu          z hard_sigmoid(z)   (alias hard_swish)         hs(z) + z/6 on (-3, 3)
exponential        exp(z)                                         y
mish               z tanh(softplus(z))                            tanh(sp) + z (1 - tanh(sp)^2) sigmoid(z)
softmax            exp(z) / sum exp(z)   (last axis)              y (dy - <dy, y>)
log_softmax        z - logsumexp(z)      (last axis)              dy - softmax(z) sum(dy)
=================  =============================================  ==============================

``get(name)`` resolves Keras names (``"swish"`` and ``"hard_swish"`` are aliases that
serialise as ``"silu"`` / ``"hard_silu"``, as Keras 3); ``None`` means linear. The keyword
arguments (``alpha``, ``negative_slope``, ``approximate``) are for direct calls
(``activations.gelu(z, approximate=True)``, ``gelu.backward(y, dy, z, approximate=True)``);
layers given a name use the defaults, as Keras's string identifiers do.

``sigmoid`` and ``softmax`` outputs remember their logits (Keras's TensorFlow backend
``_keras_logits``, see :mod:`rnnkit.logits`): crossentropies then compute from the logits,
and their :class:`~rnnkit.logits.LogitsGradient` passes through ``backward`` as ``dL/dz``.
"""
from __future__ import annotations

import math
import pickle
from typing import Any, Callable, Dict, Optional, Union

import numpy as np

from . import logits as logits_mod

__all__ = ["Activation", "get", "serialize", "linear", "relu", "leaky_relu", "relu6", "sigmoid",
           "tanh", "softmax", "log_softmax", "elu", "selu", "softplus", "softsign", "silu",
           "swish", "gelu", "hard_sigmoid", "hard_silu", "hard_swish", "exponential", "mish"]

SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
_GELU_C = math.sqrt(2.0 / math.pi)


class Activation:
    """An element-wise (or, for softmax / log_softmax, last-axis) activation and its exact
    derivative (see the module docstring).

    ``forward(z, **params) -> y``; ``backward(z, y, dy, **params) -> dz`` (``z`` is None when
    ``uses_input`` is False)."""

    def __init__(self, name: str, forward: Callable[..., np.ndarray],
                 backward: Callable[..., np.ndarray], uses_input: bool = False,
                 keeps_logits: bool = False) -> None:
        self.__name__ = name
        self.name = name
        self.uses_input = uses_input
        self._forward = forward
        self._backward = backward
        # sigmoid / softmax: the output remembers its logits (Keras's TF backend
        # ``_keras_logits``), so crossentropies compute from them; see rnnkit.logits.
        self.keeps_logits = keeps_logits

    def __call__(self, z: Any, **params: Any) -> np.ndarray:
        """Apply the activation to ``z``."""
        z = np.asarray(z)
        y = np.asarray(self._forward(z, **params), dtype=z.dtype if z.dtype.kind == "f"
                       else None)
        return logits_mod.attach(y, z) if self.keeps_logits else y

    def backward(self, y: np.ndarray, dy: Any, z: Optional[np.ndarray] = None,
                 **params: Any) -> Any:
        """Gradient w.r.t. the pre-activation, given the output ``y``, ``dL/dy`` and (needed
        when :attr:`uses_input`) the pre-activation ``z``.

        ``dy`` may be a :class:`~rnnkit.logits.LogitsGradient` (the loss was computed from
        the logits of ``y``): it already is ``dL/dz``. ``linear`` is the identity and hands
        any gradient on unchanged."""
        if self.name == "linear":
            return dy
        if isinstance(dy, logits_mod.LogitsGradient):
            return dy.to_pre_activation(
                y, lambda yy, extra: self.backward(yy, extra, z, **params))
        if self.uses_input and z is None:
            raise ValueError(f"activation {self.name!r}: backward needs the pre-activation `z`")
        dz = self._backward(z, y, dy, **params)
        return np.asarray(dz, dtype=np.result_type(y, dy))

    def __repr__(self) -> str:
        return f"<activation {self.name}>"

    def __reduce__(self) -> Any:
        """Pickled by name (the functions are lambdas): unpickling returns the same
        module-level activation. An Activation that is not one of rnnkit's refuses."""
        if _ALL.get(self.name) is self:
            return (get, (self.name,))
        raise pickle.PicklingError(f"cannot pickle activation {self.name!r}: it is not one of "
                                   f"rnnkit's activations {sorted(_ALL)}, and its Python "
                                   "functions cannot be written to rnnkit's format")

    def __deepcopy__(self, memo: Dict[int, Any]) -> "Activation":
        return self  # stateless: a copy is the activation itself


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # Stable for large |z|: exp of a non-positive number only.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _phi_cdf(z: np.ndarray) -> np.ndarray:
    """Phi(z) = (1 + erf(z / sqrt 2)) / 2, in float64 (exact erf, element by element)."""
    return 0.5 * (1.0 + _erf(np.asarray(z, np.float64) / math.sqrt(2.0)))


def _gelu(z: np.ndarray, approximate: bool = False) -> np.ndarray:
    if approximate:
        return 0.5 * z * (1.0 + np.tanh(_GELU_C * (z + 0.044715 * z ** 3)))
    return (np.asarray(z, np.float64) * _phi_cdf(z)).astype(z.dtype)


def _gelu_grad(z: np.ndarray, y: Any, dy: np.ndarray, approximate: bool = False) -> np.ndarray:
    if approximate:
        t = np.tanh(_GELU_C * (z + 0.044715 * z ** 3))
        return dy * (0.5 * (1.0 + t)
                     + 0.5 * z * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * z * z))
    z64 = np.asarray(z, np.float64)
    d = _phi_cdf(z) + z64 * np.exp(-0.5 * z64 * z64) / math.sqrt(2.0 * math.pi)
    return dy * d.astype(z.dtype)


def _hard_sigmoid(z: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(z + 3.0, 0.0), 6.0) / 6.0


def _hs_slope(z: np.ndarray) -> np.ndarray:
    return np.where((z > -3) & (z < 3), 1.0 / 6.0, 0.0).astype(z.dtype)


def _elu(z: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))


def _mish_grad(z: np.ndarray, y: Any, dy: np.ndarray) -> np.ndarray:
    t = np.tanh(_softplus(z))
    return dy * (t + z * (1 - t * t) * _sigmoid(z))


linear = Activation("linear", lambda z: z, lambda z, y, dy: dy)
relu = Activation("relu", lambda z: np.maximum(z, 0), lambda z, y, dy: dy * (y > 0))
leaky_relu = Activation(
    "leaky_relu", lambda z, negative_slope=0.2: np.where(z > 0, z, negative_slope * z),
    lambda z, y, dy, negative_slope=0.2: dy * np.where(z > 0, 1.0, negative_slope),
    uses_input=True)
relu6 = Activation("relu6", lambda z: np.minimum(np.maximum(z, 0), 6),
                   lambda z, y, dy: dy * ((y > 0) & (y < 6)))
sigmoid = Activation("sigmoid", _sigmoid, lambda z, y, dy: dy * y * (1 - y), keeps_logits=True)
tanh = Activation("tanh", np.tanh, lambda z, y, dy: dy * (1 - y * y))
# Softmax Jacobian-vector product on the last axis: y * (dy - <dy, y>).
softmax = Activation("softmax", _softmax,
                     lambda z, y, dy: y * (dy - (dy * y).sum(axis=-1, keepdims=True)),
                     keeps_logits=True)
# log_softmax: dz = dy - softmax(z) * sum(dy), and softmax(z) = exp(y).
log_softmax = Activation("log_softmax", _log_softmax,
                         lambda z, y, dy: dy - np.exp(y) * dy.sum(axis=-1, keepdims=True))
elu = Activation("elu", _elu,
                 lambda z, y, dy, alpha=1.0: dy * np.where(
                     z > 0, 1.0, alpha * np.exp(np.minimum(z, 0))), uses_input=True)
selu = Activation("selu", lambda z: SELU_SCALE * _elu(z, SELU_ALPHA),
                  lambda z, y, dy: dy * np.where(  # TensorFlow's SeluGrad: s at z = 0
                      z >= 0, SELU_SCALE, SELU_SCALE * SELU_ALPHA * np.exp(np.minimum(z, 0))),
                  uses_input=True)
softplus = Activation("softplus", _softplus, lambda z, y, dy: dy * _sigmoid(z), uses_input=True)
softsign = Activation("softsign", lambda z: z / (1 + np.abs(z)),
                      lambda z, y, dy: dy / np.square(1 + np.abs(z)), uses_input=True)
silu = Activation("silu", lambda z: z * _sigmoid(z),
                  lambda z, y, dy: dy * _sigmoid(z) * (1 + z * (1 - _sigmoid(z))),
                  uses_input=True)
swish = silu
gelu = Activation("gelu", _gelu, _gelu_grad, uses_input=True)
hard_sigmoid = Activation("hard_sigmoid", _hard_sigmoid,
                          lambda z, y, dy: dy * _hs_slope(z), uses_input=True)
hard_silu = Activation("hard_silu", lambda z: z * _hard_sigmoid(z),
                       lambda z, y, dy: dy * (_hard_sigmoid(z) + z * _hs_slope(z)),
                       uses_input=True)
hard_swish = hard_silu
exponential = Activation("exponential", np.exp, lambda z, y, dy: dy * y)
mish = Activation("mish", lambda z: z * np.tanh(_softplus(z)), _mish_grad, uses_input=True)

_ALL: Dict[str, Activation] = {a.name: a for a in (
    linear, relu, leaky_relu, relu6, sigmoid, tanh, softmax, log_softmax, elu, selu, softplus,
    softsign, silu, gelu, hard_sigmoid, hard_silu, exponential, mish)}
_ALL.update({"swish": silu, "hard_swish": hard_silu})


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
