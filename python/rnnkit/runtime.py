"""Run-time settings of the C++ kernels: thread count and instruction set.

The kernels run on a persistent thread team. Its size defaults to the number of cores this
process may use; small problems use fewer threads automatically. Results are bitwise
identical for every thread count. The SIMD path (``generic``, ``avx2``, ``avx512``) is chosen
at import as the best one the CPU supports; set the environment variable ``RNNKIT_ISA`` before
importing rnnkit to force one.
"""
from __future__ import annotations

from typing import Any, Dict

from . import _core

__all__ = ["set_num_threads", "get_num_threads", "build_info"]


def set_num_threads(n: int) -> None:
    """Limit the kernels' thread team to ``n`` threads (``n <= 0`` restores the default).

    Raises:
        TypeError: ``n`` is not an integer.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int; got {type(n).__name__}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The current limit on the kernels' thread team."""
    return int(_core.get_num_threads())


def build_info() -> Dict[str, Any]:
    """How this rnnkit was built and what it runs on.

    Returns:
        dict with ``isa`` (the SIMD path in use), ``compiled_isas``, ``supported_isas`` (those
        this CPU can run), ``num_threads`` and ``compiler``.
    """
    return dict(_core.build_info())
