"""Weight and activity regularizers with Keras 3 names, defaults and formulas.

A regularizer maps an array ``x`` to a scalar penalty that training adds to the loss:

* ``L1(l1=0.01)``: ``l1 * sum(|x|)``; gradient ``l1 * sign(x)`` (0 at 0, as TensorFlow).
* ``L2(l2=0.01)``: ``l2 * sum(x**2)``; gradient ``2 * l2 * x``.
* ``L1L2(l1=0.0, l2=0.0)``: both. Names: ``"l1l2"`` gives ``L1L2()`` (as Keras 3);
  ``"l1_l2"`` gives ``L1L2(l1=0.01, l2=0.01)`` (Keras 2, and Keras 3's documentation).
* ``OrthogonalRegularizer(factor=0.01, mode="rows")``: for a 2-D ``x``, the rows (or columns)
  normalised to unit L2 norm (``x * rsqrt(max(sum x**2, 1e-14))``, Keras's ``normalize``),
  ``factor * 0.5 * sum(|P - diag(P)|) / (n (n - 1) / 2)`` with ``P`` their Gram matrix.

Each regularizer has ``__call__(x) -> float`` and ``gradient(x) -> array`` (the hand-written
derivative training needs). Where they act:

* weight regularizers (``kernel_regularizer`` ...): the layer records them on its
  :class:`~rnnkit.layers.base.Weight`; the trainer adds ``penalty(weight)`` of every trainable
  weight to the loss and ``gradient(weight)`` to its gradient (:func:`weight_penalties`).
* ``activity_regularizer``: the layer's output ``y`` of batch ``B`` costs ``penalty(y) / B``
  (Keras 3 divides by the batch size); :func:`collect_activity` gathers those penalties during
  a forward pass, and the layer adds ``gradient(y) / B`` to ``dL/dy`` in its backward.
"""
from __future__ import annotations

import contextlib
import math
import threading
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

__all__ = ["Regularizer", "L1", "L2", "L1L2", "OrthogonalRegularizer", "get", "serialize",
           "deserialize", "weight_penalties", "collect_activity"]


def _factor(value: Any, name: str) -> float:
    """Keras's ``validate_float_arg``: a finite number >= 0."""
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer))
            or not math.isfinite(float(value)) or value < 0):
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative float. "
                         f"Received: {name}={value!r}")
    return float(value)


class Regularizer:
    """Base class: ``__call__(x)`` (the penalty), ``gradient(x)`` and ``get_config()``."""

    def __call__(self, x: np.ndarray) -> float:
        return 0.0

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """``d penalty / d x``, same shape and dtype as ``x``."""
        return np.zeros_like(x)

    def get_config(self) -> Dict[str, Any]:
        """Constructor arguments, JSON-serialisable."""
        return {}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Regularizer":
        """Rebuild from :meth:`get_config`."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x**2)`` (both factors default to 0, as Keras 3)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _factor(0.0 if l1 is None else l1, "l1")
        self.l2 = _factor(0.0 if l2 is None else l2, "l2")

    def __call__(self, x: np.ndarray) -> float:
        x = np.asarray(x)
        out = 0.0
        if self.l1:
            out += self.l1 * float(np.abs(x).sum())
        if self.l2:
            out += self.l2 * float(np.square(x).sum())
        return out

    def gradient(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        g = np.zeros_like(x)
        if self.l1:
            g += np.asarray(self.l1, x.dtype) * np.sign(x)
        if self.l2:
            g += np.asarray(2.0 * self.l2, x.dtype) * x
        return g

    def get_config(self) -> Dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|x|)``; ``"l1"`` gives ``L1(0.01)``."""

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=0.01 if l1 is None else l1, l2=0.0)

    def get_config(self) -> Dict[str, Any]:
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(x**2)``; ``"l2"`` gives ``L2(0.01)``."""

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l1=0.0, l2=0.01 if l2 is None else l2)

    def get_config(self) -> Dict[str, Any]:
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (``mode="rows"``) or columns of a 2-D weight towards orthogonality
    (see the module docstring for the formula)."""

    _EPS2 = 1e-7 * 1e-7  # Keras normalize(): rsqrt(max(sum of squares, epsilon**2))

    def __init__(self, factor: float = 0.01, mode: str = "rows") -> None:
        self.factor = _factor(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ValueError('Invalid value for argument `mode`. Expected one of '
                             f'{{"rows", "columns"}}. Received: mode={mode!r}')
        self.mode = mode

    def _rows(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError("Inputs to OrthogonalRegularizer must have rank 2. Received: "
                             f"inputs.shape={x.shape}")
        return x if self.mode == "rows" else x.T

    def _parts(self, a: np.ndarray) -> Any:
        s = np.square(a).sum(axis=1, keepdims=True)            # (n, 1) squared row norms
        r = 1.0 / np.sqrt(np.maximum(s, self._EPS2))           # (n, 1)
        u = a * r                                              # unit rows
        p = u @ u.T                                            # (n, n) Gram matrix
        n = a.shape[0]
        off = 1.0 - np.eye(n, dtype=a.dtype)
        c = self.factor * 0.5 / (n * (n - 1.0) / 2.0)          # n = 1 -> inf/nan, as Keras
        return s, r, u, p, off, c

    def __call__(self, x: np.ndarray) -> float:
        a = self._rows(x)
        _, _, _, p, off, c = self._parts(a)
        return float(c * np.abs(p * off).sum())

    def gradient(self, x: np.ndarray) -> np.ndarray:
        a = self._rows(x)
        s, r, u, p, off, c = self._parts(a)
        g = c * np.sign(p) * off                               # dL/dP, symmetric
        du = 2.0 * g @ u                                       # dL/du (P = u u^T)
        # u = a * r(s), r = s^-1/2 where s > eps^2 (else constant): dr/ds = -r^3 / 2.
        live = (s > self._EPS2)
        da = du * r - live * (du * a).sum(axis=1, keepdims=True) * r ** 3 * a
        da = da.astype(np.asarray(x).dtype, copy=False)
        return da if self.mode == "rows" else da.T

    def get_config(self) -> Dict[str, Any]:
        return {"factor": self.factor, "mode": self.mode}


_CLASSES = {c.__name__: c for c in (Regularizer, L1, L2, L1L2, OrthogonalRegularizer)}
# Keras 3 resolves "l1", "l2", "l1l2" (L1L2() -- both factors 0) and "orthogonal_regularizer";
# "l1_l2" (Keras 2's name, and what Keras 3's docs promise) is L1L2(l1=0.01, l2=0.01).
_BY_NAME: Dict[str, Any] = {"l1": L1, "l2": L2, "l1l2": L1L2,
                            "l1_l2": lambda: L1L2(l1=0.01, l2=0.01),
                            "orthogonal_regularizer": OrthogonalRegularizer, **_CLASSES}


def serialize(reg: Optional[Regularizer]) -> Optional[Dict[str, Any]]:
    """``{"class_name": "L2", "config": {"l2": 0.01}}`` (Keras's form), or None."""
    if reg is None:
        return None
    if not isinstance(reg, Regularizer):
        raise ValueError(f"Could not serialize regularizer {reg!r}")
    return {"class_name": type(reg).__name__, "config": reg.get_config()}


def deserialize(config: Dict[str, Any]) -> Regularizer:
    """Inverse of :func:`serialize` (known class names only)."""
    if not isinstance(config, dict) or config.get("class_name") not in _CLASSES:
        raise ValueError(f"Could not interpret regularizer config {config!r}; known classes: "
                         f"{sorted(_CLASSES)}")
    cfg = config.get("config") or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"regularizer config must be a dict, got {cfg!r}")
    return _CLASSES[config["class_name"]].from_config(cfg)


def get(identifier: Union[None, str, Dict[str, Any], Regularizer, type]) -> Optional[Regularizer]:
    """Resolve None, a name (``"l2"``), a config dict, a class or a :class:`Regularizer`.

    Plain Python functions are refused: training needs each penalty's gradient, which only
    :class:`Regularizer` subclasses (``__call__`` + ``gradient``) provide."""
    if identifier is None:
        return None
    if isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if isinstance(identifier, type) and issubclass(identifier, Regularizer):
        return identifier()
    raise ValueError(f"Could not interpret regularizer identifier: {identifier!r}; expected "
                     f"None, one of {sorted(k for k in _BY_NAME if k[0].islower())}, a config "
                     "dict or an rnnkit.regularizers.Regularizer (which has a gradient)")


# -- what training uses -------------------------------------------------------------------
def weight_penalties(weights: Sequence[Any], add_grads: bool = True) -> float:
    """Sum of ``w.regularizer(w.value)`` over ``weights`` that have one; with ``add_grads``
    each penalty's gradient is added to ``w.grad`` (set when None)."""
    total = 0.0
    for w in weights:
        reg = getattr(w, "regularizer", None)
        if reg is None:
            continue
        total += float(reg(w.value))
        if add_grads:
            g = reg.gradient(w.value).astype(w.value.dtype, copy=False)
            w.grad = g if w.grad is None else w.grad + g
    return total


_ACTIVE = threading.local()


class ActivityLosses:
    """The activity penalties recorded during one forward pass (see :func:`collect_activity`)."""

    def __init__(self) -> None:
        self.values: List[float] = []

    @property
    def total(self) -> float:
        """Their sum."""
        return float(sum(self.values))


@contextlib.contextmanager
def collect_activity() -> Iterator[ActivityLosses]:
    """Layers with an ``activity_regularizer`` that run inside this block (this thread)
    append their penalty (already divided by the batch size) to the yielded object."""
    previous = getattr(_ACTIVE, "sink", None)
    sink = ActivityLosses()
    _ACTIVE.sink = sink
    try:
        yield sink
    finally:
        _ACTIVE.sink = previous


def record_activity(value: float) -> None:
    """Called by layers: add an activity penalty to the innermost open collector, if any."""
    sink = getattr(_ACTIVE, "sink", None)
    if sink is not None:
        sink.values.append(float(value))
