"""Median-of-repeats timing under a time budget.

One untimed warm-up call, an optional short sleep (``settle``: lets thread teams that the
warm-up woke go idle, so a team that started with a bad thread placement is re-placed;
on small VMs that otherwise makes some calls many times slower), then timed calls until the budget is spent and at least
``min_repeats`` calls were made (a call slower than the budget is still repeated
``min_repeats`` times, so every median has company). The garbage collector is paused while
timing.
"""
from __future__ import annotations

import gc
import statistics
import time
from typing import Any, Callable, List, NamedTuple

__all__ = ["Timing", "measure"]


class Timing(NamedTuple):
    """Timing of one callable, in seconds."""

    median: float
    best: float
    repeats: int
    times: List[float]


def measure(fn: Callable[[], Any], budget: float = 0.5, *, min_repeats: int = 3,
            max_repeats: int = 100_000, warmup: int = 1, settle: float = 0.0) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then repeats until ``budget`` seconds are spent.

    Args:
        fn: the work to time; its result is discarded.
        budget: seconds of timed calls to aim for (at least ``min_repeats`` calls are made).
        min_repeats: fewest timed calls.
        max_repeats: most timed calls.
        warmup: untimed calls first (caches, thread wake-up, allocator).
        settle: seconds to sleep after the warm-up, before timing.
    """
    for _ in range(warmup):
        fn()
    if settle > 0:
        time.sleep(settle)
    times: List[float] = []
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        clock = time.perf_counter
        spent = 0.0
        while len(times) < max_repeats and (spent < budget or len(times) < min_repeats):
            t0 = clock()
            fn()
            dt = clock() - t0
            times.append(dt)
            spent += dt
    finally:
        if gc_was_enabled:
            gc.enable()
    return Timing(statistics.median(times), min(times), len(times), times)
