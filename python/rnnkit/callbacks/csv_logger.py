"""``CSVLogger``: one CSV row per epoch with every logged value (Keras 3 format)."""
from __future__ import annotations

import csv
import os
from typing import Any, Dict, List, Optional

import numpy as np

from .core import Callback, Logs

__all__ = ["CSVLogger"]


class CSVLogger(Callback):
    """Write ``epoch`` and the logs to ``filename`` after each epoch.

    As Keras: columns are ``epoch`` then the first epoch's log keys sorted; when those hold no
    ``val_`` key, ``val_<key>`` columns are added for each (written ``NA`` until validation
    runs); ``append=True`` continues an existing file without repeating its header; lines end
    with ``\\r\\n`` (the csv module's Excel dialect) and ``separator`` splits fields.
    """

    def __init__(self, filename: str, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: `separator` must be a single character, got {separator!r}")
        self.filename, self.sep, self.append = os.fspath(filename), separator, bool(append)
        self.keys: Optional[List[str]] = None
        self.csv_file: Any = None
        self.writer: Any = None
        self.append_header = True

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        mode = "w"
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename, "r", newline="") as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, newline="")
        self.writer, self.keys = None, None

    @staticmethod
    def _cell(v: Any) -> Any:
        if isinstance(v, str):
            return v
        if isinstance(v, np.ndarray) and v.ndim == 0:
            return v
        if hasattr(v, "__iter__"):
            return '"[' + ", ".join(map(str, v)) + ']"'
        return v

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        if self.writer is None:
            sep = self.sep

            class _Dialect(csv.excel):
                delimiter = sep
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=_Dialect)
            if self.append_header:
                self.writer.writeheader()
        row: Dict[str, Any] = {"epoch": epoch}
        row.update((k, self._cell(logs.get(k, "NA"))) for k in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None
