"""Lion with Keras 3 update formula, defaults and config.

``w -= lr sign(b1 m + (1 - b1) g)``; then ``m = b2 m + (1 - b2) g``.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from .base import LearningRate, Optimizer, _number

__all__ = ["Lion"]


class Lion(Optimizer):
    """Lion (sign momentum). Keras 3 defaults: lr 1e-3, beta_1 0.9, beta_2 0.99."""

    _slots = ("momentum",)

    def __init__(self, learning_rate: LearningRate = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.99, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2 = _number(beta_1, "beta_1"), _number(beta_2, "beta_2")
        if self.beta_1 <= 0 or self.beta_1 > 1:
            raise ValueError("Argument `beta_1` must be in the [0, 1] range. Otherwise, the "
                             f"optimizer degenerates to SignSGD. Received: beta_1={beta_1}.")

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        f = w.dtype.type
        b1, b2 = f(self.beta_1), f(self.beta_2)
        m = self._state["momentum"][i]
        w -= lr * np.sign(m * b1 + g * (f(1) - b1))
        m[...] = m * b2 + g * (f(1) - b2)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
