"""A per-thread value set for the duration of a ``with`` block (the previous value comes back
when it ends, so blocks nest). One mechanism for the scoped switches of rnnkit: deferred
weight allocation (layers/base.py), a graph node's call slot (layers/node.py) and row-sparse
gradients (sparse_grad.py)."""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator


class ThreadScoped:
    """``value`` is ``default`` on every thread until :meth:`scope` sets it for a block."""

    __slots__ = ("_local", "_default")

    def __init__(self, default: Any) -> None:
        self._local = threading.local()
        self._default = default

    @property
    def value(self) -> Any:
        """This thread's current value."""
        return getattr(self._local, "value", self._default)

    @contextlib.contextmanager
    def scope(self, value: Any) -> Iterator[None]:
        """Within the block (this thread only) :attr:`value` is ``value``."""
        previous = self.value
        self._local.value = value
        try:
            yield
        finally:
            self._local.value = previous
