"""GRU reference: forward and BPTT in plain NumPy.

Gate blocks along the last axis of kernel / recurrent_kernel / bias: [z | r | h].
reset_after=True (Keras default), bias (2, 3H) = [input bias; recurrent bias]:
    xz, xr, xh = x_t K + b_in;   rz, rr, rh = h_{t-1} R + b_rec
    z = sigmoid(xz + rz);  r = sigmoid(xr + rr);  hh = tanh(xh + r * rh)
reset_after=False, bias (3H,):
    xz, xr, xh = x_t K + b;   z = sigmoid(xz + h_{t-1} R_z);  r = sigmoid(xr + h_{t-1} R_r)
    hh = tanh(xh + (r * h_{t-1}) R_h)
Both:  h_t = z * h_{t-1} + (1 - z) * hh
Shown with the defaults; ``recurrent_activation`` (sigmoid) applies to z and r, ``activation``
(tanh) to the candidate hh -- any names of rnnkit.cells.ACTIVATIONS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _activations
from . import _sequence as seq
from ._validate import check_cache, validate_forward, validate_output_grads


@dataclass(frozen=True, eq=False)
class GRUCache(seq.SequenceCache):
    """Workspace kept by ``gru_forward(..., training=True)`` for the backward pass."""

    reset_after: bool
    activation: str  # canonical names in rnnkit.cells.ACTIVATIONS
    recurrent_activation: str
    pre: np.ndarray  # (B, T, 3H) pre-activations of [z | r | hh]
    gates: np.ndarray  # (B, T, 3H) activated [z | r | hh]
    # reset_after=True: (B, T, H) rh = h_{t-1} R_h + b_rec_h (multiplied by r).
    # reset_after=False: (B, T, H) r * h_{t-1} (the input of R_h).
    rec_h: np.ndarray


@np.errstate(all="ignore")  # NaN/inf propagate silently, as in the C++ kernels
def gru_forward(
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any = None,
    *,
    h0: Any = None,
    reset_after: bool = True,
    activation: Optional[str] = "tanh",
    recurrent_activation: Optional[str] = "sigmoid",
    mask: Any = None,
    go_backwards: bool = False,
    training: bool = True,
) -> Tuple[np.ndarray, np.ndarray, Optional[GRUCache]]:
    """GRU over a whole sequence (Keras 3 semantics).

    Args:
        x: (B, T, I) inputs, batch-major.
        kernel: (I, 3H) input weights, blocks [z | r | h].
        recurrent_kernel: (H, 3H) recurrent weights; H = recurrent_kernel.shape[0].
        bias: (2, 3H) [input; recurrent] when reset_after, else (3H,); None = no bias.
        h0: (B, H) initial state, zeros when None.
        reset_after: apply the reset gate after the recurrent matmul (Keras 3 default, cuDNN style).
        activation: applied to the candidate hh; "tanh" (default), "sigmoid", "hard_sigmoid",
            "hard_sigmoid_keras2", "relu", "relu6", "elu", "selu", "softsign", "softplus",
            "linear", "silu", "gelu", or None (= "linear"); see ``rnnkit.cells.ACTIVATIONS``.
        recurrent_activation: applied to the z and r gates; "sigmoid" (default) or any other
            name accepted by ``activation``, or None (= "linear").
        mask: (B, T) bool or numeric (nonzero = keep). At a masked step the state is carried and
            the output repeats the previous output (zeros before the first kept step).
        go_backwards: consume the sequence from t = T-1 to 0; y is in processing order.
        training: keep the workspace needed by ``gru_backward``.

    Returns:
        y (B, T, H), h_last (B, H), cache (GRUCache, or None when training=False).
        Result dtype: float64 if any input is float64, else float32.
    """
    args = validate_forward(
        "gru", x, kernel, recurrent_kernel, bias,
        h0=h0, mask=mask, go_backwards=go_backwards, reset_after=reset_after,
        activation=activation, recurrent_activation=recurrent_activation, training=training,
    )
    act = _activations.get(args.activation)
    ract = _activations.get(args.recurrent_activation)
    reset_after = bool(reset_after)
    b, t_len, _ = args.x.shape
    hu = args.units
    keep, seen = args.keep, seq.seen_mask(args.keep)
    rk = args.recurrent_kernel

    # Input projection of all steps: (B, T, I) @ (I, 3H) -> (B, T, 3H), input bias included.
    xp = args.x @ args.kernel
    b_rec = None
    if args.bias is not None:
        if reset_after:
            xp += args.bias[0]
            b_rec = args.bias[1]  # (3H,)
        else:
            xp += args.bias

    h = args.h0
    y = np.empty((b, t_len, hu), dtype=args.dtype)
    gates = np.empty((b, t_len, 3 * hu), dtype=args.dtype)
    pre = np.empty_like(gates)
    h_prev, rec_h = np.empty_like(y), np.empty_like(y)
    for t in range(t_len):
        xz, xr, xh = xp[:, t, :hu], xp[:, t, hu : 2 * hu], xp[:, t, 2 * hu :]
        if reset_after:
            hr = h @ rk  # (B, 3H)
            if b_rec is not None:
                hr = hr + b_rec
            az, ar = xz + hr[:, :hu], xr + hr[:, hu : 2 * hu]
            z, r = ract.forward(az), ract.forward(ar)
            rh = hr[:, 2 * hu :]
            ah = xh + r * rh
            hh = act.forward(ah)
            rec_h[:, t] = rh
        else:
            hr = h @ rk[:, : 2 * hu]  # (B, 2H)
            az, ar = xz + hr[:, :hu], xr + hr[:, hu:]
            z, r = ract.forward(az), ract.forward(ar)
            rh_in = r * h  # (B, H)
            ah = xh + rh_in @ rk[:, 2 * hu :]
            hh = act.forward(ah)
            rec_h[:, t] = rh_in
        h_new = z * h + (1 - z) * hh
        h_prev[:, t] = h
        gates[:, t] = np.concatenate([z, r, hh], axis=1)
        pre[:, t] = np.concatenate([az, ar, ah], axis=1)
        h = seq.carry(seq.column(keep, t), h_new, h)
        y[:, t] = seq.output_at(seq.column(seen, t), h)

    cache = None
    if training:
        cache = GRUCache(
            x=args.x, kernel=args.kernel, recurrent_kernel=rk,
            has_bias=args.bias is not None, keep=keep, go_backwards=args.go_backwards,
            h_prev=h_prev, reset_after=reset_after, activation=act.name,
            recurrent_activation=ract.name, pre=pre, gates=gates, rec_h=rec_h,
        )
    return y, np.array(h, order="C", copy=True), cache


def gru_backward(cache: GRUCache, dy: Any = None, dh_last: Any = None) -> Dict[str, np.ndarray]:
    """BPTT for ``gru_forward``.

    Gradients are those of L = sum(y * dy) + sum(h_last * dh_last).

    Args:
        cache: the cache returned by ``gru_forward(..., training=True)`` (not modified).
        dy: (B, T, H) upstream gradient of y (processing order, like y); zeros when None.
        dh_last: (B, H) upstream gradient of h_last; zeros when None.

    Returns:
        dict with "x" (B, T, I) in input order, "kernel" (I, 3H), "recurrent_kernel" (H, 3H),
        "bias" ((2, 3H) or (3H,), only if forward had a bias) and "h0" (B, H), in the cache's
        dtype.
    """
    check_cache(cache, GRUCache, "gru")
    b, t_len, hu = cache.shape
    dy, dh = validate_output_grads(
        cache.dtype, [("dy", dy, (b, t_len, hu)), ("dh_last", dh_last, (b, hu))]
    )
    keep, seen = cache.keep, seq.seen_mask(cache.keep)
    rk = cache.recurrent_kernel
    act = _activations.get(cache.activation)
    ract = _activations.get(cache.recurrent_activation)

    # dL/d(pre-activation) on the input side [dz | dr | dhh] (B, T, 3H) and on the recurrent
    # side, i.e. w.r.t. h_{t-1} R (+ b_rec); they differ only in the h block when reset_after.
    dxp = np.zeros((b, t_len, 3 * hu), dtype=cache.dtype)
    drp = np.zeros_like(dxp)
    with np.errstate(all="ignore"):
        for t in reversed(range(t_len)):
            keep_t = seq.column(keep, t)
            dh = dh + seq.output_at(seq.column(seen, t), dy[:, t])  # dL/dh_t
            gt, pt = cache.gates[:, t], cache.pre[:, t]
            z, r, hh = gt[:, :hu], gt[:, hu : 2 * hu], gt[:, 2 * hu :]
            dz_act = ract.derivative(pt[:, :hu], z)
            dr_act = ract.derivative(pt[:, hu : 2 * hu], r)
            hp = cache.h_prev[:, t]
            da_z = dh * (hp - hh) * dz_act
            da_h = dh * (1 - z) * act.derivative(pt[:, 2 * hu :], hh)  # d(xh + ...) under act
            if cache.reset_after:
                rh = cache.rec_h[:, t]
                da_r = da_h * rh * dr_act
                dxp_t = np.concatenate([da_z, da_r, da_h], axis=1)
                drp_t = np.concatenate([da_z, da_r, da_h * r], axis=1)
                dh_cell = dh * z + drp_t @ rk.T
            else:
                d_rh_in = da_h @ rk[:, 2 * hu :].T  # dL/d(r * h_{t-1}), (B, H)
                da_r = d_rh_in * hp * dr_act
                dxp_t = np.concatenate([da_z, da_r, da_h], axis=1)
                drp_t = dxp_t
                dh_cell = dh * z + d_rh_in * r + dxp_t[:, : 2 * hu] @ rk[:, : 2 * hu].T
            dxp[:, t] = seq.only_kept(keep_t, dxp_t)
            drp[:, t] = seq.only_kept(keep_t, drp_t)
            dh = seq.carry(keep_t, dh_cell, dh)  # dL/dh_{t-1}

        n = b * t_len
        dxp_flat, drp_flat = dxp.reshape(n, 3 * hu), drp.reshape(n, 3 * hu)
        h_prev_flat = cache.h_prev.reshape(n, hu)
        if cache.reset_after:
            d_rk = h_prev_flat.T @ drp_flat
        else:
            # R_z, R_r multiply h_{t-1}; R_h multiplies r * h_{t-1}.
            d_rk = np.concatenate(
                [
                    h_prev_flat.T @ drp_flat[:, : 2 * hu],
                    cache.rec_h.reshape(n, hu).T @ drp_flat[:, 2 * hu :],
                ],
                axis=1,
            )
        grads = {
            "x": seq.original_order(dxp @ cache.kernel.T, cache.go_backwards),
            "kernel": cache.x.reshape(n, -1).T @ dxp_flat,
            "recurrent_kernel": d_rk,
        }
        if cache.has_bias:
            if cache.reset_after:
                grads["bias"] = np.stack([dxp_flat.sum(axis=0), drp_flat.sum(axis=0)])
            else:
                grads["bias"] = dxp_flat.sum(axis=0)
    grads["h0"] = np.ascontiguousarray(dh)
    return grads
