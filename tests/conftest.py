"""Shared pytest fixtures: the implementation under test and the Keras fixtures directory."""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

from _cases import FIXTURES_DIR  # Path(__file__).resolve().parents[2] / "shared" / "fixtures"

# Every functional-kernel module that must satisfy the same tests. ``rnnkit.ops`` is the C++
# module; it is never skipped: if it cannot be imported, the ops tests fail.
IMPLEMENTATIONS = ["reference", "ops"]


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """The module ``rnnkit.<name>`` for each name in IMPLEMENTATIONS."""
    return importlib.import_module(f"rnnkit.{request.param}")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Directory holding keras_*.npz; fails (never skips) when it is missing."""
    if not FIXTURES_DIR.is_dir():
        pytest.fail(
            f"Keras fixtures directory not found: {FIXTURES_DIR} "
            "(expected <repo>/../shared/fixtures with keras_*.npz)"
        )
    return FIXTURES_DIR
