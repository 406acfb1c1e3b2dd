"""Argument checking of the functional kernels: every rejection (exact type and message) and the
accepted variations (lists, ints, mixed dtypes, any memory layout, NaN, training=False).

Problem size for the rejections: B=3, T=5, I=4, H=6, so e.g. the LSTM kernel is (4, 24);
LSTMP has P=3 (_cases.proj_size): recurrent_kernel (3, 24), projection_kernel (6, 3), h0 (3, 3).
"""
from __future__ import annotations

import re
from typing import Any, Dict

import numpy as np
import pytest

from rnnkit import cells

from _cases import CELL_VARIANTS, GATES, backward, forward, make_problem, proj_size

B, T, I, H = 3, 5, 4, 6
P = proj_size("lstmp", H)  # 3
TWO_STATES = ("lstm", "lstmp")


def _width(cell: str) -> int:
    """The width of h: H, or P for the projected LSTMP."""
    return P if cell == "lstmp" else H
CELL_IDS = [v[0] for v in CELL_VARIANTS]


def _args(cell: str, options: Dict[str, Any]) -> Dict[str, Any]:
    """Valid float64 forward arguments (all given, incl. mask) for one cell variant."""
    p = make_problem(cell, options, batch=B, time=T, features=I, units=H)
    args = {k: p[k] for k in ("x", "kernel", "recurrent_kernel", "bias", "h0")}
    if "projection_kernel" in p:
        args["projection_kernel"] = p["projection_kernel"]
    if "c0" in p:
        args["c0"] = p["c0"]
    args["mask"] = np.ones((B, T), dtype=bool)
    return args


def _call(impl, cell: str, options: Dict[str, Any], args: Dict[str, Any], **extra):
    a = dict(args)
    x, k, r, b = a.pop("x"), a.pop("kernel"), a.pop("recurrent_kernel"), a.pop("bias")
    return forward(impl, cell, x, k, r, b, **a, **options, **extra)


def _raises(exc, msg: str):
    return pytest.raises(exc, match="^" + re.escape(msg) + "$")


def _state_names(cell: str):
    return ["h0", "c0"] if cell in TWO_STATES else ["h0"]


def _with_names(names, variants=CELL_VARIANTS):
    """pytest params (variant, name), leaving out c0 for cells without a cell state and
    projection_kernel for cells without a projection."""
    return [
        pytest.param(v, n, id=f"{v[0]}-{n}")
        for v in variants
        for n in names
        if (n != "c0" or v[1] in TWO_STATES) and (n != "projection_kernel" or v[1] == "lstmp")
    ]


def _bias_layout(cell: str, options) -> str:
    if cell == "gru" and options.get("reset_after", True):
        return "(2, 3*units)"
    return f"({GATES[cell]}*units,)"


# ----------------------------------------------------------------------------- 1. dtypes

BAD_DTYPES = {
    "bool": lambda a: a > 0,
    "complex": lambda a: a.astype(np.complex128),
    "object": lambda a: a.astype(object),
    "str": lambda a: np.full(a.shape, "a"),
    "bytes": lambda a: np.full(a.shape, b"a"),
    "datetime": lambda a: np.zeros(a.shape, dtype="datetime64[s]"),
    "timedelta": lambda a: np.zeros(a.shape, dtype="timedelta64[ms]"),
    "void": lambda a: np.zeros(a.shape, dtype=[("v", "f8")]),
}
ARRAY_NAMES = ["x", "kernel", "recurrent_kernel", "projection_kernel", "bias", "h0", "c0"]


@pytest.mark.parametrize("bad", list(BAD_DTYPES))
@pytest.mark.parametrize("variant, name", _with_names(ARRAY_NAMES))
def test_rejects_non_real_dtype(impl, variant, name, bad):
    _, cell, options = variant
    args = _args(cell, options)
    args[name] = BAD_DTYPES[bad](args[name])
    msg = f"{name} must be a real numeric array; got dtype {args[name].dtype}"
    with _raises(TypeError, msg):
        _call(impl, cell, options, args)


# ----------------------------------------------------------------------------- 2. ndim

def _wrong_ndim(name: str, arr: np.ndarray) -> np.ndarray:
    return arr[0] if arr.ndim >= 2 else arr[None]


@pytest.mark.parametrize("variant, name", _with_names(ARRAY_NAMES + ["mask"]))
def test_rejects_wrong_ndim(impl, variant, name):
    _, cell, options = variant
    g = GATES[cell]
    state = "proj_size" if cell == "lstmp" else "units"
    layouts = {
        "x": (3, "(batch, time, features)"),
        "kernel": (2, f"(features, {g}*units)"),
        "recurrent_kernel": (2, f"({state}, {g}*units)"),
        "projection_kernel": (2, "(units, proj_size)"),
        "bias": (2 if _bias_layout(cell, options).startswith("(2,") else 1, _bias_layout(cell, options)),
        "h0": (2, f"(batch, {state})"),
        "c0": (2, "(batch, units)"),
        "mask": (2, "(batch, time)"),
    }
    args = _args(cell, options)
    args[name] = _wrong_ndim(name, args[name])
    n, layout = layouts[name]
    msg = f"{name} must be a {n}-D array {layout}; got shape {args[name].shape}"
    with _raises(ValueError, msg):
        _call(impl, cell, options, args)


@pytest.mark.parametrize("cell, msg", [
    ("simple_rnn", "kernel must be a 2-D array (features, 1*units); got shape (4,)"),
    ("lstm", "kernel must be a 2-D array (features, 4*units); got shape (4,)"),
    ("gru", "kernel must be a 2-D array (features, 3*units); got shape (4,)"),
])
def test_ndim_message_literal(impl, cell, msg):
    args = _args(cell, {})
    args["kernel"] = np.zeros(4)
    with _raises(ValueError, msg):
        _call(impl, cell, {}, args)


@pytest.mark.parametrize("reset_after, bias_shape, msg", [
    (True, (18,), "bias must be a 2-D array (2, 3*units); got shape (18,)"),
    (False, (2, 18), "bias must be a 1-D array (3*units,); got shape (2, 18)"),
])
def test_gru_bias_layout_follows_reset_after(impl, reset_after, bias_shape, msg):
    options = {"reset_after": reset_after}
    args = _args("gru", options)
    args["bias"] = np.zeros(bias_shape)
    with _raises(ValueError, msg):
        _call(impl, "gru", options, args)


# ----------------------------------------------------------------------------- 3. empty

@pytest.mark.parametrize("shape", [(0, T, I), (B, 0, I), (B, T, 0)], ids=["B0", "T0", "I0"])
@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=CELL_IDS)
def test_rejects_empty_x(impl, variant, shape):
    _, cell, options = variant
    args = _args(cell, options)
    args["x"] = np.zeros(shape)
    with _raises(ValueError, f"x must have nonzero batch, time and feature sizes; got shape {shape}"):
        _call(impl, cell, options, args)


@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=CELL_IDS)
def test_rejects_zero_units(impl, variant):
    _, cell, options = variant
    args = _args(cell, options)
    args["recurrent_kernel"] = np.zeros((0, 0))
    with _raises(ValueError, "recurrent_kernel must have at least one unit; got shape (0, 0)"):
        _call(impl, cell, options, args)


# ----------------------------------------------------------------------------- 4. shapes

@pytest.mark.parametrize(
    "variant, name", _with_names(["projection_kernel", "recurrent_kernel", "kernel", "bias",
                                  "h0", "c0", "mask"])
)
def test_rejects_wrong_shape(impl, variant, name):
    _, cell, options = variant
    g = GATES[cell]
    two_biases = cell == "gru" and options.get("reset_after", True)
    s = _width(cell)
    expected = {
        "projection_kernel": (H, P),
        "recurrent_kernel": (s, g * H),
        "kernel": (I, g * H),
        "bias": (2, 3 * H) if two_biases else (g * H,),
        "h0": (B, s),
        "c0": (B, H),
        "mask": (B, T),
    }[name]
    # Off by one in every axis; recurrent_kernel keeps its first axis, which defines the
    # width of h (H, or LSTMP's P), and projection_kernel its first, which defines H.
    wrong = tuple(n + 1 for n in expected)
    if name == "recurrent_kernel":
        wrong = (s, g * H + 1)
    if name == "projection_kernel":
        wrong = (H, P + 1)
    args = _args(cell, options)
    args[name] = np.ones(wrong, dtype=bool if name == "mask" else np.float64)
    with _raises(ValueError, f"{name} must have shape {expected}; got {wrong}"):
        _call(impl, cell, options, args)


def test_shape_message_literal(impl):
    args = _args("lstm", {})
    args["kernel"] = np.zeros((5, 24))
    with _raises(ValueError, "kernel must have shape (4, 24); got (5, 24)"):
        _call(impl, "lstm", {}, args)


def test_units_come_from_recurrent_kernel(impl):
    # recurrent_kernel (6, 25): H = 6, so it is the one reported, before the matching kernel.
    args = _args("simple_rnn", {})
    args["recurrent_kernel"] = np.zeros((6, 7))
    args["kernel"] = np.zeros((4, 7))
    with _raises(ValueError, "recurrent_kernel must have shape (6, 6); got (6, 7)"):
        _call(impl, "simple_rnn", {}, args)


def test_check_order(impl):
    args = _args("lstm", {})
    # dtype (1) before ndim (2): a bool 2-D x is a TypeError.
    bad = dict(args, x=args["x"][0] > 0)
    with _raises(TypeError, "x must be a real numeric array; got dtype bool"):
        _call(impl, "lstm", {}, bad)
    # ndim (2) before empty (3).
    bad = dict(args, x=np.zeros((0, 5, 4)), kernel=np.zeros(3))
    with _raises(ValueError, "kernel must be a 2-D array (features, 4*units); got shape (3,)"):
        _call(impl, "lstm", {}, bad)
    # empty (3) before shapes (4).
    bad = dict(args, x=np.zeros((3, 0, 4)), kernel=np.zeros((9, 24)))
    with _raises(ValueError, "x must have nonzero batch, time and feature sizes; got shape (3, 0, 4)"):
        _call(impl, "lstm", {}, bad)
    # shapes in order recurrent_kernel, kernel, bias, h0, c0, mask.
    bad = dict(args, kernel=np.zeros((9, 24)), bias=np.zeros(5), h0=np.zeros((1, 6)))
    with _raises(ValueError, "kernel must have shape (4, 24); got (9, 24)"):
        _call(impl, "lstm", {}, bad)
    bad = dict(args, c0=np.zeros((1, 6)), mask=np.ones((1, 1), dtype=bool))
    with _raises(ValueError, "c0 must have shape (3, 6); got (1, 6)"):
        _call(impl, "lstm", {}, bad)
    # dtypes of all arrays before any shape.
    bad = dict(args, kernel=np.zeros((9, 24)), h0=args["h0"].astype(np.complex64))
    with _raises(TypeError, "h0 must be a real numeric array; got dtype complex64"):
        _call(impl, "lstm", {}, bad)


# ----------------------------------------------------------------------------- 5. mask dtype

@pytest.mark.parametrize("bad", ["complex", "object", "str", "bytes", "datetime", "void"])
@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=CELL_IDS)
def test_rejects_mask_dtype(impl, variant, bad):
    _, cell, options = variant
    args = _args(cell, options)
    args["mask"] = BAD_DTYPES[bad](np.ones((B, T)))
    with _raises(TypeError, f"mask must be a boolean or numeric array; got dtype {args['mask'].dtype}"):
        _call(impl, cell, options, args)


def test_mask_dtype_checked_before_its_shape(impl):
    args = _args("gru", {})
    args["mask"] = np.ones(7, dtype=np.complex128)  # wrong ndim AND dtype
    with _raises(TypeError, "mask must be a boolean or numeric array; got dtype complex128"):
        _call(impl, "gru", {}, args)


# ----------------------------------------------------------------------------- 6. activation

# The one wording of a rejected activation / recurrent_activation (ops and reference alike).
ACTIVATION_NAMES = ("'tanh', 'sigmoid', 'hard_sigmoid', 'hard_sigmoid_keras2', 'relu', 'relu6', "
                    "'elu', 'selu', 'softsign', 'softplus', 'linear', 'silu', 'gelu'")


def _activation_msg(param: str, value: Any) -> str:
    return f"{param} must be one of {ACTIVATION_NAMES} or None; got {value!r}"


@pytest.mark.parametrize("activation", ["softmax", "Tanh", "", 3])
def test_rejects_activation(impl, activation):
    args = _args("simple_rnn", {})
    msg = _activation_msg("activation", activation)
    with _raises(ValueError, msg):
        _call(impl, "simple_rnn", {"activation": activation}, args)


@pytest.mark.parametrize("param", ["activation", "recurrent_activation"])
@pytest.mark.parametrize("activation", ["softmax", "Sigmoid", "", 3, b"tanh", True])
@pytest.mark.parametrize("variant", [v for v in CELL_VARIANTS if v[1] != "simple_rnn"],
                         ids=[v[0] for v in CELL_VARIANTS if v[1] != "simple_rnn"])
def test_rejects_gate_activation(impl, variant, activation, param):
    _, cell, options = variant
    args = _args(cell, options)
    with _raises(ValueError, _activation_msg(param, activation)):
        _call(impl, cell, {**options, param: activation}, args)


def _simple_rnn_oracle(args: Dict[str, Any], activation) -> Dict[str, np.ndarray]:
    """h_t = act(x_t K + b + h_{t-1} R) written out (the mask of _args keeps every step)."""
    act = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0),
           "linear": lambda a: a, None: lambda a: a}[activation]
    h = args["h0"]
    ys = []
    for t in range(args["x"].shape[1]):
        h = act(args["x"][:, t] @ args["kernel"] + args["bias"] + h @ args["recurrent_kernel"])
        ys.append(h)
    return {"y": np.stack(ys, axis=1), "h_last": h}


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear", None])
def test_accepts_activation(impl, activation):
    args = _args("simple_rnn", {})
    assert args["mask"].all()
    outs, _ = _call(impl, "simple_rnn", {"activation": activation}, args)
    want = _simple_rnn_oracle(args, activation)
    for k in ("y", "h_last"):
        np.testing.assert_allclose(outs[k], want[k], rtol=1e-12, atol=1e-12, err_msg=k)
    # The activations really differ on this problem (relu clips, tanh bends).
    others = {"tanh", "relu", "linear"} - {activation or "linear"}
    for other in others:
        assert not np.allclose(outs["y"], _simple_rnn_oracle(args, other)["y"]), other


@pytest.mark.parametrize("activation", ["Tanh", None])
def test_activation_none_is_linear_and_case_matters(impl, activation):
    args = _args("simple_rnn", {})
    if activation is None:
        got, _ = _call(impl, "simple_rnn", {"activation": None}, args)
        want, _ = _call(impl, "simple_rnn", {"activation": "linear"}, args)
        np.testing.assert_array_equal(got["y"], want["y"])
    else:
        with pytest.raises(ValueError):
            _call(impl, "simple_rnn", {"activation": activation}, args)


@pytest.mark.parametrize("activation", [b"tanh", ["tanh"], np.tanh, 1.5, True])
def test_rejects_non_str_activation(impl, activation):
    args = _args("simple_rnn", {})
    msg = _activation_msg("activation", activation)
    with _raises(ValueError, msg):
        _call(impl, "simple_rnn", {"activation": activation}, args)


# ----------------------------------------------------------------------------- 7. cache

# Each cell's "other" cell: the next one in rnnkit.cells' order.
OTHER_CELL = {c: cells.CELL_NAMES[(i + 1) % len(cells.CELL_NAMES)]
              for i, c in enumerate(cells.CELL_NAMES)}
# How messages name a cell's cache: the reference's class names (rnnkit.ops has one cache
# class, ForwardCache, and names its caches after their cell the same way).
CACHE_NAME = {c: cells.CELLS[c].cache_class for c in cells.CELL_NAMES}


@pytest.mark.parametrize("kind", ["none", "object", "dict", "other_cell"])
@pytest.mark.parametrize("cell", cells.CELL_NAMES)
def test_rejects_bad_cache(impl, cell, kind):
    if kind == "other_cell":
        other = OTHER_CELL[cell]
        _, cache = _call(impl, other, {}, _args(other, {}))
    else:
        cache = {"none": None, "object": object(), "dict": {}}[kind]
    got = CACHE_NAME[OTHER_CELL[cell]] if kind == "other_cell" else type(cache).__name__
    msg = f"cache must be the cache returned by {cell}_forward(..., training=True); got {got}"
    with _raises(TypeError, msg):
        backward(impl, cell, cache)


@pytest.mark.parametrize("cell", cells.CELL_NAMES)
def test_rejects_uninitialised_cache(impl, cell):
    _, cache = _call(impl, cell, {}, _args(cell, {}))
    blank = type(cache).__new__(type(cache))  # no forward call made it
    msg = (f"cache must be the cache returned by {cell}_forward(..., training=True); "
           f"got an uninitialised {CACHE_NAME[cell]}")
    with _raises(TypeError, msg):
        backward(impl, cell, blank)
    backward(impl, cell, cache)  # the real one still works


# ----------------------------------------------------------------------------- 0. flags

FLAGS = {c: ["go_backwards"] + (["reset_after"] if cells.CELLS[c].has_reset_after else [])
         + ["training"] for c in cells.CELL_NAMES}
CELL_FLAGS = [pytest.param(c, f, id=f"{c}-{f}") for c in FLAGS for f in FLAGS[c]]


@pytest.mark.parametrize("value", ["no", "False", "", 1, 0, 1.0, None, np.int64(1), [True],
                                   np.array(True), np.array([True])],
                         ids=lambda v: f"{type(v).__name__}-{v!r}")
@pytest.mark.parametrize("cell, flag", CELL_FLAGS)
def test_rejects_non_bool_flag(impl, cell, flag, value):
    # reset_after="False" once ran as reset_after=True in the reference.
    with _raises(TypeError, f"{flag} must be a bool; got {type(value).__name__}"):
        _call(impl, cell, {}, _args(cell, {}), **{flag: value})


@pytest.mark.parametrize("cell, flag", CELL_FLAGS)
def test_accepts_numpy_bool_flag(impl, cell, flag):
    args = _args(cell, {})
    if flag == "reset_after":
        args["bias"] = None  # its layout depends on reset_after
    for value in (True, False):
        want = _call(impl, cell, {}, args, **{flag: value})[0]
        got = _call(impl, cell, {}, args, **{flag: np.bool_(value)})[0]
        _assert_same(got, want)


def test_flags_checked_before_arrays(impl):
    with _raises(TypeError, "go_backwards must be a bool; got str"):
        impl.gru_forward(None, None, None, go_backwards="yes")
    with _raises(TypeError, "reset_after must be a bool; got str"):
        impl.gru_forward(None, None, None, reset_after="False")
    with _raises(TypeError, "training must be a bool; got NoneType"):
        impl.lstm_forward(None, None, None, training=None)


# ----------------------------------------------------------------------------- ragged lists

RAGGED = [[[1.0], [2.0, 3.0]]]


def _ragged_message(name: str, value: Any) -> str:
    try:
        np.asarray(value)
    except ValueError as e:
        numpy_msg = str(e)
    return (f"{name} must be array-like with a regular shape; got {type(value).__name__} "
            f"that NumPy cannot convert ({numpy_msg})")


@pytest.mark.parametrize("variant, name", _with_names(ARRAY_NAMES + ["mask"]))
def test_rejects_ragged_list(impl, variant, name):
    _, cell, options = variant
    args = _args(cell, options)
    args[name] = RAGGED
    with _raises(ValueError, _ragged_message(name, RAGGED)):
        _call(impl, cell, options, args)


def test_ragged_checked_before_dtypes(impl):
    # Every argument is converted before any dtype is looked at.
    args = _args("lstm", {})
    bad = dict(args, x=args["x"].astype(complex), mask=RAGGED)
    with _raises(ValueError, _ragged_message("mask", RAGGED)):
        _call(impl, "lstm", {}, bad)


# ----------------------------------------------------------------------------- sizes

def _nothing(*shape: int) -> np.ndarray:
    """A read-only int8 array of any size that allocates nothing (all strides 0)."""
    return np.broadcast_to(np.int8(0), shape)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_rejects_sizes_overflowing_int64(impl, cell):
    g = GATES[cell]
    x, k, r = _nothing(2**40, 2**20, 1), _nothing(1, g), _nothing(1, g)
    msg = ("x and recurrent_kernel are too large: batch=1099511627776, time=1048576, "
           "features=1, units=1 overflow 64-bit sizes")
    with _raises(ValueError, msg):
        forward(impl, cell, x, k, r)
    # units: the weights alone (I + H) * G*H elements overflow
    h = 2**30
    with _raises(ValueError, f"x and recurrent_kernel are too large: batch=1, time=1, "
                             f"features=1, units={h} overflow 64-bit sizes"):
        forward(impl, cell, _nothing(1, 1, 1), _nothing(1, g * h), _nothing(h, g * h))


def test_shape_message_exact_beyond_int64(impl):
    # 4 * 2**62 does not fit in an int64: the expected shape is still printed exactly.
    msg = ("recurrent_kernel must have shape (4611686018427387904, 18446744073709551616); "
           "got (4611686018427387904, 1)")
    with _raises(ValueError, msg):
        impl.lstm_forward(_nothing(1, 1, 1), _nothing(1, 4), _nothing(2**62, 1))


def test_copy_that_cannot_be_allocated_is_memory_error(impl):
    # 2**46 float32 = 256 TiB: beyond any x86-64/aarch64 user address space, so the copy
    # fails at once even where the kernel overcommits memory.
    x = _nothing(2**46, 1, 1)
    msg = ("not enough memory to copy x: a C-contiguous float32 array of shape "
           "(70368744177664, 1, 1) needs 281474976710656 bytes")
    with _raises(MemoryError, msg):
        impl.simple_rnn_forward(x, np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32))


# ----------------------------------------------------------------------------- 8. upstream grads

def _grad_names(cell):
    return ["dy", "dh_last"] + (["dc_last"] if cell in TWO_STATES else [])


def _grad_shape(cell, name):
    """dy (B, T, S), dh_last (B, S), dc_last (B, H); S = _width(cell)."""
    return {"dy": (B, T, _width(cell)), "dh_last": (B, _width(cell)), "dc_last": (B, H)}[name]


CELL_GRAD_NAMES = [
    pytest.param(c, n, id=f"{c}-{n}")
    for c in ("simple_rnn", "lstm", "gru", "lstmp")
    for n in _grad_names(c)
]


@pytest.mark.parametrize("bad", ["bool", "complex", "str", "object", "datetime"])
@pytest.mark.parametrize("cell, name", CELL_GRAD_NAMES)
def test_rejects_upstream_grad_dtype(impl, cell, name, bad):
    _, cache = _call(impl, cell, {}, _args(cell, {}))
    shape = _grad_shape(cell, name)
    up = {name: BAD_DTYPES[bad](np.ones(shape))}
    with _raises(TypeError, f"{name} must be a real numeric array; got dtype {up[name].dtype}"):
        backward(impl, cell, cache, **up)


@pytest.mark.parametrize("cell, name", CELL_GRAD_NAMES)
def test_rejects_upstream_grad_shape(impl, cell, name):
    _, cache = _call(impl, cell, {}, _args(cell, {}))
    expected = _grad_shape(cell, name)
    wrong = expected[:-1]  # e.g. dy (3, 5)
    with _raises(ValueError, f"{name} must have shape {expected}; got {wrong}"):
        backward(impl, cell, cache, **{name: np.ones(wrong)})


@pytest.mark.parametrize("cell, name", CELL_GRAD_NAMES)
def test_rejects_ragged_upstream_grad(impl, cell, name):
    _, cache = _call(impl, cell, {}, _args(cell, {}))
    with _raises(ValueError, _ragged_message(name, RAGGED)):
        backward(impl, cell, cache, **{name: RAGGED})


def test_upstream_grad_message_literal(impl):
    _, cache = _call(impl, "gru", {}, _args("gru", {}))
    with _raises(ValueError, "dy must have shape (3, 5, 6); got (3, 5)"):
        backward(impl, "gru", cache, dy=np.ones((3, 5)))
    # all dtypes before any shape
    with _raises(TypeError, "dh_last must be a real numeric array; got dtype bool"):
        backward(impl, "gru", cache, dy=np.ones((3, 5)), dh_last=np.ones((B, H), dtype=bool))


# ============================================================================= accepted inputs

def _run(impl, cell, options, args, up=None, **extra):
    """Forward + backward; returns (outs, grads)."""
    outs, cache = _call(impl, cell, options, args, **extra)
    up = up or {}
    return outs, backward(impl, cell, cache, **up)


def _upstream(cell, dtype=np.float64):
    p = make_problem(cell, {}, batch=B, time=T, features=I, units=H, seed=1)
    return {k: p[k].astype(dtype) for k in _grad_names(cell)}


def _assert_same(a: Dict[str, np.ndarray], b: Dict[str, np.ndarray], rtol: float = 0.0):
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        scale = max(float(np.abs(b[k]).max()), 1.0)
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=rtol * scale, err_msg=k)


@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=CELL_IDS)
def test_accepts_lists(impl, variant):
    _, cell, options = variant
    args = _args(cell, options)
    up = _upstream(cell)
    want = _run(impl, cell, options, args, up)
    got = _run(impl, cell, options, {k: v.tolist() for k, v in args.items()},
               {k: v.tolist() for k, v in up.items()})
    for g, w in zip(got, want):
        _assert_same(g, w)


@pytest.mark.parametrize("src", [np.int32, np.int64, np.uint8, np.float16], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=CELL_IDS)
def test_int_and_half_inputs_give_float32(impl, variant, src):
    _, cell, options = variant
    args = _args(cell, options)
    # |v| * 4 so that unsigned types hold the values exactly (no wrap-around).
    conv = {k: (np.abs(v) * 4).astype(src) if k != "mask" else v for k, v in args.items()}
    up = _upstream(cell)
    got = _run(impl, cell, options, conv, up)
    want = _run(impl, cell, options,
                {k: v.astype(np.float32) if k != "mask" else v for k, v in conv.items()},
                {k: v.astype(np.float32) for k, v in up.items()})
    for g, w in zip(got, want):
        for v in g.values():
            assert v.dtype == np.float32
        _assert_same(g, w)


@pytest.mark.parametrize("variant, f64_arg", _with_names(ARRAY_NAMES + ["none"]))
def test_result_dtype(impl, variant, f64_arg):
    _, cell, options = variant
    args = _args(cell, options)
    mixed = {k: v if k in (f64_arg, "mask") else v.astype(np.float32) for k, v in args.items()}
    dtype = np.float32 if f64_arg == "none" else np.float64
    outs, grads = _run(impl, cell, options, mixed, _upstream(cell, np.float32))
    for k, v in list(outs.items()) + list(grads.items()):
        assert v.dtype == dtype, k
    if dtype == np.float64:  # everything is converted to float64 before computing
        want = _run(impl, cell, options,
                    {k: v.astype(np.float64) if k != "mask" else v for k, v in mixed.items()},
                    _upstream(cell, np.float32))
        _assert_same(outs, want[0], 1e-13)
        _assert_same(grads, want[1], 1e-13)
    else:  # computed in float32, close to the float64 result
        want = _run(impl, cell, options, args, _upstream(cell))
        for k in outs:
            np.testing.assert_allclose(outs[k], want[0][k], rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=CELL_IDS)
def test_non_native_byte_order(impl, variant):
    # '>f8' is float64 (the result dtype), '>f4' float32, as their native twins.
    _, cell, options = variant
    args = _args(cell, options)
    up = _upstream(cell)
    for dtype in (np.float64, np.float32):
        native = {k: v.astype(dtype) if k != "mask" else v for k, v in args.items()}
        swapped = {k: v.astype(np.dtype(dtype).newbyteorder(">")) if k != "mask" else v
                   for k, v in args.items()}
        want = _run(impl, cell, options, native, up)
        got = _run(impl, cell, options, swapped, up)
        for g, w in zip(got, want):
            _assert_same(g, w)


def _layouts(a: np.ndarray) -> Dict[str, np.ndarray]:
    """The same values as ``a`` in other memory layouts."""
    spread = np.zeros(tuple(2 * n for n in a.shape), dtype=a.dtype)
    sliced = spread[tuple(slice(None, None, 2) for _ in a.shape)]
    sliced[...] = a
    flipped = np.flip(np.flip(a, 0).copy(), 0)  # negative strides
    return {"fortran": np.asfortranarray(a), "sliced": sliced, "flipped": flipped}


@pytest.mark.parametrize("layout", ["fortran", "sliced", "flipped"])
@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=CELL_IDS)
def test_any_memory_layout(impl, variant, layout):
    _, cell, options = variant
    args = _args(cell, options)
    args["mask"] = np.arange(B * T).reshape(B, T) % 4 != 1
    up = _upstream(cell)
    want = _run(impl, cell, options, args, up, go_backwards=True)
    odd_args = {k: _layouts(v)[layout] for k, v in args.items()}
    odd_up = {k: _layouts(v)[layout] for k, v in up.items()}
    assert not odd_args["x"].flags.c_contiguous
    got = _run(impl, cell, options, odd_args, odd_up, go_backwards=True)
    for g, w in zip(got, want):
        _assert_same(g, w, 1e-13)


@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=CELL_IDS)
def test_outputs_are_fresh_c_contiguous(impl, variant):
    _, cell, options = variant
    args = _args(cell, options)
    args["mask"] = np.zeros((B, T), dtype=bool)  # all masked: h_last equals h0
    up = _upstream(cell)
    outs, grads = _run(impl, cell, options, args, up, go_backwards=True)
    for k, v in list(outs.items()) + list(grads.items()):
        assert v.flags.c_contiguous, k
        for src in list(args.values()) + list(up.values()):
            assert not np.shares_memory(v, src), k
    np.testing.assert_array_equal(outs["y"], 0)
    np.testing.assert_array_equal(outs["h_last"], args["h0"])
    np.testing.assert_array_equal(grads["h0"], up["dh_last"])
    np.testing.assert_array_equal(grads["x"], 0)


@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=CELL_IDS)
def test_numeric_mask_equals_boolean_mask(impl, variant):
    _, cell, options = variant
    args = _args(cell, options)
    keep = np.array([[0, 1, 1, 0, 1], [0, 0, 0, 0, 0], [1, 1, 0, 1, 1]], dtype=bool)
    up = _upstream(cell)
    want = _run(impl, cell, options, dict(args, mask=keep), up)
    for numeric in (keep.astype(np.int64), keep * 2.5, np.where(keep, -1.0, 0.0).astype(np.float32)):
        got = _run(impl, cell, options, dict(args, mask=numeric), up)
        for g, w in zip(got, want):
            _assert_same(g, w)


@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=CELL_IDS)
def test_nan_propagates(impl, variant):
    _, cell, options = variant
    args = _args(cell, options)
    args["x"][0, 2, 1] = np.nan
    outs, cache = _call(impl, cell, options, args)
    y = outs["y"]
    assert np.isnan(y[0, 2:]).all()
    assert np.isfinite(y[0, :2]).all() and np.isfinite(y[1:]).all()
    assert np.isnan(outs["h_last"][0]).all() and np.isfinite(outs["h_last"][1:]).all()
    grads = backward(impl, cell, cache, **_upstream(cell))
    assert np.isnan(grads["kernel"]).any()


@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=CELL_IDS)
def test_inference_mode_returns_no_cache(impl, variant):
    _, cell, options = variant
    args = _args(cell, options)
    outs_train, cache = _call(impl, cell, options, args, training=True)
    outs_inf, no_cache = _call(impl, cell, options, args, training=False)
    assert cache is not None and no_cache is None
    _assert_same(outs_inf, outs_train, 1e-13)


@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=CELL_IDS)
def test_backward_twice_and_default_upstream(impl, variant):
    _, cell, options = variant
    _, cache = _call(impl, cell, options, _args(cell, options))
    up = _upstream(cell)
    first = backward(impl, cell, cache, **up)
    second = backward(impl, cell, cache, **up)
    _assert_same(first, second)
    zero = backward(impl, cell, cache)  # None = zeros
    explicit = backward(impl, cell, cache, **{k: np.zeros_like(v) for k, v in up.items()})
    _assert_same(zero, explicit)
    for v in zero.values():
        np.testing.assert_array_equal(v, 0)


@pytest.mark.parametrize("cell", cells.CELL_NAMES)
def test_bias_key_absent_without_bias(impl, cell):
    args = _args(cell, {})
    args["bias"] = None
    _, grads = _run(impl, cell, {}, args, _upstream(cell))
    assert "bias" not in grads
    projection = ["projection_kernel"] if cell == "lstmp" else []
    assert set(grads) == {"x", "kernel", "recurrent_kernel", *projection, *_state_names(cell)}
