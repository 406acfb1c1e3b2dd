"""Loading hostile or broken files: every malformed file raises ValueError naming the file
(FileNotFoundError only for a missing path), quickly, without large allocations, and never
runs code. Files are generated here: truncations, byte flips, crafted configs and members."""
from __future__ import annotations

import io
import json
import os
import random
import struct
import threading
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np
import pytest

from rnnkit import backend, layers as L, saving
from rnnkit.models import Sequential, load_model

CONFIG = "__rnnkit_config__.npy"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """A small trained model (LSTM, GRU with its (2, 3H) bias, Dense; Adam state) saved once."""
    backend.set_random_seed(3)
    m = Sequential([L.Input((5, 3)), L.LSTM(4, return_sequences=True), L.GRU(3),
                    L.Dense(2)])
    m.compile("adam", "mse")
    x = np.random.default_rng(0).normal(size=(8, 5, 3))
    m.fit(x, np.ones((8, 2)), epochs=1, batch_size=4, verbose=0)
    path = tmp_path_factory.mktemp("saved") / "model.npz"
    m.save(str(path))
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    meta = json.loads(np.load(io.BytesIO(members[CONFIG])).tobytes())
    return {"model": m, "path": path, "bytes": path.read_bytes(), "members": members,
            "meta": meta, "shapes": [w.shape for w in m.weights]}


def _npy(a: np.ndarray) -> bytes:
    b = io.BytesIO()
    np.lib.format.write_array(b, a, allow_pickle=False)
    return b.getvalue()


def _npy_raw(descr: str, shape: tuple, payload: bytes) -> bytes:
    """A .npy with an arbitrary header (e.g. an object dtype that would need pickle)."""
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": descr, "fortran_order": False,
                                             "shape": shape})
    return b.getvalue() + payload


def _config_bytes(meta: Any) -> bytes:
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    return _npy(np.frombuffer(raw, dtype=np.uint8))


def _write(path: Path, members: Dict[str, bytes],
           compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _with(saved: Dict[str, Any], tmp_path: Path, name: str = "bad.npz",
          edit_meta: Optional[Callable[[Dict[str, Any]], Any]] = None,
          **replace: Optional[bytes]) -> Path:
    """The saved model's members with some replaced (``None`` drops one)."""
    members = dict(saved["members"])
    if edit_meta is not None:
        meta = json.loads(json.dumps(saved["meta"]))
        out = edit_meta(meta)
        members[CONFIG] = _config_bytes(out if isinstance(out, bytes) else meta)
    for key, data in replace.items():
        fname = key + ".npy" if not key.endswith((".npy", ".txt", ".py")) else key
        if data is None:
            members.pop(fname)
        else:
            members[fname] = data
    return _write(tmp_path / name, members)


def _rejects(path: Any, match: str = "", loader: Callable[[str], Any] = load_model,
             exc: type = ValueError) -> str:
    with pytest.raises(exc) as info:
        loader(str(path))
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"
    msg = str(info.value)
    assert str(path) in msg, msg
    if match:
        assert match in msg, msg
    return msg


# A rejection that reads/allocates what the file says would need far more than this.
SMALL_PEAK_BYTES = 8 << 20


def _rejects_cheaply(path: Any, match: str) -> None:
    """``_rejects`` with Python's traced memory peak under SMALL_PEAK_BYTES: the file was
    refused before its declared sizes were allocated or inflated."""
    tracemalloc.start()
    try:
        _rejects(path, match)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < SMALL_PEAK_BYTES, peak


# -- the intact file, and paths that are not files -------------------------------------------
def test_intact_file_loads(saved: Dict[str, Any]) -> None:
    m2 = load_model(str(saved["path"]))
    for a, b in zip(saved["model"].get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert m2.optimizer.iterations == saved["model"].optimizer.iterations


def test_missing_path_is_file_not_found(tmp_path: Path) -> None:
    _rejects(tmp_path / "nope.npz", "No such file", exc=FileNotFoundError)
    _rejects(tmp_path / "nope" / "deeper.npz", exc=FileNotFoundError)


def test_directory(tmp_path: Path) -> None:
    msg = _rejects(tmp_path, "directory")
    assert "No such file" not in msg


def test_fifo_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    result: Dict[str, BaseException] = {}

    def target() -> None:
        try:
            load_model(str(fifo))
        except BaseException as e:  # noqa: BLE001 -- recorded and checked below
            result["exc"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # unblock the reader so the thread can end, then fail
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        pytest.fail("load_model blocked on a FIFO")
    exc = result["exc"]
    assert type(exc) is ValueError and str(fifo) in str(exc) and "FIFO" in str(exc), exc
    assert "No such file" not in str(exc)


def test_symlink_to_dev_zero(tmp_path: Path) -> None:
    link = tmp_path / "zero.npz"
    os.symlink("/dev/zero", link)
    _rejects(link, "character device")


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.npz"
    p.write_bytes(b"")
    _rejects(p, "empty")


def test_not_a_zip(tmp_path: Path) -> None:
    p = tmp_path / "text.npz"
    p.write_bytes(b"hello, this is not a zip file at all\n" * 10)
    _rejects(p, "truncated or corrupted")


def test_valid_zip_but_not_ours(tmp_path: Path) -> None:
    _rejects(_write(tmp_path / "other.zip", {"readme.txt": b"hi", "a.npy": _npy(np.zeros(3))}),
             "not an rnnkit file")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    _rejects(tmp_path / "plain.npz", "not an rnnkit file")


# -- members -----------------------------------------------------------------------------------
def test_missing_members(saved: Dict[str, Any], tmp_path: Path) -> None:
    _rejects(_with(saved, tmp_path, "w.npz", weight_00003=None), "weight_00003")
    _rejects(_with(saved, tmp_path, "o.npz", optimizer_00002=None), "optimizer")
    _rejects(_with(saved, tmp_path, "c.npz", __rnnkit_config__=None), "not an rnnkit file")
    _rejects(_with(saved, tmp_path, "w2.npz", weight_00003=None), "weight_00003",
             loader=lambda p: saved["model"].load_weights(p))


def test_extra_members(saved: Dict[str, Any], tmp_path: Path) -> None:
    extra = _npy(np.zeros(3, np.float32))
    _rejects(_with(saved, tmp_path, "a.npz", weight_99999=extra), "unexpected member")
    _rejects(_with(saved, tmp_path, "b.npz", **{"evil.py": b"import os"}),
             "unexpected member")
    _rejects(_with(saved, tmp_path, "c.npz", optimizer_00100=extra), "unexpected member")


def test_duplicate_member(saved: Dict[str, Any], tmp_path: Path) -> None:
    p = tmp_path / "dup.npz"
    with pytest.warns(UserWarning):  # zipfile warns about the duplicate name
        with zipfile.ZipFile(p, "w") as z:
            for name, data in saved["members"].items():
                z.writestr(name, data)
            z.writestr("weight_00000.npy", saved["members"]["weight_00000.npy"])
    _rejects(p, "duplicate")


@pytest.mark.parametrize("descr,payload_item", [
    ("<U3", 12), ("|S4", 4), ("<M8[ns]", 8), ("<c8", 8), ("<c16", 16), ("|b1", 1),
    ("<i4", 4), ("<i8", 8), ("|u1", 1), ("<f16", 16), ("|O", 8), ("[('a', '<f4')]", 4),
    ("(2,)<f4", 8),
])
def test_weight_dtypes_refused(saved: Dict[str, Any], tmp_path: Path, descr: str,
                               payload_item: int) -> None:
    shape = saved["shapes"][0]
    n = int(np.prod(shape))
    if descr.startswith("["):
        descr_v: Any = [("a", "<f4")]
    else:
        descr_v = descr
    data = _npy_raw(descr_v, shape, b"\x00" * (n * payload_item))
    p = _with(saved, tmp_path, weight_00000=data)
    msg = _rejects(p)
    assert "weight" in msg and "dtype" in msg, msg


def test_float_dtypes_accepted_and_cast(saved: Dict[str, Any], tmp_path: Path) -> None:
    w0 = saved["model"].weights[0].value
    for dt in ("<f2", ">f4", "<f8"):
        p = _with(saved, tmp_path, f"{dt[1:]}.npz", weight_00000=_npy(w0.astype(dt)))
        m = load_model(str(p))
        assert m.weights[0].value.dtype == np.float32
        assert m.weights[0].value.flags.c_contiguous and m.weights[0].value.flags.writeable
        np.testing.assert_allclose(m.weights[0].value, w0, rtol=1e-3)
    p = _with(saved, tmp_path, "fortran.npz", weight_00000=_npy(np.asfortranarray(w0)))
    np.testing.assert_array_equal(load_model(str(p)).weights[0].value, w0)


def test_wrong_shapes(saved: Dict[str, Any], tmp_path: Path) -> None:
    _rejects(_with(saved, tmp_path, "a.npz", weight_00000=_npy(np.zeros((3, 17), np.float32))),
             "shape")
    _rejects(_with(saved, tmp_path, "b.npz", weight_00002=_npy(np.zeros((), np.float32))),
             "shape")
    _rejects(_with(saved, tmp_path, "c.npz", optimizer_00001=_npy(np.zeros(5, np.float32))),
             "shape")
    _rejects(_with(saved, tmp_path, "d.npz",
                   optimizer_00000=_npy(np.zeros(2, np.int64))), "iteration")
    _rejects(_with(saved, tmp_path, "e.npz",
                   optimizer_00000=_npy(np.array(-5, np.int64))), "negative")
    _rejects(_with(saved, tmp_path, "f.npz",
                   weight_00000=_npy_raw("<f4", (-3, 16), b"")), "shape")


def test_header_size_disagrees_with_zip_size(saved: Dict[str, Any], tmp_path: Path) -> None:
    good = saved["members"]["weight_00000.npy"]
    _rejects(_with(saved, tmp_path, "a.npz", weight_00000=good + b"\x00" * 64), "declares")
    _rejects(_with(saved, tmp_path, "b.npz", weight_00000=good[:-8]), "declares")


# -- the config ----------------------------------------------------------------------------------
def test_huge_units_rejected_before_allocating(saved: Dict[str, Any], tmp_path: Path) -> None:
    def units(n: int) -> Callable[[Dict[str, Any]], None]:
        def edit(meta: Dict[str, Any]) -> None:
            meta["model"]["layers"][0]["config"]["units"] = n
        return edit

    p = _with(saved, tmp_path, "u1.npz", edit_meta=units(10000))
    _rejects_cheaply(p, "shape")  # the 10000-unit model (~1.6 GB) was never initialised
    _rejects(_with(saved, tmp_path, "u2.npz", edit_meta=units(2 ** 40)), "units")
    _rejects(_with(saved, tmp_path, "u3.npz", edit_meta=units(-1)), "units")
    _rejects(_with(saved, tmp_path, "u4.npz", edit_meta=units("4")), "units")
    _rejects(_with(saved, tmp_path, "u5.npz", edit_meta=units(True)), "units")
    _rejects(_with(saved, tmp_path, "u6.npz", edit_meta=units(4.0)), "units")


def test_huge_weight_meta_with_consistent_config(saved: Dict[str, Any], tmp_path: Path) -> None:
    # config and weight list agree on a 2**25 x 2**26 kernel; the member does not: rejected
    # from the header, nothing allocated.
    def edit(meta: Dict[str, Any]) -> None:
        meta["model"]["build_input_shape"] = [None, 5, 2 ** 25]
        meta["weights"][0]["shape"] = [2 ** 25, 16]
    _rejects_cheaply(_with(saved, tmp_path, edit_meta=edit), "shape")


@pytest.mark.parametrize("name,raw,match", [
    ("nested_list", b"[" * 100000 + b"]" * 100000, "nesting depth"),
    ("nested_obj", b'{"a":' * 50000 + b"1" + b"}" * 50000, "nesting depth"),
    ("unterminated", b"[" * 100000, "nesting depth"),
    ("not_json", b"\x80\x81 not json at all", "corrupted configuration"),
    ("text", b"format_version = 1", "corrupted configuration"),
    ("list", b"[1, 2, 3]", "JSON list"),
    ("number", b"42", "JSON int"),
    ("string", b'"model"', "JSON str"),
    ("null", b"null", "JSON NoneType"),
    ("nan", b'{"format_version": NaN}', "non-finite"),
    ("version", b'{"format_version": 2}', "format version"),
    ("version_bool", b'{"format_version": true}', "format version"),
    ("empty", b"", "corrupted configuration"),
])
def test_bad_json(saved: Dict[str, Any], tmp_path: Path, name: str, raw: bytes,
                  match: str) -> None:
    _rejects(_with(saved, tmp_path, f"{name}.npz", edit_meta=lambda meta: raw), match)


def test_config_member_not_bytes(saved: Dict[str, Any], tmp_path: Path) -> None:
    _rejects(_with(saved, tmp_path, "a.npz", __rnnkit_config__=_npy(np.zeros(4, np.float32))),
             "configuration")
    # declares a 1 GB config: refused from the header
    _rejects(_with(saved, tmp_path, "b.npz",
                   __rnnkit_config__=_npy_raw("|u1", (1 << 30,), b"{}")), "declares")


@pytest.mark.parametrize("edit,match", [
    (lambda m: m["model"]["layers"][0].update(class_name="Lambda"), "unknown layer class"),
    (lambda m: m["model"]["layers"][0].update(class_name="os.system"), "unknown layer class"),
    (lambda m: m["model"]["layers"][0]["config"].update(function="print"), "unknown field"),
    (lambda m: m["model"]["layers"][2]["config"].update(activation="eval"), "activation"),
    (lambda m: m["model"]["layers"][0]["config"].update(
        kernel_initializer={"class_name": "Pickle", "config": {}}), "unknown class"),
    (lambda m: m["model"]["layers"][0]["config"].update(
        kernel_initializer={"class_name": "Orthogonal", "config": {"gain": [1]}}), "gain"),
    (lambda m: m["model"]["layers"][0]["config"].update(dtype="object"), "dtype"),
    (lambda m: m["model"]["layers"][0]["config"].update(name=["x"]), "name"),
    (lambda m: m["model"]["layers"][0]["config"].update(dropout="0.1"), "dropout"),
    (lambda m: m["model"]["layers"][0]["config"].update(seed=-1), "seed"),
    (lambda m: m["model"]["layers"][0].update(config=[1, 2]), "expected an object"),
    (lambda m: m["model"]["layers"].append(5), "class_name"),
    (lambda m: m["model"].update(layers={"a": 1}), "layers"),
    (lambda m: m["model"].update(build_input_shape=[None, 5, 2 ** 40]), "build_input_shape"),
    (lambda m: m["model"].update(build_input_shape="(None, 5, 3)"), "build_input_shape"),
    (lambda m: m["model"].update(build_input_shape=None), "no input shape"),
    (lambda m: m.update(kind="weights"), "not a saved model"),
    (lambda m: m.update(class_name="Functional"), "unknown field"),  # a Sequential config
    (lambda m: m.update(class_name="Dense"), "not a saved model"),
    (lambda m: m.update(extra=1), "unknown field"),
    (lambda m: m.update(weights=None), "weights"),
    (lambda m: m["weights"].pop(), "weight arrays"),
    (lambda m: m["weights"][0].update(shape=[3, "16"]), "shape"),
    (lambda m: m["weights"][0].update(dtype="object"), "dtype"),
    (lambda m: m["compile"].update(optimizer={"class_name": "Evil", "config": {}}),
     "unknown class"),
    (lambda m: m["compile"].update(optimizer="adafactor"), "unknown name"),
    (lambda m: m["compile"]["optimizer"]["config"].update(beta_1={"x": 1}), "beta_1"),
    (lambda m: m["compile"]["optimizer"]["config"].update(bogus=1), "unknown field"),
    (lambda m: m["compile"]["optimizer"]["config"].update(clipnorm="1"), "clipnorm"),
    (lambda m: m["compile"].update(loss={"class_name": "MeanSquaredError",
                                         "config": {"reduction": "evil"}}), "reduction"),
    (lambda m: m["compile"].update(loss={"class_name": "MeanSquaredError",
                                         "config": {"from_logits": True}}), "compile config"),
    (lambda m: m["compile"].update(metrics=["__import__"]), "unknown metric"),
    (lambda m: m["compile"].update(optimizer_state="yes"), "optimizer_state"),
    (lambda m: m["compile"]["optimizer"].update(class_name="SGD"), "compile config"),
    (lambda m: m["compile"].update(optimizer={"class_name": "SGD",
                                              "config": {"momentum": 0.9}}),
     "unexpected member"),
    (lambda m: m["compile"].update(optimizer="sgd"), "unexpected member"),
])
def test_bad_config_fields(saved: Dict[str, Any], tmp_path: Path, edit: Any,
                           match: str) -> None:
    _rejects(_with(saved, tmp_path, edit_meta=edit), match)


def test_too_many_layers(saved: Dict[str, Any], tmp_path: Path) -> None:
    def edit(meta: Dict[str, Any]) -> None:
        dense = {"class_name": "Dense", "config": {"units": 2}}
        meta["model"]["layers"] = [dense] * (saving.MAX_LAYERS + 1)
    _rejects(_with(saved, tmp_path, edit_meta=edit), "layers")


def test_nested_wrappers_within_depth_limit_still_load(tmp_path: Path) -> None:
    m = Sequential([L.Input((4, 3)), L.Bidirectional(L.LSTM(2, return_sequences=True)),
                    L.TimeDistributed(L.Dense(3)), L.GRU(2)])
    m.save(str(tmp_path / "n.npz"))
    m2 = load_model(str(tmp_path / "n.npz"))
    x = np.random.default_rng(1).normal(size=(2, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(m.predict(x, verbose=0), m2.predict(x, verbose=0))


# -- zip bombs and lying sizes ----------------------------------------------------------------
def _write_with_streamed_weight(saved: Dict[str, Any], path: Path, head: bytes,
                                zero_mib: int) -> None:
    """Writes ``saved``'s archive to ``path`` (deflated) with ``weight_00000.npy`` replaced by
    ``head`` followed by ``zero_mib`` MiB of zeros, streamed so the test never holds them."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in saved["members"].items():
            if name != "weight_00000.npy":
                z.writestr(name, data)
        with z.open("weight_00000.npy", "w") as f:
            f.write(head)
            zeros = bytes(1 << 20)
            for _ in range(zero_mib):
                f.write(zeros)


def test_zip_bomb_member_rejected_without_reading(saved: Dict[str, Any], tmp_path: Path) -> None:
    # weight_00000 inflates to 128 MB of zeros (~130 KB on disk) and says so in its header.
    p = tmp_path / "bomb.npz"
    n = 32 << 20
    _write_with_streamed_weight(saved, p, _npy_raw("<f4", (n,), b""), n * 4 >> 20)
    assert p.stat().st_size < 1 << 20
    _rejects_cheaply(p, "shape")


def _patch_sizes(data: bytes, member: str, file_size: int) -> bytes:
    """Rewrite ``member``'s uncompressed size in its local header and central directory."""
    out = bytearray(data)
    name = member.encode()
    for sig, size_off, name_len_off, name_off in ((b"PK\x03\x04", 22, 26, 30),
                                                  (b"PK\x01\x02", 24, 28, 46)):
        pos = out.find(sig)
        while pos >= 0:
            (nlen,) = struct.unpack_from("<H", out, pos + name_len_off)
            if bytes(out[pos + name_off:pos + name_off + nlen]) == name:
                struct.pack_into("<I", out, pos + size_off, file_size)
            pos = out.find(sig, pos + 4)
    return bytes(out)


def test_zip_that_lies_about_sizes(saved: Dict[str, Any], tmp_path: Path) -> None:
    # A deflated member whose stream inflates to 64 MB while the zip directory declares the
    # small size its header implies: reading stops at the declared size (CRC then fails).
    shape = saved["shapes"][0]
    header = _npy_raw("<f4", shape, b"")
    honest = len(header) + 4 * int(np.prod(shape))
    p = tmp_path / "liar.npz"
    _write_with_streamed_weight(saved, p, header, 64)
    p.write_bytes(_patch_sizes(p.read_bytes(), "weight_00000.npy", honest))
    _rejects_cheaply(p, "weight_00000")
    # ... and a directory that declares 3 GB for a member of a few bytes
    p2 = tmp_path / "liar2.npz"
    p2.write_bytes(_patch_sizes(saved["bytes"], "weight_00001.npy", 3 << 30))
    _rejects(p2, "weight_00001")


def test_unsupported_compression_and_encryption(saved: Dict[str, Any], tmp_path: Path) -> None:
    _rejects(_write(tmp_path / "bz.npz", saved["members"], zipfile.ZIP_BZIP2), "compression")
    data = bytearray(saved["bytes"])
    pos = data.find(b"PK\x01\x02")
    data[pos + 8] |= 1  # "encrypted" flag in the first central-directory entry
    (tmp_path / "enc.npz").write_bytes(bytes(data))
    _rejects(tmp_path / "enc.npz", "encrypted")


def test_deflated_file_of_our_own_loads(saved: Dict[str, Any], tmp_path: Path) -> None:
    p = _write(tmp_path / "deflated.npz", saved["members"], zipfile.ZIP_DEFLATED)
    m2 = load_model(str(p))
    np.testing.assert_array_equal(m2.weights[1].value, saved["model"].weights[1].value)


# -- property-style: many truncations and byte flips ------------------------------------------
def _load_or_value_error(path: Path, shapes: list) -> str:
    try:
        m = load_model(str(path))
    except ValueError as e:
        assert str(path) in str(e), str(e)
        return "rejected"
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"{type(e).__name__} escaped: {e}")
    assert [w.shape for w in m.weights] == shapes
    assert all(w.value.flags.writeable for w in m.weights)
    return "loaded"


def test_truncations_and_byte_flips(saved: Dict[str, Any], tmp_path: Path) -> None:
    data = saved["bytes"]
    rng = random.Random(20240613)
    variants = []
    for k in range(1, 121):  # truncations spread over the whole file, plus the last bytes
        variants.append(data[: len(data) * k // 121])
    variants += [data[:-k] for k in (1, 2, 4, 10, 22, 23, 46, 100)]
    cd = data.find(b"PK\x01\x02")
    for i in range(300):
        b = bytearray(data)
        region = rng.choice(["anywhere", "central", "local", "tail"])
        lo, hi = {"anywhere": (0, len(b)), "central": (cd, len(b)), "local": (0, 120),
                  "tail": (len(b) - 22, len(b))}[region]
        for _ in range(rng.choice([1, 1, 2, 3, 8])):
            pos = rng.randrange(lo, hi)
            b[pos] = rng.randrange(256) if i % 3 else b[pos] ^ (1 << rng.randrange(8))
        variants.append(bytes(b))
    p = tmp_path / "fuzz.npz"
    outcomes = {"rejected": 0, "loaded": 0}
    for v in variants:
        p.write_bytes(v)
        outcomes[_load_or_value_error(p, saved["shapes"])] += 1
    assert outcomes["rejected"] > len(variants) // 2, outcomes


def test_config_mutations(saved: Dict[str, Any], tmp_path: Path) -> None:
    """Valid zips whose JSON config is mutated (values swapped for other JSON values, bytes
    changed or cut): the schema and the shape checks reject them with ValueError, or the
    model loads with the saved shapes."""
    text = json.dumps(saved["meta"]).encode()
    tokens = [b"0", b"-1", b"null", b"true", b"[]", b"{}", b'"x"', b"1e400", b"[1, 2]",
              b"99999999999", b"0.5", b'"relu"', b'"LSTM"', b'{"class_name": "Dense"}']
    rng = random.Random(11)
    p = tmp_path / "cfg.npz"
    outcomes = {"rejected": 0, "loaded": 0}
    for i in range(150):
        t = bytearray(text)
        pos = rng.randrange(len(t))
        if i % 3 == 0:
            t[pos] = rng.choice(b'0123456789[]{}":,.-tfn ')
        elif i % 3 == 1:  # replace the value after a colon
            q = t.find(b":", pos)
            e = q + 1
            while q >= 0 and e < len(t) and t[e] not in b",}]":
                e += 1
            if q >= 0:
                t[q + 1:e] = b" " + rng.choice(tokens)
        else:
            del t[pos:pos + rng.randrange(1, 20)]
        _with(saved, tmp_path, "cfg.npz", edit_meta=lambda meta: bytes(t))
        outcomes[_load_or_value_error(p, saved["shapes"])] += 1
    assert outcomes["rejected"] > 100, outcomes


def test_load_weights_byte_flips(saved: Dict[str, Any], tmp_path: Path) -> None:
    m = saved["model"]
    p = tmp_path / "w.npz"
    m.save_weights(str(p))
    data = p.read_bytes()
    before = m.get_weights()
    rng = random.Random(7)
    for i in range(120):
        b = bytearray(data)
        if i % 4 == 0:
            b = b[: rng.randrange(len(b))]
        else:
            b[rng.randrange(len(b))] = rng.randrange(256)
        p.write_bytes(bytes(b))
        try:
            m.load_weights(str(p))
        except ValueError as e:
            assert str(p) in str(e)
            for a, w in zip(before, m.get_weights()):  # a rejected file changes nothing
                np.testing.assert_array_equal(a, w)
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{type(e).__name__} escaped: {e}")
        m.set_weights(before)


def test_loading_never_runs_code(saved: Dict[str, Any], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import pickle

    def forbidden(*a: Any, **k: Any) -> Any:
        raise AssertionError("loading must not evaluate, unpickle or import by name")

    p = _with(saved, tmp_path, weight_00000=_npy_raw("|O", saved["shapes"][0],
                                                     pickle.dumps([1]) * 100))
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    _rejects(p, "pickle")
    load_model(str(saved["path"]))  # the intact file loads with all of them forbidden
