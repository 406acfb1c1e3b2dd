"""AdamW, Nadam and Adamax with Keras 3 update formulas, defaults and configs.

g = gradient, lr = learning rate, t = iterations + 1; every constant is cast to the
variable's dtype the way Keras's TensorFlow ops do (a Python ``1 - beta_1`` is rounded
once, a tensor ``1 - beta_1`` is computed in float32):

* AdamW: Adam with decoupled ``weight_decay`` (default 0.004, required).
* Nadam: ``u_t = b1 (1 - 0.5 * 0.96^t)``, ``u_{t+1} = b1 (1 - 0.5 * 0.96^(t+1))``;
  ``u_product *= u_t`` once per update (starts at 1); ``m += (g - m)(1 - b1)``;
  ``v += (g^2 - v)(1 - b2)``; ``m_hat = u_{t+1} m / (1 - u_product u_{t+1})
  + (1 - u_t) g / (1 - u_product)``; ``v_hat = v / (1 - b2^t)``;
  ``w -= lr m_hat / (sqrt(v_hat) + eps)``.
* Adamax: ``m += (g - m)(1 - b1)``; ``u = max(b2 u, |g|)``;
  ``w -= lr m / ((1 - b1^t)(u + eps))``.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import numpy as np

from ._fused import FusedCall
from .base import LearningRate, Optimizer, _number
from .classic import Adam

__all__ = ["AdamW", "Nadam", "Adamax"]


class AdamW(Adam):
    """Adam with decoupled weight decay. Keras 3 defaults: lr 1e-3, weight_decay 0.004,
    betas 0.9/0.999, eps 1e-7, amsgrad False."""

    def __init__(self, learning_rate: LearningRate = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, weight_decay=weight_decay, **kwargs)
        if self.weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: "
                             "weight_decay=None")


class Nadam(Optimizer):
    """Adam with Nesterov momentum. Keras 3 defaults: lr 1e-3, betas 0.9/0.999, eps 1e-7."""

    _slots = ("momentum", "velocity")
    _scalar_slots = ("u_product",)

    def __init__(self, learning_rate: LearningRate = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2 = _number(beta_1, "beta_1"), _number(beta_2, "beta_2")
        self.epsilon = _number(epsilon, "epsilon")

    def _init_scalar(self, name: str, variables: Sequence[np.ndarray]) -> np.ndarray:
        return np.ones((), dtype=self._scalar_dtype(variables))

    def _before_update_steps(self) -> None:
        up = self._state["u_product"][0]
        f = up.dtype.type
        t = f(self.iterations + 1)
        up[...] = up * f(self.beta_1) * (f(1) - f(0.5) * np.power(f(0.96), t))

    def _coefs(self, f: Any, lr: Any) -> Tuple[Any, ...]:
        """``(1 - b1, 1 - b2, u_{t+1}, 1 - u_product u_{t+1}, 1 - u_t, 1 - u_product,
        1 - b2^t, lr, eps)`` in dtype ``f``."""
        one = f(1)
        t, t1 = f(self.iterations + 1), f(self.iterations + 2)
        b1, b2, decay = f(self.beta_1), f(self.beta_2), f(0.96)
        u_t = b1 * (one - f(0.5) * np.power(decay, t))
        u_t1 = b1 * (one - f(0.5) * np.power(decay, t1))
        up = f(self._state["u_product"][0])
        up1 = up * u_t1
        return (one - b1, one - b2, u_t1, one - up1, one - u_t, one - up,
                one - np.power(b2, t), lr, f(self.epsilon))

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        c1, c2, u_t1, d1, one_minus_u_t, d0, v_den, _, eps = self._coefs(w.dtype.type, lr)
        m, v = self._state["momentum"][i], self._state["velocity"][i]
        m += (g - m) * c1
        v += (np.square(g) - v) * c2
        m_hat = u_t1 * m / d1 + one_minus_u_t * g / d0
        v_hat = v / v_den
        w -= (m_hat * lr) / (np.sqrt(v_hat) + eps)

    def _fused_update(self, i: int, w: np.ndarray, lr: Any) -> FusedCall:
        slots = [self._state["momentum"][i], self._state["velocity"][i]]
        return "nadam", slots, self._coefs(w.dtype.type, lr)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Adamax(Optimizer):
    """Adam with the infinity norm. Keras 3 defaults: lr 1e-3, betas 0.9/0.999, eps 1e-7."""

    _slots = ("momentum", "norm")

    def __init__(self, learning_rate: LearningRate = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2 = _number(beta_1, "beta_1"), _number(beta_2, "beta_2")
        self.epsilon = _number(epsilon, "epsilon")

    def _coefs(self, f: Any, lr: Any) -> Tuple[Any, ...]:
        """``(1 - b1, b2, eps, lr, 1 - b1^t)`` in dtype ``f`` (``1 - b1``: a Python float
        in Keras, rounded once)."""
        b1_power = np.power(f(self.beta_1), f(self.iterations + 1))
        return f(1 - self.beta_1), f(self.beta_2), f(self.epsilon), lr, f(1) - b1_power

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        one_minus_b1, b2, eps, _, bias = self._coefs(w.dtype.type, lr)
        m, u = self._state["momentum"][i], self._state["norm"][i]
        m += (g - m) * one_minus_b1
        np.maximum(b2 * u, np.abs(g), out=u)
        w -= (lr * m) / (bias * (u + eps))

    def _fused_update(self, i: int, w: np.ndarray, lr: Any) -> FusedCall:
        slots = [self._state["momentum"][i], self._state["norm"][i]]
        return "adamax", slots, self._coefs(w.dtype.type, lr)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}
