"""Global settings of the Keras-style API: float type, kernel module, random numbers, names.

Mirrors ``keras.backend`` / ``keras.config`` where Keras has the same idea:

* ``floatx()`` / ``set_floatx("float64")``: dtype of new weights and of computation
  (float32 by default, as Keras).
* ``kernels()`` / ``set_kernels("reference")`` / ``use_kernels(...)``: which functional kernel
  module RNN layers call -- :mod:`rnnkit.ops` (C++, default) or :mod:`rnnkit.reference`
  (NumPy). Both have identical signatures, so the same model runs on either.
* ``set_random_seed(seed)``: seeds the generator used by initializers, dropout and shuffling.
"""
from __future__ import annotations

import contextlib
import copy
import re
from types import ModuleType
from typing import Dict, Iterator, Optional, Union

import numpy as np

from . import ops, reference

__all__ = [
    "floatx", "set_floatx", "epsilon", "kernels", "set_kernels", "use_kernels",
    "set_random_seed", "rng", "get_uid", "reset_uids", "clear_session", "snake_case",
]

_FLOATX = "float32"
_EPSILON = 1e-7
# The kernel modules selectable by name.
_KERNEL_MODULES: Dict[str, ModuleType] = {"ops": ops, "reference": reference}
_KERNELS: ModuleType = ops
_KERNEL_NAME = "ops"
_RNG = np.random.default_rng()
_UIDS: Dict[str, int] = {}


def floatx() -> str:
    """Return the default float type name, ``"float32"`` unless changed."""
    return _FLOATX


def set_floatx(value: str) -> None:
    """Set the default float type (``"float32"`` or ``"float64"``) for layers built afterwards."""
    global _FLOATX
    if value not in ("float32", "float64"):
        raise ValueError(f"set_floatx: `value` must be 'float32' or 'float64', got {value!r}")
    _FLOATX = value


def epsilon() -> float:
    """Fuzz factor used by losses and metrics (Keras's ``backend.epsilon()``, 1e-7)."""
    return _EPSILON


def kernels() -> ModuleType:
    """Return the functional kernel module RNN layers call (``rnnkit.ops`` by default)."""
    return _KERNELS


def set_kernels(module: Union[str, ModuleType]) -> None:
    """Choose the kernel module: ``"ops"`` (C++), ``"reference"`` (NumPy) or a module object.

    Any module with the ``simple_rnn_forward`` ... ``gru_backward`` functions of
    :mod:`rnnkit.ops` works.
    """
    global _KERNELS, _KERNEL_NAME
    if isinstance(module, str):
        if module not in _KERNEL_MODULES:
            raise ValueError(f"set_kernels: `module` must be 'ops' or 'reference', got {module!r}")
        _KERNEL_NAME, _KERNELS = module, _KERNEL_MODULES[module]
    elif isinstance(module, ModuleType) and hasattr(module, "lstm_forward"):
        _KERNEL_NAME, _KERNELS = getattr(module, "__name__", "custom"), module
    else:
        raise TypeError(f"set_kernels: `module` must be a name or a kernel module, got {module!r}")


@contextlib.contextmanager
def use_kernels(module: Union[str, ModuleType]) -> Iterator[ModuleType]:
    """Context manager: run RNN layers on ``module`` inside the block, then restore."""
    global _KERNELS, _KERNEL_NAME
    saved = (_KERNELS, _KERNEL_NAME)
    set_kernels(module)
    try:
        yield kernels()
    finally:
        _KERNELS, _KERNEL_NAME = saved


def set_random_seed(seed: int) -> None:
    """Seed rnnkit's generator and NumPy's global one (like ``keras.utils.set_random_seed``)."""
    global _RNG
    if not isinstance(seed, (int, np.integer)):
        raise TypeError(f"set_random_seed: `seed` must be an int, got {type(seed).__name__}")
    _RNG = np.random.default_rng(int(seed))
    np.random.seed(int(seed) % (2**32))


def rng(seed: Optional[int] = None) -> np.random.Generator:
    """A generator: a fresh one seeded with ``seed``, else the shared global one."""
    return np.random.default_rng(seed) if seed is not None else _RNG


def get_uid(prefix: str) -> int:
    """Per-prefix counter used for default names (``dense``, ``dense_1``, ...)."""
    _UIDS[prefix] = _UIDS.get(prefix, 0) + 1
    return _UIDS[prefix]


def reset_uids() -> None:
    """Forget name counters (Keras's ``clear_session`` for names)."""
    _UIDS.clear()


def clear_session() -> None:
    """Keras's ``keras.backend.clear_session()``: reset the default-name counters, so the next
    ``Dense`` is named ``dense`` again. rnnkit keeps no other global graph state (layers are
    plain Python objects freed with their last reference)."""
    reset_uids()


def unique_name(prefix: str) -> str:
    """``prefix`` the first time, then ``prefix_1``, ``prefix_2``, ... (Keras naming)."""
    n = get_uid(prefix)
    return prefix if n == 1 else f"{prefix}_{n - 1}"


def snake_case(name: str) -> str:
    """Keras's class-name -> layer-name rule: ``SimpleRNN`` -> ``simple_rnn``."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def as_float(x: object, dtype: Union[str, np.dtype], name: str) -> np.ndarray:
    """Convert ``x`` to a float array of ``dtype``, raising a TypeError naming ``name``."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(f"`{name}` must be array-like, got {type(x).__name__}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"`{name}` must hold numbers, got dtype {arr.dtype}")
    return arr.astype(dtype, copy=False)


def plain_deepcopy(obj: object, memo: Dict[int, object]) -> object:
    """What ``copy.deepcopy`` does for an object without ``__reduce__``: a new instance of the
    same class whose ``__dict__`` is a deep copy of ``obj``'s. Classes that pickle through
    rnnkit's format (or refuse to pickle) keep ``deepcopy`` working with this."""
    cls = type(obj)
    new = cls.__new__(cls)
    memo[id(obj)] = new
    for key, value in obj.__dict__.items():
        new.__dict__[key] = copy.deepcopy(value, memo)
    return new
