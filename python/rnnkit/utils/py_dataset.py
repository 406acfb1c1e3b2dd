"""``PyDataset``: Keras 3's base class for Python data sources that ``fit``/``predict`` read
batch by batch."""
from __future__ import annotations

from typing import Any, Iterator

__all__ = ["PyDataset"]


class PyDataset:
    """Subclass and implement ``__len__`` (batches per epoch) and ``__getitem__(index)``
    (batch ``index``: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` of NumPy arrays).

    ``on_epoch_begin`` / ``on_epoch_end`` are called around each epoch (override to reshuffle).
    ``workers``, ``use_multiprocessing`` and ``max_queue_size`` are accepted for Keras
    compatibility and **ignored**: rnnkit reads batches in the calling thread, in order
    (its kernels already use all cores).

    Iterating a ``PyDataset`` yields its batches ``0 .. len-1`` once (a fresh pass each time).
    """

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10) -> None:
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    # Keras 3 exposes these as properties.
    @property
    def workers(self) -> int:
        """Accepted and ignored (see the class docstring)."""
        return self._workers

    @property
    def use_multiprocessing(self) -> bool:
        """Accepted and ignored (see the class docstring)."""
        return self._use_multiprocessing

    @property
    def max_queue_size(self) -> int:
        """Accepted and ignored (see the class docstring)."""
        return self._max_queue_size

    def __len__(self) -> int:
        """Number of batches in one epoch."""
        raise NotImplementedError(f"{type(self).__name__} must implement `__len__`")

    def __getitem__(self, index: int) -> Any:
        """Batch number ``index``."""
        raise NotImplementedError(f"{type(self).__name__} must implement `__getitem__`")

    @property
    def num_batches(self) -> int:
        """Batches per epoch (``len(self)``), as Keras's property."""
        return len(self)

    def on_epoch_begin(self) -> None:
        """Called before each epoch."""

    def on_epoch_end(self) -> None:
        """Called after each epoch."""

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]
