"""``timeseries_dataset_from_array``: sliding windows over a series, batched (Keras 3)."""
from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import numpy as np

from .py_dataset import PyDataset

__all__ = ["timeseries_dataset_from_array", "TimeseriesDataset"]


class TimeseriesDataset(PyDataset):
    """Windows ``data[start + p + k * sampling_rate]`` for ``k < sequence_length`` and each start
    position ``p``; targets ``targets[start + p]``. Batch ``i`` is ``(x, y)`` (or ``x`` when
    there are no targets) with ``x`` of shape ``(batch, sequence_length, *data.shape[1:])``;
    with ``batch_size=None`` each item is a single window."""

    def __init__(self, data: np.ndarray, targets: Optional[np.ndarray], positions: np.ndarray,
                 sequence_length: int, sampling_rate: int, batch_size: Optional[int],
                 start_index: int) -> None:
        super().__init__()
        self.data, self.targets = data, targets
        self.positions = positions
        self.sequence_length, self.sampling_rate = sequence_length, sampling_rate
        self.batch_size, self.start_index = batch_size, start_index

    def __len__(self) -> int:
        if self.batch_size is None:
            return len(self.positions)
        return -(-len(self.positions) // self.batch_size)

    def __getitem__(self, index: int) -> Any:
        if not -len(self) <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        index %= len(self)
        if self.batch_size is None:
            pos = self.positions[index:index + 1]
        else:
            pos = self.positions[index * self.batch_size:(index + 1) * self.batch_size]
        starts = self.start_index + pos                                   # (b,)
        steps = np.arange(self.sequence_length) * self.sampling_rate     # (T,)
        x = self.data[starts[:, None] + steps[None, :]]                  # (b, T, *feature)
        y = None if self.targets is None else self.targets[starts]      # (b, *target)
        if self.batch_size is None:
            x = x[0]
            y = None if y is None else y[0]
        return x if y is None else (x, y)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"timeseries_dataset_from_array: `{name}` must be a positive int, "
                         f"got {value!r}")
    return int(value)


def timeseries_dataset_from_array(data: Any, targets: Any, sequence_length: int,
                                  sequence_stride: int = 1, sampling_rate: int = 1,
                                  batch_size: Optional[int] = 128, shuffle: bool = False,
                                  seed: Optional[int] = None, start_index: Optional[int] = None,
                                  end_index: Optional[int] = None) -> TimeseriesDataset:
    """Sliding windows over ``data`` (timesteps first) as a re-iterable
    :class:`~rnnkit.utils.PyDataset` of NumPy batches that ``fit``/``predict`` accept.

    Window ``i`` starts at ``start_index + i * sequence_stride`` and takes every
    ``sampling_rate``-th step, ``sequence_length`` steps in all, never reading at or past
    ``end_index`` (default ``len(data)``). Its target is ``targets[start of window]``
    (``targets=None``: batches are ``x`` only). With ``targets`` the number of windows is also
    capped at ``len(targets)``. Same windows and errors as Keras (TensorFlow backend).

    ``shuffle=True`` permutes the windows once, with ``np.random.RandomState(seed)`` (Keras's
    first shuffling stage); Keras then also shuffles within a buffer in ``tf.data``, so the
    shuffled order differs from Keras's, the set of windows does not.
    """
    data = np.asarray(data)
    if data.ndim == 0:
        raise ValueError("timeseries_dataset_from_array: `data` must have a time axis")
    n = len(data)
    sequence_length = _positive_int(sequence_length, "sequence_length")
    sampling_rate = _positive_int(sampling_rate, "sampling_rate")
    sequence_stride = _positive_int(sequence_stride, "sequence_stride")
    if batch_size is not None:
        batch_size = _positive_int(batch_size, "batch_size")
    if start_index:
        if start_index < 0 or start_index >= n:
            raise ValueError("timeseries_dataset_from_array: `start_index` must be in "
                             f"[0, {n}) (the length of `data`), got {start_index}")
    if end_index:
        if start_index and end_index <= start_index:
            raise ValueError("timeseries_dataset_from_array: `end_index` must be greater than "
                             f"`start_index`; got start_index={start_index}, end_index={end_index}")
        if end_index >= n or end_index <= 0:
            raise ValueError("timeseries_dataset_from_array: `end_index` must be in "
                             f"(0, {n}) (the length of `data`), got {end_index}")
    if sampling_rate >= n:
        raise ValueError("timeseries_dataset_from_array: `sampling_rate` must be lower than the "
                         f"length of `data` ({n}), got {sampling_rate}")
    if sequence_stride >= n:
        raise ValueError("timeseries_dataset_from_array: `sequence_stride` must be lower than "
                         f"the length of `data` ({n}), got {sequence_stride}")
    start = int(start_index or 0)
    end = int(end_index) if end_index else n
    num_seqs = end - start - (sequence_length - 1) * sampling_rate
    target_arr = None
    if targets is not None:
        target_arr = np.asarray(targets)
        num_seqs = min(num_seqs, len(target_arr) - start)  # targets are read from `start` too
        num_seqs = min(num_seqs, len(target_arr))
    positions = np.arange(0, max(num_seqs, 0), sequence_stride)
    if shuffle:
        if seed is None:
            seed = np.random.randint(1_000_000)
        np.random.RandomState(seed).shuffle(positions)
    return TimeseriesDataset(data, target_arr, positions, sequence_length, sampling_rate,
                             batch_size, start)
