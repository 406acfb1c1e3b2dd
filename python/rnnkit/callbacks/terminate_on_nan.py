"""``TerminateOnNaN``: stop training at the first batch whose loss is NaN or infinite."""
from __future__ import annotations

import sys
from typing import Optional

import numpy as np

from .core import Callback, Logs

__all__ = ["TerminateOnNaN"]


class TerminateOnNaN(Callback):
    """After each training batch: a NaN/Inf ``loss`` prints ``Batch i: Invalid loss,
    terminating training`` and stops training (the epoch ends after this batch), or with
    ``raise_error=True`` raises a RuntimeError at once (Keras 3)."""

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = bool(raise_error)

    def on_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: "
                                   f"{loss}. Terminating training immediately.")
            sys.stdout.write(f"Batch {batch}: Invalid loss, terminating training\n")
            self.model.stop_training = True
