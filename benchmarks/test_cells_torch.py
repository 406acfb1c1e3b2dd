"""rnnkit.ops vs the NumPy reference vs PyTorch, per (cell, pass, shape).

Each pytest-benchmark group holds one cell, pass (``fwd`` = inference forward, ``fwd+bwd`` =
forward + BPTT) and shape ``(T, B, I, H)`` with rnnkit, PyTorch (when importable; mapped
weights, ``rnnkit.interop.torch``) and -- at the two smallest shapes, where it takes
milliseconds -- the NumPy reference. The issue's two largest shapes are left to
``python -m rnnkit.bench``. Every benchmark asserts that its result agrees with the other
implementations in the group (or with the reference, computed once, when it is alone).
CI runs these once with ``--benchmark-disable``.

    pytest benchmarks/test_cells_torch.py --benchmark-enable --benchmark-group-by=group \
        --benchmark-columns=mean,stddev,rounds
"""
from __future__ import annotations

from functools import lru_cache
from typing import Dict, List

import numpy as np
import pytest

import rnnkit
from rnnkit import ops, reference
from rnnkit.bench.problem import Problem, make_problem
from rnnkit.bench.runners import KernelRunner, Runner, TorchRunner, torch_available
from rnnkit.bench.shapes import CELLS, PASSES, SHAPES, Shape
from rnnkit.bench.verify import TOL_VS_FP32, compare

pytest.importorskip("pytest_benchmark")

BENCH_SHAPES: List[Shape] = SHAPES[:-2]          # the shapes except the largest two
REFERENCE_SHAPES: List[Shape] = SHAPES[:2]       # the reference is timed only where it is quick


def _params() -> list:
    out = []
    for cell in CELLS:
        for pass_ in PASSES:
            for shape in BENCH_SHAPES:
                impls = ["rnnkit", "torch"] + (["reference"] if shape in REFERENCE_SHAPES else [])
                for impl in impls:
                    out.append(pytest.param(cell, pass_, shape, impl,
                                            id=f"{cell}-{pass_}-{shape.label.replace(' ', '-')}-{impl}"))
    return out


@lru_cache(maxsize=None)
def _runner(impl: str) -> Runner:
    if impl == "torch":
        return TorchRunner(rnnkit.get_num_threads())
    return KernelRunner(ops if impl == "rnnkit" else reference, impl)


@lru_cache(maxsize=None)
def _problem(cell: str, shape: Shape) -> Problem:
    return make_problem(cell, shape, seed=0)


@lru_cache(maxsize=None)
def _results(impl: str, cell: str, pass_: str, shape: Shape) -> Dict[str, np.ndarray]:
    """One untimed call's results (cached: each implementation runs once per group)."""
    return _runner(impl).run(_problem(cell, shape), pass_)


@pytest.mark.parametrize("cell,pass_,shape,impl", _params())
def test_cell(benchmark, cell: str, pass_: str, shape: Shape, impl: str) -> None:
    """Time one implementation; assert it agrees with the rest of its group."""
    if impl == "torch":
        pytest.importorskip("torch")
    prepared = _runner(impl).prepare(_problem(cell, shape), pass_)
    benchmark.group = f"{cell} {pass_} {shape.label}"
    got = prepared.collect(benchmark(prepared.call))

    others = [o for o in ("rnnkit", "torch", "reference") if o != impl]
    others = [o for o in others
              if (o != "torch" or torch_available()) and (o != "reference" or shape in REFERENCE_SHAPES)]
    if not others:  # rnnkit alone (no PyTorch, reference not timed here): check it anyway
        others = ["reference"]
    for other in others:
        cmp = compare(got, _results(other, cell, pass_, shape), TOL_VS_FP32)
        assert cmp.ok, f"{impl} vs {other}: {cmp.describe()}"
