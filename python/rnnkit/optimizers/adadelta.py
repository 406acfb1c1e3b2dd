"""Adadelta with Keras 3 update formula, defaults and config.

``acc_g = rho acc_g + (1 - rho) g^2``; ``delta = -sqrt(acc_dx + eps) g / sqrt(acc_g + eps)``;
``acc_dx = rho acc_dx + (1 - rho) delta^2``; ``w += lr delta`` (``rho``, ``1 - rho`` and
``eps`` are Python floats in Keras, each rounded once to the variable's dtype).
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from .base import LearningRate, Optimizer, _number

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta. Keras 3 defaults: lr 1e-3, rho 0.95, eps 1e-7."""

    _slots = ("accumulated_grad", "accumulated_delta_var")

    def __init__(self, learning_rate: LearningRate = 0.001, rho: float = 0.95,
                 epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = _number(rho, "rho"), _number(epsilon, "epsilon")

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        f = w.dtype.type
        rho, one_minus_rho, eps = f(self.rho), f(1 - self.rho), f(self.epsilon)
        acc_g = self._state["accumulated_grad"][i]
        acc_dx = self._state["accumulated_delta_var"][i]
        acc_g[...] = rho * acc_g + one_minus_rho * np.square(g)
        delta = -(np.sqrt(acc_dx + eps) * g / np.sqrt(acc_g + eps))
        acc_dx[...] = rho * acc_dx + one_minus_rho * np.square(delta)
        w += lr * delta

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
