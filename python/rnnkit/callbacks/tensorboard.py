"""``TensorBoard``: scalar logs in TensorBoard's event-file format (Keras 3 layout)."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple, Union

from ._event_file import EventFileWriter
from .core import Callback, Logs

__all__ = ["TensorBoard"]


class TensorBoard(Callback):
    """Write the training curves for ``tensorboard --logdir <log_dir>``.

    Same layout and names as Keras 3: ``<log_dir>/train`` gets ``epoch_<name>`` for every
    training log plus ``epoch_learning_rate`` (the optimizer's rate at the epoch's end), at
    step = epoch; ``<log_dir>/validation`` gets ``epoch_<name>`` for each ``val_<name>`` and
    ``evaluation_<name>_vs_iterations`` at step = optimizer iterations. With ``update_freq``
    ``"batch"`` or an int N, ``batch_<name>`` is written every N training batches (global
    batch count as step); ``write_steps_per_second`` adds ``epoch_steps_per_second``.

    The files are written by rnnkit itself (:mod:`rnnkit.callbacks._event_file`), so no
    TensorFlow or TensorBoard is needed to log; install the ``tensorboard`` extra
    (``pip install rnnkit[tensorboard]``) to view them. Only scalars are written:
    ``histogram_freq``, ``write_graph``, ``write_images``, ``profile_batch``,
    ``embeddings_freq`` and ``embeddings_metadata`` are accepted and ignored.
    """

    def __init__(self, log_dir: str = "logs", histogram_freq: int = 0, write_graph: bool = True,
                 write_images: bool = False, write_steps_per_second: bool = False,
                 update_freq: Union[str, int] = "epoch", profile_batch: Any = 0,
                 embeddings_freq: int = 0, embeddings_metadata: Any = None) -> None:
        super().__init__()
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool)
                                       or not isinstance(update_freq, int) or update_freq <= 0):
            raise ValueError("TensorBoard: `update_freq` must be 'epoch', 'batch' or a positive "
                             f"int, got {update_freq!r}")
        self.log_dir = os.fspath(log_dir)
        self.update_freq = update_freq
        self.write_steps_per_second = bool(write_steps_per_second)
        self.histogram_freq, self.write_graph, self.write_images = histogram_freq, write_graph, write_images
        self.profile_batch, self.embeddings_freq = profile_batch, embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self._writers: Dict[str, EventFileWriter] = {}
        self._global_batch = 0
        self._epoch_start = 0.0
        self._epoch_steps = 0

    def _writer(self, which: str) -> EventFileWriter:
        if which not in self._writers:
            self._writers[which] = EventFileWriter(os.path.join(self.log_dir, which))
        return self._writers[which]

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self._global_batch = 0
        self._writer("train")

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
        import time
        self._epoch_start, self._epoch_steps = time.time(), 0

    def on_train_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        self._global_batch += 1
        self._epoch_steps += 1
        if self.update_freq != "epoch" and self._global_batch % int(self.update_freq) == 0:
            scalars = [(f"batch_{k}", float(v)) for k, v in (logs or {}).items()]
            self._writer("train").add_scalars(self._global_batch, scalars)

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        import time
        logs = logs or {}
        train: List[Tuple[str, float]] = [(f"epoch_{k}", float(v)) for k, v in logs.items()
                                          if not k.startswith("val_") and k != "learning_rate"]
        opt = getattr(self.model, "optimizer", None)
        if opt is not None:
            train.append(("epoch_learning_rate", float(opt.learning_rate)))
        if self.write_steps_per_second:
            elapsed = max(time.time() - self._epoch_start, 1e-12)
            train.append(("epoch_steps_per_second", self._epoch_steps / elapsed))
        self._writer("train").add_scalars(epoch, train)
        val = [(k[4:], float(v)) for k, v in logs.items() if k.startswith("val_")]
        if val:
            writer = self._writer("validation")
            iterations = int(getattr(opt, "iterations", 0)) if opt is not None else 0
            writer.add_scalars(iterations, [(f"evaluation_{k}_vs_iterations", v) for k, v in val])
            writer.add_scalars(epoch, [(f"epoch_{k}", v) for k, v in val])
        for w in self._writers.values():
            w.flush()

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        for w in self._writers.values():
            w.close()
        self._writers = {}
