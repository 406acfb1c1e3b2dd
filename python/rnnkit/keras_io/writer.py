"""Write Keras 3 files: ``.keras`` archives and ``.weights.h5`` weights files.

A ``.keras`` file is a zip (entries stored, as Keras writes them) of

* ``metadata.json``: ``{"keras_version", "date_saved"}``;
* ``config.json``: the model as Keras 3 serialises it (:mod:`rnnkit.keras_io.to_keras`);
* ``model.weights.h5``: the weights, laid out as Keras's ``saving_lib`` does.

Keras's weights layout follows the attributes it walks, not layer names: the model's own
(empty) ``vars`` group at the root, then ``layers/<snake_case(class)>[_<k>]`` for each layer
in ``model.layers`` order (``_1``, ``_2``... for repeated classes), each with a ``vars``
group of datasets ``"0"``, ``"1"``... (the layer's weights in Keras order; attribute
``name``: the layer name). Layers holding other layers nest: an LSTM's weights live in
``layers/lstm/cell/vars``, a Bidirectional's in ``.../forward_layer/cell/vars`` and
``.../backward_layer/cell/vars``, a TimeDistributed's in ``.../layer/vars``, a stacked
RNN's in ``.../cell/cells/<cell class>/vars``, MultiHeadAttention's in
``.../query_dense/vars`` etc. The optimizer (when built) is ``optimizer/vars``: iterations,
the learning rate (not with a schedule), then the slots in Keras's order.

h5py is needed (the ``rnnkit[keras]`` extra). Writes are atomic as rnnkit's own saves: a
temporary file in the target directory, flushed, fsync'ed and ``os.replace``-d.
"""
from __future__ import annotations

import datetime
import io
import json
import os
import zipfile
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from .. import saving
from .to_keras import KerasExportError, custom_losses, model_to_keras_config, snake_case

__all__ = ["save_keras_model", "save_keras_weights", "weight_groups", "optimizer_arrays",
           "keras_layer_order", "KERAS_VERSION"]

#: The Keras version the files are written for (``metadata.json``).
KERAS_VERSION = "3.15.1"

# One weights group: (path of its "vars" group, value of its "name" attribute, arrays).
Group = Tuple[str, str, List[np.ndarray]]

_RNN_CELLS = {"SimpleRNN": "simple_rnn_cell", "LSTM": "lstm_cell", "GRU": "gru_cell"}
# MultiHeadAttention: rnnkit weight-name prefix -> Keras sub-layer attribute.
_MHA_PARTS = (("query/", "query_dense", "query"), ("key/", "key_dense", "key"),
              ("value/", "value_dense", "value"),
              ("attention_output/", "output_dense", "attention_output"))


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError("saving Keras files (.keras, .weights.h5) needs h5py: install the "
                          "extra with `pip install rnnkit[keras]`") from None
    return h5py


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def _arrays(weights: Sequence[Any]) -> List[np.ndarray]:
    return [np.asarray(w.value) for w in weights]


def _layer_groups(layer: Any, path: str, out: List[Group]) -> None:
    """Append the weights groups of ``layer`` saved at ``path`` (see the module doc)."""
    from ..models import Model

    cls = type(layer).__name__
    if isinstance(layer, Model):
        _model_groups(layer, path, out)
    elif cls in _RNN_CELLS:
        out.append((_join(path, "vars"), layer.name, []))
        out.append((_join(path, "cell/vars"), _RNN_CELLS[cls], _arrays(layer.weights)))
    elif cls == "RNN":
        out.append((_join(path, "vars"), layer.name, []))
        cells = layer._cells
        if type(layer.cell).__name__ == "StackedRNNCells":
            out.append((_join(path, "cell/vars"), layer.cell.name, []))
            used: Dict[str, int] = {}
            for c, sub in zip(cells, layer.layers):
                key = _unique(snake_case(type(c).__name__), used)
                out.append((_join(path, f"cell/cells/{key}/vars"), c.name, _arrays(sub.weights)))
        else:
            out.append((_join(path, "cell/vars"), cells[0].name, _arrays(layer.layers[0].weights)))
    elif cls == "Bidirectional":
        out.append((_join(path, "vars"), layer.name, []))
        _layer_groups(layer.forward_layer, _join(path, "forward_layer"), out)
        _layer_groups(layer.backward_layer, _join(path, "backward_layer"), out)
    elif cls == "TimeDistributed":
        out.append((_join(path, "vars"), layer.name, []))
        _layer_groups(layer.layer, _join(path, "layer"), out)
    elif cls == "MultiHeadAttention":
        out.append((_join(path, "vars"), layer.name, []))
        for prefix, attr, name in _MHA_PARTS:
            ws = [w for w in layer.weights if w.name.startswith(prefix)]
            out.append((_join(path, f"{attr}/vars"), name, _arrays(ws)))
        # Keras also walks the (weightless) dropout and softmax sub-layers.
        out.append((_join(path, "_dropout_layer/vars"), "dropout", []))
        out.append((_join(path, "_softmax/vars"), "softmax", []))
    else:
        out.append((_join(path, "vars"), layer.name, _arrays(layer.weights)))


def _unique(name: str, used: Dict[str, int]) -> str:
    """Keras's ``_get_unique_name``: ``dense``, ``dense_1``, ``dense_2``..."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def keras_layer_order(model: Any) -> List[Any]:
    """``model.layers`` in the order Keras 3 gives them once it has loaded the file.

    Keras flattens dict inputs/outputs sorted by key before walking the graph, so a model
    built with ``{"b": ..., "a": ...}`` lists its layers as if built from ``[a, b]``; the
    order decides the ``_1`` suffixes of the weights groups and the optimizer's slots."""
    from ..graph import Graph

    if type(model).__name__ == "Sequential":
        return list(model.layers)
    ins, outs = list(model.inputs), list(model.outputs)
    if isinstance(model._input_structure, list):
        ins = [t for _, t in sorted(zip(model._input_structure, ins), key=lambda kv: kv[0])]
    if isinstance(model._output_structure, list):
        outs = [t for _, t in sorted(zip(model._output_structure, outs), key=lambda kv: kv[0])]
    if ins == list(model.inputs) and outs == list(model.outputs):
        return list(model.layers)
    return list(Graph(ins, outs).layers)


def _keras_trainable_order(model: Any) -> List[Any]:
    """The model's trainable weights in Keras's ``model.trainable_variables`` order (what
    Keras builds the optimizer on after loading)."""
    from ..models import Model

    if not model.trainable:
        return []
    out: List[Any] = []
    for layer in keras_layer_order(model):
        if isinstance(layer, Model):
            out.extend(_keras_trainable_order(layer))
        else:
            out.extend(layer.trainable_weights)
    seen, unique = set(), []
    for w in out:
        if id(w) not in seen:
            seen.add(id(w))
            unique.append(w)
    return unique


def _model_groups(model: Any, path: str, out: List[Group]) -> None:
    out.append((_join(path, "vars"), model.name, []))
    used: Dict[str, int] = {}
    for layer in keras_layer_order(model):
        key = _unique(snake_case(type(layer).__name__), used)
        _layer_groups(layer, _join(path, f"layers/{key}"), out)


def weight_groups(model: Any) -> List[Group]:
    """Every weights group of ``model``'s layers: ``(h5 path of the vars group, name
    attribute, arrays)``, in the order Keras writes them."""
    if not model.built:
        raise KerasExportError(f"model {model.name!r} is not built; give it an input shape "
                               "before saving")
    out: List[Group] = []
    _model_groups(model, "", out)
    return out


# Keras interleaves some optimizers' slots per variable (Adam: m1, v1, m2, v2...) and keeps
# the others in one run per slot (RMSprop: v1, v2, ..., momentum1, momentum2, ...).
_INTERLEAVED = {"Adam": ("momentum", "velocity"), "AdamW": ("momentum", "velocity"),
                "Nadam": ("momentum", "velocity"), "Adamax": ("momentum", "norm"),
                "Adadelta": ("accumulated_grad", "accumulated_delta_var"),
                "Ftrl": ("accumulator", "linear")}


def optimizer_arrays(opt: Any, perm: Sequence[int] = ()) -> List[np.ndarray]:
    """The optimizer's state in Keras's ``optimizer.variables`` order: iterations (int64),
    the learning rate (float32; not with a schedule), then the slots. ``perm[k]`` is the
    index in rnnkit's variable order of Keras's k-th variable (identity when empty)."""
    from ..optimizers.schedules import LearningRateSchedule

    # Scalars are 0-d, as Keras's variables (rnnkit may hold them as 1-element arrays).
    out: List[np.ndarray] = [np.asarray(opt._iterations, dtype=np.int64).reshape(())]
    if not isinstance(opt._learning_rate, LearningRateSchedule) and not callable(
            opt._learning_rate):
        out.append(np.asarray(opt._learning_rate, dtype=np.float32).reshape(()))
    if not opt.built:  # Keras writes just these two before the first training step
        return out
    state = opt._state
    slots = list(opt._state_slots())
    inter = [s for s in _INTERLEAVED.get(type(opt).__name__, ()) if s in slots]
    n = len(state[slots[0]]) if slots else 0
    order = list(perm) if perm else list(range(n))
    for s in slots:
        if s in inter:
            if s == inter[0]:
                for i in order:
                    out.extend(np.asarray(state[t][i]) for t in inter)
            continue
        out.extend(np.asarray(state[s][i]) for i in order)
    for s in getattr(opt, "_scalar_slots", ()):
        out.extend(np.asarray(a).reshape(()) for a in state[s])
    return out


def _write_h5(f: Any, model: Any, with_optimizer: bool) -> None:
    """Fill the open h5py file ``f`` with ``model``'s weights (and optimizer state)."""
    for path, name, arrays in weight_groups(model):
        g = f.require_group(path)
        g.attrs["name"] = name
        for i, a in enumerate(arrays):
            g.create_dataset(str(i), data=np.array(a, order="C"))  # 0-d stays 0-d
    opt = getattr(model, "optimizer", None)
    if (with_optimizer and getattr(model, "compiled", False) and opt is not None
            and not custom_losses(model)):  # no compile_config -> no optimizer to restore
        g = f.require_group("optimizer/vars")
        g.attrs["name"] = snake_case(type(opt).__name__)
        index = {id(w): i for i, w in enumerate(model.trainable_weights)}
        perm = [index[id(w)] for w in _keras_trainable_order(model)]
        if sorted(perm) != list(range(len(index))):
            raise KerasExportError("cannot map the optimizer state onto Keras's variable order")
        for i, a in enumerate(optimizer_arrays(opt, perm)):
            g.create_dataset(str(i), data=np.array(a, order="C"))  # 0-d stays 0-d


def _h5_bytes(model: Any, with_optimizer: bool) -> bytes:
    h5py = _h5py()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        _write_h5(f, model, with_optimizer)
    return buf.getvalue()


def save_keras_model(model: Any, path: str, overwrite: bool = True) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` archive that ``keras.models.load_model``
    opens: architecture, weights, compile settings and optimizer state."""
    _h5py()  # fail early, before anything is written
    config = json.dumps(model_to_keras_config(model))
    metadata = json.dumps({"keras_version": KERAS_VERSION,
                           "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")})
    weights = _h5_bytes(model, with_optimizer=True)

    def write(f: Any) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("metadata.json", metadata)
            zf.writestr("config.json", config)
            zf.writestr("model.weights.h5", weights)

    saving.atomic_write_file(path, write, overwrite)


def save_keras_weights(model: Any, path: str, overwrite: bool = True) -> None:
    """Write ``model``'s weights (and, when compiled and trained, the optimizer state, as
    Keras's ``save_weights`` does) as a Keras 3 ``.weights.h5`` file."""
    data = _h5_bytes(model, with_optimizer=True)
    saving.atomic_write_file(path, lambda f: f.write(data), overwrite)
