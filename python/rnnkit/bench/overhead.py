"""Per-call overhead: the tutorial SimpleRNN (B=8, T=10, I=1, H=20, fp32) in microseconds.

At this size the arithmetic is a few thousand FLOPs, so the time per call is the fixed cost of
the Python binding, argument checks, allocation and thread hand-off: ``fwd`` is
``ops.simple_rnn_forward(..., training=False)``, ``fwd+bwd`` is the ``training=True`` forward
plus ``ops.simple_rnn_backward(cache, dy, dh_last)``; the NumPy reference and PyTorch
(``nn.RNN``, same weights) run the same work through the suite's runners.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Sequence

from .problem import make_problem
from .runners import Runner
from .shapes import SHAPES, Shape
from .timing import measure

__all__ = ["OVERHEAD_CELL", "OVERHEAD_SHAPE", "run_overhead"]

OVERHEAD_CELL = "simple_rnn"
OVERHEAD_SHAPE: Shape = SHAPES[0]  # 10,8,1,20 tutorial


def run_overhead(runners: Dict[str, Runner], passes: Sequence[str], budget: float, settle: float,
                 verify: Callable[..., Dict[str, Any]], log: Callable[[str], None],
                 seed: int = 0) -> List[Dict[str, Any]]:
    """Verify once, then time every runner per pass; one record per pass.

    Args:
        runners: by name (``rnnkit``, optionally ``reference`` and ``torch``).
        passes: ``"fwd"`` and/or ``"fwd+bwd"``.
        verify: the suite's check, ``verify(cell, shape, problem, runners, passes, log)``.

    Record: ``cell``, ``shape``, ``pass``, ``times`` (per runner ``us``, ``best_us``,
    ``repeats``), ``speedup_vs_reference`` / ``speedup_vs_torch`` (their time / rnnkit's; None
    when absent) and ``check``.
    """
    shape = OVERHEAD_SHAPE
    problem = make_problem(OVERHEAD_CELL, shape, seed=seed)
    log(f"overhead {OVERHEAD_CELL} {shape.label}: verifying ...")
    check = verify(OVERHEAD_CELL, shape, problem, runners, passes, log)
    records: List[Dict[str, Any]] = []
    for pass_ in passes:
        rec: Dict[str, Any] = {"cell": OVERHEAD_CELL, "shape": shape._asdict(), "pass": pass_,
                               "check": check, "times": {}}
        for name, runner in runners.items():
            t = measure(runner.prepare(problem, pass_).call, budget, settle=settle, min_repeats=10)
            rec["times"][name] = {"us": t.median * 1e6, "best_us": t.best * 1e6,
                                  "repeats": t.repeats}
        mine = rec["times"]["rnnkit"]["us"]
        for other in ("reference", "torch"):
            theirs = rec["times"].get(other)
            rec[f"speedup_vs_{other}"] = theirs["us"] / mine if theirs else None
        records.append(rec)
        log(f"overhead {OVERHEAD_CELL} {pass_}: " +
            " ".join(f"{n} {v['us']:.1f} us" for n, v in rec["times"].items()))
    return records
