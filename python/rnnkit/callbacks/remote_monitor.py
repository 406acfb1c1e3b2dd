"""``RemoteMonitor``: Keras streams epoch logs to an HTTP server; rnnkit works offline."""
from __future__ import annotations

from typing import Any, Dict, Optional

from .core import Callback, Logs

__all__ = ["RemoteMonitor"]


class RemoteMonitor(Callback):
    """Accepts Keras's arguments (``root``, ``path``, ``field``, ``headers``,
    ``send_as_json``) but raises a RuntimeError when training begins: sending logs needs
    network access, which rnnkit never uses. Use :class:`~rnnkit.callbacks.CSVLogger` or
    :class:`~rnnkit.callbacks.TensorBoard` to follow training instead."""

    def __init__(self, root: str = "http://localhost:9000", path: str = "/publish/epoch/end/",
                 field: str = "data", headers: Optional[Dict[str, str]] = None,
                 send_as_json: bool = False) -> None:
        super().__init__()
        self.root, self.path, self.field = root, path, field
        self.headers: Dict[str, Any] = dict(headers or {})
        self.send_as_json = send_as_json

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        raise RuntimeError(f"RemoteMonitor would send the logs to {self.root}{self.path}, which "
                           "needs network access; rnnkit does not open network connections. "
                           "Use CSVLogger or TensorBoard to record training instead.")
