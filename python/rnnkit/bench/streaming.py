"""Single-step streaming inference: one LSTM step (B=1, T=1, I=H) with carried state.

What a streaming user runs per incoming frame: rnnkit ``ops.lstm_forward(x, kernel,
recurrent_kernel, bias, h0=h, c0=c, training=False)`` with ``x (1, 1, H)``, vs PyTorch's
``nn.LSTMCell`` (same weights: ``weight_ih = kernel.T``, ``weight_hh = recurrent_kernel.T``,
``bias_ih = bias``, ``bias_hh = 0``) under ``torch.no_grad()``. Each timed call feeds the
previous call's ``(h, c)`` back in. Before timing, a few chained steps of each are checked
against the float64 NumPy reference (``rnnkit.reference.lstm_forward``).
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Dict, List, NamedTuple, Sequence, Tuple

import numpy as np

from .. import ops
from .. import reference as reference_kernels
from .problem import Problem, make_problem
from .shapes import Shape
from .timing import measure
from .verify import TOL_VS_FP32, TOL_VS_FP64, compare

__all__ = ["STREAM_SIZES", "VERIFY_STEPS", "StreamStepper", "stream_problem", "rnnkit_stepper", "torch_stepper",
           "reference_states", "run_streaming"]

STREAM_SIZES: Tuple[int, ...] = (32, 128, 512, 1024)  # H (= I)
VERIFY_STEPS = 3  # chained steps compared with the float64 reference


class StreamStepper(NamedTuple):
    """``step()`` advances the carried state by one frame (the timed call); ``state()`` returns
    ``(h, c)`` as ``(1, H)`` NumPy arrays; the timed calls run inside ``context()``."""

    step: Callable[[], Any]
    state: Callable[[], Tuple[np.ndarray, np.ndarray]]
    context: Callable[[], ContextManager[Any]]


def stream_problem(h: int, seed: int = 0) -> Problem:
    """The LSTM problem of one step at ``I = H = h`` (``x (1, 1, h)``, ``h0``, ``c0 (1, h)``)."""
    return make_problem("lstm", Shape(1, 1, h, h, "stream"), seed=seed)


def rnnkit_stepper(p: Problem) -> StreamStepper:
    """rnnkit: ``ops.lstm_forward(..., h0=h, c0=c, training=False)`` per step."""
    carried = [p.h0, p.c0]

    def step() -> Any:
        _, h, c, _ = ops.lstm_forward(p.x, p.kernel, p.recurrent_kernel, p.bias,
                                      h0=carried[0], c0=carried[1], training=False)
        carried[0], carried[1] = h, c
        return h

    return StreamStepper(step, lambda: (np.asarray(carried[0]), np.asarray(carried[1])),
                         contextlib.nullcontext)


def torch_stepper(torch: Any, p: Problem) -> StreamStepper:
    """PyTorch: ``h, c = nn.LSTMCell(x_t, (h, c))`` per step, timed under ``torch.no_grad()``."""
    h_units = p.recurrent_kernel.shape[0]
    cell = torch.nn.LSTMCell(p.kernel.shape[0], h_units)

    def t(a: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    with torch.no_grad():
        cell.weight_ih.copy_(t(p.kernel.T))
        cell.weight_hh.copy_(t(p.recurrent_kernel.T))
        cell.bias_ih.copy_(t(p.bias))
        cell.bias_hh.zero_()
    x = t(p.x[:, 0])
    carried = [t(p.h0), t(p.c0)]

    def step() -> Any:
        h, c = cell(x, (carried[0], carried[1]))
        carried[0], carried[1] = h, c
        return h

    return StreamStepper(step, lambda: (carried[0].numpy().copy(), carried[1].numpy().copy()),
                         torch.no_grad)


def reference_states(p: Problem, steps: int) -> Dict[str, np.ndarray]:
    """``h``, ``c`` after ``steps`` chained steps, float64 NumPy reference."""
    q = p.astype(np.float64)
    h, c = q.h0, q.c0
    for _ in range(steps):
        _, h, c, _ = reference_kernels.lstm_forward(q.x, q.kernel, q.recurrent_kernel, q.bias,
                                                    h0=h, c0=c, training=False)
    return {"h": np.asarray(h), "c": np.asarray(c)}


def _check(steppers: Dict[str, Callable[[], StreamStepper]], p: Problem) -> Dict[str, Any]:
    want = reference_states(p, VERIFY_STEPS)
    record: Dict[str, Any] = {"oracle": "reference(fp64)", "ok": True, "max_rel_err": 0.0,
                              "problems": []}
    for name, make in steppers.items():
        s = make()
        with s.context():
            for _ in range(VERIFY_STEPS):
                s.step()
        h, c = s.state()
        cmp = compare({"h": h, "c": c}, want, TOL_VS_FP64 if name == "rnnkit" else TOL_VS_FP32)
        record["max_rel_err"] = max(record["max_rel_err"], cmp.max_err)
        if not cmp.ok:
            record["ok"] = False
            record["problems"].append(f"{name} vs reference(fp64): {cmp.describe()}")
    return record


def run_streaming(sizes: Sequence[int], torch: Any, budget: float, settle: float,
                  log: Callable[[str], None], seed: int = 0) -> List[Dict[str, Any]]:
    """Verify, then time one streaming step per ``H`` in ``sizes``; one record per size.

    Record: ``H``, ``I``, ``B`` (1), ``T`` (1), ``times`` (``rnnkit`` / ``torch``: ``us``,
    ``best_us``, ``repeats``; ``torch`` None without PyTorch), ``speedup_vs_torch`` (torch time
    / rnnkit time, None without PyTorch) and ``check``.
    """
    records: List[Dict[str, Any]] = []
    for h in sizes:
        p = stream_problem(h, seed)
        makers: Dict[str, Callable[[], StreamStepper]] = {"rnnkit": lambda: rnnkit_stepper(p)}
        if torch is not None:
            makers["torch"] = lambda: torch_stepper(torch, p)
        log(f"stream LSTM step H={h}: verifying ...")
        rec: Dict[str, Any] = {"H": h, "I": h, "B": 1, "T": 1, "check": _check(makers, p),
                               "times": {"rnnkit": None, "torch": None}}
        for name, make in makers.items():
            s = make()
            with s.context():
                t = measure(s.step, budget, settle=settle, min_repeats=10)
            rec["times"][name] = {"us": t.median * 1e6, "best_us": t.best * 1e6, "repeats": t.repeats}
        tch = rec["times"]["torch"]
        rec["speedup_vs_torch"] = tch["us"] / rec["times"]["rnnkit"]["us"] if tch else None
        records.append(rec)
        log(f"stream LSTM step H={h}: " + " ".join(
            f"{n} {v['us']:.1f} us" if v else f"{n} -" for n, v in rec["times"].items()))
    return records
