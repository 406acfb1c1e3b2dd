"""The three runners: rnnkit.ops (C++), rnnkit.reference (NumPy) and PyTorch.

A runner turns a :class:`~rnnkit.bench.problem.Problem` and a pass (``"fwd"`` or ``"fwd+bwd"``)
into a :class:`Prepared` pair: ``call()`` does exactly the work that is timed and returns the
framework's raw results; ``collect(raw)`` turns them into NumPy arrays in rnnkit's layout for the
agreement checks (outside the timed region).

Result keys: ``y``, ``h_last`` (+ ``c_last``) for both passes, plus the gradients ``d_x``,
``d_kernel``, ``d_recurrent_kernel``, ``d_bias``, ``d_h0`` (+ ``d_c0``) for ``fwd+bwd``.
"""
from __future__ import annotations

import importlib
import time
from types import ModuleType
from typing import Any, Callable, Dict, List, NamedTuple, Optional

import numpy as np

from .. import cells
from .. import ops as ops_kernels
from .. import reference as reference_kernels
from .problem import Problem

__all__ = ["Prepared", "Runner", "KernelRunner", "TorchRunner", "torch_available", "make_runners"]

Results = Dict[str, np.ndarray]


class Prepared(NamedTuple):
    """``call()`` is timed; ``collect(call())`` gives the results as NumPy arrays."""

    call: Callable[[], Any]
    collect: Callable[[Any], Results]


class Runner:
    """Base class: a named implementation of the three cells."""

    name: str = "?"

    def prepare(self, problem: Problem, pass_: str) -> Prepared:  # pragma: no cover - abstract
        """Build the timed callable for ``problem`` and ``pass_`` (``"fwd"`` / ``"fwd+bwd"``)."""
        raise NotImplementedError

    def run(self, problem: Problem, pass_: str) -> Results:
        """Prepare, call once and collect: the results of one untimed call."""
        prepared = self.prepare(problem, pass_)
        return prepared.collect(prepared.call())


class KernelRunner(Runner):
    """rnnkit's functional API: ``rnnkit.ops`` (C++) or ``rnnkit.reference`` (NumPy).

    ``fwd`` calls ``<cell>_forward(..., training=False)``; ``fwd+bwd`` calls the forward with
    ``training=True`` and then ``<cell>_backward(cache, dy, dh_last[, dc_last])``.
    """

    def __init__(self, module: ModuleType, name: Optional[str] = None) -> None:
        self.module = module
        self.name = name or module.__name__.rsplit(".", 1)[-1]

    def prepare(self, problem: Problem, pass_: str) -> Prepared:
        """See :meth:`Runner.prepare`."""
        p, cell = problem, problem.cell
        fwd = getattr(self.module, f"{cell}_forward")
        bwd = getattr(self.module, f"{cell}_backward")
        carried = cells.state_names(cell)  # ("h",) or ("h", "c")
        states: Dict[str, Any] = {f"{s}0": getattr(p, f"{s}0") for s in carried}
        training = pass_ == "fwd+bwd"
        upstream: List[Any] = [p.dy] + [getattr(p, f"d{s}_last") for s in carried]
        out_names = ["y"] + [f"{s}_last" for s in carried]

        weights = [p.kernel, p.recurrent_kernel]
        if p.projection_kernel is not None:  # LSTMP: projection_kernel before bias
            weights.append(p.projection_kernel)

        def call() -> Any:
            outs = fwd(p.x, *weights, p.bias, training=training, **states, **p.options)
            if not training:
                return outs, None
            return outs, bwd(outs[-1], *upstream)

        def collect(raw: Any) -> Results:
            outs, grads = raw
            res = dict(zip(out_names, (np.asarray(o) for o in outs[:-1])))
            if grads is not None:
                res.update({f"d_{k}": np.asarray(v) for k, v in grads.items()})
            return res

        return Prepared(call, collect)


def torch_available() -> bool:
    """True when PyTorch can be imported."""
    try:
        importlib.import_module("torch")
    except ImportError:
        return False
    return True


class TorchRunner(Runner):
    """PyTorch's ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` with weights mapped by
    :func:`rnnkit.interop.torch.to_torch` (``batch_first=True``).

    ``fwd`` runs the module under ``torch.no_grad()``; ``fwd+bwd`` runs it with autograd and
    ``torch.autograd.grad(y, [x, h0(, c0), *parameters], dy)`` (the last states get no
    gradient, matching the problem's zero ``dh_last`` / ``dc_last``).
    """

    name = "torch"

    def __init__(self, num_threads: Optional[int] = None, settle: float = 0.3) -> None:
        """Import PyTorch, set its intra-op thread count, then start its OpenMP team.

        ``settle`` seconds of sleep follow a first parallel operation: on small VMs freshly
        created OpenMP threads can land on the caller's core and keep spinning there (calls
        ~30x slower until the team has idled once); letting the team go idle once fixes that.
        """
        from ..interop.torch import require_torch
        self.torch = require_torch()
        if num_threads is not None:
            self.torch.set_num_threads(int(num_threads))
        self.torch.ones(1 << 20).exp_().sum()  # a parallel region creates the OpenMP team
        time.sleep(settle)

    def prepare(self, problem: Problem, pass_: str) -> Prepared:
        """See :meth:`Runner.prepare`."""
        from ..interop.torch import gradients_from_torch, to_torch
        torch, p, cell = self.torch, problem, problem.cell
        extra = {} if p.projection_kernel is None else {"projection_kernel": p.projection_kernel}
        module = to_torch(cell, p.kernel, p.recurrent_kernel, p.bias, **p.options, **extra)
        training = pass_ == "fwd+bwd"
        has_c = p.c0 is not None  # LSTM, LSTMP

        def tensor(a: np.ndarray, grad: bool) -> Any:
            return torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(grad)

        x = tensor(p.x, training)
        h0 = tensor(p.h0[None], training)                       # (1, B, H)
        c0 = tensor(p.c0[None], training) if has_c else None
        hx: Any = (h0, c0) if has_c else h0
        dy = torch.from_numpy(np.ascontiguousarray(p.dy))
        params = list(module.parameters())
        inputs = [x, h0] + ([c0] if has_c else []) + params

        def call() -> Any:
            if not training:
                with torch.no_grad():
                    return module(x, hx), None
            out = module(x, hx)
            return out, torch.autograd.grad(out[0], inputs, grad_outputs=dy)

        def collect(raw: Any) -> Results:
            (y, hn), grads = raw
            res = {"y": y.detach().numpy()}
            if has_c:
                res["h_last"], res["c_last"] = hn[0].detach()[0].numpy(), hn[1].detach()[0].numpy()
            else:
                res["h_last"] = hn.detach()[0].numpy()
            if grads is not None:
                res["d_x"], res["d_h0"] = grads[0].numpy(), grads[1][0].numpy()
                n_states = 2
                if has_c:
                    res["d_c0"] = grads[2][0].numpy()
                    n_states = 3
                mapped = gradients_from_torch(module, grads[n_states:])
                res.update({f"d_{k}": v for k, v in mapped.items()})
            return res

        return Prepared(call, collect)


def make_runners(*, reference: bool = True, torch: bool = True,
                 torch_threads: Optional[int] = None) -> Dict[str, Runner]:
    """The runners to benchmark, by name: ``rnnkit`` always, ``reference`` and ``torch`` on request
    (``torch`` only when PyTorch is importable)."""
    runners: Dict[str, Runner] = {"rnnkit": KernelRunner(ops_kernels, "rnnkit")}
    if reference:
        runners["reference"] = KernelRunner(reference_kernels, "reference")
    if torch and torch_available():
        runners["torch"] = TorchRunner(torch_threads)
    return runners
