"""``model.summary()``: Keras 3's table (rich-style box drawing), written without rich.

A model whose graph is a simple chain prints three columns (layer, output shape, parameter
count); any other functional model adds "Connected to" (``layer[node][tensor]`` of each
input), as Keras's ``utils/summary_utils.print_summary`` decides. Long cells wrap inside
their column. Totals count the optimizer's variables as Keras stores them.
"""
from __future__ import annotations

import shutil
import sys
from typing import Any, List, Optional, Sequence

import numpy as np

from . import backend

__all__ = ["print_summary"]


def _readable_size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n_bytes / 1024 < 1:
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.2f} PB"


def _ratio_reduce(total: int, widths: List[int]) -> List[int]:
    """Shrink ``widths`` by ``total`` characters in equal shares (rich's table collapse)."""
    out, remaining, ratio = [], total, len(widths)
    for w in widths:
        cut = min(w, round(remaining / ratio))
        out.append(w - cut)
        remaining -= cut
        ratio -= 1
    return out


def _shape_str(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_str(s) for s in shape) + "]"
    return str(tuple(shape)).replace(",)", ")")


def _wrap(text: str, width: int) -> List[str]:
    """Split ``text`` at ", " so each line fits ``width`` (a longer piece stays whole)."""
    parts = text.split(", ")
    lines = [parts[0]]
    for p in parts[1:]:
        if len(lines[-1]) + 2 + len(p) <= width:
            lines[-1] += ", " + p
        else:
            lines[-1] += ","
            lines.append(p)
    return lines


def print_summary(model: Any, rows: Sequence[Sequence[str]], connected: bool,
                  line_length: Optional[int] = None, positions: Optional[Sequence[float]] = None,
                  print_fn: Any = None) -> None:
    """Print ``rows`` ([name (type), output shape, params(, connected to)]) as Keras does."""
    # Keras hands print_fn the whole captured table at once, ending with a newline.
    print_fn = print_fn or sys.stdout.write
    default = 108 if connected else 88
    line_length = line_length or min(default, shutil.get_terminal_size().columns - 4)
    positions = list(positions or ([0.3, 0.56, 0.74, 1.0] if connected else [0.45, 0.80, 1.0]))
    header = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if connected else [])
    ncol = len(header)
    widths, cur = [], 0
    for p in positions[:ncol]:
        w = int(p * line_length) if p <= 1 else int(p)
        widths.append(w - cur)
        cur = w
    cells = [w + 2 for w in widths]  # content + one space of padding each side
    room = line_length - (len(cells) + 1)
    if sum(cells) > room:
        cells = _ratio_reduce(sum(cells) - room, cells)
    wrapped: List[List[List[str]]] = []
    for r in rows:
        cols = [[c] for c in r]
        if connected:
            cols[3] = _wrap(r[3], max(cells[3] - 2, 8))
        wrapped.append(cols)
    for cols in wrapped + [[[h] for h in header]]:
        for i, lines in enumerate(cols):
            for s in lines:
                cells[i] = max(cells[i], len(s) + 2)

    def line(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * c for c in cells) + right

    def row(cols: Sequence[Sequence[str]], v: str) -> List[str]:
        height = max(len(c) for c in cols)
        out = []
        for k in range(height):
            vals = [c[k] if k < len(c) else "" for c in cols]
            parts = [" " + (vals[i].rjust(cells[i] - 2) if i == 2 else vals[i].ljust(cells[i] - 2))
                     + " " for i in range(ncol)]
            out.append(v + v.join(parts) + v)
        return out

    out = [f'Model: "{model.name}"', line("┏", "┳", "┓", "━"), *row([[h] for h in header], "┃"),
           line("┡", "╇", "┩", "━")]
    for i, cols in enumerate(wrapped):
        out += row(cols, "│")
        if i < len(wrapped) - 1:
            out.append(line("├", "┼", "┤", "─"))
    out.append(line("└", "┴", "┘", "─"))
    tw, ntw = model.trainable_weights, model.non_trainable_weights
    t_n, t_b = sum(w.value.size for w in tw), sum(w.value.nbytes for w in tw)
    n_n, n_b = sum(w.value.size for w in ntw), sum(w.value.nbytes for w in ntw)
    o_n = o_b = 0
    opt = getattr(model, "optimizer", None)
    if opt is not None and opt.built:
        # Keras counts its optimizer variables: ``iteration`` (int32 on the torch/JAX
        # backends -> 4 bytes; TensorFlow uses int64), ``learning_rate`` (a floatx
        # variable, absent for a callable rate) and the slots. rnnkit keeps iterations as
        # a Python int and the rate as a float, so count them as Keras stores them.
        slots = opt.variables[1:]
        o_n, o_b = 1 + sum(a.size for a in slots), 4 + sum(a.nbytes for a in slots)
        if not callable(opt._learning_rate):
            o_n, o_b = o_n + 1, o_b + np.dtype(backend.floatx()).itemsize
    out.append(f" Total params: {t_n + n_n + o_n:,} ({_readable_size(t_b + n_b + o_b)})")
    out.append(f" Trainable params: {t_n:,} ({_readable_size(t_b)})")
    out.append(f" Non-trainable params: {n_n:,} ({_readable_size(n_b)})")
    if opt is not None and opt.built:
        out.append(f" Optimizer params: {o_n:,} ({_readable_size(o_b)})")
    print_fn("\n".join(out) + "\n")


def shape_str(shape: Any) -> str:
    """Keras's rendering of an output shape: ``(None, 10, 20)``; lists for several outputs."""
    return _shape_str(shape)
