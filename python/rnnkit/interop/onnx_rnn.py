"""SimpleRNN / LSTM / GRU / Bidirectional as ONNX's own ``RNN`` / ``LSTM`` / ``GRU`` operators.

Mapping (Keras weights ``kernel (I, G*H)``, ``recurrent_kernel (H, G*H)``, gate blocks along the
last axis):

* ``W = kernel.T`` ``(dirs, G*H, I)``, ``R = recurrent_kernel.T`` ``(dirs, G*H, H)``, gate blocks
  reordered: LSTM Keras ``[i|f|c|o]`` -> ONNX ``[i|o|f|c]``; GRU ``[z|r|h]`` is ONNX's order.
* ``B = [Wb | Rb]`` ``(dirs, 2*G*H)``: the Keras bias goes to ``Wb`` and ``Rb = 0``, except GRU
  ``reset_after=True`` whose bias ``(2, 3H)`` is ``[input bias; recurrent bias]`` = ``[Wb; Rb]``
  with ``linear_before_reset=1``. ``reset_after=False`` (one bias) is ``linear_before_reset=0``.
* ``activations``: LSTM ``[f, g, h] = [recurrent_activation, activation, activation]``, GRU
  ``[f, g] = [recurrent_activation, activation]``, RNN ``[activation]`` (see :data:`RNN_ACTIVATIONS`;
  Keras 3's ``hard_sigmoid`` ``relu6(x + 3) / 6`` is ``HardSigmoid(alpha=1/6, beta=0.5)``).
  ``activation_alpha`` / ``activation_beta`` list the parameters of the activations that take
  them, in order (the ONNX Runtime reading of the spec).
* Layout: ONNX wants ``X (T, B, I)`` and returns ``Y (T, dirs, B, H)``, ``Y_h (dirs, B, H)``;
  Transposes convert from/to Keras's batch-first ``(B, T, ...)``.
* ``go_backwards=True`` is ``direction="reverse"``. ONNX returns ``Y`` in input time order,
  Keras in processing order, so the exported graph reverses ``Y`` along time.

Masks (``Embedding(mask_zero=True)``, ``Masking``) become ``sequence_lens`` = the number of
kept steps per row. This is exact for *right-padded* masks (every row keeps a prefix of its
steps), the layout ``mask_zero`` padding produces; a mask with holes or left padding cannot be
expressed by ``sequence_lens`` and the exported graph then computes something else than rnnkit
(Keras skips masked steps wherever they are). Past a row's length ONNX outputs zeros while
Keras repeats the last output (``zero_output_for_mask=False``, the default of a plain layer):
the exported graph fills those steps with ``Y_h``. With ``go_backwards`` the masked steps come
first in processing order, where Keras outputs zeros, so nothing needs filling. A row whose
steps are all masked has length 0: ONNX Runtime then outputs zeros and the initial state, as
rnnkit does.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ..layers.recurrent import GRU, LSTM, SimpleRNN, _RNN
from ..layers.wrappers import Bidirectional
from ._onnx_graph import ExportError, GraphBuilder

__all__ = ["RNN_ACTIVATIONS", "emit_recurrent", "emit_bidirectional"]

#: rnnkit/Keras activation name -> (ONNX RNN activation, alphas, betas).
RNN_ACTIVATIONS = {
    "tanh": ("Tanh", (), ()),
    "sigmoid": ("Sigmoid", (), ()),
    "relu": ("Relu", (), ()),
    "hard_sigmoid": ("HardSigmoid", (1.0 / 6.0,), (0.5,)),
    "hard_sigmoid_keras2": ("HardSigmoid", (0.2,), (0.5,)),
    "elu": ("Elu", (1.0,), ()),
    "softsign": ("Softsign", (), ()),
    "softplus": ("Softplus", (), ()),
    "linear": ("Affine", (1.0,), (0.0,)),
}

# ONNX operator and the position of each ONNX gate block among Keras's blocks.
_OPS = {SimpleRNN: ("RNN", [0]), LSTM: ("LSTM", [0, 3, 1, 2]), GRU: ("GRU", [0, 1, 2])}

Outputs = Tuple[List[str], List[Optional[str]]]


def _op_of(layer: _RNN) -> Tuple[str, List[int]]:
    for cls, entry in _OPS.items():
        if type(layer) is cls:
            return entry
    raise ExportError(f"layer {layer.name!r} ({type(layer).__name__}): only SimpleRNN, LSTM "
                      "and GRU can be exported to ONNX")


def _check(layer: _RNN, where: str) -> None:
    if getattr(layer, "proj_size", None):
        raise ExportError(f"layer {where!r} ({type(layer).__name__}): proj_size (an LSTM with "
                          "projection) has no ONNX LSTM operator equivalent")
    if layer.stateful:
        raise ExportError(f"layer {where!r} ({type(layer).__name__}): stateful=True cannot be "
                          "exported to ONNX (the graph carries no state between calls)")


def _activation_lists(layer: _RNN, where: str) -> Tuple[List[str], List[float], List[float]]:
    """The layer's ONNX ``activations`` and the alphas/betas they consume, in order."""
    names = {"RNN": [layer.activation.name],
             "GRU": [layer.recurrent_activation.name, layer.activation.name],
             "LSTM": [layer.recurrent_activation.name, layer.activation.name,
                      layer.activation.name]}[_op_of(layer)[0]]
    acts: List[str] = []
    alphas: List[float] = []
    betas: List[float] = []
    for n in names:
        if n not in RNN_ACTIVATIONS:
            raise ExportError(
                f"layer {where!r} ({type(layer).__name__}): activation {n!r} has no ONNX RNN "
                f"operator equivalent (supported: {', '.join(sorted(RNN_ACTIVATIONS))})")
        op, a, b = RNN_ACTIVATIONS[n]
        acts.append(op)
        alphas.extend(a)
        betas.extend(b)
    return acts, alphas, betas


def _reorder(a: np.ndarray, order: Sequence[int], units: int) -> np.ndarray:
    """Gate blocks of the last axis in ONNX order."""
    return np.concatenate([a[..., g * units:(g + 1) * units] for g in order], axis=-1)


def _direction_weights(layer: _RNN, order: Sequence[int]) -> Tuple[np.ndarray, ...]:
    """``W (G*H, I)``, ``R (G*H, H)``, ``B (2*G*H,)`` of one direction, float32."""
    h = layer.units
    w = _reorder(np.asarray(layer.kernel.value, np.float32), order, h).T
    r = _reorder(np.asarray(layer.recurrent_kernel.value, np.float32), order, h).T
    gh = len(order) * h
    if layer.bias is None:
        bias = np.zeros(2 * gh, np.float32)
    else:
        bv = np.asarray(layer.bias.value, np.float32)
        if bv.ndim == 2:  # GRU reset_after: [input bias; recurrent bias]
            bias = np.concatenate([_reorder(bv[0], order, h), _reorder(bv[1], order, h)])
        else:
            bias = np.concatenate([_reorder(bv, order, h), np.zeros(gh, np.float32)])
    return np.ascontiguousarray(w), np.ascontiguousarray(r), bias


def _run_op(b: GraphBuilder, subs: List[_RNN], direction: str, x: str, mask: Optional[str],
            states: Optional[List[List[str]]], hint: str) -> List[str]:
    """One ONNX RNN/LSTM/GRU node over ``x (B, T, I)`` for the direction layers ``subs``
    (one, or forward + backward for ``direction="bidirectional"``). ``states``: per direction
    the Keras initial states ``[(B, H), ...]``. Returns ``[Y (T, dirs, B, H), Y_h, (Y_c)]``."""
    op, order = _op_of(subs[0])
    acts: List[str] = []
    alphas: List[float] = []
    betas: List[float] = []
    ws, rs, bs = [], [], []
    for layer in subs:
        a, al, be = _activation_lists(layer, hint)
        acts += a
        alphas += al
        betas += be
        w, r, bias = _direction_weights(layer, order)
        ws.append(w)
        rs.append(r)
        bs.append(bias)
    xt = b.op("Transpose", [x], hint, perm=[1, 0, 2])  # (B, T, I) -> (T, B, I)
    inputs = [xt, b.const(np.stack(ws), f"{hint}/W"), b.const(np.stack(rs), f"{hint}/R"),
              b.const(np.stack(bs), f"{hint}/B"),
              b.lengths(mask) if mask is not None else ""]
    if states is not None:
        for k in range(len(states[0])):  # initial_h, then initial_c: (dirs, B, H)
            per_dir = [b.unsqueeze(s[k], [0], hint) for s in states]
            inputs.append(per_dir[0] if len(per_dir) == 1
                          else b.op("Concat", per_dir, hint, axis=0))
    while inputs and inputs[-1] == "":
        inputs.pop()
    attrs = dict(hidden_size=subs[0].units, direction=direction, activations=acts,
                 activation_alpha=alphas or None, activation_beta=betas or None)
    if op == "GRU":
        attrs["linear_before_reset"] = int(subs[0].reset_after)
    n_out = 3 if op == "LSTM" else 2
    return b.op(op, inputs, hint, outputs=n_out, **attrs)  # type: ignore[return-value]


def _split_states(ins: List[str], n_states: int, n_dirs: int, where: str
                  ) -> Optional[List[List[str]]]:
    """``[x, *states]`` node inputs -> per-direction state lists (None without states)."""
    if len(ins) == 1:
        return None
    if len(ins) != 1 + n_states * n_dirs:
        raise ExportError(f"layer {where!r}: expected {n_states * n_dirs} initial states, "
                          f"got {len(ins) - 1}")
    return [ins[1 + d * n_states:1 + (d + 1) * n_states] for d in range(n_dirs)]


def _time_major_mask(b: GraphBuilder, mask: str, hint: str) -> str:
    """``(B, T)`` bool -> ``(T, B, 1)`` bool, to select along ``Y (T, B, H)``."""
    return b.unsqueeze(b.op("Transpose", [mask], hint, perm=[1, 0]), [2], hint)


def emit_recurrent(b: GraphBuilder, layer: _RNN, ins: List[str], mask: Optional[str]
                   ) -> Outputs:
    """A SimpleRNN/LSTM/GRU call on ``ins = [x (B, T, I), *initial states]``; returns the
    outputs (``y`` then the states with ``return_state``) and their masks."""
    _check(layer, layer.name)
    n_states = 2 if isinstance(layer, LSTM) else 1
    states = _split_states(ins, n_states, 1, layer.name)
    direction = "reverse" if layer.go_backwards else "forward"
    outs = _run_op(b, [layer], direction, ins[0], mask, states, layer.name)
    y_all, y_h = outs[0], outs[1]
    hint = layer.name
    if layer.return_sequences:
        y = b.squeeze(y_all, [1], hint)                      # (T, B, H), input time order
        if layer.go_backwards:
            y = b.reverse_time(y, 0, hint)                   # Keras: processing order
        elif mask is not None and not layer.zero_output_for_mask:
            # Keras repeats the last output past a row's length; ONNX gives zeros there.
            y = b.op("Where", [_time_major_mask(b, mask, hint), y, y_h], hint)
        out = b.op("Transpose", [y], hint, perm=[1, 0, 2])  # (B, T, H)
    else:
        out = b.squeeze(y_h, [0], hint)                      # (B, H)
    if not layer.return_state:
        return [out], [mask if layer.return_sequences else None]
    st = [b.squeeze(s, [0], hint) for s in outs[1:1 + n_states]]
    return [out] + st, [mask if layer.return_sequences else None] + [None] * n_states


def _same_shape_options(a: _RNN, c: _RNN) -> bool:
    return (type(a) is type(c) and a.units == c.units
            and getattr(a, "reset_after", None) == getattr(c, "reset_after", None))


def emit_bidirectional(b: GraphBuilder, layer: Bidirectional, ins: List[str],
                       mask: Optional[str]) -> Outputs:
    """A Bidirectional call: one ``direction="bidirectional"`` node (two nodes when the two
    layers differ in type or size), then the merge."""
    fwd, bwd = layer.forward_layer, layer.backward_layer
    for sub in (fwd, bwd):
        _op_of(sub)
        _check(sub, layer.name)
    if fwd.go_backwards or not bwd.go_backwards:
        raise ExportError(f"layer {layer.name!r} (Bidirectional): a forward layer with "
                          "go_backwards=True cannot be exported to ONNX")
    n_states = 2 if isinstance(fwd, LSTM) else 1
    states = _split_states(ins, n_states, 2, layer.name)
    hint = layer.name
    ys: List[str] = []        # per direction: (T, B, H), input time order
    hs: List[List[str]] = []  # per direction: final states (B, H)
    if _same_shape_options(fwd, bwd):
        outs = _run_op(b, [fwd, bwd], "bidirectional", ins[0], mask, states, hint)
        for d in range(2):
            ys.append(b.gather(outs[0], d, 1, hint))
            hs.append([b.gather(s, d, 0, hint) for s in outs[1:]])
    else:
        for d, (sub, direction) in enumerate(((fwd, "forward"), (bwd, "reverse"))):
            outs = _run_op(b, [sub], direction, ins[0], mask,
                           None if states is None else [states[d]], f"{hint}/{sub.name}")
            ys.append(b.squeeze(outs[0], [1], hint))
            hs.append([b.squeeze(s, [0], hint) for s in outs[1:]])
    # Bidirectional sets zero_output_for_mask on both layers when it returns sequences, and
    # flips the backward output back to input order: ONNX's Y as it comes.
    if layer.return_sequences:
        yf, yb = (b.op("Transpose", [y], hint, perm=[1, 0, 2]) for y in ys)
    else:
        yf, yb = hs[0][0], hs[1][0]
    mode = layer.merge_mode
    if mode == "concat":
        merged: List[str] = [b.op("Concat", [yf, yb], hint, axis=-1)]
    elif mode == "sum":
        merged = [b.op("Add", [yf, yb], hint)]
    elif mode == "ave":
        merged = [b.op("Div", [b.op("Add", [yf, yb], hint), b.const(np.float32(2), "two")],
                       hint)]
    elif mode == "mul":
        merged = [b.op("Mul", [yf, yb], hint)]
    else:
        merged = [yf, yb]
    out_mask = mask if layer.return_sequences else None
    masks: List[Optional[str]] = [out_mask] * len(merged)
    if layer.return_state:
        states_out = hs[0] + hs[1]
        return merged + states_out, masks + [None] * len(states_out)
    return merged, masks
