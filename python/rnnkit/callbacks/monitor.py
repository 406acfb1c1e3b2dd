"""Shared rules of the callbacks that watch a logged quantity (Keras 3's ``MonitorCallback``):
the direction (``mode``) and what counts as an improvement."""
from __future__ import annotations

from typing import Any, Optional

__all__ = ["check_mode", "monitor_mode", "is_improvement"]

# Name fragments of metrics that improve upwards / downwards (Keras reads a metric object's
# ``_direction``; rnnkit metrics may declare the same attribute, else the name decides).
_UP = ("acc", "auc", "precision", "recall", "iou", "r2_score", "f1", "fbeta", "cosine_similarity")
_DOWN = ("loss", "error", "mse", "mae", "mape", "msle", "crossentropy", "hinge", "divergence",
         "poisson", "logcosh", "log_cosh")


def check_mode(owner: str, mode: str) -> str:
    """Validate ``mode``. (Keras warns and falls back to "auto"; rnnkit refuses bad values.)"""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: `mode` must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


def monitor_mode(owner: str, monitor: str, mode: str, model: Any = None) -> str:
    """``"min"`` or ``"max"`` for ``monitor``: ``mode`` itself unless it is ``"auto"``; then
    ``loss``/``val_loss`` -> min, a compiled metric's ``_direction`` ("up"/"down") when it has
    one, else the metric name (accuracy/AUC/precision/recall... -> max, errors and
    crossentropies -> min). Unknown names raise a ValueError asking for ``mode``, as Keras."""
    if mode != "auto":
        return mode
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name == "loss":
        return "min"
    for _, metric, mname in (getattr(model, "_metrics", None) or []):
        if mname == name and getattr(metric, "_direction", None) in ("up", "down"):
            return "max" if metric._direction == "up" else "min"
    if any(s in name for s in _UP):
        return "max"
    if any(s in name for s in _DOWN):
        return "min"
    raise ValueError(f"{owner} callback received monitor={monitor!r}, but cannot tell whether "
                     "that quantity should be maximized or minimized. Pass mode='max' or "
                     "mode='min'.")


def is_improvement(direction: str, min_delta: float, value: float,
                   reference: Optional[float]) -> bool:
    """Keras's test: ``value - min_delta > reference`` (max) or ``value + min_delta <
    reference`` (min); anything beats ``None`` (no reference yet)."""
    if reference is None:
        return True
    if direction == "max":
        return float(value) - min_delta > float(reference)
    return float(value) + min_delta < float(reference)
