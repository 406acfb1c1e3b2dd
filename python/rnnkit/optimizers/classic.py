"""SGD, Adam, RMSprop and Adagrad with Keras 3 update formulas and defaults.

Formulas (g = gradient, lr = learning rate, t = iterations + 1):

* SGD: ``m = momentum*m - lr*g``; ``w += m`` (or ``w += momentum*m - lr*g`` with nesterov);
  without momentum ``w -= lr*g``.
* Adam: ``alpha = lr*sqrt(1-b2^t)/(1-b1^t)``; ``m += (g-m)(1-b1)``; ``v += (g^2-v)(1-b2)``;
  amsgrad: ``vhat = max(vhat, v)``; ``w -= alpha*m / (sqrt(v or vhat) + eps)``.
* RMSprop: ``v = rho*v + (1-rho)g^2``; centered: ``a = rho*a + (1-rho)g``, denominator
  ``v - a^2 + eps`` else ``v + eps``; ``inc = lr*g/sqrt(den)``; momentum:
  ``mom = momentum*mom + inc; w -= mom`` else ``w -= inc``.
* Adagrad: ``acc += g^2`` (acc starts at 0.1); ``w -= lr*g / sqrt(acc + eps)``.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np

from ._fused import FusedCall
from .base import LearningRate, Optimizer

__all__ = ["SGD", "Adam", "RMSprop", "Adagrad"]


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum. Keras 3 default lr 0.01."""

    def __init__(self, learning_rate: LearningRate = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        if not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be a float between [0, 1], got {momentum!r}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self._slots = ("momentum",) if self.momentum != 0 else ()

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        if self.momentum == 0:
            w -= g * lr
            return
        mom = w.dtype.type(self.momentum)
        m = self._state["momentum"][i]
        m[...] = m * mom - g * lr
        if self.nesterov:
            w += m * mom - g * lr
        else:
            w += m

    def _fused_update(self, i: int, w: np.ndarray, lr: Any) -> FusedCall:
        if self.momentum == 0:
            return "sgd", [], (lr,)
        return ("sgd_nesterov" if self.nesterov else "sgd_momentum",
                [self._state["momentum"][i]], (w.dtype.type(self.momentum), lr))

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (optionally AMSGrad). Keras 3 defaults: lr 1e-3, betas 0.9/0.999, eps 1e-7."""

    def __init__(self, learning_rate: LearningRate = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.amsgrad = bool(amsgrad)
        self._slots = ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def _coefs(self, f: Any, lr: Any) -> Tuple[Any, Any, Any, Any]:
        """``(alpha, 1 - b1, 1 - b2, eps)`` in dtype ``f``."""
        t = f(self.iterations + 1)
        b1, b2 = f(self.beta_1), f(self.beta_2)
        alpha = lr * np.sqrt(f(1) - b2 ** t) / (f(1) - b1 ** t)
        # 1 - beta: Python floats in Keras, rounded once
        return alpha, f(1 - self.beta_1), f(1 - self.beta_2), f(self.epsilon)

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        alpha, one_minus_b1, one_minus_b2, eps = self._coefs(w.dtype.type, lr)
        m, v = self._state["momentum"][i], self._state["velocity"][i]
        m += (g - m) * one_minus_b1
        v += (np.square(g) - v) * one_minus_b2
        if self.amsgrad:
            vh = self._state["velocity_hat"][i]
            np.maximum(vh, v, out=vh)
            v = vh
        w -= (m * alpha) / (np.sqrt(v) + eps)

    def _fused_update(self, i: int, w: np.ndarray, lr: Any) -> FusedCall:
        slots = [self._state[s][i] for s in self._slots]  # momentum, velocity[, velocity_hat]
        return ("adam_amsgrad" if self.amsgrad else "adam"), slots, self._coefs(w.dtype.type, lr)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class RMSprop(Optimizer):
    """RMSprop (optional momentum, centered). Keras 3 defaults: lr 1e-3, rho 0.9, eps 1e-7."""

    def __init__(self, learning_rate: LearningRate = 0.001, rho: float = 0.9,
                 momentum: float = 0.0, epsilon: float = 1e-7, centered: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)
        self._slots = (("velocity",) + (("momentum",) if self.momentum > 0 else ())
                       + (("average_gradient",) if self.centered else ()))

    def _coefs(self, f: Any, lr: Any) -> Tuple[Any, ...]:
        """``(rho, 1 - rho, eps, lr[, momentum])`` in dtype ``f`` (``1 - rho``: a Python
        float in Keras, rounded once)."""
        out = (f(self.rho), f(1 - self.rho), f(self.epsilon), lr)
        return out + ((f(self.momentum),) if self.momentum > 0 else ())

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        rho, one_minus_rho, eps, _, *momentum = self._coefs(w.dtype.type, lr)
        v = self._state["velocity"][i]
        v[...] = rho * v + one_minus_rho * np.square(g)
        if self.centered:
            a = self._state["average_gradient"][i]
            a[...] = rho * a + one_minus_rho * g
            den = v - np.square(a) + eps
        else:
            den = v + eps
        inc = (lr * g) / np.sqrt(den)
        if self.momentum > 0:
            mom = self._state["momentum"][i]
            mom[...] = momentum[0] * mom + inc
            w -= mom
        else:
            w -= inc

    def _fused_update(self, i: int, w: np.ndarray, lr: Any) -> FusedCall:
        kind = ("rmsprop" + ("_centered" if self.centered else "")
                + ("_momentum" if self.momentum > 0 else ""))
        slots = [self._state[s][i] for s in self._slots]  # velocity[, momentum][, average]
        return kind, slots, self._coefs(w.dtype.type, lr)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad. Keras 3 defaults: lr 1e-3, initial accumulator 0.1, eps 1e-7."""

    def __init__(self, learning_rate: LearningRate = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)
        self._slots = ("accumulator",)

    def _init_slot(self, name: str, w: np.ndarray) -> np.ndarray:
        return np.full_like(w, self.initial_accumulator_value)

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        acc = self._state["accumulator"][i]
        acc += np.square(g)
        w -= (lr * g) / np.sqrt(acc + w.dtype.type(self.epsilon))

    def _fused_update(self, i: int, w: np.ndarray, lr: Any) -> FusedCall:
        return "adagrad", [self._state["accumulator"][i]], (lr, w.dtype.type(self.epsilon))

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}
