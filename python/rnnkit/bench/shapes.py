"""Benchmark shapes ``(T, B, I, H)`` and the FLOP model.

FLOPs of one forward pass: ``2 * B * T * G * H * (I + H)`` (the input and recurrent GEMMs;
element-wise work is not counted), with ``G`` = 1 (SimpleRNN), 3 (GRU), 4 (LSTM). The
backward pass costs twice that, so forward+BPTT counts three times the forward FLOPs.
LSTMP (LSTM with projection) runs with ``P = H/2`` (:func:`proj_size`): forward
``2 * B * T * (4 * H * (I + P) + H * P)``.
"""
from __future__ import annotations

import re
from typing import List, NamedTuple, Sequence

from ..cells import GATE_COUNTS

__all__ = ["Shape", "GATES", "CELLS", "PASSES", "SUITES", "SHAPES", "SMALL_SHAPES", "flops", "parse_shapes",
           "proj_size"]

GATES = GATE_COUNTS  # {cell: G}, from rnnkit.cells
CELLS = ("lstm", "gru", "simple_rnn", "lstmp")  # the order the suite runs and reports them
# "fwd": inference forward (training=False / torch.no_grad); "fwd+bwd": forward + BPTT.
PASSES = ("fwd", "fwd+bwd")
# The report's row groups (``--suites``), in run order: the cells x shapes grid, the tutorial
# SimpleRNN per-call overhead in microseconds, single-step streaming LSTM inference, and the
# Keras IMDB model's training step and predict.
SUITES = ("cells", "overhead", "streaming", "imdb")


class Shape(NamedTuple):
    """A benchmark problem size: ``T`` steps, batch ``B``, ``I`` features, ``H`` units."""

    T: int
    B: int
    I: int  # noqa: E741 - the conventional name
    H: int
    name: str = ""

    @property
    def label(self) -> str:
        """``T,B,I,H`` plus the name when it has one, e.g. ``10,8,1,20 tutorial``."""
        dims = f"{self.T},{self.B},{self.I},{self.H}"
        return f"{dims} {self.name}" if self.name else dims


SHAPES: List[Shape] = [
    Shape(10, 8, 1, 20, "tutorial"),
    Shape(50, 1, 64, 64),
    Shape(50, 16, 64, 128),
    Shape(200, 32, 128, 64, "imdb"),  # one direction of Keras's IMDB BiLSTM(64) at batch 32
    Shape(200, 32, 128, 128),
    Shape(100, 32, 128, 256),
    Shape(100, 64, 256, 512),
    Shape(50, 64, 1024, 1024),
]
# --shapes small: overhead-dominated sizes that run in milliseconds everywhere.
SMALL_SHAPES: List[Shape] = SHAPES[:3]


def proj_size(cell: str, h: int) -> int:
    """P of a projected cell's benchmark problems (``H // 2``, at least 1); 0 for the others."""
    return max(1, h // 2) if cell == "lstmp" else 0


def flops(cell: str, shape: Shape, pass_: str) -> float:
    """GEMM FLOPs of one call: forward ``2*B*T*G*H*(I+H)`` (LSTMP: ``2*B*T*(G*H*(I+P) + H*P)``);
    ``fwd+bwd`` three times that."""
    p = proj_size(cell, shape.H)
    if p:
        fwd = 2.0 * shape.B * shape.T * (GATES[cell] * shape.H * (shape.I + p) + shape.H * p)
    else:
        fwd = 2.0 * shape.B * shape.T * GATES[cell] * shape.H * (shape.I + shape.H)
    if pass_ == "fwd":
        return fwd
    if pass_ == "fwd+bwd":
        return 3.0 * fwd
    raise ValueError(f"pass must be one of {PASSES}; got {pass_!r}")


def parse_shapes(spec: str) -> List[Shape]:
    """``"small"``, ``"all"``, or comma-separated ``TxBxIxH`` sizes (e.g. ``"50x16x64x128"``).

    Raises:
        ValueError: the spec is none of those.
    """
    if spec == "all":
        return list(SHAPES)
    if spec == "small":
        return list(SMALL_SHAPES)
    out: List[Shape] = []
    for item in spec.split(","):
        m = re.fullmatch(r"\s*(\d+)x(\d+)x(\d+)x(\d+)\s*", item)
        if not m:
            raise ValueError(f"--shapes: expected 'small', 'all' or TxBxIxH[,TxBxIxH...]; got {spec!r}")
        t, b, i, h = (int(v) for v in m.groups())
        if min(t, b, i, h) < 1:
            raise ValueError(f"--shapes: sizes must be positive; got {item!r}")
        known = [s for s in SHAPES if s[:4] == (t, b, i, h)]
        out.append(known[0] if known else Shape(t, b, i, h))
    return out


def by_size(shapes: Sequence[Shape]) -> List[Shape]:
    """Shapes sorted by forward FLOPs (smallest first), ties in the given order."""
    return sorted(shapes, key=lambda s: s.B * s.T * s.H * (s.I + s.H))
