"""PyTorch ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` state dicts <-> rnnkit ``Sequential`` stacks,
without PyTorch.

A PyTorch recurrent module with ``num_layers=L`` and ``bidirectional=True/False`` holds, for
each layer ``k`` and direction suffix ``s`` (``""``, and ``"_reverse"`` when bidirectional):

* ``weight_ih_l{k}{s}`` ``(G*H, I_k)`` with ``I_0 = input_size`` and ``I_k = D*H`` above
  (``D`` = 2 directions or 1), ``weight_hh_l{k}{s}`` ``(G*H, H)``;
* with ``bias=True``: ``bias_ih_l{k}{s}`` and ``bias_hh_l{k}{s}`` ``(G*H,)``;
* LSTM with ``proj_size = P > 0`` also ``weight_hr_l{k}{s} (P, H)``; then ``weight_hh`` is
  ``(4H, P)`` and later layers' ``weight_ih`` ``(4H, directions * P)`` -- rnnkit's
  ``LSTM(H, proj_size=P)`` with ``projection_kernel = weight_hr.T``.

Each layer becomes one rnnkit layer (``return_sequences=True``), wrapped in
``Bidirectional(merge_mode="concat")`` when bidirectional: PyTorch's output is
``[forward; reverse]`` along the features, the reverse direction aligned with input time,
which is exactly what rnnkit's concat Bidirectional returns. The weight mapping per direction
is the one of :mod:`rnnkit.interop.torch` (kernel = ``weight_ih.T``; LSTM/RNN bias =
``bias_ih + bias_hh``; GRU: swapped z/r blocks, bias ``(2, 3H) = [bias_ih; bias_hh]``).

Going back (:func:`sequential_to_state_dict`), an LSTM/RNN bias becomes ``bias_ih`` and
``bias_hh`` is zero: the split of a PyTorch bias into two halves is not recoverable, only
their sum (all a forward pass uses) is kept. GRU biases and all weights round-trip exactly.

rnnkit models always take batch-first input ``(B, T, I)``, whatever ``batch_first`` the
PyTorch module had: weights do not depend on it.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np

__all__ = ["TorchRNNSpec", "read_state_dict", "sequential_from_state_dict",
           "sequential_to_state_dict", "swap_zr"]

#: PyTorch cell name -> (rnnkit functional cell name, gate count G).
_CELLS: Dict[str, Tuple[str, int]] = {"rnn": ("simple_rnn", 1), "lstm": ("lstm", 4),
                                      "gru": ("gru", 3)}
_CELL_ALIASES = {"rnn": "rnn", "simple_rnn": "rnn", "rnn_tanh": "rnn", "rnn_relu": "rnn",
                 "lstm": "lstm", "gru": "gru"}
_KEY = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l([0-9]+)(_reverse)?")
_MAX_LAYERS = 10_000  # a sanity bound on layer indices read from keys


def swap_zr(a: np.ndarray, units: int) -> np.ndarray:
    """Swap the first two gate blocks on the last axis: Keras ``[z|r|h]`` <-> PyTorch ``[r|z|n]``."""
    h = units
    return np.concatenate([a[..., h:2 * h], a[..., :h], a[..., 2 * h:]], axis=-1)


@dataclass(frozen=True)
class TorchRNNSpec:
    """The constructor arguments of a PyTorch recurrent module (and its dtype).

    Attributes:
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        nonlinearity: ``"tanh"`` or ``"relu"`` (``nn.RNN`` only; ``"tanh"`` for the others).
        input_size, hidden_size, num_layers, bias, bidirectional: as ``torch.nn.LSTM``'s.
        dtype: ``"float32"`` or ``"float64"``.
    """

    cell: str
    nonlinearity: str
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    bidirectional: bool
    dtype: str
    proj_size: int = 0

    @property
    def gates(self) -> int:
        """Gate blocks G: 1 (RNN), 4 (LSTM) or 3 (GRU)."""
        return _CELLS[self.cell][1]

    @property
    def directions(self) -> int:
        """2 when bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    def suffixes(self) -> Tuple[str, ...]:
        """Key suffixes of the directions: ``("",)`` or ``("", "_reverse")``."""
        return ("", "_reverse") if self.bidirectional else ("",)

    def keys(self) -> Iterator[str]:
        """Every state-dict key of such a module, in PyTorch's order."""
        kinds = (("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ())
                 + (("weight_hr",) if self.proj_size else ()))
        for k in range(self.num_layers):
            for s in self.suffixes():
                for kind in kinds:
                    yield f"{kind}_l{k}{s}"

    def shape(self, key: str) -> Tuple[int, ...]:
        """The shape PyTorch gives parameter ``key`` (a name :meth:`keys` yields)."""
        m = _KEY.fullmatch(key)
        assert m is not None, key
        kind, k = m.group(1), int(m.group(2))
        gh = self.gates * self.hidden_size
        out = self.proj_size or self.hidden_size  # width of h (the layer's output)
        if kind == "weight_ih":
            return (gh, self.input_size if k == 0 else self.directions * out)
        if kind == "weight_hh":
            return (gh, out)
        if kind == "weight_hr":
            return (self.proj_size, self.hidden_size)
        return (gh,)

    def module_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments for ``torch.nn.RNN/LSTM/GRU`` (without ``batch_first``/``dtype``)."""
        kw: Dict[str, Any] = dict(input_size=self.input_size, hidden_size=self.hidden_size,
                                  num_layers=self.num_layers, bias=self.bias,
                                  bidirectional=self.bidirectional)
        if self.cell == "rnn":
            kw["nonlinearity"] = self.nonlinearity
        if self.proj_size:
            kw["proj_size"] = self.proj_size
        return kw


def _normalize_cell(cell: Any, nonlinearity: Any) -> Tuple[str, str]:
    """``(cell, nonlinearity)`` as ``("rnn"|"lstm"|"gru", "tanh"|"relu")``, or ValueError."""
    name = _CELL_ALIASES.get(str(cell).lower()) if isinstance(cell, str) else None
    if name is None:
        raise ValueError(f"cell must be 'rnn', 'lstm' or 'gru' (PyTorch's nn.RNN / nn.LSTM / "
                         f"nn.GRU); got {cell!r}")
    if isinstance(cell, str) and cell.lower() in ("rnn_tanh", "rnn_relu"):
        implied = cell.lower()[4:]
        if nonlinearity not in (implied, "tanh"):
            raise ValueError(f"cell={cell!r} conflicts with nonlinearity={nonlinearity!r}")
        nonlinearity = implied
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu' (as nn.RNN); got {nonlinearity!r}")
    if name != "rnn" and nonlinearity != "tanh":
        raise ValueError(f"nonlinearity={nonlinearity!r} applies to cell='rnn' only; "
                         f"nn.{name.upper()} has fixed activations")
    return name, nonlinearity


def _as_array(key: str, value: Any) -> np.ndarray:
    """A state-dict value (NumPy array, or a CPU/GPU tensor) as a NumPy array."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor, without importing torch
        try:
            value = value.detach().cpu().numpy()
        except (TypeError, RuntimeError) as exc:  # e.g. bfloat16 has no NumPy dtype
            raise ValueError(f"state_dict key {key!r}: cannot convert the tensor to NumPy "
                             f"({exc}); convert the module with .float() or .double() first") from None
    if not isinstance(value, np.ndarray):
        raise ValueError(f"state_dict key {key!r}: expected a NumPy array, got "
                         f"{type(value).__name__}")
    return value


def read_state_dict(state_dict: Mapping[str, Any], cell: str = "lstm", *,
                    num_layers: Optional[int] = None, bidirectional: Optional[bool] = None,
                    nonlinearity: str = "tanh", prefix: str = "", dtype: Any = None
                    ) -> Tuple[TorchRNNSpec, Dict[str, np.ndarray]]:
    """Validate a PyTorch recurrent module's state dict and infer its sizes.

    Args:
        state_dict: mapping of parameter names to NumPy arrays (or tensors), e.g.
            ``{k: v.numpy() for k, v in module.state_dict().items()}`` or ``np.load("sd.npz")``.
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"`` (also ``"simple_rnn"``, ``"rnn_tanh"``,
            ``"rnn_relu"``).
        num_layers, bidirectional: as the module's; None infers them from the keys.
        nonlinearity: ``"tanh"`` or ``"relu"`` for ``cell="rnn"``.
        prefix: take only the keys that start with it (e.g. ``"encoder.rnn."`` in the state
            dict of a larger model) and ignore the others; with ``""`` every key must belong.
        dtype: ``"float32"`` / ``"float64"`` to convert to; None keeps the arrays' dtype (which
            must then be one of those two, the same for all).

    Returns:
        ``(spec, arrays)``: the module's :class:`TorchRNNSpec` and ``{key without prefix: array}``
        in PyTorch's key order.

    Raises:
        ValueError: a missing, unexpected or misshapen key (named in the message), an
            unsupported ``proj_size``, a non-float or mixed dtype, or bad arguments.
    """
    name, nonlinearity = _normalize_cell(cell, nonlinearity)
    gates = _CELLS[name][1]
    if not isinstance(state_dict, Mapping) and not (hasattr(state_dict, "keys")
                                                    and hasattr(state_dict, "__getitem__")):
        raise ValueError(f"state_dict must be a mapping of names to arrays, got "
                         f"{type(state_dict).__name__}")
    if num_layers is not None and (not isinstance(num_layers, (int, np.integer))
                                   or isinstance(num_layers, bool) or num_layers < 1):
        raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")

    # 1. Parse the names (before touching any value).
    found: Dict[str, Any] = {}
    for full in list(state_dict.keys()):
        if not isinstance(full, str):
            raise ValueError(f"state_dict keys must be strings, got {full!r}")
        if not full.startswith(prefix):  # other parts of a larger model's state dict
            continue
        key = full[len(prefix):]
        m = _KEY.fullmatch(key)
        if m is None:
            raise ValueError(f"unexpected state_dict key {full!r}: not a parameter of "
                             f"nn.{name.upper()} (expected e.g. {prefix}weight_ih_l0)")
        if m.group(1) == "weight_hr" and name != "lstm":
            raise ValueError(f"unexpected state_dict key {full!r}: only nn.LSTM has weight_hr "
                             "(proj_size)")
        if int(m.group(2)) >= _MAX_LAYERS:
            raise ValueError(f"state_dict key {full!r}: layer index too large")
        found[key] = full
    if not found:
        raise ValueError(f"state_dict has no parameters{' under prefix ' + repr(prefix) if prefix else ''}"
                         f" (expected e.g. {prefix}weight_ih_l0)")
    layers_seen = 1 + max(int(_KEY.fullmatch(k).group(2)) for k in found)  # type: ignore[union-attr]
    n_layers = layers_seen if num_layers is None else int(num_layers)
    bidir = (any(k.endswith("_reverse") for k in found) if bidirectional is None
             else bool(bidirectional))
    has_bias = "bias_ih_l0" in found or "bias_hh_l0" in found

    # 2. Sizes from layer 0's recurrent weight: (G*H, H).
    def get(key: str) -> np.ndarray:
        if key not in found:
            raise ValueError(f"missing state_dict key {prefix + key!r} (nn.{name.upper()}, "
                             f"num_layers={n_layers}, bidirectional={bidir}, bias={has_bias})")
        return _as_array(prefix + key, state_dict[found[key]])

    hh = get("weight_hh_l0")
    projected = "weight_hr_l0" in found
    if projected:  # weight_hh (4H, P), weight_hr (P, H)
        if hh.ndim != 2 or hh.shape[1] < 1 or hh.shape[0] < gates or hh.shape[0] % gates:
            raise ValueError(f"state_dict key {prefix + 'weight_hh_l0'!r}: expected shape "
                             f"(4*H, proj_size) for nn.LSTM with proj_size, got {hh.shape}")
        hidden, proj = hh.shape[0] // gates, int(hh.shape[1])
    elif hh.ndim != 2 or hh.shape[1] < 1 or hh.shape[0] != gates * hh.shape[1]:
        raise ValueError(f"state_dict key {prefix + 'weight_hh_l0'!r}: expected shape "
                         f"({gates}*H, H) for nn.{name.upper()}, got {hh.shape}")
    else:
        hidden, proj = int(hh.shape[1]), 0
    ih = get("weight_ih_l0")
    if ih.ndim != 2 or ih.shape[1] < 1:
        raise ValueError(f"state_dict key {prefix + 'weight_ih_l0'!r}: expected shape "
                         f"({gates * hh.shape[1]}, input_size), got {ih.shape}")
    spec = TorchRNNSpec(cell=name, nonlinearity=nonlinearity, input_size=int(ih.shape[1]),
                        hidden_size=hidden, num_layers=n_layers, bias=has_bias,
                        bidirectional=bidir, dtype="float32", proj_size=proj)

    # 3. Every expected key present with its shape and a float dtype; nothing else.
    expected = list(spec.keys())
    wanted = set(expected)
    extra = [k for k in found if k not in wanted]  # in the state dict's own order
    if extra:
        raise ValueError(f"unexpected state_dict key {prefix + extra[0]!r} for nn.{name.upper()} "
                         f"with num_layers={n_layers}, bidirectional={bidir}, bias={has_bias}")
    arrays: Dict[str, np.ndarray] = {}
    dtypes = set()
    for key in expected:
        a = get(key)
        if a.dtype.kind != "f":
            raise ValueError(f"state_dict key {prefix + key!r}: expected floating-point values, "
                             f"got dtype {a.dtype}")
        if a.shape != spec.shape(key):
            raise ValueError(f"state_dict key {prefix + key!r}: expected shape {spec.shape(key)}, "
                             f"got {a.shape}")
        if dtype is None and a.dtype not in (np.float32, np.float64):
            raise ValueError(f"state_dict key {prefix + key!r}: dtype {a.dtype} is not supported "
                             "(rnnkit computes in float32 or float64; pass dtype='float32')")
        dtypes.add(a.dtype)
        arrays[key] = a
    if dtype is None:
        if len(dtypes) > 1:
            raise ValueError(f"state_dict mixes dtypes {sorted(str(d) for d in dtypes)}; pass "
                             "dtype='float32' or 'float64' to convert")
        dtype = dtypes.pop()
    arrays = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in arrays.items()}
    spec = TorchRNNSpec(**{**spec.__dict__, "dtype": np.dtype(dtype).name})
    return spec, arrays


def _layer_weights(spec: TorchRNNSpec, arrays: Mapping[str, np.ndarray], k: int, s: str
                   ) -> List[np.ndarray]:
    """rnnkit weights ``[kernel, recurrent_kernel(, bias)]`` of layer ``k``, direction ``s``."""
    h = spec.hidden_size
    kernel = arrays[f"weight_ih_l{k}{s}"].T      # (I_k, G*H)
    rec = arrays[f"weight_hh_l{k}{s}"].T         # (H, G*H)
    out = [kernel, rec]
    if spec.cell == "gru":
        out = [swap_zr(kernel, h), swap_zr(rec, h)]
    if spec.bias:
        b_ih, b_hh = arrays[f"bias_ih_l{k}{s}"], arrays[f"bias_hh_l{k}{s}"]
        if spec.cell == "gru":  # (2, 3H) = [input bias; recurrent bias], reset_after=True
            out.append(np.stack([swap_zr(b_ih, h), swap_zr(b_hh, h)]))
        else:                   # PyTorch adds both biases; Keras has one
            out.append(b_ih + b_hh)
    if spec.proj_size:          # rnnkit order: kernel, recurrent_kernel, projection_kernel, bias
        out.insert(2, arrays[f"weight_hr_l{k}{s}"].T)
    return [np.ascontiguousarray(w) for w in out]


def build_sequential(spec: TorchRNNSpec, arrays: Mapping[str, np.ndarray]) -> Any:
    """The rnnkit ``Sequential`` for a validated ``(spec, arrays)`` (see :func:`read_state_dict`)."""
    from ..layers import GRU, LSTM, Bidirectional, Input, SimpleRNN
    from ..models import Sequential

    def rnn_layer() -> Any:
        kw: Dict[str, Any] = dict(return_sequences=True, use_bias=spec.bias, dtype=spec.dtype)
        if spec.cell == "lstm":
            return LSTM(spec.hidden_size, proj_size=spec.proj_size or None, **kw)
        if spec.cell == "gru":
            return GRU(spec.hidden_size, reset_after=True, **kw)
        return SimpleRNN(spec.hidden_size, activation=spec.nonlinearity, **kw)

    layers: List[Any] = [Input(shape=(None, spec.input_size), dtype=spec.dtype)]
    weights: List[np.ndarray] = []
    for k in range(spec.num_layers):
        layer = rnn_layer()
        if spec.bidirectional:
            layer = Bidirectional(layer, merge_mode="concat", dtype=spec.dtype)
        layers.append(layer)
        for s in spec.suffixes():  # Bidirectional: forward layer's weights, then backward's
            weights.extend(_layer_weights(spec, arrays, k, s))
    model = Sequential(layers)
    model.set_weights(weights)
    return model


def sequential_from_state_dict(state_dict: Mapping[str, Any], cell: str = "lstm", *,
                               num_layers: Optional[int] = None,
                               bidirectional: Optional[bool] = None,
                               nonlinearity: str = "tanh", prefix: str = "",
                               dtype: Any = None) -> Any:
    """An rnnkit ``Sequential`` computing what a PyTorch ``nn.RNN/LSTM/GRU`` computes, from its
    state dict alone (PyTorch is not needed).

    ``model.predict(x)`` equals ``module(x)[0]`` for batch-first ``x (B, T, I)``; for a module
    built with ``batch_first=False`` feed the rnnkit model ``x.transpose(1, 0, 2)`` (rnnkit
    models are always batch-first). Layers: one ``SimpleRNN``/``LSTM``/``GRU`` per PyTorch
    layer, ``return_sequences=True``, each in ``Bidirectional(merge_mode="concat")`` when
    bidirectional; GRUs are ``reset_after=True``. PyTorch's inter-layer ``dropout`` is not
    part of a state dict (it only acts in training).

    Arguments, validation and errors: see :func:`read_state_dict`.

    Example::

        sd = np.load("lstm_state.npz")            # saved with np.savez(f, **{k: v.numpy() ...})
        model = sequential_from_state_dict(sd, "lstm", num_layers=2, bidirectional=True)
        y = model.predict(x)                      # == module(x)[0]
    """
    spec, arrays = read_state_dict(state_dict, cell, num_layers=num_layers,
                                   bidirectional=bidirectional, nonlinearity=nonlinearity,
                                   prefix=prefix, dtype=dtype)
    return build_sequential(spec, arrays)


# -- rnnkit -> state dict ----------------------------------------------------------------------

def _rnn_options(layer: Any, where: str) -> Tuple[str, str, int, bool, str]:
    """``(cell, nonlinearity, units, use_bias, dtype)`` of one rnnkit RNN layer, or ValueError
    when PyTorch cannot express it."""
    from ..layers import GRU, LSTM, SimpleRNN

    if isinstance(layer, LSTM):
        cell = "lstm"
    elif isinstance(layer, GRU):
        cell = "gru"
    elif isinstance(layer, SimpleRNN):
        cell = "rnn"
    else:  # pragma: no cover - callers check
        raise ValueError(f"{where}: not a SimpleRNN/LSTM/GRU")
    if not layer.return_sequences:
        raise ValueError(f"{where}: return_sequences=False; PyTorch's {cell.upper()} always "
                         "returns the whole sequence (set return_sequences=True and take "
                         "y[:, -1] yourself)")
    if layer.return_state:
        raise ValueError(f"{where}: return_state=True has no nn.Module counterpart here")
    if layer.stateful:
        raise ValueError(f"{where}: stateful=True; PyTorch modules carry no state between "
                         "calls (pass h0 yourself)")
    act = layer.activation.name
    if cell == "rnn":
        if act not in ("tanh", "relu"):
            raise ValueError(f"{where}: activation {act!r}; nn.RNN supports only 'tanh' or "
                             "'relu'")
        nonlinearity = act
    else:
        rec = layer.recurrent_activation.name
        if act != "tanh" or rec != "sigmoid":
            raise ValueError(f"{where}: activation={act!r}, recurrent_activation={rec!r}; "
                             f"nn.{cell.upper()} has fixed activations tanh and sigmoid")
        nonlinearity = "tanh"
    if cell == "gru" and not layer.reset_after:
        raise ValueError(f"{where}: GRU reset_after=False has no PyTorch equivalent (nn.GRU is "
                         "Keras's reset_after=True)")
    if layer.dropout or layer.recurrent_dropout:
        warnings.warn(f"{where}: dropout={layer.dropout}, recurrent_dropout="
                      f"{layer.recurrent_dropout} are not carried over (training only; "
                      "PyTorch's dropout is between layers, not inside them)", stacklevel=4)
    return cell, nonlinearity, layer.units, layer.use_bias, layer.dtype


def _torch_weights(cell: str, h: int, weights: List[np.ndarray], use_bias: bool,
                   projected: bool = False) -> List[np.ndarray]:
    """PyTorch ``[weight_ih, weight_hh(, bias_ih, bias_hh)(, weight_hr)]`` from rnnkit layer
    weights ``[kernel, recurrent_kernel(, projection_kernel)(, bias)]``."""
    kernel, rec = weights[0], weights[1]
    proj = weights[2] if projected else None
    weights = [kernel, rec] + weights[3 if projected else 2:]
    if cell == "gru":
        kernel, rec = swap_zr(kernel, h), swap_zr(rec, h)
    out = [kernel.T, rec.T]
    if use_bias:
        b = weights[2]
        if cell == "gru":
            out += [swap_zr(b[0], h), swap_zr(b[1], h)]
        else:  # the whole bias goes to bias_ih (only the sum is defined)
            out += [b, np.zeros_like(b)]
    if proj is not None:
        out.append(proj.T)  # projection_kernel (H, P) -> weight_hr (P, H)
    return [np.ascontiguousarray(w) for w in out]


def sequential_to_state_dict(model: Any) -> Tuple[Dict[str, np.ndarray], TorchRNNSpec]:
    """The PyTorch state dict (NumPy arrays) and module spec of an rnnkit RNN stack.

    ``model`` is a built rnnkit ``Sequential`` whose layers are all the same cell
    (``SimpleRNN`` with tanh/relu, ``LSTM``, or ``GRU`` with ``reset_after=True``), every one
    with ``return_sequences=True``, either all plain or all ``Bidirectional(merge_mode="concat")``,
    all with the same ``units``, ``use_bias`` and dtype. LSTM/RNN biases go to ``bias_ih``
    (``bias_hh`` is zero).

    Raises:
        TypeError: ``model`` is not an rnnkit ``Sequential``.
        ValueError: the model is not built, or something PyTorch cannot express (the message
            names the layer): another layer kind (``Masking``, ``Dense``...), mixed cells,
            sizes, biases or dtypes, ``merge_mode`` other than concat, ``go_backwards``
            outside Bidirectional, ``reset_after=False``, activations PyTorch lacks,
            ``return_sequences=False``, ``stateful``, LSTM ``proj_size``.
    """
    from ..layers import Bidirectional, Masking
    from ..layers.recurrent import _RNN
    from ..models import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"expected an rnnkit Sequential model, got {type(model).__name__}")
    if not model.layers:
        raise ValueError("the model has no layers")
    if not model.built:
        raise ValueError("the model is not built; build it first (model.build((None, T, I)) "
                         "or give it an Input)")
    per_layer: List[Tuple[List[Any], str]] = []  # ([rnn layers of the directions], where)
    for i, layer in enumerate(model.layers):
        where = f"layer {i} {layer.name!r} ({type(layer).__name__})"
        if isinstance(layer, Bidirectional):
            if layer.merge_mode != "concat":
                raise ValueError(f"{where}: merge_mode={layer.merge_mode!r}; PyTorch "
                                 "concatenates the two directions (merge_mode='concat' only)")
            fwd, bwd = layer.forward_layer, layer.backward_layer
            if fwd.go_backwards or not bwd.go_backwards:
                raise ValueError(f"{where}: the forward layer must have go_backwards=False and "
                                 "the backward layer go_backwards=True")
            per_layer.append(([fwd, bwd], where))
        elif isinstance(layer, _RNN):
            if layer.go_backwards:
                raise ValueError(f"{where}: go_backwards=True outside Bidirectional has no "
                                 "PyTorch equivalent (PyTorch reverses only inside "
                                 "bidirectional=True)")
            per_layer.append(([layer], where))
        elif isinstance(layer, Masking):
            raise ValueError(f"{where}: masks are not supported: PyTorch's RNN modules take no "
                             "mask (use torch.nn.utils.rnn.pack_padded_sequence yourself)")
        else:
            raise ValueError(f"{where}: only stacks of SimpleRNN / LSTM / GRU layers (optionally "
                             "in Bidirectional) map to one PyTorch module")

    first: Optional[Tuple[str, str, int, bool, str, int]] = None
    directions = len(per_layer[0][0])
    for subs, where in per_layer:
        if len(subs) != directions:
            raise ValueError(f"{where}: mixes bidirectional and unidirectional layers; a "
                             "PyTorch module is bidirectional in every layer or in none")
        for sub in subs:
            opts = _rnn_options(sub, where) + (getattr(sub, "proj_size", None) or 0,)
            if first is None:
                first = opts
            names = ("cell", "activation", "units", "use_bias", "dtype", "proj_size")
            for n, a, b in zip(names, opts, first):
                if a != b:
                    raise ValueError(f"{where}: {n} {a!r} differs from the first layer's {b!r}; "
                                     "a PyTorch module has one cell, activation, hidden size, "
                                     "bias flag and dtype for all its layers")
    assert first is not None
    cell, nonlinearity, units, use_bias, dtype, proj = first
    spec = TorchRNNSpec(cell=cell, nonlinearity=nonlinearity,
                        input_size=int(per_layer[0][0][0].kernel.shape[0]), hidden_size=units,
                        num_layers=len(per_layer), bias=use_bias,
                        bidirectional=directions == 2, dtype=dtype, proj_size=proj)
    sd: Dict[str, np.ndarray] = {}
    kinds = (("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if use_bias else ())
             + (("weight_hr",) if proj else ()))
    for k, (subs, _) in enumerate(per_layer):
        for s, sub in zip(spec.suffixes(), subs):
            for kind, w in zip(kinds, _torch_weights(cell, units, sub.get_weights(), use_bias,
                                                     bool(proj))):
                sd[f"{kind}_l{k}{s}"] = w
    return sd, spec
