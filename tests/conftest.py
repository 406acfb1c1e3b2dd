"""Shared pytest fixtures: the implementation under test, its SIMD path, the Keras fixtures."""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

import rnnkit
from _cases import FIXTURES_DIR  # tests/fixtures/keras

_INFO = rnnkit.build_info()
# Every SIMD path compiled into this build; paths this CPU lacks are skipped, not failed.
ISAS = list(_INFO["compiled_isas"])
# Every functional-kernel module that must satisfy the same tests: the NumPy reference and
# the C++ module once per SIMD path. rnnkit.ops is never skipped for being unimportable.
IMPLEMENTATIONS = ["reference"] + [f"ops-{isa}" for isa in ISAS]


def _use_isa(isa: str) -> None:
    if isa not in _INFO["supported_isas"]:
        pytest.skip(f"this CPU cannot run the {isa} kernels")
    rnnkit._core.select_isa(isa)


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """``rnnkit.reference``, or ``rnnkit.ops`` running one SIMD path."""
    name = request.param
    if name == "reference":
        yield importlib.import_module("rnnkit.reference")
        return
    _use_isa(name.split("-", 1)[1])
    try:
        yield importlib.import_module("rnnkit.ops")
    finally:
        rnnkit._core.select_isa(_INFO["isa"])


@pytest.fixture(params=ISAS)
def isa(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test with rnnkit.ops on each SIMD path in turn; yields its name."""
    _use_isa(request.param)
    try:
        yield request.param
    finally:
        rnnkit._core.select_isa(_INFO["isa"])


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Directory holding keras_*.npz; fails (never skips) when it is missing."""
    if not FIXTURES_DIR.is_dir():
        pytest.fail(
            f"Keras fixtures directory not found: {FIXTURES_DIR} "
            "(expected tests/fixtures/keras/keras_*.npz in the repository)"
        )
    return FIXTURES_DIR
