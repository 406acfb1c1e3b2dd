"""Learning-rate schedules with Keras 3 formulas, defaults and configs.

A schedule is called with the optimizer's step count (``optimizer.iterations`` before the
update, the raw count of ``apply`` calls when gradients are accumulated) and returns the
learning rate. Arithmetic follows Keras on the TensorFlow backend: every quantity is cast to
floatx (float32 by default) before it is combined, so the values match Keras's to the last
bit or so (cos/log may differ by one ulp).

* ExponentialDecay: ``lr0 * rate ** (step / decay_steps)`` (``floor`` of the exponent with
  ``staircase``).
* PiecewiseConstantDecay: ``values[0]`` for ``step <= boundaries[0]``, ``values[i]`` for
  ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last boundary.
* PolynomialDecay: ``(lr0 - end) * (1 - s / d) ** power + end`` with ``s = min(step, d)``;
  with ``cycle`` ``d = decay_steps * ceil(step / decay_steps)`` (1 multiple at step 0).
* InverseTimeDecay: ``lr0 / (1 + rate * step / decay_steps)`` (``floor`` with staircase).
* CosineDecay: optional linear warmup from ``lr0`` to ``warmup_target`` over
  ``warmup_steps``, then ``from * ((1 - alpha) * 0.5 * (1 + cos(pi * s / d)) + alpha)``.
* CosineDecayRestarts (SGDR): cosine periods of ``first_decay_steps * t_mul**i`` steps
  scaled by ``m_mul**i``.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Type, Union

import numpy as np

from .. import backend

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay",
           "PolynomialDecay", "InverseTimeDecay", "CosineDecay", "CosineDecayRestarts",
           "serialize", "deserialize", "get"]


def _fx() -> Any:
    """The floatx scalar type (np.float32 by default): Keras casts everything to it."""
    return np.dtype(backend.floatx()).type


def _number(value: Any, arg: str, cls: str, positive: bool = False,
            allow_none: bool = False) -> Any:
    """Check that ``value`` is a finite real number (``> 0`` if ``positive``)."""
    if value is None and allow_none:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(float(value))):
        raise ValueError(f"{cls}: argument `{arg}` must be a finite number. Received: "
                         f"{arg}={value!r}")
    if positive and value <= 0:
        raise ValueError(f"Argument `{arg}` must be > 0. Received: {arg}={value}")
    return value


def _bool(value: Any, arg: str, cls: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{cls}: argument `{arg}` must be a boolean. Received: "
                         f"{arg}={value!r}")
    return bool(value)


def _name(value: Any, cls: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{cls}: argument `name` must be a string. Received: name={value!r}")
    return value


class LearningRateSchedule:
    """Base class of learning-rate schedules.

    Subclasses implement ``__call__(step) -> float`` (``step``: the optimizer's iteration
    count, an int) and, to be serialisable, ``get_config()``; ``from_config`` calls the
    constructor with the config's entries.
    """

    def __call__(self, step: Any) -> Any:
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must "
                                  "override `__call__(self, step)`.")

    def get_config(self) -> Dict[str, Any]:
        """Constructor arguments (JSON-serialisable)."""
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must "
                                  "override `get_config()` in order to be serializable.")

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "LearningRateSchedule":
        """Rebuild from :meth:`get_config`."""
        return cls(**config)


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (floored exponent
    with ``staircase=True``)."""

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False, name: str = "ExponentialDecay") -> None:
        c = type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate", c)
        self.decay_steps = _number(decay_steps, "decay_steps", c, positive=True)
        self.decay_rate = _number(decay_rate, "decay_rate", c)
        self.staircase = _bool(staircase, "staircase", c)
        self.name = _name(name, c)

    def __call__(self, step: Any) -> Any:
        f = _fx()
        p = f(step) / f(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return f(self.initial_learning_rate) * np.power(f(self.decay_rate), p)

    def get_config(self) -> Dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` on the i-th interval of ``boundaries`` (right-closed intervals)."""

    def __init__(self, boundaries: Sequence[float], values: Sequence[float],
                 name: str = "PiecewiseConstant") -> None:
        c = type(self).__name__
        if not isinstance(boundaries, (list, tuple)) or not isinstance(values, (list, tuple)):
            raise ValueError(f"{c}: `boundaries` and `values` must be lists of numbers. "
                             f"Received: boundaries={boundaries!r}, values={values!r}")
        if len(boundaries) != len(values) - 1:
            raise ValueError("The length of boundaries should be 1 less than the length of "
                             f"values. Received: boundaries={boundaries} of length "
                             f"{len(boundaries)}, and values={values} of length {len(values)}.")
        for i, b in enumerate(boundaries):
            _number(b, f"boundaries[{i}]", c)
        for i, v in enumerate(values):
            _number(v, f"values[{i}]", c)
        self.boundaries, self.values = list(boundaries), list(values)
        self.name = _name(name, c)

    def __call__(self, step: Any) -> Any:
        f = _fx()
        # Keras casts the boundaries to the step's dtype (int64 for optimizer.iterations).
        integral = isinstance(step, (int, np.integer))
        bs = [int(b) if integral else b for b in self.boundaries]
        vs = [f(v) for v in self.values]
        out = f(0)
        out += f(step <= bs[0]) * vs[0]
        out += f(step > bs[-1]) * vs[-1]
        for low, high, v in zip(bs[:-1], bs[1:], vs[1:-1]):
            out += f(low < step <= high) * v
        return out

    def get_config(self) -> Dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """``(lr0 - end) * (1 - min(step, decay_steps) / decay_steps) ** power + end``; with
    ``cycle`` the horizon is the first multiple of ``decay_steps`` at or after ``step``."""

    def __init__(self, initial_learning_rate: float, decay_steps: float,
                 end_learning_rate: float = 0.0001, power: float = 1.0, cycle: bool = False,
                 name: str = "PolynomialDecay") -> None:
        c = type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate", c)
        self.decay_steps = _number(decay_steps, "decay_steps", c, positive=True)
        self.end_learning_rate = _number(end_learning_rate, "end_learning_rate", c)
        self.power = _number(power, "power", c)
        self.cycle = _bool(cycle, "cycle", c)
        self.name = _name(name, c)

    def __call__(self, step: Any) -> Any:
        f = _fx()
        lr0, end, power = f(self.initial_learning_rate), f(self.end_learning_rate), f(self.power)
        s, d = f(step), f(self.decay_steps)
        if self.cycle:
            mult = f(1) if s == 0 else np.ceil(s / f(self.decay_steps))
            d = d * mult
        else:
            s = np.minimum(s, d)
        p = s / d
        return (lr0 - end) * np.power(f(1) - p, power) + end

    def get_config(self) -> Dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """``lr0 / (1 + decay_rate * step / decay_steps)`` (floored ratio with staircase)."""

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False, name: str = "InverseTimeDecay") -> None:
        c = type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate", c)
        self.decay_steps = _number(decay_steps, "decay_steps", c, positive=True)
        self.decay_rate = _number(decay_rate, "decay_rate", c)
        self.staircase = _bool(staircase, "staircase", c)
        self.name = _name(name, c)

    def __call__(self, step: Any) -> Any:
        f = _fx()
        p = f(step) / f(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return f(self.initial_learning_rate) / (f(1) + f(self.decay_rate) * p)

    def get_config(self) -> Dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


def _cosine(s: Any, d: Any, start: Any, alpha: float) -> Any:
    """``start * ((1 - alpha) * 0.5 * (1 + cos(pi * s / d)) + alpha)`` in floatx."""
    f = _fx()
    decayed = f(0.5) * (f(1) + np.cos(f(math.pi) * (s / d)))
    return start * (f(1 - alpha) * decayed + f(alpha))


class CosineDecay(LearningRateSchedule):
    """Cosine decay from ``initial_learning_rate`` (or, after a linear warmup of
    ``warmup_steps`` steps, from ``warmup_target``) to ``alpha`` times it."""

    def __init__(self, initial_learning_rate: float, decay_steps: float, alpha: float = 0.0,
                 name: str = "CosineDecay", warmup_target: Optional[float] = None,
                 warmup_steps: float = 0) -> None:
        c = type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate", c)
        self.decay_steps = _number(decay_steps, "decay_steps", c, positive=True)
        self.alpha = _number(alpha, "alpha", c)
        self.name = _name(name, c)
        self.warmup_target = _number(warmup_target, "warmup_target", c, allow_none=True)
        self.warmup_steps = _number(warmup_steps, "warmup_steps", c)
        if self.warmup_steps < 0:
            raise ValueError(f"{c}: argument `warmup_steps` must be >= 0. Received: "
                             f"warmup_steps={warmup_steps}")

    def __call__(self, step: Any) -> Any:
        f = _fx()
        lr0, d, s = f(self.initial_learning_rate), f(self.decay_steps), f(step)
        if self.warmup_target is None:
            return _cosine(np.minimum(s, d), d, lr0, self.alpha)
        target, ws = f(self.warmup_target), f(self.warmup_steps)
        s = np.minimum(s, d + ws)
        if s < ws:  # linear warmup
            return (target - lr0) * (s / ws) + lr0
        return _cosine(s - ws, d, target, self.alpha)

    def get_config(self) -> Dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """SGDR: cosine decay restarted after ``first_decay_steps * t_mul**i`` steps, the i-th
    period starting from ``m_mul**i`` times the initial rate."""

    def __init__(self, initial_learning_rate: float, first_decay_steps: float,
                 t_mul: float = 2.0, m_mul: float = 1.0, alpha: float = 0.0,
                 name: str = "SGDRDecay") -> None:
        c = type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate", c)
        self.first_decay_steps = _number(first_decay_steps, "first_decay_steps", c,
                                         positive=True)
        self._t_mul = _number(t_mul, "t_mul", c, positive=True)
        self._m_mul = _number(m_mul, "m_mul", c)
        self.alpha = _number(alpha, "alpha", c)
        self.name = _name(name, c)

    def __call__(self, step: Any) -> Any:
        f = _fx()
        one = f(1)
        t_mul, m_mul, alpha = f(self._t_mul), f(self._m_mul), f(self.alpha)
        frac = f(step) / f(self.first_decay_steps)
        if t_mul == one:
            i = np.floor(frac)
            frac = frac - i
        else:  # period i spans sum_{k<i} t_mul^k <= frac < sum_{k<=i} t_mul^k
            i = np.floor(np.log(one - frac * (one - t_mul)) / np.log(t_mul))
            sum_r = (one - np.power(t_mul, i)) / (one - t_mul)
            frac = (frac - sum_r) / np.power(t_mul, i)
        decayed = f(0.5) * np.power(m_mul, i) * (one + np.cos(f(math.pi) * frac))
        return f(self.initial_learning_rate) * ((one - alpha) * decayed + alpha)

    def get_config(self) -> Dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self._t_mul,
                "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


_CLASSES: Dict[str, Type[LearningRateSchedule]] = {c.__name__: c for c in (
    ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay, InverseTimeDecay, CosineDecay,
    CosineDecayRestarts)}


def serialize(schedule: LearningRateSchedule) -> Dict[str, Any]:
    """``{"class_name", "config"}`` of ``schedule`` (its class must define get_config)."""
    if not isinstance(schedule, LearningRateSchedule):
        raise ValueError(f"serialize: expected a LearningRateSchedule, got {schedule!r}")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: Dict[str, Any],
                custom_objects: Optional[Dict[str, type]] = None) -> LearningRateSchedule:
    """Rebuild a schedule from :func:`serialize` output (built-in classes, or classes named
    in ``custom_objects``)."""
    known: Dict[str, type] = {**_CLASSES, **(custom_objects or {})}
    if (not isinstance(config, dict) or not isinstance(config.get("class_name"), str)
            or config["class_name"] not in known):
        name = config.get("class_name") if isinstance(config, dict) else config
        raise ValueError(f"Unknown learning rate schedule: {name!r}; expected one of "
                         f"{sorted(known)}")
    cfg = config.get("config", {})
    if not isinstance(cfg, dict):
        raise ValueError(f"learning rate schedule config must be a dict, got {cfg!r}")
    return known[config["class_name"]].from_config(dict(cfg))


def get(identifier: Union[LearningRateSchedule, Dict[str, Any]]) -> LearningRateSchedule:
    """A schedule instance, or one rebuilt from a ``{"class_name", "config"}`` dict."""
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    return deserialize(identifier)
