"""LSTM with an output projection (PyTorch ``nn.LSTM(proj_size=P)``): forward and BPTT in NumPy.

Gate blocks along the last axis of kernel / recurrent_kernel / bias: [i | f | c | o].
    z = x_t K + r_{t-1} R + b                      (B, 4H)   R: (P, 4H)
    i, f, o = ract(z_i), ract(z_f), ract(z_o);  g = act(z_c)
    c_t = f * c_{t-1} + i * g;   m_t = o * act(c_t)             (B, H)
    r_t = m_t W_hr                                              (B, P)   W_hr: (H, P)
r_t is the output and the recurrent state h (h0, h_last are (B, P)); c stays (B, H).
``activation`` / ``recurrent_activation`` as in :mod:`rnnkit.reference.lstm`. Masking,
go_backwards and initial states follow the LSTM exactly (a masked step carries r and c).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _activations
from . import _sequence as seq
from ._validate import check_cache, validate_forward, validate_output_grads


@dataclass(frozen=True, eq=False)
class LSTMPCache(seq.SequenceCache):
    """Workspace kept by ``lstmp_forward(..., training=True)`` for the backward pass.

    ``h_prev`` is r_{t-1} (B, T, P); ``shape`` is (B, T, P).
    """

    projection_kernel: np.ndarray  # (H, P)
    activation: str  # canonical names in rnnkit.cells.ACTIVATIONS
    recurrent_activation: str
    pre: np.ndarray  # (B, T, 4H) pre-activations z_t
    gates: np.ndarray  # (B, T, 4H) activated gates [i | f | g | o]
    c_prev: np.ndarray  # (B, T, H) the c entering each step
    c_new: np.ndarray  # (B, T, H) c_t computed at step t (before masking)
    act_c: np.ndarray  # (B, T, H) act(c_t)
    m: np.ndarray  # (B, T, H) m_t = o * act(c_t), the projection's input


@np.errstate(all="ignore")  # NaN/inf propagate silently, as in the C++ kernels
def lstmp_forward(
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    projection_kernel: Any,
    bias: Any = None,
    *,
    h0: Any = None,
    c0: Any = None,
    activation: Optional[str] = "tanh",
    recurrent_activation: Optional[str] = "sigmoid",
    mask: Any = None,
    go_backwards: bool = False,
    training: bool = True,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Optional[LSTMPCache]]:
    """Projected LSTM over a whole sequence (PyTorch ``proj_size`` semantics, Keras layout).

    Args:
        x: (B, T, I) inputs, batch-major.
        kernel: (I, 4H) input weights, blocks [i | f | c | o].
        recurrent_kernel: (P, 4H) recurrent weights (applied to r_{t-1}); P = its rows.
        projection_kernel: (H, P), ``r_t = m_t @ projection_kernel``; H = its rows.
        bias: (4H,) or None (no bias).
        h0: (B, P) initial r; c0: (B, H) initial cell state; zeros when None.
        activation, recurrent_activation: as in ``lstm_forward``.
        mask: (B, T) bool or numeric (nonzero = keep). At a masked step r and c are carried
            and the output repeats the previous output (zeros before the first kept step).
        go_backwards: consume the sequence from t = T-1 to 0; y is in processing order.
        training: keep the workspace needed by ``lstmp_backward``.

    Returns:
        y (B, T, P), h_last (B, P), c_last (B, H), cache (LSTMPCache, or None when
        training=False). Result dtype: float64 if any input is float64, else float32.
    """
    args = validate_forward(
        "lstmp", x, kernel, recurrent_kernel, bias,
        h0=h0, c0=c0, mask=mask, go_backwards=go_backwards, activation=activation,
        recurrent_activation=recurrent_activation, training=training,
        projection_kernel=projection_kernel,
    )
    act = _activations.get(args.activation)
    ract = _activations.get(args.recurrent_activation)
    b, t_len, _ = args.x.shape
    hu, pu = args.projection_kernel.shape
    keep, seen = args.keep, seq.seen_mask(args.keep)

    xp = args.x @ args.kernel  # (B, T, 4H)
    if args.bias is not None:
        xp += args.bias

    h, c = args.h0, args.c0
    y = np.empty((b, t_len, pu), dtype=args.dtype)
    gates = np.empty((b, t_len, 4 * hu), dtype=args.dtype)
    pre = np.empty_like(gates)
    h_prev = np.empty_like(y)
    c_prev, c_all, act_c, m_all = (np.empty((b, t_len, hu), dtype=args.dtype) for _ in range(4))
    for t in range(t_len):
        z = xp[:, t] + h @ args.recurrent_kernel  # (B, 4H)
        i = ract.forward(z[:, :hu])
        f = ract.forward(z[:, hu : 2 * hu])
        g = act.forward(z[:, 2 * hu : 3 * hu])
        o = ract.forward(z[:, 3 * hu :])
        c_new = f * c + i * g
        tc = act.forward(c_new)
        m = o * tc
        r_new = m @ args.projection_kernel  # (B, P)
        h_prev[:, t], c_prev[:, t], c_all[:, t], act_c[:, t], m_all[:, t] = h, c, c_new, tc, m
        pre[:, t] = z
        gates[:, t] = np.concatenate([i, f, g, o], axis=1)
        keep_t = seq.column(keep, t)
        h, c = seq.carry(keep_t, r_new, h), seq.carry(keep_t, c_new, c)
        y[:, t] = seq.output_at(seq.column(seen, t), h)

    cache = None
    if training:
        cache = LSTMPCache(
            x=args.x, kernel=args.kernel, recurrent_kernel=args.recurrent_kernel,
            has_bias=args.bias is not None, keep=keep, go_backwards=args.go_backwards,
            h_prev=h_prev, projection_kernel=args.projection_kernel, activation=act.name,
            recurrent_activation=ract.name, pre=pre, gates=gates, c_prev=c_prev,
            c_new=c_all, act_c=act_c, m=m_all,
        )
    return y, np.array(h, order="C", copy=True), np.array(c, order="C", copy=True), cache


def lstmp_backward(
    cache: LSTMPCache, dy: Any = None, dh_last: Any = None, dc_last: Any = None
) -> Dict[str, np.ndarray]:
    """BPTT for ``lstmp_forward``.

    Gradients are those of L = sum(y * dy) + sum(h_last * dh_last) + sum(c_last * dc_last).

    Args:
        cache: the cache returned by ``lstmp_forward(..., training=True)`` (not modified).
        dy: (B, T, P) upstream gradient of y (processing order, like y); zeros when None.
        dh_last: (B, P), dc_last: (B, H) upstream gradients; zeros when None.

    Returns:
        dict with "x" (B, T, I) in input order, "kernel" (I, 4H), "recurrent_kernel" (P, 4H),
        "projection_kernel" (H, P), "bias" (4H,) (only if forward had a bias), "h0" (B, P)
        and "c0" (B, H), in the cache's dtype.
    """
    check_cache(cache, LSTMPCache, "lstmp")
    b, t_len, pu = cache.shape
    hu = cache.projection_kernel.shape[0]
    dy, dh, dc = validate_output_grads(
        cache.dtype,
        [("dy", dy, (b, t_len, pu)), ("dh_last", dh_last, (b, pu)), ("dc_last", dc_last, (b, hu))],
    )
    keep, seen = cache.keep, seq.seen_mask(cache.keep)
    r_t = cache.recurrent_kernel.T  # (4H, P)
    w_t = cache.projection_kernel.T  # (P, H)
    act = _activations.get(cache.activation)
    ract = _activations.get(cache.recurrent_activation)

    dz_all = np.zeros((b, t_len, 4 * hu), dtype=cache.dtype)  # dL/dz_t
    dr_all = np.zeros((b, t_len, pu), dtype=cache.dtype)  # dL/dr_t at kept steps
    with np.errstate(all="ignore"):
        for t in reversed(range(t_len)):
            keep_t = seq.column(keep, t)
            dh = dh + seq.output_at(seq.column(seen, t), dy[:, t])  # dL/dr_t
            dm = dh @ w_t  # dL/dm_t (B, H)
            gt, zt = cache.gates[:, t], cache.pre[:, t]
            i, f, g, o = gt[:, :hu], gt[:, hu : 2 * hu], gt[:, 2 * hu : 3 * hu], gt[:, 3 * hu :]
            tc = cache.act_c[:, t]
            dc_t = dc + dm * o * act.derivative(cache.c_new[:, t], tc)
            dz = np.concatenate(
                [
                    dc_t * g * ract.derivative(zt[:, :hu], i),
                    dc_t * cache.c_prev[:, t] * ract.derivative(zt[:, hu : 2 * hu], f),
                    dc_t * i * act.derivative(zt[:, 2 * hu : 3 * hu], g),
                    dm * tc * ract.derivative(zt[:, 3 * hu :], o),
                ],
                axis=1,
            )
            dz = seq.only_kept(keep_t, dz)
            dz_all[:, t] = dz
            dr_all[:, t] = seq.only_kept(keep_t, dh)
            dh = seq.carry(keep_t, dz @ r_t, dh)  # dL/dr_{t-1}
            dc = seq.carry(keep_t, dc_t * f, dc)  # dL/dc_{t-1}

        dz_flat = dz_all.reshape(b * t_len, 4 * hu)
        grads = {
            "x": seq.original_order(dz_all @ cache.kernel.T, cache.go_backwards),
            "kernel": cache.x.reshape(b * t_len, -1).T @ dz_flat,
            "recurrent_kernel": cache.h_prev.reshape(b * t_len, pu).T @ dz_flat,
            "projection_kernel": cache.m.reshape(b * t_len, hu).T
            @ dr_all.reshape(b * t_len, pu),
        }
        if cache.has_bias:
            grads["bias"] = dz_flat.sum(axis=0)
    grads["h0"] = np.ascontiguousarray(dh)
    grads["c0"] = np.ascontiguousarray(dc)
    return grads
