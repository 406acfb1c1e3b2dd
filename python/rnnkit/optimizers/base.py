"""The optimizer base class: Keras 3 ``BaseOptimizer.apply`` semantics on NumPy arrays.

One ``apply(grads, variables)`` call (Keras 3, TensorFlow backend):

1. With ``gradient_accumulation_steps = n``: unless ``(raw_iterations + 1) % n == 0`` the
   gradients are only added to the accumulators; on every n-th call the update below runs
   with ``(g + accumulated) / n`` and the accumulators are reset to zero.
2. Update: clip the gradients (``clipnorm`` per tensor, ``global_clipnorm`` over all, or
   ``clipvalue``; at most one), decoupled ``weight_decay`` (``w -= w * wd * lr``, *before*
   the update), then the subclass's ``update_step`` for every variable.
3. ``use_ema``: ``average = m * average + (1 - m) * w`` with ``m = ema_momentum`` except
   ``m = 0`` while ``iterations == 0``; every call, update step or not. With
   ``ema_overwrite_frequency = k`` the weights are replaced by their averages whenever
   ``(iterations + 1) % k == 0``. ``finalize_variable_values`` (called by ``fit`` at the
   end) copies the averages into the weights.
4. ``raw_iterations += 1``.

``iterations`` is ``raw_iterations // n`` with accumulation (what ``update_step``, Nadam's
schedule and the EMA see); a :class:`~rnnkit.optimizers.schedules.LearningRateSchedule` is
evaluated at the raw count. Arithmetic happens in each variable's dtype, the learning rate
first rounded to floatx as Keras keeps it in a floatx variable.

Each variable's weight decay and ``update_step`` run as one fused C++ pass where the
optimizer offers one (``_fused_update``, see :mod:`._fused`), bitwise equal to the NumPy
formulas of ``update_step``, which remain the reference (``use_fused_kernels = False``).
A gradient may be a :class:`~rnnkit.sparse_grad.SparseRows` (an Embedding's touched rows):
it is updated as its dense form would be (every row; plain SGD only touches its rows, which
is the same), densified first for gradient accumulation and norm clipping.
"""
from __future__ import annotations

import inspect
import json
import math
import pickle
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import backend, sparse_grad
from . import _fused
from . import schedules as schedules_mod

LearningRate = Union[float, schedules_mod.LearningRateSchedule, Callable[..., float]]


def _opt_number(value: Any, arg: str) -> Optional[float]:
    """``None`` or a finite real number, else a ValueError naming ``arg``."""
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(float(value))):
        raise ValueError(f"Argument `{arg}` must be None or a finite number. Received: "
                         f"{arg}={value!r}")
    return float(value)


def _opt_int(value: Any, arg: str, minimum: int) -> Optional[int]:
    """``None``/0 (off, as Keras treats falsy values) or an int ``>= minimum``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{arg}` must be an integer >= {minimum} or None. Received: "
                         f"{arg}={value!r}")
    if value and value < minimum:
        raise ValueError(f"`{arg}` must be an integer >= {minimum} or None. Received: "
                         f"{arg}={value}")
    return int(value)


class Optimizer:
    """Base class. Subclasses define ``_slots`` (per-variable state names, zeros unless
    ``_init_slot`` says otherwise), optionally ``_scalar_slots`` (scalar state, initialised
    by ``_init_scalar``) and ``update_step``."""

    _slots: Sequence[str] = ()
    _scalar_slots: Sequence[str] = ()
    #: Run update steps in C++ where possible (optimizers/_fused.py); False: always the
    #: NumPy formulas (the reference; results are bitwise the same).
    use_fused_kernels: bool = True

    def __init__(self, learning_rate: LearningRate = 0.001, weight_decay: Optional[float] = None,
                 clipnorm: Optional[float] = None, clipvalue: Optional[float] = None,
                 global_clipnorm: Optional[float] = None, use_ema: bool = False,
                 ema_momentum: float = 0.99, ema_overwrite_frequency: Optional[int] = None,
                 loss_scale_factor: Optional[float] = None,
                 gradient_accumulation_steps: Optional[int] = None,
                 name: Optional[str] = None, **kwargs: Any) -> None:
        if kwargs.pop("decay", None) is not None:
            warnings.warn("Argument `decay` is no longer supported and will be ignored.")
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {sorted(kwargs)}")
        clipnorm, clipvalue = _opt_number(clipnorm, "clipnorm"), _opt_number(clipvalue, "clipvalue")
        global_clipnorm = _opt_number(global_clipnorm, "global_clipnorm")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be "
                             f"set. Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                             f"global_clipnorm={global_clipnorm}")
        if isinstance(learning_rate, dict):  # a serialised schedule
            learning_rate = schedules_mod.deserialize(learning_rate)
        if not callable(learning_rate):
            if (isinstance(learning_rate, bool)
                    or not isinstance(learning_rate, (int, float, np.integer, np.floating))
                    or not math.isfinite(float(learning_rate))):
                raise TypeError("`learning_rate` must be a float, a LearningRateSchedule or a "
                                f"callable returning a float, got {learning_rate!r}")
            learning_rate = float(learning_rate)
        if not isinstance(use_ema, (bool, np.bool_)):
            raise ValueError(f"`use_ema` must be a boolean. Received: use_ema={use_ema!r}")
        ema_momentum = _opt_number(ema_momentum, "ema_momentum")
        if ema_momentum is None or (use_ema and not 0 <= ema_momentum <= 1):
            raise ValueError("`ema_momentum` must be in the range [0, 1]. Received: "
                             f"ema_momentum={ema_momentum}")
        ema_overwrite_frequency = _opt_int(ema_overwrite_frequency, "ema_overwrite_frequency", 1)
        gradient_accumulation_steps = _opt_int(gradient_accumulation_steps,
                                               "gradient_accumulation_steps", 2)
        if loss_scale_factor is not None:
            raise ValueError("`loss_scale_factor` is not supported by rnnkit (no mixed "
                             f"precision); use None. Received: loss_scale_factor="
                             f"{loss_scale_factor!r}")
        if name is not None and not isinstance(name, str):
            raise ValueError(f"`name` must be a string. Received: name={name!r}")
        self._learning_rate: LearningRate = learning_rate
        self.weight_decay = _opt_number(weight_decay, "weight_decay")
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.use_ema = bool(use_ema)
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = None
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.name = name or backend.snake_case(type(self).__name__)
        self._iterations = 0  # apply() calls so far (Keras's ``_iterations`` variable)
        self.built = False
        self._state: Dict[str, List[np.ndarray]] = {}

    # -- iterations and learning rate ---------------------------------------------------
    @property
    def iterations(self) -> int:
        """Optimizer steps: ``apply`` calls, divided by ``gradient_accumulation_steps``."""
        if self.gradient_accumulation_steps:
            return self._iterations // self.gradient_accumulation_steps
        return self._iterations

    def _current_lr(self) -> Any:
        """The learning rate as Keras feeds it to the update: a floatx scalar."""
        f = np.dtype(backend.floatx()).type
        lr = self._learning_rate
        if isinstance(lr, schedules_mod.LearningRateSchedule):
            return f(lr(self._iterations))
        if callable(lr):
            return f(lr(self._iterations) if _takes_step(lr) else lr())
        return f(lr)

    @property
    def learning_rate(self) -> float:
        """Current learning rate (a schedule is evaluated at the raw iteration count)."""
        lr = self._learning_rate
        return float(self._current_lr()) if callable(lr) else lr

    @learning_rate.setter
    def learning_rate(self, value: LearningRate) -> None:
        if callable(value):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, schedules_mod.LearningRateSchedule):
            raise TypeError("This optimizer was created with a `LearningRateSchedule` object "
                            "as its `learning_rate` constructor argument, hence its learning "
                            "rate is not settable. If you need the learning rate to be "
                            "settable, you should instantiate the optimizer with a float "
                            "`learning_rate` argument.")
        if (isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer))
                or not math.isfinite(float(value))):
            raise TypeError(f"`learning_rate` must be a finite number, got {value!r}")
        # Keras keeps the rate in a floatx variable: round through that dtype.
        self._learning_rate = float(np.asarray(value, dtype=backend.floatx()))

    # -- state --------------------------------------------------------------------------
    def _state_slots(self) -> Tuple[str, ...]:
        """Per-variable state names, in storage order: EMA averages, gradient accumulators,
        then the subclass's slots."""
        return ((("average",) if self.use_ema else ())
                + (("gradient_accumulator",) if self.gradient_accumulation_steps else ())
                + tuple(self._slots))

    def _init_slot(self, name: str, w: np.ndarray) -> np.ndarray:
        return np.zeros_like(w)

    def _init_scalar(self, name: str, variables: Sequence[np.ndarray]) -> np.ndarray:
        raise NotImplementedError(name)  # pragma: no cover

    @staticmethod
    def _scalar_dtype(variables: Sequence[np.ndarray]) -> np.dtype:
        return variables[0].dtype if len(variables) else np.dtype(backend.floatx())

    def build(self, variables: Sequence[np.ndarray]) -> None:
        """Create the state (averages, accumulators, momenta...) for ``variables``."""
        self._state = {s: [self._init_slot(s, w) if s in self._slots else np.zeros_like(w)
                           for w in variables] for s in self._state_slots()}
        for s in self._scalar_slots:
            self._state[s] = [self._init_scalar(s, variables)]
        # what the state was built for (shapes, dtypes): unpickling rebuilds it from this
        self._built_for = [(tuple(np.shape(w)), np.asarray(w).dtype.name) for w in variables]
        self.built = True

    @property
    def variables(self) -> List[np.ndarray]:
        """State arrays: ``[raw iterations]``, each slot for every variable, scalar slots."""
        out: List[np.ndarray] = [np.asarray(self._iterations, dtype=np.int64)]
        for s in self._state_slots() + tuple(self._scalar_slots):
            out.extend(self._state.get(s, []))
        return out

    def state_specs(self, shapes: Sequence[Tuple[int, ...]]) -> List[Tuple[str, Tuple[int, ...]]]:
        """``(description, shape)`` of each array of :attr:`variables` after the iteration
        count, for model variables of ``shapes`` (used to check a saved file)."""
        out = [(f"optimizer slot {s!r} #{i}", tuple(sh))
               for s in self._state_slots() for i, sh in enumerate(shapes)]
        return out + [(f"optimizer scalar {s!r}", ()) for s in self._scalar_slots]

    def set_state(self, arrays: Sequence[np.ndarray], variables: Sequence[np.ndarray]) -> None:
        """Restore :attr:`variables` (as saved) for model ``variables``."""
        self.build(variables)
        arrays = list(arrays)
        specs = self.state_specs([w.shape for w in variables])
        if len(arrays) != 1 + len(specs):
            raise ValueError(f"optimizer state holds {len(arrays)} arrays, expected "
                             f"{1 + len(specs)}")
        it = np.asarray(arrays[0])
        if it.shape != () or it.dtype.kind not in "iu" or int(it) < 0:
            raise ValueError(f"optimizer iteration count must be a non-negative integer, got "
                             f"{it!r}")
        self._iterations = int(it)
        k = 1
        for s in self._state_slots() + tuple(self._scalar_slots):
            for i, ref in enumerate(self._state[s]):
                if np.shape(arrays[k]) != ref.shape:
                    raise ValueError(f"optimizer slot {s!r} #{i} has shape "
                                     f"{np.shape(arrays[k])}, expected {ref.shape}")
                self._state[s][i] = np.array(arrays[k], dtype=ref.dtype)
                k += 1

    # -- update -------------------------------------------------------------------------
    def _keeps_sparse(self) -> bool:
        """Whether row-sparse gradients (:class:`~rnnkit.sparse_grad.SparseRows`) reach the
        update as they are: not with gradient accumulation or norm clipping (the norm's
        summation order over a dense array differs; both see the dense form)."""
        return (not self.gradient_accumulation_steps
                and not (self.clipnorm is not None and self.clipnorm > 0)
                and not (self.global_clipnorm is not None and self.global_clipnorm > 0))

    def _clip(self, grads: List[Any]) -> List[Any]:
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
            # a zero row stays zero: clipping a SparseRows' values equals clipping its dense form
            return [sparse_grad.SparseRows(g.rows, np.clip(g.values, -self.clipvalue,
                                                           self.clipvalue), g.shape)
                    if isinstance(g, sparse_grad.SparseRows)
                    else np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def _update(self, idx: List[int], grads: List[Any],
                variables: Sequence[np.ndarray]) -> None:
        """Clip, weight decay and ``update_step`` for the variables ``idx`` (Keras's
        ``_backend_update_step`` with what precedes it). Each variable's weight decay and
        step run fused in C++ where :func:`._fused.try_update` can, else in NumPy (the
        reference formulas; the variables are independent, so the order of variables does
        not matter)."""
        grads = self._clip(grads)
        lr = self._current_lr()
        self._before_update_steps()
        for i, g in zip(idx, grads):
            w = variables[i]
            if _fused.try_update(self, i, g, w, lr):
                continue
            f = w.dtype.type
            if self.weight_decay is not None:
                w -= w * f(self.weight_decay) * f(lr)
            self.update_step(i, sparse_grad.dense(g), w, f(lr))

    def _fused_update(self, i: int, w: np.ndarray, lr: Any) -> Optional[Tuple[str, Sequence[np.ndarray], Sequence[Any]]]:
        """``(kind, slots, coefs)`` of the C++ update equal to ``update_step(i, g, w, lr)``
        (optimizers/_fused.py, cpp/include/rnnkit/optim.def), or None (NumPy only)."""
        return None

    def _before_update_steps(self) -> None:
        """Hook run once per update, before the per-variable steps (Nadam's ``u_product``)."""

    def apply(self, grads: Sequence[Optional[np.ndarray]], variables: Sequence[np.ndarray]) -> None:
        """Update ``variables`` in place from ``grads`` (same order, same shapes; a ``None``
        gradient leaves its variable alone)."""
        if len(grads) != len(variables):
            raise ValueError(f"got {len(grads)} gradients for {len(variables)} variables")
        if len(grads) == 0:
            return
        if not self.built:
            self.build(variables)
        idx = [i for i, g in enumerate(grads) if g is not None]
        if not idx:
            raise ValueError("No gradients provided for any variable.")
        sparse = self._keeps_sparse()
        gs = [grads[i].astype(variables[i].dtype)
              if sparse and isinstance(grads[i], sparse_grad.SparseRows)
              else np.asarray(grads[i], dtype=variables[i].dtype) for i in idx]
        for i, g in zip(idx, gs):
            if g.shape != variables[i].shape:
                raise ValueError(f"gradient {i} has shape {g.shape}, its variable "
                                 f"{variables[i].shape}")
        n = self.gradient_accumulation_steps
        if n:
            accs = self._state["gradient_accumulator"]
            if (self._iterations + 1) % n == 0:
                gs = [(g + accs[i]) / variables[i].dtype.type(n) for i, g in zip(idx, gs)]
                self._update(idx, gs, variables)
                for a in accs:
                    a[...] = 0
            else:
                for i, g in zip(idx, gs):
                    accs[i] += g
        else:
            self._update(idx, gs, variables)
        if self.use_ema:
            self._update_ema(variables)
            k = self.ema_overwrite_frequency
            if k and (self.iterations + 1) % k == 0:
                self._overwrite_with_average(variables)
        self._iterations += 1

    def _update_ema(self, variables: Sequence[np.ndarray]) -> None:
        for w, avg in zip(variables, self._state["average"]):
            f = w.dtype.type
            m = f(self.iterations != 0) * f(self.ema_momentum)  # 0 on the first step
            avg[...] = m * avg + (f(1) - m) * w

    def _overwrite_with_average(self, variables: Sequence[np.ndarray]) -> None:
        avgs = self._state["average"]
        if len(variables) != len(avgs):
            raise ValueError(f"The length of model variables ({len(variables)}) to override "
                             "does not match the length of model variables stored in the "
                             f"optimizer ({len(avgs)}). Please check if the optimizer was "
                             "called on your model.")
        for w, avg in zip(variables, avgs):
            w[...] = avg

    def finalize_variable_values(self, var_list: Sequence[np.ndarray]) -> None:
        """End of training: with ``use_ema``, overwrite ``var_list`` (in place) with their
        moving averages; otherwise nothing."""
        if self.use_ema and self.built:
            self._overwrite_with_average(var_list)

    def apply_gradients(self, grads_and_vars: Sequence[Any]) -> int:
        """Keras-style ``[(grad, variable), ...]`` entry point; returns the raw count."""
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [v for _, v in pairs])
        return self._iterations

    def update_step(self, i: int, g: np.ndarray, w: np.ndarray, lr: Any) -> None:  # pragma: no cover
        """Update variable ``i`` (``w``, in place) from gradient ``g``."""
        raise NotImplementedError

    # -- config -------------------------------------------------------------------------
    def get_config(self) -> Dict[str, Any]:
        """Constructor arguments, JSON-serialisable. A schedule is stored as its
        ``{"class_name", "config"}``; a plain callable as its current value."""
        lr = self._learning_rate
        if isinstance(lr, schedules_mod.LearningRateSchedule):
            lr_cfg: Any = schedules_mod.serialize(lr)
        else:
            lr_cfg = self.learning_rate
        return {"name": self.name, "learning_rate": lr_cfg,
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue,
                "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    # -- pickling: config (JSON) + state arrays, as in a saved model's file ----------------
    def __reduce__(self) -> Any:
        """Pickled as its JSON config and its state arrays (:attr:`variables`); unpickling
        (:func:`_from_pickle`) checks the config against the saved-file schema, rebuilds from
        it and restores the state with :meth:`set_state`'s shape checks. A plain Python
        callable as learning rate cannot be written to a config: PicklingError."""
        from . import _CLASSES
        lr = self._learning_rate
        what = f"optimizer {type(self).__name__} {self.name!r}"
        if _CLASSES.get(type(self).__name__) is not type(self):
            raise pickle.PicklingError(f"cannot pickle {what}: {type(self).__qualname__} is "
                                       "not one of rnnkit's optimizer classes")
        if callable(lr) and not (isinstance(lr, schedules_mod.LearningRateSchedule)
                                 and type(lr) in schedules_mod._CLASSES.values()):
            raise pickle.PicklingError(f"cannot pickle {what}: its learning rate {lr!r} is a "
                                       "Python callable, which rnnkit's format cannot hold "
                                       "(use a built-in LearningRateSchedule or a number)")
        config = json.dumps({"class_name": type(self).__name__, "config": self.get_config()})
        if not self.built:
            return (_from_pickle, (config, None, None))
        specs = [[list(shape), dtype] for shape, dtype in self.__dict__.get("_built_for", [])]
        return (_from_pickle, (config, specs, [np.array(a) for a in self.variables]))

    def __deepcopy__(self, memo: Dict[int, Any]) -> "Optimizer":
        return backend.plain_deepcopy(self, memo)  # type: ignore[return-value]

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Optimizer":
        """Rebuild from :meth:`get_config` (a schedule dict under ``learning_rate`` is
        deserialised)."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules_mod.deserialize(config["learning_rate"])
        return cls(**config)


def _takes_step(fn: Callable[..., Any]) -> bool:
    """Whether a plain learning-rate callable wants the step (rnnkit's ``lr(step)``) or
    takes no argument (Keras's ``lr()``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
               for p in params)


def _number(value: Any, arg: str) -> float:
    """A finite real number, else a ValueError naming ``arg``."""
    out = _opt_number(value, arg)
    if out is None:
        raise ValueError(f"Argument `{arg}` must be a finite number. Received: {arg}=None")
    return out


def _from_pickle(config: str, specs: Any, state: Any) -> Optimizer:
    """Unpickle an optimizer (see :meth:`Optimizer.__reduce__`): the JSON config is checked
    against the saved-file schema before anything is built; the state against its specs."""
    from . import _BY_NAME, _CLASSES, deserialize
    from ..config_schema import SchemaError, v_object
    where = "unpickled optimizer"
    try:
        if not isinstance(config, str) or len(config) > (1 << 20):
            raise ValueError(f"{where}: expected a JSON config string")
        cfg = json.loads(config, parse_constant=_reject_constant)
        v_object(cfg, "optimizer", list(_CLASSES), list(_BY_NAME))
        opt = deserialize(cfg)
    except (SchemaError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise ValueError(f"{where}: invalid configuration: {exc}") from None
    if specs is None and state is None:
        return opt
    if (not isinstance(specs, list) or not isinstance(state, list)
            or not all(isinstance(a, np.ndarray) and not a.dtype.hasobject for a in state)):
        raise ValueError(f"{where}: corrupted state")
    variables = []
    for spec in specs:
        if (not isinstance(spec, list) or len(spec) != 2 or spec[1] not in
                ("float16", "float32", "float64") or not isinstance(spec[0], list)
                or not all(isinstance(d, int) and d >= 0 for d in spec[0])):
            raise ValueError(f"{where}: corrupted variable spec {spec!r}")
        variables.append(np.zeros(tuple(spec[0]), dtype=spec[1]))
    opt.set_state(state, variables)
    return opt


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not allowed")
