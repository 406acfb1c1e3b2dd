"""LSTM reference: forward and BPTT in plain NumPy.

Gate blocks along the last axis of kernel / recurrent_kernel / bias: [i | f | c | o].
    z = x_t K + h_{t-1} R + b                      (B, 4H)
    i, f, o = ract(z_i), ract(z_f), ract(z_o);  g = act(z_c)
    c_t = f * c_{t-1} + i * g;   h_t = o * act(c_t)
with act = ``activation`` (tanh by default) and ract = ``recurrent_activation`` (sigmoid by
default), any names of rnnkit.cells.ACTIVATIONS (Keras semantics: ``activation`` applies to
the candidate and to the cell state).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _activations
from . import _sequence as seq
from ._validate import check_cache, validate_forward, validate_output_grads


@dataclass(frozen=True, eq=False)
class LSTMCache(seq.SequenceCache):
    """Workspace kept by ``lstm_forward(..., training=True)`` for the backward pass."""

    activation: str  # canonical names in rnnkit.cells.ACTIVATIONS
    recurrent_activation: str
    pre: np.ndarray  # (B, T, 4H) pre-activations z_t [z_i | z_f | z_c | z_o]
    gates: np.ndarray  # (B, T, 4H) activated gates [i | f | g | o]
    c_prev: np.ndarray  # (B, T, H) the c entering each step
    c_new: np.ndarray  # (B, T, H) the cell state c_t computed at step t (before masking)
    act_c: np.ndarray  # (B, T, H) act(c_t)


@np.errstate(all="ignore")  # NaN/inf propagate silently, as in the C++ kernels
def lstm_forward(
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any = None,
    *,
    h0: Any = None,
    c0: Any = None,
    activation: Optional[str] = "tanh",
    recurrent_activation: Optional[str] = "sigmoid",
    mask: Any = None,
    go_backwards: bool = False,
    training: bool = True,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Optional[LSTMCache]]:
    """LSTM over a whole sequence (Keras 3 semantics).

    Args:
        x: (B, T, I) inputs, batch-major.
        kernel: (I, 4H) input weights, blocks [i | f | c | o].
        recurrent_kernel: (H, 4H) recurrent weights; H = recurrent_kernel.shape[0].
        bias: (4H,) or None (no bias).
        h0, c0: (B, H) initial states, zeros when None.
        activation: applied to the candidate and to the cell state (``h = o * act(c)``);
            "tanh" (default), "sigmoid", "hard_sigmoid", "hard_sigmoid_keras2", "relu",
            "relu6", "elu", "selu", "softsign", "softplus", "linear", "silu", "gelu", or None
            (= "linear"); see ``rnnkit.cells.ACTIVATIONS``.
        recurrent_activation: applied to the i, f, o gates; "sigmoid" (default) or any other
            name accepted by ``activation``, or None (= "linear").
        mask: (B, T) bool or numeric (nonzero = keep). At a masked step h and c are carried and
            the output repeats the previous output (zeros before the first kept step).
        go_backwards: consume the sequence from t = T-1 to 0; y is in processing order.
        training: keep the workspace needed by ``lstm_backward``.

    Returns:
        y (B, T, H), h_last (B, H), c_last (B, H), cache (LSTMCache, or None when
        training=False). Result dtype: float64 if any input is float64, else float32.
    """
    args = validate_forward(
        "lstm", x, kernel, recurrent_kernel, bias,
        h0=h0, c0=c0, mask=mask, go_backwards=go_backwards, activation=activation,
        recurrent_activation=recurrent_activation, training=training,
    )
    act = _activations.get(args.activation)
    ract = _activations.get(args.recurrent_activation)
    b, t_len, _ = args.x.shape
    hu = args.units
    keep, seen = args.keep, seq.seen_mask(args.keep)

    # Input projection of all steps: (B, T, I) @ (I, 4H) -> (B, T, 4H).
    xp = args.x @ args.kernel
    if args.bias is not None:
        xp += args.bias

    h, c = args.h0, args.c0
    y = np.empty((b, t_len, hu), dtype=args.dtype)
    gates = np.empty((b, t_len, 4 * hu), dtype=args.dtype)
    pre = np.empty_like(gates)
    h_prev, c_prev = np.empty_like(y), np.empty_like(y)
    c_all, act_c = np.empty_like(y), np.empty_like(y)
    for t in range(t_len):
        z = xp[:, t] + h @ args.recurrent_kernel  # (B, 4H)
        i = ract.forward(z[:, :hu])
        f = ract.forward(z[:, hu : 2 * hu])
        g = act.forward(z[:, 2 * hu : 3 * hu])
        o = ract.forward(z[:, 3 * hu :])
        c_new = f * c + i * g
        tc = act.forward(c_new)
        h_new = o * tc
        h_prev[:, t], c_prev[:, t], c_all[:, t], act_c[:, t] = h, c, c_new, tc
        pre[:, t] = z
        gates[:, t] = np.concatenate([i, f, g, o], axis=1)
        keep_t = seq.column(keep, t)
        h, c = seq.carry(keep_t, h_new, h), seq.carry(keep_t, c_new, c)
        y[:, t] = seq.output_at(seq.column(seen, t), h)

    cache = None
    if training:
        cache = LSTMCache(
            x=args.x, kernel=args.kernel, recurrent_kernel=args.recurrent_kernel,
            has_bias=args.bias is not None, keep=keep, go_backwards=args.go_backwards,
            h_prev=h_prev, activation=act.name, recurrent_activation=ract.name, pre=pre,
            gates=gates, c_prev=c_prev, c_new=c_all, act_c=act_c,
        )
    return y, np.array(h, order="C", copy=True), np.array(c, order="C", copy=True), cache


def lstm_backward(
    cache: LSTMCache, dy: Any = None, dh_last: Any = None, dc_last: Any = None
) -> Dict[str, np.ndarray]:
    """BPTT for ``lstm_forward``.

    Gradients are those of L = sum(y * dy) + sum(h_last * dh_last) + sum(c_last * dc_last).

    Args:
        cache: the cache returned by ``lstm_forward(..., training=True)`` (not modified).
        dy: (B, T, H) upstream gradient of y (processing order, like y); zeros when None.
        dh_last, dc_last: (B, H) upstream gradients of h_last, c_last; zeros when None.

    Returns:
        dict with "x" (B, T, I) in input order, "kernel" (I, 4H), "recurrent_kernel" (H, 4H),
        "bias" (4H,) (only if forward had a bias), "h0" and "c0" (B, H), in the cache's dtype.
    """
    check_cache(cache, LSTMCache, "lstm")
    b, t_len, hu = cache.shape
    dy, dh, dc = validate_output_grads(
        cache.dtype,
        [("dy", dy, (b, t_len, hu)), ("dh_last", dh_last, (b, hu)), ("dc_last", dc_last, (b, hu))],
    )
    keep, seen = cache.keep, seq.seen_mask(cache.keep)
    r_t = cache.recurrent_kernel.T  # (4H, H)
    act = _activations.get(cache.activation)
    ract = _activations.get(cache.recurrent_activation)

    dz_all = np.zeros((b, t_len, 4 * hu), dtype=cache.dtype)  # dL/dz_t (pre-activations)
    with np.errstate(all="ignore"):
        for t in reversed(range(t_len)):
            keep_t = seq.column(keep, t)
            dh = dh + seq.output_at(seq.column(seen, t), dy[:, t])  # dL/dh_t
            gt, zt = cache.gates[:, t], cache.pre[:, t]
            i, f, g, o = gt[:, :hu], gt[:, hu : 2 * hu], gt[:, 2 * hu : 3 * hu], gt[:, 3 * hu :]
            tc = cache.act_c[:, t]
            # Through h_t = o * act(c_t) into c_t, then through c_t = f c_{t-1} + i g.
            dc_t = dc + dh * o * act.derivative(cache.c_new[:, t], tc)
            dz = np.concatenate(
                [
                    dc_t * g * ract.derivative(zt[:, :hu], i),  # d z_i
                    dc_t * cache.c_prev[:, t] * ract.derivative(zt[:, hu : 2 * hu], f),  # d z_f
                    dc_t * i * act.derivative(zt[:, 2 * hu : 3 * hu], g),  # d z_c
                    dh * tc * ract.derivative(zt[:, 3 * hu :], o),  # d z_o
                ],
                axis=1,
            )
            dz = seq.only_kept(keep_t, dz)
            dz_all[:, t] = dz
            dh = seq.carry(keep_t, dz @ r_t, dh)  # dL/dh_{t-1}
            dc = seq.carry(keep_t, dc_t * f, dc)  # dL/dc_{t-1}

        dz_flat = dz_all.reshape(b * t_len, 4 * hu)
        grads = {
            "x": seq.original_order(dz_all @ cache.kernel.T, cache.go_backwards),
            "kernel": cache.x.reshape(b * t_len, -1).T @ dz_flat,
            "recurrent_kernel": cache.h_prev.reshape(b * t_len, hu).T @ dz_flat,
        }
        if cache.has_bias:
            grads["bias"] = dz_flat.sum(axis=0)
    grads["h0"] = np.ascontiguousarray(dh)
    grads["c0"] = np.ascontiguousarray(dc)
    return grads
