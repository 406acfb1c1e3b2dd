"""Write an rnnkit model (Sequential or functional) as an ONNX file for inference.

``model.export("m.onnx", format="onnx")`` (Keras 3's ``Model.export``) calls
:func:`export_onnx`. The graph keeps Keras's batch-first layout: inputs ``(batch, time,
features)`` (or ``(batch, time)`` integer ids for an ``Embedding``), the batch and every
unknown axis symbolic. Recurrent layers become ONNX's own ``RNN`` / ``LSTM`` / ``GRU``
operators (:mod:`.onnx_rnn`), the other layers plain ONNX nodes (:mod:`.onnx_layers`);
the model's layers are walked in the order rnnkit runs them (:class:`rnnkit.graph.Graph`).
Masks travel as bool ``(B, T)`` tensors computed in the graph and reach the recurrent layers as
``sequence_lens`` -- exact for right-padded sequences, see :mod:`.onnx_rnn`.

Numbers: the file holds float32 weights and computes in float32 (ONNX Runtime's RNN kernels use
float32; they approximate tanh/sigmoid inside GRU cells, within about 1e-6).

``onnx`` is the optional extra ``rnnkit[onnx]``; running the file needs ``onnxruntime``
(``pip install onnxruntime``)::

    model.export("model.onnx", format="onnx")
    import onnxruntime as ort
    sess = ort.InferenceSession("model.onnx")
    y = sess.run(None, {sess.get_inputs()[0].name: x.astype("float32")})[0]

Layers or options without an ONNX form raise :class:`ExportError` (a ValueError) naming the
layer; nothing is written then.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import saving
from ..layers.base import Layer
from ..layers.embedding import Embedding
from ..layers.recurrent import _RNN
from ..layers.wrappers import Bidirectional
from ._onnx_graph import MIN_OPSET, ExportError, GraphBuilder, require_onnx
from .onnx_layers import EMITTERS
from .onnx_rnn import emit_bidirectional, emit_recurrent

__all__ = ["export_onnx", "to_onnx", "ExportError", "DEFAULT_OPSET"]

#: The opset written unless ``opset_version`` says otherwise.
DEFAULT_OPSET = 17

Masks = List[Optional[str]]
Outputs = Tuple[List[str], Masks]

_INT_TYPES = {"int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
              "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64"}


def _supported_names() -> str:
    names = {c.__name__ for c in EMITTERS} | {"SimpleRNN", "LSTM", "GRU", "Bidirectional",
                                             "Sequential", "Model"}
    return ", ".join(sorted(names))


def _emit_layer(b: GraphBuilder, layer: Layer, ins: List[str], masks: Masks,
                shapes: List[Tuple[Optional[int], ...]], kwargs: Dict[str, Any]) -> Outputs:
    """One call of ``layer`` on the ONNX tensors ``ins``: its outputs and their masks."""
    extra = sorted(k for k in kwargs if k != "training")
    if extra:
        raise ExportError(f"layer {layer.name!r} ({type(layer).__name__}): call arguments "
                          f"{extra} cannot be exported to ONNX")
    from ..models import Model  # models imports rnnkit.interop lazily; no cycle at load
    if isinstance(layer, Model):
        return _emit_model(b, layer, ins, masks)
    if isinstance(layer, Bidirectional):
        return emit_bidirectional(b, layer, ins, masks[0])
    if isinstance(layer, _RNN):
        return emit_recurrent(b, layer, ins, masks[0])
    emitter = EMITTERS.get(type(layer))
    if emitter is None:
        raise ExportError(f"layer {layer.name!r} ({type(layer).__name__}) cannot be exported "
                          f"to ONNX; supported layers: {_supported_names()}")
    return emitter(b, layer, ins, masks, shapes)


def _emit_model(b: GraphBuilder, model: Any, ins: List[str], masks: Masks) -> Outputs:
    """Every layer call of ``model`` (Sequential chain or functional graph), in run order."""
    from ..models import Sequential
    if isinstance(model, Sequential):
        x, m = ins[0], masks[0]
        shape = model.input_shape
        for layer in model.layers:
            outs, ms = _emit_layer(b, layer, [x], [m], [shape], {})
            x, m = outs[0], ms[0]
            shape = layer.output_shape
        return [x], [m]
    g = model._graph
    values: Dict[int, str] = {id(t): n for t, n in zip(g.inputs, ins)}
    mask_of: Dict[int, Optional[str]] = {id(t): m for t, m in zip(g.inputs, masks)}
    for node in g.nodes:
        outs, ms = _emit_layer(b, node.layer, [values[id(t)] for t in node.inputs],
                               [mask_of[id(t)] for t in node.inputs],
                               [tuple(t.shape) for t in node.inputs], dict(node.kwargs))
        if len(outs) != len(node.outputs):
            raise ExportError(f"layer {node.layer.name!r}: exported {len(outs)} outputs, the "
                              f"model uses {len(node.outputs)}")
        for t, o, mk in zip(node.outputs, outs, ms):
            values[id(t)] = o
            mask_of[id(t)] = mk
    return [values[id(t)] for t in g.outputs], [mask_of[id(t)] for t in g.outputs]


def _input_specs(model: Any) -> List[Tuple[str, Tuple[Optional[int], ...], str]]:
    """``(name, shape, ONNX element type)`` per model input. Float inputs that only feed
    Embedding layers are integer ids: int64."""
    from ..models import Sequential
    if isinstance(model, Sequential):
        if model.input_shape is None or not model.built:
            raise ExportError(f"model {model.name!r} is not built: give it an input shape "
                              "(an Input or input_shape=) or call it on data before exporting")
        dtype = model._input_dtype or "float32"
        only_ids = isinstance(model.layers[0], Embedding)
        specs = [(model.input_names[0], tuple(model.input_shape), dtype, only_ids)]
    else:
        g = model._graph
        specs = []
        for name, t in zip(model.input_names, model.inputs):
            users = [n.layer for n in g.nodes if any(i is t for i in n.inputs)]
            only_ids = bool(users) and all(isinstance(u, Embedding) for u in users)
            specs.append((name, tuple(t.shape), t.dtype or "float32", only_ids))
    out = []
    for name, shape, dtype, only_ids in specs:
        elem = _INT_TYPES.get(str(dtype), "INT64" if only_ids else "FLOAT")
        out.append((name, shape, elem))
    return out


def _output_shapes(model: Any) -> List[Tuple[Optional[int], ...]]:
    from ..models import Sequential
    if isinstance(model, Sequential):
        return [tuple(model.output_shape)]
    return [tuple(t.shape) for t in model.outputs]


def _value_info(b: GraphBuilder, name: str, shape: Sequence[Optional[int]], elem: str) -> Any:
    dims: List[Any] = [("batch" if i == 0 else f"{name}_dim{i}") if d is None else int(d)
                       for i, d in enumerate(shape)]
    return b.helper.make_tensor_value_info(name, getattr(b.onnx.TensorProto, elem), dims)


def to_onnx(model: Any, opset_version: Optional[int] = None) -> Any:
    """The ONNX ``ModelProto`` of ``model`` (checked with ``onnx.checker``).

    Args:
        model: a built :class:`rnnkit.Sequential` or functional :class:`rnnkit.Model`.
        opset_version: ONNX opset to write (default :data:`DEFAULT_OPSET`; at least 17).

    Raises:
        ExportError: a layer or option has no ONNX form (the message names the layer).
        ImportError: ``onnx`` is missing (install ``rnnkit[onnx]``).
    """
    onnx = require_onnx()
    from ..models import Model
    if not isinstance(model, Model):
        raise TypeError(f"to_onnx: expected an rnnkit Model or Sequential, got "
                        f"{type(model).__name__}")
    opset = DEFAULT_OPSET if opset_version is None else opset_version
    if not isinstance(opset, int) or isinstance(opset, bool) or \
            not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(f"opset_version must be an int in [{MIN_OPSET}, "
                         f"{onnx.defs.onnx_opset_version()}] (the installed onnx's newest), "
                         f"got {opset!r}")
    b = GraphBuilder(opset)
    in_specs = _input_specs(model)
    in_names = [b.fresh(n) for n, _, _ in in_specs]
    out_names = [b.fresh(n) for n in model.output_names]
    outs, _ = _emit_model(b, model, list(in_names), [None] * len(in_names))
    for src, dst in zip(outs, out_names):  # name the outputs as the model does
        b.nodes.append(b.helper.make_node("Identity", [src], [dst], name=b.fresh(f"{dst}/out")))
    inputs = [_value_info(b, n, s, e) for n, (_, s, e) in zip(in_names, in_specs)]
    outputs = [_value_info(b, n, s, "FLOAT") for n, s in zip(out_names, _output_shapes(model))]
    proto = b.model(inputs, outputs, model.name,
                    doc=f"rnnkit model {model.name!r} exported for inference")
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model: Any, filepath: Any, opset_version: Optional[int] = None,
                verbose: Optional[bool] = None) -> None:
    """Write ``model`` as an ONNX file at ``filepath`` (atomically: a temporary file in the
    same folder, then renamed). See :func:`to_onnx` for the arguments and errors."""
    proto = to_onnx(model, opset_version)
    path = os.fspath(filepath)
    saving.atomic_write_file(path, lambda f: f.write(proto.SerializeToString()))
    if verbose:
        print(f"Saved the ONNX model ({len(proto.graph.node)} nodes, opset "
              f"{proto.opset_import[0].version}) to {path}")
