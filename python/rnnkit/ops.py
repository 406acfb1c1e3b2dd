"""Functional RNN kernels backed by C++ (``rnnkit._core``).

Drop-in twins of :mod:`rnnkit.reference`: same signatures, same results (to rounding),
same error messages. Arrays are batch-major: ``x`` is ``(B, T, I)``; weights use the Keras 3
layout ``kernel (I, G*H)``, ``recurrent_kernel (H, G*H)`` with gate blocks SimpleRNN
``[h]``, LSTM ``[i|f|c|o]``, GRU ``[z|r|h]``, LSTMP (LSTM with an output projection,
PyTorch's ``nn.LSTM(proj_size=P)``) ``[i|f|c|o]`` with ``recurrent_kernel (P, 4H)`` and
``projection_kernel (H, P)``: its h, ``y``, ``h0``, ``h_last`` are P wide.

Every forward returns ``cache`` (``None`` with ``training=False``) to pass to the matching
backward, which returns a dict of gradients of ``L = sum(y*dy) + sum(h_last*dh_last)
[+ sum(c_last*dc_last)]`` with keys ``x, kernel, recurrent_kernel, bias, h0`` (+ ``c0``);
``bias`` is absent when it was ``None``; LSTMP adds ``projection_kernel``.

The result dtype is float64 if ``x`` or any weight/state is float64 (any byte order), else
float32; any strides, byte order or alignment are accepted (copied where the kernels need
C-contiguous, aligned data). Flags (``go_backwards``, ``reset_after``, ``training``) must be
``bool`` or ``numpy.bool_``. The cache holds private copies of what backward reads, so the
caller may edit its arrays between forward and backward. A copy that cannot be allocated
raises ``MemoryError`` naming the argument. The GIL is released while the kernels run, except
in calls of under ~1 MFLOP, which last microseconds (releasing it would cost more).

Each function passes its arguments on to ``rnnkit._core`` by position, checked there once.

Activations: ``activation`` (every cell) and ``recurrent_activation`` (LSTM, GRU) take any of
``"tanh"``, ``"sigmoid"``, ``"hard_sigmoid"`` (Keras 3: ``relu6(x + 3) / 6``),
``"hard_sigmoid_keras2"`` (``clip(0.2 x + 0.5, 0, 1)``), ``"relu"``, ``"relu6"``, ``"elu"``,
``"selu"``, ``"softsign"``, ``"softplus"``, ``"linear"``, ``"silu"``, ``"gelu"`` (exact erf
form), or None (= ``"linear"``) -- :data:`rnnkit.cells.ACTIVATIONS`; the defaults are tanh and
sigmoid. Anything else raises ``ValueError`` with the text of
:func:`rnnkit.cells.activation_error`.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _core

ArrayLike = Any
Grads = Dict[str, np.ndarray]

__all__ = [
    "simple_rnn_forward", "simple_rnn_backward",
    "lstm_forward", "lstm_backward",
    "gru_forward", "gru_backward",
    "lstmp_forward", "lstmp_backward",
]


def simple_rnn_forward(x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike,
                       bias: Optional[ArrayLike] = None, *, h0: Optional[ArrayLike] = None,
                       activation: Optional[str] = "tanh", mask: Optional[ArrayLike] = None,
                       go_backwards: bool = False, training: bool = True
                       ) -> Tuple[np.ndarray, np.ndarray, Any]:
    """SimpleRNN over a sequence: ``h_t = act(x_t @ kernel + bias + h_{t-1} @ recurrent_kernel)``.

    Args:
        x: ``(B, T, I)`` inputs.
        kernel: ``(I, H)``; recurrent_kernel: ``(H, H)``; bias: ``(H,)`` or None.
        h0: ``(B, H)`` initial state (zeros when None).
        activation: a name of :data:`rnnkit.cells.ACTIVATIONS` (default ``"tanh"``) or None
            (linear).
        mask: ``(B, T)``, True/nonzero = keep the step (Keras masking).
        go_backwards: process the sequence from its last step; ``y`` is in processing order.
        training: keep the cache backward needs; False returns ``cache=None``.

    Returns:
        ``(y (B, T, H), h_last (B, H), cache)``.
    """
    return _core.simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, activation, mask,
                                    go_backwards, training)


def simple_rnn_backward(cache: Any, dy: Optional[ArrayLike] = None,
                        dh_last: Optional[ArrayLike] = None) -> Grads:
    """BPTT of :func:`simple_rnn_forward`.

    Args:
        cache: the cache a ``training=True`` forward returned.
        dy: ``(B, T, H)`` gradient w.r.t. ``y`` (zeros when None).
        dh_last: ``(B, H)`` gradient w.r.t. ``h_last`` (zeros when None).

    Returns:
        dict with ``x, kernel, recurrent_kernel, h0`` and ``bias`` (when a bias was given).
    """
    return _core.simple_rnn_backward(cache, dy, dh_last)


def lstm_forward(x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike,
                 bias: Optional[ArrayLike] = None, *, h0: Optional[ArrayLike] = None,
                 c0: Optional[ArrayLike] = None, activation: Optional[str] = "tanh",
                 recurrent_activation: Optional[str] = "sigmoid",
                 mask: Optional[ArrayLike] = None, go_backwards: bool = False,
                 training: bool = True
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """LSTM over a sequence (Keras gate order ``[i|f|c|o]``).

    ``i, f, o = ract(z_i, z_f, z_o)``, ``g = act(z_c)``, ``c = f*c_prev + i*g``,
    ``h = o * act(c)``.

    Args:
        x: ``(B, T, I)`` inputs.
        kernel: ``(I, 4H)``; recurrent_kernel: ``(H, 4H)``; bias: ``(4H,)`` or None.
        h0, c0: ``(B, H)`` initial hidden and cell states (zeros when None).
        activation: ``act``, on the candidate and the cell state: a name of
            :data:`rnnkit.cells.ACTIVATIONS` (default ``"tanh"``) or None (linear).
        recurrent_activation: ``ract``, on the i, f, o gates (default ``"sigmoid"``); same
            names.
        mask: ``(B, T)``, True/nonzero = keep the step (Keras masking).
        go_backwards: process the sequence from its last step; ``y`` is in processing order.
        training: keep the cache backward needs; False returns ``cache=None``.

    Returns:
        ``(y (B, T, H), h_last (B, H), c_last (B, H), cache)``.
    """
    return _core.lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, activation,
                              recurrent_activation, mask, go_backwards, training)


def lstm_backward(cache: Any, dy: Optional[ArrayLike] = None,
                  dh_last: Optional[ArrayLike] = None,
                  dc_last: Optional[ArrayLike] = None) -> Grads:
    """BPTT of :func:`lstm_forward`.

    Args:
        cache: the cache a ``training=True`` forward returned.
        dy: ``(B, T, H)``; dh_last, dc_last: ``(B, H)``; each zeros when None.

    Returns:
        dict with ``x, kernel, recurrent_kernel, h0, c0`` and ``bias`` (when given).
    """
    return _core.lstm_backward(cache, dy, dh_last, dc_last)


def gru_forward(x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike,
                bias: Optional[ArrayLike] = None, *, h0: Optional[ArrayLike] = None,
                reset_after: bool = True, activation: Optional[str] = "tanh",
                recurrent_activation: Optional[str] = "sigmoid",
                mask: Optional[ArrayLike] = None, go_backwards: bool = False,
                training: bool = True
                ) -> Tuple[np.ndarray, np.ndarray, Any]:
    """GRU over a sequence (Keras gate order ``[z|r|h]``; ``ract`` on z, r; ``act`` on h).

    Args:
        x: ``(B, T, I)`` inputs.
        kernel: ``(I, 3H)``; recurrent_kernel: ``(H, 3H)``.
        bias: ``(2, 3H)`` = [input bias; recurrent bias] when ``reset_after`` (Keras 3
            default), ``(3H,)`` otherwise; or None.
        h0: ``(B, H)`` initial state (zeros when None).
        reset_after: apply the reset gate after the recurrent product (Keras/CuDNN style).
        activation: on the candidate: a name of :data:`rnnkit.cells.ACTIVATIONS` (default
            ``"tanh"``) or None (linear).
        recurrent_activation: on the z and r gates (default ``"sigmoid"``); same names.
        mask: ``(B, T)``, True/nonzero = keep the step (Keras masking).
        go_backwards: process the sequence from its last step; ``y`` is in processing order.
        training: keep the cache backward needs; False returns ``cache=None``.

    Returns:
        ``(y (B, T, H), h_last (B, H), cache)``.
    """
    return _core.gru_forward(x, kernel, recurrent_kernel, bias, h0, reset_after, activation,
                             recurrent_activation, mask, go_backwards, training)


def gru_backward(cache: Any, dy: Optional[ArrayLike] = None,
                 dh_last: Optional[ArrayLike] = None) -> Grads:
    """BPTT of :func:`gru_forward`.

    Args:
        cache: the cache a ``training=True`` forward returned.
        dy: ``(B, T, H)``; dh_last: ``(B, H)``; each zeros when None.

    Returns:
        dict with ``x, kernel, recurrent_kernel, h0`` and ``bias`` (when given).
    """
    return _core.gru_backward(cache, dy, dh_last)


def lstmp_forward(x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike,
                  projection_kernel: ArrayLike, bias: Optional[ArrayLike] = None, *,
                  h0: Optional[ArrayLike] = None, c0: Optional[ArrayLike] = None,
                  activation: Optional[str] = "tanh",
                  recurrent_activation: Optional[str] = "sigmoid",
                  mask: Optional[ArrayLike] = None, go_backwards: bool = False,
                  training: bool = True
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """LSTM with an output projection (PyTorch ``nn.LSTM(proj_size=P)``; gates ``[i|f|c|o]``).

    ``z = x_t @ kernel + r_prev @ recurrent_kernel + bias``; ``i, f, o = ract(z_i, z_f, z_o)``,
    ``g = act(z_c)``, ``c = f*c_prev + i*g``, ``m = o * act(c)``, ``r = m @ projection_kernel``.
    ``r`` is the output and the recurrent state h; masking carries r and c.

    Args:
        x: ``(B, T, I)`` inputs.
        kernel: ``(I, 4H)``; recurrent_kernel: ``(P, 4H)``; projection_kernel: ``(H, P)``
            (H and P from its shape; any P >= 1, PyTorch requires P < H); bias: ``(4H,)`` or
            None.
        h0: ``(B, P)``, c0: ``(B, H)`` initial states (zeros when None).
        activation, recurrent_activation: as :func:`lstm_forward`.
        mask: ``(B, T)``, True/nonzero = keep the step (Keras masking).
        go_backwards: process the sequence from its last step; ``y`` is in processing order.
        training: keep the cache backward needs; False returns ``cache=None``.

    Returns:
        ``(y (B, T, P), h_last (B, P), c_last (B, H), cache)``.
    """
    return _core.lstmp_forward(x, kernel, recurrent_kernel, projection_kernel, bias, h0, c0,
                               activation, recurrent_activation, mask, go_backwards, training)


def lstmp_backward(cache: Any, dy: Optional[ArrayLike] = None,
                   dh_last: Optional[ArrayLike] = None,
                   dc_last: Optional[ArrayLike] = None) -> Grads:
    """BPTT of :func:`lstmp_forward`.

    Args:
        cache: the cache a ``training=True`` forward returned.
        dy: ``(B, T, P)``; dh_last: ``(B, P)``; dc_last: ``(B, H)``; each zeros when None.

    Returns:
        dict with ``x, kernel, recurrent_kernel (P, 4H), projection_kernel (H, P), h0 (B, P),
        c0 (B, H)`` and ``bias`` (when given).
    """
    return _core.lstmp_backward(cache, dy, dh_last, dc_last)
