"""Whole PyTorch ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` modules <-> rnnkit ``Sequential`` models.

Any ``num_layers``, ``bidirectional``, ``bias`` and ``batch_first``; float32 or float64 (the
module's dtype becomes the layers' dtype and back). The mapping itself is torch-free and lives
in :mod:`rnnkit.interop.state_dict`; this module only reads and builds ``nn.Module`` objects.

* ``batch_first``: rnnkit models always take ``(B, T, I)``. ``model.predict(x)`` equals
  ``module(x)[0]`` for a ``batch_first=True`` module; for ``batch_first=False`` it equals
  ``module(x.transpose(0, 1))[0].transpose(0, 1)``.
* ``dropout`` between layers (``module.dropout > 0``) acts only in training; the conversion
  keeps the weights, drops it and warns (a ``UserWarning``), since predictions are unaffected.
  It is not an error because inference -- what a converted model is for -- is exact.
* LSTM ``proj_size > 0``: rnnkit's ``LSTM(units, proj_size=P)`` (the ``lstmp`` kernels).
* LSTM and RNN biases: rnnkit has one bias ``bias_ih + bias_hh``; going back to PyTorch it
  becomes ``bias_ih`` with ``bias_hh = 0`` (same outputs; the split is not recoverable).
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .state_dict import build_sequential, read_state_dict, sequential_to_state_dict

__all__ = ["sequential_from_torch", "sequential_to_torch"]


def _require_torch() -> Any:
    from .torch import require_torch
    return require_torch()


def sequential_from_torch(module: Any, *, dtype: Any = None) -> Any:
    """An rnnkit ``Sequential`` computing what ``module`` (``nn.RNN``/``LSTM``/``GRU``) computes.

    Args:
        module: a ``torch.nn.RNN`` (tanh or relu), ``LSTM`` (any ``proj_size``) or ``GRU``, any
            ``num_layers``, ``bidirectional``, ``bias``, ``batch_first``, on any device.
        dtype: ``"float32"`` / ``"float64"`` for the rnnkit layers; default: the module's
            (which must then be float32 or float64; convert a half-precision module with this).

    Returns:
        ``Sequential([Input((None, input_size)), layer_0, ..., layer_{L-1}])`` where each layer
        is a ``SimpleRNN``/``LSTM``/``GRU(reset_after=True)`` with ``return_sequences=True``,
        inside ``Bidirectional(merge_mode="concat")`` when the module is bidirectional.
        ``model.predict(x)`` equals ``module(x)[0]`` for batch-first ``x`` (see the module
        docstring for ``batch_first=False``).

    Raises:
        ImportError: PyTorch is missing (install ``rnnkit[torch]``).
        TypeError: ``module`` is not an ``nn.RNN``/``LSTM``/``GRU``.
        ValueError: an unsupported dtype.
    """
    torch = _require_torch()
    from .torch import cell_of

    cell = {"simple_rnn": "rnn", "lstmp": "lstm"}.get(cell_of(module), cell_of(module))
    if module.dropout and module.num_layers > 1:
        warnings.warn(f"nn.{type(module).__name__} has dropout={module.dropout} between layers; "
                      "it acts only in training and is not carried over (predictions are "
                      "unaffected)", stacklevel=2)
    state = {}
    for key, t in module.state_dict().items():
        t = t.detach().cpu()
        if dtype is not None and t.dtype not in (torch.float32, torch.float64):
            t = t.to(torch.float64)  # e.g. bfloat16, which NumPy lacks; cast below
        state[key] = t  # read_state_dict converts (and names the key if it cannot)
    spec, arrays = read_state_dict(state, cell, num_layers=module.num_layers,
                                   bidirectional=module.bidirectional,
                                   nonlinearity=getattr(module, "nonlinearity", "tanh"),
                                   dtype=dtype)
    return build_sequential(spec, arrays)


def sequential_to_torch(model: Any, *, batch_first: bool = True) -> Any:
    """The ``torch.nn.RNN``/``LSTM``/``GRU`` computing what an rnnkit RNN stack computes.

    Args:
        model: a built rnnkit ``Sequential`` of same-cell recurrent layers, all with
            ``return_sequences=True``, all plain or all ``Bidirectional(merge_mode="concat")``,
            equal ``units`` (see :func:`rnnkit.interop.state_dict.sequential_to_state_dict`
            for every condition).
        batch_first: the module's ``batch_first`` (True: ``module(x)[0] == model.predict(x)``).

    Returns:
        A new module (training mode, parameters requiring gradients) with the model's dtype.
        LSTM/RNN biases are in ``bias_ih`` (``bias_hh`` is zero). rnnkit ``dropout`` /
        ``recurrent_dropout`` are not carried over (warning); regularizers and constraints
        are training-only and ignored.

    Raises:
        ImportError: PyTorch is missing (install ``rnnkit[torch]``).
        TypeError / ValueError: a model PyTorch cannot express; the message names the layer.
    """
    torch = _require_torch()
    sd, spec = sequential_to_state_dict(model)
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[spec.cell]
    tdtype = torch.float64 if spec.dtype == "float64" else torch.float32
    module = cls(batch_first=bool(batch_first), dtype=tdtype, **spec.module_kwargs())
    module.load_state_dict({k: torch.from_numpy(np.array(v, dtype=spec.dtype))
                            for k, v in sd.items()}, strict=True)
    return module
