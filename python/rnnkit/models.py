"""Models: functional ``Model(inputs, outputs)`` and ``Sequential``, with Keras 3's
compile/fit/evaluate/predict (:mod:`rnnkit.training`), summary, config and saving.

A functional model runs the graph of layer calls recorded from ``Input`` tensors
(:mod:`rnnkit.graph`); ``Sequential`` is a chain of single-input layers. Both are layers
themselves, so a model can be called inside another model (on symbolic tensors) or on arrays.
Subclassing ``Model`` with a custom ``call()`` is not supported.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import backend
from . import config_schema as cs
from . import layers as layers_mod
from . import saving
from . import summary as summary_mod
from .graph import Graph
from .layers.base import InputLayer, KerasTensor, Layer, Weight
from .layers.node import Node, is_symbolic, symbolic_call
from .training import Trainer

__all__ = ["Model", "Sequential", "load_model", "model_from_json", "clone_model"]

Structure = Union[None, str, List[str]]  # how the user declared inputs/outputs


def _flatten_io(value: Any, what: str) -> Tuple[List[KerasTensor], Structure]:
    """Tensors of ``inputs``/``outputs`` given as one tensor, a list/tuple or a dict."""
    if isinstance(value, dict):
        return list(value.values()), [str(k) for k in value]
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"Model: `{what}` is empty")
        return list(value), "list"
    return [value], None


def _unique(names: List[str]) -> List[str]:
    """Repeated names (two outputs of one layer) get ``_1``, ``_2``, ... so losses, metrics
    and dict keys stay apart."""
    seen: Dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            out.append(f"{n}_{seen[n]}")
        else:
            seen[n] = 0
            out.append(n)
    return out


def _keras_kind(filepath: Any) -> Optional[str]:
    """``"keras"`` for a ``.keras`` path, ``"h5"`` for ``.h5``/``.hdf5``, else None
    (rnnkit's own format)."""
    try:
        low = os.fsdecode(os.fspath(filepath)).lower()
    except TypeError:
        return None
    if low.endswith(".keras"):
        return "keras"
    if low.endswith((".h5", ".hdf5")):
        return "h5"
    return None


@saving.register_model_class
class Model(Trainer, Layer):
    """A functional model (Keras ``keras.Model(inputs, outputs)``).

    Example::

        enc_in = rnnkit.Input((None, 8))
        _, h, c = rnnkit.layers.LSTM(32, return_state=True)(enc_in)
        dec_in = rnnkit.Input((None, 8))
        dec = rnnkit.layers.LSTM(32, return_sequences=True)(dec_in, initial_state=[h, c])
        out = rnnkit.layers.Dense(8, activation="softmax")(dec)
        model = rnnkit.Model([enc_in, dec_in], out)
        model.compile("adam", "categorical_crossentropy")
    """

    CONFIG_REQUIRED: Tuple[str, ...] = ()
    #: The config is a graph (saving validates it with its graph schema).
    GRAPH_CONFIG = True

    def __init__(self, inputs: Any = None, outputs: Any = None, name: Optional[str] = None,
                 trainable: bool = True, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"Model: unrecognized keyword argument(s) {sorted(kwargs)}")
        if inputs is None or outputs is None:
            raise TypeError("Model needs `inputs` and `outputs` (the functional API); "
                            "subclassing Model with call() is not supported by rnnkit -- "
                            "use Sequential or the functional API")
        super().__init__(name=name or backend.unique_name("functional"), trainable=trainable)
        self._init_trainer()
        ins, self._input_structure = _flatten_io(inputs, "inputs")
        outs, self._output_structure = _flatten_io(outputs, "outputs")
        self._graph = Graph(ins, outs)
        self.inputs: List[KerasTensor] = ins
        self.outputs: List[KerasTensor] = outs
        self.input_names = (list(self._input_structure) if isinstance(self._input_structure, list)
                            else [t.layer.name for t in ins])
        self.output_names = (list(self._output_structure)
                             if isinstance(self._output_structure, list)
                             else _unique([t.node.layer.name for t in outs]))
        self.built = True
        self.input_shape = ins[0].shape if len(ins) == 1 else [t.shape for t in ins]
        self.output_shape = outs[0].shape if len(outs) == 1 else [t.shape for t in outs]

    # -- structure ----------------------------------------------------------------------
    @property
    def layers(self) -> List[Layer]:
        """Every layer, Input layers included, in Keras's order (by depth from the inputs)."""
        return list(self._graph.layers)

    def get_layer(self, name: Optional[str] = None, index: Optional[int] = None) -> Layer:
        """The layer called ``name``, or at position ``index`` of :attr:`layers`."""
        if (name is None) == (index is None):
            raise ValueError("get_layer: pass exactly one of `name` or `index`")
        if index is not None:
            if not isinstance(index, (int, np.integer)) or not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer: was asked for index {index} but the model has "
                                 f"{len(self.layers)} layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r}; layers: "
                         f"{[layer.name for layer in self.layers]}")

    @property
    def weights(self) -> List[Weight]:
        """All weights in Keras order (layer by layer, each weight once)."""
        return self._graph.weights

    @property
    def trainable_weights(self) -> List[Weight]:
        return self._graph.collect("trainable_weights") if self.trainable else []

    @property
    def non_trainable_weights(self) -> List[Weight]:
        if not self.trainable:
            return self.weights
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set all weights, Keras order; count and every shape are checked first."""
        mine = self.weights
        weights = list(weights)
        if len(weights) != len(mine):
            raise ValueError(f"set_weights: the model has {len(mine)} weight arrays, got "
                             f"{len(weights)}")
        for i, (w, v) in enumerate(zip(mine, weights)):
            if np.shape(v) != w.shape:
                raise ValueError(f"set_weights: weights[{i}] ({w.name}) has shape {w.shape}, "
                                 f"got {np.shape(v)}")
        for w, v in zip(mine, weights):
            w.assign(v)

    def reset_states(self) -> None:
        """Reset the states of every stateful layer."""
        for layer in self.layers:
            if getattr(layer, "stateful", False):
                layer.reset_state()
            elif isinstance(layer, Model):
                layer.reset_states()

    reset_state = reset_states

    # -- the Trainer hooks --------------------------------------------------------------
    def _input_specs(self) -> List[Tuple[Tuple[Optional[int], ...], Optional[str]]]:
        return [(t.shape, t.dtype) for t in self.inputs]

    def _forward_lists(self, xs: List[np.ndarray], training: bool, need_grad: bool
                       ) -> Tuple[List[np.ndarray], List[Optional[np.ndarray]]]:
        return self._graph.forward(xs, training, need_grad)

    def _backward_lists(self, douts: List[Optional[np.ndarray]]) -> List[Optional[np.ndarray]]:
        return self._graph.backward(douts, input_grads=False)

    def _structure_outputs(self, outs: List[np.ndarray]) -> Any:
        if isinstance(self._output_structure, list):
            return dict(zip(self._output_structure, outs))
        if self._output_structure is None:
            return outs[0]
        return list(outs)

    # -- as a layer -----------------------------------------------------------------------
    def _split_call(self, args: Sequence[Any], kwargs: Dict[str, Any]) -> Tuple[Any, Dict[str, Any]]:
        inputs, kwargs = super()._split_call(args, kwargs)
        if isinstance(inputs, dict):
            inputs = [inputs[k] for k in self.input_names]
        return inputs, kwargs

    def build(self, input_shape: Any = None) -> None:
        """A functional model is built when it is created."""
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        shapes = [input_shape] if not isinstance(input_shape, list) else input_shape
        if len(shapes) != len(self.inputs):
            raise ValueError(f"model {self.name!r} takes {len(self.inputs)} input(s), got "
                             f"{len(shapes)}")
        for s, t in zip(shapes, self.inputs):
            if len(s) != len(t.shape) or any(a is not None and b is not None and a != b
                                             for a, b in zip(s[1:], t.shape[1:])):
                raise ValueError(f"input {t.layer.name!r} expects shape {t.shape}, got {tuple(s)}")
        batch = shapes[0][0]
        outs = [(batch,) + tuple(t.shape[1:]) for t in self.outputs]
        return outs[0] if len(outs) == 1 else outs

    def compute_mask(self, x: Any, mask: Any) -> Any:
        masks = self._last_masks if hasattr(self, "_last_masks") else None
        if masks is None:
            return None
        return masks[0] if len(masks) == 1 else masks

    def _check_symbolic_input(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def forward(self, x: Any, mask: Any = None, training: bool = False,
                need_grad: bool = False) -> Any:
        xs = list(x) if isinstance(x, list) else [x]
        ms = (list(mask) if isinstance(mask, list) else [mask]) if mask is not None else None
        outs, masks = self._graph.forward(xs, training, need_grad, masks=ms)
        self._last_masks = masks
        return outs[0] if len(outs) == 1 else outs

    def backward(self, dy: Any) -> Any:
        grads = self._graph.backward(list(dy) if isinstance(dy, list) else [dy])
        return grads[0] if len(grads) == 1 else grads

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """On symbolic tensors: a node of an enclosing model. On arrays: the outputs
        (inference unless ``training=True``)."""
        inputs, kw = self._split_call(args, dict(kwargs))
        if is_symbolic(inputs):
            return Layer.__call__(self, *args, **kwargs)
        training = bool(kw.pop("training", False) or False)
        kw.pop("mask", None)
        if kw:
            raise TypeError(f"model {self.name!r}: unexpected argument(s) {sorted(kw)}")
        xs = self._check_x(inputs, "call")
        return self._structure_outputs(self._forward_lists(xs, training, False)[0])

    # -- summary ------------------------------------------------------------------------
    def _is_chain(self) -> bool:
        nodes = self._graph.nodes
        counts: Dict[int, int] = {}
        for n in nodes:
            counts[id(n.layer)] = counts.get(id(n.layer), 0) + 1
        return (len(self.inputs) == 1 and len(self.outputs) == 1
                and all(len(n.inputs) == 1 and n.single_output for n in nodes)
                and all(c == 1 for c in counts.values())
                and all(n.inputs[0].node is (nodes[i - 1] if i else self.inputs[0].node)
                        for i, n in enumerate(nodes)))

    def summary(self, line_length: Optional[int] = None,
                positions: Optional[Sequence[float]] = None, print_fn: Any = None,
                **kwargs: Any) -> None:
        """Print Keras 3's summary table (with "Connected to" unless the graph is a chain)."""
        connected = not self._is_chain()
        mine = set(map(id, self._graph._node_set))
        rows = []
        for layer in self.layers:
            nodes = [n for n in layer._inbound_nodes if id(n) in mine]
            shapes = [t.shape for n in nodes[:1] for t in n.outputs]
            shape: Any = shapes[0] if len(shapes) == 1 else shapes
            row = [f"{layer.name} ({type(layer).__name__})", summary_mod.shape_str(shape),
                   f"{layer.count_params():,}"]
            if connected:
                conns = []
                for n in nodes:
                    for t in n.inputs:
                        conns.append(f"{t.node.layer.name}[{self._graph.node_index(t.node)}]"
                                     f"[{t.index}]")
                row.append(", ".join(conns) or "-")
            rows.append(row)
        summary_mod.print_summary(self, rows, connected, line_length, positions, print_fn)

    # -- config -------------------------------------------------------------------------
    def get_config(self) -> Dict[str, Any]:
        """The graph as JSON-serialisable data: every layer's config and, per call, which
        tensors it was called on (``[layer name, node index, tensor index]``)."""
        g = self._graph

        def ref(t: KerasTensor) -> List[Any]:
            return [t.node.layer.name, g.node_index(t.node), t.index]

        layer_cfgs = []
        mine = set(map(id, g._node_set))
        for layer in self.layers:
            nodes = [n for n in layer._inbound_nodes
                     if id(n) in mine and not isinstance(layer, InputLayer)]
            layer_cfgs.append({
                **layers_mod.serialize(layer), "name": layer.name,
                "inbound_nodes": [{"args": [ref(t) for t in n.inputs],
                                   "single": n.single_input, "kwargs": dict(n.kwargs)}
                                  for n in nodes]})
        return {"name": self.name, "trainable": self.trainable, "layers": layer_cfgs,
                "input_layers": [ref(t) for t in self.inputs],
                "output_layers": [ref(t) for t in self.outputs],
                "input_structure": self._input_structure,
                "output_structure": self._output_structure}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Model":
        """Rebuild the graph (fresh weights) from :meth:`get_config`."""
        created: Dict[str, Layer] = {}
        pending: List[Tuple[Layer, List[Dict[str, Any]]]] = []
        for lc in config["layers"]:
            layer = layers_mod.deserialize({"class_name": lc["class_name"],
                                            "config": lc["config"]})
            if lc["name"] in created:
                raise ValueError(f"duplicate layer name {lc['name']!r}")
            created[lc["name"]] = layer
            pending.append((layer, list(lc.get("inbound_nodes", []))))
        produced: Dict[Tuple[str, int], List[KerasTensor]] = {}
        for name, layer in created.items():
            if isinstance(layer, InputLayer):
                produced[(name, 0)] = layer._inbound_nodes[0].outputs
        made: Dict[str, int] = {name: 0 for name in created}

        def tensor(r: Sequence[Any]) -> Optional[KerasTensor]:
            outs = produced.get((r[0], r[1]))
            if outs is None:
                return None
            if not 0 <= r[2] < len(outs):
                raise ValueError(f"tensor index {r[2]} out of range for {r[0]!r}")
            return outs[r[2]]

        while any(nodes for _, nodes in pending):
            progress = False
            for layer, nodes in pending:
                while nodes:
                    spec = nodes[0]
                    args = [tensor(r) for r in spec["args"]]
                    if any(a is None for a in args):
                        break
                    if spec.get("single", True) and len(args) != 1:
                        raise ValueError(f"a single-input call of {layer.name!r} lists "
                                         f"{len(args)} inputs")
                    out = symbolic_call(layer, args[0] if spec.get("single", True) else args,
                                        dict(spec.get("kwargs", {})))
                    produced[(layer.name, made[layer.name])] = out if isinstance(out, list) else [out]
                    made[layer.name] += 1
                    nodes.pop(0)
                    progress = True
            if not progress:
                raise ValueError("the graph refers to tensors no layer call produces "
                                 "(a cycle or a missing node)")
        ins = [tensor(r) for r in config["input_layers"]]
        outs = [tensor(r) for r in config["output_layers"]]
        if any(t is None for t in ins + outs):
            raise ValueError("`input_layers`/`output_layers` name a tensor the graph lacks")

        def restructure(ts: List[Any], structure: Any) -> Any:
            if isinstance(structure, list):
                return dict(zip(structure, ts))
            return ts[0] if structure is None and len(ts) == 1 else ts

        return cls(restructure(ins, config.get("input_structure")),
                   restructure(outs, config.get("output_structure")),
                   name=config.get("name"), trainable=config.get("trainable", True))

    def __reduce__(self) -> Any:
        """A model pickles as the bytes :meth:`save` writes (:func:`rnnkit.saving.dumps_model`:
        config, weights, compile settings, optimizer state); unpickling is
        :func:`rnnkit.saving.loads_model`, which checks them as loading a file does. What the
        format cannot hold (a ``Lambda`` layer, custom losses or metrics) raises
        ``pickle.PicklingError`` naming it."""
        return (saving.loads_model, (saving.dumps_model(self),))

    def to_json(self, **kwargs: Any) -> str:
        """``{"class_name": ..., "config": get_config()}`` as JSON (Keras ``to_json``)."""
        return json.dumps({"class_name": type(self).__name__, "config": self.get_config()},
                          **kwargs)

    def save(self, filepath: str, overwrite: bool = True) -> None:
        """Save architecture, weights, compile settings and optimizer state (one file, atomic).

        A path ending in ``.keras`` gets a Keras 3 archive (``keras.models.load_model``
        opens it; needs h5py, ``rnnkit[keras]``); any other suffix (``.npz``...) rnnkit's own
        format. The legacy Keras HDF5 model format (``.h5``) is not written."""
        kind = _keras_kind(filepath)
        if kind == "keras":
            from .keras_io import writer
            writer.save_keras_model(self, filepath, overwrite=overwrite)
        elif kind == "h5":
            raise ValueError(f"{filepath}: rnnkit does not write the legacy Keras HDF5 model "
                             "format; save to a '.keras' path (Keras 3 archive) or '.npz' "
                             "(rnnkit's format)")
        else:
            saving.save_model(self, filepath, overwrite=overwrite)

    def export(self, filepath: Any, format: str = "tf_saved_model", verbose: Optional[bool] = None,
               input_signature: Any = None, **kwargs: Any) -> None:
        """Export for inference (Keras 3's ``Model.export``). rnnkit writes ``format="onnx"``
        only (:mod:`rnnkit.interop.onnx_export`; needs ``rnnkit[onnx]``); ``opset_version=``
        picks the ONNX opset (default 17)."""
        if format != "onnx":
            raise ValueError(f"Model.export: rnnkit exports format='onnx' only, got "
                             f"format={format!r} (use model.save() for rnnkit's own format)")
        if input_signature is not None:
            raise ValueError("Model.export: `input_signature` is not supported; the exported "
                             "graph takes the model's own input shapes (unknown axes stay "
                             "symbolic)")
        opset = kwargs.pop("opset_version", None)
        if kwargs:
            raise TypeError(f"Model.export: unexpected argument(s) {sorted(kwargs)}")
        from .interop.onnx_export import export_onnx
        export_onnx(self, filepath, opset_version=opset, verbose=verbose)

    def save_weights(self, filepath: str, overwrite: bool = True) -> None:
        """Save only the weights, atomically: a ``.weights.h5`` (any ``.h5``) path gets Keras
        3's weights file (needs h5py, ``rnnkit[keras]``), any other rnnkit's ``.npz``."""
        kind = _keras_kind(filepath)
        if kind == "h5":
            from .keras_io import writer
            writer.save_keras_weights(self, filepath, overwrite=overwrite)
        elif kind == "keras":
            raise ValueError(f"{filepath}: weights-only files end in '.weights.h5' (Keras) "
                             "or '.npz' (rnnkit); use model.save() for a '.keras' archive")
        else:
            saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: str) -> None:
        """Load weights saved by :meth:`save_weights` (or :meth:`save`), or a Keras weights
        file (``.weights.h5``, legacy ``.h5``, ``.keras``; needs ``rnnkit[keras]``); every
        shape is checked."""
        from .keras_io import reader as keras_reader  # small; h5py only when needed
        if keras_reader.file_kind(os.fspath(filepath)) != "rnnkit":
            keras_reader.load_keras_weights(self, filepath)
            return
        saving.load_weights(self, filepath)


@saving.register_model_class
class Sequential(Model):
    """A linear stack of layers (Keras ``keras.Sequential``).

    Example::

        model = Sequential()
        model.add(SimpleRNN(20, input_shape=(10, 1), return_sequences=True))
        model.add(Dense(1))
        model.compile(loss="mse", optimizer="sgd")
        history = model.fit(x, y, epochs=20, batch_size=8, validation_split=0.1)
    """

    GRAPH_CONFIG = False

    def __init__(self, layers: Optional[Sequence[Layer]] = None, name: Optional[str] = None,
                 trainable: bool = True) -> None:
        Layer.__init__(self, name=name or backend.unique_name("sequential"), trainable=trainable)
        self._init_trainer()
        self._layers: List[Layer] = []
        self._input_shape: Optional[Tuple[Optional[int], ...]] = None
        self._input_dtype: Optional[str] = None
        self._input_name = "input_layer"
        for layer in layers or []:
            self.add(layer)

    # -- structure ----------------------------------------------------------------------
    @property
    def layers(self) -> List[Layer]:
        """The layers, in order (the input layer is not listed, as in Keras)."""
        return list(self._layers)

    @property
    def input_names(self) -> List[str]:  # type: ignore[override]
        return [self._input_name]

    @input_names.setter
    def input_names(self, value: Any) -> None:
        pass

    @property
    def output_names(self) -> List[str]:  # type: ignore[override]
        return [self._layers[-1].name] if self._layers else ["output"]

    @output_names.setter
    def output_names(self, value: Any) -> None:
        pass

    def add(self, layer: Any) -> None:
        """Append a layer (an ``Input(...)`` sets the input shape instead)."""
        if isinstance(layer, KerasTensor) and isinstance(layer.layer, InputLayer):
            layer = layer.layer
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError("Sequential.add: an Input must come before any layer")
            self._input_shape = tuple(layer.batch_shape)
            self._input_dtype = layer.input_dtype
            self._input_name = layer.name
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: `layer` must be a Layer, got {type(layer).__name__}")
        if getattr(layer, "return_state", False):
            raise ValueError(f"Sequential.add: layer {layer.name!r} has return_state=True; a "
                             "Sequential model needs single-output layers (use the functional "
                             "API: rnnkit.Model(inputs, outputs))")
        if getattr(layer, "merge_mode", "concat") is None:
            raise ValueError("Sequential.add: Bidirectional(merge_mode=None) has two outputs")
        if not self._layers and self._input_shape is None and layer.input_shape_arg is not None:
            self._input_shape = tuple(layer.input_shape_arg)
        self._layers.append(layer)
        if self._input_shape is not None:
            self._build_layers(self._input_shape)

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._layers:
            raise TypeError("There are no layers in the model.")
        return self._layers.pop()

    def _build_layers(self, input_shape: Tuple[Optional[int], ...]) -> Any:
        shape: Any = tuple(input_shape)
        for layer in self._layers:
            try:
                layer._ensure_built(shape)
                layer._check_symbolic_input(shape)
            except ValueError as exc:
                raise ValueError(f"Layer {layer.name!r} ({type(layer).__name__}) cannot take "
                                 f"input shape {summary_mod.shape_str(shape)}: {exc}") from None
            layer.input_shape = shape
            shape = layer.compute_output_shape(shape)
            layer.output_shape = shape
        self.built = bool(self._layers)
        return shape

    def build(self, input_shape: Optional[Sequence[Optional[int]]] = None) -> None:
        """Create all weights for ``input_shape`` (batch axis included, e.g. ``(None, 10, 1)``)."""
        if input_shape is not None:
            self._input_shape = tuple(input_shape)
        if self._input_shape is None:
            raise ValueError("Sequential.build: pass `input_shape` (e.g. (None, 10, 1)) or add "
                             "an Input/input_shape= first")
        self._build_layers(self._input_shape)

    @property
    def input_shape(self) -> Optional[Tuple[Optional[int], ...]]:  # type: ignore[override]
        """Declared input shape, batch axis first (None when unknown)."""
        return self._input_shape

    @input_shape.setter
    def input_shape(self, value: Any) -> None:
        pass  # set through add/build only

    @property
    def output_shape(self) -> Any:  # type: ignore[override]
        """Output shape of the last layer once built."""
        return self._layers[-1].output_shape if self.built else None

    @output_shape.setter
    def output_shape(self, value: Any) -> None:
        pass

    @property
    def inputs(self) -> List[KerasTensor]:  # type: ignore[override]
        """One symbolic input of the declared shape (Keras ``model.inputs``)."""
        if self._input_shape is None:
            raise AttributeError(f"Sequential {self.name!r} has no input shape yet")
        return [KerasTensor(self._input_shape, self._input_dtype or backend.floatx(),
                            name=self._input_name)]

    @inputs.setter
    def inputs(self, value: Any) -> None:
        pass

    @property
    def weights(self) -> List[Weight]:
        """All weights in Keras order (layer by layer)."""
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self) -> List[Weight]:
        return [w for layer in self._layers for w in layer.trainable_weights] if self.trainable else []

    @property
    def non_trainable_weights(self) -> List[Weight]:
        if not self.trainable:
            return self.weights
        return [w for layer in self._layers for w in layer.non_trainable_weights]

    # -- the Trainer hooks --------------------------------------------------------------
    def _input_specs(self) -> List[Tuple[Tuple[Optional[int], ...], Optional[str]]]:
        return [(self._input_shape, self._input_dtype)]  # type: ignore[list-item]

    def _check_x(self, x: Any, where: str) -> List[np.ndarray]:
        if self._input_shape is None and x is not None:
            xs = self._as_list(x, self.input_names, "x", where)
            self.build((None,) + xs[0].shape[1:])
        return super()._check_x(x, where)

    def _forward_lists(self, xs: List[np.ndarray], training: bool, need_grad: bool
                       ) -> Tuple[List[np.ndarray], List[Optional[np.ndarray]]]:
        y, mask = self._chain_forward(xs[0], None, training, need_grad)
        return [y], [mask]

    def _chain_forward(self, x: Any, mask: Optional[np.ndarray], training: bool,
                       need_grad: bool) -> Tuple[Any, Optional[np.ndarray]]:
        for layer in self._layers:
            x_in = x
            x = layer.forward(x_in, mask=mask, training=training, need_grad=need_grad)
            mask = layer.compute_mask(x_in, mask)
        self._last_masks = [mask]
        return x, mask

    def _backward_lists(self, douts: List[Optional[np.ndarray]]) -> List[Optional[np.ndarray]]:
        return [self.backward(douts[0])]

    def _structure_outputs(self, outs: List[np.ndarray]) -> Any:
        return outs[0]

    # -- as a layer -----------------------------------------------------------------------
    def _split_call(self, args: Sequence[Any], kwargs: Dict[str, Any]) -> Tuple[Any, Dict[str, Any]]:
        return Layer._split_call(self, args, kwargs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self._build_layers(tuple(input_shape))

    def _check_symbolic_input(self, input_shape: Any) -> None:
        if not isinstance(input_shape, tuple):
            raise ValueError("a Sequential model takes one input")
        if self._input_shape is not None:
            want = self._input_shape
            if len(input_shape) != len(want) or any(
                    a is not None and b is not None and a != b
                    for a, b in zip(input_shape[1:], want[1:])):
                raise ValueError(f"expected input shape {want}, got {input_shape}")

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> Any:
        return self._chain_forward(np.asarray(x) if not isinstance(x, list) else x, mask,
                                   training, need_grad)[0]

    def backward(self, dy: Any) -> Optional[np.ndarray]:
        for layer in reversed(self._layers):
            dy = layer.backward(dy)
            if dy is None:  # e.g. Embedding: integer input, nothing further to propagate
                return None
        return dy

    def summary(self, line_length: Optional[int] = None,
                positions: Optional[Sequence[float]] = None, print_fn: Any = None,
                **kwargs: Any) -> None:
        """Print the Keras 3 summary table (layer, output shape, parameter count, totals)."""
        rows = []
        for layer in self._layers:
            shape = layer.output_shape if layer.built else None
            params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
            rows.append([f"{layer.name} ({type(layer).__name__})",
                         summary_mod.shape_str(shape), params])
        summary_mod.print_summary(self, rows, False, line_length, positions, print_fn)

    def get_layer(self, name: Optional[str] = None, index: Optional[int] = None) -> Layer:
        """The layer called ``name``, or at position ``index`` of :attr:`layers`."""
        return Model.get_layer(self, name=name, index=index)

    # -- config -------------------------------------------------------------------------
    def get_config(self) -> Dict[str, Any]:
        """``{"name", "layers": [...], "build_input_shape"}`` (JSON-serialisable)."""
        cfg = {"name": self.name, "trainable": self.trainable,
               "build_input_shape": None if self._input_shape is None else list(self._input_shape),
               "layers": [layers_mod.serialize(layer) for layer in self._layers]}
        if self._input_dtype is not None:
            cfg["input_dtype"] = self._input_dtype
        return cfg

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Sequential":
        """Rebuild an (untrained) model from :meth:`get_config`."""
        if not isinstance(config, dict) or "layers" not in config:
            raise ValueError("Sequential.from_config: config must be a dict with 'layers'")
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        if config.get("build_input_shape") is not None:
            model._input_shape = tuple(config["build_input_shape"])
        model._input_dtype = config.get("input_dtype")
        for lc in config["layers"]:
            model.add(layers_mod.deserialize(lc))
        return model


# Keras 3 calls a functional model's class "Functional" in configs.
saving._MODEL_CLASSES["Functional"] = Model
Model.CONFIG_FIELDS = {**cs.BASE_FIELDS, "layers": cs.v_layer_refs}
Sequential.CONFIG_FIELDS = {**cs.BASE_FIELDS, "layers": cs.v_layer_refs,
                            "build_input_shape": cs.v_shape, "input_dtype": cs.v_opt_str}
layers_mod.registry.register(Sequential)
layers_mod.registry.register(Model)
layers_mod.registry.REGISTRY["Functional"] = Model


def load_model(filepath: str, compile: bool = True) -> Model:
    """Load a model saved by ``model.save``, or a Keras ``.keras`` / legacy ``.h5`` model
    (recognised by content; needs ``rnnkit[keras]``). Never executes code from the file."""
    from .keras_io import reader as keras_reader
    if keras_reader.file_kind(os.fspath(filepath)) != "rnnkit":
        return keras_reader.load_keras_model(filepath, compile=compile)
    return saving.load_model(filepath, compile=compile)


def model_from_json(json_string: str) -> Model:
    """Rebuild a model (fresh weights) from :meth:`Model.to_json`; the config is checked
    against the same schema as a saved file's, so untrusted JSON runs no code."""
    return saving.model_from_json(json_string)


def clone_model(model: Model) -> Model:
    """A new model with the same architecture and freshly initialised weights (Keras)."""
    if not isinstance(model, Model):
        raise TypeError(f"clone_model: expected a Model or Sequential, got {type(model).__name__}")
    return type(model).from_config(model.get_config())
