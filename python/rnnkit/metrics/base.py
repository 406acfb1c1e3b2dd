"""Metric base classes as in Keras 3: ``Metric``, ``Mean``, ``Sum``, ``MeanMetricWrapper``.

A metric accumulates over ``update_state`` calls; ``result()`` reads the accumulated value and
``reset_state()`` forgets it; calling the metric updates then returns ``result()`` (Keras).
Accumulators are float64 NumPy values (Keras keeps float32 variables; results agree to
float32 rounding).

Per-sample reduction follows Keras's ``reduce_to_samplewise_values``: values are reduced to
one per sample by a mean (``Mean``) or sum (``Sum``) over the axes the sample weight lacks,
weighted, then reduced over the remaining non-batch axes. ``count`` grows by the summed
(reduced) weights, or by the batch size without weights.

Masks (rnnkit extension of Keras's ``y_pred._keras_mask``): the model passes ``mask`` of
shape ``(B, T)`` for sequence outputs; it multiplies the sample weights (Keras ``apply_mask``
with ``reduction="sum"``), so a mean runs over unmasked entries only. A sample weight of
shape ``(B,)`` is broadcast over the mask's time axis.
"""
from __future__ import annotations

import inspect
import json
import pickle
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from .. import backend

__all__ = ["Metric", "Variable", "Mean", "Sum", "MeanMetricWrapper", "update_metric",
           "result_value"]


def _match_rank(x1: np.ndarray, x2: np.ndarray, expand_rank_1: bool = True
                ) -> Tuple[np.ndarray, np.ndarray]:
    """Keras ``squeeze_or_expand_to_same_rank``: fix a rank difference of one that comes
    from a trailing axis of size 1."""
    if x1.ndim == x2.ndim + 1 and x1.shape[-1] == 1:
        if x2.ndim == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1[..., 0]
    if x2.ndim == x1.ndim + 1 and x2.shape[-1] == 1:
        if x1.ndim == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def _as_array(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(f"`{what}` must hold numbers, got dtype {a.dtype}")
    return a


def _mask_weights(sample_weight: Any, mask: Any) -> Optional[np.ndarray]:
    """Fold a model mask ``(B, T)`` into the sample weights (Keras ``apply_mask``, sum).

    A weight of lower rank than the mask gets trailing axes (``(B,)`` -> ``(B, 1)``) so it
    weighs every step of its sample."""
    if mask is None:
        return None if sample_weight is None else np.asarray(sample_weight, np.float64)
    m = np.asarray(mask, dtype=np.float64)
    if sample_weight is None:
        return m
    sw = np.asarray(sample_weight, dtype=np.float64)
    m, sw = _match_rank(m, sw)
    if sw.ndim < m.ndim:
        sw = sw.reshape(sw.shape + (1,) * (m.ndim - sw.ndim))
    return sw * m


def _samplewise(values: np.ndarray, sample_weight: Optional[np.ndarray],
                reduce_fn: Callable[..., np.ndarray]
                ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Keras ``reduce_to_samplewise_values`` -> ``(values (B,) or scalar, weights)``."""
    values = values.astype(np.float64, copy=False)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        values, sample_weight = _match_rank(values, sample_weight)
        w_nd, v_nd = sample_weight.ndim, values.ndim
        if v_nd > w_nd:
            values = reduce_fn(values, axis=tuple(range(w_nd, v_nd)))
        values = values * np.broadcast_to(sample_weight, values.shape)
        if w_nd > 1:
            sample_weight = reduce_fn(sample_weight, axis=tuple(range(1, w_nd)))
    if values.ndim > 1:
        values = reduce_fn(values, axis=tuple(range(1, values.ndim)))
    return values, sample_weight


class Variable:
    """A metric state array (Keras ``add_variable``): ``assign``, ``assign_add``,
    ``assign_sub``, ``numpy()``; usable wherever an array is (``np.asarray(v)``, ``v + 1``)."""

    def __init__(self, value: np.ndarray, name: str) -> None:
        self.name = name
        self._initial = np.array(value, dtype=np.float64)
        self.value = self._initial.copy()

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.value.shape

    def assign(self, value: Any) -> None:
        self.value = np.array(np.broadcast_to(np.asarray(value, np.float64), self.value.shape))

    def assign_add(self, value: Any) -> None:
        self.assign(self.value + np.asarray(value, np.float64))

    def assign_sub(self, value: Any) -> None:
        self.assign(self.value - np.asarray(value, np.float64))

    def numpy(self) -> np.ndarray:
        return self.value.copy()

    def _reset(self) -> None:
        self.value = self._initial.copy()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.value if dtype is None else self.value.astype(dtype)

    def __float__(self) -> float:
        return float(self.value)

    def __getitem__(self, idx: Any) -> Any:
        return self.value[idx]

    def __repr__(self) -> str:
        return f"<Variable {self.name} {self.value!r}>"


def _binop(op: Callable[[Any, Any], Any], reflected: bool = False) -> Callable[..., Any]:
    def f(self: Variable, other: Any) -> Any:
        other = np.asarray(other) if isinstance(other, Variable) else other
        return op(other, self.value) if reflected else op(self.value, other)
    return f


for _n, _op in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                ("truediv", np.divide), ("pow", np.power)]:
    setattr(Variable, f"__{_n}__", _binop(_op))
    setattr(Variable, f"__r{_n}__", _binop(_op, True))
Variable.__neg__ = lambda self: -self.value  # type: ignore[attr-defined]


class Metric:
    """Base class of stateful metrics (Keras 3 ``keras.metrics.Metric``).

    Subclasses implement ``update_state(y_true, y_pred, sample_weight=None)`` and
    ``result()``; state made with :meth:`add_variable` is zeroed by the default
    ``reset_state``. User subclasses written this way work in ``compile``. ``name``
    defaults to the snake-case class name, made unique per session (``auc``, ``auc_1``,
    ... as Keras's ``auto_name``).
    """

    def _pickle_refusal(self) -> Optional[str]:
        """Why this metric cannot be pickled (None: it can)."""
        from . import is_builtin
        if not is_builtin(self):
            return (f"{type(self).__qualname__} is not one of rnnkit's metric classes (custom "
                    "Python metrics are not written to rnnkit's format)")
        return None

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Built-in metrics pickle as their JSON config and state arrays (what they have
        accumulated); unpickling checks the config against the saved-file schema. Custom
        Python metrics raise PicklingError naming the metric."""
        why = self._pickle_refusal()
        if why is not None:
            raise pickle.PicklingError(f"cannot pickle metric {getattr(self, 'name', '?')!r}: "
                                       f"{why}")
        from . import serialize
        return (_from_pickle, (json.dumps(serialize(self)), _metric_state(self)))

    def __deepcopy__(self, memo: Dict[int, Any]) -> Any:
        return backend.plain_deepcopy(self, memo)

    def __init__(self, name: Optional[str] = None, dtype: Optional[str] = None) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be a string, got {name!r}")
        self.name = name or backend.unique_name(backend.snake_case(type(self).__name__))
        self.dtype = dtype or backend.floatx()
        self._variables: list = []

    def add_variable(self, shape: Any = (), initializer: Any = "zeros", dtype: Any = None,
                     aggregation: str = "sum", name: Optional[str] = None) -> Variable:
        """A state array of ``shape`` filled by ``initializer`` ("zeros", "ones", a number,
        or an rnnkit initializer); ``reset_state`` restores that value."""
        shape = tuple(int(d) for d in (shape or ()))
        if isinstance(initializer, (int, float)) and not isinstance(initializer, bool):
            value = np.full(shape, float(initializer))
        elif initializer in ("zeros", "Zeros", None):
            value = np.zeros(shape)
        elif initializer in ("ones", "Ones"):
            value = np.ones(shape)
        else:
            from .. import initializers
            value = np.asarray(initializers.get(initializer)(shape, "float64"))
        v = Variable(value, name or f"variable_{len(self._variables)}")
        self._variables.append(v)
        return v

    @property
    def variables(self) -> list:
        """The state made with :meth:`add_variable`."""
        return list(self._variables)

    def reset_state(self) -> None:
        """Forget what was accumulated (every variable back to its initial value)."""
        for v in self._variables:
            v._reset()

    def result(self) -> Any:  # pragma: no cover - abstract
        """The metric's value from what was accumulated."""
        raise NotImplementedError

    def update_state(self, *args: Any, **kwargs: Any) -> None:  # pragma: no cover
        """Accumulate one batch."""
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Keras: ``update_state(...)`` then ``result()``."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> Dict[str, Any]:
        """``{"name", "dtype"}`` plus the subclass's constructor arguments."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Metric":
        """Rebuild from :meth:`get_config` output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


def result_value(metric: Any) -> Any:
    """``metric.result()`` as a Python float (scalar results) or a float64 array."""
    r = np.asarray(metric.result(), dtype=np.float64)
    return float(r) if r.ndim == 0 else r


class Sum(Metric):
    """Weighted sum of the values (Keras ``Sum``)."""

    def __init__(self, name: str = "sum", dtype: Optional[str] = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def reset_state(self) -> None:
        """Back to 0."""
        self.total = 0.0

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Add ``sum(values * sample_weight)`` (per-sample sums, Keras reduction)."""
        v, _ = _samplewise(_as_array(values, "values"), sample_weight, np.sum)
        self.total += float(np.sum(v))

    def result(self) -> float:
        """The accumulated sum."""
        return float(self.total)


class Mean(Metric):
    """Weighted mean of the values (Keras ``Mean``); also the loss trackers."""

    def __init__(self, name: str = "mean", dtype: Optional[str] = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def reset_state(self) -> None:
        """Back to an empty mean."""
        self.total, self.count = 0.0, 0.0

    def result(self) -> float:
        """``total / count`` (0 when nothing was counted, Keras ``divide_no_nan``)."""
        return float(self.total / self.count) if self.count else 0.0

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Add values (scalar or array, one mean per sample) with optional weights."""
        v, sw = _samplewise(_as_array(values, "values"), sample_weight, np.mean)
        self.total += float(np.sum(v))
        if sw is not None:
            self.count += float(np.sum(sw))
        else:
            self.count += float(v.shape[0]) if v.ndim >= 1 else 1.0


class MeanMetricWrapper(Mean):
    """Mean of ``fn(y_true, y_pred, **kwargs)`` (per-sample values), Keras reduction rules.

    ``update_state`` also takes ``mask`` (the model's output mask, an rnnkit extension of
    Keras's mask attribute on ``y_pred``).
    """

    def __init__(self, fn: Callable[..., Any], name: Optional[str] = None,
                 dtype: Optional[str] = None, **kwargs: Any) -> None:
        if not callable(fn):
            raise TypeError(f"`fn` must be callable, got {fn!r}")
        super().__init__(name=name or backend.snake_case(getattr(fn, "__name__", "metric")),
                         dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    @property
    def fn(self) -> Callable[..., Any]:
        """The wrapped function."""
        return self._fn

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None,
                     mask: Any = None) -> None:
        """Accumulate the mean of ``fn(y_true, y_pred)`` over the batch."""
        values = np.asarray(self._fn(y_true, np.asarray(y_pred), **self._fn_kwargs))
        super().update_state(values, sample_weight=_mask_weights(sample_weight, mask))

    def get_config(self) -> Dict[str, Any]:
        """Keras saves ``fn`` by name; rnnkit metric classes override this."""
        return {**super().get_config(), "fn": getattr(self._fn, "__name__", repr(self._fn)),
                **self._fn_kwargs}


def _takes_kwarg(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return True
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def update_metric(metric: Any, y_true: Any, y_pred: Any, sample_weight: Any = None,
                  mask: Any = None) -> None:
    """Update one compiled metric from the training loop.

    Metrics whose ``update_state`` takes ``mask`` get it as is; for the others (confusion
    metrics, user subclasses) the mask is folded into ``sample_weight``. ``sample_weight``
    is passed only when there is one, so user metrics without that argument still work.
    """
    upd = metric.update_state
    if mask is not None and _takes_kwarg(upd, "mask"):
        upd(y_true, y_pred, sample_weight=sample_weight, mask=mask)
        return
    sw = _mask_weights(sample_weight, mask)
    if sw is None:
        upd(y_true, y_pred)
    else:
        upd(y_true, y_pred, sample_weight=sw)


def _is_state(value: Any) -> bool:
    return (isinstance(value, (np.ndarray, np.generic, Variable))
            or (isinstance(value, (int, float)) and not isinstance(value, bool)))


def _metric_state(metric: Metric) -> Dict[str, Any]:
    """What a metric has accumulated: its numeric attributes and variables, as arrays."""
    return {k: np.array(v.value if isinstance(v, Variable) else v)
            for k, v in vars(metric).items() if _is_state(v)}


def _from_pickle(config: str, state: Any) -> Metric:
    """Unpickle a built-in metric (see :meth:`Metric.__reduce_ex__`): the config is checked
    as a saved file's, the state arrays against the rebuilt metric's own."""
    from . import _CLASSES, deserialize
    from .schema import v_metric
    from ..config_schema import SchemaError
    where = "unpickled metric"
    try:
        if not isinstance(config, str) or len(config) > (1 << 20):
            raise ValueError("expected a JSON config string")
        cfg = json.loads(config, parse_constant=_reject_constant)
        if not isinstance(cfg, dict):
            raise ValueError("expected {'class_name', 'config'}")
        if cfg.get("class_name") in ("Mean", "Sum"):  # not compilable by name, but built-in
            inner = cfg.get("config", {})
            if (set(cfg) - {"class_name", "config"} or not isinstance(inner, dict)
                    or set(inner) - {"name", "dtype"}
                    or not all(isinstance(x, str) for x in inner.values())):
                raise ValueError(f"bad {cfg.get('class_name')} config")
        else:
            v_metric(cfg, "metric")
        metric = deserialize(cfg)
    except (SchemaError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise ValueError(f"{where}: invalid configuration: {exc}") from None
    mine = vars(metric)
    have = {k for k, v in mine.items() if _is_state(v)}
    lazy = {k for k, v in mine.items() if v is None}  # state made on the first update
    if not isinstance(state, dict) or not have <= set(state) <= have | lazy:
        raise ValueError(f"{where} {metric.name!r}: corrupted state")
    for key, a in state.items():
        if key in lazy:
            if (not isinstance(a, np.ndarray) or a.dtype.kind not in "iuf" or a.ndim > 2
                    or a.size > (1 << 22)):
                raise ValueError(f"{where} {metric.name!r}: state {key!r} is not a small "
                                 "number array")
            mine[key] = np.array(a)
            continue
        ref = mine[key]
        cur = np.asarray(ref.value if isinstance(ref, Variable) else ref)
        if (not isinstance(a, np.ndarray) or a.dtype.hasobject or a.shape != cur.shape
                or a.dtype.kind not in "biuf"):
            raise ValueError(f"{where} {metric.name!r}: state {key!r} is not a "
                             f"{cur.shape} number array")
        if isinstance(ref, Variable):
            ref.value = np.array(a, dtype=np.float64)
        elif isinstance(ref, np.ndarray):
            mine[key] = np.array(a, dtype=ref.dtype)
        elif isinstance(ref, np.generic):
            mine[key] = a.astype(ref.dtype)[()]
        else:
            mine[key] = type(ref)(a[()])
    return metric


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not allowed")
