"""Training callbacks (Keras 3 semantics) and the progress bar.

``History`` and ``ProgbarLogger`` are added by ``fit`` itself; ``EarlyStopping``,
``ModelCheckpoint`` and ``LearningRateScheduler`` are passed in ``callbacks=[...]``.
"""
from __future__ import annotations

import io
import pickle
import sys
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..utils.progbar import Progbar

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "Progbar", "EarlyStopping",
           "ModelCheckpoint", "LearningRateScheduler"]

Logs = Dict[str, float]


class Callback:
    """Base class: override any ``on_*`` hook; ``self.model`` is set by ``fit``."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: Dict[str, Any] = {}

    def __getstate__(self) -> Dict[str, Any]:
        """Pickling: the attributes, unless one holds an open file or writer (a
        :class:`CSVLogger` or :class:`TensorBoard` mid-training): PicklingError naming it."""
        for key, value in self.__dict__.items():
            items = list(value.values()) if isinstance(value, dict) else [value]
            for v in items:
                f = getattr(v, "_f", v)
                if isinstance(f, io.IOBase) and not f.closed:
                    raise pickle.PicklingError(
                        f"cannot pickle callback {type(self).__name__}: its attribute {key!r} "
                        f"holds an open file ({getattr(f, 'name', f)!r}); pickle it before "
                        "training starts or after it ends")
        # a file closed when training ended is left behind as None (it is reopened by the
        # next on_train_begin)
        return {k: (None if isinstance(v, io.IOBase) else v) for k, v in self.__dict__.items()}

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
        """Called before each training batch (by default calls :meth:`on_batch_begin`)."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Called after each training batch with the running logs (by default calls
        :meth:`on_batch_end`, as Keras)."""
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Keras's older name for :meth:`on_train_batch_begin`."""

    def on_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Keras's older name for :meth:`on_train_batch_end`."""

    # Hooks of evaluate / predict, declared so subclasses may override them (Keras names).
    def on_test_begin(self, logs: Optional[Logs] = None) -> None:
        """Called before evaluation."""

    def on_test_end(self, logs: Optional[Logs] = None) -> None:
        """Called after evaluation."""

    def on_test_batch_begin(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Called before each evaluation batch."""

    def on_test_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Called after each evaluation batch."""

    def on_predict_begin(self, logs: Optional[Logs] = None) -> None:
        """Called before prediction."""

    def on_predict_end(self, logs: Optional[Logs] = None) -> None:
        """Called after prediction."""

    def on_predict_batch_begin(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Called before each prediction batch."""

    def on_predict_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Called after each prediction batch."""


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


class ProgbarLogger(Callback):
    """Prints ``Epoch i/n`` and a :class:`Progbar` per epoch (added by ``fit`` when verbose)."""

    def __init__(self) -> None:
        super().__init__()
        self.progbar: Optional[Progbar] = None

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
        verbose = self.params.get("verbose", 1)
        verbose = 1 if verbose == "auto" else verbose  # Keras 3: "auto" is always 1
        if verbose:
            if self.params["epochs"] > 1:  # Keras prints no "Epoch 1/1" header
                sys.stdout.write(f"Epoch {epoch + 1}/{self.params['epochs']}\n")
            # A generator without steps_per_epoch has no known length: the bar gets its
            # target (the batches seen) at the end of the epoch.
            self.progbar = Progbar(self.params["steps"] or 0, verbose=verbose)
        self._seen = 0

    def on_train_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        self._seen = batch + 1
        steps = self.params["steps"]
        if self.progbar is not None and steps and batch + 1 < steps:
            self.progbar.update(batch + 1, list((logs or {}).items()), finalize=False)

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        if self.progbar is not None:
            # Every log, learning_rate included: fit runs this logger after the user's
            # callbacks, so a rate set by ReduceLROnPlateau / LearningRateScheduler shows as
            # the last column, as in Keras.
            steps = self.params["steps"] or self._seen
            self.progbar.target = steps
            self.progbar.update(steps, list((logs or {}).items()), finalize=True)


class EarlyStopping(Callback):
    """Stop when ``monitor`` stops improving for ``patience`` epochs (Keras 3 rules).

    An epoch improves when ``value - min_delta`` beats the best so far (``+ min_delta`` in
    ``"max"`` mode); ``wait`` counts epochs since the last improvement that also beat
    ``baseline`` (when given), and training stops once ``wait >= patience`` (never after the
    first epoch). Epochs before ``start_from_epoch`` are ignored. ``mode="auto"`` infers the
    direction from the name (see :func:`rnnkit.callbacks.monitor.monitor_mode`). With
    ``restore_best_weights`` the best epoch's weights are put back when training ends --
    stopped early or not (Keras 3).
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: Optional[float] = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__()
        from .monitor import check_mode
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.baseline, self.restore_best_weights = baseline, bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)
        self.mode = check_mode(type(self).__name__, mode)
        self.min_delta = abs(float(min_delta))
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best: Optional[float] = None
        self.best_weights: Optional[List[np.ndarray]] = None

    def _better(self, value: float, ref: Optional[float]) -> bool:
        from .monitor import is_improvement
        return is_improvement(self._direction, self.min_delta, value, ref)

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        from .monitor import monitor_mode
        self._direction = monitor_mode(type(self).__name__, self.monitor, self.mode, self.model)
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best = None
        self.best_weights = None

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"EarlyStopping is conditioned on metric {self.monitor!r}, which is "
                          f"not available. Available metrics are: {','.join(logs or {})}",
                          stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # The first watched epoch's weights are the best seen so far.
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
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

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            sys.stdout.write(f"Epoch {self.stopped_epoch + 1}: early stopping\n")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                sys.stdout.write("Restoring model weights from the end of the best epoch: "
                                 f"{self.best_epoch + 1}.\n")
            self.model.set_weights(self.best_weights)


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
