"""The activation table of the reference kernels: each name's forward and derivative.

One entry per name in :data:`rnnkit.cells.ACTIVATIONS` (checked at import). The formulas
follow Keras 3 (``keras/src/activations/activations.py``, ``keras/src/ops/nn.py``):

=====================  ==========================================  ============================
name                   f(x)                                        f'(x)
=====================  ==========================================  ============================
tanh                   tanh(x)                                     1 - y^2
sigmoid                1 / (1 + exp(-x))                           y (1 - y)
hard_sigmoid           relu6(x + 3) / 6 = clip(x/6 + 1/2, 0, 1)    1/6 on (-3, 3), else 0
hard_sigmoid_keras2    clip(0.2 x + 0.5, 0, 1)  (Keras 2)          0.2 on (-2.5, 2.5), else 0
relu                   max(x, 0)                                   1 for x > 0, else 0
relu6                  min(max(x, 0), 6)                           1 on (0, 6), else 0
elu                    x > 0 ? x : expm1(x)          (alpha = 1)   x > 0 ? 1 : y + 1
selu                   s * (x > 0 ? x : a expm1(x))                x > 0 ? s : y + s a
softsign               x / (1 + |x|)                               1 / (1 + |x|)^2
softplus               log1p(exp(-|x|)) + max(x, 0)                sigmoid(x)
linear                 x                                           1
silu                   x sigmoid(x)                                s (1 + x (1 - s)), s = sigmoid(x)
gelu                   x/2 (1 + erf(x / sqrt 2))   (exact)         Phi(x) + x phi(x)
=====================  ==========================================  ============================

with selu's ``s = 1.0507009873554804934193349852946`` and ``a = 1.6732632423543772848170429916717``.
At the kinks the derivative is TensorFlow's: the one-sided value of the flat/zero side for relu
(f'(0) = 0), relu6, hard_sigmoid and hard_sigmoid_keras2 (open intervals), the x > 0 branch
test for elu/selu (f'(0) = 1 for elu, s a for selu).

Each derivative takes the pre-activation ``x`` and the output ``y = f(x)``; tanh and sigmoid use
``y`` only (so a saturated ±inf input gives f' = 0, as in the C++ kernels), silu and gelu need
``x``. Results keep the dtype of ``x`` (float32 or float64); gelu evaluates ``math.erf`` element
by element in float64 (the reference is the oracle: exactness over speed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict

import numpy as np

from ..cells import ACTIVATIONS

__all__ = ["KernelActivation", "TABLE", "get", "sigmoid"]

SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

Array = np.ndarray


@dataclass(frozen=True)
class KernelActivation:
    """An element-wise activation: ``forward(x) -> y`` and ``derivative(x, y) -> dy/dx``."""

    name: str
    forward: Callable[[Array], Array]
    derivative: Callable[[Array, Array], Array]


def sigmoid(z: Array) -> Array:
    """Exact logistic 1 / (1 + exp(-z)) without overflow; keeps the dtype of ``z``."""
    e = np.exp(-np.abs(z))  # in (0, 1]: never overflows
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _indicator(cond: Array, value: float, like: Array) -> Array:
    """``value`` where ``cond``, else 0, in the dtype of ``like`` (a NaN input gives 0, as
    TensorFlow's relu gradient and the existing kernels do)."""
    return np.where(cond, like.dtype.type(value), like.dtype.type(0))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _phi_cdf(x: Array) -> Array:
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2, computed in float64."""
    return 0.5 * (1.0 + _erf(x.astype(np.float64) * _SQRT_HALF))


def _gelu(x: Array) -> Array:
    x64 = x.astype(np.float64)
    return (x64 * _phi_cdf(x)).astype(x.dtype)


def _gelu_grad(x: Array, y: Array) -> Array:
    x64 = x.astype(np.float64)
    return (_phi_cdf(x) + x64 * _INV_SQRT_2PI * np.exp(-0.5 * x64 * x64)).astype(x.dtype)


def _silu_grad(x: Array, y: Array) -> Array:
    s = sigmoid(x)
    return s * (1 + x * (1 - s))


def _elu(x: Array) -> Array:
    return np.where(x > 0, x, np.expm1(x))


def _selu(x: Array) -> Array:
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))


_ENTRIES = (
    KernelActivation("tanh", np.tanh, lambda x, y: 1 - y * y),
    KernelActivation("sigmoid", sigmoid, lambda x, y: y * (1 - y)),
    KernelActivation(
        "hard_sigmoid",
        lambda x: np.clip(x / 6 + 0.5, 0, 1),
        lambda x, y: _indicator((x > -3) & (x < 3), 1 / 6, x),
    ),
    KernelActivation(
        "hard_sigmoid_keras2",
        lambda x: np.clip(0.2 * x + 0.5, 0, 1),
        lambda x, y: _indicator((x > -2.5) & (x < 2.5), 0.2, x),
    ),
    KernelActivation(
        "relu", lambda x: np.maximum(x, 0), lambda x, y: _indicator(x > 0, 1, x)
    ),
    KernelActivation(
        "relu6",
        lambda x: np.minimum(np.maximum(x, 0), 6),
        lambda x, y: _indicator((x > 0) & (x < 6), 1, x),
    ),
    KernelActivation("elu", _elu, lambda x, y: np.where(x > 0, 1, y + 1).astype(x.dtype)),
    KernelActivation(
        "selu", _selu,
        lambda x, y: np.where(x > 0, SELU_SCALE, y + SELU_SCALE * SELU_ALPHA).astype(x.dtype),
    ),
    KernelActivation(
        "softsign", lambda x: x / (1 + np.abs(x)), lambda x, y: 1 / np.square(1 + np.abs(x))
    ),
    KernelActivation(
        "softplus",
        lambda x: np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0),
        lambda x, y: sigmoid(x),
    ),
    KernelActivation("linear", lambda x: x.copy(), lambda x, y: np.ones_like(x)),
    KernelActivation("silu", lambda x: x * sigmoid(x), _silu_grad),
    KernelActivation("gelu", _gelu, _gelu_grad),
)

#: ``{name: KernelActivation}`` in the order of :data:`rnnkit.cells.ACTIVATIONS`.
TABLE: Dict[str, KernelActivation] = {a.name: a for a in _ENTRIES}

if tuple(TABLE) != ACTIVATIONS:  # pragma: no cover - a developer error, caught at import
    raise ImportError(
        f"reference activation table {tuple(TABLE)} != rnnkit.cells.ACTIVATIONS {ACTIVATIONS}"
    )


def get(name: str) -> KernelActivation:
    """The table entry of an already validated (canonical) name."""
    return TABLE[name]
