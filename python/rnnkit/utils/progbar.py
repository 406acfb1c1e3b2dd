"""Keras 3's text progress bar (``keras.utils.Progbar``), used by ``fit``/``evaluate``/``predict``."""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

__all__ = ["Progbar"]


def _fmt_value(v: float, use_abs: bool = True) -> str:
    # Keras's verbose=1 bar tests abs(v) > 1e-3, its verbose=2 line tests v > 1e-3.
    return f"{v:.4f}" if (abs(v) if use_abs else v) > 1e-3 else f"{v:.4e}"


def _fmt_time_per_unit(t: float, unit: str) -> str:
    if t >= 1 or t == 0:
        return f" {t:.0f}s/{unit}"
    if t >= 1e-3:
        return f" {t * 1e3:.0f}ms/{unit}"
    return f" {t * 1e6:.0f}us/{unit}"


class Progbar:
    """Keras 3 progress bar: ``5/5 ━━━━━━━━━━━━━━━━━━━━ 0s 3ms/step - loss: 0.1025``.

    On a terminal the line is redrawn in place (with Keras's colours); otherwise only the
    final line of each bar is written, so logs stay readable. ``verbose=2`` writes the
    one-line form ``5/5 - 0s - 3ms/step - loss: ...``.
    """

    def __init__(self, target: int, width: int = 20, verbose: int = 1, unit_name: str = "step",
                 stream: Any = None) -> None:
        self.target, self.width, self.verbose, self.unit_name = target, width, verbose, unit_name
        self.stream = stream if stream is not None else sys.stdout
        self._dynamic = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start = time.time()
        self._after_first: Optional[float] = None
        self._last_update = 0.0
        self._prev_width = 0
        # Keras shows every value seen so far, in the order names first appeared (a
        # ``learning_rate`` added at the epoch's end comes last).
        self._values: Dict[str, float] = {}
        self._values_order: List[str] = []

    def _time_per_unit(self, current: int, now: float) -> float:
        if not current:
            return 0.0
        if self._after_first is not None and current > 1:
            t = (now - self._after_first) / (current - 1)
        else:
            t = (now - self._start) / current
        if current == 1:
            self._after_first = now
        return t

    def update(self, current: int, values: Sequence[Any] = (), finalize: Optional[bool] = None) -> None:
        """Show progress ``current``/target with ``values`` = [(name, value), ...]."""
        finalize = current >= self.target if finalize is None else finalize
        now = time.time()
        tpu = self._time_per_unit(current, now)
        for k, v in values:
            if k not in self._values_order:
                self._values_order.append(k)
            # Array results (F1Score(average=None), ...) show their mean, as Keras's Progbar.
            self._values[k] = float(np.mean(v))
        metrics = "".join(f" - {k}: {_fmt_value(self._values[k], self.verbose != 2)}"
                          for k in self._values_order)
        digits = int(math.log10(max(self.target, 1))) + 1
        count = f"{current:{digits}d}/{self.target}"
        if self.verbose == 2:
            if finalize:
                self.stream.write(f"{count} - {now - self._start:.0f}s -"
                                  f"{_fmt_time_per_unit(tpu, self.unit_name)}{metrics}\n")
                self.stream.flush()
            return
        if self.verbose != 1 or (not finalize and not self._dynamic):
            return
        if not finalize and now - self._last_update < 0.05:
            return
        done = int(self.width * current / max(self.target, 1))
        if finalize:
            timing = f" {now - self._start:.0f}s"
        else:
            eta = tpu * (self.target - current)
            timing = (f" {int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}"
                      if eta > 3600 else f" {int(eta // 60)}:{int(eta % 60):02d}" if eta > 60
                      else f" {int(eta)}s")
        info = f"{timing}{_fmt_time_per_unit(tpu, self.unit_name)}{metrics}"
        if self._dynamic:
            # Keras's escapes: bold count and time, green done part (omitted when empty),
            # grey rest.
            green = f"\x1b[32m{'━' * done}\x1b[0m" if done > 0 else ""
            bar = (f"\x1b[1m{count}\x1b[0m {green}"
                   f"\x1b[37m{'━' * (self.width - done)}\x1b[0m")
            plain_width = len(count) + 1 + self.width + len(info)
            pad = " " * max(self._prev_width - plain_width, 0)
            info = f" \x1b[1m{timing[1:]}\x1b[0m{info[len(timing):]}"
            self.stream.write(f"\r{bar}{info}{pad}" + ("\n" if finalize else ""))
            self._prev_width = plain_width
        else:
            self.stream.write(f"{count} {'━' * self.width}{info}\n")
        self.stream.flush()
        self._last_update = now
