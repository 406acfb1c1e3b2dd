"""``BackupAndRestore``: resume an interrupted ``fit`` from its last backup."""
from __future__ import annotations

import json
import os
import shutil
from typing import Any, Dict, List, Optional, Union

import numpy as np

from .. import saving
from .core import Callback, Logs

__all__ = ["BackupAndRestore"]

_FILE = "latest.backup.npz"


class BackupAndRestore(Callback):
    """Back up the weights, the optimizer state (slots, iterations, learning rate) and the
    epoch reached to ``backup_dir`` after every epoch (``save_freq="epoch"``) or every
    ``save_freq`` batches; when ``fit`` starts and a backup exists, restore it and continue
    at the epoch it recorded (the start of the interrupted epoch, as Keras: batch-level
    backups restore weights, not the position inside the epoch).

    One ``.npz`` file written atomically (``rnnkit.saving``'s writer: a crash mid-write
    leaves the previous backup intact), read back with pickling disabled and every array
    checked against the model. ``delete_checkpoint=True`` removes ``backup_dir`` when ``fit``
    completes normally.
    """

    def __init__(self, backup_dir: str, save_freq: Union[str, int] = "epoch",
                 delete_checkpoint: bool = True, double_checkpoint: bool = False) -> None:
        super().__init__()
        if not backup_dir:
            raise ValueError("BackupAndRestore: empty `backup_dir` argument")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                     or save_freq <= 0):
            raise ValueError("BackupAndRestore: `save_freq` must be 'epoch' or a positive int "
                             f"(batches), got {save_freq!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq, self.delete_checkpoint = save_freq, bool(delete_checkpoint)
        self.double_checkpoint = bool(double_checkpoint)  # accepted; the write is atomic anyway
        self._path = os.path.join(self.backup_dir, _FILE)
        self._current_epoch = 0
        self._batches_since_save = 0

    # -- restore ------------------------------------------------------------------------
    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self._current_epoch, self._batches_since_save = 0, 0
        if os.path.exists(self._path):
            self._restore()

    def _restore(self) -> None:
        model = self.model
        if not getattr(model, "built", True):
            raise ValueError("BackupAndRestore: build the model (give it an input shape) "
                             "before fit() so the backup can be loaded into it")
        bad = f"BackupAndRestore: {self._path} is not a valid backup"
        try:
            with np.load(self._path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode("utf-8"))
                n_w, n_o = int(meta["n_weights"]), int(meta["n_optimizer"])
                epoch = int(meta["epoch"])
                weights = [z[f"w_{i:05d}"] for i in range(n_w)]
                opt_state = [z[f"o_{i:05d}"] for i in range(n_o)]
                lr = meta.get("learning_rate")
        except (KeyError, ValueError, TypeError, OSError) as exc:
            raise ValueError(f"{bad}: {exc}") from exc
        mine = model.get_weights()
        if len(weights) != len(mine) or any(a.shape != b.shape for a, b in zip(weights, mine)):
            raise ValueError(f"{bad}: its weights {[a.shape for a in weights]} do not match the "
                             f"model's {[b.shape for b in mine]}")
        if any(a.dtype.kind != "f" for a in weights) or epoch < 0:
            raise ValueError(f"{bad}: weights must be floats and the epoch non-negative")
        model.set_weights([a.astype(b.dtype) for a, b in zip(weights, mine)])
        opt = getattr(model, "optimizer", None)
        if opt is not None and n_o:
            variables = [w.value for w in model.trainable_weights]
            try:
                opt.set_state(opt_state, variables)
            except (ValueError, TypeError, IndexError) as exc:
                raise ValueError(f"{bad}: optimizer state: {exc}") from exc
        if opt is not None and isinstance(lr, (int, float)) and not callable(opt._learning_rate):
            opt.learning_rate = float(lr)
        model._initial_epoch = epoch
        self._current_epoch = epoch

    # -- back up ------------------------------------------------------------------------
    def _save(self) -> None:
        model = self.model
        arrays: Dict[str, np.ndarray] = {}
        weights: List[np.ndarray] = model.get_weights()
        for i, w in enumerate(weights):
            arrays[f"w_{i:05d}"] = np.asarray(w)
        opt = getattr(model, "optimizer", None)
        opt_vars = list(opt.variables) if opt is not None and opt.built else []
        for i, a in enumerate(opt_vars):
            arrays[f"o_{i:05d}"] = np.asarray(a)
        meta: Dict[str, Any] = {"epoch": self._current_epoch, "n_weights": len(weights),
                                "n_optimizer": len(opt_vars)}
        if opt is not None:
            meta["learning_rate"] = float(opt.learning_rate)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        saving._atomic_write(self._path, arrays, overwrite=True)

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        self._current_epoch = epoch + 1
        if self.save_freq == "epoch":
            self._save()

    def on_train_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save()

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        if self.delete_checkpoint and os.path.isdir(self.backup_dir):
            shutil.rmtree(self.backup_dir)
