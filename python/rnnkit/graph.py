"""The graph of a functional model: which layer calls (nodes) run, in what order, and how
arrays and gradients flow between them.

Built from the model's input and output :class:`~rnnkit.layers.node.KerasTensor` objects by
walking the nodes back from the outputs, as Keras 3 does (``keras.src.ops.function.map_graph``):
a node's *depth* is its distance from the outputs, nodes run from the deepest to depth 0, and
``layers`` lists the layers by decreasing depth, ties broken by first visit of a depth-first
walk from the outputs -- the same order Keras gives, so the weights come out in Keras's order.

Forward keeps, per node, the shapes of its outputs (for zero gradients of unused outputs);
each node runs in its own call slot so a shared layer keeps one cache per call. Backward
visits the nodes in reverse, sums the gradients of tensors used by several nodes, and sums
the weight gradients of a layer called at several nodes.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .layers.base import InputLayer, Layer, Weight
from .layers.node import KerasTensor, Node, call_slot, current_slot, with_call_kwargs

__all__ = ["Graph"]


class Graph:
    """The nodes between ``inputs`` (tensors from ``Input``) and ``outputs``."""

    def __init__(self, inputs: Sequence[KerasTensor], outputs: Sequence[KerasTensor]) -> None:
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        for i, t in enumerate(self.inputs):
            if not isinstance(t, KerasTensor) or not isinstance(t.layer, InputLayer):
                raise ValueError(f"Model: inputs[{i}] must be a tensor returned by Input(...), "
                                 f"got {t!r}")
        for i, t in enumerate(self.outputs):
            if not isinstance(t, KerasTensor):
                raise ValueError(f"Model: outputs[{i}] must be a symbolic tensor (a layer "
                                 f"called on Input tensors), got {type(t).__name__}")
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise ValueError("Model: the same Input tensor is listed twice in `inputs`")
        order, visit_index = self._walk()
        self.nodes, self.layers = self._sort(order, visit_index)
        names = [layer.name for layer in self.layers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"Model: layer names must be unique, but {dupes} are used by "
                             "several layers (pass distinct `name=` arguments)")
        self._out_specs: Dict[Any, Dict[int, List[Tuple[Tuple[int, ...], np.dtype]]]] = {}
        # A node needs its backward when it has weights or feeds gradient to a node that does
        # (e.g. not a Lambda applied straight to an Input: it may have no backward at all).
        needed: Dict[int, bool] = {}
        for node in self.nodes:
            needed[id(node)] = bool(node.layer.weights) or any(
                needed.get(id(t.node), False) for t in node.inputs)
        self._needs_backward = [needed[id(n)] for n in self.nodes]

    # -- topology -------------------------------------------------------------------------
    def _walk(self) -> Tuple[List[Node], Dict[Layer, int]]:
        """Depth-first from the outputs: nodes in post-order (inputs -> outputs) and each
        layer's first-visit index. Iterative, so deep graphs do not hit recursion limits."""
        declared = {id(t) for t in self.inputs}
        finished: set = set()
        order: List[Node] = []
        visit_index: Dict[Layer, int] = {}
        for out in self.outputs:
            stack: List[Tuple[KerasTensor, bool]] = [(out, False)]
            while stack:
                tensor, expanded = stack.pop()
                node = tensor.node
                if expanded:
                    if id(node) not in finished:
                        finished.add(id(node))
                        order.append(node)
                    continue
                if id(node) in finished:
                    continue
                if isinstance(node.layer, InputLayer) and id(tensor) not in declared:
                    raise ValueError(
                        f"Model: the outputs are not connected to the inputs: they need Input "
                        f"{node.layer.name!r} {tensor.shape}, which is not in `inputs` "
                        f"(inputs: {[t.layer.name for t in self.inputs]})")
                visit_index.setdefault(node.layer, len(visit_index))
                stack.append((tensor, True))
                for t in reversed(node.inputs):
                    stack.append((t, False))
        for t in self.inputs:  # inputs no output depends on still belong to the model
            if id(t.node) not in finished:
                finished.add(id(t.node))
                order.insert(0, t.node)
                visit_index.setdefault(t.layer, len(visit_index))
        return order, visit_index

    @staticmethod
    def _sort(order: List[Node], visit_index: Dict[Layer, int]) -> Tuple[List[Node], List[Layer]]:
        """Keras's depths: a node is one deeper than the deepest node it feeds; a layer takes
        the greatest depth of its nodes. Nodes and layers sorted by decreasing depth."""
        in_graph = {id(n) for n in order}
        depth: Dict[int, int] = {}
        layer_depth: Dict[Layer, int] = {}
        for node in reversed(order):
            d = max(depth.setdefault(id(node), 0), layer_depth.get(node.layer, 0))
            layer_depth[node.layer] = d
            depth[id(node)] = d
            for t in node.inputs:
                if id(t.node) in in_graph:
                    depth[id(t.node)] = max(depth.get(id(t.node), 0), d + 1)
        position = {id(n): i for i, n in enumerate(order)}
        nodes = sorted((n for n in order if not isinstance(n.layer, InputLayer)),
                       key=lambda n: (-depth[id(n)], position[id(n)]))
        layers = sorted(layer_depth, key=lambda layer: (-layer_depth[layer], visit_index[layer]))
        return nodes, layers

    def node_index(self, node: Node) -> int:
        """Index of ``node`` among its layer's nodes that belong to this graph."""
        mine = [n for n in node.layer._inbound_nodes if n in self._node_set]
        return mine.index(node)

    @property
    def _node_set(self) -> List[Node]:
        return self.nodes + [t.node for t in self.inputs]

    def collect(self, which: str = "weights") -> List[Weight]:
        """Every weight once (a shared layer's only once), layer by layer in :attr:`layers`
        order; ``which`` is the layer attribute: ``"weights"`` or ``"trainable_weights"``."""
        seen, out = set(), []
        for layer in self.layers:
            for w in getattr(layer, which):
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    @property
    def weights(self) -> List[Weight]:
        """Every weight once, layer by layer in :attr:`layers` order."""
        return self.collect("weights")

    # -- execution ------------------------------------------------------------------------
    def _slot(self, k: int) -> Any:
        return (current_slot(), id(self), k)

    def forward(self, arrays: Sequence[Any], training: bool, need_grad: bool,
                masks: Optional[Sequence[Optional[np.ndarray]]] = None
                ) -> Tuple[List[Any], List[Optional[np.ndarray]]]:
        """Run every node on the input ``arrays`` (one per input); returns the outputs and
        their masks. With ``need_grad`` each layer keeps its cache for :meth:`backward`."""
        values: Dict[int, Any] = {id(t): a for t, a in zip(self.inputs, arrays)}
        mask_of: Dict[int, Optional[np.ndarray]] = {
            id(t): (None if masks is None else masks[i]) for i, t in enumerate(self.inputs)}
        specs = {}
        for k, node in enumerate(self.nodes):
            ins = [values[id(t)] for t in node.inputs]
            ms = [mask_of.get(id(t)) for t in node.inputs]
            x: Any = ins[0] if node.single_input else ins
            m: Any = ms[0] if node.single_input else ms
            with call_slot(self._slot(k)):
                out = node.layer.forward(x, mask=m, training=training, need_grad=need_grad,
                                         **node.kwargs)
                out_mask = with_call_kwargs(node.layer.compute_mask, x, m, kwargs=node.kwargs)
            outs = [out] if node.single_output else list(out)
            if len(outs) != len(node.outputs):
                raise RuntimeError(f"layer {node.layer.name!r} returned {len(outs)} outputs, "
                                   f"its node declares {len(node.outputs)}")
            if node.single_output or not isinstance(out_mask, list):
                out_masks = [out_mask] + [None] * (len(outs) - 1)
            else:
                out_masks = list(out_mask)
            for t, v, mk in zip(node.outputs, outs, out_masks):
                values[id(t)] = v
                mask_of[id(t)] = mk
            if need_grad:
                specs[k] = [(np.shape(v), np.asarray(v).dtype) for v in outs]
        if need_grad:
            self._out_specs[current_slot()] = specs
        return [values[id(t)] for t in self.outputs], [mask_of[id(t)] for t in self.outputs]

    def backward(self, douts: Sequence[Optional[np.ndarray]], input_grads: bool = True
                 ) -> List[Optional[np.ndarray]]:
        """Gradients of the outputs -> gradients of the inputs (None where none flows).
        Sets ``weight.grad`` of every weight (summed over a shared layer's calls; None when
        no gradient reached it). With ``input_grads=False`` (training a whole model) nodes
        that lead to no weight are skipped."""
        specs = self._out_specs.pop(current_slot(), None)
        if specs is None:
            raise RuntimeError("backward() needs a forward(need_grad=True) first")
        grads: Dict[int, np.ndarray] = {}
        for t, g in zip(self.outputs, douts):
            if g is not None:
                grads[id(t)] = grads[id(t)] + g if id(t) in grads else g
        weight_grads: Dict[int, np.ndarray] = {}
        for k in range(len(self.nodes) - 1, -1, -1):
            node = self.nodes[k]
            dys = [grads.pop(id(t), None) for t in node.outputs]
            if all(d is None for d in dys) or not (input_grads or self._needs_backward[k]):
                with call_slot(self._slot(k)):
                    node.layer._cache = None
                continue
            dys = [np.zeros(s, dt) if d is None else d for d, (s, dt) in zip(dys, specs[k])]
            layer = node.layer
            for w in layer.weights:
                w.grad = None
            with call_slot(self._slot(k)):
                g = layer.backward(dys[0] if node.single_output else dys)
            for w in layer.weights:
                if w.grad is not None:
                    prev = weight_grads.get(id(w))
                    weight_grads[id(w)] = w.grad if prev is None else prev + w.grad
            gin = [g] if node.single_input else ([None] * len(node.inputs) if g is None else list(g))
            for t, gi in zip(node.inputs, gin):
                if gi is not None:
                    grads[id(t)] = grads[id(t)] + gi if id(t) in grads else gi
        for w in self.weights:
            w.grad = weight_grads.get(id(w))
        return [grads.get(id(t)) for t in self.inputs]
