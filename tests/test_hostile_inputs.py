"""Hostile inputs: whatever a caller passes, rnnkit.ops and rnnkit.reference raise the same
exception (exact type, a message naming the argument, the identical text in both modules) or
compute the same result -- never a crash, never a silent wrong answer.

Also: arrays NumPy accepts in any form (memmap, subclass, Fortran order, strided, read-only,
misaligned) give the plain array's results, and editing them (or the mask, h0, c0) in place
between forward and backward does not change the gradients (the cache owns its data); a
daemon thread inside a kernel at interpreter exit does not abort the process.

Run under ASan+UBSan (see the report of the reliability issue) to prove the absence of crashes.
"""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import pytest

import rnnkit.ops as ops
from rnnkit import cells
import rnnkit.reference as reference
from _cases import GATES, backward, forward, make_problem, proj_size

MODULES = {"ops": ops, "reference": reference}
B, T, I, H = 2, 3, 2, 3
P = proj_size("lstmp", H)  # LSTMP's width of h (1)
# (id, cell, options)
CELLS = [
    ("simple_rnn", "simple_rnn", {}),
    ("lstm", "lstm", {}),
    ("gru_after", "gru", {"reset_after": True}),
    ("gru_before", "gru", {"reset_after": False}),
    ("lstmp", "lstmp", {}),
]
TWO_STATES = ("lstm", "lstmp")


def _args(cell: str, options: Dict[str, Any], dtype=np.float64) -> Dict[str, Any]:
    p = make_problem(cell, options, batch=B, time=T, features=I, units=H)
    args = {k: p[k].astype(dtype) for k in ("x", "kernel", "recurrent_kernel", "bias", "h0")}
    if "projection_kernel" in p:
        args["projection_kernel"] = p["projection_kernel"].astype(dtype)
    if "c0" in p:
        args["c0"] = p["c0"].astype(dtype)
    args["mask"] = np.array([[True, False, True], [False, True, True]])
    return args


def _upstream(cell: str, dtype=np.float64) -> Dict[str, np.ndarray]:
    p = make_problem(cell, {}, batch=B, time=T, features=I, units=H, seed=1)
    names = ["dy", "dh_last"] + (["dc_last"] if cell in TWO_STATES else [])
    return {k: p[k].astype(dtype) for k in names}


def _forward(mod, cell, options, args, **extra):
    a = dict(args)
    return forward(mod, cell, a.pop("x"), a.pop("kernel"), a.pop("recurrent_kernel"),
                   a.pop("bias"), **a, **options, **extra)


def _outcome(fn: Callable[[], Any]) -> Tuple[type, str]:
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the type is the point
        return type(e), str(e)
    return type(None), ""


def _names(msg: str, name: str) -> bool:
    return re.search(rf"(^|[^\w]){re.escape(name)}([^\w]|$)", msg) is not None


def _nothing(*shape: int) -> np.ndarray:
    """An int8 array of any size that allocates nothing (all strides 0)."""
    return np.broadcast_to(np.int8(0), shape)


# ============================================================================ rejections

ARRAY_NAMES = ["x", "kernel", "recurrent_kernel", "projection_kernel", "bias", "h0", "c0", "mask"]
REQUIRED = {"x", "kernel", "recurrent_kernel", "projection_kernel"}


class Weird:
    """An object NumPy can only wrap as a 0-d object array."""


def _wrong_types(name: str) -> Dict[str, Any]:
    cases = {"str": "abc", "dict": {"a": 1.0}, "list_of_str": ["a", "b"], "object": Weird(),
             "bytes": b"abc", "set": {1.0, 2.0}}
    if name in REQUIRED:
        cases["None"] = None  # None means "absent" for the optional arrays
    return cases


def _wrong_dtypes(a: np.ndarray) -> Dict[str, np.ndarray]:
    return {
        "complex": a.astype(np.complex64),
        "object": a.astype(object),
        "str": np.full(a.shape, "1.0"),
        "bytes": np.full(a.shape, b"1"),
        "datetime": np.zeros(a.shape, "datetime64[D]"),
        "timedelta": np.zeros(a.shape, "timedelta64[ns]"),
        "structured": np.zeros(a.shape, [("a", "f4"), ("b", "f4")]),
    }


def _wrong_shapes(name: str, a: np.ndarray) -> Dict[str, np.ndarray]:
    out = {"scalar": np.asarray(1.0, a.dtype), "4d": a.reshape((1,) * (4 - a.ndim) + a.shape)
           if a.ndim < 4 else a[None]}
    if a.ndim >= 2:
        out["1d"] = a.reshape(-1)
    if name not in ("recurrent_kernel", "projection_kernel"):
        # recurrent_kernel's first axis defines H (LSTMP: P, and projection_kernel's H)
        out["longer"] = np.concatenate([a, a[..., :1]], axis=-1)
    else:
        out["longer"] = np.concatenate([a, a[:, :1]], axis=1)
    if name == "x":
        out.pop("longer")  # any (B, T, I) x is a valid x; its I then mismatches kernel
        out["features"] = np.zeros((B, T, I + 1))
    return out


def _forward_cases() -> List[Any]:
    cases = []
    for cid, cell, options in CELLS:
        for name in ARRAY_NAMES:
            if name == "c0" and cell not in TWO_STATES:
                continue
            if name == "projection_kernel" and cell != "lstmp":
                continue
            base = _args(cell, options)[name]
            bad: Dict[str, Tuple[Any, type]] = {}
            for k, v in _wrong_types(name).items():
                bad[f"type-{k}"] = (v, TypeError)
            for k, v in _wrong_dtypes(base).items():
                bad[f"dtype-{k}"] = (v, TypeError)
            if name != "mask":
                bad["dtype-bool"] = (base > 0, TypeError)
            for k, v in _wrong_shapes(name, base).items():
                bad[f"shape-{k}"] = (v, ValueError)
            bad["ragged"] = ([[[1.0], [2.0, 3.0]]], ValueError)
            for k, (v, exc) in bad.items():
                cases.append(pytest.param(cell, options, {name: v}, exc,
                                          "kernel" if (name, k) == ("x", "shape-features")
                                          else name, id=f"{cid}-{name}-{k}"))
        g = GATES[cell]
        zero = {
            "B0": ({"x": np.zeros((0, T, I))}, "x"),
            "T0": ({"x": np.zeros((B, 0, I))}, "x"),
            "I0": ({"x": np.zeros((B, T, 0)), "kernel": np.zeros((0, g * H))}, "x"),
            "H0": ({"recurrent_kernel": np.zeros((0, 0))}, "recurrent_kernel"),
        }
        for k, (kw, name) in zero.items():
            cases.append(pytest.param(cell, options, kw, ValueError, name, id=f"{cid}-zero-{k}"))
        huge = {
            "batch_time": {"x": _nothing(2**40, 2**20, 1), "kernel": _nothing(1, g),
                           "recurrent_kernel": _nothing(1, g), "bias": None, "h0": None,
                           "c0": None, "mask": None},
            "units": {"x": _nothing(1, 1, 1), "kernel": _nothing(1, g * 2**30),
                      "recurrent_kernel": _nothing(2**30, g * 2**30), "bias": None,
                      "h0": None, "c0": None, "mask": None},
            "gh_beyond_int64": {"x": _nothing(1, 1, 1), "kernel": _nothing(1, 2**62),
                                "recurrent_kernel": _nothing(2**62, 1), "bias": None,
                                "h0": None, "c0": None, "mask": None},
        }
        for k, kw in huge.items():
            if cell == "lstmp":  # its sizes come from projection_kernel too: tests/test_lstmp.py
                continue
            if cell != "lstm":
                kw = {n: v for n, v in kw.items() if n != "c0"}
            name = "recurrent_kernel" if k == "gh_beyond_int64" else "x"
            cases.append(pytest.param(cell, options, kw, ValueError, name, id=f"{cid}-huge-{k}"))
        cases.append(pytest.param(
            cell, options, {"x": _nothing(2**46, 1, 1), "kernel": np.zeros((1, g * H)),
                            "bias": None, "h0": None, "c0": None, "mask": None}
            if cell in TWO_STATES else
            {"x": _nothing(2**46, 1, 1), "kernel": np.zeros((1, g * H)), "bias": None,
             "h0": None, "mask": None},
            MemoryError, "x", id=f"{cid}-huge-copy"))
        flags = ["go_backwards", "training"] + (["reset_after"] if cell == "gru" else [])
        for flag in flags:
            for k, v in {"str": "False", "int": 1, "None": None, "float": 0.0}.items():
                cases.append(pytest.param(cell, options, {"__flag__": (flag, v)}, TypeError,
                                          flag, id=f"{cid}-flag-{flag}-{k}"))
        if cell == "simple_rnn":
            bad_acts = {"unknown": "softmax", "int": 3, "bytes": b"tanh", "list": ["tanh"]}
            for k, v in bad_acts.items():
                cases.append(pytest.param(cell, options, {"__activation__": v}, ValueError,
                                          "activation", id=f"{cid}-activation-{k}"))
    return cases


FORWARD_CASES = _forward_cases()


def _run_forward_case(mod, cell, options, change):
    args = _args(cell, options)
    extra = {}
    opts = dict(options)
    for k, v in change.items():
        if k == "__flag__":
            flag, value = v
            (opts if flag == "reset_after" else extra)[flag] = value
        elif k == "__activation__":
            opts["activation"] = v
        elif v is None:
            args[k] = None
        else:
            args[k] = v
    return _forward(mod, cell, opts, args, **extra)


@pytest.mark.parametrize("mod", list(MODULES))
@pytest.mark.parametrize("cell, options, change, exc, name", FORWARD_CASES)
def test_forward_rejects(mod, cell, options, change, exc, name):
    with pytest.raises(Exception) as info:
        _run_forward_case(MODULES[mod], cell, options, change)
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"
    assert _names(str(info.value), name), str(info.value)


@pytest.mark.parametrize("cell, options, change, exc, name", FORWARD_CASES)
def test_forward_rejections_identical_in_both_modules(cell, options, change, exc, name):
    got = _outcome(lambda: _run_forward_case(ops, cell, options, change))
    want = _outcome(lambda: _run_forward_case(reference, cell, options, change))
    assert got == want


# ---------------------------------------------------------------------------- backward

OTHER = {"simple_rnn": "lstm", "lstm": "gru", "gru": "lstmp", "lstmp": "simple_rnn"}


def _backward_cases() -> List[Any]:
    cases = []
    for cell in ("simple_rnn", "lstm", "gru", "lstmp"):
        s = P if cell == "lstmp" else H  # the width of h
        for kind in ("None", "object", "dict", "other_cell", "uninitialised", "other_module",
                     "str", "int"):
            cases.append(pytest.param(cell, {"cache": kind}, TypeError, "cache",
                                      id=f"{cell}-cache-{kind}"))
        for name in ["dy", "dh_last"] + (["dc_last"] if cell in TWO_STATES else []):
            shape = {"dy": (B, T, s), "dh_last": (B, s), "dc_last": (B, H)}[name]
            bad = {
                "str": ("abc", TypeError), "dict": ({}, TypeError),
                "list_of_str": (["a"], TypeError), "complex": (np.ones(shape, complex), TypeError),
                "bool": (np.ones(shape, bool), TypeError),
                "object": (np.ones(shape, object), TypeError),
                "datetime": (np.zeros(shape, "datetime64[s]"), TypeError),
                "shape": (np.ones(shape[:-1]), ValueError),
                "longer": (np.ones(shape[:-1] + (shape[-1] + 1,)), ValueError),
                "scalar": (1.0, ValueError),
                "ragged": ([[1.0], [1.0, 2.0]], ValueError),
                "huge": (_nothing(2**40, T, s) if name == "dy" else _nothing(2**40, shape[-1]),
                         ValueError),
            }
            for k, (v, exc) in bad.items():
                cases.append(pytest.param(cell, {name: v}, exc, name, id=f"{cell}-{name}-{k}"))
    return cases


BACKWARD_CASES = _backward_cases()


def _run_backward_case(mod, cell, change):
    args = _args(cell, {})
    _, cache = _forward(mod, cell, {}, args)
    up = {}
    for k, v in change.items():
        if k != "cache":
            up[k] = v
            continue
        if v == "other_cell":
            cache = _forward(mod, OTHER[cell], {}, _args(OTHER[cell], {}))[1]
        elif v == "uninitialised":
            cache = type(cache).__new__(type(cache))
        elif v == "other_module":
            other = reference if mod is ops else ops
            cache = _forward(other, cell, {}, args)[1]
        else:
            cache = {"None": None, "object": object(), "dict": {}, "str": "cache",
                     "int": 0}[v]
    return backward(mod, cell, cache, **up)


@pytest.mark.parametrize("mod", list(MODULES))
@pytest.mark.parametrize("cell, change, exc, name", BACKWARD_CASES)
def test_backward_rejects(mod, cell, change, exc, name):
    with pytest.raises(Exception) as info:
        _run_backward_case(MODULES[mod], cell, change)
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"
    assert _names(str(info.value), name), str(info.value)


@pytest.mark.parametrize("cell, change, exc, name", BACKWARD_CASES)
def test_backward_rejections_identical_in_both_modules(cell, change, exc, name):
    got = _outcome(lambda: _run_backward_case(ops, cell, change))
    want = _outcome(lambda: _run_backward_case(reference, cell, change))
    if change.get("cache") == "other_module":
        # Each module is handed the other's cache and names its class: rnnkit.ops has one
        # cache class for every cell (ForwardCache), the reference one per cell.
        want = (want[0], want[1].replace("got ForwardCache", f"got {CACHE_NAME[cell]}"))
    assert got == want


CACHE_NAME = {c: cells.CELLS[c].cache_class for c in cells.CELL_NAMES}


@pytest.mark.parametrize("cell", cells.CELL_NAMES)
def test_uninitialised_ops_cache_properties_raise(cell):
    _, cache = _forward(ops, cell, {}, _args(cell, {}))
    blank = type(cache).__new__(type(cache))
    for attr in ("shape", "dtype", "nbytes", "go_backwards"):
        with pytest.raises(TypeError, match="uninitialised"):
            getattr(blank, attr)
    base = type(cache)  # ForwardCache, every cell's: its properties refuse foreign objects
    assert base.__name__ == "ForwardCache"
    with pytest.raises(TypeError, match="expected an rnnkit cache; got int"):
        base.__dict__["shape"].fget(42)
    with pytest.raises(TypeError):
        type(cache)()  # no constructor
    with pytest.raises(TypeError):
        type("Sub", (type(cache),), {})  # final: no subclass can fake one
    with pytest.raises(TypeError):
        backward(ops, cell, base.__new__(base))
    assert cache.shape == (B, T, P if cell == "lstmp" else H)  # the real one is untouched


# ============================================================================ odd arrays

class Sub(np.ndarray):
    """An ndarray subclass (NumPy hands the kernels a base-class view of it)."""


def _misaligned(a: np.ndarray) -> np.ndarray:
    buf = np.zeros(a.nbytes + 1, np.uint8)
    m = np.ndarray(a.shape, a.dtype, buffer=buf, offset=1)
    m[...] = a
    return m


def _odd(a: np.ndarray, kind: str, tmp_path, name: str) -> Tuple[np.ndarray, np.ndarray]:
    """(array to pass, array whose in-place edit changes the passed one's data)."""
    if kind == "plain":
        c = a.copy()
        return c, c
    if kind == "memmap":
        m = np.memmap(tmp_path / f"{name}.dat", dtype=a.dtype, mode="w+", shape=a.shape)
        m[...] = a
        return m, m
    if kind == "subclass":
        s = a.copy().view(Sub)
        return s, s
    if kind == "fortran":
        f = np.array(a, order="F", copy=True)
        return f, f
    if kind == "strided":
        big = np.zeros(tuple(2 * n for n in a.shape), a.dtype)
        v = big[tuple(slice(None, None, 2) for _ in a.shape)]
        v[...] = a
        return v, big
    if kind == "readonly":
        base = a.copy()
        ro = base.view()
        ro.flags.writeable = False
        return ro, base
    if kind == "misaligned":
        m = _misaligned(a)
        if a.dtype.itemsize > 1:
            assert not m.flags.aligned
        return m, m
    if kind == "bigendian":
        if a.dtype == bool:
            c = a.copy()
            return c, c
        s = a.astype(a.dtype.newbyteorder(">"))
        return s, s
    raise AssertionError(kind)


KINDS = ["plain", "memmap", "subclass", "fortran", "strided", "readonly", "misaligned",
         "bigendian"]


def _edit(handle: np.ndarray) -> None:
    if handle.dtype == bool:
        handle[...] = ~handle
    else:
        handle[...] = handle * -3.0 + 1.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cid, cell, options", CELLS, ids=[c[0] for c in CELLS])
@pytest.mark.parametrize("mod", list(MODULES))
def test_cache_owns_its_data(tmp_path, mod, cid, cell, options, kind, dtype):
    """Every array argument in an odd form: same results as plain arrays, and editing all of
    them in place between forward and backward changes no gradient."""
    impl = MODULES[mod]
    args = _args(cell, options, dtype)  # never edited
    up = _upstream(cell, dtype)
    want_outs, cache = _forward(impl, cell, options, args, go_backwards=True)
    want = backward(impl, cell, cache, **up)

    passed, handles = {}, []
    for name, a in args.items():
        p, h = _odd(a.copy(), kind, tmp_path, name)
        passed[name] = p
        handles.append(h)
    outs, cache = _forward(impl, cell, options, passed, go_backwards=True)
    for h in handles:
        _edit(h)
    got = backward(impl, cell, cache, **up)
    for k in want_outs:
        np.testing.assert_array_equal(outs[k], want_outs[k], err_msg=k)
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    if mod == "ops" and dtype == np.float64:  # and they are the reference's gradients
        ref_outs, ref_cache = _forward(reference, cell, options, args, go_backwards=True)
        ref = backward(reference, cell, ref_cache, **up)
        for k in ref:
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("name", ["x", "kernel", "recurrent_kernel", "bias", "h0", "c0", "dy",
                                  "dh_last", "dc_last"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_misaligned_equals_aligned(name, dtype):
    """Arrays one byte off their element alignment give the aligned arrays' results."""
    args = _args("lstm", {}, dtype)
    up = _upstream("lstm", dtype)
    want = _forward(ops, "lstm", {}, args)
    want_grads = backward(ops, "lstm", want[1], **up)
    if name in args:
        args[name] = _misaligned(args[name])
        assert not args[name].flags.aligned
    else:
        up[name] = _misaligned(up[name])
        assert not up[name].flags.aligned
    got = _forward(ops, "lstm", {}, args)
    got_grads = backward(ops, "lstm", got[1], **up)
    for k in want[0]:
        np.testing.assert_array_equal(got[0][k], want[0][k], err_msg=k)
    for k in want_grads:
        np.testing.assert_array_equal(got_grads[k], want_grads[k], err_msg=k)


@pytest.mark.parametrize("mod", list(MODULES))
@pytest.mark.parametrize("cid, cell, options", CELLS, ids=[c[0] for c in CELLS])
def test_nan_and_inf_propagate_without_error(mod, cid, cell, options):
    impl = MODULES[mod]
    args = _args(cell, options)
    args["x"][0, 0, 0] = np.nan
    args["x"][1, 2, 1] = np.inf
    args["mask"] = np.array([[1.0, np.nan, 0.0], [2.0, 1.0, 1.0]])  # NaN in a mask = keep
    outs, cache = _forward(impl, cell, options, args)
    grads = backward(impl, cell, cache, **_upstream(cell))
    assert np.isnan(outs["y"][0]).all()  # row 0: NaN from its first step on
    assert not np.isnan(outs["y"][1, :2]).any()
    assert np.isnan(grads["kernel"]).any()


# ============================================================================ shutdown

SHUTDOWN_SCRIPT = textwrap.dedent("""
    import sys, threading, time
    import numpy as np
    import rnnkit.ops as ops
    B, T, I, H, n_threads, wait = (int(a) for a in sys.argv[1:7])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    k = rng.standard_normal((I, 4 * H)).astype(np.float32) * 0.1
    r = rng.standard_normal((H, 4 * H)).astype(np.float32) * 0.1
    def loop():
        while True:
            y, h, c, cache = ops.lstm_forward(x, k, r)
            ops.lstm_backward(cache, dy=y)
    for _ in range(n_threads):
        threading.Thread(target=loop, daemon=True).start()
    time.sleep(wait / 1000)
""")


@pytest.mark.parametrize("attempt", range(4))
@pytest.mark.parametrize("sizes", [(16, 100, 32, 64, 2, 200), (2, 3, 4, 4, 4, 30)],
                         ids=["long-kernels", "tiny-kernels"])
def test_daemon_thread_in_kernel_at_exit(sizes, attempt):
    """The interpreter exits while daemon threads are inside kernels: CPython < 3.14 ends them
    with pthread_exit in PyEval_RestoreThread, which used to unwind through pybind11's
    noexcept gil_scoped_release destructor: std::terminate, SIGABRT. Tiny kernels make many
    threads finish a kernel right as shutdown begins (the race shutdown_guard.cpp closes: in
    a debug build the old check-then-restore aborted 30 times out of 30)."""
    proc = subprocess.run([sys.executable, "-c", SHUTDOWN_SCRIPT, *map(str, sizes)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "terminate" not in proc.stderr and "Aborted" not in proc.stderr, proc.stderr
