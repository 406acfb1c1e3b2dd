"""rnnkit's thread team as a threadpoolctl library, so ``threadpool_limits(1)`` (and
``threadpool_limits(1, user_api="rnnkit")``) limit it like BLAS and OpenMP pools.

threadpoolctl finds libraries by scanning the loaded shared objects for file-name prefixes.
The prefix ``_core.`` is shared with other extension modules, so the controller accepts only
the file that is rnnkit's own ``_core`` (others raise OSError, which threadpoolctl treats as
"not this library"). Registered by :func:`register` when threadpoolctl is installed and
exposes ``register`` and ``LibController`` (checked, not assumed from a version number);
nothing happens otherwise.
"""
from __future__ import annotations

import importlib.util
import os

from . import _core

_registered = False


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def register() -> bool:
    """Register rnnkit with threadpoolctl if it is installed; True when registered (now or
    before). Cheap when threadpoolctl is absent (no import is attempted)."""
    global _registered
    if _registered:
        return True
    if importlib.util.find_spec("threadpoolctl") is None:
        return False
    import threadpoolctl

    base = getattr(threadpoolctl, "LibController", None)
    if base is None or not hasattr(threadpoolctl, "register"):
        return False

    from . import runtime

    class RnnkitController(base):  # type: ignore[misc, valid-type]
        """threadpoolctl controller for rnnkit's C++ thread team."""

        user_api = "rnnkit"
        internal_api = "rnnkit"
        filename_prefixes = ("_core.",)

        def get_version(self) -> str:
            if not _same_file(self.filepath, _core.__file__):
                raise OSError(f"{self.filepath} is not rnnkit's _core")
            from ._version import __version__
            return __version__

        def get_num_threads(self) -> int:
            return runtime.get_num_threads()

        def set_num_threads(self, num_threads: int) -> None:
            runtime.set_num_threads(int(num_threads))

    threadpoolctl.register(RnnkitController)
    _registered = True
    return True
