"""Lion with Keras 3 update formula, defaults and config.

``w -= lr sign(b1 m + (1 - b1) g)``; then ``m = b2 m + (1 - b2) g``.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np

from ._fused import FusedCall
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

    def _coefs(self, f: Any, lr: Any) -> Tuple[Any, ...]:
        """``(b1, 1 - b1, b2, 1 - b2, lr)`` in dtype ``f``."""
        b1, b2 = f(self.beta_1), f(self.beta_2)
        return b1, f(1) - b1, b2, f(1) - b2, lr

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        b1, one_minus_b1, b2, one_minus_b2, _ = self._coefs(w.dtype.type, lr)
        m = self._state["momentum"][i]
        w -= lr * np.sign(m * b1 + g * one_minus_b1)
        m[...] = m * b2 + g * one_minus_b2

    def _fused_update(self, i: int, w: np.ndarray, lr: Any) -> FusedCall:
        return "lion", [self._state["momentum"][i]], self._coefs(w.dtype.type, lr)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
