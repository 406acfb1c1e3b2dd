"""SimpleRNN, LSTM and GRU layers on top of the functional kernels.

Every layer runs the whole sequence with one call into ``backend.kernels()`` -- :mod:`rnnkit.ops`
(C++) by default, :mod:`rnnkit.reference` on request -- with ``training=True`` (keep the cache)
only when a backward pass will follow. BPTT is the kernel's ``*_backward``; no Python loop over
time exists here.

Dropout follows Keras 3 (variational: one mask per sequence, the same at every step):

* ``dropout``: a mask ``(B, I)`` multiplies ``x_t`` at every step -> ``x * mask[:, None, :]``.
* ``recurrent_dropout``: a mask ``(B, H)`` multiplies ``h_{t-1}`` where it enters the recurrent
  product, one mask shared by all gates. Since ``(h * m) @ R == h @ (diag(m) @ R)`` and ``m`` is
  fixed over time, each sample runs with its own row-scaled ``R_b = m_b[:, None] * R``.
  Limitation: that is one kernel call per sample (a Python loop over the batch, never over
  time), so training with ``recurrent_dropout`` is slower than without. For GRU this matches
  Keras's ``implementation=1`` cell; Keras's default fused cell ignores recurrent dropout.

Activations: ``activation`` (all three) and ``recurrent_activation`` (LSTM, GRU) take any name of
:data:`rnnkit.cells.ACTIVATIONS` (Keras's strings, e.g. ``"relu"``, ``"hard_sigmoid"``,
``"gelu"``), None (linear), or an :mod:`rnnkit.activations` object with one of those names.
They are handed to the kernels by name and serialised by name in ``get_config``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import activations, backend, cells, initializers
from .. import config_schema as cs
from ..reference import _activations as _kernel_activations
from .base import Layer, Shape
from .registry import register

__all__ = ["SimpleRNN", "LSTM", "GRU"]


def _check_rate(name: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be a float in [0, 1), got {value!r}")
    return float(value)


def _ready_input(x: Any, dtype: str) -> bool:
    """Whether ``x`` is already what ``Layer._cast_input`` would return for an RNN input: a
    3-D ndarray (not a subclass) of the layer's dtype. Such inputs skip the conversion, which
    costs ~0.9 us, a tenth of a tiny layer call; anything else goes through it (and its
    checks). The kernels check shapes, layouts and values either way."""
    return type(x) is np.ndarray and x.ndim == 3 and x.dtype == dtype


def _backward_unavailable(*args: Any, **kwargs: Any) -> np.ndarray:
    raise NotImplementedError("this activation is computed inside the RNN kernels only; its "
                              "derivative needs the pre-activation")


# Activation objects for kernel activations that rnnkit.activations does not define (so that
# layer.activation is always an Activation with a ``name``); one object per name.
_KERNEL_ONLY: Dict[str, activations.Activation] = {
    name: activations.Activation(name, entry.forward, _backward_unavailable)
    for name, entry in _kernel_activations.TABLE.items()
    if name not in activations._ALL
}


def _rnn_activation(layer: str, param: str, value: Any) -> activations.Activation:
    """Resolve ``activation`` / ``recurrent_activation`` of an RNN layer.

    Accepts None (linear), a name of :data:`rnnkit.cells.ACTIVATIONS`, or an
    :class:`rnnkit.activations.Activation` whose name is one of them; anything else is a
    ValueError naming the layer and the argument.
    """
    name = value.name if isinstance(value, activations.Activation) else value
    try:
        name = cells.normalize_activation(name, param)
    except ValueError:
        allowed = ", ".join(repr(a) for a in cells.ACTIVATIONS)
        raise ValueError(f"{layer}: `{param}` must be one of {allowed} or None, "
                         f"got {value!r}") from None
    if name in _KERNEL_ONLY:
        return _KERNEL_ONLY[name]
    return activations.get(name)


class _RNN(Layer):
    """Shared machinery of the three recurrent layers (see the module docstring)."""

    supports_masking = True
    _cell: cells.Cell = cells.CELLS["simple_rnn"]  # each layer class names its cell; the rest follows

    @property
    def _gates(self) -> int:
        return self._cell.gate_count

    @property
    def _n_states(self) -> int:
        return len(self._cell.states)

    @property
    def _h_units(self) -> int:
        """Width of h, the output: ``units``, or ``proj_size`` for a projected cell."""
        return self.units

    @property
    def _state_units(self) -> List[int]:
        """Width of each state: h, then c (always ``units``)."""
        return [self._h_units] + [self.units] * (self._n_states - 1)

    def _build_extra(self) -> None:
        """Weights of the cell besides kernel, recurrent_kernel and bias (LSTM projection)."""

    def _extra_grads(self, grads: List[Dict[str, np.ndarray]]) -> None:
        """Set the gradients of the weights of :meth:`_build_extra` (one dict per call)."""

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 seed: Optional[int] = None, zero_output_for_mask: bool = False,
                 **kwargs: Any) -> None:
        self._weight_options(kwargs, ("kernel", "recurrent", "bias"))
        kwargs.pop("use_cudnn", None)  # no GPU path: accepted and ignored
        kwargs.pop("implementation", None)
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"{type(self).__name__}: `units` must be a positive int, got {units!r}")
        self.units = int(units)
        cls = type(self).__name__
        self.activation = _rnn_activation(cls, "activation", activation)
        self.recurrent_activation = _rnn_activation(cls, "recurrent_activation",
                                                    recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)  # accepted for Keras compatibility; the kernels never unroll
        self.seed = seed
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self._rng = backend.rng(seed) if seed is not None else None
        self._states: Optional[List[np.ndarray]] = None
        self._cache: Optional[Dict[str, Any]] = None
        self.initial_state_grads: Optional[List[np.ndarray]] = None

    # -- weights ------------------------------------------------------------------------
    def _bias_value(self) -> Any:
        return self.bias_initializer

    def _bias_shape(self) -> Tuple[int, ...]:
        return self._cell.bias_shape(self.units, getattr(self, "reset_after", True))

    def _split_call(self, args: Sequence[Any], kwargs: Dict[str, Any]) -> Tuple[Any, Dict[str, Any]]:
        """``layer(x, initial_state=[h, c])`` -> inputs ``[x, h, c]`` (``x`` alone without
        states), so a graph can wire another layer's returned states into this one."""
        return split_state_call(self, args, kwargs)

    def build(self, input_shape: Shape) -> None:
        if isinstance(input_shape, list):  # [x, *initial states]
            input_shape = input_shape[0]
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects input (batch, timesteps, "
                             f"features) with known features, got {input_shape}")
        gh = self._gates * self.units
        self.kernel = self.add_weight("kernel", (input_shape[-1], gh), self.kernel_initializer,
                                      **self._weight_kw("kernel"))
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self._h_units, gh),
                                                self.recurrent_initializer,
                                                **self._weight_kw("recurrent"))
        self._build_extra()
        self.bias = (self.add_weight("bias", self._bias_shape(), self._bias_value(),
                                     **self._weight_kw("bias")) if self.use_bias else None)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Any:
        if isinstance(input_shape, list):  # [x, *initial states]
            states = input_shape[1:]
            if len(states) != self._n_states:
                raise ValueError(f"`initial_state` needs {self._n_states} tensor(s), got "
                                 f"{len(states)}")
            for i, s in enumerate(states):
                n = self._state_units[i]
                if len(s) != 2 or s[-1] not in (None, n):
                    raise ValueError(f"`initial_state[{i}]` has shape {tuple(s)}, expected "
                                     f"(batch, {n})")
            input_shape = input_shape[0]
        out = ((input_shape[0], input_shape[1], self._h_units) if self.return_sequences
               else (input_shape[0], self._h_units))
        if self.return_state:
            return [out] + [(input_shape[0], n) for n in self._state_units]
        return out

    def compute_mask(self, x: Any, mask: Any) -> Any:
        if isinstance(mask, list):  # [x's mask, states' masks]
            mask = mask[0]
        out = mask if self.return_sequences else None
        return [out] + [None] * self._n_states if self.return_state else out

    # -- states -------------------------------------------------------------------------
    @property
    def states(self) -> Optional[List[np.ndarray]]:
        """The carried states of a stateful layer (None before the first call)."""
        return self._states

    def reset_state(self, states: Optional[Sequence[Any]] = None) -> None:
        """Zero the states of a stateful layer (or set them to ``states``)."""
        if not self.stateful:
            raise AttributeError("Layer must be stateful.")
        if states is None:
            if self._states is not None:
                self._states = [np.zeros_like(s) for s in self._states]
        else:
            self._states = [np.array(s, dtype=self.dtype) for s in states]

    reset_states = reset_state

    def _initial_states(self, initial_state: Any, batch: int) -> List[Optional[np.ndarray]]:
        if initial_state is not None:
            if isinstance(initial_state, np.ndarray):
                initial_state = [initial_state]
            states = list(initial_state)
            if len(states) != self._n_states:
                raise ValueError(f"{type(self).__name__}: `initial_state` needs {self._n_states} "
                                 f"array(s), got {len(states)}")
            out = []
            for i, s in enumerate(states):
                s = backend.as_float(s, self.dtype, "initial_state")
                if s.shape != (batch, self._state_units[i]):
                    raise ValueError(f"`initial_state[{i}]` has shape {s.shape}, expected "
                                     f"{(batch, self._state_units[i])}")
                out.append(s)
            return out
        if self.stateful:
            if self._states is None:
                self._states = [np.zeros((batch, n), self.dtype) for n in self._state_units]
            if self._states[0].shape[0] != batch:
                raise ValueError(f"stateful layer {self.name!r} holds states for batch size "
                                 f"{self._states[0].shape[0]}, got a batch of {batch}; use a "
                                 "fixed batch size (and no partial last batch)")
            return list(self._states)
        return [None] * self._n_states

    # -- kernel calls (per layer type) --------------------------------------------------------
    def _run(self, k: Any, x: np.ndarray, rk: np.ndarray, states: List[Optional[np.ndarray]],
             mask: Optional[np.ndarray], need_grad: bool) -> Tuple[np.ndarray, List[np.ndarray], Any]:
        raise NotImplementedError

    def _grads(self, k: Any, cache: Any, dy: Optional[np.ndarray],
               dstates: List[Optional[np.ndarray]]) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def _keep_mask(self, rate: float, shape: Tuple[int, ...]) -> np.ndarray:
        rng = self._rng if self._rng is not None else backend.rng()
        return ((rng.random(shape) >= rate) / (1.0 - rate)).astype(self.dtype)

    # -- forward / backward -------------------------------------------------------------
    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False, initial_state: Any = None) -> Any:
        states_given = isinstance(x, list)
        if states_given:  # [x, *initial states] (see _split_call)
            x, initial_state = x[0], x[1:]
            mask = mask[0] if isinstance(mask, list) else mask
        if not _ready_input(x, self.dtype):
            x = self._cast_input(x, (3,))
        if x.shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"{type(self).__name__} {self.name!r}: input has {x.shape[-1]} "
                             f"features, expected {self.kernel.shape[0]} (input shape {x.shape})")
        b, t = x.shape[0], x.shape[1]
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (b, t):
                raise ValueError(f"`mask` has shape {mask.shape}, expected {(b, t)}")
        states = self._initial_states(initial_state, b)
        k = backend.kernels()
        dp = self._keep_mask(self.dropout, (b, x.shape[2])) if training and self.dropout else None
        rdp = (self._keep_mask(self.recurrent_dropout, (b, self._h_units))
               if training and self.recurrent_dropout else None)
        x_in = x if dp is None else x * dp[:, None, :]  # same input mask at every step
        rk = self.recurrent_kernel.value
        if rdp is None:
            y, last, cache = self._run(k, x_in, rk, states, mask, need_grad)
            caches = [cache]
        else:
            # One call per sample with R_b = diag(m_b) R (see module docstring).
            outs = [self._run(k, x_in[i:i + 1], rdp[i][:, None] * rk,
                              [None if s is None else s[i:i + 1] for s in states],
                              None if mask is None else mask[i:i + 1], need_grad)
                    for i in range(b)]
            y = np.concatenate([o[0] for o in outs], axis=0)
            last = [np.concatenate([o[1][j] for o in outs], axis=0) for j in range(self._n_states)]
            caches = [o[2] for o in outs]
        zero_mask = None
        if self.zero_output_for_mask and self.return_sequences and mask is not None:
            zero_mask = (mask[:, ::-1] if self.go_backwards else mask)[..., None].astype(y.dtype)
            y = y * zero_mask  # masked steps output zeros (y is in processing order)
        if self.stateful:
            self._states = [s.copy() for s in last]
        if need_grad:
            self._cache = {"caches": caches, "dp": dp, "rdp": rdp, "zero_mask": zero_mask,
                           "states_given": states_given}
        out = y if self.return_sequences else last[0]
        return [out] + list(last) if self.return_state else out

    def backward(self, dy: Any, dstates: Optional[Sequence[Optional[np.ndarray]]] = None
                 ) -> Any:
        """BPTT via the kernel. ``dstates`` are gradients of returned states (return_state).
        Returns ``dL/dx``, or ``[dL/dx, dL/dstate...]`` when the call had initial states as
        inputs (``initial_state_grads`` holds the state gradients either way)."""
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward() needs a forward(need_grad=True) first")
        c, self._cache = self._cache, None
        if self.return_state and isinstance(dy, (list, tuple)):
            dy, dstates = dy[0], list(dy[1:])
        ds: List[Optional[np.ndarray]] = list(dstates) if dstates else [None] * self._n_states
        dseq = dy if self.return_sequences else None
        if not self.return_sequences:
            ds[0] = dy if ds[0] is None else ds[0] + dy
        if dseq is not None and c["zero_mask"] is not None:
            dseq = dseq * c["zero_mask"]
        k = backend.kernels()
        rdp, caches = c["rdp"], c["caches"]
        if rdp is None:
            g = self._grads(k, caches[0], dseq, ds)
            dx, dk, dr = g["x"], g["kernel"], g["recurrent_kernel"]
            db = g.get("bias")
            dh0 = [g["h0"]] + ([g["c0"]] if self._n_states == 2 else [])
            self._extra_grads([g])
        else:
            gs = [self._grads(k, caches[i], None if dseq is None else dseq[i:i + 1],
                              [None if d is None else d[i:i + 1] for d in ds])
                  for i in range(len(caches))]
            dx = np.concatenate([g["x"] for g in gs], axis=0)
            dk = sum(g["kernel"] for g in gs)
            # R_b = diag(m_b) R  ->  dR = sum_b diag(m_b) dR_b
            dr = sum(rdp[i][:, None] * g["recurrent_kernel"] for i, g in enumerate(gs))
            db = sum(g["bias"] for g in gs) if self.bias is not None else None
            keys = ["h0", "c0"][: self._n_states]
            dh0 = [np.concatenate([g[key] for g in gs], axis=0) for key in keys]
            self._extra_grads(gs)
        self.kernel.grad = dk
        self.recurrent_kernel.grad = dr
        if self.bias is not None:
            self.bias.grad = db
        self.initial_state_grads = dh0
        dx = dx if c["dp"] is None else dx * c["dp"][:, None, :]
        return [dx] + list(dh0) if c["states_given"] else dx

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": self.stateful,
                "unroll": self.unroll, "seed": self.seed,
                "zero_output_for_mask": self.zero_output_for_mask,
                **self._weight_options_config()}


@register
class SimpleRNN(_RNN):
    """Fully connected RNN: ``h_t = act(x_t K + b + h_{t-1} R)``; act tanh (default) or any
    other name of :data:`rnnkit.cells.ACTIVATIONS`.

    Weights ``kernel (I, H)``, ``recurrent_kernel (H, H)``, ``bias (H,)``. Arguments as Keras 3.
    """

    CONFIG_FIELDS = cs.RNN_FIELDS
    CONFIG_REQUIRED: Tuple[str, ...] = ("units",)

    def __init__(self, units: int, activation: Any = "tanh", **kwargs: Any) -> None:
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)

    def _run(self, k, x, rk, states, mask, need_grad):  # type: ignore[override]
        y, h, cache = k.simple_rnn_forward(
            x, self.kernel.value, rk, None if self.bias is None else self.bias.value,
            h0=states[0], activation=self.activation.name, mask=mask,
            go_backwards=self.go_backwards, training=need_grad)
        return y, [h], cache

    def _grads(self, k, cache, dy, dstates):  # type: ignore[override]
        return k.simple_rnn_backward(cache, dy, dstates[0])

    def get_config(self) -> Dict[str, Any]:
        return super().get_config()


def split_state_call(layer: Layer, args: Sequence[Any], kwargs: Dict[str, Any]
                     ) -> Tuple[Any, Dict[str, Any]]:
    """The ``_split_call`` of recurrent layers: ``initial_state`` becomes extra inputs."""
    inputs, kwargs = Layer._split_call(layer, args, kwargs)
    states = kwargs.pop("initial_state", None)
    if states is not None:
        states = [states] if not isinstance(states, (list, tuple)) else list(states)
        inputs = (list(inputs) if isinstance(inputs, list) else [inputs]) + states
    return inputs, kwargs


class _UnitForgetBias(initializers.Initializer):
    """LSTM bias ``[i|f|c|o]``: ``base`` everywhere but ones for the forget gate. An
    initializer (not an array) so that it only runs when the weight is really created."""

    def __init__(self, base: initializers.Initializer) -> None:
        self.base = base

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> np.ndarray:
        h = int(shape[0]) // cells.gate_count("lstm")
        return np.concatenate([self.base((h,), dtype), np.ones((h,), dtype),
                               self.base((2 * h,), dtype)])


@register
class LSTM(_RNN):
    """LSTM, Keras gate order ``[i|f|c|o]``; weights ``(I, 4H)``, ``(H, 4H)``, ``(4H,)``.

    ``unit_forget_bias=True`` (default) initialises the forget-gate bias to 1. The states
    are ``[h, c]``. ``activation`` (tanh) applies to the candidate and the cell state,
    ``recurrent_activation`` (sigmoid) to the i, f, o gates.

    ``proj_size=P`` (PyTorch's ``nn.LSTM(proj_size=P)``; default None: none) adds an output
    projection ``h_t = (o * act(c_t)) @ projection_kernel``: the layer owns
    ``projection_kernel (units, P)`` (``projection_initializer``, glorot_uniform), its
    ``recurrent_kernel`` is ``(P, 4*units)``, it outputs P features and its states are
    ``[h (B, P), c (B, units)]``; it runs the ``lstmp`` kernels.
    """

    CONFIG_FIELDS = {**cs.RNN_FIELDS, "unit_forget_bias": cs.v_bool, "proj_size": cs.v_opt_dim,
                     "projection_initializer": cs.v_initializer}
    CONFIG_REQUIRED: Tuple[str, ...] = ("units",)

    _cell = cells.CELLS["lstm"]

    def __init__(self, units: int, unit_forget_bias: bool = True, proj_size: Optional[int] = None,
                 projection_initializer: Any = "glorot_uniform", **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        if proj_size is not None and (not isinstance(proj_size, (int, np.integer))
                                      or isinstance(proj_size, bool) or proj_size <= 0):
            raise ValueError(f"LSTM: `proj_size` must be a positive int or None, got {proj_size!r}")
        self.proj_size = None if proj_size is None else int(proj_size)
        self.projection_initializer = initializers.get(projection_initializer)
        if self.proj_size is not None:
            self._cell = cells.CELLS["lstmp"]

    @property
    def _h_units(self) -> int:
        return self.units if self.proj_size is None else self.proj_size

    def _build_extra(self) -> None:
        if self.proj_size is not None:
            self.projection_kernel = self.add_weight(
                "projection_kernel", (self.units, self.proj_size), self.projection_initializer,
                **self._weight_kw("projection"))

    def _extra_grads(self, grads: List[Dict[str, np.ndarray]]) -> None:
        if self.proj_size is not None:
            self.projection_kernel.grad = sum(g["projection_kernel"] for g in grads)

    def _bias_value(self) -> Any:
        if not self.unit_forget_bias:
            return self.bias_initializer
        return _UnitForgetBias(self.bias_initializer)

    def _run(self, k, x, rk, states, mask, need_grad):  # type: ignore[override]
        bias = None if self.bias is None else self.bias.value
        kw = dict(h0=states[0], c0=states[1], activation=self.activation.name,
                  recurrent_activation=self.recurrent_activation.name, mask=mask,
                  go_backwards=self.go_backwards, training=need_grad)
        if self.proj_size is None:
            y, h, c, cache = k.lstm_forward(x, self.kernel.value, rk, bias, **kw)
        else:
            y, h, c, cache = k.lstmp_forward(x, self.kernel.value, rk,
                                             self.projection_kernel.value, bias, **kw)
        return y, [h, c], cache

    def _grads(self, k, cache, dy, dstates):  # type: ignore[override]
        backward = k.lstm_backward if self.proj_size is None else k.lstmp_backward
        return backward(cache, dy, dstates[0], dstates[1])

    def get_config(self) -> Dict[str, Any]:
        config = {**super().get_config(), "unit_forget_bias": self.unit_forget_bias,
                  "recurrent_activation": activations.serialize(self.recurrent_activation)}
        if self.proj_size is not None:  # absent by default: the config stays Keras's
            config["proj_size"] = self.proj_size
            config["projection_initializer"] = initializers.serialize(
                self.projection_initializer)
        return config


@register
class GRU(_RNN):
    """GRU, Keras gate order ``[z|r|h]``; weights ``(I, 3H)``, ``(H, 3H)``, bias ``(2, 3H)``
    with ``reset_after=True`` (default, [input; recurrent] biases) or ``(3H,)``.
    ``recurrent_activation`` (sigmoid) applies to z and r, ``activation`` (tanh) to the
    candidate.
    """

    CONFIG_FIELDS = {**cs.RNN_FIELDS, "reset_after": cs.v_bool}
    CONFIG_REQUIRED: Tuple[str, ...] = ("units",)

    _cell = cells.CELLS["gru"]

    def __init__(self, units: int, reset_after: bool = True, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)

    def _run(self, k, x, rk, states, mask, need_grad):  # type: ignore[override]
        y, h, cache = k.gru_forward(
            x, self.kernel.value, rk, None if self.bias is None else self.bias.value,
            h0=states[0], reset_after=self.reset_after, activation=self.activation.name,
            recurrent_activation=self.recurrent_activation.name, mask=mask,
            go_backwards=self.go_backwards, training=need_grad)
        return y, [h], cache

    def _grads(self, k, cache, dy, dstates):  # type: ignore[override]
        return k.gru_backward(cache, dy, dstates[0])

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "reset_after": self.reset_after,
                "recurrent_activation": activations.serialize(self.recurrent_activation)}
