"""What ``fit``/``evaluate``/``predict`` accept as data, turned into batches (Keras 3's
``trainers/data_adapters`` and ``EpochIterator``).

Data is one of:

* arrays (``x``, ``y``, ``sample_weight``; lists or dicts for several inputs/outputs), cut into
  ``batch_size`` batches, reshuffled every pass when ``shuffle``;
* a ``PyDataset``-like object (``__len__`` + ``__getitem__(i)`` -> a batch, optional
  ``on_epoch_end``), its batch order shuffled when ``shuffle`` (as Keras);
* a Python generator/iterator, or any other iterable of batches (re-iterated every pass).

A batch from a dataset or generator is ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``
(a list is read as a tuple, as Keras's ``unpack_x_y_sample_weight`` does).

:class:`EpochIterator` gives each epoch its batches. Without ``steps_per_epoch`` an epoch is one
pass. With it, an epoch takes that many batches and the *next* epoch continues the same pass
(a new pass starts when one is used up), as Keras does; a generator that runs dry ends
training with a warning.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np

from . import backend

__all__ = ["Batch", "ArrayAdapter", "PyDatasetAdapter", "IteratorAdapter", "EpochIterator",
           "get_adapter", "unpack", "class_weight_to_sample_weights", "is_array_like"]

#: (x, y, sample_weight) of one batch, each as the user gave it (array, list or dict) or None.
Batch = Tuple[Any, Any, Any]


def unpack(data: Any) -> Batch:
    """``x`` / ``(x,)`` / ``(x, y)`` / ``(x, y, sample_weight)`` -> ``(x, y, sample_weight)``."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data[0], data[1], data[2]
    raise ValueError(f"a batch must be x, (x, y) or (x, y, sample_weight); got a tuple of "
                     f"{len(data)} items")


def is_array_like(x: Any) -> bool:
    """Arrays, nested lists of numbers, and lists/tuples/dicts of arrays (not datasets)."""
    if isinstance(x, (np.ndarray, np.generic, int, float)):
        return True
    if isinstance(x, dict):
        return all(is_array_like(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return all(is_array_like(v) or v is None for v in x)
    return hasattr(x, "__array__")


def class_weight_to_sample_weights(y: np.ndarray, class_weight: Any) -> np.ndarray:
    """Keras's rule: one class per sample (``(N,)``, ``(N, 1)`` or one-hot ``(N, C)`` targets,
    rounded to int); weight ``class_weight.get(class, 1.0)``."""
    if not hasattr(class_weight, "items") or not hasattr(class_weight, "get"):
        raise ValueError("`class_weight` must be a dict mapping class indices to weights, got "
                         f"{type(class_weight).__name__}")
    cleaned = {}
    for key, val in class_weight.items():
        try:
            cleaned[int(key)] = float(val)
        except (TypeError, ValueError):
            raise ValueError(f"`class_weight` keys must be integer class indices and values "
                             f"numbers; got {key!r}: {val!r}") from None
    y = np.asarray(y)
    if y.ndim > 2:
        raise ValueError(f"`class_weight` needs one class per sample (targets of shape (N,), "
                         f"(N, 1) or one-hot (N, C)), got targets of shape {y.shape}; for "
                         "sequence outputs pass a per-timestep `sample_weight` instead")
    if y.ndim == 2:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y[:, 0]
    classes = np.round(y).astype(np.int64)
    return np.array([cleaned.get(int(c), 1.0) for c in classes], dtype=backend.floatx())


class ArrayAdapter:
    """Batches of in-memory arrays: ``xs``, ``ys``, ``sws`` are lists (one per input/output;
    ``ys``/``sws`` may be None)."""

    def __init__(self, xs: List[np.ndarray], ys: Optional[List[np.ndarray]],
                 sws: Optional[List[Optional[np.ndarray]]], batch_size: int, shuffle: Any) -> None:
        self.xs, self.ys, self.sws = xs, ys, sws
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.num_samples = len(xs[0])
        self.num_batches: Optional[int] = max(int(np.ceil(self.num_samples / batch_size)), 1) \
            if self.num_samples else 0

    def batches(self) -> Iterator[Batch]:
        n = self.num_samples
        order = backend.rng().permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            take = (lambda arrays: None if arrays is None else
                    [None if a is None else a[idx] for a in arrays])
            yield take(self.xs), take(self.ys), take(self.sws)

    def on_epoch_end(self) -> None:
        """Nothing to do for arrays."""


class PyDatasetAdapter:
    """A ``PyDataset``-like object: ``len(ds)`` batches, ``ds[i]`` the i-th batch."""

    def __init__(self, dataset: Any, shuffle: Any) -> None:
        self.dataset = dataset
        self.shuffle = shuffle
        self.num_batches = len(dataset)

    def batches(self) -> Iterator[Batch]:
        order = (backend.rng().permutation(self.num_batches) if self.shuffle
                 else range(self.num_batches))
        for i in order:
            yield unpack(self.dataset[int(i)])

    def on_epoch_end(self) -> None:
        """Calls the dataset's ``on_epoch_end`` (Keras's hook for reshuffling)."""
        hook = getattr(self.dataset, "on_epoch_end", None)
        if callable(hook):
            hook()


class IteratorAdapter:
    """A generator/iterator (consumed once, so epochs continue it) or a re-iterable."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.num_batches: Optional[int] = None
        self.one_shot = iter(source) is source

    def batches(self) -> Iterator[Batch]:
        for data in (self.source if self.one_shot else iter(self.source)):
            yield unpack(data)

    def on_epoch_end(self) -> None:
        hook = getattr(self.source, "on_epoch_end", None)
        if callable(hook):
            hook()


def get_adapter(x: Any, where: str, shuffle: Any) -> Any:
    """The adapter for a dataset/generator ``x`` (arrays are handled by the Trainer)."""
    if hasattr(x, "__getitem__") and hasattr(x, "__len__") and not is_array_like(x):
        return PyDatasetAdapter(x, shuffle)
    if hasattr(x, "__iter__") or hasattr(x, "__next__"):
        return IteratorAdapter(x)
    raise TypeError(f"{where}: `x` must be arrays (or lists/dicts of arrays), a PyDataset, a "
                    f"generator or an iterable of batches; got {type(x).__name__}")


class EpochIterator:
    """Batches per epoch from an adapter, honouring ``steps_per_epoch`` (module docstring)."""

    def __init__(self, adapter: Any, steps_per_epoch: Optional[int] = None) -> None:
        self.adapter = adapter
        self.steps_per_epoch = steps_per_epoch
        self._current: Optional[Iterator[Batch]] = None
        self._seen = 0
        self.exhausted = False

    @property
    def steps(self) -> Optional[int]:
        """Batches per epoch when known (for the progress bar)."""
        return self.steps_per_epoch or self.adapter.num_batches

    def epoch(self) -> Iterator[Batch]:
        """The batches of one epoch."""
        n_batches = self.adapter.num_batches
        steps = self.steps_per_epoch or n_batches
        if steps is None:  # a generator without steps_per_epoch: one full pass
            yield from self.adapter.batches()
            self.adapter.on_epoch_end()
            return
        if self._current is None or self.steps_per_epoch is None:
            self._current = self.adapter.batches()
            self._seen = 0
        for _ in range(steps):
            if n_batches and self._seen >= n_batches:
                break
            try:
                batch = next(self._current)
            except StopIteration:
                if self.steps_per_epoch:
                    warnings.warn("Your input ran out of data; interrupting training. Make "
                                  "sure that your dataset or generator can generate at least "
                                  "`steps_per_epoch * epochs` batches.", stacklevel=3)
                    self.exhausted = True
                return
            self._seen += 1
            yield batch
        if n_batches and self._seen >= n_batches:
            self._current = None
            self.adapter.on_epoch_end()
