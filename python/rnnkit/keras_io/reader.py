"""Read Keras files -- ``.keras`` archives, legacy ``.h5`` models, ``.weights.h5`` -- into
rnnkit models, treating every file as hostile.

* The kind of file comes from its content: a zip (``PK``) holding ``config.json`` is a
  Keras 3 archive (rnnkit's own zip files hold ``__rnnkit_config__.npy`` instead), an HDF5
  file (``\\x89HDF``) is a legacy Keras model or a weights file.
* The zip directory is checked with :class:`rnnkit.saving._Archive` (stored/deflated members
  only, sizes consistent, no zip bomb); ``config.json`` is read only if it is at most
  :data:`rnnkit.saving.MAX_CONFIG_BYTES`, and parsed with the same depth limit as rnnkit's
  files. The HDF5 attributes holding JSON are size-checked before they are read.
* The Keras config is translated (:mod:`.from_keras`: class names from rnnkit's registries
  only, ``Lambda`` refused), validated by rnnkit's schema (``saving._validate_layer``), and
  the model is built with placeholder weights (no initializer runs).
* Every HDF5 dataset is looked up through hard links only (no external links, no external
  or virtual storage, which would read other files), and its shape and dtype are compared
  with what the model needs *before* any data is read; the total is bounded by
  :data:`rnnkit.saving.MAX_WEIGHT_BYTES`.

Weight layouts:

* Keras 3 (``model.weights.h5`` in a ``.keras`` file, ``.weights.h5``): ``layers/<path>/vars/
  0..n`` where ``<path>`` is the snake-case class name of the model's k-th layer of that class
  (``lstm``, ``lstm_1``...); nested layers below it (``cell``, ``forward_layer``,
  ``backward_layer``, ``layer``); the optimizer's variables under ``optimizer/vars``.
* Legacy (``.h5``): ``model_weights`` (or the root of a Keras 2 weights file) lists
  ``layer_names``; each layer group lists ``weight_names`` (paths of its datasets, in order);
  optimizer variables under ``optimizer_weights`` with their ``weight_names``.

h5py is an optional dependency: ``pip install rnnkit[keras]``.
"""
from __future__ import annotations

import os
import re
import tempfile
import warnings
import zipfile
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .. import losses, optimizers, saving
from ..config_schema import SchemaError
from ..layers.base import InputLayer, deferred_weights
from . import from_keras
from .from_keras import KerasConfigError

__all__ = ["file_kind", "load_keras_model", "load_keras_weights", "require_h5py"]

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_WEIGHTS_MEMBER = "model.weights.h5"


def require_h5py() -> Any:
    """Import h5py, or raise ImportError naming the extra that installs it."""
    try:
        import h5py  # noqa: WPS433 (optional dependency, imported lazily)
    except ImportError:
        raise ImportError("reading Keras .keras/.h5 files needs h5py: "
                          "pip install 'rnnkit[keras]' (or pip install h5py)") from None
    return h5py


def file_kind(path: str) -> str:
    """``"rnnkit"``, ``"keras_zip"`` or ``"hdf5"``, from the file's first bytes and (for a
    zip) its member names; raises like :func:`rnnkit.saving.load_model` for a non-file."""
    with saving._open_regular(path) as f:
        head = f.read(8)
    if head == _HDF5_MAGIC:
        return "hdf5"
    if head[:4] in _ZIP_MAGIC:
        try:
            with saving._open_regular(path) as f, zipfile.ZipFile(f) as z:
                names = set(z.namelist())
        except Exception:  # a broken zip: let rnnkit's reader give its detailed error
            return "rnnkit"
        if "config.json" in names and saving._CONFIG_KEY + ".npy" not in names:
            return "keras_zip"
    return "rnnkit"


def _corrupt(path: str, detail: Any) -> ValueError:
    return ValueError(f"{path} is not a readable Keras file (truncated or corrupted): {detail}")


def _bad(path: str, detail: str) -> ValueError:
    return ValueError(f"{path}: {detail}")


# --------------------------------------------------------------------------------------------
# Bounded reading of the archive and of HDF5 objects
# --------------------------------------------------------------------------------------------
def _read_member(ar: "saving._Archive", name: str, limit: int) -> bytes:
    info = ar.zip.getinfo(name)
    if info.file_size > limit:
        raise _bad(ar.path, f"{name} is {info.file_size} bytes, over the limit of {limit} "
                            "(rnnkit.saving.MAX_CONFIG_BYTES)")
    try:
        with ar.zip.open(info) as f:
            data = saving._Limited(f, info.file_size).read()
            if f.read(1):
                raise ValueError("more data than declared")
    except saving._PARSE_ERRORS as exc:
        raise _corrupt(ar.path, f"member {name!r}: {type(exc).__name__}: {exc}") \
            from None
    return data


def _parse_json(raw: Any, path: str, what: str) -> Any:
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "replace")
    if len(raw) > saving.MAX_CONFIG_BYTES:
        raise _bad(path, f"{what} is {len(raw)} bytes, over the limit of "
                         f"{saving.MAX_CONFIG_BYTES}")
    wrapped = b'{"format_version": %d, "obj": ' % saving.FORMAT_VERSION + raw + b"}"
    try:
        return saving._parse_json(wrapped, path)["obj"]
    except ValueError as exc:
        raise _bad(path, f"{what} is not valid JSON ({exc})") from None


def _attr(path: str, obj: Any, name: str) -> Any:
    """An HDF5 attribute, its stored size checked first (None when absent)."""
    if name not in obj.attrs:
        return None
    try:
        aid = obj.attrs.get_id(name)
        n_items = int(np.prod(aid.shape or (), dtype=np.int64))
        try:
            size = aid.get_storage_size()
        except Exception:  # variable-length strings: bounded by their count instead
            size = 0
    except Exception as exc:
        raise _corrupt(path, f"attribute {name!r}: {exc}") from None
    if n_items > 4 * saving.MAX_LAYERS:
        raise _bad(path, f"attribute {name!r} holds {n_items} items, over the limit of "
                         f"{4 * saving.MAX_LAYERS}")
    if size > saving.MAX_CONFIG_BYTES:
        raise _bad(path, f"attribute {name!r} is {size} bytes, over the limit of "
                         f"{saving.MAX_CONFIG_BYTES}")
    try:
        value = obj.attrs[name]
    except Exception as exc:
        raise _corrupt(path, f"attribute {name!r}: {type(exc).__name__}: {exc}") \
            from None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                 for v in value.reshape(-1)]
    return value


def _child(path: str, group: Any, name: str, h5py: Any) -> Any:
    """``group[name]`` through hard links only (soft/external links refused)."""
    parts = [p for p in str(name).split("/") if p]
    obj = group
    for p in parts:
        if not isinstance(obj, h5py.Group):
            return None
        try:
            link = obj.get(p, getlink=True)
        except Exception as exc:
            raise _corrupt(path, f"object {name!r}: {exc}") from None
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            raise _bad(path, f"{name!r} is a {type(link).__name__}; links to other "
                             "objects or files are refused")
        try:
            obj = obj[p]
        except Exception as exc:
            raise _corrupt(path, f"object {name!r}: {exc}") from None
    return obj


def _check_dataset(path: str, ds: Any, what: str, shape: Tuple[int, ...], h5py: Any,
                   integer: bool = False) -> int:
    """Compare a dataset's declared shape/dtype with ``shape`` (nothing read); its bytes."""
    if not isinstance(ds, h5py.Dataset):
        raise _bad(path, f"{what} is missing")
    try:
        dshape, dtype = tuple(ds.shape or ()), ds.dtype
        external = ds.external or ds.is_virtual
    except Exception as exc:
        raise _corrupt(path, f"{what}: {exc}") from None
    if external:
        raise _bad(path, f"{what} keeps its data in other files (external/virtual "
                         "storage); refused")
    if integer:
        if dtype.kind not in "iu" or dshape != ():
            raise _bad(path, f"{what} has dtype {dtype} and shape {dshape}, expected an "
                             "integer scalar")
    elif dtype.kind != "f" or dtype.itemsize not in (2, 4, 8) or dtype.names is not None:
        raise _bad(path, f"{what} has dtype {dtype}; weights must be float16, float32 or "
                         "float64")
    if dshape != tuple(shape):
        raise _bad(path, f"{what} has shape {dshape}, the model expects {tuple(shape)}")
    return int(np.prod(dshape, dtype=np.int64)) * dtype.itemsize


def _read_all(path: str, items: Sequence[Any], nbytes: int) -> List[np.ndarray]:
    if nbytes > saving.MAX_WEIGHT_BYTES:
        raise _bad(path, f"declares {nbytes} bytes of arrays, over the limit of "
                         f"{saving.MAX_WEIGHT_BYTES} (rnnkit.saving.MAX_WEIGHT_BYTES)")
    out = []
    for ds in items:
        try:
            out.append(np.asarray(ds[()]))
        except Exception as exc:
            raise _corrupt(path, f"dataset {ds.name!r}: {type(exc).__name__}: {exc}") \
                from None
    return out


# --------------------------------------------------------------------------------------------
# Weight layouts
# --------------------------------------------------------------------------------------------
def _snake(name: str) -> str:
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def keras3_paths(class_names: Sequence[str]) -> List[str]:
    """Keras 3's group names for a model's layers (``dense``, ``dense_1``, ...)."""
    used: Dict[str, int] = {}
    out = []
    for cls in class_names:
        base = _snake(cls)
        if base in used:
            used[base] += 1
            out.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            out.append(base)
    return out


# Order of nested layers inside a Keras 3 layer group (Keras order of their weights).
_CHILD_ORDER = ["cell", "cells", "forward_layer", "backward_layer", "layer",
                "query_dense", "key_dense", "value_dense", "output_dense"]


def _keras3_vars(path: str, group: Any, h5py: Any, depth: int = 0) -> List[Any]:
    """The datasets of one Keras 3 layer group, in Keras's weight order."""
    if depth > 8 or not isinstance(group, h5py.Group):
        return []
    out: List[Any] = []
    vs = _child(path, group, "vars", h5py)
    if isinstance(vs, h5py.Group):
        keys = list(vs.keys())
        if len(keys) > 4096 or not all(k.isdigit() for k in keys):
            raise _bad(path, f"{vs.name}: unexpected entries {keys[:5]}")
        out.extend(_child(path, vs, k, h5py) for k in sorted(keys, key=int))
    children = [k for k in group.keys() if k != "vars"]
    children.sort(key=lambda k: (_CHILD_ORDER.index(k) if k in _CHILD_ORDER
                                 else len(_CHILD_ORDER), _natural(k)))
    for k in children:
        out.extend(_keras3_vars(path, _child(path, group, k, h5py), h5py, depth + 1))
    return out


def _natural(k: str) -> Tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", k))


def _weighted_layers(model: Any) -> List[Any]:
    return [layer for layer in model.layers if not isinstance(layer, InputLayer)]


def _keras3_weight_map(path: str, root: Any, model: Any, class_names: Sequence[str],
                       h5py: Any) -> List[Tuple[Any, Any]]:
    """(rnnkit weight, dataset) pairs for a Keras 3 weights file."""
    layers_group = _child(path, root, "layers", h5py)
    if not isinstance(layers_group, h5py.Group):
        raise _bad(path, "no 'layers' group: not a Keras 3 weights file")
    layers = _weighted_layers(model)
    pairs: List[Tuple[Any, Any]] = []
    for layer, gname in zip(layers, keras3_paths(class_names)):
        mine = layer.weights
        datasets = _keras3_vars(path, _child(path, layers_group, gname, h5py), h5py)
        if len(datasets) != len(mine):
            raise _bad(path, f"layer {layer.name!r} ({type(layer).__name__}) needs "
                             f"{len(mine)} weight arrays, the file has {len(datasets)} under "
                             f"layers/{gname} (missing or mismatched weights)")
        pairs.extend(zip(mine, datasets))
    return pairs


def _legacy_layer_datasets(path: str, group: Any, h5py: Any) -> Tuple[List[str],
                                                                      Dict[str, List[Any]]]:
    names = _attr(path, group, "layer_names")
    if not isinstance(names, list):
        raise _bad(path, "no layer_names attribute: not a Keras weights file")
    out: Dict[str, List[Any]] = {}
    for name in names:
        lg = _child(path, group, name, h5py)
        if not isinstance(lg, h5py.Group):
            raise _bad(path, f"weights of layer {name!r} are missing")
        wnames = _attr(path, lg, "weight_names") or []
        if isinstance(wnames, str):  # h5py gives a str for an over-long attribute sometimes
            raise _bad(path, f"layer {name!r}: unreadable weight_names")
        out[name] = [_child(path, lg, w, h5py) for w in wnames]
    return names, out


def _legacy_weight_map(path: str, group: Any, model: Any, by_name: bool,
                       h5py: Any) -> List[Tuple[Any, Any]]:
    names, sets = _legacy_layer_datasets(path, group, h5py)
    layers = [layer for layer in _weighted_layers(model) if layer.weights]
    pairs: List[Tuple[Any, Any]] = []
    if by_name:
        for layer in layers:
            ds = sets.get(layer.name)
            if ds is None or len(ds) != len(layer.weights):
                raise _bad(path, f"layer {layer.name!r} ({type(layer).__name__}) needs "
                                 f"{len(layer.weights)} weight arrays, the file has "
                                 f"{0 if ds is None else len(ds)} (missing weights)")
            pairs.extend(zip(layer.weights, ds))
        return pairs
    stored = [sets[n] for n in names if sets[n]]
    if len(stored) != len(layers):
        raise _bad(path, f"holds weights for {len(stored)} layers, the model has "
                         f"{len(layers)} layers with weights")
    for layer, ds in zip(layers, stored):
        if len(ds) != len(layer.weights):
            raise _bad(path, f"layer {layer.name!r} needs {len(layer.weights)} weight arrays, "
                             f"the file has {len(ds)}")
        pairs.extend(zip(layer.weights, ds))
    return pairs


def _assign(path: str, pairs: Sequence[Tuple[Any, Any]], h5py: Any) -> List[np.ndarray]:
    """Check every (weight, dataset) pair, then read them all (bounded)."""
    total = 0
    for w, ds in pairs:
        total += _check_dataset(path, ds, f"weight {getattr(ds, 'name', '?')} (for "
                                          f"{w.name})", tuple(w.shape), h5py)
    return _read_all(path, [ds for _, ds in pairs], total)


# --------------------------------------------------------------------------------------------
# Optimizer state
# --------------------------------------------------------------------------------------------
# Keras 3 builds per-variable optimizer state in blocks; within a block the slots are
# interleaved per model variable ([m0, v0, m1, v1, ...]). rnnkit stores each slot's block.
_KERAS_BLOCKS = {
    "Adam": lambda o: [["momentum", "velocity"]] + ([["velocity_hat"]] if o.amsgrad else []),
    "AdamW": lambda o: [["momentum", "velocity"]] + ([["velocity_hat"]] if o.amsgrad else []),
    "SGD": lambda o: [["momentum"]] if o.momentum != 0 else [],
    "RMSprop": lambda o: ([["velocity"]] + ([["momentum"]] if o.momentum > 0 else [])
                          + ([["average_gradient"]] if o.centered else [])),
    "Adagrad": lambda o: [["accumulator"]],
}


def _optimizer_state(path: str, datasets: List[Any], optimizer: Any,
                     tw_shapes: List[Tuple[int, ...]], h5py: Any
                     ) -> Optional[Tuple[List[Any], List[Tuple[str, Tuple[int, ...]]]]]:
    """Datasets in rnnkit's ``optimizer.variables`` order with their expected shapes, or
    None (with a warning) when the file's layout is not one rnnkit maps."""
    name = type(optimizer).__name__
    blocks_of = _KERAS_BLOCKS.get(name)
    if (blocks_of is None or optimizer._scalar_slots or optimizer.use_ema
            or optimizer.gradient_accumulation_steps):
        warnings.warn(f"{path}: the {name} optimizer's saved state is not restored (its "
                      "layout is not mapped); training continues from a fresh state",
                      UserWarning, stacklevel=4)
        return None
    blocks = blocks_of(optimizer)
    n = len(tw_shapes)
    n_slots = sum(len(b) for b in blocks)
    if len(datasets) <= 2:
        return None  # iterations (+ learning rate) only: the optimizer was never built
    head = len(datasets) - n * n_slots
    if head not in (1, 2):
        raise _bad(path, f"the optimizer state holds {len(datasets)} arrays; a {name} for "
                         f"{n} trainable weights needs {1 + n * n_slots} (+ learning rate)")
    by_slot: Dict[str, List[Any]] = {}
    k = head
    for block in blocks:
        for _ in range(n):
            for slot in block:
                by_slot.setdefault(slot, []).append(datasets[k])
                k += 1
    ordered = [datasets[0]]
    specs: List[Tuple[str, Tuple[int, ...]]] = [("iterations", ())]
    for slot in optimizer._state_slots():
        if slot not in by_slot:
            raise _bad(path, f"the file's {name} state has no {slot!r} slot")
        ordered.extend(by_slot[slot])
        specs.extend((f"optimizer slot {slot!r} #{i}", s) for i, s in enumerate(tw_shapes))
    return ordered, specs


def _restore_optimizer(path: str, model: Any, datasets: List[Any], h5py: Any) -> None:
    opt = model.optimizer
    tw = [w.value for w in model.trainable_weights]
    got = _optimizer_state(path, datasets, opt, [tuple(w.shape) for w in tw], h5py)
    if got is None:
        return
    ordered, specs = got
    total = _check_dataset(path, ordered[0], "optimizer iteration count", (), h5py,
                           integer=True)
    for ds, (what, shape) in zip(ordered[1:], specs[1:]):
        total += _check_dataset(path, ds, what, shape, h5py)
    values = _read_all(path, ordered, total)
    if int(values[0]) < 0:
        raise _bad(path, f"negative optimizer iteration count {int(values[0])}")
    values[0] = np.asarray(int(values[0]), dtype=np.int64)
    opt.set_state(values, tw)


# --------------------------------------------------------------------------------------------
# Building the model
# --------------------------------------------------------------------------------------------
def _build(path: str, model_cfg: Any, keras2: bool
           ) -> Tuple[Any, List[str], Optional[List[str]]]:
    """Translate, validate and build (placeholder weights). Also returns the class names of
    the layers in Keras's order (for its group names) and, when rnnkit orders the layers
    differently, their names in Keras's order (else None)."""
    try:
        cls_name, cfg = from_keras.translate_model(model_cfg, keras2)
    except KerasConfigError as exc:
        raise _bad(path, f"cannot load this Keras model: {exc}") from None
    try:
        saving._validate_layer({"class_name": cls_name, "config": cfg}, "config.model", [0])
    except SchemaError as exc:
        raise _bad(path, f"invalid configuration after translation from Keras: {exc}") \
            from None
    try:
        with deferred_weights():
            model = saving._model_class(cls_name).from_config(cfg)
    except saving._CONFIG_ERRORS as exc:
        raise _bad(path, f"corrupted Keras model config ({exc})") from None
    if not model.built:
        raise _bad(path, "the Keras model has no input shape; cannot rebuild its weights")
    keras_names = None
    if cls_name == "Sequential":
        order = [lc["class_name"] for lc in cfg["layers"]]
    else:
        by_name = {lc["name"]: lc["class_name"] for lc in cfg["layers"]
                   if lc["class_name"] != "InputLayer"}
        order = [by_name[n] for n in (lc["name"] for lc in cfg["layers"]) if n in by_name]
        # model.layers must follow the same order for positional group names
        names = [lc["name"] for lc in cfg["layers"] if lc["class_name"] != "InputLayer"]
        mine = [layer.name for layer in _weighted_layers(model)]
        if names != mine:
            keras_names = names
    return model, order, keras_names


def _layers_in(model: Any, names: Optional[List[str]]) -> Any:
    """A view of ``model`` whose ``layers`` follow Keras's config order."""
    if not names:
        return model
    by = {layer.name: layer for layer in model.layers}
    return SimpleNamespace(layers=[by[n] for n in names])


def _compile(path: str, model: Any, cc: Optional[Dict[str, Any]]) -> bool:
    if not cc:
        return False
    try:
        saving._validate_meta({"format_version": saving.FORMAT_VERSION, "kind": "model",
                               "class_name": "Sequential", "weights": [],
                               "model": {"layers": []}, "compile": cc}, path, "model")
        optimizer = optimizers.get(cc["optimizer"])
        loss = ([None if lo is None else losses.get(lo) for lo in cc["loss"]]
                if isinstance(cc["loss"], list) else losses.get(cc["loss"]))
        model.compile(optimizer=optimizer, loss=loss, metrics=cc["metrics"],
                      weighted_metrics=cc.get("weighted_metrics"),
                      loss_weights=cc.get("loss_weights"))
    except (ValueError, TypeError, KeyError) as exc:
        warnings.warn(f"{path}: the compile settings were not restored ({exc}); compile the "
                      "model yourself", UserWarning, stacklevel=4)
        return False
    return True


def _finish(path: str, model: Any, pairs: Sequence[Tuple[Any, Any]], h5py: Any) -> None:
    _check_cover(path, model, pairs)
    values = _assign(path, pairs, h5py)
    for (w, _), v in zip(pairs, values):  # replaces the placeholders
        w.value = np.ascontiguousarray(v, dtype=w.dtype)


def _check_cover(path: str, model: Any, pairs: Sequence[Tuple[Any, Any]]) -> None:
    """Every weight of the model must get exactly one array from the file."""
    got = {id(w) for w, _ in pairs}
    missing = [w.name for w in model.weights if id(w) not in got]
    if missing or len(got) != len(pairs):
        raise _bad(path, f"the file gives no value for weight(s) {missing[:5]} of the model "
                         "(missing weights)")


def _keras_version_major(v: Any) -> int:
    m = re.match(r"\s*(\d+)", str(v or ""))
    return int(m.group(1)) if m else 3


@contextmanager
def _extracted(ar: "saving._Archive", name: str) -> Iterator[str]:
    """Copy a (size-checked) zip member to a private temporary file, at most its size."""
    info = ar.zip.getinfo(name)
    if info.file_size > saving.MAX_WEIGHT_BYTES + (1 << 20):
        raise _bad(ar.path, f"{name} is {info.file_size} bytes, over the limit of "
                            f"{saving.MAX_WEIGHT_BYTES}")
    fd, tmp = tempfile.mkstemp(prefix=".rnnkit-keras-", suffix=".h5")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with ar.zip.open(info) as f:
                    lim = saving._Limited(f, info.file_size)
                    while True:
                        chunk = lim.read(saving._CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                    if f.read(1):
                        raise ValueError("more data than declared")
            except saving._PARSE_ERRORS as exc:
                raise _corrupt(ar.path, f"member {name!r}: {type(exc).__name__}: "
                                               f"{exc}") from None
        yield tmp
    finally:
        os.unlink(tmp)


def _open_h5(path: str, h5py: Any, display: Optional[str] = None) -> Any:
    try:
        return h5py.File(path, "r")
    except Exception as exc:
        raise _corrupt(display or path, f"not a readable HDF5 file "
                                               f"({type(exc).__name__}: {exc})") from None


def load_keras_model(path: str, compile: bool = True) -> Any:
    """Load a Keras ``.keras`` archive or legacy ``.h5`` model file as an rnnkit model."""
    path = os.fspath(path)
    kind = file_kind(path)
    h5py = require_h5py()
    if kind == "keras_zip":
        return _load_keras_zip(path, compile, h5py)
    if kind == "hdf5":
        return _load_legacy_h5(path, compile, h5py)
    raise _bad(path, "not a Keras file")


def _load_keras_zip(path: str, compile: bool, h5py: Any) -> Any:
    with saving._Archive(path) as ar:
        names = set(ar.others) | {n + ".npy" for n in ar.members}
        for need in ("config.json", _WEIGHTS_MEMBER):
            if need not in names:
                raise _bad(path, f"the Keras archive has no {need} (truncated or not a "
                                 "complete .keras file)")
        meta = {}
        if "metadata.json" in names:
            meta = _parse_json(_read_member(ar, "metadata.json", saving.MAX_CONFIG_BYTES),
                               path, "metadata.json")
        keras2 = isinstance(meta, dict) and _keras_version_major(meta.get("keras_version")) < 3
        cfg = _parse_json(_read_member(ar, "config.json", saving.MAX_CONFIG_BYTES), path,
                          "config.json")
        model, order, keras_names = _build(path, cfg, keras2)
        cc = from_keras.translate_compile(cfg.get("compile_config")) \
            if compile and isinstance(cfg, dict) else None
        with _extracted(ar, _WEIGHTS_MEMBER) as tmp:
            with _open_h5(tmp, h5py, f"{path} ({_WEIGHTS_MEMBER})") as f:
                view = _layers_in(model, keras_names)
                _finish(path, model, _keras3_weight_map(path, f, view, order, h5py), h5py)
                if _compile(path, model, cc):
                    opt = _child(path, f, "optimizer/vars", h5py)
                    if isinstance(opt, h5py.Group) and len(opt) > 1:
                        ds = _numbered(path, opt, h5py)
                        _restore_optimizer(path, model, ds, h5py)
    return model


def _numbered(path: str, group: Any, h5py: Any) -> List[Any]:
    keys = list(group.keys())
    if len(keys) > 4 * saving.MAX_LAYERS or not all(k.isdigit() for k in keys):
        raise _bad(path, f"{group.name}: unexpected entries {keys[:5]}")
    return [_child(path, group, k, h5py) for k in sorted(keys, key=int)]


def _load_legacy_h5(path: str, compile: bool, h5py: Any) -> Any:
    with saving._open_regular(path):
        pass  # regular-file check (a FIFO or device is never handed to libhdf5)
    with _open_h5(path, h5py) as f:
        raw = _attr(path, f, "model_config")
        if raw is None:
            raise _bad(path, "no model_config attribute: an HDF5 weights file, not a saved "
                             "Keras model (use model.load_weights)")
        keras2 = _keras_version_major(_attr(path, f, "keras_version")) < 3
        cfg = _parse_json(raw, path, "model_config")
        model, _, _ = _build(path, cfg, keras2)
        group = _child(path, f, "model_weights", h5py)
        if not isinstance(group, h5py.Group):
            raise _bad(path, "no model_weights group (missing weights)")
        _finish(path, model, _legacy_weight_map(path, group, model, True, h5py), h5py)
        tc = _attr(path, f, "training_config") if compile else None
        if tc is not None:
            cc = from_keras.translate_compile(_parse_json(tc, path, "training_config"))
            if _compile(path, model, cc):
                og = _child(path, f, "optimizer_weights", h5py)
                wn = _attr(path, og, "weight_names") if isinstance(og, h5py.Group) else None
                if isinstance(wn, list) and len(wn) > 1:
                    _restore_optimizer(path, model, [_child(path, og, n, h5py) for n in wn],
                                       h5py)
    return model


def load_keras_weights(model: Any, path: str) -> None:
    """Read a Keras weights file (``.weights.h5``, a Keras 2 ``.h5`` weights file or a
    legacy ``.h5`` model) into the built rnnkit ``model``; every shape is checked."""
    path = os.fspath(path)
    kind = file_kind(path)
    if not model.built:
        raise ValueError("load_weights: build the model (give it an input shape) first")
    h5py = require_h5py()
    if kind == "keras_zip":
        with saving._Archive(path) as ar:
            if _WEIGHTS_MEMBER not in set(ar.others):
                raise _bad(path, f"the Keras archive has no {_WEIGHTS_MEMBER}")
            with _extracted(ar, _WEIGHTS_MEMBER) as tmp, _open_h5(tmp, h5py, path) as f:
                _load_into(path, f, model, h5py)
        return
    with saving._open_regular(path):
        pass
    with _open_h5(path, h5py) as f:
        _load_into(path, f, model, h5py)


def _load_into(path: str, f: Any, model: Any, h5py: Any) -> None:
    if _child(path, f, "layers", h5py) is not None:
        classes = [type(layer).__name__ for layer in _weighted_layers(model)]
        pairs = _keras3_weight_map(path, f, model, classes, h5py)
    else:
        group = _child(path, f, "model_weights", h5py) or f
        pairs = _legacy_weight_map(path, group, model, False, h5py)
    _check_cover(path, model, pairs)
    values = _assign(path, pairs, h5py)
    for (w, _), v in zip(pairs, values):
        w.assign(v.astype(w.dtype, copy=False))
