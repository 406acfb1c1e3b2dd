"""Translate an rnnkit model into the ``config.json`` Keras 3 writes into a ``.keras`` file.

rnnkit layer configs already use Keras's argument names; what differs is the envelope
Keras 3's ``serialize_keras_object`` puts around every object, which this module adds:

* every layer becomes ``{"module": "keras.layers", "class_name", "config",
  "registered_name": null, "build_config": {"input_shape": ...}}`` (nested layers of
  ``Bidirectional`` / ``TimeDistributed`` / ``RNN`` cells included);
* a layer's ``dtype`` becomes a ``DTypePolicy`` object; initializers, regularizers and
  constraints become ``keras.initializers`` / ``keras.regularizers`` / ``keras.constraints``
  objects;
* a functional model's calls become ``inbound_nodes`` whose tensors are
  ``{"class_name": "__keras_tensor__", "config": {"shape", "dtype", "keras_history"}}``;
  an RNN's extra inputs (rnnkit keeps ``initial_state`` as inputs 2..n) go back to the
  ``initial_state`` keyword, MultiHeadAttention's to ``query, value, key=...``;
* ``Sequential`` lists an ``InputLayer`` first; the compile settings become
  ``compile_config``.

Everything here works on an in-memory model; nothing is read from a file.
"""
from __future__ import annotations

import re
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["model_to_keras_config", "layer_to_keras_config", "compile_to_keras_config",
           "custom_losses", "snake_case", "KerasExportError"]

Shape = Any  # a tuple (one input) or a list of tuples (several inputs)

_RNN_CLASSES = ("SimpleRNN", "LSTM", "GRU", "RNN", "Bidirectional")
_MERGE_LIKE = ("Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
               "Dot", "Attention", "AdditiveAttention")
# Keys of rnnkit configs that Keras 3 layers do not take.
_DROP_KEYS = ("batch_input_shape",)


class KerasExportError(ValueError):
    """The model uses something a Keras 3 file cannot express (e.g. a ``Lambda``)."""


def snake_case(name: str) -> str:
    """Keras's ``to_snake_case`` (``"Conv1D"`` -> ``"conv1d"``, ``"RMSprop"`` ->
    ``"rm_sprop"``): the names Keras gives the groups of a weights file."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def _dtype_policy(name: Optional[str]) -> Dict[str, Any]:
    return {"module": "keras", "class_name": "DTypePolicy",
            "config": {"name": name or "float32"}, "registered_name": None}


def _keras_object(module: str, value: Any) -> Any:
    """``{"class_name", "config"}`` -> Keras's envelope; strings / None pass through."""
    if isinstance(value, dict) and "class_name" in value:
        return {"module": module, "class_name": value["class_name"],
                "config": dict(value.get("config") or {}), "registered_name": None}
    return value


def _shape_json(shape: Shape) -> Any:
    """A shape tuple (or list of them) as JSON lists, ``None`` for unknown axes."""
    if isinstance(shape, list):
        return [_shape_json(s) for s in shape]
    return None if shape is None else [None if d is None else int(d) for d in shape]


def _inner_build_shapes(class_name: str, outer: Shape) -> Dict[str, Any]:
    """Build shapes of the layers nested in a wrapper/RNN called with input ``outer``."""
    x = outer[0] if isinstance(outer, list) else outer
    if x is None:
        return {}
    if class_name == "Bidirectional":
        return {"layer": x, "backward_layer": x}
    if class_name == "TimeDistributed":
        return {"layer": (x[0],) + tuple(x[2:])}
    if class_name == "RNN":
        return {"cell": (x[0], x[-1])}
    return {}


def _translate_config(class_name: str, cfg: Dict[str, Any], build_shape: Shape) -> Dict[str, Any]:
    """One layer's rnnkit config -> its Keras 3 config (nested layers translated too)."""
    if class_name == "Lambda":
        raise KerasExportError("a Lambda layer holds Python code, which a .keras file written "
                               "by rnnkit cannot carry; replace it by built-in layers")
    out: Dict[str, Any] = {}
    inner_shapes = (_inner_build_shapes(class_name, build_shape)
                    if not isinstance(build_shape, dict) else {})
    for key, value in cfg.items():
        if key in _DROP_KEYS:
            continue
        if key == "dtype" and class_name != "InputLayer":
            value = _dtype_policy(value)
        elif key.endswith("_initializer"):
            value = _keras_object("keras.initializers", value)
        elif key.endswith("_regularizer"):
            value = _keras_object("keras.regularizers", value)
        elif key.endswith("_constraint"):
            value = _keras_object("keras.constraints", value)
        elif key in ("layer", "backward_layer", "cell") and isinstance(value, dict):
            value = _nested(value, inner_shapes.get(key))
        elif key == "cells" and class_name == "StackedRNNCells":
            value = _stacked_cells(value, build_shape)
        out[key] = value
    if class_name == "SpatialDropout1D":
        # Keras's SpatialDropout1D takes no `trainable` and a plain dtype name.
        out.pop("trainable", None)
        out["dtype"] = cfg.get("dtype") or "float32"
    if class_name == "InputLayer":
        out["dtype"] = out.get("dtype") or "float32"
        out.update({"sparse": False, "ragged": False, "optional": False})
    return out


def _stacked_cells(cells: Sequence[Dict[str, Any]], build_shape: Shape) -> List[Dict[str, Any]]:
    """The cells of a StackedRNNCells; cell i is built on the outputs of cell i-1."""
    out, shape = [], build_shape
    for c in cells:
        out.append(_nested(c, shape))
        units = c.get("config", {}).get("units")
        if shape is not None and units is not None:
            shape = (shape[0], units)
    return out


def _nested(ser: Dict[str, Any], build_shape: Shape) -> Dict[str, Any]:
    return layer_to_keras_config(ser["class_name"], ser.get("config", {}), build_shape)


def layer_to_keras_config(class_name: str, config: Dict[str, Any],
                          build_shape: Shape = None) -> Dict[str, Any]:
    """Keras 3's serialization of one layer from its rnnkit ``class_name`` and ``config``;
    ``build_shape`` (batch axis included) becomes ``build_config``."""
    out = {"module": "keras.layers", "class_name": class_name,
           "config": _translate_config(class_name, config, build_shape),
           "registered_name": None}
    if isinstance(build_shape, dict):  # already a build_config (MultiHeadAttention)
        out["build_config"] = build_shape
    elif build_shape is not None and class_name != "InputLayer":
        out["build_config"] = {"input_shape": _shape_json(build_shape)}
    return out


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------
def _tensor(t: Any, graph: Any) -> Dict[str, Any]:
    """A symbolic tensor as Keras's ``__keras_tensor__`` reference."""
    return {"class_name": "__keras_tensor__",
            "config": {"shape": _shape_json(tuple(t.shape)), "dtype": t.dtype or "float32",
                       "keras_history": [t.node.layer.name, graph.node_index(t.node), t.index]}}


def _node_call(layer: Any, node: Any, graph: Any) -> Dict[str, Any]:
    """One call of ``layer`` as Keras's ``{"args": [...], "kwargs": {...}}``."""
    ts = [_tensor(t, graph) for t in node.inputs]
    kwargs = {k: v for k, v in dict(node.kwargs).items() if k not in ("mask", "training")}
    cls = type(layer).__name__
    if node.single_input:
        args: List[Any] = [ts[0]]
    elif cls in _RNN_CLASSES:
        args = [ts[0]]  # rnnkit keeps initial_state as extra inputs; Keras as a keyword
        if len(ts) > 1:
            kwargs["initial_state"] = ts[1:]
    elif cls == "MultiHeadAttention":
        args = ts[:2]  # mha(query, value, key=..., attention_mask=...)
        if len(ts) > 2:
            kwargs["key"] = ts[2]
        if len(ts) > 3:
            kwargs["attention_mask"] = ts[3]
    else:
        args = [ts]  # merging / attention layers take one list
    return {"args": args, "kwargs": kwargs}


def _build_shape_of(layer: Any, node: Any) -> Shape:
    """The input shape Keras records in ``build_config`` for a layer first called by
    ``node``: the data input of an RNN (states excluded); for MultiHeadAttention Keras's
    ``{"shapes_dict": {"query_shape", "value_shape"(, "key_shape")}}``."""
    cls = type(layer).__name__
    shapes = [tuple(t.shape) for t in node.inputs]
    if cls == "MultiHeadAttention":
        return {"shapes_dict": {f"{k}_shape": _shape_json(s)
                                for k, s in zip(("query", "value", "key"), shapes)}}
    if node.single_input or cls in _RNN_CLASSES:
        return shapes[0]
    return shapes


def _model_envelope(model: Any, config: Dict[str, Any], build_shape: Shape) -> Dict[str, Any]:
    functional = type(model).__name__ != "Sequential"
    return {"module": "keras.src.models.functional" if functional else "keras",
            "class_name": "Functional" if functional else "Sequential",
            "config": config,
            "registered_name": "Functional" if functional else None,
            "build_config": {"input_shape": _shape_json(build_shape)}}


def _sequential_config(model: Any) -> Dict[str, Any]:
    if model._input_shape is None or not model.built:
        raise KerasExportError(f"Sequential {model.name!r} has no input shape yet; build it "
                               "(or give its first layer input_shape=) before saving")
    shape: Tuple[Any, ...] = tuple(model._input_shape)
    layers = [{"module": "keras.layers", "class_name": "InputLayer",
               "config": {"batch_shape": _shape_json(shape),
                          "dtype": model._input_dtype or "float32", "sparse": False,
                          "ragged": False, "name": model._input_name, "optional": False},
               "registered_name": None}]
    for layer in model.layers:
        layers.append(_layer_in_model(layer, shape))
        shape = layer.compute_output_shape(shape)
    cfg = {"name": model.name, "trainable": model.trainable,
           "dtype": _dtype_policy("float32"), "layers": layers,
           "build_input_shape": _shape_json(tuple(model._input_shape))}
    return _model_envelope(model, cfg, tuple(model._input_shape))


def _layer_in_model(layer: Any, build_shape: Shape) -> Dict[str, Any]:
    from ..models import Model  # models imports saving, which imports this lazily

    if isinstance(layer, Model):
        return model_to_keras_config(layer, with_compile=False)
    return layer_to_keras_config(type(layer).__name__, layer.get_config(), build_shape)


def _functional_config(model: Any) -> Dict[str, Any]:
    from ..layers.base import InputLayer

    g = model._graph
    mine = set(map(id, g._node_set))
    layers = []
    for layer in model.layers:
        if isinstance(layer, InputLayer):
            entry = layer_to_keras_config("InputLayer", layer.get_config())
            entry.update({"name": layer.name, "inbound_nodes": []})
            layers.append(entry)
            continue
        nodes = [n for n in layer._inbound_nodes if id(n) in mine]
        entry = _layer_in_model(layer, _build_shape_of(layer, nodes[0]) if nodes else None)
        entry["name"] = layer.name
        entry["inbound_nodes"] = [_node_call(layer, n, g) for n in nodes]
        layers.append(entry)

    def refs(ts: Sequence[Any], structure: Any) -> Any:
        rs = [[t.node.layer.name, g.node_index(t.node), t.index] for t in ts]
        if isinstance(structure, list):
            return dict(zip(structure, rs))
        return rs[0] if structure is None and len(rs) == 1 else rs

    cfg = {"name": model.name, "trainable": model.trainable, "layers": layers,
           "input_layers": refs(model.inputs, model._input_structure),
           "output_layers": refs(model.outputs, model._output_structure)}
    env = _model_envelope(model, cfg, None)
    return env


def model_to_keras_config(model: Any, with_compile: bool = True) -> Dict[str, Any]:
    """The whole ``config.json`` object Keras 3 writes for ``model`` (a ``Sequential`` or
    functional ``Model``), ``compile_config`` included when ``with_compile``."""
    if type(model).__name__ == "Sequential":
        out = _sequential_config(model)
    else:
        out = _functional_config(model)
    if with_compile:
        out["compile_config"] = compile_to_keras_config(model)
    return out


# --------------------------------------------------------------------------------------------
# compile()
# --------------------------------------------------------------------------------------------
def _optimizer_config(opt: Any) -> Dict[str, Any]:
    from .. import optimizers

    ser = optimizers.serialize(opt)
    cfg = dict(ser["config"])
    lr = cfg.get("learning_rate")
    if isinstance(lr, dict) and "class_name" in lr:  # a LearningRateSchedule
        cfg["learning_rate"] = _keras_object("keras.optimizers.schedules", lr)
    return {"module": "keras.optimizers", "class_name": ser["class_name"], "config": cfg,
            "registered_name": None}


def _loss_config(loss: Any) -> Any:
    from .. import losses

    return None if loss is None else _keras_object("keras.losses", losses.serialize(loss))


def custom_losses(model: Any) -> List[str]:
    """Names of the custom (Python) losses ``model`` is compiled with: a file that carries
    no code cannot name them, so such a model is written without compile settings."""
    from .. import losses

    return [lo.name for lo in getattr(model, "_losses", []) if lo is not None
            and not losses.is_serializable(lo)]


def _metrics_config(ids: Any) -> Any:
    """Metrics as saved by rnnkit (names, or ``{"class_name", "config"}``) in Keras form."""
    if isinstance(ids, list):
        return [_metrics_config(m) for m in ids]
    return _keras_object("keras.metrics", ids)


def compile_to_keras_config(model: Any) -> Dict[str, Any]:
    """``compile_config`` of a ``.keras`` file: ``{}`` for an uncompiled model, else the
    optimizer, loss(es), loss weights and metrics as Keras 3 serialises them. With custom
    Python losses the compile settings are left out, and custom metrics are, with a
    warning, as rnnkit's own format does."""

    from ..saving import _saved_metrics

    if not getattr(model, "compiled", False):
        return {}
    custom = custom_losses(model)
    if custom:
        warnings.warn(f"saving .keras: the model is compiled with custom loss(es) {custom}, "
                      "which a file cannot carry; it is written without compile settings "
                      "(compile again after loading)", UserWarning, stacklevel=4)
        return {}
    per_loss = [_loss_config(lo) for lo in model._losses]
    single = len(per_loss) == 1
    dropped: List[str] = []
    metrics = _saved_metrics(model._metric_ids, single, dropped)
    weighted = (_saved_metrics(model._weighted_metric_ids, single, dropped)
                if any(model._weighted_metric_ids) else None)
    if dropped:
        warnings.warn(f"saving .keras: the custom metric(s) {dropped} are not written to the "
                      "compile config; compile again after loading", UserWarning, stacklevel=4)
    loss_weights = (list(model._loss_weights) if any(w != 1.0 for w in model._loss_weights)
                    else None)
    loss: Any = per_loss[0] if single else per_loss
    metrics = _metrics_config(metrics) if metrics else None
    weighted = _metrics_config(weighted) if weighted else None
    names = getattr(model, "_output_structure", None)
    if isinstance(names, list) and not single:
        # Dict outputs: Keras flattens them sorted by key, so per-output settings must be
        # keyed by name (a list would be paired with the outputs in sorted order).
        keyed = lambda v: None if v is None else dict(zip(names, v))  # noqa: E731
        loss, loss_weights = keyed(loss), keyed(loss_weights)
        metrics, weighted = keyed(metrics), keyed(weighted)
    return {"optimizer": _optimizer_config(model.optimizer),
            "loss": loss, "loss_weights": loss_weights,
            "metrics": metrics, "weighted_metrics": weighted,
            "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}
