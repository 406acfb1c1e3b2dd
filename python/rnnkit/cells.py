"""The facts about rnnkit's recurrent cells, stated once.

Everything in Python that needs to know "which cells exist, how many gate blocks each has,
in which order, which states it carries, what its bias looks like, which activations it
takes" reads it from here: the NumPy reference, the Keras-style layers, the PyTorch interop,
the benchmark harness and the tests. The C++ kernels keep their own list (``cpp/``); the
tests check that both agree.

Layout conventions (Keras 3): ``kernel (I, G*H)``, ``recurrent_kernel (H, G*H)``, gate blocks
along the last axis in :attr:`Cell.gate_order`; ``bias (G*H,)``, except GRU with
``reset_after=True`` whose bias is ``(2, 3H)`` = ``[input bias; recurrent bias]``.
A *projected* cell (``lstmp``, PyTorch's ``nn.LSTM(proj_size=P)``) also takes
``projection_kernel (H, P)``; its state h and outputs are P wide, so its recurrent_kernel is
``(P, G*H)``, h0 ``(B, P)``, while c stays ``(B, H)``.

Activations: every activation parameter of every cell accepts exactly the names in
:data:`ACTIVATIONS` (case-sensitive), or ``None`` meaning ``"linear"``.
:func:`activation_error` is the one wording of the rejection, shared with the C++ module.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

__all__ = [
    "ACTIVATIONS", "Cell", "CELLS", "CELL_NAMES", "GATE_COUNTS", "get", "gate_count",
    "bias_shape", "kernel_shape", "recurrent_kernel_shape", "state_names",
    "activation_error", "normalize_activation",
]

#: Activation names accepted by every ``activation`` / ``recurrent_activation`` parameter,
#: in the order error messages list them. ``None`` is also accepted and means ``"linear"``.
#:
#: ``hard_sigmoid`` is Keras 3's ``relu6(x + 3) / 6``; ``hard_sigmoid_keras2`` is Keras 2's
#: ``clip(0.2 x + 0.5, 0, 1)`` (what a legacy Keras 2 file means by ``"hard_sigmoid"``).
#: ``gelu`` is the exact (erf) form, Keras 3's default ``approximate=False``.
ACTIVATIONS: Tuple[str, ...] = (
    "tanh", "sigmoid", "hard_sigmoid", "hard_sigmoid_keras2", "relu", "relu6", "elu", "selu",
    "softsign", "softplus", "linear", "silu", "gelu",
)


@dataclass(frozen=True)
class Cell:
    """Static description of one recurrent cell.

    Attributes:
        name: the functional name, as in ``rnnkit.ops.<name>_forward``.
        layer: the Keras layer class name.
        gate_order: one letter per gate block along the last axis of the weights, e.g.
            ``"ifco"`` for LSTM; its length is the gate count G.
        states: names of the carried states (``("h",)`` or ``("h", "c")``); the forward
            takes ``<state>0`` and returns ``<state>_last`` for each.
        activation: default of the ``activation`` parameter.
        recurrent_activation: default of ``recurrent_activation``; None when the cell has
            no such parameter.
        has_reset_after: whether the cell takes GRU's ``reset_after`` flag (and then a
            ``(2, G*H)`` bias when it is True).
        projected: whether the cell takes ``projection_kernel (H, P)`` (after
            ``recurrent_kernel``) and carries / outputs the P-wide ``r_t = m_t @ W_hr`` as h.
        cache_class: the name messages give the cell's training cache (the reference's
            class; C++'s cells.def names it the same).
    """

    name: str
    layer: str
    gate_order: str
    states: Tuple[str, ...]
    activation: str = "tanh"
    recurrent_activation: Optional[str] = None
    has_reset_after: bool = False
    projected: bool = False
    cache_class: str = ""

    @property
    def gate_count(self) -> int:
        """G, the number of gate blocks along the last axis of the weights."""
        return len(self.gate_order)

    @property
    def activation_params(self) -> Tuple[str, ...]:
        """The activation keyword arguments the cell accepts."""
        if self.recurrent_activation is None:
            return ("activation",)
        return ("activation", "recurrent_activation")

    @property
    def activation_defaults(self) -> Dict[str, str]:
        """``{parameter: default name}`` for :attr:`activation_params`."""
        out = {"activation": self.activation}
        if self.recurrent_activation is not None:
            out["recurrent_activation"] = self.recurrent_activation
        return out

    def kernel_shape(self, features: int, units: int) -> Tuple[int, int]:
        """``(I, G*H)``."""
        return (features, self.gate_count * units)

    def recurrent_kernel_shape(self, units: int, proj_size: Optional[int] = None
                               ) -> Tuple[int, int]:
        """``(H, G*H)``; ``(P, G*H)`` for a projected cell (``proj_size`` P)."""
        return (proj_size if self.projected else units, self.gate_count * units)

    def projection_kernel_shape(self, units: int, proj_size: int) -> Tuple[int, int]:
        """``(H, P)`` (projected cells)."""
        return (units, proj_size)

    def bias_shape(self, units: int, reset_after: bool = True) -> Tuple[int, ...]:
        """``(G*H,)``, or ``(2, G*H)`` for a cell with ``reset_after=True``."""
        if self.has_reset_after and reset_after:
            return (2, self.gate_count * units)
        return (self.gate_count * units,)

    def bias_layout(self, reset_after: bool = True) -> str:
        """The bias layout as error messages spell it: ``"(4*units,)"``, ``"(2, 3*units)"``."""
        if self.has_reset_after and reset_after:
            return f"(2, {self.gate_count}*units)"
        return f"({self.gate_count}*units,)"


#: Every cell, by functional name, in the canonical order.
CELLS: Mapping[str, Cell] = {
    c.name: c
    for c in (
        Cell("simple_rnn", "SimpleRNN", gate_order="h", states=("h",),
             cache_class="SimpleRNNCache"),
        Cell("lstm", "LSTM", gate_order="ifco", states=("h", "c"),
             recurrent_activation="sigmoid", cache_class="LSTMCache"),
        Cell("gru", "GRU", gate_order="zrh", states=("h",),
             recurrent_activation="sigmoid", has_reset_after=True, cache_class="GRUCache"),
        Cell("lstmp", "LSTM", gate_order="ifco", states=("h", "c"),
             recurrent_activation="sigmoid", projected=True, cache_class="LSTMPCache"),
    )
}

#: The cell names in canonical order.
CELL_NAMES: Tuple[str, ...] = tuple(CELLS)

#: ``{cell: G}`` -- the number of gate blocks of each cell.
GATE_COUNTS: Mapping[str, int] = {name: c.gate_count for name, c in CELLS.items()}


def get(name: Any) -> Cell:
    """The :class:`Cell` called ``name``; ValueError naming the known cells otherwise."""
    if isinstance(name, str) and name in CELLS:
        return CELLS[name]
    raise ValueError(f"cell must be one of {sorted(CELLS)}; got {name!r}")


def gate_count(name: str) -> int:
    """G of cell ``name`` (1 SimpleRNN, 4 LSTM and LSTMP, 3 GRU)."""
    return get(name).gate_count


def bias_shape(name: str, units: int, reset_after: bool = True) -> Tuple[int, ...]:
    """Bias shape of cell ``name``: ``(G*H,)``, or ``(2, 3H)`` for GRU with ``reset_after``."""
    return get(name).bias_shape(units, reset_after)


def kernel_shape(name: str, features: int, units: int) -> Tuple[int, int]:
    """``(I, G*H)`` of cell ``name``."""
    return get(name).kernel_shape(features, units)


def recurrent_kernel_shape(name: str, units: int, proj_size: Optional[int] = None
                           ) -> Tuple[int, int]:
    """``(H, G*H)`` of cell ``name``; ``(P, G*H)`` for a projected cell (``proj_size`` P)."""
    return get(name).recurrent_kernel_shape(units, proj_size)


def state_names(name: str) -> Tuple[str, ...]:
    """``("h",)`` or ``("h", "c")``."""
    return get(name).states


def activation_error(param: str, value: Any) -> str:
    """The message of the ValueError for an activation argument that is not accepted.

    ``activation must be one of 'tanh', 'sigmoid', ..., 'gelu' or None; got 'foo'``
    (``repr`` of the value); the C++ module raises the identical text.
    """
    names = ", ".join(f"'{a}'" for a in ACTIVATIONS)
    return f"{param} must be one of {names} or None; got {value!r}"


def normalize_activation(value: Any, param: str = "activation") -> str:
    """The canonical name of an activation argument: ``None`` -> ``"linear"``, an accepted
    name -> itself; anything else (wrong case, non-str) raises ValueError
    (:func:`activation_error`)."""
    if value is None:
        return "linear"
    if isinstance(value, str) and value in ACTIVATIONS:
        return value
    raise ValueError(activation_error(param, value))
