"""``LambdaCallback``: a callback built from plain functions."""
from __future__ import annotations

from typing import Any, Callable, Optional

from .core import Callback

__all__ = ["LambdaCallback"]

_HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_begin", "on_train_end",
          "on_train_batch_begin", "on_train_batch_end")


class LambdaCallback(Callback):
    """Each argument is an optional function: ``on_epoch_begin(epoch, logs)``,
    ``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)``, ``on_train_end(logs)``,
    ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)``; further
    ``on_*`` keyword arguments (e.g. ``on_test_end``) are attached too, as Keras."""

    def __init__(self, on_epoch_begin: Optional[Callable[..., Any]] = None,
                 on_epoch_end: Optional[Callable[..., Any]] = None,
                 on_train_begin: Optional[Callable[..., Any]] = None,
                 on_train_end: Optional[Callable[..., Any]] = None,
                 on_train_batch_begin: Optional[Callable[..., Any]] = None,
                 on_train_batch_end: Optional[Callable[..., Any]] = None,
                 **kwargs: Callable[..., Any]) -> None:
        super().__init__()
        given = dict(zip(_HOOKS, (on_epoch_begin, on_epoch_end, on_train_begin, on_train_end,
                                  on_train_batch_begin, on_train_batch_end)))
        for name, fn in kwargs.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise ValueError(f"LambdaCallback: unknown hook {name!r}")
            given[name] = fn
        for name, fn in given.items():
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"LambdaCallback: `{name}` must be callable, got {fn!r}")
            setattr(self, name, _with_logs(fn, indexed="epoch" in name or "batch" in name))


def _with_logs(fn: Callable[..., Any], indexed: bool) -> Callable[..., Any]:
    """Call ``fn(index, logs)`` / ``fn(logs)`` with ``logs`` always passed (``None`` when the
    loop gives none), as Keras's loop always passes it."""
    if indexed:
        return lambda index, logs=None: fn(index, logs)
    return lambda logs=None: fn(logs)
