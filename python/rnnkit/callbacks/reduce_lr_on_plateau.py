"""``ReduceLROnPlateau``: multiply the learning rate by ``factor`` when a quantity stalls."""
from __future__ import annotations

import sys
import warnings
from typing import Any, Optional

import numpy as np

from .core import Callback, Logs
from .monitor import check_mode, is_improvement, monitor_mode

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(Callback):
    """Keras 3 rules: after each epoch, log ``learning_rate``; an improvement (by more than
    ``min_delta``) resets the wait; otherwise, outside a cooldown, ``wait`` grows and at
    ``patience`` the rate becomes ``max(lr * factor, min_lr)`` (only while ``lr > min_lr``),
    then ``cooldown`` epochs pass before waiting starts again. Sets
    ``model.optimizer.learning_rate``."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, **kwargs: Any) -> None:
        super().__init__()
        if kwargs:
            raise ValueError(f"ReduceLROnPlateau: unsupported argument(s) {sorted(kwargs)}")
        if not float(factor) < 1.0:
            raise ValueError("ReduceLROnPlateau does not support a factor >= 1.0. "
                             f"Received factor={factor}")
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.verbose, self.cooldown, self.min_lr = verbose, int(cooldown), float(min_lr)
        self.mode = check_mode(type(self).__name__, mode)
        self.min_delta = abs(float(min_delta))
        self.best: Optional[float] = None
        self.wait = 0
        self.cooldown_counter = 0

    def in_cooldown(self) -> bool:
        """Whether the epochs after a reduction are still passing."""
        return self.cooldown_counter > 0

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self._direction = monitor_mode(type(self).__name__, self.monitor, self.mode, self.model)
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        logs = logs if logs is not None else {}
        opt = self.model.optimizer
        logs["learning_rate"] = float(opt.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric {self.monitor!r} "
                          f"which is not available. Available metrics are: {','.join(logs)}.",
                          stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if is_improvement(self._direction, self.min_delta, current, self.best):
            self.best, self.wait = current, 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old = float(opt.learning_rate)
                # Keras compares against min_lr as float32 (the rate lives in a variable).
                if old > np.float32(self.min_lr):
                    new = max(old * self.factor, self.min_lr)
                    opt.learning_rate = new
                    if self.verbose > 0:
                        sys.stdout.write(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing "
                                         f"learning rate to {new}.\n")
                    self.cooldown_counter, self.wait = self.cooldown, 0
