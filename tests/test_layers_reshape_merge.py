"""Reshaping layers (RepeatVector, Flatten, Reshape, Permute, Activation, Lambda) and merge
layers (Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, Dot): forward, input
gradients and output masks against Keras 3 recordings (fixtures/keras_layers/reshape_merge.npz,
made by make_reshape_merge.py), float64 finite differences, configs, symbolic calls, errors,
dtypes and per-call-slot caches."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, List, Optional

import numpy as np
import pytest

from rnnkit import backend, layers as L, saving
from rnnkit.layers.node import call_slot

from _cases import numeric_grad

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "keras_layers" / "reshape_merge.npz"
_DATA = np.load(FIXTURE)
CASES = sorted({k.split("__")[0] for k in _DATA.files if "__" in k})
MULTI = {"Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot"}


def _case(name: str):
    spec = json.loads(str(_DATA[f"{name}__spec"]))
    xs: List[np.ndarray] = []
    while f"{name}__x{len(xs)}" in _DATA.files:
        xs.append(_DATA[f"{name}__x{len(xs)}"])
    masks = [_DATA[f"{name}__m{i}"] if f"{name}__m{i}" in _DATA.files else None
             for i in range(len(xs))]
    return spec, xs, masks


def _as_call(cls_name: str, items: List[Any]) -> Any:
    return list(items) if cls_name in MULTI else items[0]


def _build(layer: L.Layer, x: Any) -> None:
    shapes = ([(None,) + np.shape(a)[1:] for a in x] if isinstance(x, list)
              else (None,) + np.shape(x)[1:])
    layer._ensure_built(shapes)


# -- Keras 3 recordings ----------------------------------------------------------------------
def test_fixture_covers_every_layer() -> None:
    classes = {json.loads(str(_DATA[f"{c}__spec"]))["class_name"] for c in CASES}
    assert classes == MULTI | {"RepeatVector", "Flatten", "Reshape", "Permute", "Activation"}


@pytest.mark.parametrize("name", CASES)
def test_matches_keras(name: str) -> None:
    spec, xs, masks = _case(name)
    layer = getattr(L, spec["class_name"])(**spec["config"], dtype="float32")
    x = _as_call(spec["class_name"], xs)
    mask = _as_call(spec["class_name"], masks) if any(m is not None for m in masks) else None
    _build(layer, x)
    y = layer.forward(x, mask=mask, need_grad=True)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, _DATA[f"{name}__y"], rtol=1e-5, atol=1e-6)
    grads = layer.backward(_DATA[f"{name}__w"])
    grads = grads if isinstance(x, list) else [grads]
    assert len(grads) == len(xs)
    for i, g in enumerate(grads):
        assert g.shape == xs[i].shape
        np.testing.assert_allclose(g, _DATA[f"{name}__g{i}"], rtol=1e-5, atol=1e-6,
                                   err_msg=f"gradient of input {i}")
    want_mask = _DATA[f"{name}__ym"] if f"{name}__ym" in _DATA.files else None
    got_mask = layer.compute_mask(x, mask)
    if want_mask is None:
        assert got_mask is None
    else:
        np.testing.assert_array_equal(got_mask, want_mask)


# -- float64 finite differences --------------------------------------------------------------
R = np.random.default_rng(5)


def _gradcheck(layer: L.Layer, xs: List[np.ndarray], mask: Any = None,
               multi: bool = False) -> None:
    """Input gradients of sum(y * w) against central differences (float64)."""
    x = xs if multi else xs[0]
    _build(layer, x)
    y = layer.forward(x, mask=mask, need_grad=True)
    w = R.normal(size=y.shape)
    grads = layer.backward(w)
    grads = grads if multi else [grads]
    for i, arr in enumerate(xs):
        num = numeric_grad(lambda: float(np.sum(layer.forward(x, mask=mask) * w)), arr, 1e-6)
        np.testing.assert_allclose(grads[i], num, rtol=1e-6, atol=1e-8,
                                   err_msg=f"{layer.name}: input {i}")


def _distinct(*shape: int) -> np.ndarray:
    """Random values far enough apart that max/min do not flip under a 1e-6 step."""
    n = int(np.prod(shape))
    return (R.permutation(n) * 0.1 + R.uniform(0, 0.01, n)).reshape(shape) - n * 0.05


GRADCHECKS: List[Any] = [
    ("repeat_vector", lambda: L.RepeatVector(3), [(2, 4)], None),
    ("flatten", lambda: L.Flatten(), [(2, 3, 2)], None),
    ("reshape", lambda: L.Reshape((-1, 2)), [(2, 3, 4)], None),
    ("permute", lambda: L.Permute((3, 1, 2)), [(2, 2, 3, 2)], None),
    ("activation_softmax", lambda: L.Activation("softmax"), [(2, 3, 4)], None),
    ("activation_sigmoid", lambda: L.Activation("sigmoid"), [(2, 3, 4)], None),
    ("concatenate_time", lambda: L.Concatenate(axis=1), [(2, 3, 2), (2, 1, 2)], None),
    ("add_broadcast", lambda: L.Add(), [(2, 4), (2, 3, 4), (2, 3, 1)], None),
    ("subtract", lambda: L.Subtract(), [(2, 3, 4), (2, 1, 4)], None),
    ("average", lambda: L.Average(), [(2, 3), (2, 3), (2, 3)], None),
    ("multiply", lambda: L.Multiply(), [(2, 3, 2), (2, 3, 2), (2, 1, 2)], None),
    ("multiply_masked", lambda: L.Multiply(), [(2, 4, 2), (2, 4, 2)], "all"),
    ("maximum", lambda: L.Maximum(), [(2, 3, 2)] * 3, "distinct"),
    ("minimum_masked", lambda: L.Minimum(), [(2, 4, 2)] * 3, "all"),
    ("dot_3d", lambda: L.Dot(axes=(1, 2)), [(2, 3, 2), (2, 4, 3)], None),
    ("dot_2d_norm", lambda: L.Dot(axes=1, normalize=True), [(2, 4), (2, 4)], None),
    ("dot_mixed_norm", lambda: L.Dot(axes=-1, normalize=True), [(2, 3, 4), (2, 4)], None),
]


@pytest.mark.parametrize("name,make,shapes,kind", GRADCHECKS, ids=[g[0] for g in GRADCHECKS])
def test_gradients_match_finite_differences(name: str, make: Callable[[], L.Layer],
                                            shapes: List[Any], kind: Optional[str]) -> None:
    layer = make()
    assert layer.dtype == "float32"  # default floatx
    layer = type(layer).from_config({**layer.get_config(), "dtype": "float64"})
    multi = len(shapes) > 1 or isinstance(layer, L.Concatenate)
    xs = [(_distinct(*s) if kind in ("distinct", "all") else R.normal(size=s)) for s in shapes]
    mask = None
    if kind == "all":
        masks = [R.random(s[:2]) > 0.4 for s in shapes]
        masks[0][:, 0] = True
        mask = masks
    _gradcheck(layer, xs, mask, multi)


def test_dot_normalize_gradient_of_a_zero_vector_is_keras_clamp() -> None:
    """A zero row is scaled by 1/epsilon (Keras's min(rsqrt(0), 1/eps)): output 0, and the
    gradient is the plain dot gradient times 1/epsilon."""
    layer = L.Dot(axes=1, normalize=True, dtype="float64")
    a, b = np.zeros((1, 3)), np.array([[3.0, 0.0, 4.0]])
    y = layer([a, b])
    np.testing.assert_array_equal(y, [[0.0]])
    layer.forward([a, b], need_grad=True)
    da, db = layer.backward(np.ones((1, 1)))
    np.testing.assert_allclose(da, b / 5.0 / backend.epsilon())
    np.testing.assert_array_equal(db, np.zeros((1, 3)))


def test_dot_normalize_gradient_below_epsilon_skips_the_projection() -> None:
    """Rows with norm < epsilon are scaled by exactly 1/epsilon, so their gradient is the
    plain one times 1/epsilon (no projection term), as TensorFlow differentiates min()."""
    layer = L.Dot(axes=1, normalize=True, dtype="float64")
    a, b = np.array([[1e-8, 0.0, 2e-8]]), np.array([[3.0, 1.0, 4.0]])
    y = layer.forward([a, b], need_grad=True)
    b_n = b / np.linalg.norm(b)
    np.testing.assert_allclose(y, (a / backend.epsilon()) @ b_n.T, rtol=1e-12)
    da, _ = layer.backward(np.ones((1, 1)))
    np.testing.assert_allclose(da, b_n / backend.epsilon(), rtol=1e-12)


# -- masks -----------------------------------------------------------------------------------
def test_mask_propagation_of_reshaping_layers() -> None:
    x, m = R.normal(size=(2, 3, 4)), np.array([[1, 1, 0], [1, 0, 0]], bool)
    for layer in (L.Flatten(), L.Reshape((4, 3)), L.Permute((2, 1))):
        assert layer.compute_mask(x, m) is None
    assert L.RepeatVector(2).compute_mask(x[:, 0], m[:, 0]) is None
    np.testing.assert_array_equal(L.Activation("relu").compute_mask(x, m), m)
    assert L.Activation("relu").supports_masking


def test_merge_masks() -> None:
    x = [R.normal(size=(2, 3, 4)), R.normal(size=(2, 3, 4))]
    m0, m1 = np.array([[1, 1, 0], [1, 0, 0]], bool), np.array([[1, 0, 1], [1, 0, 0]], bool)
    for cls in (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum):
        np.testing.assert_array_equal(cls().compute_mask(x, [m0, m1]), m0 | m1)
        assert cls().compute_mask(x, [m0, None]) is None
        assert cls().compute_mask(x, None) is None
    assert L.Dot(axes=2).compute_mask(x, [m0, m1]) is None
    cat = L.Concatenate(axis=1)
    np.testing.assert_array_equal(cat.compute_mask(x, [m0, m1]), np.concatenate([m0, m1], 1))
    np.testing.assert_array_equal(cat.compute_mask(x, [None, m1]),
                                  np.concatenate([np.ones_like(m0), m1], 1))
    np.testing.assert_array_equal(L.Concatenate().compute_mask(x, [m0, m1]), m0 | m1)
    assert cat.compute_mask(x, [None, None]) is None


def test_masked_maximum_skips_masked_entries() -> None:
    a = np.array([[[5.0], [1.0]]])
    b = np.array([[[2.0], [3.0]]])
    y = L.Maximum(dtype="float64")([a, b], mask=[np.array([[False, True]]),
                                               np.array([[True, False]])])
    np.testing.assert_array_equal(y, [[[2.0], [1.0]]])  # 5 and 3 are masked out


# -- configs ---------------------------------------------------------------------------------
CONFIG_LAYERS: List[Callable[[], L.Layer]] = [
    lambda: L.RepeatVector(4, name="rv"), lambda: L.Flatten(), lambda: L.Reshape((3, -1)),
    lambda: L.Permute((2, 1)), lambda: L.Activation("tanh", dtype="float64"),
    lambda: L.Concatenate(axis=1), lambda: L.Add(), lambda: L.Subtract(),
    lambda: L.Multiply(), lambda: L.Average(), lambda: L.Maximum(), lambda: L.Minimum(),
    lambda: L.Dot(axes=(1, 2), normalize=True), lambda: L.Dot(axes=-1),
]


@pytest.mark.parametrize("make", CONFIG_LAYERS)
def test_config_round_trips(make: Callable[[], L.Layer]) -> None:
    layer = make()
    cfg = layer.get_config()
    assert json.loads(json.dumps(cfg)) == cfg
    again = type(layer).from_config(cfg)
    assert again.get_config() == cfg
    ser = L.serialize(layer)
    assert ser["class_name"] == type(layer).__name__
    assert L.deserialize(json.loads(json.dumps(ser))).get_config() == cfg
    saving._validate_layer(ser, "where", [0])  # the saved form passes the schema
    assert layer.weights == [] and layer.count_params() == 0


def test_keras_config_names_and_defaults() -> None:
    assert L.Reshape((3, -1)).get_config()["target_shape"] == [3, -1]
    assert L.Permute((2, 1)).get_config()["dims"] == [2, 1]
    assert L.Flatten().get_config()["data_format"] == "channels_last"
    assert L.Concatenate().get_config()["axis"] == -1
    assert L.Dot(axes=(1, 2)).get_config()["axes"] == [1, 2]
    assert L.Dot(axes=1).get_config()["normalize"] is False
    assert L.RepeatVector(2).get_config()["n"] == 2
    assert L.Activation("relu").get_config()["activation"] == "relu"


BAD_CONFIGS = [
    ("RepeatVector", {"n": 0}, "n"), ("RepeatVector", {"n": "3"}, "n"),
    ("Flatten", {"data_format": "channels_first"}, "data_format"),
    ("Reshape", {"target_shape": [-1, -1]}, "target_shape"),
    ("Reshape", {"target_shape": [0, 2]}, "target_shape"),
    ("Permute", {"dims": [1, 3]}, "dims"), ("Permute", {"dims": [0, 1]}, "dims"),
    ("Activation", {"activation": "swishy"}, "activation"),
    ("Concatenate", {"axis": 1.5}, "axis"), ("Add", {"name": 3}, "name"),
    ("Dot", {"axes": [1, 2, 3]}, "axes"), ("Dot", {"axes": 0}, "axes"),
    ("Dot", {"axes": 1, "normalize": "yes"}, "normalize"),
    ("Maximum", {"dtype": "int8"}, "dtype"),
]


@pytest.mark.parametrize("cls,cfg,field", BAD_CONFIGS)
def test_bad_config_rejected_by_schema(cls: str, cfg: dict, field: str) -> None:
    with pytest.raises(ValueError, match=rf"where\.config\.{field}"):
        saving._validate_layer({"class_name": cls, "config": cfg}, "where", [0])


def test_required_fields() -> None:
    for cls in ("RepeatVector", "Reshape", "Permute", "Activation", "Dot"):
        with pytest.raises(ValueError, match="missing field"):
            saving._validate_layer({"class_name": cls, "config": {}}, "where", [0])


@pytest.mark.parametrize("make,msg", [
    (lambda: L.RepeatVector(0), "n"), (lambda: L.Flatten("channels_first"), "data_format"),
    (lambda: L.Reshape((2, -1, -1)), "target_shape"), (lambda: L.Permute((1, 1)), "dims"),
    (lambda: L.Activation("nope"), "nope"), (lambda: L.Dot(axes=(1, 2, 3)), "axes"),
    (lambda: L.Concatenate(axis="x"), "axis"), (lambda: L.Lambda(3), "function"),
])
def test_constructor_errors(make: Callable[[], L.Layer], msg: str) -> None:
    with pytest.raises((ValueError, TypeError), match=msg):
        make()


# -- symbolic calls and shapes ---------------------------------------------------------------
def test_symbolic_shapes() -> None:
    seq, vec, img = L.Input((5, 4)), L.Input((4,)), L.Input((None, 3))
    assert L.RepeatVector(3)(vec).shape == (None, 3, 4)
    assert L.Flatten()(seq).shape == (None, 20)
    assert L.Flatten()(img).shape == (None, None)
    assert L.Reshape((2, -1))(seq).shape == (None, 2, 10)
    assert L.Reshape((-1, 3))(img).shape == (None, None, 3)
    assert L.Permute((2, 1))(seq).shape == (None, 4, 5)
    assert L.Activation("softmax")(seq).shape == (None, 5, 4)
    other = L.Input((2, 4))
    assert L.concatenate([seq, other], axis=1).shape == (None, 7, 4)
    assert L.concatenate([seq, seq]).shape == (None, 5, 8)
    assert L.add([seq, vec]).shape == (None, 5, 4)
    assert L.subtract([seq, seq]).shape == (None, 5, 4)
    assert L.multiply([seq, L.Input((1, 4))]).shape == (None, 5, 4)
    assert L.average([seq, seq, seq]).shape == (None, 5, 4)
    assert L.maximum([seq, seq]).shape == L.minimum([seq, seq]).shape == (None, 5, 4)
    assert L.dot([seq, other], axes=2).shape == (None, 5, 2)
    assert L.dot([vec, vec], axes=1).shape == (None, 1)
    assert L.dot([seq, vec], axes=(2, 1)).shape == (None, 5)
    assert L.dot([seq, L.Input((6, 5))], axes=(1, 2), normalize=True).shape == (None, 4, 6)
    y = L.Add(name="my_add")([seq, seq])
    assert y.node.layer.name == "my_add" and len(y.node.inputs) == 2


def test_functional_forms_on_arrays() -> None:
    a, b = (R.normal(size=(2, 3, 4)).astype(np.float32) for _ in range(2))  # layer dtype
    np.testing.assert_allclose(L.add([a, b]), a + b, rtol=1e-6)
    np.testing.assert_allclose(L.subtract([a, b]), a - b, rtol=1e-6)
    np.testing.assert_allclose(L.multiply([a, b]), a * b, rtol=1e-6)
    np.testing.assert_allclose(L.average([a, b]), (a + b) / 2, rtol=1e-6)
    np.testing.assert_allclose(L.maximum([a, b]), np.maximum(a, b), rtol=1e-6)
    np.testing.assert_allclose(L.minimum([a, b]), np.minimum(a, b), rtol=1e-6)
    np.testing.assert_allclose(L.concatenate([a, b], axis=1), np.concatenate([a, b], 1),
                               rtol=1e-6)
    np.testing.assert_allclose(L.dot([a, b], axes=2), np.einsum("btd,bsd->bts", a, b),
                               rtol=1e-5)
    np.testing.assert_allclose(L.dot((a, b), axes=1), np.einsum("btd,bte->bde", a, b),
                               rtol=1e-5)


@pytest.mark.parametrize("make,shape,pattern", [
    (lambda: L.RepeatVector(2, name="rv1"), [(5, 4)], r"'rv1'.*\(None, 5, 4\)"),
    (lambda: L.Reshape((7,), name="rs1"), [(5, 4)], r"'rs1'.*\(None, 5, 4\)"),
    (lambda: L.Permute((2, 1), name="pm1"), [(5,)], r"'pm1'.*\(None, 5\)"),
    (lambda: L.Concatenate(axis=1, name="cc1"), [(5, 4), (5, 3)], r"'cc1'.*\(None, 5, 3\)"),
    (lambda: L.Concatenate(name="cc2"), [(5, 4), (4,)], r"'cc2'.*\(None, 4\)"),
    (lambda: L.Add(name="ad1"), [(5, 4), (5, 3)], r"'ad1'.*\(None, 5, 3\)"),
    (lambda: L.Subtract(name="sb1"), [(4,), (4,), (4,)], r"'sb1'.*exactly 2"),
    (lambda: L.Dot(axes=2, name="dt1"), [(5, 4), (5, 3)], r"'dt1'.*\(None, 5, 3\)"),
    (lambda: L.Dot(axes=0, name="dt2"), [(5, 4), (5, 4)], r"'dt2'.*non-batch"),
    (lambda: L.Dot(axes=1, name="dt3"), [(5, 4), (5, 4), (5, 4)], r"'dt3'.*exactly 2"),
])
def test_wrong_symbolic_shapes_raise(make: Callable[[], L.Layer], shape: List[Any],
                                     pattern: str) -> None:
    inputs = [L.Input(s) for s in shape]
    with pytest.raises(ValueError, match=pattern):
        make()(inputs if len(inputs) > 1 or "Concat" in pattern else inputs[0])


def test_wrong_eager_shapes_raise() -> None:
    with pytest.raises(ValueError, match=r"Reshape 'rs2'.*\(3, 4\).*12 values.*\(5,\)"):
        L.Reshape((5,), name="rs2")(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"Reshape 'rs3'.*not a multiple of 5"):
        L.Reshape((5, -1), name="rs3")(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"Add 'ad2'.*list"):
        L.Add(name="ad2")(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Maximum 'mx2'.*incompatible"):
        L.Maximum(name="mx2")([np.zeros((2, 3)), np.zeros((2, 4))])
    shared = L.Reshape((6,), name="rs4")  # a built layer still checks each call
    shared(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="rs4"):
        shared(np.zeros((2, 7)))


# -- dtypes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtypes(dtype: str) -> None:
    a, b = R.normal(size=(2, 3, 4)), R.normal(size=(2, 3, 4))
    single = [L.RepeatVector(2, dtype=dtype), L.Flatten(dtype=dtype),
              L.Reshape((-1,), dtype=dtype), L.Permute((2, 1), dtype=dtype),
              L.Activation("tanh", dtype=dtype), L.Lambda(lambda t: t * 2, dtype=dtype)]
    for layer in single:
        arg = a[:, 0] if isinstance(layer, L.RepeatVector) else a
        y = layer(arg)
        assert y.dtype == np.dtype(dtype), layer
        if not isinstance(layer, L.Lambda):
            layer.forward(arg, need_grad=True)
            assert layer.backward(np.ones_like(y)).dtype == np.dtype(dtype)
    for cls in (L.Concatenate, L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum):
        layer = cls(dtype=dtype)
        y = layer([a, b])
        assert y.dtype == np.dtype(dtype)
        layer.forward([a, b], need_grad=True)
        assert all(g.dtype == np.dtype(dtype) for g in layer.backward(np.ones_like(y)))
    layer = L.Dot(axes=2, normalize=True, dtype=dtype)
    y = layer([a, b])
    assert y.dtype == np.dtype(dtype)
    layer.forward([a, b], need_grad=True)
    assert all(g.dtype == np.dtype(dtype) for g in layer.backward(np.ones_like(y)))


# -- shared layers: one cache per call slot -------------------------------------------------
@pytest.mark.parametrize("make,first,second", [
    (lambda: L.Reshape((-1,)), [(2, 3, 4)], [(2, 6, 2)]),
    (lambda: L.Permute((2, 1)), [(2, 3, 4)], [(2, 5, 2)]),
    (lambda: L.Activation("sigmoid"), [(2, 3)], [(2, 3)]),
    (lambda: L.RepeatVector(3), [(2, 4)], [(2, 4)]),
    (lambda: L.Flatten(), [(2, 3, 2)], [(2, 2, 2)]),
    (lambda: L.Multiply(), [(2, 3), (2, 3)], [(2, 3), (2, 3)]),
    (lambda: L.Maximum(), [(2, 3), (2, 3)], [(2, 3), (2, 3)]),
    (lambda: L.Concatenate(axis=1), [(2, 3), (2, 2)], [(2, 1), (2, 4)]),
    (lambda: L.Dot(axes=1, normalize=True), [(2, 3), (2, 3)], [(2, 3), (2, 3)]),
])
def test_shared_calls_keep_their_own_cache(make: Callable[[], L.Layer], first: List[Any],
                                           second: List[Any]) -> None:
    layer = type(make()).from_config({**make().get_config(), "dtype": "float64"})
    multi = len(first) > 1
    x1 = [R.normal(size=s) for s in first]
    x2 = [R.normal(size=s) for s in second]
    a1, a2 = (x1, x2) if multi else (x1[0], x2[0])

    def grads(x: Any) -> List[np.ndarray]:
        ref = type(layer).from_config(layer.get_config())
        y = ref.forward(x, need_grad=True)
        g = ref.backward(dy(y.shape))
        return g if multi else [g]

    def dy(shape: Any) -> np.ndarray:
        return np.random.default_rng(len(shape) * 10 + shape[-1]).normal(size=shape)

    with call_slot(("node", 1)):
        y1 = layer.forward(a1, need_grad=True)
    with call_slot(("node", 2)):
        y2 = layer.forward(a2, need_grad=True)
    with call_slot(("node", 2)):
        g2 = layer.backward(dy(y2.shape))
    with call_slot(("node", 1)):
        g1 = layer.backward(dy(y1.shape))
    g1, g2 = (g1, g2) if multi else ([g1], [g2])
    for got, want in ((g1, grads(a1)), (g2, grads(a2))):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12)
    with call_slot(("node", 1)):
        assert layer._cache is None  # backward cleared its slot


# -- Lambda ----------------------------------------------------------------------------------
def test_lambda_forward_shapes_and_masks() -> None:
    x = R.normal(size=(2, 3, 4))
    lam = L.Lambda(lambda t, k: t[:, ::-1] * k, arguments={"k": 3.0}, name="rev")
    np.testing.assert_allclose(lam(x), x[:, ::-1] * 3.0, rtol=1e-6)
    assert lam(x).dtype == np.float32
    inp = L.Input((None, 4))
    assert lam(inp).shape == (None, None, 4)
    assert L.Lambda(lambda t: t.sum(axis=1))(inp).shape == (None, 4)
    assert L.Lambda(lambda t: t.sum(axis=(0, 1)))(inp).shape == (4,)  # sizes that stay fixed
    assert L.Lambda(lambda t: t[:, :2])(L.Input((5, 4))).shape == (None, 2, 4)
    assert L.Lambda(lambda t: t, output_shape=(7, 2))(inp).shape == (None, 7, 2)
    assert L.Lambda(lambda t: t, output_shape=lambda s: (s[0], 9))(inp).shape == (None, 9)
    two = L.Lambda(lambda ts: ts[0] * ts[1])([L.Input((3,)), L.Input((3,))])
    assert two.shape == (None, 3)
    np.testing.assert_allclose(L.Lambda(lambda ts: ts[0] - ts[1])([x, x]), 0 * x)
    # mask: None (dropped), an array, or a callable of (inputs, previous mask)
    m = np.array([[1, 0, 1], [1, 1, 0]], bool)
    assert lam.compute_mask(x, m) is None and not lam.supports_masking
    keep = L.Lambda(lambda t: t, mask=lambda t, mm: mm)
    assert keep.supports_masking
    np.testing.assert_array_equal(keep.compute_mask(x, m), m)
    # the function sees mask= and training= when it names them
    seen = {}

    def fn(t: np.ndarray, mask: Any = None, training: bool = False) -> np.ndarray:
        seen.update(mask=mask, training=training)
        return t

    L.Lambda(fn)(x, mask=m, training=True)
    assert seen["training"] is True and np.array_equal(seen["mask"], m)
    with pytest.raises(ValueError, match="could not infer the output shape.*output_shape"):
        L.Lambda(lambda t: t.reshape(5, 5, 5, 5))(L.Input((3,)))
    ids = np.array([[1, 2, 3]])
    assert L.Lambda(lambda t: t + 1)(ids).dtype.kind == "i"  # integer inputs stay integers


def test_lambda_is_inference_only_and_not_saved() -> None:
    lam = L.Lambda(lambda t: t * 2, name="double")
    x = R.normal(size=(2, 3))
    y = lam.forward(x, need_grad=True)  # forward with need_grad is fine
    np.testing.assert_allclose(y, 2 * x.astype(np.float32))
    with pytest.raises(RuntimeError, match="'double'.*inference-only.*built-in layer"):
        lam.backward(np.ones_like(y))
    with pytest.raises(ValueError, match="'double' cannot be serialised"):
        lam.get_config()
    with pytest.raises(ValueError, match="cannot be loaded"):
        L.Lambda.from_config({"function": "x"})
    with pytest.raises(ValueError, match=r"where: unknown layer class 'Lambda'"):
        saving._validate_layer({"class_name": "Lambda", "config": {"function": {
            "class_name": "__lambda__", "config": {"code": "..."}}}}, "where", [0])
