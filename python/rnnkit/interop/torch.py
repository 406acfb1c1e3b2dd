"""rnnkit (Keras 3 layout) weights <-> PyTorch ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``.

PyTorch is optional: it is imported inside the functions, and a missing PyTorch raises an
``ImportError`` that names the ``rnnkit[torch]`` extra.

Mapping (one layer, unidirectional, ``batch_first=True``):

* weights: ``weight_ih_l0 = kernel.T`` ``(G*H, I)``, ``weight_hh_l0 = recurrent_kernel.T``
  ``(G*H, H)``.
* LSTM: PyTorch's gate order ``i,f,g,o`` is Keras's ``i,f,c,o``; ``bias_ih_l0 = bias``,
  ``bias_hh_l0 = 0`` (PyTorch adds both biases, Keras has one).
* SimpleRNN (``tanh`` or ``relu``): ``nn.RNN``; biases as for the LSTM.
* GRU: Keras ``[z|r|h]`` vs PyTorch ``[r|z|n]`` (the first two blocks swap). PyTorch's
  ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`` is Keras's ``reset_after=True``, and
  ``h' = (1 - z) * n + z * h`` in both, so ``bias (2, 3H) = [input bias; recurrent bias]`` maps
  to ``bias_ih_l0`` / ``bias_hh_l0``. Keras's ``reset_after=False`` has no PyTorch equivalent.

* LSTMP (``"lstmp"``): ``nn.LSTM(proj_size=P)``; as the LSTM, with ``weight_hh_l0 =
  recurrent_kernel.T`` ``(4H, P)`` and ``weight_hr_l0 = projection_kernel.T`` ``(P, H)``.

Going back, :func:`from_torch` folds ``bias_ih + bias_hh`` into the single Keras bias of an LSTM
or SimpleRNN, while :func:`gradients_from_torch` takes ``d bias = d bias_ih`` (the two PyTorch
biases always receive the same gradient).

Example::

    m = to_torch("lstm", kernel, recurrent_kernel, bias)
    y, (h, c) = m(torch.from_numpy(x))        # == rnnkit.ops.lstm_forward(x, kernel, ...)

Whole modules (any ``num_layers``, ``bidirectional``, ``bias``, ``batch_first``) convert to and
from rnnkit ``Sequential`` models with :func:`sequential_from_torch` /
:func:`sequential_to_torch` (:mod:`rnnkit.interop.torch_modules`), and a plain state dict of
NumPy arrays converts without PyTorch with :func:`sequential_from_state_dict`
(:mod:`rnnkit.interop.state_dict`)::

    model = sequential_from_torch(nn.LSTM(8, 16, num_layers=2, bidirectional=True, batch_first=True))
    model.predict(x)                          # == module(torch.from_numpy(x))[0]
    module = sequential_to_torch(model)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .. import cells
from .state_dict import sequential_from_state_dict, sequential_to_state_dict
from .state_dict import swap_zr as _swap_zr
from .torch_modules import sequential_from_torch, sequential_to_torch

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch as _torch

__all__ = ["require_torch", "to_torch", "from_torch", "gradients_from_torch", "cell_of",
           "sequential_from_torch", "sequential_to_torch", "sequential_from_state_dict",
           "sequential_to_state_dict"]

def require_torch() -> Any:
    """Import and return the ``torch`` module.

    Raises:
        ImportError: PyTorch is not installed; the message names the ``rnnkit[torch]`` extra.
    """
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "rnnkit.interop.torch needs PyTorch, which is not installed; "
            "install the optional extra with: pip install 'rnnkit[torch]'"
        ) from exc
    return torch


def cell_of(module: Any) -> str:
    """``"lstm"``, ``"gru"`` or ``"simple_rnn"`` for an ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``;
    ``"lstmp"`` for an ``nn.LSTM`` with ``proj_size > 0``.

    Raises:
        TypeError: ``module`` is none of those.
    """
    torch = require_torch()
    for cls, name in ((torch.nn.LSTM, "lstm"), (torch.nn.GRU, "gru"), (torch.nn.RNN, "simple_rnn")):
        if isinstance(module, cls):
            return "lstmp" if name == "lstm" and getattr(module, "proj_size", 0) else name
    raise TypeError(f"expected torch.nn.LSTM, GRU or RNN; got {type(module).__name__}")


def to_torch(cell: str, kernel: Any, recurrent_kernel: Any, bias: Optional[Any] = None, *,
             activation: Optional[str] = "tanh", reset_after: bool = True,
             dtype: Optional[Any] = None, projection_kernel: Optional[Any] = None
             ) -> "_torch.nn.Module":
    """A one-layer, ``batch_first`` PyTorch RNN computing what the rnnkit cell computes.

    Args:
        cell: ``"lstm"``, ``"gru"``, ``"simple_rnn"`` or ``"lstmp"``.
        kernel: ``(I, G*H)``; recurrent_kernel: ``(H, G*H)`` (Keras layout, as for rnnkit.ops);
            ``(P, 4H)`` for ``"lstmp"``.
        bias: LSTM/SimpleRNN ``(G*H,)``; GRU ``(2, 3H)`` (``reset_after=True``); or None for a
            module without biases.
        activation: SimpleRNN only: ``"tanh"`` or ``"relu"`` (``nn.RNN`` has no linear mode).
        reset_after: GRU only; must be True (PyTorch's GRU is Keras's ``reset_after=True``).
        dtype: NumPy or PyTorch float dtype of the module; default: ``kernel``'s dtype
            (float32 unless it is float64).
        projection_kernel: ``"lstmp"`` only (required there): ``(H, P)``; the module is
            ``nn.LSTM(proj_size=P)``.

    Returns:
        ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` with ``num_layers=1``, ``batch_first=True``,
        in training mode, parameters requiring gradients. Feed it ``x (B, T, I)`` and states
        ``(1, B, H)``.

    Raises:
        ImportError: PyTorch is missing (install ``rnnkit[torch]``).
        ValueError: unknown cell, unsupported option, or weight shapes that do not fit.
    """
    torch = require_torch()
    spec = cells.get(cell)  # ValueError naming the known cells
    k = np.asarray(kernel)
    r = np.asarray(recurrent_kernel)
    if k.ndim != 2 or r.ndim != 2:
        raise ValueError(f"kernel and recurrent_kernel must be 2-D; got {k.shape} and {r.shape}")
    g = spec.gate_count
    h = r.shape[0]
    pk = None
    if spec.projected:
        if projection_kernel is None:
            raise ValueError(f"{cell}: projection_kernel (H, P) is required")
        pk = np.asarray(projection_kernel)
        if pk.ndim != 2 or r.shape != (pk.shape[1], g * pk.shape[0]) or k.shape[1] != g * pk.shape[0]:
            raise ValueError(f"{cell}: expected kernel (I, {g}*H), recurrent_kernel (P, {g}*H) "
                             f"and projection_kernel (H, P); got {k.shape}, {r.shape} and "
                             f"{pk.shape}")
        h = pk.shape[0]
    elif projection_kernel is not None:
        raise ValueError(f"{cell}: projection_kernel is only for 'lstmp'")
    elif r.shape != (h, g * h) or k.shape[1] != g * h:
        raise ValueError(f"{cell}: expected kernel (I, {g}*H) and recurrent_kernel (H, {g}*H); "
                         f"got {k.shape} and {r.shape}")
    if dtype is None:
        tdtype = torch.float64 if k.dtype == np.float64 else torch.float32
    elif isinstance(dtype, torch.dtype):
        tdtype = dtype
    else:
        tdtype = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32

    b_ih = b_hh = None
    if bias is not None:
        b = np.asarray(bias)
        if cell == "gru":
            if b.shape != (2, 3 * h):
                raise ValueError(f"gru: bias must be (2, {3 * h}) (reset_after=True); got {b.shape}")
            b_ih, b_hh = b[0], b[1]
        else:
            if b.shape != (g * h,):
                raise ValueError(f"{cell}: bias must be ({g * h},); got {b.shape}")
            b_ih, b_hh = b, np.zeros_like(b)

    kwargs: Dict[str, Any] = dict(input_size=k.shape[0], hidden_size=h, num_layers=1,
                                  bias=bias is not None, batch_first=True, dtype=tdtype)
    if cell == "lstm":
        module = torch.nn.LSTM(**kwargs)
    elif cell == "lstmp":
        module = torch.nn.LSTM(proj_size=pk.shape[1], **kwargs)
    elif cell == "gru":
        if not reset_after:
            raise ValueError("gru: PyTorch's nn.GRU is Keras's reset_after=True; "
                             "reset_after=False has no PyTorch equivalent")
        module = torch.nn.GRU(**kwargs)
        k, r = _swap_zr(k, h), _swap_zr(r, h)
        if b_ih is not None:
            b_ih, b_hh = _swap_zr(b_ih, h), _swap_zr(b_hh, h)
    else:
        if activation not in ("tanh", "relu"):
            raise ValueError(f"simple_rnn: nn.RNN supports activation 'tanh' or 'relu'; got {activation!r}")
        module = torch.nn.RNN(nonlinearity=activation, **kwargs)

    def put(param: Any, value: np.ndarray) -> None:
        param.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(tdtype))

    with torch.no_grad():
        put(module.weight_ih_l0, k.T)
        put(module.weight_hh_l0, r.T)
        if b_ih is not None:
            put(module.bias_ih_l0, b_ih)
            put(module.bias_hh_l0, b_hh)
        if pk is not None:
            put(module.weight_hr_l0, pk.T)
    return module


def _numpy(t: Any) -> np.ndarray:
    """A tensor (or array) as a NumPy array, detached and on the CPU."""
    if hasattr(t, "detach"):
        return t.detach().cpu().numpy()
    return np.asarray(t)


def _check_layout(module: Any) -> None:
    if module.num_layers != 1 or module.bidirectional:
        raise ValueError("only one-layer, unidirectional modules map to rnnkit")


def from_torch(module: Any) -> Tuple[Optional[np.ndarray], ...]:
    """rnnkit weights ``(kernel, recurrent_kernel, bias)`` of a PyTorch RNN (inverse of :func:`to_torch`).

    For an ``nn.LSTM(proj_size=P)`` (``"lstmp"``): ``(kernel, recurrent_kernel,
    projection_kernel, bias)``, the positional order of ``rnnkit.ops.lstmp_forward``.

    The LSTM/SimpleRNN bias is ``bias_ih + bias_hh``; the GRU bias is ``(2, 3H)``; ``bias`` is
    None for a module built with ``bias=False``. Note ``batch_first`` only changes the input
    layout, not the weights.

    Raises:
        ImportError: PyTorch is missing.
        TypeError / ValueError: not a one-layer unidirectional LSTM / GRU / RNN.
    """
    cell = cell_of(module)
    _check_layout(module)
    h = module.hidden_size
    k = _numpy(module.weight_ih_l0).T
    r = _numpy(module.weight_hh_l0).T
    b = None
    if module.bias:
        b_ih, b_hh = _numpy(module.bias_ih_l0), _numpy(module.bias_hh_l0)
        b = np.stack([_swap_zr(b_ih, h), _swap_zr(b_hh, h)]) if cell == "gru" else b_ih + b_hh
    if cell == "gru":
        k, r = _swap_zr(k, h), _swap_zr(r, h)
    if cell == "lstmp":
        p = np.ascontiguousarray(_numpy(module.weight_hr_l0).T)
        return np.ascontiguousarray(k), np.ascontiguousarray(r), p, b
    return np.ascontiguousarray(k), np.ascontiguousarray(r), b


def gradients_from_torch(module: Any, grads: Optional[Sequence[Any]] = None) -> Dict[str, np.ndarray]:
    """Gradients of a PyTorch RNN's parameters in rnnkit's layout.

    Args:
        module: a module from :func:`to_torch` (or any one-layer unidirectional LSTM/GRU/RNN).
        grads: gradients in ``module.parameters()`` order (``weight_ih, weight_hh[, bias_ih,
            bias_hh][, weight_hr]``), e.g. from ``torch.autograd.grad``; default: each
            parameter's ``.grad``.

    Returns:
        dict with ``kernel``, ``recurrent_kernel`` and (for modules with biases) ``bias``, as
        ``rnnkit.ops.<cell>_backward`` returns them. For an LSTM/SimpleRNN ``bias`` is the
        gradient of ``bias_ih`` (equal to that of ``bias_hh``). An ``nn.LSTM(proj_size=P)``
        adds ``projection_kernel`` (``weight_hr.T``).
    """
    cell = cell_of(module)
    _check_layout(module)
    h = module.hidden_size
    if grads is None:
        grads = [p.grad for p in module.parameters()]
    g = [_numpy(t) for t in grads]
    out = {"kernel": g[0].T, "recurrent_kernel": g[1].T}
    if cell == "lstmp":  # weight_hr_l0 is the last parameter
        out["projection_kernel"] = g[-1].T
    if module.bias:
        out["bias"] = np.stack([_swap_zr(g[2], h), _swap_zr(g[3], h)]) if cell == "gru" else g[2]
    if cell == "gru":
        out["kernel"], out["recurrent_kernel"] = _swap_zr(out["kernel"], h), _swap_zr(out["recurrent_kernel"], h)
    return {k: np.ascontiguousarray(v) for k, v in out.items()}
