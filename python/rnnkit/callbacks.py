"""Training callbacks (Keras 3 semantics) and the progress bar.

``History`` and ``ProgbarLogger`` are added by ``fit`` itself; ``EarlyStopping``,
``ModelCheckpoint`` and ``LearningRateScheduler`` are passed in ``callbacks=[...]``.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "Progbar", "EarlyStopping",
           "ModelCheckpoint", "LearningRateScheduler"]

Logs = Dict[str, float]


class Callback:
    """Base class: override any ``on_*`` hook; ``self.model`` is set by ``fit``."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: Dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        """Attach the model being trained."""
        self.model = model

    def set_params(self, params: Dict[str, Any]) -> None:
        """Receive ``epochs``, ``steps`` and ``verbose``."""
        self.params = params

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        """Called once before the first epoch."""

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        """Called once after the last epoch."""

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
        """Called before each epoch (``epoch`` counts from 0)."""

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        """Called after each epoch with its logs (loss, metrics, val_*)."""

    def on_train_batch_begin(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Called before each training batch."""

    def on_train_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Called after each training batch with the running logs."""


class CallbackList:
    """Dispatches every hook to a list of callbacks."""

    def __init__(self, callbacks: Sequence[Callback], model: Any, params: Dict[str, Any]) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"`callbacks` entries must be Callback instances, got {cb!r}")
            cb.set_model(model)
            cb.set_params(params)

    def __getattr__(self, hook: str) -> Callable[..., None]:
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args: Any) -> None:
            for cb in self.callbacks:
                getattr(cb, hook)(*args)
        return call


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]``, ``history.epoch``."""

    def __init__(self) -> None:
        super().__init__()
        self.history: Dict[str, List[float]] = {}
        self.epoch: List[int] = []

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self


def _fmt_value(v: float, use_abs: bool = True) -> str:
    # Keras's verbose=1 bar tests abs(v) > 1e-3, its verbose=2 line tests v > 1e-3.
    return f"{v:.4f}" if (abs(v) if use_abs else v) > 1e-3 else f"{v:.4e}"


def _fmt_time_per_unit(t: float, unit: str) -> str:
    if t >= 1 or t == 0:
        return f" {t:.0f}s/{unit}"
    if t >= 1e-3:
        return f" {t * 1e3:.0f}ms/{unit}"
    return f" {t * 1e6:.0f}us/{unit}"


class Progbar:
    """Keras 3 progress bar: ``5/5 ━━━━━━━━━━━━━━━━━━━━ 0s 3ms/step - loss: 0.1025``.

    On a terminal the line is redrawn in place (with Keras's colours); otherwise only the
    final line of each bar is written, so logs stay readable. ``verbose=2`` writes the
    one-line form ``5/5 - 0s - 3ms/step - loss: ...``.
    """

    def __init__(self, target: int, width: int = 20, verbose: int = 1, unit_name: str = "step",
                 stream: Any = None) -> None:
        self.target, self.width, self.verbose, self.unit_name = target, width, verbose, unit_name
        self.stream = stream if stream is not None else sys.stdout
        self._dynamic = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start = time.time()
        self._after_first: Optional[float] = None
        self._last_update = 0.0
        self._prev_width = 0

    def _time_per_unit(self, current: int, now: float) -> float:
        if not current:
            return 0.0
        if self._after_first is not None and current > 1:
            t = (now - self._after_first) / (current - 1)
        else:
            t = (now - self._start) / current
        if current == 1:
            self._after_first = now
        return t

    def update(self, current: int, values: Sequence[Any] = (), finalize: Optional[bool] = None) -> None:
        """Show progress ``current``/target with ``values`` = [(name, value), ...]."""
        finalize = current >= self.target if finalize is None else finalize
        now = time.time()
        tpu = self._time_per_unit(current, now)
        # Array results (F1Score(average=None), ...) show their mean, as Keras's Progbar.
        metrics = "".join(f" - {k}: {_fmt_value(float(np.mean(v)), self.verbose != 2)}"
                          for k, v in values)
        digits = int(math.log10(max(self.target, 1))) + 1
        count = f"{current:{digits}d}/{self.target}"
        if self.verbose == 2:
            if finalize:
                self.stream.write(f"{count} - {now - self._start:.0f}s -"
                                  f"{_fmt_time_per_unit(tpu, self.unit_name)}{metrics}\n")
                self.stream.flush()
            return
        if self.verbose != 1 or (not finalize and not self._dynamic):
            return
        if not finalize and now - self._last_update < 0.05:
            return
        done = int(self.width * current / max(self.target, 1))
        if finalize:
            timing = f" {now - self._start:.0f}s"
        else:
            eta = tpu * (self.target - current)
            timing = (f" {int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}"
                      if eta > 3600 else f" {int(eta // 60)}:{int(eta % 60):02d}" if eta > 60
                      else f" {int(eta)}s")
        info = f"{timing}{_fmt_time_per_unit(tpu, self.unit_name)}{metrics}"
        if self._dynamic:
            # Keras's escapes: bold count and time, green done part (omitted when empty),
            # grey rest.
            green = f"\x1b[32m{'━' * done}\x1b[0m" if done > 0 else ""
            bar = (f"\x1b[1m{count}\x1b[0m {green}"
                   f"\x1b[37m{'━' * (self.width - done)}\x1b[0m")
            plain_width = len(count) + 1 + self.width + len(info)
            pad = " " * max(self._prev_width - plain_width, 0)
            info = f" \x1b[1m{timing[1:]}\x1b[0m{info[len(timing):]}"
            self.stream.write(f"\r{bar}{info}{pad}" + ("\n" if finalize else ""))
            self._prev_width = plain_width
        else:
            self.stream.write(f"{count} {'━' * self.width}{info}\n")
        self.stream.flush()
        self._last_update = now


class ProgbarLogger(Callback):
    """Prints ``Epoch i/n`` and a :class:`Progbar` per epoch (added by ``fit`` when verbose)."""

    def __init__(self) -> None:
        super().__init__()
        self.progbar: Optional[Progbar] = None

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
        verbose = self.params.get("verbose", 1)
        if verbose:
            if self.params["epochs"] > 1:  # Keras prints no "Epoch 1/1" header
                sys.stdout.write(f"Epoch {epoch + 1}/{self.params['epochs']}\n")
            self.progbar = Progbar(self.params["steps"], verbose=verbose)

    def on_train_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        if self.progbar is not None and batch + 1 < self.params["steps"]:
            self.progbar.update(batch + 1, list((logs or {}).items()), finalize=False)

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        if self.progbar is not None:
            shown = [(k, v) for k, v in (logs or {}).items() if k != "learning_rate"]
            self.progbar.update(self.params["steps"], shown, finalize=True)


class EarlyStopping(Callback):
    """Stop when ``monitor`` stops improving for ``patience`` epochs (Keras 3 rules).

    ``mode="auto"`` maximises names containing "acc"/"auc", else minimises. With
    ``restore_best_weights`` the best epoch's weights are restored when stopping.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: Optional[float] = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: `mode` must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.baseline, self.restore_best_weights = baseline, bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)
        if mode == "auto":
            mode = "max" if any(s in monitor for s in ("acc", "auc")) else "min"
        self.mode = mode
        self.min_delta = abs(min_delta) if mode == "max" else -abs(min_delta)
        self.stopped_epoch = 0
        self.best_epoch = 0

    def _better(self, value: float, ref: float) -> bool:
        v = value - self.min_delta
        return v > ref if self.mode == "max" else v < ref

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best = -np.inf if self.mode == "max" else np.inf
        self.best_weights: Optional[List[np.ndarray]] = None

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None or epoch < self.start_from_epoch:
            if current is None:
                sys.stderr.write(f"EarlyStopping: metric {self.monitor!r} not in logs "
                                 f"{sorted(logs or {})}\n")
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._better(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._better(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            sys.stdout.write(f"Epoch {self.stopped_epoch + 1}: early stopping\n")


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after each epoch, optionally only when ``monitor`` improves.

    ``filepath`` may contain ``{epoch}`` (1-based) and log keys, e.g. ``"ck-{epoch:02d}.keras"``.
    Writes are atomic (see :mod:`rnnkit.saving`).
    """

    def __init__(self, filepath: str, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", initial_value_threshold: Optional[float] = None) -> None:
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"ModelCheckpoint: `mode` must be 'auto', 'min' or 'max', got {mode!r}")
        self.filepath, self.monitor, self.verbose = str(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = bool(save_best_only), bool(save_weights_only)
        if mode == "auto":
            mode = "max" if any(s in monitor for s in ("acc", "auc")) else "min"
        self.mode = mode
        self.best = (initial_value_threshold if initial_value_threshold is not None
                     else (-np.inf if mode == "max" else np.inf))

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                sys.stderr.write(f"ModelCheckpoint: {self.monitor!r} not in logs; skipping\n")
                return
            better = current > self.best if self.mode == "max" else current < self.best
            if not better:
                return
            if self.verbose:
                sys.stdout.write(f"\nEpoch {epoch + 1}: {self.monitor} improved from "
                                 f"{self.best:.5f} to {current:.5f}, saving model to {path}\n")
            self.best = current
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate each epoch to ``schedule(epoch, lr)``."""

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError("LearningRateScheduler: `schedule` must be callable")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
        opt = self.model.optimizer
        try:
            lr = self.schedule(epoch, float(opt.learning_rate))
        except TypeError:  # Keras also accepts schedule(epoch)
            lr = self.schedule(epoch)
        if not isinstance(lr, (float, int, np.floating, np.integer)):
            raise ValueError(f"The output of the `schedule` function should be a float, got {lr!r}")
        opt.learning_rate = float(lr)
        if self.verbose:
            sys.stdout.write(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate "
                             f"to {float(lr)}.\n")

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)
