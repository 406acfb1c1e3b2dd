"""Run the benchmark grid and build the report (a JSON-ready dict).

For every cell and shape (smallest first):

1. **Verify** once: rnnkit's results (outputs, and gradients for ``fwd+bwd``) against an
   oracle -- the NumPy reference in float64 for shapes up to :data:`ORACLE_FP64_MAX_FLOPS`
   forward FLOPs or when PyTorch is unavailable, PyTorch (fp32, mapped weights) otherwise.
   PyTorch is checked against a float64 reference oracle too, so a mapping error cannot
   pass as a speed-up. Mismatches are collected in ``report["mismatches"]``.
2. **Time** each pass with each runner (:func:`rnnkit.bench.timing.measure`). The NumPy
   reference is slow on big shapes; in ``"auto"`` mode it is timed only when its estimated
   time per call is below ``reference_limit`` seconds (see :func:`estimate_reference_seconds`);
   skipped cells are ``None`` in the report and ``-`` in the table.

Besides that grid (suite ``cells``), ``Config.suites`` selects the rows of
:mod:`~rnnkit.bench.overhead` (``overhead``: tutorial SimpleRNN, microseconds per call),
:mod:`~rnnkit.bench.streaming` (``streaming``: one LSTM step with carried state vs
``nn.LSTMCell``) and :mod:`~rnnkit.bench.imdb_suite` (``imdb``: the Keras IMDB model's training
step and predict vs PyTorch and Keras 3), each verified before it is timed.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

import rnnkit
from rnnkit import reference as reference_kernels

from .imdb import IMDB_SIZE, ImdbSize
from .problem import Problem, make_problem
from .runners import Runner, make_runners
from .shapes import CELLS, PASSES, SHAPES, SUITES, Shape, by_size, flops
from .streaming import STREAM_SIZES
from .sysinfo import describe, numpy_sgemm_gflops
from .timing import measure
from .verify import TOL_VS_FP32, TOL_VS_FP64, compare

__all__ = ["Config", "run_suite", "DEFAULT_SUITES", "estimate_reference_seconds", "ORACLE_FP64_MAX_FLOPS"]

# Shapes up to this many forward FLOPs are verified against the float64 NumPy reference.
ORACLE_FP64_MAX_FLOPS = 1e9
# Reference time model for shapes with no smaller measured neighbour: it reaches about this
# fraction of the in-run sgemm rate, plus a per-step Python overhead (forward; x3 with BPTT).
REF_SGEMM_FRACTION = 0.15
REF_STEP_SECONDS = 1e-4
# Default sleep between the warm-up and the timed calls (see rnnkit.bench.timing.measure),
# capped at the budget.
SETTLE_SECONDS = 0.2
DEFAULT_SUITES = SUITES  # every suite; the imdb rows add about 10-20 s (more with Keras)


@dataclass
class Config:
    """What to run. Defaults: every suite, cell, shape and pass; reference in ``auto`` mode."""

    cells: Sequence[str] = CELLS
    shapes: Sequence[Shape] = tuple(SHAPES)
    passes: Sequence[str] = PASSES
    budget: float = 0.5                 # seconds of timed calls per measurement
    threads: Optional[int] = None       # rnnkit (and PyTorch) threads; None: rnnkit's default
    reference: str = "auto"             # "auto" | "always" | "never"
    reference_limit: float = 3.0        # auto: time the reference when estimated below this
    torch: bool = True
    settle: Optional[float] = None      # seconds; None: min(SETTLE_SECONDS, budget)
    seed: int = 0
    suites: Sequence[str] = DEFAULT_SUITES  # of shapes.SUITES
    imdb_size: ImdbSize = IMDB_SIZE
    stream_sizes: Sequence[int] = STREAM_SIZES
    keras: bool = True                  # Keras 3 in the imdb rows when it imports
    log: Callable[[str], None] = field(default=lambda s: print(s, file=sys.stderr, flush=True))


def estimate_reference_seconds(cell: str, shape: Shape, pass_: str, sgemm_gflops: float,
                               history: Sequence[Tuple[float, float]] = ()) -> float:
    """Estimated seconds of one NumPy-reference call.

    Scales the reference's measured time on the largest smaller shape of the same cell and
    pass by the FLOP ratio when that shape is within 10x of the FLOPs (``history`` holds
    ``(flops, seconds)`` pairs); otherwise ``flops / (0.15 * sgemm rate) + T * 1e-4 s`` (x3 for
    ``fwd+bwd``).
    """
    f = flops(cell, shape, pass_)
    prior = [(pf, ps) for pf, ps in history if pf <= f]
    if prior:
        pf, ps = max(prior)
        if f <= 10 * pf:
            return ps * f / pf
    steps = shape.T * REF_STEP_SECONDS * (3 if pass_ == "fwd+bwd" else 1)
    return f / (REF_SGEMM_FRACTION * max(sgemm_gflops, 1.0) * 1e9) + steps


def _shape_dict(shape: Shape) -> Dict[str, Any]:
    return {"T": shape.T, "B": shape.B, "I": shape.I, "H": shape.H, "name": shape.name}


def _verify(cell: str, shape: Shape, problem: Problem, runners: Dict[str, Runner],
            passes: Sequence[str], log: Callable[[str], None]) -> Dict[str, Any]:
    """Check rnnkit (and PyTorch) against the oracle for every pass; returns the check record."""
    from .runners import KernelRunner
    use_fp64 = flops(cell, shape, "fwd") <= ORACLE_FP64_MAX_FLOPS or "torch" not in runners
    if use_fp64:
        oracle_name, tol = "reference(fp64)", TOL_VS_FP64
        reference = runners.get("reference") or KernelRunner(reference_kernels, "reference")
        want = reference.run(problem.astype(np.float64), "fwd+bwd")
        checked = ["rnnkit"] + (["torch"] if "torch" in runners else [])
    else:
        oracle_name, tol = "torch", TOL_VS_FP32
        want = runners["torch"].run(problem, "fwd+bwd")
        checked = ["rnnkit"]
    record: Dict[str, Any] = {"oracle": oracle_name, "ok": True, "max_rel_err": 0.0, "problems": []}
    for name in checked:
        for pass_ in passes:
            got = runners[name].run(problem, pass_)
            cmp = compare(got, want, tol if name == "rnnkit" else max(tol, TOL_VS_FP32))
            record["max_rel_err"] = max(record["max_rel_err"], cmp.max_err)
            if not cmp.ok:
                record["ok"] = False
                msg = f"{name} {pass_} vs {oracle_name}: {cmp.describe()}"
                record["problems"].append(msg)
                log(f"!!! MISMATCH {cell} {shape.label}: {msg}")
    return record


def run_suite(config: Config) -> Dict[str, Any]:
    """Verify and time the suites in ``config``; returns the report.

    Report keys: ``meta`` (machine, build, threads, sgemm rate, settings, ``suites``),
    ``results`` (suite ``cells``: one record per cell, shape and pass, with per-runner ``ms`` /
    ``gflops`` or None when not timed, speed-ups and the verification record; empty when the
    suite did not run), ``overhead`` and ``streaming`` (lists of records, see
    :func:`~rnnkit.bench.overhead.run_overhead` / :func:`~rnnkit.bench.streaming.run_streaming`;
    empty when not run), ``imdb`` (see :func:`~rnnkit.bench.imdb_suite.run_imdb`; None when not
    run) and ``mismatches`` (messages; empty when everything agreed).
    """
    log = config.log
    if config.threads is not None:
        rnnkit.set_num_threads(int(config.threads))
    threads = rnnkit.get_num_threads()
    grid = any(s in config.suites for s in ("cells", "overhead"))
    runners = make_runners(reference=config.reference != "never" and grid,
                           torch=config.torch, torch_threads=threads)
    torch_mod = getattr(runners.get("torch"), "torch", None)
    if config.torch and torch_mod is None:
        log("PyTorch is not importable: no PyTorch column (pip install 'rnnkit[torch]').")

    settle = min(SETTLE_SECONDS, config.budget) if config.settle is None else config.settle
    log("measuring NumPy sgemm (2048x2048 fp32) ...")
    sgemm = numpy_sgemm_gflops(budget=max(0.2, min(config.budget, 1.0)), settle=settle)
    meta = describe(torch_mod)
    meta.update({
        "numpy_sgemm_gflops": sgemm, "budget_s": config.budget, "reference_mode": config.reference,
        "reference_limit_s": config.reference_limit,
        "settle_s": settle,
        "runners": list(runners),
        "flop_model": "fwd 2*B*T*G*H*(I+H); fwd+bwd 3x fwd",
        "suites": [s for s in SUITES if s in config.suites],
    })
    report: Dict[str, Any] = {"meta": meta, "results": [], "overhead": [], "streaming": [],
                              "imdb": None, "mismatches": []}
    mismatches: List[str] = report["mismatches"]
    if "cells" in config.suites:
        report["results"] = _run_cells(config, runners, sgemm, settle, mismatches)
    if "overhead" in config.suites:
        from .overhead import run_overhead
        report["overhead"] = run_overhead(runners, config.passes, config.budget, settle, _verify,
                                          log, config.seed)
        mismatches += _problems("overhead", report["overhead"][:1])
    if "streaming" in config.suites:
        from .streaming import run_streaming
        report["streaming"] = run_streaming(config.stream_sizes, torch_mod, config.budget, settle,
                                            log, config.seed)
        mismatches += _problems("streaming", report["streaming"])
    if "imdb" in config.suites:
        from .imdb_keras import keras_status
        from .imdb_suite import run_imdb
        keras_mod, meta["keras"] = keras_status(threads) if config.keras else (None, "--no-keras")
        if config.keras and keras_mod is None:
            log(f"no Keras column: {meta['keras']}")
        report["imdb"] = run_imdb(config.imdb_size, torch_mod, keras_mod, threads, config.budget,
                                  settle, log, config.seed)
        mismatches += [f"imdb {config.imdb_size.label}: {m}" for m in report["imdb"]["check"]["problems"]]
    return report


def _problems(suite: str, records: Sequence[Dict[str, Any]]) -> List[str]:
    out = []
    for r in records:
        where = f"H={r['H']}" if "H" in r else f"{r['cell']} {Shape(**r['shape']).label}"
        out += [f"{suite} {where}: {m}" for m in r["check"]["problems"]]
    return out


def _run_cells(config: Config, runners: Dict[str, Runner], sgemm: float, settle: float,
               mismatches: List[str]) -> List[Dict[str, Any]]:
    """The cells x shapes x passes grid (see the module docstring); appends to ``mismatches``."""
    log = config.log
    results: List[Dict[str, Any]] = []
    history: Dict[Tuple[str, str], List[Tuple[float, float]]] = {}
    for cell in config.cells:
        for shape in by_size(config.shapes):
            problem = make_problem(cell, shape, seed=config.seed)
            log(f"{cell} {shape.label}: verifying ...")
            check = _verify(cell, shape, problem, runners, config.passes, log)
            mismatches += [f"{cell} {shape.label}: {m}" for m in check["problems"]]
            for pass_ in config.passes:
                f = flops(cell, shape, pass_)
                rec: Dict[str, Any] = {"cell": cell, "shape": _shape_dict(shape), "pass": pass_,
                                       "gflop": f / 1e9, "check": check, "times": {}}
                for name, runner in runners.items():
                    if name == "reference" and config.reference == "auto":
                        est = estimate_reference_seconds(cell, shape, pass_, sgemm,
                                                         history.get((cell, pass_), ()))
                        if est > config.reference_limit:
                            rec["times"][name] = None
                            rec["reference_skipped"] = f"estimated {est:.1f} s > {config.reference_limit:g} s"
                            continue
                    t = measure(runner.prepare(problem, pass_).call, config.budget, settle=settle)
                    rec["times"][name] = {"ms": t.median * 1e3, "best_ms": t.best * 1e3,
                                          "repeats": t.repeats, "gflops": f / t.median / 1e9}
                    if name == "reference":
                        history.setdefault((cell, pass_), []).append((f, t.median))
                mine = rec["times"]["rnnkit"]["ms"]
                for other in ("reference", "torch"):
                    theirs = rec["times"].get(other)
                    rec[f"speedup_vs_{other}"] = theirs["ms"] / mine if theirs else None
                results.append(rec)
                log(_progress_line(rec))
    return results


def _progress_line(rec: Dict[str, Any]) -> str:
    parts = [f"{rec['cell']} {Shape(**rec['shape']).label} {rec['pass']}:"]
    for name, t in rec["times"].items():
        parts.append(f"{name} {t['ms']:.3f} ms" if t else f"{name} -")
    return " ".join(parts)
