"""Layer base class, weights, and the input layer.

A layer is a NumPy function with a hand-written backward pass:

* ``build(input_shape)`` creates :class:`Weight` objects (``input_shape`` includes the batch
  dimension, ``None`` when unknown).
* ``forward(x, mask, training, need_grad)`` computes the output and, when ``need_grad``,
  keeps what ``backward`` needs on the layer (one pending call per layer: a Sequential model
  calls each layer once per step).
* ``backward(dy)`` returns ``dL/dx`` and stores ``dL/dw`` in each weight's ``grad``.
* ``compute_mask(x, mask)`` says which mask flows to the next layer (Keras masking).

Layers with several inputs (merges, attention, an RNN given ``initial_state``) take ``x`` and
``mask`` as lists (one entry per input, in the order :meth:`Layer._split_call` gives), build
from a list of shapes, and return a list of input gradients from ``backward`` (``None`` for
an input that takes no gradient, e.g. integer ids or a boolean mask). Layers with several
outputs (``return_state``) return a list from ``forward`` and take a list in ``backward``.

Calling a layer on arrays (``layer(x, mask=..., training=...)``) builds it and runs
``forward``, as Keras layers do eagerly; calling it on symbolic tensors from ``Input``
records a node of a functional model instead (:mod:`rnnkit.layers.node`).

The pending cache lives in ``self._cache``, one per call slot (:func:`node.call_slot`), so
a layer shared by several nodes of a graph keeps each call's cache apart.
"""
from __future__ import annotations

from typing import Any, ContextManager, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._thread_scope import ThreadScoped
from .. import backend
from .. import constraints as constraints_mod
from .. import initializers
from .. import regularizers as regularizers_mod
from .. import config_schema as cs
from .node import KerasTensor, Node, current_slot, is_symbolic, symbolic_call
from .registry import register

Shape = Tuple[Optional[int], ...]

__all__ = ["Weight", "Layer", "InputLayer", "Input", "KerasTensor", "deferred_weights"]

_DEFERRED = ThreadScoped(False)


def deferred_weights() -> ContextManager[None]:
    """Inside this block ``add_weight`` runs no initializer and allocates nothing: each weight
    is a read-only zero-stride placeholder with the right shape and dtype, to be replaced by
    real values (``Weight.value = array``) before use. Loading uses it to compare the shapes a
    config implies with the stored arrays before any large allocation (this thread only)."""
    return _DEFERRED.scope(True)


class Weight:
    """A named parameter: ``value`` (ndarray, updated in place), ``grad``, ``trainable``, and
    the ``regularizer`` (penalty added to the loss) and ``constraint`` (projection after each
    optimizer step) that training applies to it (None when it has none)."""

    def __init__(self, name: str, value: np.ndarray, trainable: bool = True,
                 regularizer: Any = None, constraint: Any = None) -> None:
        self.name = name
        self.value = value
        self.trainable = trainable
        self.grad: Optional[np.ndarray] = None
        self.regularizer = regularizers_mod.get(regularizer)
        self.constraint = constraints_mod.get(constraint)

    @property
    def shape(self) -> Tuple[int, ...]:
        """Shape of the value."""
        return self.value.shape

    @property
    def dtype(self) -> np.dtype:
        """Dtype of the value."""
        return self.value.dtype

    def numpy(self) -> np.ndarray:
        """A copy of the value (Keras ``Variable.numpy()``)."""
        return self.value.copy()

    def assign(self, value: Any) -> None:
        """Overwrite the value in place, checking the shape."""
        v = np.asarray(value)
        if v.shape != self.value.shape:
            raise ValueError(f"weight {self.name!r} has shape {self.value.shape}, "
                             f"got a value of shape {v.shape}")
        self.value[...] = v

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.value if dtype is None else self.value.astype(dtype)

    def __repr__(self) -> str:
        return f"<Weight {self.name} shape={self.shape} dtype={self.dtype}>"


class Layer:
    """Base class of all rnnkit layers (see the module docstring for the protocol)."""

    supports_masking = False
    #: Config fields and their checkers (rnnkit.config_schema); every concrete class
    #: declares its own, which is what lets an untrusted saved config name it.
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    def __init__(self, name: Optional[str] = None, dtype: Optional[str] = None,
                 trainable: bool = True, input_shape: Optional[Sequence[Optional[int]]] = None,
                 batch_size: Optional[int] = None, input_dim: Optional[int] = None,
                 batch_input_shape: Optional[Sequence[Optional[int]]] = None,
                 activity_regularizer: Any = None, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unrecognized keyword argument(s) "
                            f"{sorted(kwargs)}")
        if dtype is not None and np.dtype(dtype) not in (np.float32, np.float64):
            raise ValueError(f"`dtype` must be 'float32' or 'float64', got {dtype!r}")
        self.name = name or backend.unique_name(backend.snake_case(type(self).__name__))
        self._dtype_arg = dtype
        self.dtype = np.dtype(dtype or backend.floatx()).name
        self.trainable = trainable
        self.built = False
        self._weights: List[Weight] = []
        self.input_shape_arg: Optional[Shape] = None
        # Keras 2 style first-layer shapes: input_shape / input_dim / batch_input_shape.
        if batch_input_shape is not None:
            self.input_shape_arg = tuple(batch_input_shape)
        elif input_shape is not None:
            self.input_shape_arg = (batch_size,) + tuple(input_shape)
        elif input_dim is not None:
            self.input_shape_arg = (batch_size, input_dim)
        self.input_shape: Optional[Shape] = None
        self.output_shape: Optional[Any] = None
        self._inbound_nodes: List[Node] = []
        #: Penalty on the layer's output(s), divided by the batch size (Keras 3); see
        #: :meth:`__init_subclass__` for where it acts.
        self.activity_regularizer = regularizers_mod.get(activity_regularizer)

    # -- activity regularization: one hook around every subclass's forward/backward ---------
    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap the ``forward``/``backward`` a subclass defines so that a layer with an
        ``activity_regularizer`` records ``penalty(y) / batch`` of each output ``y``
        (:func:`rnnkit.regularizers.record_activity`) and adds ``gradient(y) / batch`` to the
        incoming ``dL/dy``. Layers without one run their methods untouched; a ``super()``
        call inside an already hooked call is not hooked again."""
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _hooked_forward(cls.__dict__["forward"])  # type: ignore[assignment]
        if "backward" in cls.__dict__:
            cls.backward = _hooked_backward(cls.__dict__["backward"])  # type: ignore[assignment]
        if "build" in cls.__dict__:
            cls.build = _hooked_build(cls.__dict__["build"])  # type: ignore[assignment]

    def _weight_options(self, kwargs: Dict[str, Any], prefixes: Sequence[str]) -> None:
        """Pop ``<prefix>_regularizer`` / ``<prefix>_constraint`` for each weight prefix
        (``"kernel"``, ``"bias"``...) from ``kwargs`` into attributes (resolved with
        :func:`rnnkit.regularizers.get` / :func:`rnnkit.constraints.get`)."""
        self._weight_option_prefixes = tuple(prefixes)
        for p in prefixes:
            for kind, mod in (("regularizer", regularizers_mod), ("constraint", constraints_mod)):
                arg = f"{p}_{kind}"
                try:
                    value = mod.get(kwargs.pop(arg, None))
                except ValueError as e:
                    raise ValueError(f"{type(self).__name__}: `{arg}`: {e}") from None
                setattr(self, arg, value)

    def _weight_options_config(self) -> Dict[str, Any]:
        """The ``<prefix>_regularizer`` / ``<prefix>_constraint`` config entries (Keras form)."""
        out: Dict[str, Any] = {}
        for p in getattr(self, "_weight_option_prefixes", ()):
            out[f"{p}_regularizer"] = regularizers_mod.serialize(getattr(self, f"{p}_regularizer"))
        for p in getattr(self, "_weight_option_prefixes", ()):
            out[f"{p}_constraint"] = constraints_mod.serialize(getattr(self, f"{p}_constraint"))
        return out

    def _weight_kw(self, prefix: str) -> Dict[str, Any]:
        """``add_weight`` keywords for the weight named by ``prefix``."""
        return {"regularizer": getattr(self, f"{prefix}_regularizer", None),
                "constraint": getattr(self, f"{prefix}_constraint", None)}

    # -- the pending backward cache, one per call slot ----------------------------------
    @property
    def _cache(self) -> Any:
        return self.__dict__.get("_caches", {}).get(current_slot())

    @_cache.setter
    def _cache(self, value: Any) -> None:
        caches = self.__dict__.setdefault("_caches", {})
        if value is None:
            caches.pop(current_slot(), None)
        else:
            caches[current_slot()] = value

    # -- weights ------------------------------------------------------------------------
    def add_weight(self, name: str, shape: Sequence[int], initializer: Any = "zeros",
                   trainable: bool = True, regularizer: Any = None,
                   constraint: Any = None) -> Weight:
        """Create a weight from an initializer (name, object or array), with an optional
        ``regularizer`` and ``constraint`` that training applies to it."""
        if _DEFERRED.value:
            shape = tuple(int(d) for d in shape)
            placeholder = np.broadcast_to(np.zeros((), self.dtype), shape)  # no allocation
            w = Weight(name, placeholder, trainable, regularizer, constraint)
            self._weights.append(w)
            return w
        if isinstance(initializer, np.ndarray):
            value = initializer.astype(self.dtype, copy=True)
        else:
            value = np.asarray(initializers.get(initializer)(tuple(shape), self.dtype))
        # np.array, not ascontiguousarray: that one turns a 0-d weight (a scale) into (1,).
        if value.shape != tuple(shape):
            raise ValueError(f"Layer {self.name!r}: the initial value of {name!r} has shape "
                             f"{value.shape}, expected {tuple(shape)}")
        w = Weight(name, np.array(value, dtype=self.dtype, order="C"), trainable, regularizer,
                   constraint)
        self._weights.append(w)
        return w

    @property
    def weights(self) -> List[Weight]:
        """All weights, in Keras order."""
        return list(self._weights)

    @property
    def trainable_weights(self) -> List[Weight]:
        """Weights the optimizer updates."""
        return [w for w in self.weights if w.trainable and self.trainable]

    @property
    def non_trainable_weights(self) -> List[Weight]:
        """Weights the optimizer leaves alone."""
        return [w for w in self.weights if not (w.trainable and self.trainable)]

    def get_weights(self) -> List[np.ndarray]:
        """Copies of the weight values, Keras order."""
        return [w.value.copy() for w in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set all weights from arrays (same count and shapes as :meth:`get_weights`)."""
        mine = self.weights
        weights = list(weights)
        if len(weights) != len(mine):
            raise ValueError(f"layer {self.name!r} expects {len(mine)} weight arrays, "
                             f"got {len(weights)}")
        for w, v in zip(mine, weights):
            w.assign(v)

    def count_params(self) -> int:
        """Number of scalars in all weights."""
        return int(sum(w.value.size for w in self.weights))

    # -- protocol -----------------------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        """Create weights for ``input_shape`` (batch dimension included)."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def _ensure_built(self, input_shape: Any) -> None:
        """Build on first use; ``input_shape`` is a tuple, or a list of tuples for a layer
        with several inputs."""
        if not self.built:
            self.build([tuple(s) for s in input_shape] if isinstance(input_shape, list)
                       else tuple(input_shape))

    def compute_output_shape(self, input_shape: Shape) -> Any:
        """Output shape for ``input_shape`` (identity by default)."""
        return tuple(input_shape)

    def compute_mask(self, x: Any, mask: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """Mask passed downstream: kept when the layer supports masking, else dropped."""
        return mask if self.supports_masking else None

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> Any:
        """Compute the output (keeping a cache for :meth:`backward` when ``need_grad``)."""
        raise NotImplementedError

    def backward(self, dy: Any) -> Optional[np.ndarray]:
        """Gradient w.r.t. the input; weight gradients go to ``Weight.grad``."""
        raise NotImplementedError

    def _split_call(self, args: Sequence[Any], kwargs: Dict[str, Any]
                    ) -> Tuple[Any, Dict[str, Any]]:
        """Map a Keras-style call to ``(inputs, keyword arguments for forward)``: ``inputs``
        is one tensor, or a list for a layer with several inputs. ``mask`` and ``training``
        stay in the keyword arguments."""
        if len(args) != 1:
            raise TypeError(f"Layer {self.name!r} takes one positional input, got {len(args)}")
        x = args[0]
        return (list(x) if isinstance(x, tuple) else x), kwargs

    def output_dtype(self, input_dtype: str) -> str:
        """Dtype of the outputs for inputs of ``input_dtype`` (the layer's dtype)."""
        return self.dtype

    def _check_symbolic_input(self, input_shape: Any) -> None:
        """Refuse an input shape the built layer's weights cannot take (a shared layer
        called again): by default the last axis must match the shape it was built for."""
        built_for = self.input_shape
        if (not self.built or not self.weights or not isinstance(input_shape, tuple)
                or not isinstance(built_for, tuple) or not built_for or not input_shape):
            return
        got, want = input_shape[-1], built_for[-1]
        if got is not None and want is not None and got != want:
            raise ValueError(f"expected a last axis of {want} (the layer was built for input "
                             f"shape {built_for}), got {got}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call on arrays: build on first use and run :meth:`forward` (eager). Call on
        symbolic tensors from ``Input``: record a node and return symbolic outputs."""
        inputs, kwargs = self._split_call(args, kwargs)
        if is_symbolic(inputs):
            if kwargs.get("mask") is not None:
                raise ValueError(f"Layer {self.name!r}: masks of symbolic tensors flow "
                                 "through the graph; do not pass `mask=` when building a model")
            kwargs = {k: v for k, v in kwargs.items() if k not in ("mask", "training")}
            return symbolic_call(self, inputs, kwargs)
        mask = kwargs.pop("mask", None)
        training = bool(kwargs.pop("training", False) or False)
        if isinstance(inputs, list):
            arrays: Any = [np.asarray(a) for a in inputs]
            self._ensure_built([(None,) + a.shape[1:] for a in arrays])
            if mask is not None:
                mask = [None if m is None else np.asarray(m, dtype=bool) for m in mask]
        else:
            arrays = np.asarray(inputs)
            self._ensure_built((None,) + arrays.shape[1:])
            if mask is not None:
                mask = np.asarray(mask, dtype=bool)
        return self.forward(arrays, mask=mask, training=training, **kwargs)

    # -- functional-API views -------------------------------------------------------------
    def _only_node(self, what: str) -> Node:
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name!r} has never been called on a symbolic "
                                 f"input, so it has no `{what}`")
        if len(self._inbound_nodes) > 1 and not isinstance(self, InputLayer):
            raise AttributeError(f"Layer {self.name!r} has been called {len(self._inbound_nodes)}"
                                 f" times (shared); `{what}` is ambiguous")
        return self._inbound_nodes[0]

    @property
    def output(self) -> Any:
        """The symbolic output(s) of the layer's one call in a functional model."""
        node = self._only_node("output")
        return node.outputs[0] if node.single_output else list(node.outputs)

    @property
    def input(self) -> Any:
        """The symbolic input(s) of the layer's one call in a functional model."""
        node = self._only_node("input")
        if isinstance(self, InputLayer):
            return node.outputs[0]
        return node.inputs[0] if node.single_input else list(node.inputs)

    def _cast_input(self, x: Any, expected_ndim: Optional[Sequence[int]] = None) -> np.ndarray:
        arr = backend.as_float(x, self.dtype, f"{self.name} input")
        if expected_ndim is not None and arr.ndim not in expected_ndim:
            raise ValueError(f"Layer {self.name!r} expects input with ndim in "
                             f"{tuple(expected_ndim)}, got shape {arr.shape}")
        return arr

    # -- config -------------------------------------------------------------------------
    def get_config(self) -> Dict[str, Any]:
        """Constructor arguments, JSON-serialisable (Keras ``get_config``)."""
        cfg: Dict[str, Any] = {"name": self.name, "trainable": self.trainable,
                               "dtype": self.dtype}
        if self.input_shape_arg is not None:
            cfg["batch_input_shape"] = list(self.input_shape_arg)
        if getattr(self, "activity_regularizer", None) is not None:
            cfg["activity_regularizer"] = regularizers_mod.serialize(self.activity_regularizer)
        return cfg

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Layer":
        """Rebuild a layer from :meth:`get_config`."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"

    # -- pickling: through rnnkit's own format (rnnkit.saving), never by attribute dict ---
    def __reduce__(self) -> Any:
        """A layer pickles as the bytes of rnnkit's format (config + weights; see
        :func:`rnnkit.saving.dumps_layer`); unpickling checks them as loading a file does.
        A layer whose config cannot be written (``Lambda``) raises PicklingError."""
        from .. import saving
        return (saving.loads_layer, (saving.dumps_layer(self),))

    def __deepcopy__(self, memo: Dict[int, Any]) -> Any:
        """``copy.deepcopy``: an independent copy of every attribute (weights included), as
        before pickling went through the format -- so a ``Lambda`` layer copies too."""
        return backend.plain_deepcopy(self, memo)


def _hooked_build(fn: Any) -> Any:
    """Record the input shape of the outermost ``build`` call (what unpickling builds with)."""
    def build(self: Layer, input_shape: Any, *args: Any, **kwargs: Any) -> Any:
        if self.__dict__.get("_in_build"):
            return fn(self, input_shape, *args, **kwargs)
        self.__dict__["_in_build"] = True
        try:
            self.__dict__["_build_shape"] = input_shape
            return fn(self, input_shape, *args, **kwargs)
        finally:
            self.__dict__["_in_build"] = False
    build.__wrapped__ = fn  # type: ignore[attr-defined]
    build.__doc__ = fn.__doc__
    build.__name__ = fn.__name__
    return build


def _batch_of(y: Any) -> int:
    return int(np.shape(y)[0]) if np.ndim(y) > 0 else 1


def _hooked_forward(fn: Any) -> Any:
    def forward(self: Layer, x: Any, *args: Any, **kwargs: Any) -> Any:
        reg = getattr(self, "activity_regularizer", None)
        active = self.__dict__.get("_activity_active")
        if reg is None or active is not None and current_slot() in active:
            return fn(self, x, *args, **kwargs)
        active = self.__dict__.setdefault("_activity_active", set())
        slot = current_slot()
        active.add(slot)
        try:
            y = fn(self, x, *args, **kwargs)
        finally:
            active.discard(slot)
        outs = y if isinstance(y, list) else [y]
        for out in outs:  # Keras: penalty(output) / batch size, for every output
            regularizers_mod.record_activity(reg(out) / _batch_of(out))
        need_grad = kwargs.get("need_grad", args[2] if len(args) > 2 else False)
        if need_grad:
            self.__dict__.setdefault("_activity_cache", {})[slot] = outs
        return y
    forward.__wrapped__ = fn  # type: ignore[attr-defined]
    forward.__doc__ = fn.__doc__
    forward.__name__ = fn.__name__
    return forward


def _hooked_backward(fn: Any) -> Any:
    def backward(self: Layer, dy: Any, *args: Any, **kwargs: Any) -> Any:
        reg = getattr(self, "activity_regularizer", None)
        cache = self.__dict__.get("_activity_cache")
        outs = None if reg is None or not cache else cache.pop(current_slot(), None)
        if outs is not None:
            dys = dy if isinstance(dy, list) else [dy]
            dys = [(np.zeros_like(o) if d is None else d)
                   + (reg.gradient(o) / _batch_of(o)).astype(np.asarray(o).dtype, copy=False)
                   for d, o in zip(dys, outs)]
            dy = dys if isinstance(dy, list) else dys[0]
        return fn(self, dy, *args, **kwargs)
    backward.__wrapped__ = fn  # type: ignore[attr-defined]
    backward.__doc__ = fn.__doc__
    backward.__name__ = fn.__name__
    return backward


@register
class InputLayer(Layer):
    """Declares the input shape of a Sequential model; not shown in ``summary()``."""

    CONFIG_FIELDS = {"name": cs.v_opt_str, "batch_shape": cs.v_shape, "shape": cs.v_shape,
                     "input_shape": cs.v_shape, "batch_size": cs.v_opt_dim,
                     "sparse": cs.v_opt_bool, "dtype": cs.v_opt_str}
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    def __init__(self, shape: Optional[Sequence[Optional[int]]] = None,
                 batch_size: Optional[int] = None, dtype: Optional[str] = None,
                 name: Optional[str] = None, batch_shape: Optional[Sequence[Optional[int]]] = None,
                 sparse: Optional[bool] = None, **kwargs: Any) -> None:
        if kwargs.get("input_shape") is not None and shape is None:
            shape = kwargs.pop("input_shape")
        if shape is None and batch_shape is None:
            raise ValueError("InputLayer needs `shape` (without the batch axis) or `batch_shape`")
        super().__init__(name=name or backend.unique_name("input_layer"))
        self.batch_shape: Shape = (tuple(batch_shape) if batch_shape is not None
                                   else (batch_size,) + tuple(shape))  # type: ignore[operator]
        self.input_dtype = dtype
        self.shape = self.batch_shape
        self.input_shape = self.batch_shape
        self.output_shape = self.batch_shape
        self.built = True
        node = Node(self, [], True, {})
        node.outputs = [KerasTensor(self.batch_shape, dtype or backend.floatx(), node, 0,
                                    name=self.name)]
        self._inbound_nodes.append(node)

    def get_config(self) -> Dict[str, Any]:
        return {"batch_shape": list(self.batch_shape), "dtype": self.input_dtype,
                "name": self.name}


def Input(shape: Optional[Sequence[Optional[int]]] = None, batch_size: Optional[int] = None,
          dtype: Optional[str] = None, name: Optional[str] = None,
          batch_shape: Optional[Sequence[Optional[int]]] = None) -> KerasTensor:
    """Keras ``Input``: a symbolic tensor of shape ``(batch_size,) + shape`` to build a
    functional ``Model`` from (``Sequential.add`` also accepts it). ``dtype`` is the input's
    dtype (e.g. ``"int32"`` for token ids)."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name,
                       batch_shape=batch_shape)
    return layer._inbound_nodes[0].outputs[0]
