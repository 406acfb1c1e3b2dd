"""Optimizers with Keras 3 update formulas, defaults and gradient clipping.

Per step (Keras 3 ``BaseOptimizer.apply``): clip the gradients (``clipnorm`` per tensor,
``global_clipnorm`` over all, or ``clipvalue``; at most one), apply ``weight_decay``
(``w -= w * wd * lr``), run ``update_step`` for every variable with the current learning
rate, then ``iterations += 1``. Arithmetic happens in each variable's dtype (the learning
rate is cast to it, as Keras does), so float32 models update in float32.

Formulas (g = gradient, lr = learning rate, t = iterations + 1):

* SGD: ``m = momentum*m - lr*g``; ``w += m`` (or ``w += momentum*m - lr*g`` with nesterov);
  without momentum ``w -= lr*g``.
* Adam: ``alpha = lr*sqrt(1-b2^t)/(1-b1^t)``; ``m += (g-m)(1-b1)``; ``v += (g^2-v)(1-b2)``;
  amsgrad: ``vhat = max(vhat, v)``; ``w -= alpha*m / (sqrt(v or vhat) + eps)``.
* RMSprop: ``v = rho*v + (1-rho)g^2``; centered: ``a = rho*a + (1-rho)g``, denominator
  ``v - a^2 + eps`` else ``v + eps``; ``inc = lr*g/sqrt(den)``; momentum:
  ``mom = momentum*mom + inc; w -= mom`` else ``w -= inc``.
* Adagrad: ``acc += g^2`` (acc starts at 0.1); ``w -= lr*g / sqrt(acc + eps)``.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from . import backend

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "get", "serialize"]

LearningRate = Union[float, Callable[[int], float]]


class Optimizer:
    """Base class. Subclasses define ``_slots`` (state names) and ``update_step``."""

    _slots: Sequence[str] = ()

    def __init__(self, learning_rate: LearningRate = 0.001, weight_decay: Optional[float] = None,
                 clipnorm: Optional[float] = None, clipvalue: Optional[float] = None,
                 global_clipnorm: Optional[float] = None, name: Optional[str] = None,
                 **kwargs: Any) -> None:
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {sorted(kwargs)}")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be "
                             f"set. Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                             f"global_clipnorm={global_clipnorm}")
        if not callable(learning_rate):
            if not isinstance(learning_rate, (int, float)) or isinstance(learning_rate, bool):
                raise TypeError("`learning_rate` must be a float or a callable(step) -> float, "
                                f"got {learning_rate!r}")
            learning_rate = float(learning_rate)
        self._learning_rate: LearningRate = learning_rate
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.name = name or backend.snake_case(type(self).__name__)
        self.iterations = 0
        self.built = False
        self._state: Dict[str, List[np.ndarray]] = {}

    # -- learning rate ------------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """Current learning rate (a schedule is evaluated at ``iterations``)."""
        lr = self._learning_rate
        return float(lr(self.iterations)) if callable(lr) else lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(f"`learning_rate` must be a number, got {value!r}")
        # Keras keeps the rate in a floatx variable: round through that dtype.
        self._learning_rate = float(np.asarray(value, dtype=backend.floatx()))

    # -- state --------------------------------------------------------------------------
    def _init_slot(self, name: str, w: np.ndarray) -> np.ndarray:
        return np.zeros_like(w)

    def build(self, variables: Sequence[np.ndarray]) -> None:
        """Create the per-variable state (momenta, velocities...)."""
        self._state = {s: [self._init_slot(s, w) for w in variables] for s in self._slots}
        self.built = True

    @property
    def variables(self) -> List[np.ndarray]:
        """Optimizer state arrays: ``[iterations]`` then each slot for every variable."""
        out: List[np.ndarray] = [np.asarray(self.iterations, dtype=np.int64)]
        for s in self._slots:
            out.extend(self._state.get(s, []))
        return out

    def set_state(self, arrays: Sequence[np.ndarray], variables: Sequence[np.ndarray]) -> None:
        """Restore :attr:`variables` (as saved) for model ``variables``."""
        self.build(variables)
        arrays = list(arrays)
        expected = 1 + len(self._slots) * len(variables)
        if len(arrays) != expected:
            raise ValueError(f"optimizer state holds {len(arrays)} arrays, expected {expected}")
        self.iterations = int(arrays[0])
        k = 1
        for s in self._slots:
            for i, w in enumerate(variables):
                if arrays[k].shape != w.shape:
                    raise ValueError(f"optimizer slot {s!r} #{i} has shape {arrays[k].shape}, "
                                     f"expected {w.shape}")
                self._state[s][i] = np.array(arrays[k], dtype=w.dtype)
                k += 1

    # -- update -------------------------------------------------------------------------
    def _clip(self, grads: List[np.ndarray]) -> List[np.ndarray]:
        if self.clipnorm is not None and self.clipnorm > 0:
            out = []
            for g in grads:
                norm = np.sqrt(np.sum(np.square(g)))
                out.append(g * g.dtype.type(self.clipnorm) / np.maximum(norm, g.dtype.type(self.clipnorm)))
            return out
        if self.global_clipnorm is not None and self.global_clipnorm > 0:
            norm = np.sqrt(sum(float(np.sum(np.square(g.astype(np.float64)))) for g in grads))
            scale = self.global_clipnorm * min(1.0 / norm if norm > 0 else np.inf,
                                               1.0 / self.global_clipnorm)
            return [g * g.dtype.type(scale) for g in grads]
        if self.clipvalue is not None and self.clipvalue > 0:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def apply(self, grads: Sequence[np.ndarray], variables: Sequence[np.ndarray]) -> None:
        """Update ``variables`` in place from ``grads`` (same order, same shapes)."""
        if len(grads) != len(variables):
            raise ValueError(f"got {len(grads)} gradients for {len(variables)} variables")
        if not self.built:
            self.build(variables)
        grads = self._clip([np.asarray(g, dtype=w.dtype) for g, w in zip(grads, variables)])
        lr = self.learning_rate
        for i, (g, w) in enumerate(zip(grads, variables)):
            lr_t = w.dtype.type(np.float32(lr)) if backend.floatx() == "float32" else w.dtype.type(lr)
            if self.weight_decay:
                w -= w * w.dtype.type(self.weight_decay) * lr_t
            self.update_step(i, g, w, lr_t)
        self.iterations += 1

    def apply_gradients(self, grads_and_vars: Sequence[Any]) -> None:
        """Keras-style ``[(grad, variable), ...]`` entry point."""
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:  # pragma: no cover
        """Update variable ``i`` (``w``, in place) from gradient ``g``."""
        raise NotImplementedError

    # -- config -------------------------------------------------------------------------
    def get_config(self) -> Dict[str, Any]:
        """Constructor arguments, JSON-serialisable (a callable rate is not serialisable)."""
        lr = self._learning_rate
        return {"name": self.name, "learning_rate": lr if not callable(lr) else self.learning_rate,
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Optimizer":
        """Rebuild from :meth:`get_config`."""
        return cls(**config)


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum. Keras 3 default lr 0.01."""

    def __init__(self, learning_rate: LearningRate = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        if not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be a float between [0, 1], got {momentum!r}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self._slots = ("momentum",) if self.momentum != 0 else ()

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        if self.momentum == 0:
            w -= g * lr
            return
        mom = w.dtype.type(self.momentum)
        m = self._state["momentum"][i]
        m[...] = m * mom - g * lr
        if self.nesterov:
            w += m * mom - g * lr
        else:
            w += m

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (optionally AMSGrad). Keras 3 defaults: lr 1e-3, betas 0.9/0.999, eps 1e-7."""

    def __init__(self, learning_rate: LearningRate = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.amsgrad = bool(amsgrad)
        self._slots = ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        f = w.dtype.type
        t = f(self.iterations + 1)
        b1, b2 = f(self.beta_1), f(self.beta_2)
        alpha = lr * np.sqrt(f(1) - b2 ** t) / (f(1) - b1 ** t)
        m, v = self._state["momentum"][i], self._state["velocity"][i]
        m += (g - m) * (f(1) - b1)
        v += (np.square(g) - v) * (f(1) - b2)
        if self.amsgrad:
            vh = self._state["velocity_hat"][i]
            np.maximum(vh, v, out=vh)
            v = vh
        w -= (m * alpha) / (np.sqrt(v) + f(self.epsilon))

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class RMSprop(Optimizer):
    """RMSprop (optional momentum, centered). Keras 3 defaults: lr 1e-3, rho 0.9, eps 1e-7."""

    def __init__(self, learning_rate: LearningRate = 0.001, rho: float = 0.9,
                 momentum: float = 0.0, epsilon: float = 1e-7, centered: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)
        self._slots = (("velocity",) + (("momentum",) if self.momentum > 0 else ())
                       + (("average_gradient",) if self.centered else ()))

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        f = w.dtype.type
        rho = f(self.rho)
        v = self._state["velocity"][i]
        v[...] = rho * v + (f(1) - rho) * np.square(g)
        if self.centered:
            a = self._state["average_gradient"][i]
            a[...] = rho * a + (f(1) - rho) * g
            den = v - np.square(a) + f(self.epsilon)
        else:
            den = v + f(self.epsilon)
        inc = (lr * g) / np.sqrt(den)
        if self.momentum > 0:
            mom = self._state["momentum"][i]
            mom[...] = f(self.momentum) * mom + inc
            w -= mom
        else:
            w -= inc

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad. Keras 3 defaults: lr 1e-3, initial accumulator 0.1, eps 1e-7."""

    def __init__(self, learning_rate: LearningRate = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)
        self._slots = ("accumulator",)

    def _init_slot(self, name: str, w: np.ndarray) -> np.ndarray:
        return np.full_like(w, self.initial_accumulator_value)

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:
        acc = self._state["accumulator"][i]
        acc += np.square(g)
        w -= (lr * g) / np.sqrt(acc + w.dtype.type(self.epsilon))

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


_BY_NAME = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adagrad": Adagrad}
_CLASSES = {c.__name__: c for c in _BY_NAME.values()}


def get(identifier: Union[str, Optimizer, Dict[str, Any]]) -> Optimizer:
    """Resolve ``"sgd"``/``"adam"``/``"rmsprop"``/``"adagrad"``, a config dict or an Optimizer."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(f"Unknown optimizer: {identifier!r}; expected an Optimizer or one of "
                     f"{sorted(_BY_NAME)}")


def serialize(opt: Optimizer) -> Dict[str, Any]:
    """``{"class_name", "config"}`` for configs."""
    return {"class_name": type(opt).__name__, "config": opt.get_config()}
