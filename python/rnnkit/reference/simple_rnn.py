"""SimpleRNN reference: forward and BPTT in plain NumPy.

    h_t = act(x_t K + b + h_{t-1} R),   act: any name of rnnkit.cells.ACTIVATIONS (tanh default)
Shapes: x (B, T, I), K (I, H), R (H, H), b (H,), h (B, H).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _activations
from . import _sequence as seq
from ._validate import check_cache, validate_forward, validate_output_grads


@dataclass(frozen=True, eq=False)
class SimpleRNNCache(seq.SequenceCache):
    """Workspace kept by ``simple_rnn_forward(..., training=True)`` for the backward pass."""

    activation: str  # canonical name in rnnkit.cells.ACTIVATIONS
    pre: np.ndarray  # (B, T, H) pre-activations a_t (relu, silu, gelu derivatives need them)
    h_new: np.ndarray  # (B, T, H) act(a_t) (tanh derivative is 1 - h_new**2)


@np.errstate(all="ignore")  # NaN/inf propagate silently, as in the C++ kernels
def simple_rnn_forward(
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any = None,
    *,
    h0: Any = None,
    activation: Optional[str] = "tanh",
    mask: Any = None,
    go_backwards: bool = False,
    training: bool = True,
) -> Tuple[np.ndarray, np.ndarray, Optional[SimpleRNNCache]]:
    """SimpleRNN over a whole sequence (Keras 3 semantics).

    Args:
        x: (B, T, I) inputs, batch-major.
        kernel: (I, H) input weights.
        recurrent_kernel: (H, H) recurrent weights; H = recurrent_kernel.shape[0].
        bias: (H,) or None (no bias).
        h0: (B, H) initial state, zeros when None.
        activation: "tanh" (default), "sigmoid", "hard_sigmoid", "hard_sigmoid_keras2", "relu",
            "relu6", "elu", "selu", "softsign", "softplus", "linear", "silu", "gelu", or None
            (= "linear"); see ``rnnkit.cells.ACTIVATIONS``.
        mask: (B, T) bool or numeric (nonzero = keep). At a masked step the state is carried and
            the output repeats the previous output (zeros before the first kept step).
        go_backwards: consume the sequence from t = T-1 to 0; y is in processing order.
        training: keep the workspace needed by ``simple_rnn_backward``.

    Returns:
        y (B, T, H), h_last (B, H), cache (SimpleRNNCache, or None when training=False).
        Result dtype: float64 if any input is float64, else float32.
    """
    args = validate_forward(
        "simple_rnn", x, kernel, recurrent_kernel, bias,
        h0=h0, mask=mask, go_backwards=go_backwards, activation=activation,
        training=training,
    )
    act = _activations.get(args.activation)
    b, t_len, _ = args.x.shape
    keep, seen = args.keep, seq.seen_mask(args.keep)

    # Input projection of all steps as one matmul: (B, T, I) @ (I, H) -> (B, T, H).
    xp = args.x @ args.kernel
    if args.bias is not None:
        xp += args.bias

    h = args.h0
    y = np.empty((b, t_len, args.units), dtype=args.dtype)
    h_prev, pre, h_new_all = np.empty_like(y), np.empty_like(y), np.empty_like(y)
    for t in range(t_len):
        a = xp[:, t] + h @ args.recurrent_kernel  # (B, H)
        h_new = act.forward(a)
        h_prev[:, t], pre[:, t], h_new_all[:, t] = h, a, h_new
        h = seq.carry(seq.column(keep, t), h_new, h)
        y[:, t] = seq.output_at(seq.column(seen, t), h)

    cache = None
    if training:
        cache = SimpleRNNCache(
            x=args.x, kernel=args.kernel, recurrent_kernel=args.recurrent_kernel,
            has_bias=args.bias is not None, keep=keep, go_backwards=args.go_backwards,
            h_prev=h_prev, activation=act.name, pre=pre, h_new=h_new_all,
        )
    return y, np.array(h, order="C", copy=True), cache


def simple_rnn_backward(
    cache: SimpleRNNCache, dy: Any = None, dh_last: Any = None
) -> Dict[str, np.ndarray]:
    """BPTT for ``simple_rnn_forward``.

    Gradients are those of L = sum(y * dy) + sum(h_last * dh_last).

    Args:
        cache: the cache returned by ``simple_rnn_forward(..., training=True)`` (not modified).
        dy: (B, T, H) upstream gradient of y (processing order, like y); zeros when None.
        dh_last: (B, H) upstream gradient of h_last; zeros when None.

    Returns:
        dict with "x" (B, T, I) in input order, "kernel" (I, H), "recurrent_kernel" (H, H),
        "bias" (H,) (only if forward had a bias) and "h0" (B, H), all in the cache's dtype.
    """
    check_cache(cache, SimpleRNNCache, "simple_rnn")
    b, t_len, h_units = cache.shape
    dy, dh = validate_output_grads(
        cache.dtype, [("dy", dy, (b, t_len, h_units)), ("dh_last", dh_last, (b, h_units))]
    )
    keep, seen = cache.keep, seq.seen_mask(cache.keep)
    r_t = cache.recurrent_kernel.T  # (H, H)
    act = _activations.get(cache.activation)

    d_pre = np.zeros((b, t_len, h_units), dtype=cache.dtype)  # dL/da_t, (B, T, H)
    with np.errstate(all="ignore"):
        for t in reversed(range(t_len)):
            keep_t = seq.column(keep, t)
            dh = dh + seq.output_at(seq.column(seen, t), dy[:, t])  # dL/dh_t
            da = seq.only_kept(
                keep_t,
                dh * act.derivative(cache.pre[:, t], cache.h_new[:, t]),
            )
            d_pre[:, t] = da
            dh = seq.carry(keep_t, da @ r_t, dh)  # dL/dh_{t-1}

        # Weight gradients as single matmuls with K = B*T.
        da_flat = d_pre.reshape(b * t_len, h_units)
        grads = {
            "x": seq.original_order(d_pre @ cache.kernel.T, cache.go_backwards),
            "kernel": cache.x.reshape(b * t_len, -1).T @ da_flat,
            "recurrent_kernel": cache.h_prev.reshape(b * t_len, h_units).T @ da_flat,
        }
        if cache.has_bias:
            grads["bias"] = da_flat.sum(axis=0)
    grads["h0"] = np.ascontiguousarray(dh)
    return grads
