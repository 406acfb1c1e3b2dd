"""FTRL-proximal with Keras 3 update formula, defaults and config.

``l2 = l2_regularization_strength + beta / (2 lr)``; ``g' = g + 2 l2_shrinkage w``;
``n' = n + g^2``; ``z += g' - (n'^(-p) - n^(-p)) / lr * w`` (``p = learning_rate_power``);
``w = (clip(z, -l1, l1) - z) / (n'^(-p) / lr + 2 l2)``; ``n = n'`` (n starts at
``initial_accumulator_value``).
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from .base import LearningRate, Optimizer, _number

__all__ = ["Ftrl"]


class Ftrl(Optimizer):
    """FTRL. Keras 3 defaults: lr 1e-3, learning_rate_power -0.5, initial accumulator 0.1,
    l1/l2/l2-shrinkage strengths 0, beta 0."""

    _slots = ("accumulator", "linear")

    def __init__(self, learning_rate: LearningRate = 0.001, learning_rate_power: float = -0.5,
                 initial_accumulator_value: float = 0.1, l1_regularization_strength: float = 0.0,
                 l2_regularization_strength: float = 0.0,
                 l2_shrinkage_regularization_strength: float = 0.0, beta: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        checks = [("initial_accumulator_value", initial_accumulator_value, "positive or zero"),
                  ("learning_rate_power", learning_rate_power, "negative or zero"),
                  ("l1_regularization_strength", l1_regularization_strength, "positive or zero"),
                  ("l2_regularization_strength", l2_regularization_strength, "positive or zero"),
                  ("l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength,
                   "positive or zero")]
        for arg, value, sign in checks:
            v = _number(value, arg)
            if (v > 0.0) if sign == "negative or zero" else (v < 0.0):
                raise ValueError(f"`{arg}` needs to be {sign}. Received: {arg}={value}.")
        self.learning_rate_power = float(learning_rate_power)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.l1_regularization_strength = float(l1_regularization_strength)
        self.l2_regularization_strength = float(l2_regularization_strength)
        self.l2_shrinkage_regularization_strength = float(l2_shrinkage_regularization_strength)
        self.beta = _number(beta, "beta")

    def _init_slot(self, name: str, w: np.ndarray) -> np.ndarray:
        if name == "accumulator":
            return np.full_like(w, self.initial_accumulator_value)
        return np.zeros_like(w)

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        f = w.dtype.type
        acc, lin = self._state["accumulator"][i], self._state["linear"][i]
        p = f(-self.learning_rate_power)
        l2 = f(self.l2_regularization_strength) + f(self.beta) / (f(2) * lr)
        g_use = g + f(2 * self.l2_shrinkage_regularization_strength) * w
        new_acc = acc + np.square(g)
        lin += g_use - (np.power(new_acc, p) - np.power(acc, p)) / lr * w
        quadratic = np.power(new_acc, p) / lr + f(2) * l2
        l1 = f(self.l1_regularization_strength)
        w[...] = (np.clip(lin, -l1, l1) - lin) / quadratic
        acc[...] = new_acc

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength":
                    self.l2_shrinkage_regularization_strength,
                "beta": self.beta}
