"""Losses with Keras 3 formulas, reduction and masking, plus their gradients.

A loss maps ``(y_true, y_pred)`` to per-sample values ``L`` of shape ``y_pred.shape[:-1]``
(the last axis is reduced: mean for mse/mae/bce, sum for crossentropies). Reduction is Keras's
``"sum_over_batch_size"`` by default: ``sum(L * w) / L.size``. A mask (from ``Embedding``/
``Masking`` through the model) enters as Keras 3 ``apply_mask`` does: weights
``mask * L.size / valid`` (0 when nothing is valid), i.e. the mean over unmasked entries.

Crossentropies follow Keras 3.15's TensorFlow backend exactly: probabilities are clipped
to ``[eps, 1-eps]`` (``eps = 1e-7``; categorical: renormalised first) with no further eps in
the logs; with ``from_logits=True`` -- or when ``y_pred`` is the very output of a sigmoid /
softmax activation, whose logits it carries (:mod:`rnnkit.logits`) -- the exact log-softmax
/ softplus forms are used, and the training gradient skips the activation's derivative.

The other Keras losses (Huber, LogCosh, MAPE, MSLE, KLDivergence, Poisson, CosineSimilarity,
Hinge, SquaredHinge, CategoricalHinge) are in :mod:`rnnkit.loss_functions`; custom function
losses and the finite-difference gradient in :mod:`rnnkit.custom_losses`. All are importable
from here.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np

from . import backend
from . import logits as logits_mod
from .logits import LogitsGradient

__all__ = ["Loss", "MeanSquaredError", "MeanAbsoluteError", "BinaryCrossentropy",
           "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "Huber", "LogCosh",
           "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "KLDivergence",
           "Poisson", "CosineSimilarity", "Hinge", "SquaredHinge", "CategoricalHinge",
           "LossFunctionWrapper", "get", "serialize", "is_serializable",
           "mean_squared_error", "mean_absolute_error", "binary_crossentropy",
           "categorical_crossentropy", "sparse_categorical_crossentropy", "mse", "mae",
           "huber", "log_cosh", "mean_absolute_percentage_error", "mape",
           "mean_squared_logarithmic_error", "msle", "kl_divergence", "kld", "poisson",
           "cosine_similarity", "hinge", "squared_hinge", "categorical_hinge"]

_REDUCTIONS = ("sum_over_batch_size", "sum", "none", None)


def _match_rank(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Keras's squeeze_or_expand_to_same_rank for targets: (B,) vs (B, 1) etc."""
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y_true = y_true[..., None]
    elif y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape:
        raise ValueError(f"`y` has shape {y_true.shape} but the model output has shape "
                         f"{y_pred.shape}; they must match")
    return y_true


class Loss:
    """Base class of every loss; subclass it for a custom loss.

    Subclasses define ``call(y_true, y_pred)`` -> per-sample values (shape a leading part of
    ``y_pred.shape``, usually ``y_pred.shape[:-1]``) and, for an exact gradient,
    ``call_grad(y_true, y_pred, dl)`` -> ``dL/dy_pred`` where ``dl`` (shape of the values)
    is ``d(total)/d(value)`` (the reduction and sample weights folded in). Without
    ``call_grad`` the gradient is computed by central finite differences
    (:func:`rnnkit.custom_losses.numerical_gradient`; see there for cost and accuracy).
    ``prepare`` converts the targets (float, same rank as ``y_pred`` by default).

    Crossentropies additionally compute from the logits of a sigmoid / softmax output
    (Keras's TensorFlow backend; see :mod:`rnnkit.logits`).
    """

    def __init__(self, name: Optional[str] = None, reduction: Optional[str] = "sum_over_batch_size",
                 dtype: Optional[str] = None) -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(f"`reduction` must be one of {_REDUCTIONS}, got {reduction!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be a string, got {name!r}")
        self.name = name or backend.snake_case(type(self).__name__)
        self.reduction = reduction
        self.dtype = dtype

    # -- to override -------------------------------------------------------------------
    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """Per-sample losses, shape ``y_pred.shape[:-1]``."""
        raise NotImplementedError

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        """``dL/dy_pred`` given ``dl = d(total)/d(per-sample value)``; by default central
        finite differences of :meth:`call` (see :mod:`rnnkit.custom_losses`)."""
        from .custom_losses import numerical_gradient
        return numerical_gradient(self.call, y_true, y_pred, dl, self.name)

    def prepare(self, y_true: Any, y_pred: np.ndarray) -> np.ndarray:
        """Convert targets to the prediction dtype/rank (overridden by the sparse loss)."""
        return _match_rank(backend.as_float(y_true, y_pred.dtype, "y"), y_pred)

    def output_mask(self, y_true: np.ndarray, values: np.ndarray) -> Optional[np.ndarray]:
        """A mask of the per-sample values the loss itself sets (Keras's mask on the loss
        output, e.g. ``ignore_class``), combined with the model's mask; None by default."""
        return None

    def logits_values(self, y_true: np.ndarray, logits: np.ndarray) -> Optional[np.ndarray]:
        """Per-sample values computed from the logits of a sigmoid / softmax output (only
        the crossentropies do; None: use the probabilities)."""
        return None

    def logits_grad(self, y_true: np.ndarray, logits: np.ndarray, dl: np.ndarray) -> np.ndarray:
        """``dL/dlogits`` matching :meth:`logits_values`."""
        raise NotImplementedError

    # -- public ----------------------------------------------------------------------
    def _weights(self, values: np.ndarray, sample_weight: Any, mask: Any) -> np.ndarray:
        w = np.ones_like(values)
        if mask is not None:
            m = np.asarray(mask, dtype=values.dtype)
            if self.reduction == "sum_over_batch_size":
                # Keras 3 apply_mask: valid entries weigh total/valid -> mean over valid ones.
                # Keras 3.15 uses divide_no_nan(total, valid) -- no epsilon in the
                # denominator (an older "+ 1e-7" shifted masked losses by ~1e-7/valid,
                # seen against real Keras in tests/test_keras_parity.py).
                valid = m.sum()
                m = m * (m.size / valid) if valid > 0 else np.zeros_like(m)
            w = w * np.broadcast_to(m.reshape(m.shape + (1,) * (values.ndim - m.ndim)),
                                    values.shape)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=values.dtype)
            if sw.ndim < values.ndim:
                sw = sw.reshape(sw.shape + (1,) * (values.ndim - sw.ndim))
            w = w * np.broadcast_to(sw, values.shape)
        return w

    def _evaluate(self, y_true: Any, y_pred: np.ndarray, mask: Any
                  ) -> Tuple[np.ndarray, Optional[np.ndarray], np.ndarray, Any]:
        """``(targets, logits or None, per-sample values, mask)`` -- the shared first half of
        ``__call__`` and ``value_and_grad``."""
        logits = _keras_logits(self, y_true, y_pred)
        t = self.prepare(y_true, y_pred)
        values = None if logits is None else self.logits_values(t, logits)
        if values is None:
            logits = None
            values = self.call(t, y_pred)
        values = np.asarray(values)
        out_mask = self.output_mask(t, values)
        if out_mask is not None:
            if mask is not None:
                m = np.asarray(mask, bool)
                out_mask = out_mask & m.reshape(m.shape + (1,) * (out_mask.ndim - m.ndim))
            mask = out_mask
        return t, logits, values, mask

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None,
                 mask: Any = None) -> Union[float, np.ndarray]:
        """The reduced loss (a NumPy scalar, or per-sample values with reduction "none")."""
        y_pred = np.asarray(y_pred)
        if not np.issubdtype(y_pred.dtype, np.floating):
            y_pred = y_pred.astype(backend.floatx())
        _, _, values, mask = self._evaluate(y_true, y_pred, mask)
        w = self._weights(values, sample_weight, mask)
        if self.reduction in ("none", None):
            return values * w
        total = (values * w).sum(dtype=values.dtype)
        if self.reduction == "sum_over_batch_size":
            total = total / values.dtype.type(max(values.size, 1))
        return total

    def value_and_grad(self, y_true: Any, y_pred: np.ndarray, sample_weight: Any = None,
                       mask: Any = None) -> Tuple[float, Any]:
        """``(reduced loss, dloss/dy_pred)``; used by the training loop. When the loss was
        computed from the logits of ``y_pred`` the gradient is a
        :class:`~rnnkit.logits.LogitsGradient` (w.r.t. those logits)."""
        if self.reduction in ("none", None):
            raise ValueError("value_and_grad needs a reducing `reduction`, not 'none'")
        t, logits, values, mask = self._evaluate(y_true, y_pred, mask)
        w = self._weights(values, sample_weight, mask)
        total = (values * w).sum(dtype=values.dtype)
        if self.reduction == "sum_over_batch_size":
            n = values.dtype.type(max(values.size, 1))
            total, w = total / n, w / n
        if logits is not None:
            return total, LogitsGradient(self.logits_grad(t, logits, w), y_pred)
        return total, self.call_grad(t, y_pred, w)

    def get_config(self) -> Dict[str, Any]:
        """Constructor arguments, JSON-serialisable."""
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Loss":
        """Rebuild from :meth:`get_config`."""
        return cls(**config)


def _keras_logits(loss: Loss, y_true: Any, y_pred: np.ndarray) -> Optional[np.ndarray]:
    """The logits ``y_pred`` carries, when Keras (TF backend) would use them: the loss is a
    crossentropy and ``y_pred`` reaches it unchanged -- Keras's ``LossFunctionWrapper``
    squeezes ``y_pred`` (B, T, 1) against targets (B, T), and expands a rank-1 ``y_pred``,
    which drops its ``_keras_logits`` (recorded in tests/fixtures/keras_training)."""
    if type(loss).logits_values is Loss.logits_values:
        return None
    z = logits_mod.logits_of(y_pred)
    if z is None:
        return None
    r_true, r_pred = np.ndim(y_true), y_pred.ndim
    if r_pred == r_true + 1 and y_pred.shape[-1] == 1 and r_true != 1:
        return None
    if r_true == r_pred + 1 and np.shape(y_true)[-1] == 1 and r_pred == 1:
        return None
    if getattr(loss, "from_logits", False):
        warnings.warn(f"`{loss.name}` received `from_logits=True`, but the `output` argument "
                      "was produced by a sigmoid / softmax activation and thus does not "
                      "represent logits; its logits are used (as Keras does). Was this "
                      "intended?", UserWarning, stacklevel=4)
    return z.astype(y_pred.dtype, copy=False)


class MeanSquaredError(Loss):
    """``mean((y_pred - y_true)**2, axis=-1)``."""

    def __init__(self, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "mean_squared_error", dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(np.square(y_pred - y_true), axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        n = y_pred.dtype.type(y_pred.shape[-1])
        return (2 * (y_pred - y_true) / n) * dl[..., None]


class MeanAbsoluteError(Loss):
    """``mean(abs(y_pred - y_true), axis=-1)``; the subgradient at 0 is 0 (as TF)."""

    def __init__(self, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "mean_absolute_error", dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(np.abs(y_pred - y_true), axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        n = y_pred.dtype.type(y_pred.shape[-1])
        return (np.sign(y_pred - y_true) / n) * dl[..., None]


def _clip_grad(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Derivative of clip(p, lo, hi): 1 inside the interval, 0 outside (TF's rule)."""
    return ((p >= lo) & (p <= hi)).astype(p.dtype)


def _check_smoothing(value: Any) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.floating))
            or not math.isfinite(value) or not 0 <= value <= 1):
        raise ValueError(f"`label_smoothing` must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_last_axis(axis: Any) -> int:
    if axis != -1 or isinstance(axis, bool):
        raise ValueError(f"`axis` must be -1 (the class axis is the last one in rnnkit), "
                         f"got {axis!r}")
    return -1


def _sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _log_softmax(z: np.ndarray) -> np.ndarray:
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


class _Crossentropy(Loss):
    """A crossentropy written once as ``_values(t, x, from_logits)`` / ``_grad(t, x, dl,
    from_logits)``: the probability path follows ``from_logits``, the logits path (a
    sigmoid / softmax output's logits, see rnnkit.logits) always uses the fused form."""

    from_logits = False

    def _values(self, t: np.ndarray, x: np.ndarray, from_logits: bool) -> np.ndarray:
        raise NotImplementedError

    def _grad(self, t: np.ndarray, x: np.ndarray, dl: np.ndarray, from_logits: bool
              ) -> np.ndarray:
        raise NotImplementedError

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return self._values(y_true, y_pred, self.from_logits)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        return self._grad(y_true, y_pred, dl, self.from_logits)

    def logits_values(self, y_true: np.ndarray, logits: np.ndarray) -> np.ndarray:
        return self._values(y_true, logits, True)

    def logits_grad(self, y_true: np.ndarray, logits: np.ndarray, dl: np.ndarray) -> np.ndarray:
        return self._grad(y_true, logits, dl, True)


class BinaryCrossentropy(_Crossentropy):
    """Binary crossentropy, mean over the last axis (Keras 3, TensorFlow backend).

    Probabilities: ``-(t log p + (1-t) log(1-p))`` with ``p`` clipped to ``[eps, 1-eps]``.
    Logits (``from_logits=True``, or ``y_pred`` straight from a sigmoid / softmax layer):
    ``max(x,0) - x t + log(1 + exp(-|x|))``. ``label_smoothing`` ``s`` uses targets
    ``t (1-s) + s/2``.
    """

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "binary_crossentropy", dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_smoothing(label_smoothing)
        self.axis = _check_last_axis(axis)

    def prepare(self, y_true: Any, y_pred: np.ndarray) -> np.ndarray:
        t = super().prepare(y_true, y_pred)
        s = self.label_smoothing
        return t * (1 - s) + 0.5 * s if s else t

    def _values(self, t: np.ndarray, x: np.ndarray, from_logits: bool) -> np.ndarray:
        if from_logits:
            v = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
        else:
            eps = x.dtype.type(backend.epsilon())
            p = np.clip(x, eps, 1 - eps)
            v = -(t * np.log(p) + (1 - t) * np.log(1 - p))
        return np.mean(v, axis=-1)

    def _grad(self, t: np.ndarray, x: np.ndarray, dl: np.ndarray, from_logits: bool
              ) -> np.ndarray:
        n = x.dtype.type(x.shape[-1])
        if from_logits:
            g = _sigmoid(x) - t
        else:
            eps = x.dtype.type(backend.epsilon())
            p = np.clip(x, eps, 1 - eps)
            g = (-(t / p) + (1 - t) / (1 - p)) * _clip_grad(x, eps, 1 - eps)
        return ((g / n) * dl[..., None]).astype(x.dtype, copy=False)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class CategoricalCrossentropy(_Crossentropy):
    """``-sum(t * log(p), axis=-1)``; ``p`` renormalised to sum 1 then clipped (TF backend).

    Logits (``from_logits=True`` or a sigmoid / softmax output): ``-sum(t * log_softmax(x))``.
    ``label_smoothing`` ``s`` uses targets ``t (1-s) + s/C``.
    """

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "categorical_crossentropy", dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_smoothing(label_smoothing)
        self.axis = _check_last_axis(axis)

    def prepare(self, y_true: Any, y_pred: np.ndarray) -> np.ndarray:
        t = super().prepare(y_true, y_pred)
        s = self.label_smoothing
        return t * (1 - s) + s / t.shape[-1] if s else t

    def _values(self, t: np.ndarray, x: np.ndarray, from_logits: bool) -> np.ndarray:
        if from_logits:
            return -(t * _log_softmax(x)).sum(axis=-1)
        eps = x.dtype.type(backend.epsilon())
        p = np.clip(x / x.sum(axis=-1, keepdims=True), eps, 1 - eps)
        return -(t * np.log(p)).sum(axis=-1)

    def _grad(self, t: np.ndarray, x: np.ndarray, dl: np.ndarray, from_logits: bool
              ) -> np.ndarray:
        if from_logits:
            # TensorFlow's fused softmax_cross_entropy_with_logits back-propagates
            # softmax(x) - t: the derivative when each target row sums to 1 (one-hot,
            # label-smoothed). For other targets (e.g. multi-hot) it is not the derivative of
            # the value, but it is what Keras trains with (recorded: sigmoid_cce_sat).
            return (np.exp(_log_softmax(x)) - t) * dl[..., None]
        eps = x.dtype.type(backend.epsilon())
        s = x.sum(axis=-1, keepdims=True)
        q = x / s
        gq = -(t / np.clip(q, eps, 1 - eps)) * _clip_grad(q, eps, 1 - eps)
        # q = o / sum(o): dL/do_j = (gq_j - sum_k gq_k q_k) / s
        go = (gq - (gq * q).sum(axis=-1, keepdims=True)) / s
        return go * dl[..., None]

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class SparseCategoricalCrossentropy(_Crossentropy):
    """Crossentropy with integer targets (shape ``y_pred.shape[:-1]`` or with a trailing 1).

    Probabilities (TF backend): ``p`` clipped to ``[eps, 1-eps]`` then used as logits of
    ``log p`` -> ``-log(pc[label]) + log(sum(pc))`` (``-log p[label]`` when no clip and
    ``p`` sums to 1). ``ignore_class``: targets equal to it give 0 and are masked out of the
    reduction (Keras's loss-output mask); with it set the logits of a softmax output are not
    used (Keras replaces ``y_pred`` by a ``where``, dropping them).
    """

    def __init__(self, from_logits: bool = False, ignore_class: Optional[int] = None,
                 reduction: Optional[str] = "sum_over_batch_size", axis: int = -1,
                 name: str = "sparse_categorical_crossentropy", dtype: Optional[str] = None) -> None:
        super().__init__(name, reduction, dtype)
        if ignore_class is not None and (isinstance(ignore_class, bool) or not isinstance(
                ignore_class, (int, np.integer))):
            raise ValueError(f"`ignore_class` must be an int or None, got {ignore_class!r}")
        self.from_logits = bool(from_logits)
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        self.axis = _check_last_axis(axis)

    def prepare(self, y_true: Any, y_pred: np.ndarray) -> np.ndarray:
        t = np.asarray(y_true)
        if t.ndim == y_pred.ndim and t.shape[-1] == 1:
            t = t[..., 0]
        if t.shape != y_pred.shape[:-1]:
            raise ValueError(f"`y` (integer labels) has shape {np.shape(y_true)}; expected "
                             f"{y_pred.shape[:-1]} for model output {y_pred.shape}")
        if not (np.issubdtype(t.dtype, np.number) or t.dtype == bool):
            raise TypeError(f"`y` must hold integer class ids, got dtype {t.dtype}")
        ti = t.astype(np.int64)
        valid = ti if self.ignore_class is None else ti[ti != self.ignore_class]
        if np.any(ti != t) or np.any(valid < 0) or np.any(valid >= y_pred.shape[-1]):
            raise ValueError(f"`y` must hold integer class ids in [0, {y_pred.shape[-1]})"
                             + ("" if self.ignore_class is None
                                else f" or the ignore_class {self.ignore_class}"))
        return ti

    def _onehot(self, t: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        oh = np.zeros(y_pred.shape, y_pred.dtype)
        valid = t if self.ignore_class is None else np.where(t == self.ignore_class, 0, t)
        np.put_along_axis(oh, valid[..., None], 1, axis=-1)
        return oh

    def _valid(self, t: np.ndarray) -> Optional[np.ndarray]:
        return None if self.ignore_class is None else t != self.ignore_class

    def output_mask(self, y_true: np.ndarray, values: np.ndarray) -> Optional[np.ndarray]:
        return self._valid(y_true)

    def _values(self, t: np.ndarray, x: np.ndarray, from_logits: bool) -> np.ndarray:
        oh = self._onehot(t, x)
        valid = self._valid(t)
        if valid is not None:  # Keras: y_pred -> where(valid, y_pred, 0), result -> 0
            x = np.where(valid[..., None], x, x.dtype.type(0))
        if from_logits:
            v = -(oh * _log_softmax(x)).sum(axis=-1)
        else:
            eps = x.dtype.type(backend.epsilon())
            pc = np.clip(x, eps, 1 - eps)
            v = -(oh * np.log(pc)).sum(axis=-1) + np.log(pc.sum(axis=-1))
        return v if valid is None else np.where(valid, v, v.dtype.type(0))

    def _grad(self, t: np.ndarray, x: np.ndarray, dl: np.ndarray, from_logits: bool
              ) -> np.ndarray:
        oh = self._onehot(t, x)
        valid = self._valid(t)
        if valid is not None:
            x = np.where(valid[..., None], x, x.dtype.type(0))
            dl = np.where(valid, dl, dl.dtype.type(0))
        if from_logits:
            return (np.exp(_log_softmax(x)) - oh) * dl[..., None]
        eps = x.dtype.type(backend.epsilon())
        pc = np.clip(x, eps, 1 - eps)
        g = (-oh / pc + 1 / pc.sum(axis=-1, keepdims=True)) * _clip_grad(x, eps, 1 - eps)
        return g * dl[..., None]

    def logits_values(self, y_true: np.ndarray, logits: np.ndarray) -> Optional[np.ndarray]:
        # Keras's TF backend drops the logits when ignore_class is set.
        return None if self.ignore_class is not None else self._values(y_true, logits, True)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "ignore_class": self.ignore_class}


def _fn(cls: type) -> Callable[..., np.ndarray]:
    def f(y_true: Any, y_pred: Any, **kwargs: Any) -> np.ndarray:
        return cls(reduction="none", **kwargs)(y_true, y_pred)
    f.__name__ = backend.snake_case(cls.__name__)
    f.__doc__ = f"Per-sample values of :class:`{cls.__name__}` (no reduction)."
    return f


# The regression / probabilistic / hinge losses and the custom-function wrapper live in their
# own modules (they import Loss from here, so they come after it).
from .loss_functions import (CategoricalHinge, CosineSimilarity, Hinge, Huber,  # noqa: E402
                             KLDivergence, LogCosh, MeanAbsolutePercentageError,
                             MeanSquaredLogarithmicError, Poisson, SquaredHinge)
from .custom_losses import LossFunctionWrapper  # noqa: E402


def _named(cls: type, name: str) -> Callable[..., np.ndarray]:
    f = _fn(cls)
    f.__name__ = f.__qualname__ = name  # picklable by reference: rnnkit.losses.<name>
    f.__module__ = __name__
    return f


mean_squared_error = mse = _named(MeanSquaredError, "mean_squared_error")
mean_absolute_error = mae = _named(MeanAbsoluteError, "mean_absolute_error")
binary_crossentropy = _named(BinaryCrossentropy, "binary_crossentropy")
categorical_crossentropy = _named(CategoricalCrossentropy, "categorical_crossentropy")
sparse_categorical_crossentropy = _named(SparseCategoricalCrossentropy,
                                         "sparse_categorical_crossentropy")
huber = _named(Huber, "huber")
log_cosh = _named(LogCosh, "log_cosh")
mean_absolute_percentage_error = mape = _named(MeanAbsolutePercentageError,
                                               "mean_absolute_percentage_error")
mean_squared_logarithmic_error = msle = _named(MeanSquaredLogarithmicError,
                                               "mean_squared_logarithmic_error")
kl_divergence = kld = _named(KLDivergence, "kl_divergence")
poisson = _named(Poisson, "poisson")
cosine_similarity = _named(CosineSimilarity, "cosine_similarity")
hinge = _named(Hinge, "hinge")
squared_hinge = _named(SquaredHinge, "squared_hinge")
categorical_hinge = _named(CategoricalHinge, "categorical_hinge")

# Keras 3's string identifiers (keras.losses.ALL_OBJECTS_DICT): function names, their
# aliases and the class names.
_BY_NAME: Dict[str, type] = {
    "mse": MeanSquaredError, "MSE": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "BCE": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "huber": Huber, "log_cosh": LogCosh,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "KLD": KLDivergence,
    "poisson": Poisson, "cosine_similarity": CosineSimilarity, "hinge": Hinge,
    "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
}
_CLASSES = {c.__name__: c for c in set(_BY_NAME.values())}
_BY_NAME.update(_CLASSES)


def get(identifier: Any) -> Loss:
    """Resolve a loss: a :class:`Loss`, a Keras name (``"huber"``, ``"mape"``,
    ``"Huber"``...), a config dict ``{"class_name", "config"}``, a ``Loss`` subclass
    (instantiated with its defaults) or a function ``fn(y_true, y_pred) -> per-sample values``
    (wrapped in :class:`~rnnkit.custom_losses.LossFunctionWrapper`)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        config = identifier.get("config", {})
        if not isinstance(config, dict):
            raise ValueError(f"loss config must be a dict, got {config!r}")
        return _CLASSES[identifier["class_name"]].from_config(config)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier) and not isinstance(identifier, type):
        return LossFunctionWrapper(identifier)
    raise ValueError(f"Unknown loss: {identifier!r}; expected a Loss, a function "
                     f"(y_true, y_pred) -> per-sample values, or one of {sorted(_BY_NAME)}")


def is_serializable(loss: Loss) -> bool:
    """True when ``loss`` is a built-in loss that :func:`serialize` / :func:`get` round-trip
    (False for custom functions and user subclasses)."""
    return type(loss).__name__ in _CLASSES and _CLASSES[type(loss).__name__] is type(loss)


def serialize(loss: Loss) -> Dict[str, Any]:
    """``{"class_name", "config"}`` for configs."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
