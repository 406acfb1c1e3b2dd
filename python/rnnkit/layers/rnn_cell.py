"""Keras's cell API on the fused recurrent layers: ``SimpleRNNCell``, ``LSTMCell``,
``GRUCell``, ``StackedRNNCells`` and the generic ``RNN(cell)`` layer.

A cell here is a *config*: it holds the Keras cell constructor arguments and is never run
step by step. ``RNN(LSTMCell(8))`` runs as one fused :class:`~rnnkit.layers.LSTM` (the whole
sequence in one kernel call), and ``RNN([cell1, cell2])`` (Keras's ``StackedRNNCells``) as a
chain of fused layers, the first ones returning their sequences. Both are exact: at a masked
step Keras's stacked cell keeps every cell's state, which is what each fused layer does with
the same mask. No Python loop over time exists here.

Weights, in Keras order: each cell's ``kernel``, ``recurrent_kernel``, ``bias`` (shapes as the
matching fused layer), cell after cell.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import config_schema as cs
from .base import Layer, Shape, Weight
from .recurrent import GRU, LSTM, SimpleRNN, _RNN, split_state_call
from .registry import deserialize, register, serialize

__all__ = ["SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells", "RNN"]

_REGULARIZERS = ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                 "kernel_constraint", "recurrent_constraint", "bias_constraint")
_CELL_FIELDS = {**cs.BASE_FIELDS, "units": cs.v_dim, "activation": cs.v_activation,
                "use_bias": cs.v_bool, "kernel_initializer": cs.v_initializer,
                "recurrent_initializer": cs.v_initializer, "bias_initializer": cs.v_initializer,
                "dropout": cs.v_num, "recurrent_dropout": cs.v_num, "seed": cs.v_seed,
                **cs.weight_option_fields("kernel", "recurrent", "bias")}
#: Fused-layer config keys that are cell arguments (the rest are sequence arguments).
_CELL_KEYS = ("units", "activation", "recurrent_activation", "use_bias", "unit_forget_bias",
              "kernel_initializer", "recurrent_initializer", "bias_initializer", "dropout",
              "recurrent_dropout", "reset_after", "seed") + _REGULARIZERS


class _Cell(Layer):
    """A recurrent cell as a config for the fused layer ``_layer_cls`` (see module doc).

    ``weights`` are those of the fused layer an :class:`RNN` built for it (empty before).
    """

    _layer_cls: type = SimpleRNN

    def __init__(self, units: int, **kwargs: Any) -> None:
        base = {k: kwargs.pop(k) for k in ("name", "dtype", "trainable") if k in kwargs}
        super().__init__(**base)
        # The fused layer validates the arguments (units, activations, rates...) now.
        try:
            self._template: _RNN = self._layer_cls(units, **kwargs)
        except (TypeError, ValueError) as exc:
            raise type(exc)(str(exc).replace(self._layer_cls.__name__, type(self).__name__)
                            ) from None
        self.units = self._template.units
        self._layer: Optional[_RNN] = None

    @property
    def state_size(self) -> List[int]:
        """Sizes of the cell's states (``[units]``, ``[units, units]`` for LSTM)."""
        return [self.units] * self._template._n_states

    @property
    def weights(self) -> List[Weight]:
        return self._layer.weights if self._layer is not None else []

    def cell_kwargs(self) -> Dict[str, Any]:
        """The cell's arguments, as the fused layer's ``get_config`` spells them."""
        cfg = self._template.get_config()
        return {k: cfg[k] for k in _CELL_KEYS if k in cfg}

    def make_layer(self, dtype: str, **seq_kwargs: Any) -> _RNN:
        """A fused layer with this cell's arguments and the given sequence arguments."""
        return self._layer_cls(name=self.name, dtype=dtype, trainable=self.trainable,
                               **self.cell_kwargs(), **seq_kwargs)

    def build(self, input_shape: Shape) -> None:
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x: Any, mask: Any = None, training: bool = False,
                need_grad: bool = False) -> Any:
        raise TypeError(f"{type(self).__name__} {self.name!r} is not run step by step in "
                        f"rnnkit; wrap it: RNN({type(self).__name__}(...))")

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), **self.cell_kwargs()}


@register
class SimpleRNNCell(_Cell):
    """Cell of :class:`~rnnkit.layers.SimpleRNN` (arguments as Keras 3's SimpleRNNCell)."""

    CONFIG_FIELDS = _CELL_FIELDS
    CONFIG_REQUIRED: Tuple[str, ...] = ("units",)
    _layer_cls = SimpleRNN

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout,
                         recurrent_dropout=recurrent_dropout, seed=seed, **kwargs)


@register
class LSTMCell(_Cell):
    """Cell of :class:`~rnnkit.layers.LSTM` (arguments as Keras 3's LSTMCell)."""

    CONFIG_FIELDS = {**_CELL_FIELDS, "recurrent_activation": cs.v_activation,
                     "unit_forget_bias": cs.v_bool}
    CONFIG_REQUIRED: Tuple[str, ...] = ("units",)
    _layer_cls = LSTM

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, seed: Optional[int] = None,
                 **kwargs: Any) -> None:
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, unit_forget_bias=unit_forget_bias,
                         dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed,
                         **kwargs)


@register
class GRUCell(_Cell):
    """Cell of :class:`~rnnkit.layers.GRU` (arguments as Keras 3's GRUCell)."""

    CONFIG_FIELDS = {**_CELL_FIELDS, "recurrent_activation": cs.v_activation,
                     "reset_after": cs.v_bool}
    CONFIG_REQUIRED: Tuple[str, ...] = ("units",)
    _layer_cls = GRU

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, reset_after: bool = True,
                 seed: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout,
                         recurrent_dropout=recurrent_dropout, reset_after=reset_after,
                         seed=seed, **kwargs)


@register
class StackedRNNCells(Layer):
    """Keras's ``StackedRNNCells``: cells applied one after the other at each step (here:
    one fused layer per cell, see :class:`RNN`). States: each cell's, in cell order."""

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "cells": cs.v_layer_refs}
    CONFIG_REQUIRED: Tuple[str, ...] = ("cells",)

    def __init__(self, cells: Sequence[_Cell], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        cells = list(cells) if isinstance(cells, (list, tuple)) else cells
        if not isinstance(cells, list) or not cells or not all(isinstance(c, _Cell)
                                                               for c in cells):
            raise ValueError("StackedRNNCells: `cells` must be a non-empty list of "
                             f"SimpleRNNCell/LSTMCell/GRUCell, got {cells!r}")
        self.cells: List[_Cell] = cells

    @property
    def state_size(self) -> List[List[int]]:
        """Each cell's state sizes."""
        return [c.state_size for c in self.cells]

    @property
    def weights(self) -> List[Weight]:
        return [w for c in self.cells for w in c.weights]

    def forward(self, x: Any, mask: Any = None, training: bool = False,
                need_grad: bool = False) -> Any:
        raise TypeError(f"StackedRNNCells {self.name!r} is not run step by step in rnnkit; "
                        "wrap it: RNN([cell, ...])")

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "cells": [serialize(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "StackedRNNCells":
        config = dict(config)
        config["cells"] = [deserialize(c) for c in config["cells"]]
        return cls(**config)


@register
class RNN(Layer):
    """Keras's generic ``RNN(cell)`` layer, run as fused layers (see the module docstring).

    ``cell``: a SimpleRNNCell/LSTMCell/GRUCell, a list of them, or a StackedRNNCells.
    Input ``(B, T, I)``; output ``(B, T, units)`` with ``return_sequences`` (units of the last
    cell) else ``(B, units)``; with ``return_state`` the output is followed by the states of
    every cell, flat, in cell order (``[out, h1, c1, h2, ...]``; Keras nests them per cell).
    ``initial_state`` takes the same flat list. The input mask is used by every cell; the
    output mask is the input mask with ``return_sequences``, else None.
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "cell": cs.v_layer_ref, "return_sequences": cs.v_bool,
                     "return_state": cs.v_bool, "go_backwards": cs.v_bool,
                     "stateful": cs.v_bool, "unroll": cs.v_bool,
                     "zero_output_for_mask": cs.v_bool}
    CONFIG_REQUIRED: Tuple[str, ...] = ("cell",)

    supports_masking = True

    def __init__(self, cell: Any, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 zero_output_for_mask: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(list(cell))
        if not isinstance(cell, (_Cell, StackedRNNCells)):
            raise ValueError("RNN: `cell` must be a SimpleRNNCell, LSTMCell, GRUCell, a list "
                             f"of them or a StackedRNNCells, got {cell!r}")
        for arg, val in (("return_sequences", return_sequences), ("return_state", return_state),
                         ("go_backwards", go_backwards), ("stateful", stateful),
                         ("unroll", unroll), ("zero_output_for_mask", zero_output_for_mask)):
            if not isinstance(val, (bool, np.bool_)):
                raise ValueError(f"RNN: `{arg}` must be a bool, got {val!r}")
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)  # accepted for Keras compatibility; never unrolled
        self.zero_output_for_mask = bool(zero_output_for_mask)
        cells = self._cells
        self.layers: List[_RNN] = []
        for i, c in enumerate(cells):
            last = i == len(cells) - 1
            layer = c.make_layer(
                self.dtype, return_sequences=self.return_sequences or not last,
                return_state=True, go_backwards=self.go_backwards and i == 0,
                stateful=self.stateful, zero_output_for_mask=self.zero_output_for_mask and last)
            c._layer = layer
            self.layers.append(layer)

    @property
    def _cells(self) -> List[_Cell]:
        return self.cell.cells if isinstance(self.cell, StackedRNNCells) else [self.cell]

    @property
    def _state_counts(self) -> List[int]:
        return [layer._n_states for layer in self.layers]

    @property
    def weights(self) -> List[Weight]:
        return [w for layer in self.layers for w in layer.weights]

    @property
    def states(self) -> Optional[List[np.ndarray]]:
        """The carried states of a stateful layer, flat in cell order (None before a call)."""
        if any(layer.states is None for layer in self.layers):
            return None
        return [s for layer in self.layers for s in layer.states]

    def reset_state(self, states: Optional[Sequence[Any]] = None) -> None:
        """Zero the states of a stateful layer (or set them from a flat list)."""
        if not self.stateful:
            raise AttributeError("Layer must be stateful.")
        parts = self._split_states(states) if states is not None else [None] * len(self.layers)
        for layer, part in zip(self.layers, parts):
            layer.reset_state(part)

    reset_states = reset_state

    def _split_states(self, flat: Sequence[Any]) -> List[List[Any]]:
        flat = list(flat)
        total = sum(self._state_counts)
        if len(flat) != total:
            raise ValueError(f"RNN {self.name!r}: `initial_state` needs {total} tensor(s) (the "
                             f"states of every cell, in order), got {len(flat)}")
        out, i = [], 0
        for n in self._state_counts:
            out.append(flat[i:i + n])
            i += n
        return out

    # -- shapes ----------------------------------------------------------------------------
    def _split_call(self, args: Sequence[Any], kwargs: Dict[str, Any]) -> Tuple[Any, Dict[str, Any]]:
        """``layer(x, initial_state=[...])`` -> inputs ``[x, *states]``."""
        return split_state_call(self, args, kwargs)

    def build(self, input_shape: Any) -> None:
        if isinstance(input_shape, list) or (isinstance(input_shape, tuple) and input_shape
                                             and isinstance(input_shape[0], (tuple, list))):
            input_shape = tuple(input_shape[0])
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"RNN {self.name!r} expects input (batch, timesteps, features) "
                             f"with known features, got {input_shape}")
        shape = tuple(input_shape)
        for c, layer in zip(self._cells, self.layers):
            layer._ensure_built(shape)
            Layer.build(c, shape)
            shape = shape[:2] + (layer.units,)
        super().build(tuple(input_shape))

    def compute_output_shape(self, input_shape: Any) -> Any:
        if isinstance(input_shape, list):  # [x, *initial states]
            if len(input_shape) - 1 != sum(self._state_counts):
                raise ValueError(f"`initial_state` needs {sum(self._state_counts)} tensor(s), "
                                 f"got {len(input_shape) - 1}")
            input_shape = input_shape[0]
        b, t = input_shape[0], input_shape[1]
        units = self.layers[-1].units
        out = (b, t, units) if self.return_sequences else (b, units)
        if not self.return_state:
            return out
        return [out] + [(b, layer.units) for layer in self.layers for _ in range(layer._n_states)]

    def compute_mask(self, x: Any, mask: Any) -> Any:
        if isinstance(mask, list):  # [x's mask, states' masks]
            mask = mask[0]
        out = mask if self.return_sequences else None
        return [out] + [None] * sum(self._state_counts) if self.return_state else out

    # -- forward / backward ------------------------------------------------------------------
    def forward(self, x: Any, mask: Any = None, training: bool = False, need_grad: bool = False,
                initial_state: Any = None) -> Any:
        states_given = isinstance(x, list)
        if states_given:  # [x, *initial states] (see _split_call)
            x, initial_state = x[0], x[1:]
            mask = mask[0] if isinstance(mask, list) else mask
        parts: List[Optional[List[Any]]] = (self._split_states(initial_state)
                                            if initial_state is not None
                                            else [None] * len(self.layers))
        h = x
        states: List[np.ndarray] = []
        for i, layer in enumerate(self.layers):
            res = layer.forward(h, mask, training, need_grad, initial_state=parts[i])
            h = res[0]
            states.extend(res[1:])
            if i == 0 and self.go_backwards and mask is not None:
                # the first layer's sequence is in processing (reversed) order
                mask = np.asarray(mask, dtype=bool)[:, ::-1]
        if need_grad:
            self._cache = {"states_given": states_given}
        return [h] + states if self.return_state else h

    def backward(self, dy: Any) -> Any:
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward() needs a forward(need_grad=True) first")
        c, self._cache = self._cache, None
        dstates: List[Optional[np.ndarray]] = [None] * sum(self._state_counts)
        if self.return_state:
            dy, dstates = dy[0], list(dy[1:])
        parts = self._split_states(dstates)
        d = dy
        grads: List[List[np.ndarray]] = [[] for _ in self.layers]
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            d = layer.backward(d, parts[i])
            grads[i] = list(layer.initial_state_grads or [])
        self.initial_state_grads = [g for part in grads for g in part]
        return [d] + self.initial_state_grads if c["states_given"] else d

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards,
                "stateful": self.stateful, "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask,
                "cell": serialize(self.cell)}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "RNN":
        config = dict(config)
        config["cell"] = deserialize(config["cell"])
        return cls(**config)
