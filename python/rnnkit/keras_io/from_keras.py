"""Translate Keras model / layer / compile configs into rnnkit configs (no code runs).

A Keras config is untrusted data. Class names are looked up in rnnkit's registries only
(never imported from the ``module`` field), ``Lambda`` layers are refused (their code is never
run, like Keras's ``safe_mode``), and every field is either mapped onto rnnkit's field of the
same name, dropped when it is Keras bookkeeping with no effect on the numbers (``None`` /
``False`` values, ``ragged``, ``optional``...), or refused with a ValueError naming the layer,
its class and the field. The result is then checked by :func:`rnnkit.saving._validate_layer`
(see :func:`translate_model`) before any layer is built.

Both Keras 3 configs (``.keras`` ``config.json``; legacy ``.h5`` written by Keras 3) and
Keras 2 configs (legacy ``.h5`` written by tf.keras 2.x) are understood:

* Keras 3 functional ``inbound_nodes``: ``[{"args": [tensor | [tensor, ...]], "kwargs":
  {...}}]`` with ``tensor = {"class_name": "__keras_tensor__", "config": {"keras_history":
  [layer, node, index]}}``; ``initial_state`` tensors in ``kwargs`` become extra inputs, as
  rnnkit records them;
* Keras 2 ``inbound_nodes``: ``[[[layer, node, index, kwargs], ...]]``;
* Keras 2's ``"hard_sigmoid"`` means ``clip(0.2 x + 0.5, 0, 1)``: with ``keras2=True`` it
  becomes rnnkit's ``"hard_sigmoid_keras2"``.
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional, Tuple

from .. import initializers, losses, optimizers
from ..config_schema import SCALAR_FIELDS, v_layer_ref, v_layer_refs
from ..layers import registry as _registry

__all__ = ["translate_model", "translate_layer", "translate_compile", "KerasConfigError"]


class KerasConfigError(ValueError):
    """A Keras config rnnkit cannot (or must not) translate; the loader adds the file name."""


# Keras fields that never change what a loaded model computes (dropped whatever their value).
_IGNORED_FIELDS = {"ragged", "optional", "sparse", "shared_object_id", "build_config",
                   "quantization_config", "lora_rank", "lora_alpha", "autocast"}
# Keras activations whose meaning changed between Keras 2 and 3.
_KERAS2_ACTIVATIONS = {"hard_sigmoid": "hard_sigmoid_keras2"}
_NESTED = (v_layer_ref, v_layer_refs)


def _known_layer_classes() -> Dict[str, type]:
    return {n: c for n, c in _registry.REGISTRY.items() if "CONFIG_FIELDS" in vars(c)}


def _check_object_origin(obj: Dict[str, Any], what: str) -> None:
    """Refuse custom (registered / user-module) objects: only Keras's own built-ins map."""
    module = obj.get("module")
    if module is not None and (not isinstance(module, str) or not (
            module == "keras" or module.startswith(("keras.", "tf_keras.", "tensorflow.")))):
        raise KerasConfigError(f"{what} comes from module {module!r}, not Keras: custom "
                               "objects are never imported")
    reg = obj.get("registered_name")
    if reg is not None and reg != obj.get("class_name"):
        raise KerasConfigError(f"{what} is a custom registered object {reg!r}; rnnkit only "
                               "loads Keras's built-in classes")


def _dtype(value: Any, what: str) -> Optional[str]:
    """Keras 3 DTypePolicy dict / plain name -> "float32" / "float64" (None stays None)."""
    if isinstance(value, dict):
        cfg = value.get("config")
        value = cfg.get("name") if isinstance(cfg, dict) else None
    if value is None or value in ("float32", "float64"):
        return value
    raise KerasConfigError(f"{what}: dtype policy {value!r} is not supported (rnnkit computes "
                           "in float32 or float64)")


def _initializer(value: Any) -> Any:
    """Keras initializer -> rnnkit's, or ``None`` (field dropped: the file's weights replace
    whatever it would have drawn)."""
    if isinstance(value, str):
        return value if value in initializers._BY_NAME else None
    if not isinstance(value, dict):
        return None
    cls = value.get("class_name")
    if cls not in initializers._CLASSES:
        return None
    cfg = value.get("config") or {}
    if not isinstance(cfg, dict):
        return None
    return {"class_name": cls, "config": {k: v for k, v in cfg.items()
                                          if k in SCALAR_FIELDS and k != "dtype"}}


def _typed_object(value: Any, what: str) -> Any:
    """Regularizer / constraint: ``{"class_name", "config"}`` (the schema checks them)."""
    if isinstance(value, dict):
        _check_object_origin(value, what)
        return {"class_name": value.get("class_name"), "config": value.get("config") or {}}
    return value


def _activation(value: Any, keras2: bool, what: str) -> Any:
    if isinstance(value, dict):  # Keras 3 serialises a built-in activation by name
        _check_object_origin(value, what)
        value = value.get("config") if value.get("class_name") == "function" else value
    if keras2 and isinstance(value, str):
        return _KERAS2_ACTIVATIONS.get(value, value)
    return value


def translate_layer(lc: Any, keras2: bool, where: str = "layer") -> Dict[str, Any]:
    """One Keras layer config ``{"class_name", "config", ...}`` -> rnnkit's
    ``{"class_name", "config"}`` (nested layers translated too)."""
    if not isinstance(lc, dict):
        raise KerasConfigError(f"{where}: expected a layer config object")
    cls = lc.get("class_name")
    cfg = lc.get("config")
    if not isinstance(cls, str) or not isinstance(cfg, dict):
        raise KerasConfigError(f"{where}: expected {{'class_name', 'config'}}")
    name = cfg.get("name", lc.get("name"))
    label = f"layer {name!r} ({cls})"
    if cls == "Lambda":
        raise KerasConfigError(f"{label}: Lambda layers hold Python code, which rnnkit never "
                               "runs from a file; rebuild that part of the model in code")
    _check_object_origin(lc, label)
    known = _known_layer_classes()
    if cls not in known:
        raise KerasConfigError(f"{label}: rnnkit has no layer class {cls!r}")
    fields = known[cls].CONFIG_FIELDS
    if cls == "InputLayer" and "batch_input_shape" in cfg:  # Keras 2's name for it
        cfg = {("batch_shape" if k == "batch_input_shape" else k): v for k, v in cfg.items()}
    out: Dict[str, Any] = {}
    for key, value in cfg.items():
        if key in _IGNORED_FIELDS:
            continue
        if key == "dtype":
            if cls == "InputLayer" or cls == "Embedding" and isinstance(value, str):
                value = value if value in ("float32", "float64") else None
            else:
                value = _dtype(value, label)
            if value is not None:
                out["dtype"] = value
            continue
        check = fields.get(key)
        if check is None:
            if value is None or value is False or (key == "decay" and value == 0):
                continue  # an option left at its "off" value: nothing to translate
            raise KerasConfigError(f"{label}: option {key}={value!r} is not supported by "
                                   "rnnkit")
        if check in _NESTED:
            if key == "cells" or key == "layers":
                value = [translate_layer(v, keras2, f"{label}.{key}[{i}]")
                         for i, v in enumerate(value if isinstance(value, list) else [])]
            elif value is not None:
                value = translate_layer(value, keras2, f"{label}.{key}")
        elif key.endswith("_initializer"):
            value = _initializer(value)
            if value is None:
                continue
        elif key.endswith(("_regularizer", "_constraint")):
            value = _typed_object(value, f"{label}.{key}")
        elif key.endswith("activation"):
            value = _activation(value, keras2, f"{label}.{key}")
        out[key] = value
    return {"class_name": cls, "config": out}


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------
def _is_tensor(v: Any) -> bool:
    return isinstance(v, dict) and v.get("class_name") == "__keras_tensor__"


def _tensor_ref(v: Dict[str, Any], where: str) -> List[Any]:
    hist = (v.get("config") or {}).get("keras_history")
    if not isinstance(hist, list) or len(hist) != 3:
        raise KerasConfigError(f"{where}: a tensor without a valid keras_history")
    return list(hist)


def _node_keras3(node: Dict[str, Any], where: str) -> Dict[str, Any]:
    args = node.get("args", [])
    kwargs = node.get("kwargs", {}) or {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise KerasConfigError(f"{where}: malformed inbound node")
    refs: List[List[Any]] = []
    single = True
    for k, a in enumerate(args):
        if _is_tensor(a):
            refs.append(_tensor_ref(a, where))
            single = single and k == 0
        elif isinstance(a, (list, tuple)) and a and all(_is_tensor(t) for t in a):
            refs.extend(_tensor_ref(t, where) for t in a)
            single = False
        else:
            raise KerasConfigError(f"{where}: positional argument {k} is not a tensor")
    out_kwargs: Dict[str, Any] = {}
    for key, value in kwargs.items():
        if key == "initial_state" and value is not None:
            states = value if isinstance(value, list) else [value]
            if not all(_is_tensor(s) for s in states):
                raise KerasConfigError(f"{where}: initial_state must be tensors")
            refs.extend(_tensor_ref(s, where) for s in states)
            single = False
        elif key in ("training", "mask") and (value is None or isinstance(value, bool)):
            continue  # masks propagate by themselves; inference mode is the default
        elif value is None or isinstance(value, (bool, int, float, str)):
            out_kwargs[key] = value
        else:
            raise KerasConfigError(f"{where}: call argument {key!r} (a tensor or structure) "
                                   "is not supported")
    if not refs:
        raise KerasConfigError(f"{where}: a call without input tensors")
    return {"args": refs, "single": single and len(refs) == 1, "kwargs": out_kwargs}


def _node_keras2(node: Any, where: str) -> Dict[str, Any]:
    if not isinstance(node, list) or not node:
        raise KerasConfigError(f"{where}: malformed inbound node")
    refs, kwargs = [], {}
    for e in node:
        if not isinstance(e, list) or len(e) not in (3, 4):
            raise KerasConfigError(f"{where}: malformed inbound tensor reference")
        refs.append(list(e[:3]))
        if len(e) == 4 and isinstance(e[3], dict):
            for key, value in e[3].items():
                if key in ("training", "mask") and (value is None or isinstance(value, bool)):
                    continue
                if value is None or isinstance(value, (bool, int, float, str)):
                    kwargs[key] = value
                else:
                    raise KerasConfigError(f"{where}: call argument {key!r} is not supported")
    return {"args": refs, "single": len(refs) == 1, "kwargs": kwargs}


def _io_refs(v: Any, where: str) -> Tuple[List[List[Any]], Any]:
    """Keras ``input_layers`` / ``output_layers`` (one ref, a list of refs, or a dict of them)
    -> (refs, rnnkit structure)."""
    if isinstance(v, list) and len(v) == 3 and isinstance(v[0], str):
        return [list(v)], None
    if isinstance(v, dict):
        return [list(r) for r in v.values()], list(v)
    if isinstance(v, list) and v and all(isinstance(r, list) and len(r) == 3 for r in v):
        return [list(r) for r in v], ("list" if len(v) > 1 else None)
    raise KerasConfigError(f"{where}: expected tensor references")


def _translate_functional(cfg: Dict[str, Any], keras2: bool) -> Dict[str, Any]:
    layers = cfg.get("layers")
    if not isinstance(layers, list):
        raise KerasConfigError("model config: 'layers' must be a list")
    out_layers = []
    for i, lc in enumerate(layers):
        if not isinstance(lc, dict):
            raise KerasConfigError(f"model config: layers[{i}] is not an object")
        t = translate_layer(lc, keras2, f"layers[{i}]")
        name = lc.get("name", t["config"].get("name"))
        label = f"layer {name!r} ({t['class_name']})"
        nodes = lc.get("inbound_nodes", []) or []
        if not isinstance(nodes, list):
            raise KerasConfigError(f"{label}: inbound_nodes must be a list")
        conv = [(_node_keras3(n, label) if isinstance(n, dict) else _node_keras2(n, label))
                for n in nodes]
        out_layers.append({**t, "name": name, "inbound_nodes": conv})
    ins, in_struct = _io_refs(cfg.get("input_layers"), "input_layers")
    outs, out_struct = _io_refs(cfg.get("output_layers"), "output_layers")
    return {"name": cfg.get("name"), "trainable": cfg.get("trainable", True) is not False,
            "layers": out_layers, "input_layers": ins, "output_layers": outs,
            "input_structure": in_struct if in_struct != "list" else "list",
            "output_structure": out_struct}


def _translate_sequential(cfg: Dict[str, Any], keras2: bool,
                          build_shape: Any) -> Dict[str, Any]:
    layers = cfg.get("layers")
    if not isinstance(layers, list):
        raise KerasConfigError("model config: 'layers' must be a list")
    out: Dict[str, Any] = {"name": cfg.get("name"),
                           "trainable": cfg.get("trainable", True) is not False, "layers": []}
    shape = cfg.get("build_input_shape", build_shape)
    for i, lc in enumerate(layers):
        t = translate_layer(lc, keras2, f"layers[{i}]")
        if t["class_name"] == "InputLayer":
            c = t["config"]
            shape = c.get("batch_shape", c.get("batch_input_shape", shape))
            if c.get("dtype") == "float64":
                out["input_dtype"] = "float64"
            continue
        out["layers"].append(t)
    if isinstance(shape, list):
        out["build_input_shape"] = shape
    return out


def translate_model(model_cfg: Any, keras2: bool) -> Tuple[str, Dict[str, Any]]:
    """A Keras model config ``{"class_name": "Sequential" | "Functional" | "Model",
    "config"}`` -> (rnnkit model class name, rnnkit config)."""
    if not isinstance(model_cfg, dict):
        raise KerasConfigError("the model config is not an object")
    cls = model_cfg.get("class_name")
    cfg = model_cfg.get("config")
    if not isinstance(cfg, dict):
        raise KerasConfigError("the model config has no 'config' object")
    _check_object_origin({**model_cfg, "registered_name": None}, f"model class {cls!r}")
    if cls == "Sequential":
        build = (model_cfg.get("build_config") or {}).get("input_shape") \
            if isinstance(model_cfg.get("build_config"), dict) else None
        return "Sequential", _translate_sequential(cfg, keras2, build)
    if cls in ("Functional", "Model"):
        return "Model", _translate_functional(cfg, keras2)
    raise KerasConfigError(f"model class {cls!r} is not supported (Sequential and functional "
                           "models are)")


# --------------------------------------------------------------------------------------------
# Compile settings
# --------------------------------------------------------------------------------------------
def _plain_object(v: Any, what: str) -> Any:
    """A Keras loss / metric / optimizer / schedule object -> ``{"class_name", "config"}``
    with the fields rnnkit knows (unknown ones at their off value dropped)."""
    if not isinstance(v, dict):
        return v
    _check_object_origin(v, what)
    cfg = v.get("config") or {}
    if not isinstance(cfg, dict):
        raise KerasConfigError(f"{what}: config must be an object")
    out = {}
    for k, x in cfg.items():
        if k == "learning_rate":
            out[k] = _plain_object(x, f"{what}.learning_rate")
        elif k in SCALAR_FIELDS:
            out[k] = x
        elif k == "fn" or x is None or x is False or (k in ("decay",) and x == 0):
            continue
        elif k in ("is_legacy_optimizer", "jit_compile"):
            continue
        else:
            raise KerasConfigError(f"{what}: option {k}={x!r} is not supported by rnnkit")
    return {"class_name": v.get("class_name"), "config": out}


def _metrics(v: Any, what: str) -> Any:
    if v is None:
        return []
    if isinstance(v, dict):  # one list per output name: keep the order
        return [_metrics(x, what) for x in v.values()]
    if isinstance(v, list):
        return [_metrics(x, what) if isinstance(x, list) else _plain_object(x, what)
                for x in v]
    return [_plain_object(v, what)]


def translate_compile(cc: Any) -> Optional[Dict[str, Any]]:
    """Keras 3 ``compile_config`` / legacy ``training_config`` -> rnnkit's compile config
    (``{"loss", "optimizer", "metrics", "optimizer_state"(, ...)}``), or None (with a
    warning) when the settings use something rnnkit lacks."""
    if not isinstance(cc, dict) or cc.get("optimizer", cc.get("optimizer_config")) is None:
        return None  # saved without compile settings
    try:
        opt = cc.get("optimizer", cc.get("optimizer_config"))
        if isinstance(opt, str):
            opt_t: Any = opt
        else:
            opt_t = _plain_object(opt, "optimizer")
            if not isinstance(opt_t, dict) or opt_t["class_name"] not in optimizers._CLASSES:
                raise KerasConfigError(f"optimizer {opt_t!r} has no rnnkit equivalent")
        loss = cc.get("loss")
        if isinstance(loss, dict) and "class_name" not in loss:
            loss = list(loss.values())  # one loss per output name
        loss_t = ([None if x is None else _plain_object(x, "loss") for x in loss]
                  if isinstance(loss, list) else _plain_object(loss, "loss"))
        for x in loss_t if isinstance(loss_t, list) else [loss_t]:
            name = x["class_name"] if isinstance(x, dict) else x
            if x is not None and name not in losses._CLASSES and name not in losses._BY_NAME:
                raise KerasConfigError(f"loss {name!r} has no rnnkit equivalent")
        out: Dict[str, Any] = {"loss": loss_t, "optimizer": opt_t,
                               "metrics": _metrics(cc.get("metrics"), "metrics"),
                               "optimizer_state": False}
        wm = cc.get("weighted_metrics")
        if wm:
            out["weighted_metrics"] = _metrics(wm, "weighted_metrics")
        lw = cc.get("loss_weights")
        if isinstance(lw, dict):
            lw = list(lw.values())
        if isinstance(lw, list) and lw:
            out["loss_weights"] = lw
        return out
    except KerasConfigError as exc:
        warnings.warn(f"the compile settings were not restored ({exc}); compile the model "
                      "yourself", UserWarning, stacklevel=3)
        return None
