"""Saving and loading models without pickle (SPEC §6).

A saved model is ONE ``.npz`` (zip) file holding:

* ``__rnnkit_config__``: UTF-8 JSON as a ``uint8`` array -- format version, the model config,
  the compile config (loss, optimizer, metrics) and the weight names/shapes/dtypes;
* ``weight_00000``, ... : the weights in Keras order;
* ``optimizer_00000``, ... : the optimizer state (when it has been built).

It is read with ``np.load(allow_pickle=False)``, so loading never executes code. Writes go to a
temporary file in the destination directory, are flushed and fsync'ed, then ``os.replace``-d
over the target: an interrupted save leaves the previous file intact. Truncated, corrupted or
mismatched files raise ``ValueError`` naming the file and the problem.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from typing import Any, Dict, List, Tuple

import numpy as np

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_CONFIG_KEY = "__rnnkit_config__"


def _atomic_write(path: str, arrays: Dict[str, np.ndarray], overwrite: bool) -> None:
    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".rnnkit-", suffix=".tmp", dir=directory)
    try:
        # mkstemp creates the file 0600; give the saved model the permissions of an ordinary
        # new file (0666 less the umask), as np.savez(path) would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # a file object: no ".npz" appended to the name
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_array(obj: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)


def _read(path: str) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path}")
    try:
        with open(path, "rb") as f:
            data = f.read()
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path} is not a readable rnnkit file (truncated or corrupted): "
                         f"{exc}") from exc
    if _CONFIG_KEY not in arrays:
        raise ValueError(f"{path} is not an rnnkit file: no {_CONFIG_KEY} entry")
    try:
        meta = json.loads(arrays.pop(_CONFIG_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: corrupted configuration ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported format version "
                         f"{meta.get('format_version') if isinstance(meta, dict) else meta!r}")
    return meta, arrays


def _weights_meta(model: Any) -> List[Dict[str, Any]]:
    return [{"name": w.name, "shape": list(w.shape), "dtype": w.dtype.name} for w in model.weights]


def _weight_arrays(model: Any) -> Dict[str, np.ndarray]:
    return {f"weight_{i:05d}": w.value for i, w in enumerate(model.weights)}


def _assign_weights(model: Any, meta: Dict[str, Any], arrays: Dict[str, np.ndarray],
                    path: str) -> None:
    saved = meta.get("weights", [])
    mine = model.weights
    if len(saved) != len(mine):
        raise ValueError(f"{path}: holds {len(saved)} weight arrays, the model has {len(mine)}")
    values = []
    for i, (s, w) in enumerate(zip(saved, mine)):
        key = f"weight_{i:05d}"
        if key not in arrays:
            raise ValueError(f"{path}: weight {i} ({s.get('name')}) is missing")
        a = arrays[key]
        if tuple(a.shape) != tuple(s["shape"]) or tuple(a.shape) != w.shape:
            raise ValueError(f"{path}: weight {i} ({w.name}) has shape {a.shape}, the model "
                             f"expects {w.shape}")
        values.append(a)
    model.set_weights(values)


def save_weights(model: Any, path: str, overwrite: bool = True) -> None:
    """Write the model's weights (and their names/shapes) atomically to ``path``."""
    meta = {"format_version": FORMAT_VERSION, "kind": "weights", "weights": _weights_meta(model)}
    _atomic_write(path, {_CONFIG_KEY: _json_array(meta), **_weight_arrays(model)}, overwrite)


def load_weights(model: Any, path: str) -> None:
    """Load weights from a weights file or a full model file; every shape must match."""
    meta, arrays = _read(path)
    if not model.built:
        raise ValueError("load_weights: build the model (give it an input shape) first")
    _assign_weights(model, meta, arrays, path)


def save_model(model: Any, path: str, overwrite: bool = True) -> None:
    """Write config + weights + compile settings + optimizer state atomically to ``path``."""
    from . import losses, optimizers
    compile_cfg = None
    arrays: Dict[str, np.ndarray] = {}
    if model.compiled:
        metric_ids = [m if isinstance(m, str) else None for m in model._metric_ids]
        compile_cfg = {"loss": losses.serialize(model.loss),
                       "optimizer": optimizers.serialize(model.optimizer),
                       "metrics": [m for m in metric_ids if m is not None],
                       "optimizer_state": bool(model.optimizer.built)}
        if model.optimizer.built:
            for i, a in enumerate(model.optimizer.variables):
                arrays[f"optimizer_{i:05d}"] = np.asarray(a)
    meta = {"format_version": FORMAT_VERSION, "kind": "model", "model": model.get_config(),
            "class_name": type(model).__name__, "compile": compile_cfg,
            "weights": _weights_meta(model)}
    _atomic_write(path, {_CONFIG_KEY: _json_array(meta), **_weight_arrays(model), **arrays},
                  overwrite)


def load_model(path: str, compile: bool = True) -> Any:
    """Rebuild a model saved by :func:`save_model`, with weights (and optimizer state)."""
    from .models import Sequential
    meta, arrays = _read(path)
    if meta.get("kind") != "model" or meta.get("class_name") != "Sequential":
        raise ValueError(f"{path}: not a saved model (kind={meta.get('kind')!r}); use "
                         "load_weights for weights files")
    try:
        model = Sequential.from_config(meta["model"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: corrupted model config ({exc})") from exc
    if not model.built:
        raise ValueError(f"{path}: the saved model has no input shape; cannot rebuild weights")
    _assign_weights(model, meta, arrays, path)
    cc = meta.get("compile")
    if compile and cc:
        model.compile(optimizer=cc["optimizer"], loss=cc["loss"], metrics=cc["metrics"])
        if cc.get("optimizer_state"):
            keys = sorted(k for k in arrays if k.startswith("optimizer_"))
            tw = [w.value for w in model.trainable_weights]
            model.optimizer.set_state([arrays[k] for k in keys], tw)
    return model
