"""The C++ optimizer updates (cpp/src/optim/, rnnkit._core.optim_update) against the NumPy
reference formulas (``use_fused_kernels = False``): weights and every slot bitwise equal
after several steps, every kind of cpp/include/rnnkit/optim.def, float32 and float64, sizes
from 0 to ~3M (threaded), every ISA this CPU runs, with weight decay, clipping, EMA and
gradient accumulation; row-sparse gradients; the cases that fall back to NumPy; the
bindings' argument checks."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import rnnkit._core as core
from rnnkit import optimizers as O
from rnnkit.optimizers import _fused
from rnnkit.sparse_grad import SparseRows

#: (optimizer class, config) -> the kind its fused update uses; every kind of optim.def
#: must appear (test_every_kind_is_covered).
CONFIGS: List[Tuple[str, Dict[str, Any], str]] = [
    ("SGD", {}, "sgd"),
    ("SGD", {"momentum": 0.9}, "sgd_momentum"),
    ("SGD", {"momentum": 0.8, "nesterov": True}, "sgd_nesterov"),
    ("Adam", {}, "adam"),
    ("Adam", {"amsgrad": True, "learning_rate": 0.01}, "adam_amsgrad"),
    ("AdamW", {"weight_decay": 0.05}, "adam"),
    ("RMSprop", {}, "rmsprop"),
    ("RMSprop", {"momentum": 0.5}, "rmsprop_momentum"),
    ("RMSprop", {"centered": True}, "rmsprop_centered"),
    ("RMSprop", {"centered": True, "momentum": 0.3}, "rmsprop_centered_momentum"),
    ("Adagrad", {}, "adagrad"),
    ("Adamax", {}, "adamax"),
    ("Nadam", {}, "nadam"),
    ("Lion", {}, "lion"),
    ("Adadelta", {"learning_rate": 1.0}, "adadelta"),
]
#: shared options on top of a config (each changes the path around the kernel)
OPTIONS: List[Dict[str, Any]] = [
    {}, {"weight_decay": 0.1}, {"clipvalue": 0.3}, {"clipnorm": 0.5},
    {"global_clipnorm": 0.7}, {"use_ema": True, "ema_overwrite_frequency": 2},
    {"gradient_accumulation_steps": 2},
]
ISAS = core.build_info()["supported_isas"]


class Spy:
    """Counts rnnkit._core.optim_update calls by kind (installed in optimizers._fused)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kinds: List[str] = []
        real = core.optim_update

        def spy(kind: str, *args: Any, **kwargs: Any) -> None:
            self.kinds.append(kind)
            real(kind, *args, **kwargs)

        monkeypatch.setattr(_fused._core, "optim_update", spy)


def _make(cls: str, kw: Dict[str, Any], fused: bool) -> O.Optimizer:
    opt = O.get({"class_name": cls, "config": dict(kw)})
    opt.use_fused_kernels = fused
    return opt


def _run(cls: str, kw: Dict[str, Any], w0: List[np.ndarray], steps: List[List[Any]],
         fused: bool) -> List[np.ndarray]:
    """Weights and every optimizer variable after applying ``steps``."""
    opt = _make(cls, kw, fused)
    ws = [w.copy() for w in w0]
    for gs in steps:
        opt.apply(gs, ws)
    opt.finalize_variable_values(ws)
    return ws + [np.asarray(v) for v in opt.variables]


def _bitwise(got: List[np.ndarray], ref: List[np.ndarray], what: str) -> None:
    assert len(got) == len(ref), what
    for k, (a, b) in enumerate(zip(got, ref)):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: array {k}"
        if a.tobytes() != b.tobytes():
            bad = np.flatnonzero(a.reshape(-1).view(np.uint8 if a.size == 0 else
                                                    f"u{a.itemsize}")
                                 != b.reshape(-1).view(np.uint8 if b.size == 0 else
                                                       f"u{b.itemsize}"))
            raise AssertionError(f"{what}: array {k} differs at {bad[:5]} "
                                 f"({a.reshape(-1)[bad[:3]]} vs {b.reshape(-1)[bad[:3]]})")


def _problem(shapes: List[Tuple[int, ...]], dtype: Any, n_steps: int = 4, seed: int = 0
             ) -> Tuple[List[np.ndarray], List[List[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    w0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    steps = [[(rng.standard_normal(s) * 0.5).astype(dtype) for s in shapes]
             for _ in range(n_steps)]
    return w0, steps


def test_every_kind_is_covered() -> None:
    assert {k for _, _, k in CONFIGS} == set(core.optim_kinds())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,kw,kind", CONFIGS, ids=[k + str(i) for i, (_, _, k) in
                                                       enumerate(CONFIGS)])
def test_bitwise_equal_small_sizes(cls: str, kw: Dict[str, Any], kind: str, dtype: Any,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    shapes = [(0,), (1,), (7,), (33,), (1000,), (3, 5, 2), ()]
    w0, steps = _problem(shapes, dtype)
    ref = _run(cls, kw, w0, steps, fused=False)
    assert not spy.kinds
    got = _run(cls, kw, w0, steps, fused=True)
    assert spy.kinds and set(spy.kinds) == {kind}
    _bitwise(got, ref, f"{cls} {kw} {np.dtype(dtype).name}")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "plain")
def test_bitwise_equal_with_options_every_isa(options: Dict[str, Any], isa: str) -> None:
    before = core.build_info()["isa"]
    core.select_isa(isa)
    try:
        for dtype in (np.float32, np.float64):
            w0, steps = _problem([(257,), (40, 3), (1,)], dtype, n_steps=5, seed=3)
            for cls, kw, _ in CONFIGS:
                kw = {**kw, **options}
                _bitwise(_run(cls, kw, w0, steps, True), _run(cls, kw, w0, steps, False),
                         f"{isa} {cls} {kw} {np.dtype(dtype).name}")
    finally:
        core.select_isa(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_equal_large_threaded(dtype: Any) -> None:
    """~3M elements: the update is split across the thread team (4 threads here)."""
    before = core.get_num_threads()
    core.set_num_threads(4)
    try:
        w0, steps = _problem([(3_000_017,)], dtype, n_steps=3, seed=5)
        for cls, kw, _ in CONFIGS[1:5] + CONFIGS[9:10] + CONFIGS[12:13]:
            _bitwise(_run(cls, kw, w0, steps, True), _run(cls, kw, w0, steps, False),
                     f"{cls} {kw} {np.dtype(dtype).name} 3M")
        w0, steps = _problem([(131_075,)], dtype, n_steps=3, seed=6)
        for cls, kw, _ in CONFIGS:
            _bitwise(_run(cls, kw, w0, steps, True), _run(cls, kw, w0, steps, False),
                     f"{cls} {kw} {np.dtype(dtype).name} 131075")
    finally:
        core.set_num_threads(before)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_special_values_bitwise() -> None:
    """Zeros of both signs, infinities and NaN in gradients and weights."""
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 3.0e38, 1.0],
                        dtype=np.float32)
    w0 = [np.tile(specials, 5)[::-1].copy()]
    steps = [[np.tile(specials, 5)], [np.roll(np.tile(specials, 5), 3)]]
    for cls, kw, _ in CONFIGS:
        got, ref = _run(cls, kw, w0, steps, True), _run(cls, kw, w0, steps, False)
        for a, b in zip(got, ref):  # NaN payloads and signs aside, every bit agrees
            np.testing.assert_array_equal(a, b, err_msg=f"{cls} {kw}")
            real = ~np.isnan(b)
            np.testing.assert_array_equal(np.signbit(a[real]), np.signbit(b[real]),
                                          err_msg=f"{cls} {kw}")


def _sparse_steps(dtype: Any, shape: Tuple[int, ...], seed: int) -> List[SparseRows]:
    rng = np.random.default_rng(seed)
    out = []
    for rows in ([0, 3, 4, 9], [], [shape[0] - 1], [1, 2, 3, 4, 5, 6]):
        r = np.array(rows, dtype=np.int64)
        out.append(SparseRows(r, rng.standard_normal((len(r),) + shape[1:]).astype(dtype),
                              shape))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "plain")
def test_sparse_rows_equal_dense(options: Dict[str, Any], dtype: Any,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A SparseRows gradient gives bitwise the dense gradient's result (Keras: untouched
    rows decay as with a zero gradient; plain SGD leaves them alone)."""
    shape = (10, 3)
    rng = np.random.default_rng(9)
    w0 = [rng.standard_normal(shape).astype(dtype), rng.standard_normal(4).astype(dtype)]
    sparse = _sparse_steps(dtype, shape, 10)
    dense_b = [rng.standard_normal(4).astype(dtype) for _ in sparse]
    spy = Spy(monkeypatch)
    for cls, kw, kind in CONFIGS:
        kw = {**kw, **options}
        got = _run(cls, kw, w0, [[s, b] for s, b in zip(sparse, dense_b)], True)
        ref = _run(cls, kw, w0, [[s.dense(), b] for s, b in zip(sparse, dense_b)], False)
        _bitwise(got, ref, f"{cls} {kw} sparse")
    assert spy.kinds


def test_sparse_rows_large_threaded() -> None:
    """An IMDB-sized table (20000, 128) with a few hundred touched rows, split across 4
    threads by rows: bitwise the dense result."""
    before = core.get_num_threads()
    core.set_num_threads(4)
    try:
        rng = np.random.default_rng(11)
        shape = (20000, 128)
        w0 = [rng.standard_normal(shape).astype(np.float32)]
        steps = []
        for _ in range(3):
            rows = np.unique(np.minimum(rng.zipf(1.3, 700), shape[0] - 1))
            vals = rng.standard_normal((len(rows), shape[1])).astype(np.float32)
            steps.append(SparseRows(rows, vals, shape))
        for cls, kw, _ in [CONFIGS[0], CONFIGS[1], CONFIGS[3], CONFIGS[5], CONFIGS[9]]:
            _bitwise(_run(cls, kw, w0, [[g] for g in steps], True),
                     _run(cls, kw, w0, [[g.dense()] for g in steps], False),
                     f"{cls} {kw} sparse 20000x128")
    finally:
        core.set_num_threads(before)


@pytest.mark.parametrize("lr", [0.1, -0.1, 0.0])
def test_sparse_plain_sgd_rows_only_keeps_signed_zeros(lr: float) -> None:
    """Plain SGD touches only the gradient's rows when that equals the dense update; with
    lr <= 0 the dense update turns -0.0 weights into +0.0, so every row is updated."""
    w0 = [np.array([[-0.0, 1.0], [-0.0, -0.0], [2.0, -0.0]], dtype=np.float32)]
    g = SparseRows(np.array([1]), np.array([[0.5, -0.0]], dtype=np.float32), (3, 2))
    got = _run("SGD", {"learning_rate": lr}, w0, [[g], [g]], True)
    ref = _run("SGD", {"learning_rate": lr}, w0, [[g.dense()], [g.dense()]], False)
    _bitwise(got, ref, f"sgd lr={lr}")


def test_fallbacks_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrays the kernel does not take in place run the NumPy formulas (same results)."""
    spy = Spy(monkeypatch)
    rng = np.random.default_rng(2)
    base = rng.standard_normal((6, 8))
    cases = {
        "fortran": lambda: np.asfortranarray(base.astype(np.float32)),
        "strided": lambda: base.astype(np.float32)[:, ::2],
        "float16": lambda: base.astype(np.float16),
        "big_endian": lambda: base.astype(">f4"),
    }
    for name, make in cases.items():
        for cls, kw, _ in CONFIGS:
            ws = [make(), make()]
            gs = [[np.asarray(rng.standard_normal(w.shape), dtype=w.dtype) for w in ws]
                  for _ in range(3)]
            opt_f, opt_r = _make(cls, kw, True), _make(cls, kw, False)
            a, b = [w.copy(order="K") for w in ws], [w.copy(order="K") for w in ws]
            if name == "strided":
                a, b = [make() for _ in ws], [make() for _ in ws]
            for g in gs:
                opt_f.apply(g, a)
                opt_r.apply(g, b)
            _bitwise([np.ascontiguousarray(x) for x in a], [np.ascontiguousarray(x) for x in b],
                     f"{name} {cls} {kw}")
    assert not spy.kinds

    class MyAdam(O.Adam):  # a subclass may override update_step: NumPy path
        pass

    w = [np.ones(5, np.float32)]
    MyAdam().apply([np.ones(5, np.float32)], w)
    assert not spy.kinds


def test_aliased_slot_falls_back() -> None:
    w = np.ones(8, np.float32)
    opt = O.SGD(momentum=0.9)
    opt.build([w])
    opt._state["momentum"][0] = w  # pathological: the slot is the weight itself
    ref_w = np.ones(8, np.float32)
    ref = O.SGD(momentum=0.9)
    ref.use_fused_kernels = False
    ref.build([ref_w])
    ref._state["momentum"][0] = ref_w
    g = np.full(8, 0.5, np.float32)
    opt.apply([g], [w])
    ref.apply([g], [ref_w])
    _bitwise([w], [ref_w], "aliased")


# -- the bindings' checks -------------------------------------------------------------------
def _args(n: int = 4, dtype: Any = np.float32) -> Dict[str, Any]:
    return {"kind": "adam", "w": np.ones(n, dtype), "grad": np.ones(n, dtype),
            "slots": [np.zeros(n, dtype), np.zeros(n, dtype)],
            "coefs": [0.1, 0.1, 0.001, 1e-7]}


@pytest.mark.parametrize("edit,exc,match", [
    (lambda a: a.update(kind="adamx"), ValueError, "unknown `kind` 'adamx'"),
    (lambda a: a.update(slots=a["slots"][:1]), ValueError, "takes 2 slot"),
    (lambda a: a.update(coefs=[0.1]), ValueError, "takes 4 coefficient"),
    (lambda a: a.update(w=[1.0, 2.0, 3.0, 4.0]), TypeError, "`w` must be a numpy.ndarray"),
    (lambda a: a.update(w=np.ones(4, np.int32)), TypeError, "`w` must be float32"),
    (lambda a: a.update(w=np.ones(4, ">f8")), TypeError, "native byte order"),
    (lambda a: a.update(w=np.ones(8, np.float32)[::2]), ValueError, "`w` must be a C-contig"),
    (lambda a: a["w"].setflags(write=False), ValueError, "writeable"),
    (lambda a: a.update(grad=np.ones(4, np.float64)), TypeError, "`grad` must have dtype"),
    (lambda a: a.update(grad=np.ones(5, np.float32)), ValueError, r"`grad` must have shape \(4,\)"),
    (lambda a: a["slots"].__setitem__(1, np.zeros(3, np.float32)), ValueError, r"`slots\[1\]`"),
    (lambda a: a["slots"].__setitem__(1, a["w"]), ValueError, "overlap"),
    (lambda a: a.update(grad=a["slots"][0]), ValueError, "overlap"),
    (lambda a: a.update(decay="x"), TypeError, "`decay` must be None or a pair"),
    (lambda a: a.update(w=np.ones((4, 2), np.float32), grad=np.ones((1, 2), np.float32),
                        slots=[np.zeros((4, 2), np.float32)] * 0 + [np.zeros((4, 2), np.float32),
                                                                    np.zeros((4, 2), np.float32)],
                        rows=np.array([4])), ValueError, "strictly increasing row indices"),
    (lambda a: a.update(w=np.ones((4, 2), np.float32), grad=np.ones((2, 2), np.float32),
                        slots=[np.zeros((4, 2), np.float32), np.zeros((4, 2), np.float32)],
                        rows=np.array([2, 1])), ValueError, "strictly increasing"),
    (lambda a: a.update(w=np.ones((4, 2), np.float32), grad=np.ones((2, 2), np.float32),
                        slots=[np.zeros((4, 2), np.float32), np.zeros((4, 2), np.float32)],
                        rows=np.array([1, 2], np.int32)), TypeError, "1-D int64"),
    (lambda a: a.update(w=np.ones((4, 2), np.float32), grad=np.ones((3, 2), np.float32),
                        slots=[np.zeros((4, 2), np.float32), np.zeros((4, 2), np.float32)],
                        rows=np.array([1, 2])), ValueError, r"`grad` must have shape \(2, 2\)"),
    (lambda a: a.update(rows=np.array([0])), ValueError, r"`grad` must have shape \(1,\)"),
    (lambda a: a.update(w=np.float32(1.0)), TypeError, "numpy.ndarray"),
])
def test_optim_update_argument_checks(edit: Any, exc: type, match: str) -> None:
    a = _args()
    edit(a)
    before = {k: np.array(v, copy=True) for k, v in a.items() if isinstance(v, np.ndarray)}
    with pytest.raises(exc, match=match):
        core.optim_update(**a)
    for k, v in before.items():  # nothing was written
        np.testing.assert_array_equal(a[k], v)


def test_embedding_row_sums_checks() -> None:
    dy = np.ones((3, 2), np.float32)
    with pytest.raises(ValueError, match=r"`ids` must be in \[0, 5\)"):
        core.embedding_row_sums(np.array([0, 5, 1]), dy, 5)
    with pytest.raises(ValueError, match=r"`ids` must be in \[0, 5\)"):
        core.embedding_row_sums(np.array([0, -1, 1]), dy, 5)
    with pytest.raises(ValueError, match=r"`dy` must have shape \(2, row_len\)"):
        core.embedding_row_sums(np.array([0, 1]), dy, 5)
    with pytest.raises(ValueError, match="`ids` must be 1-D"):
        core.embedding_row_sums(np.zeros((3, 1), np.int64), dy, 5)
    with pytest.raises(TypeError, match="`dy` must be float32 or float64"):
        core.embedding_row_sums(np.array([0, 1, 2]), dy.astype(np.int32), 5)
