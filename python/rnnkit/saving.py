"""Saving and loading models without pickle (docs/spec.md §6).

A saved model is ONE ``.npz`` (zip) file holding:

* ``__rnnkit_config__``: UTF-8 JSON as a ``uint8`` array -- format version, the model config,
  the compile config (loss, optimizer, metrics) and the weight names/shapes/dtypes;
* ``weight_00000``, ... : the weights in Keras order;
* ``optimizer_00000``, ... : the optimizer state (when it has been built).

Writes go to a temporary file ``.rnnkit-<host>-<pid>-<random>.tmp`` in the destination
directory, are flushed and fsync'ed, then ``os.replace``-d over the target: an interrupted
save leaves the previous file intact. A later save into that directory removes temporary
files left by writers on this host whose process no longer exists (``kill -9``, power cut)
once they are a minute old; it never touches any other file.

Loading treats the file as hostile. It never executes code (no pickle, no eval, layer and
optimizer classes come from fixed registries) and allocates nothing large before the file has
been checked:

1. the path must be a regular file (a directory, FIFO or device is refused without opening
   it for reading in blocking mode);
2. the zip directory must list exactly the members the config implies, stored or deflated;
3. the config (at most :data:`MAX_CONFIG_BYTES`, nesting at most :data:`MAX_JSON_DEPTH`) is
   checked field by field against a schema (known layer classes only, sizes at most
   :data:`MAX_DIM`) and the model is built with *placeholder* weights (no initializer runs);
4. every member's ``.npy`` header is read without its data: dtype (weights must be
   float16/32/64), shape (must equal what the config implies) and declared size (must equal
   header + shape x itemsize; total at most :data:`MAX_WEIGHT_BYTES`);
5. only then are the arrays read, each with a hard byte limit, so a zip that lies about its
   sizes cannot make the reader inflate more than the config implies.

Every malformed file raises ``ValueError`` naming the file and the problem; a missing path
raises ``FileNotFoundError``.
"""
from __future__ import annotations

import hashlib
import inspect
import io
import pickle
import json
import math
import os
import warnings
import re
import socket
import stat
import tempfile
import time
import warnings
import zipfile
from typing import Any, BinaryIO, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import activations, cells, initializers, losses, metrics, optimizers
from .layers import registry as _layer_registry
from .config_schema import (MAX_DIM, SchemaError, fail, is_int, is_num, short, v_bool,
                            v_layer_ref, v_layer_refs, v_object, v_opt_str, v_shape, v_str)
from .layers.base import deferred_weights
from .metrics.schema import v_metric

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "model_from_json",
           "dumps_model", "loads_model", "dumps_layer", "loads_layer",
           "FORMAT_VERSION",
           "MAX_CONFIG_BYTES", "MAX_JSON_DEPTH", "MAX_DIM", "MAX_LAYERS", "MAX_WEIGHT_BYTES"]

FORMAT_VERSION = 1
_CONFIG_KEY = "__rnnkit_config__"

#: Largest accepted JSON config (bytes). Real configs are a few KB.
MAX_CONFIG_BYTES = 4 << 20
#: Deepest accepted nesting of JSON arrays/objects. Real configs nest ~10 deep.
MAX_JSON_DEPTH = 64
#: Most layers (nested ones included) a config may declare.
MAX_LAYERS = 4096
#: Most bytes all stored arrays together may declare (weights + optimizer state).
MAX_WEIGHT_BYTES = 1 << 36
_MAX_LIST = 4096            # longest accepted list in a config (shapes, metrics...)
_MAX_NPY_HEADER = 10000     # numpy's own default limit for .npy headers
# numpy >= 1.24 takes the limit itself; _Limited enforces it (+ magic) for older ones too.
_HEADER_KW = ({"max_header_size": _MAX_NPY_HEADER} if "max_header_size" in
              inspect.signature(np.lib.format.read_array_header_1_0).parameters else {})
_DEFLATE_MAX_RATIO = 1100   # deflate cannot expand more than ~1032:1
_CHUNK = 1 << 20

# Parsing untrusted bytes with zipfile, zlib and numpy's .npy header reader (ast, tokenize)
# raises many exception types (BadZipFile, NotImplementedError, RuntimeError, zlib.error,
# EOFError, struct.error, OSError, UnicodeDecodeError, SyntaxError, tokenize.TokenError,
# MemoryError...). Whatever those few calls raise means "bad file": it becomes ValueError.
_PARSE_ERRORS = (Exception,)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
_TMP_PREFIX = ".rnnkit-"
_TMP_SUFFIX = ".tmp"
# .rnnkit-<8 hex: host>-<pid>-<mkstemp's random part>.tmp -- nothing else is ever removed.
_STALE_AFTER_S = 60.0
_TMP_RE = re.compile(r"\A\.rnnkit-([0-9a-f]{8})-([1-9][0-9]{0,9})-[a-z0-9_]{6,16}\.tmp\Z")


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or we cannot tell: keep its files
    return True


def _remove_stale_temp_files(directory: str) -> List[str]:
    """Remove ``.rnnkit-<host>-<pid>-*.tmp`` files of dead writers on this host.

    Only regular files whose name matches the exact pattern, whose host tag is this host's,
    whose pid is not a running process (and not this process) and that nobody has written
    for :data:`_STALE_AFTER_S` seconds are removed (the age guards a writer in another PID
    namespace sharing the hostname and the directory). Errors are ignored: cleanup never
    makes a save fail. Returns the removed paths.
    """
    removed: List[str] = []
    host, me = _host_tag(), os.getpid()
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        m = _TMP_RE.match(name)
        if m is None or m.group(1) != host:
            continue
        pid = int(m.group(2))
        if pid == me or _pid_alive(pid):
            continue
        full = os.path.join(directory, name)
        try:
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode) or time.time() - st.st_mtime < _STALE_AFTER_S:
                continue
            os.unlink(full)
            removed.append(full)
        except OSError:
            pass
    return removed


def atomic_write_file(path: Any, write: Callable[[BinaryIO], None], overwrite: bool = True) -> None:
    """Create or replace ``path`` atomically: ``write(f)`` fills a temporary file in the same
    folder (``.rnnkit-<host>-<pid>-<random>.tmp``), which is flushed, fsync'ed and then
    ``os.replace``-d over ``path``; an interrupted write leaves the old file intact. Every
    file rnnkit writes (its own format, Keras archives, ONNX, backups) goes through here."""
    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    _remove_stale_temp_files(directory)
    fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{_host_tag()}-{os.getpid()}-",
                               suffix=_TMP_SUFFIX, dir=directory)
    try:
        # mkstemp creates the file 0600; give the saved model the permissions of an ordinary
        # new file (0666 less the umask), as np.savez(path) would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _atomic_write(path: str, arrays: Dict[str, np.ndarray], overwrite: bool) -> None:
    # np.savez on a file object: no ".npz" appended to the name.
    atomic_write_file(path, lambda f: np.savez(f, **arrays), overwrite)


def _json_array(obj: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)


# --------------------------------------------------------------------------------------------
# Reading: the archive, with every size checked before anything is allocated
# --------------------------------------------------------------------------------------------
def _corrupt(path: str, detail: Any) -> ValueError:
    return ValueError(f"{path} is not a readable rnnkit file (truncated or corrupted): {detail}")


def _open_regular(path: str) -> Any:
    """Open ``path`` for reading if it is a regular file (never blocks on a FIFO)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"No such file: {path}") from None
    except PermissionError:
        raise
    except (OSError, ValueError) as exc:  # ELOOP, ENAMETOOLONG, embedded NUL...
        raise ValueError(f"{path}: cannot be opened ({exc})") from None
    _require_regular(path, st.st_mode)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"No such file: {path}") from None
    except PermissionError:
        raise
    except OSError as exc:
        raise ValueError(f"{path}: cannot be opened ({exc})") from None
    try:
        _require_regular(path, os.fstat(fd).st_mode)  # it may have been swapped meanwhile
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _require_regular(path: str, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a character device" if stat.S_ISCHR(mode)
            else "a block device" if stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise ValueError(f"{path} is {kind}, not a saved rnnkit file")


class _Limited:
    """A read-only view of a zip member that never yields more than ``limit`` bytes."""

    def __init__(self, f: Any, limit: int) -> None:
        self.f, self.left, self.pos = f, limit, 0

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n) if n > 0 else b""
        self.left -= len(data)
        self.pos += len(data)
        return data


class _Spec:
    """What a member's ``.npy`` header declares: dtype, shape, order, header length."""

    def __init__(self, dtype: np.dtype, shape: Tuple[int, ...], fortran: bool,
                 header_len: int) -> None:
        self.dtype, self.shape, self.fortran, self.header_len = dtype, shape, fortran, header_len
        self.count = math.prod(shape)
        self.nbytes = self.count * dtype.itemsize


class _Archive:
    """The zip members of an rnnkit file, read defensively (see the module docstring)."""

    def __init__(self, path: str, fileobj: Any = None) -> None:
        """``fileobj``: an in-memory file (``io.BytesIO``, from :func:`loads_model`) read
        with the same checks; ``path`` then only labels the messages."""
        self.path = path
        self.file = _open_regular(path) if fileobj is None else fileobj
        try:
            if fileobj is None:
                self.size = os.fstat(self.file.fileno()).st_size
            else:
                self.size = self.file.seek(0, io.SEEK_END)
                self.file.seek(0)
            if self.size == 0:
                raise ValueError(f"{path} is empty, not a saved rnnkit file")
            try:
                self.zip = zipfile.ZipFile(self.file)
                infos = self.zip.infolist()
            except _PARSE_ERRORS as exc:
                raise _corrupt(path, f"{type(exc).__name__}: {exc}") from None
            self.members: Dict[str, zipfile.ZipInfo] = {}
            self.others: List[str] = []  # members that are not .npy files: never ours
            seen = set()
            for info in infos:
                name = info.filename
                if name in seen:
                    raise ValueError(f"{path}: duplicate zip member {name!r}")
                seen.add(name)
                self._check_info(info)
                if name.endswith(".npy"):
                    self.members[name[:-4]] = info
                else:
                    self.others.append(name)
        except BaseException:
            self.file.close()
            raise

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "_Archive":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _check_info(self, info: zipfile.ZipInfo) -> None:
        where = f"{self.path}: zip member {info.filename!r}"
        if info.flag_bits & 0x1:
            raise ValueError(f"{where} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(f"{where} uses an unsupported compression method "
                             f"({info.compress_type})")
        if info.header_offset + info.compress_size > self.size:
            raise _corrupt(self.path, f"member {info.filename!r} extends past the end of the "
                                      f"file ({self.size} bytes)")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise _corrupt(self.path, f"stored member {info.filename!r} declares "
                                      f"{info.file_size} bytes but holds {info.compress_size}")
        if info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 1024:
            raise _corrupt(self.path, f"member {info.filename!r} declares {info.file_size} "
                                      f"bytes from {info.compress_size} compressed bytes")

    def expect_members(self, n_weights: int, n_optimizer: Optional[int]) -> None:
        """The members must be exactly: config, ``n_weights`` weights, and ``n_optimizer``
        optimizer arrays (``None``: any contiguous run of them, left unread)."""
        expected = {_CONFIG_KEY} | {f"weight_{i:05d}" for i in range(n_weights)}
        names = set(self.members)
        if n_optimizer is None:
            n_optimizer = sum(1 for n in names if n.startswith("optimizer_"))
        expected |= {f"optimizer_{i:05d}" for i in range(n_optimizer)}
        missing = sorted(expected - names)
        extra = sorted(names - expected) + sorted(self.others)
        if missing:
            raise ValueError(f"{self.path}: missing member(s) {missing[:5]}"
                             f"{' ...' if len(missing) > 5 else ''} (truncated or corrupted)")
        if extra:
            raise ValueError(f"{self.path}: unexpected member(s) {extra[:5]}"
                             f"{' ...' if len(extra) > 5 else ''}")

    def header(self, name: str) -> _Spec:
        """Read the ``.npy`` header of member ``name`` (not its data) and check its size."""
        info = self.members[name]
        try:
            with self.zip.open(info) as f:
                lim = _Limited(f, min(info.file_size, _MAX_NPY_HEADER + 16))
                version = np.lib.format.read_magic(lim)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                        lim, **_HEADER_KW)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                        lim, **_HEADER_KW)
                else:
                    raise ValueError(f"unsupported .npy format version {version}")
                header_len = lim.pos
        except _PARSE_ERRORS as exc:
            raise _corrupt(self.path, f"member {name!r}: bad array header "
                                      f"({type(exc).__name__}: {exc})") from None
        if (not isinstance(shape, tuple) or len(shape) > 8
                or not all(isinstance(d, int) and 0 <= d <= MAX_DIM * MAX_DIM for d in shape)):
            raise ValueError(f"{self.path}: member {name!r} declares an invalid shape {shape!r}")
        if not isinstance(dtype, np.dtype) or dtype.hasobject:
            raise ValueError(f"{self.path}: member {name!r} has dtype {dtype!r}, which needs "
                             "pickle; refused")
        spec = _Spec(dtype, tuple(shape), bool(fortran), header_len)
        if info.file_size != header_len + spec.nbytes:
            raise _corrupt(self.path, f"member {name!r} declares {info.file_size} bytes, its "
                                      f"header implies {header_len + spec.nbytes} "
                                      f"({dtype} {spec.shape})")
        return spec

    def read(self, name: str, spec: _Spec) -> np.ndarray:
        """Read the data of ``name`` (already checked by :meth:`header`), at most its size."""
        info = self.members[name]
        buf = np.empty(spec.count, dtype=spec.dtype)
        view = memoryview(buf.view(np.uint8).reshape(-1)) if spec.nbytes else memoryview(b"")
        try:
            with self.zip.open(info) as f:
                lim = _Limited(f, info.file_size)
                lim.read(spec.header_len)
                pos = 0
                while pos < spec.nbytes:
                    chunk = lim.read(min(_CHUNK, spec.nbytes - pos))
                    if not chunk:
                        raise EOFError(f"data ends after {pos} of {spec.nbytes} bytes")
                    view[pos:pos + len(chunk)] = chunk
                    pos += len(chunk)
                if f.read(1):  # also makes zipfile verify the CRC at the end of the member
                    raise ValueError("more data than its header declares")
        except _PARSE_ERRORS as exc:
            raise _corrupt(self.path, f"member {name!r}: {type(exc).__name__}: {exc}") from None
        finally:
            view.release()
        if spec.fortran:
            return buf.reshape(spec.shape[::-1]).transpose()
        return buf.reshape(spec.shape)

    def read_config(self) -> Dict[str, Any]:
        if _CONFIG_KEY not in self.members:
            raise ValueError(f"{self.path} is not an rnnkit file: no {_CONFIG_KEY} entry")
        spec = self.header(_CONFIG_KEY)
        if spec.dtype != np.uint8 or len(spec.shape) != 1:
            raise ValueError(f"{self.path}: corrupted configuration (a {spec.dtype} array of "
                             f"shape {spec.shape}, expected uint8 bytes)")
        if spec.nbytes > MAX_CONFIG_BYTES:
            raise ValueError(f"{self.path}: configuration of {spec.nbytes} bytes exceeds the "
                             f"limit of {MAX_CONFIG_BYTES} (rnnkit.saving.MAX_CONFIG_BYTES)")
        raw = self.read(_CONFIG_KEY, spec).tobytes()
        return _parse_json(raw, self.path)


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\Z)', re.DOTALL)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not allowed")


def _parse_json(raw: bytes, path: str) -> Dict[str, Any]:
    try:
        text = raw.decode("utf-8")
        # Nesting depth before parsing (strings removed, brackets counted; linear time).
        b = np.frombuffer(_JSON_STRING.sub(b"", raw), dtype=np.uint8)
        step = (np.isin(b, (ord("["), ord("{"))).astype(np.int64)
                - np.isin(b, (ord("]"), ord("}"))).astype(np.int64))
        depth = int(np.cumsum(step).max()) if step.size else 0
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nesting depth {depth} exceeds the limit of {MAX_JSON_DEPTH}")
        meta = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: corrupted configuration ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: corrupted configuration (a JSON {type(meta).__name__}, "
                         "expected an object)")
    if type(meta.get("format_version")) is not int or meta["format_version"] != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported format version {meta.get('format_version')!r}")
    return meta


# --------------------------------------------------------------------------------------------
# Config schema (the field checkers live in config_schema; each layer class lists its fields)
# --------------------------------------------------------------------------------------------
def _validate_layer(lc: Any, where: str, counter: List[int]) -> None:
    counter[0] += 1
    if counter[0] > MAX_LAYERS:
        fail(where, f"more than {MAX_LAYERS} layers")
    if not isinstance(lc, dict) or set(lc) - {"class_name", "config"}:
        fail(where, f"expected {{'class_name', 'config'}}, got {short(lc)}")
    cls = lc.get("class_name")
    known = sorted(n for n, c in _layer_registry.REGISTRY.items() if "CONFIG_FIELDS" in vars(c))
    if not isinstance(cls, str) or cls not in known:
        fail(where, f"unknown layer class {short(cls)}; known: {known}")
    cfg = lc.get("config", {})
    if not isinstance(cfg, dict):
        fail(f"{where}.config", f"expected an object, got {short(cfg)}")
    layer_cls = _layer_registry.REGISTRY[cls]
    if getattr(layer_cls, "GRAPH_CONFIG", False):
        _validate_graph(cfg, f"{where}.config", counter)
        return
    fields = layer_cls.CONFIG_FIELDS
    for key in layer_cls.CONFIG_REQUIRED:
        if key not in cfg:
            fail(f"{where}.config", f"missing field {key!r}")
    for key, value in cfg.items():
        check = fields.get(key)
        if check is None:
            fail(f"{where}.config", f"unknown field {short(key)} for {cls}")
        w = f"{where}.config.{key}"
        if check is v_layer_ref:
            if value is not None or key == "layer":
                _validate_layer(value, w, counter)
        elif check is v_layer_refs:
            if not isinstance(value, list) or len(value) > MAX_LAYERS:
                fail(w, f"expected a list of layer configs, got {short(value)}")
            for i, item in enumerate(value):
                _validate_layer(item, f"{w}[{i}]", counter)
        else:
            check(value, w)


def _v_scalar_kwargs(v: Any, w: str) -> None:
    """A call's keyword arguments: a small object of JSON scalars only."""
    if not isinstance(v, dict) or len(v) > 64:
        fail(w, f"expected an object, got {short(v)}")
    for k, x in v.items():
        v_str(k, f"{w} key")
        if not (x is None or isinstance(x, (bool, str)) or is_num(x)):
            fail(f"{w}.{k}", f"expected a number, string, true/false or null, got {short(x)}")
        if isinstance(x, str):
            v_str(x, f"{w}.{k}")


def _v_tensor_ref(v: Any, w: str) -> None:
    if (not isinstance(v, list) or len(v) != 3 or not isinstance(v[0], str)
            or not is_int(v[1]) or not is_int(v[2]) or not 0 <= v[1] <= MAX_LAYERS
            or not 0 <= v[2] <= MAX_LAYERS):
        fail(w, f"expected [layer name, node index, tensor index], got {short(v)}")
    v_str(v[0], f"{w}[0]")


def _v_structure(v: Any, w: str) -> None:
    if v is None or v == "list":
        return
    if not isinstance(v, list) or len(v) > MAX_LAYERS:
        fail(w, f"expected null, 'list' or a list of names, got {short(v)}")
    for i, k in enumerate(v):
        v_str(k, f"{w}[{i}]")


def _validate_graph(cfg: Any, where: str, counter: List[int]) -> None:
    """A functional model's config: layers with their calls, inputs and outputs."""
    if not isinstance(cfg, dict):
        fail(where, f"expected an object, got {short(cfg)}")
    allowed = {"name", "trainable", "layers", "input_layers", "output_layers",
               "input_structure", "output_structure"}
    extra = sorted(set(cfg) - allowed)
    if extra:
        fail(where, f"unknown field(s) {extra[:5]}")
    v_opt_str(cfg.get("name"), f"{where}.name")
    v_bool(cfg.get("trainable", True), f"{where}.trainable")
    for key in ("input_structure", "output_structure"):
        _v_structure(cfg.get(key), f"{where}.{key}")
    layers = cfg.get("layers")
    if not isinstance(layers, list) or len(layers) > MAX_LAYERS:
        fail(f"{where}.layers", f"expected a list, got {short(layers)}")
    for i, lc in enumerate(layers):
        w = f"{where}.layers[{i}]"
        if not isinstance(lc, dict) or set(lc) - {"class_name", "config", "name",
                                                  "inbound_nodes"}:
            fail(w, f"expected {{'class_name', 'config', 'name', 'inbound_nodes'}}, "
                    f"got {short(lc)}")
        v_str(lc.get("name"), f"{w}.name")
        _validate_layer({"class_name": lc.get("class_name"), "config": lc.get("config", {})},
                        w, counter)
        nodes = lc.get("inbound_nodes", [])
        if not isinstance(nodes, list) or len(nodes) > MAX_LAYERS:
            fail(f"{w}.inbound_nodes", f"expected a list, got {short(nodes)}")
        for j, node in enumerate(nodes):
            wn = f"{w}.inbound_nodes[{j}]"
            if not isinstance(node, dict) or set(node) - {"args", "single", "kwargs"}:
                fail(wn, f"expected {{'args', 'single', 'kwargs'}}, got {short(node)}")
            args = node.get("args")
            if not isinstance(args, list) or not 0 < len(args) <= 64:
                fail(f"{wn}.args", f"expected a list of 1 to 64 tensor references, "
                                   f"got {short(args)}")
            for k, a in enumerate(args):
                _v_tensor_ref(a, f"{wn}.args[{k}]")
            v_bool(node.get("single", True), f"{wn}.single")
            _v_scalar_kwargs(node.get("kwargs", {}), f"{wn}.kwargs")
    for key in ("input_layers", "output_layers"):
        refs = cfg.get(key)
        if not isinstance(refs, list) or not 0 < len(refs) <= MAX_LAYERS:
            fail(f"{where}.{key}", f"expected a non-empty list, got {short(refs)}")
        for k, r in enumerate(refs):
            _v_tensor_ref(r, f"{where}.{key}[{k}]")


def _v_loss_structure(v: Any, w: str) -> None:
    """One loss, or a list with one (loss or null) per output."""
    if isinstance(v, list):
        if not 0 < len(v) <= MAX_LAYERS:
            fail(w, f"expected a non-empty list, got {short(v)}")
        for i, x in enumerate(v):
            if x is not None:
                v_object(x, f"{w}[{i}]", list(losses._CLASSES), list(losses._BY_NAME))
        return
    v_object(v, w, list(losses._CLASSES), list(losses._BY_NAME))


def _v_metrics(ms: Any, w: str) -> None:
    """The saved metrics: one list, or one list per output, of names / metric configs."""
    if not isinstance(ms, list) or len(ms) > MAX_LAYERS:
        fail(w, f"expected a list, got {short(ms)}")
    for i, m in enumerate(ms):
        if isinstance(m, list):  # one list per output
            if len(m) > 64:
                fail(f"{w}[{i}]", "more than 64 metrics")
            for j, x in enumerate(m):
                v_metric(x, f"{w}[{i}][{j}]")
        else:
            v_metric(m, f"{w}[{i}]")


def _saved_metrics(id_lists: List[List[Any]], single: bool, dropped: List[str]) -> Any:
    """What compile's metrics become in a saved file: names and built-in metric configs;
    custom functions / Metric subclasses are left out (their names go to ``dropped``)."""
    out: List[List[Any]] = []
    for ids in id_lists:
        kept: List[Any] = []
        for m in ids:
            if isinstance(m, (str, dict)):
                kept.append(m)
            elif isinstance(m, type) and m in metrics._CLASSES.values():
                kept.append({"class_name": m.__name__, "config": {}})
            elif metrics.is_builtin(m):
                kept.append(metrics.serialize(m))
            elif (callable(m) and getattr(m, "__name__", None) in metrics._FUNCS
                  and metrics._FUNCS[m.__name__] is m):
                kept.append(m.__name__)  # an rnnkit metric function: saved by its name
            else:
                dropped.append(getattr(m, "name", None) or getattr(m, "__name__", repr(m)))
        out.append(kept)
    return out[0] if single else out


def _validate_meta(meta: Dict[str, Any], path: str, kind: Optional[str]) -> None:
    """Check the whole config against the schema; ``kind`` "model" also checks the model
    and compile configs."""
    try:
        allowed = {"format_version", "kind", "weights", "model", "class_name", "compile"}
        extra = set(meta) - allowed
        if extra:
            fail("config", f"unknown field(s) {sorted(extra)[:5]}")
        if not isinstance(meta.get("kind"), str) or meta["kind"] not in ("model", "weights"):
            fail("config.kind", f"expected 'model' or 'weights', got {short(meta.get('kind'))}")
        ws = meta.get("weights")
        if not isinstance(ws, list) or len(ws) > 4 * MAX_LAYERS:
            fail("config.weights", f"expected a list, got {short(ws)}")
        for i, e in enumerate(ws):
            w = f"config.weights[{i}]"
            if not isinstance(e, dict) or set(e) != {"name", "shape", "dtype"}:
                fail(w, f"expected {{'name', 'shape', 'dtype'}}, got {short(e)}")
            v_str(e["name"], f"{w}.name")
            if not isinstance(e["shape"], list) or len(e["shape"]) > 8 or not all(
                    is_int(d) and 0 <= d <= MAX_DIM * 4 for d in e["shape"]):
                fail(f"{w}.shape", f"expected a list of sizes, got {short(e['shape'])}")
            if not isinstance(e["dtype"], str) or e["dtype"] not in ("float16", "float32",
                                                                    "float64"):
                fail(f"{w}.dtype", f"expected a float dtype, got {short(e['dtype'])}")
        if kind != "model":
            return
        if meta.get("kind") != "model" or meta.get("class_name") not in _MODEL_CLASSES:
            raise ValueError(f"{path}: not a saved model (kind={meta.get('kind')!r}, "
                             f"class_name={short(meta.get('class_name'))}); use "
                             "load_weights for weights files")
        _validate_layer({"class_name": meta["class_name"], "config": meta.get("model")},
                        "config.model", [0])
        cc = meta.get("compile")
        if cc is None:
            return
        if (not isinstance(cc, dict) or not {"loss", "optimizer", "metrics", "optimizer_state"}
                <= set(cc) <= {"loss", "optimizer", "metrics", "optimizer_state",
                               "loss_weights", "weighted_metrics"}):
            fail("config.compile", f"expected {{'loss', 'optimizer', 'metrics', "
                                   f"'optimizer_state'(, 'loss_weights', 'weighted_metrics')}}, "
                                   f"got {short(cc)}")
        _v_loss_structure(cc["loss"], "config.compile.loss")
        v_object(cc["optimizer"], "config.compile.optimizer", list(optimizers._CLASSES),
                 list(optimizers._BY_NAME))
        lw = cc.get("loss_weights")
        if lw is not None:
            if not isinstance(lw, list) or not 0 < len(lw) <= MAX_LAYERS:
                fail("config.compile.loss_weights", f"expected a list, got {short(lw)}")
            for i, x in enumerate(lw):
                if not is_num(x):
                    fail(f"config.compile.loss_weights[{i}]", f"expected a number, got {short(x)}")
        _v_metrics(cc["metrics"], "config.compile.metrics")
        if "weighted_metrics" in cc:
            _v_metrics(cc["weighted_metrics"], "config.compile.weighted_metrics")
        v_bool(cc["optimizer_state"], "config.compile.optimizer_state")
    except SchemaError as exc:
        raise ValueError(f"{path}: invalid configuration: {exc}") from None


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def _weights_meta(model: Any) -> List[Dict[str, Any]]:
    return [{"name": w.name, "shape": list(w.shape), "dtype": w.dtype.name} for w in model.weights]


def _weight_arrays(model: Any) -> Dict[str, np.ndarray]:
    return {f"weight_{i:05d}": w.value for i, w in enumerate(model.weights)}


def _float_spec(ar: _Archive, key: str, what: str, expected: Tuple[int, ...]) -> _Spec:
    spec = ar.header(key)
    dt = spec.dtype
    if dt.kind != "f" or dt.itemsize not in (2, 4, 8) or dt.names is not None:
        raise ValueError(f"{ar.path}: {what} has dtype {dt}; weights must be float16, float32 "
                         "or float64")
    if spec.shape != tuple(expected):
        raise ValueError(f"{ar.path}: {what} has shape {spec.shape}, the model expects "
                         f"{tuple(expected)}")
    return spec


def _weight_specs(ar: _Archive, meta: Dict[str, Any], mine: Sequence[Any]) -> List[_Spec]:
    """Check count and shapes of the stored weights against ``mine`` (headers only)."""
    saved = meta["weights"]
    if len(saved) != len(mine):
        raise ValueError(f"{ar.path}: holds {len(saved)} weight arrays, the model has "
                         f"{len(mine)}")
    specs = []
    for i, (s, w) in enumerate(zip(saved, mine)):
        if tuple(s["shape"]) != tuple(w.shape):
            raise ValueError(f"{ar.path}: weight {i} ({w.name}) has shape {tuple(s['shape'])}, "
                             f"the model expects {tuple(w.shape)}")
        key = f"weight_{i:05d}"
        if key not in ar.members:
            raise ValueError(f"{ar.path}: weight {i} ({s['name']}) is missing (no member "
                             f"{key})")
        specs.append(_float_spec(ar, key, f"weight {i} ({s['name']})", tuple(w.shape)))
    return specs


def _check_total(ar: _Archive, specs: Sequence[_Spec]) -> None:
    total = sum(s.nbytes for s in specs)
    if total > MAX_WEIGHT_BYTES:
        raise ValueError(f"{ar.path}: declares {total} bytes of arrays, over the limit of "
                         f"{MAX_WEIGHT_BYTES} (rnnkit.saving.MAX_WEIGHT_BYTES)")


def save_weights(model: Any, path: str, overwrite: bool = True) -> None:
    """Write the model's weights (and their names/shapes) atomically to ``path``."""
    meta = {"format_version": FORMAT_VERSION, "kind": "weights", "weights": _weights_meta(model)}
    _atomic_write(path, {_CONFIG_KEY: _json_array(meta), **_weight_arrays(model)}, overwrite)


def load_weights(model: Any, path: str) -> None:
    """Load weights from a weights file or a full model file; every shape must match."""
    path = os.fspath(path)
    with _Archive(path) as ar:
        meta = ar.read_config()
        _validate_meta(meta, path, None)
        if not model.built:
            raise ValueError("load_weights: build the model (give it an input shape) first")
        mine = model.weights
        specs = _weight_specs(ar, meta, mine)
        ar.expect_members(len(specs), 0 if meta["kind"] == "weights" else None)
        _check_total(ar, specs)
        values = [ar.read(f"weight_{i:05d}", s) for i, s in enumerate(specs)]
    model.set_weights([v.astype(w.dtype, copy=False) for v, w in zip(values, mine)])


def _model_arrays(model: Any, strict: bool = False) -> Dict[str, np.ndarray]:
    """The config array and every weight / optimizer array of a saved model.

    ``strict`` (pickling): what a file cannot represent -- custom losses or metrics, an
    unregistered model class, a layer whose config cannot be written (``Lambda``) -- raises
    :class:`pickle.PicklingError` instead of being left out with a warning."""
    what = f"{type(model).__name__} {getattr(model, 'name', '')!r}"
    if strict and _MODEL_CLASSES.get(type(model).__name__) is not type(model):
        raise pickle.PicklingError(
            f"cannot pickle {what}: {type(model).__qualname__} is not one of rnnkit's model "
            f"classes {sorted(_MODEL_CLASSES)}; only those can be rebuilt from rnnkit's format")
    compile_cfg = None
    arrays: Dict[str, np.ndarray] = {}
    custom = [lo.name for lo in getattr(model, "_losses", []) if lo is not None
              and not losses.is_serializable(lo)]
    if model.compiled and custom and strict:
        raise pickle.PicklingError(
            f"cannot pickle {what}: it is compiled with custom loss(es) {custom}, which "
            "rnnkit's format cannot hold (it never stores code); compile it with built-in "
            "losses, or pickle an uncompiled copy and compile again after loading")
    if model.compiled and custom:
        # A custom loss (function or user subclass) cannot be named in a file that must
        # never run code: save the model and weights only (see rnnkit.custom_losses).
        warnings.warn(f"save_model: the model is compiled with custom loss(es) {custom}, "
                      "which cannot be saved; the file holds the architecture and weights "
                      "without compile settings -- compile the loaded model again",
                      UserWarning, stacklevel=4)
    elif model.compiled:
        lr = getattr(model.optimizer, "_learning_rate", None)
        if (strict and callable(lr)
                and not isinstance(lr, optimizers.schedules.LearningRateSchedule)):
            raise pickle.PicklingError(
                f"cannot pickle {what}: its optimizer's learning rate {lr!r} is a Python "
                "callable, which rnnkit's format cannot hold (use a LearningRateSchedule)")
        per_loss = [None if lo is None else losses.serialize(lo) for lo in model._losses]
        single = len(per_loss) == 1
        dropped: List[str] = []
        compile_cfg = {"loss": per_loss[0] if single else per_loss,
                       "optimizer": optimizers.serialize(model.optimizer),
                       "metrics": _saved_metrics(model._metric_ids, single, dropped),
                       "optimizer_state": bool(model.optimizer.built)}
        if any(model._weighted_metric_ids):
            compile_cfg["weighted_metrics"] = _saved_metrics(model._weighted_metric_ids, single,
                                                             dropped)
        if dropped and strict:
            raise pickle.PicklingError(
                f"cannot pickle {what}: it is compiled with custom metric(s) {dropped}, which "
                "rnnkit's format cannot hold (only built-in metrics are saved)")
        if dropped:
            # Custom Python metrics cannot be rebuilt from a file (no code is ever loaded
            # from one): they are left out, loudly; compile again after load_model.
            warnings.warn(f"save_model: the custom metric(s) {dropped} are not saved in the "
                          "compile config (only rnnkit's built-in metrics are); after "
                          "load_model, compile again to use them", UserWarning, stacklevel=3)
        if any(w != 1.0 for w in model._loss_weights):
            compile_cfg["loss_weights"] = list(model._loss_weights)
        if model.optimizer.built:
            for i, a in enumerate(model.optimizer.variables):
                arrays[f"optimizer_{i:05d}"] = np.asarray(a)
    try:
        config = model.get_config()
    except (ValueError, TypeError) as exc:
        if not strict:
            raise
        raise pickle.PicklingError(f"cannot pickle {what}: its config cannot be written to "
                                   f"rnnkit's format ({exc})") from None
    meta = {"format_version": FORMAT_VERSION, "kind": "model", "model": config,
            "class_name": type(model).__name__, "compile": compile_cfg,
            "weights": _weights_meta(model)}
    return {_CONFIG_KEY: _json_array(meta), **_weight_arrays(model), **arrays}


def save_model(model: Any, path: str, overwrite: bool = True) -> None:
    """Write config + weights + compile settings + optimizer state atomically to ``path``."""
    _atomic_write(path, _model_arrays(model), overwrite)


def dumps_model(model: Any) -> bytes:
    """The bytes :func:`save_model` would write (the pickle payload of a model).

    Unlike :func:`save_model`, what the format cannot represent (custom losses / metrics, a
    ``Lambda`` layer, a user model class) raises :class:`pickle.PicklingError` naming it:
    nothing is silently left out of a copy."""
    buf = io.BytesIO()
    np.savez(buf, **_model_arrays(model, strict=True))
    return buf.getvalue()


def _bytes_archive(caller: str, label: str, data: Any, empty: str) -> "_Archive":
    """The :class:`_Archive` over untrusted bytes ``data`` (named ``label`` in messages);
    TypeError for anything but bytes-like, ValueError ``"<label> <empty>"`` for none."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{caller}: expected bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{label} {empty}")
    return _Archive(label, io.BytesIO(bytes(data)))


def loads_model(data: bytes, compile: bool = True) -> Any:
    """Rebuild a model from :func:`dumps_model` bytes, checked exactly as :func:`load_model`
    checks a file (the bytes are untrusted)."""
    label = "<rnnkit model bytes>"
    with _bytes_archive("loads_model", label, data, "is empty, not a saved rnnkit model") as ar:
        return _load_from_archive(ar, compile, allow_unbuilt=True)


def _v_build_shape(v: Any, w: str) -> None:
    """A layer's build input shape: null, a shape, or a list of shapes (several inputs)."""
    if v is None:
        return
    if isinstance(v, list) and v and all(isinstance(x, list) for x in v):
        if len(v) > 64:
            fail(w, f"more than 64 input shapes: {short(v)}")
        for i, x in enumerate(v):
            v_shape(x, f"{w}[{i}]")
        return
    v_shape(v, w)


def dumps_layer(layer: Any) -> bytes:
    """A standalone layer in rnnkit's format: its config, the input shape it was built for
    and its weights (the pickle payload of a layer; see :func:`loads_layer`)."""
    what = f"{type(layer).__name__} {getattr(layer, 'name', '')!r}"
    if _layer_registry.REGISTRY.get(type(layer).__name__) is not type(layer):
        raise pickle.PicklingError(f"cannot pickle {what}: {type(layer).__qualname__} is not a "
                                   "registered rnnkit layer class")
    try:
        config = layer.get_config()
    except (ValueError, TypeError) as exc:
        raise pickle.PicklingError(f"cannot pickle {what}: its config cannot be written to "
                                   f"rnnkit's format ({exc})") from None
    shape = None
    if layer.built:
        shape = layer.__dict__.get("_build_shape")
        if shape is None:
            shape = layer.input_shape
        if shape is None and layer.weights:
            raise pickle.PicklingError(f"cannot pickle {what}: built without a recorded input "
                                       "shape, so its weights could not be rebuilt")
        if shape is not None:
            shape = ([list(x) for x in shape] if isinstance(shape, list)
                     and shape and isinstance(shape[0], (list, tuple))
                     else list(shape))
    meta = {"format_version": FORMAT_VERSION, "kind": "layer",
            "layer": {"class_name": type(layer).__name__, "config": config},
            "build_shape": shape, "weights": _weights_meta(layer)}
    buf = io.BytesIO()
    try:
        np.savez(buf, **{_CONFIG_KEY: _json_array(meta), **_weight_arrays(layer)})
    except TypeError as exc:  # something in the config is not JSON
        raise pickle.PicklingError(f"cannot pickle {what}: {exc}") from None
    return buf.getvalue()


def loads_layer(data: bytes) -> Any:
    """Rebuild a layer from :func:`dumps_layer` bytes; the bytes are untrusted and checked as
    a saved file is (schema, known classes, weight shapes and sizes) before any array is
    read."""
    path = "<rnnkit layer bytes>"
    with _bytes_archive("loads_layer", path, data, "is empty") as ar:
        meta = ar.read_config()
        try:
            if set(meta) != {"format_version", "kind", "layer", "build_shape", "weights"} \
                    or meta["kind"] != "layer":
                fail("config", f"expected a pickled layer, got fields {sorted(meta)[:6]}")
            _validate_meta({"format_version": FORMAT_VERSION, "kind": "weights",
                            "weights": meta["weights"]}, path, None)
            _validate_layer(meta["layer"], "config.layer", [0])
            _v_build_shape(meta["build_shape"], "config.build_shape")
        except SchemaError as exc:
            raise ValueError(f"{path}: invalid configuration: {exc}") from None
        shape = meta["build_shape"]
        try:
            with deferred_weights():
                layer = _layer_registry.deserialize(meta["layer"])
                if shape is not None:
                    layer._ensure_built([tuple(x) for x in shape] if shape
                                        and isinstance(shape[0], list) else tuple(shape))
        except _CONFIG_ERRORS as exc:
            raise ValueError(f"{path}: corrupted layer config ({exc})") from None
        mine = layer.weights
        specs = _weight_specs(ar, meta, mine)
        ar.expect_members(len(specs), 0)
        _check_total(ar, specs)
        values = [ar.read(f"weight_{i:05d}", sp) for i, sp in enumerate(specs)]
    for w, v in zip(mine, values):
        w.value = np.ascontiguousarray(v, dtype=w.dtype)
    return layer


# Model classes by name, filled by rnnkit.models when it defines them (saving sits below models:
# models calls into saving, saving never imports models).
_MODEL_CLASSES: Dict[str, type] = {}


def register_model_class(cls: type) -> type:
    """Make ``cls`` (e.g. ``Sequential``) loadable by :func:`load_model`; returns ``cls``."""
    _MODEL_CLASSES[cls.__name__] = cls
    return cls


def _model_class(name: str) -> type:
    return _MODEL_CLASSES[name]


_CONFIG_ERRORS = (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError,
                  RecursionError)


def load_model(path: str, compile: bool = True) -> Any:
    """Rebuild a model saved by :func:`save_model`, with weights (and optimizer state)."""
    path = os.fspath(path)
    with _Archive(path) as ar:
        return _load_from_archive(ar, compile)


def _load_from_archive(ar: _Archive, compile: bool, allow_unbuilt: bool = False) -> Any:
    """Check and rebuild the model held by ``ar`` (a file or in-memory bytes).
    ``allow_unbuilt``: a model without an input shape comes back unbuilt (pickling)."""
    path = ar.path
    meta = ar.read_config()
    _validate_meta(meta, path, "model")
    try:
        with deferred_weights():  # shapes only: no initializer runs, nothing allocated
            model = _model_class(meta["class_name"]).from_config(meta["model"])
    except _CONFIG_ERRORS as exc:
        raise ValueError(f"{path}: corrupted model config ({exc})") from None
    if not model.built and not (allow_unbuilt and not meta["weights"]):
        raise ValueError(f"{path}: the saved model has no input shape; cannot rebuild "
                         "weights")
    mine = model.weights
    specs = _weight_specs(ar, meta, mine)
    cc = meta.get("compile")
    optimizer = loss = None
    opt_specs: List[_Spec] = []
    if cc:
        try:
            optimizer = optimizers.get(cc["optimizer"])
            loss = ([None if lo is None else losses.get(lo) for lo in cc["loss"]]
                    if isinstance(cc["loss"], list) else losses.get(cc["loss"]))
        except _CONFIG_ERRORS as exc:
            raise ValueError(f"{path}: corrupted compile config ({exc})") from None
        if cc["optimizer_state"]:
            if "optimizer_00000" not in ar.members:
                raise ValueError(f"{path}: optimizer state is missing")
            it = ar.header("optimizer_00000")
            if it.dtype.kind not in "iu" or it.shape != ():
                raise ValueError(f"{path}: optimizer iteration count has dtype {it.dtype} "
                                 f"and shape {it.shape}, expected an integer scalar")
            opt_specs.append(it)
            tw_shapes = [tuple(w.shape) for w in model.trainable_weights]
            for k, (what, shape) in enumerate(optimizer.state_specs(tw_shapes), 1):
                key = f"optimizer_{k:05d}"
                if key not in ar.members:
                    raise ValueError(f"{path}: optimizer state {key} is missing")
                opt_specs.append(_float_spec(ar, key, what, shape))
    ar.expect_members(len(specs), len(opt_specs))
    _check_total(ar, specs + opt_specs)
    values = [ar.read(f"weight_{i:05d}", s) for i, s in enumerate(specs)]
    opt_values = [ar.read(f"optimizer_{i:05d}", s) for i, s in enumerate(opt_specs)]
    for w, v in zip(mine, values):
        w.value = np.ascontiguousarray(v, dtype=w.dtype)  # replaces the placeholder
    if opt_values and int(opt_values[0]) < 0:
        raise ValueError(f"{path}: negative optimizer iteration count {int(opt_values[0])}")
    if compile and cc:
        try:
            model.compile(optimizer=optimizer, loss=loss, metrics=cc["metrics"],
                          weighted_metrics=cc.get("weighted_metrics"),
                          loss_weights=cc.get("loss_weights"))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: corrupted compile config ({exc})") from None
        if opt_values:
            tw = [w.value for w in model.trainable_weights]
            model.optimizer.set_state(opt_values, tw)
    return model


def model_from_json(text: str) -> Any:
    """Rebuild a model from ``to_json`` output. The JSON is untrusted: size, nesting and
    every field are checked as for a saved file before any layer is built."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ValueError(f"model_from_json: the JSON is {len(raw)} bytes, more than the limit "
                         f"of {MAX_CONFIG_BYTES}")
    wrapped = b'{"format_version": %d, "obj": ' % FORMAT_VERSION + raw + b"}"
    obj = _parse_json(wrapped, "model_from_json")["obj"]
    if not isinstance(obj, dict) or set(obj) != {"class_name", "config"}:
        raise ValueError("model_from_json: expected {'class_name', 'config'} (from to_json)")
    if obj["class_name"] not in _MODEL_CLASSES:
        raise ValueError(f"model_from_json: {short(obj['class_name'])} is not a model class; "
                         f"known: {sorted(_MODEL_CLASSES)}")
    try:
        _validate_layer(obj, "config", [0])
    except SchemaError as exc:
        raise ValueError(f"model_from_json: invalid configuration: {exc}") from None
    try:
        return _model_class(obj["class_name"]).from_config(obj["config"])
    except _CONFIG_ERRORS as exc:
        raise ValueError(f"model_from_json: corrupted model config ({exc})") from None
