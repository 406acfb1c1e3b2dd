"""Adadelta with Keras 3 update formula, defaults and config.

``acc_g = rho acc_g + (1 - rho) g^2``; ``delta = -sqrt(acc_dx + eps) g / sqrt(acc_g + eps)``;
``acc_dx = rho acc_dx + (1 - rho) delta^2``; ``w += lr delta`` (``rho``, ``1 - rho`` and
``eps`` are Python floats in Keras, each rounded once to the variable's dtype).
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np

from ._fused import FusedCall
from .base import LearningRate, Optimizer, _number

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta. Keras 3 defaults: lr 1e-3, rho 0.95, eps 1e-7."""

    _slots = ("accumulated_grad", "accumulated_delta_var")

    def __init__(self, learning_rate: LearningRate = 0.001, rho: float = 0.95,
                 epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = _number(rho, "rho"), _number(epsilon, "epsilon")

    def _coefs(self, f: Any, lr: Any) -> Tuple[Any, ...]:
        """``(rho, 1 - rho, eps, lr)`` in dtype ``f``."""
        return f(self.rho), f(1 - self.rho), f(self.epsilon), lr

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        rho, one_minus_rho, eps, _ = self._coefs(w.dtype.type, lr)
        acc_g = self._state["accumulated_grad"][i]
        acc_dx = self._state["accumulated_delta_var"][i]
        acc_g[...] = rho * acc_g + one_minus_rho * np.square(g)
        delta = -(np.sqrt(acc_dx + eps) * g / np.sqrt(acc_g + eps))
        acc_dx[...] = rho * acc_dx + one_minus_rho * np.square(delta)
        w += lr * delta

    def _fused_update(self, i: int, w: np.ndarray, lr: Any) -> FusedCall:
        slots = [self._state["accumulated_grad"][i], self._state["accumulated_delta_var"][i]]
        return "adadelta", slots, self._coefs(w.dtype.type, lr)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
