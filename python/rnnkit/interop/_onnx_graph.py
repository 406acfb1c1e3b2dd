"""A small ONNX graph builder shared by the ONNX exporters (:mod:`.onnx_export`,
:mod:`.onnx_rnn`, :mod:`.onnx_layers`).

It holds the nodes and initializers being built, hands out unique tensor names, and hides the
one opset difference the exporters meet: ``ReduceSum`` takes ``axes`` as an input since opset
13, the other reductions only since opset 18 (an attribute before).

``onnx`` is optional: :func:`require_onnx` imports it and, when it is missing, raises an
ImportError naming the ``rnnkit[onnx]`` extra.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

__all__ = ["require_onnx", "GraphBuilder", "ExportError", "MIN_OPSET"]

#: Oldest opset the exporters emit (LSTM/GRU/RNN-14, Softmax-13 on one axis, ...).
MIN_OPSET = 17


class ExportError(ValueError):
    """A model (or one of its layers) cannot be written as ONNX; the message names the layer."""


def require_onnx() -> Any:
    """Import and return the ``onnx`` module.

    Raises:
        ImportError: ``onnx`` is not installed; the message names the ``rnnkit[onnx]`` extra.
    """
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(
            "exporting to ONNX needs the 'onnx' package, which is not installed; install the "
            "optional extra with: pip install 'rnnkit[onnx]' (and 'onnxruntime' to run the "
            "exported file)") from exc
    return onnx


class GraphBuilder:
    """Nodes, initializers and unique names of one ONNX graph under construction."""

    def __init__(self, opset: int) -> None:
        self.onnx = require_onnx()
        self.helper = self.onnx.helper
        self.opset = int(opset)
        self.nodes: List[Any] = []
        self.initializers: List[Any] = []
        self._taken: set = set()
        self._next: Dict[str, int] = {}
        self._consts: Dict[Any, str] = {}
        self._lengths: Dict[str, str] = {}

    # -- names ------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        """A tensor/node name not used before, built from ``hint``."""
        hint = "".join(c if c.isalnum() or c in "_./:-" else "_" for c in hint) or "t"
        n = self._next.get(hint, 0)
        name = hint if n == 0 else f"{hint}_{n}"
        while name in self._taken:
            n += 1
            name = f"{hint}_{n}"
        self._next[hint] = n + 1
        self._taken.add(name)
        return name

    # -- constants --------------------------------------------------------------------------
    def const(self, value: Any, hint: str, dtype: Any = None) -> str:
        """An initializer holding ``value`` (floats as float32 unless ``dtype`` says otherwise);
        small constants with the same value and dtype are shared."""
        arr = np.asarray(value, dtype=dtype)
        if dtype is None and arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        if dtype is None and arr.dtype.kind in "iu" and arr.dtype != np.int64:
            arr = arr.astype(np.int64)
        key = None
        if arr.size <= 16:
            key = (arr.dtype.str, arr.shape, arr.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(arr.copy(order="C"),
                                                                   name))
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values: Sequence[int]) -> str:
        """A 1-D int64 constant (axes, shapes, indices)."""
        return self.const(np.asarray(list(values), np.int64), "const_i64")

    # -- nodes ------------------------------------------------------------------------------
    def op(self, op_type: str, inputs: Sequence[str], hint: str, outputs: int = 1,
           **attrs: Any) -> Union[str, List[str]]:
        """Append a node; returns its output name (or the list of ``outputs`` names)."""
        outs = [self.fresh(f"{hint}/{op_type}" if outputs == 1 else f"{hint}/{op_type}_out{i}")
                for i in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs,
                                                name=self.fresh(f"{hint}/{op_type}_node"),
                                                **attrs))
        return outs[0] if outputs == 1 else outs

    def reduce(self, op_type: str, x: str, axes: Sequence[int], hint: str,
               keepdims: bool = False) -> str:
        """``ReduceSum/Mean/Max/...`` over ``axes``, in the form the opset wants."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes)], hint, keepdims=int(keepdims))
        return self.op(op_type, [x], hint, axes=list(axes), keepdims=int(keepdims))

    def unsqueeze(self, x: str, axes: Sequence[int], hint: str) -> str:
        return self.op("Unsqueeze", [x, self.ints(axes)], hint)

    def squeeze(self, x: str, axes: Sequence[int], hint: str) -> str:
        return self.op("Squeeze", [x, self.ints(axes)], hint)

    def gather(self, x: str, index: int, axis: int, hint: str) -> str:
        """``x`` at position ``index`` of ``axis`` (that axis removed)."""
        return self.op("Gather", [x, self.const(np.asarray(index, np.int64), "index")], hint,
                       axis=axis)

    def reverse_time(self, x: str, axis: int, hint: str) -> str:
        """``x`` reversed along ``axis`` (a Slice with step -1)."""
        big = np.iinfo(np.int64)
        return self.op("Slice", [x, self.ints([-1]), self.ints([big.min]), self.ints([axis]),
                                 self.ints([-1])], hint)

    def lengths(self, mask: str) -> str:
        """Per-row count of kept steps of a ``(B, T)`` bool mask: int32 ``(B,)``, the
        ``sequence_lens`` of the ONNX RNN operators (one node pair per mask)."""
        if mask not in self._lengths:
            as_int = self.op("Cast", [mask], "mask_lengths", to=self.onnx.TensorProto.INT32)
            self._lengths[mask] = self.reduce("ReduceSum", as_int, [1], "mask_lengths")
        return self._lengths[mask]

    def model(self, inputs: List[Any], outputs: List[Any], graph_name: str,
              doc: Optional[str] = None) -> Any:
        """The finished ``ModelProto``."""
        graph = self.helper.make_graph(self.nodes, graph_name, inputs, outputs,
                                       initializer=self.initializers, doc_string=doc or "")
        m = self.helper.make_model(graph, producer_name="rnnkit",
                                   opset_imports=[self.helper.make_opsetid("", self.opset)])
        # The installed onnx may stamp a newer IR version than runtimes read; use the
        # oldest one that carries this opset.
        m.ir_version = self.helper.find_min_ir_version_for(list(m.opset_import))
        return m
