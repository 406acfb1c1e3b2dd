"""Symbolic tensors and call nodes: what a layer returns when it is called on ``Input``.

Calling a layer on :class:`KerasTensor` objects (Keras's functional API) runs nothing: it
builds the layer for the input shapes, records a :class:`Node` (the layer, its input tensors,
the keyword arguments of the call) and returns new symbolic tensors with the output shapes.
``rnnkit.Model(inputs, outputs)`` later walks the nodes back from its outputs
(:mod:`rnnkit.graph`).

Caches of calls (see :func:`call_slot`): one layer can be called at several nodes (shared
layers), so a layer keeps one pending backward cache per *slot*; the graph executor runs every
node inside its own slot.
"""
from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, ContextManager, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._thread_scope import ThreadScoped
from .. import backend

if TYPE_CHECKING:  # pragma: no cover
    from .base import Layer

__all__ = ["KerasTensor", "Node", "call_slot", "current_slot", "is_symbolic", "symbolic_call",
           "with_call_kwargs"]

Shape = Tuple[Optional[int], ...]
_SLOT = ThreadScoped(None)


def call_slot(key: Any) -> ContextManager[None]:
    """Inside this block, ``layer._cache`` reads and writes the cache stored under ``key``
    (this thread only), so the forward and backward of one node pair up even when the same
    layer runs at several nodes of a graph."""
    return _SLOT.scope(key)


def current_slot() -> Any:
    """The key of the innermost :func:`call_slot` block (``None`` outside any)."""
    return _SLOT.value


class KerasTensor:
    """A symbolic tensor: a shape (batch axis first, ``None`` = unknown), a dtype, and the
    node that produces it (``None`` for an ``Input``)."""

    def __init__(self, shape: Sequence[Optional[int]], dtype: str = "float32",
                 node: Optional["Node"] = None, index: int = 0, name: Optional[str] = None) -> None:
        self.shape: Shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = str(np.dtype(dtype)) if dtype is not None else backend.floatx()
        self.node = node
        self.index = index
        self.name = name or (node.layer.name if node is not None else "keras_tensor")

    @property
    def ndim(self) -> int:
        """Number of axes, batch included."""
        return len(self.shape)

    @property
    def layer(self) -> Optional["Layer"]:
        """The layer whose call produced this tensor (the InputLayer for an Input)."""
        return self.node.layer if self.node is not None else None

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError(f"{self!r} is symbolic (from Input); it has no values. Build a "
                        "rnnkit.Model(inputs, outputs) and call predict() on arrays")

    def __len__(self) -> int:
        raise TypeError(f"{self!r} is symbolic; use .shape")


class Node:
    """One call of ``layer`` on symbolic ``inputs`` (a flat list) producing ``outputs``.

    ``single_input``: the layer was called on one tensor (not a list); ``kwargs``: the
    call's other keyword arguments (e.g. ``use_causal_mask``), passed to ``forward``.
    """

    def __init__(self, layer: "Layer", inputs: List[KerasTensor], single_input: bool,
                 kwargs: Dict[str, Any]) -> None:
        self.layer = layer
        self.inputs = inputs
        self.single_input = single_input
        self.kwargs = kwargs
        self.outputs: List[KerasTensor] = []
        self.single_output = True

    @property
    def parents(self) -> List["Node"]:
        """Nodes that produce this node's inputs."""
        return [t.node for t in self.inputs if t.node is not None]


@functools.lru_cache(maxsize=None)
def _accepted(func: Any) -> Tuple[bool, frozenset]:
    """``(takes **kwargs, names of its parameters)`` of a function (cached: the graph asks
    for every node at every batch)."""
    params = inspect.signature(func).parameters
    return (any(p.kind is p.VAR_KEYWORD for p in params.values()), frozenset(params))


def with_call_kwargs(fn: Any, *args: Any, kwargs: Dict[str, Any]) -> Any:
    """``fn(*args, **kw)`` with the call's keyword arguments that ``fn`` declares (e.g.
    ``compute_mask(x, mask, return_attention_scores=True)``), so shape and mask rules can
    depend on how a node called its layer."""
    if not kwargs:
        return fn(*args)
    var_kw, names = _accepted(getattr(fn, "__func__", fn))
    if var_kw:
        return fn(*args, **kwargs)
    return fn(*args, **{k: v for k, v in kwargs.items() if k in names})


def is_symbolic(inputs: Any) -> bool:
    """Whether ``inputs`` (one value or a list) holds a :class:`KerasTensor`; mixing symbolic
    and concrete values raises a TypeError."""
    flat = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    kinds = [isinstance(t, KerasTensor) for t in flat]
    if any(kinds) and not all(kinds):
        raise TypeError("a layer call mixes symbolic tensors (from Input) with arrays; pass "
                        "only symbolic tensors when building a model")
    return bool(kinds) and all(kinds)


def _shape_str(shape: Any) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_str(s) for s in shape) + "]"
    return str(tuple(shape)).replace(",)", ")")


def symbolic_call(layer: "Layer", inputs: Any, kwargs: Dict[str, Any]) -> Any:
    """Record ``layer(inputs, **kwargs)`` on symbolic tensors; returns the output tensor(s).

    The layer is built for the input shapes (or, when already built, checked against them);
    a shape it cannot take raises a ValueError naming the layer, the shapes it got and the
    reason.
    """
    single = not isinstance(inputs, (list, tuple))
    flat: List[KerasTensor] = [inputs] if single else list(inputs)
    in_shape: Any = flat[0].shape if single else [t.shape for t in flat]
    try:
        layer._check_symbolic_input(in_shape)
        if not layer.built:
            layer.build(in_shape)
        out_shape = with_call_kwargs(layer.compute_output_shape, in_shape, kwargs=kwargs)
    except (ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"Layer {layer.name!r} ({type(layer).__name__}) cannot be called on "
                         f"input shape {_shape_str(in_shape)}: {exc}") from None
    node = Node(layer, flat, single, dict(kwargs))
    out_dtype = layer.output_dtype(flat[0].dtype)
    if isinstance(out_shape, list):
        node.single_output = False
        node.outputs = [KerasTensor(s, out_dtype, node, i) for i, s in enumerate(out_shape)]
    else:
        node.outputs = [KerasTensor(out_shape, out_dtype, node, 0)]
    layer._inbound_nodes.append(node)
    return node.outputs[0] if node.single_output else list(node.outputs)
