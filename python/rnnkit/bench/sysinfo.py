"""What the benchmark ran on: CPU model, rnnkit build, library versions, NumPy's sgemm rate."""
from __future__ import annotations

import os
import platform
from typing import Any, Dict, Optional

import numpy as np

from .timing import measure

__all__ = ["cpu_model", "numpy_sgemm_gflops", "describe"]


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` when present, else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def numpy_sgemm_gflops(n: int = 2048, budget: float = 0.5, settle: float = 0.2) -> float:
    """GFLOP/s of NumPy's fp32 ``(n x n) @ (n x n)`` (median of repeats), the machine's scale."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    t = measure(lambda: np.matmul(a, b, out=out), budget, min_repeats=3, settle=settle)
    return 2.0 * n ** 3 / t.median / 1e9


def _usable_cores() -> Optional[int]:
    if hasattr(os, "sched_getaffinity"):  # Linux only
        try:
            return len(os.sched_getaffinity(0))
        except OSError:  # pragma: no cover
            pass
    return os.cpu_count()


def describe(torch_module: Any = None) -> Dict[str, Any]:
    """Machine and software description for the report (no timing)."""
    import rnnkit
    info: Dict[str, Any] = {
        "cpu": cpu_model(),
        "usable_cores": _usable_cores(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "rnnkit": getattr(rnnkit, "__version__", "?"),
        "build_info": rnnkit.build_info(),
        "rnnkit_threads": rnnkit.get_num_threads(),
    }
    if torch_module is not None:
        info["torch"] = torch_module.__version__
        info["torch_threads"] = torch_module.get_num_threads()
    return info
