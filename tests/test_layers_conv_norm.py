"""Conv1D, 1-D pooling, Layer/BatchNormalization and the noise layers: Keras 3 recordings
(tests/fixtures/keras_layers/conv_norm.npz, made by make_conv_norm.py), finite-difference
gradients, masks, configs, symbolic calls, shape errors, dtypes and per-slot caches."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pytest

import rnnkit
from rnnkit import layers as L
from rnnkit import saving
from rnnkit.layers.node import call_slot

from _cases import numeric_grad

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "keras_layers" / "conv_norm.npz"
_DATA = np.load(FIXTURE)
CASES = sorted({k.split(":")[0] for k in _DATA.files})


def _case(name: str) -> Dict[str, Any]:
    meta = json.loads(str(_DATA[f"{name}:meta"]))
    get = lambda key: _DATA[f"{name}:{key}"] if f"{name}:{key}" in _DATA.files else None
    n_w = sum(1 for k in _DATA.files if k.startswith(f"{name}:w"))
    n_dw = sum(1 for k in _DATA.files if k.startswith(f"{name}:dw"))
    n_after = sum(1 for k in _DATA.files if k.startswith(f"{name}:after"))
    return {**meta, "x": get("x"), "mask": get("mask"), "y": get("y"), "dy": get("dy"),
            "dx": get("dx"), "weights": [get(f"w{i}") for i in range(n_w)],
            "dws": [get(f"dw{i}") for i in range(n_dw)],
            "after": [get(f"after{i}") for i in range(n_after)]}


# -- Keras recordings ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float64", 2e-4)])
@pytest.mark.parametrize("name", CASES)
def test_matches_keras(name: str, dtype: str, tol: float) -> None:
    c = _case(name)
    layer = getattr(L, c["class"])(**c["kwargs"], dtype=dtype)
    layer.build((None,) + c["x"].shape[1:])
    layer.set_weights(c["weights"])
    y = layer.forward(c["x"], mask=c["mask"], training=c["training"], need_grad=True)
    assert y.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y, c["y"], rtol=tol, atol=tol)
    dx = layer.backward(c["dy"].astype(dtype))
    np.testing.assert_allclose(dx, c["dx"], rtol=tol, atol=tol)
    assert len(layer.trainable_weights) == len(c["dws"])
    for w, g in zip(layer.trainable_weights, c["dws"]):
        np.testing.assert_allclose(w.grad, g, rtol=tol, atol=tol * 10, err_msg=w.name)
    for w, a in zip(layer.weights, c["after"]):
        np.testing.assert_allclose(w.value, a, rtol=tol, atol=tol, err_msg=w.name)


def test_fixture_covers_every_layer() -> None:
    classes = {_case(n)["class"] for n in CASES}
    assert classes == {"Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D",
                       "GlobalMaxPooling1D", "LayerNormalization", "BatchNormalization",
                       "SpatialDropout1D", "GaussianNoise", "GaussianDropout"}


# -- finite differences (float64) ---------------------------------------------------------
def _gradcheck(layer: Any, x: np.ndarray, mask: Optional[np.ndarray] = None,
               training: bool = False) -> None:
    rng = np.random.default_rng(7)
    layer(x[:1], mask=None if mask is None else mask[:1])  # build
    y = layer.forward(x, mask=mask, training=training, need_grad=True)
    dy = rng.normal(size=y.shape)
    dx = layer.backward(dy)
    f = lambda: float((layer.forward(x, mask=mask, training=training) * dy).sum())
    np.testing.assert_allclose(dx, numeric_grad(f, x), rtol=1e-6, atol=1e-7)
    grads = [w.grad.copy() for w in layer.trainable_weights]
    for w, g in zip(layer.trainable_weights, grads):
        np.testing.assert_allclose(g, numeric_grad(f, w.value), rtol=1e-6, atol=1e-7,
                                   err_msg=w.name)


def _x(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


_MASK = np.array([[1, 1, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]], bool)


@pytest.mark.parametrize("kwargs", [
    {"kernel_size": 3}, {"kernel_size": 4, "strides": 2, "padding": "same"},
    {"kernel_size": 3, "dilation_rate": 2, "padding": "causal", "activation": "tanh"},
    {"kernel_size": 2, "strides": 3, "padding": "causal", "use_bias": False},
    {"kernel_size": 1, "activation": "sigmoid"},
], ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items()))
def test_conv1d_gradcheck(kwargs: Dict[str, Any]) -> None:
    _gradcheck(L.Conv1D(3, dtype="float64", bias_initializer="glorot_uniform", **kwargs),
               _x(2, 7, 2))


@pytest.mark.parametrize("layer", [
    lambda: L.MaxPooling1D(3, 2, "same", dtype="float64"),
    lambda: L.MaxPooling1D(2, dtype="float64"),
    lambda: L.AveragePooling1D(3, 2, "same", dtype="float64"),
    lambda: L.AveragePooling1D(4, 1, dtype="float64"),
    lambda: L.GlobalMaxPooling1D(dtype="float64"),
    lambda: L.GlobalAveragePooling1D(keepdims=True, dtype="float64"),
], ids=["max-same", "max-valid", "avg-same", "avg-valid", "gmax", "gavg"])
def test_pooling_gradcheck(layer: Any) -> None:
    _gradcheck(layer(), _x(3, 7, 2))


def test_global_average_pooling_mask_gradcheck() -> None:
    _gradcheck(L.GlobalAveragePooling1D(dtype="float64"), _x(3, 7, 2), mask=_MASK)


@pytest.mark.parametrize("make,shape", [
    (lambda: L.LayerNormalization(dtype="float64", gamma_initializer="glorot_uniform",
                                  beta_initializer="glorot_uniform"), (3, 4, 3)),
    (lambda: L.LayerNormalization(axis=[1, 2], dtype="float64",
                                  gamma_initializer="glorot_uniform"), (2, 3, 4)),
    (lambda: L.LayerNormalization(axis=1, scale=False, dtype="float64"), (2, 3, 4)),
], ids=["last", "axes12", "axis1-noscale"])
def test_layer_normalization_gradcheck(make: Any, shape: Any) -> None:
    _gradcheck(make(), _x(*shape))


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_batch_normalization_gradcheck(training: bool, masked: bool) -> None:
    bn = L.BatchNormalization(dtype="float64", gamma_initializer="glorot_uniform",
                              beta_initializer="glorot_uniform",
                              moving_mean_initializer="glorot_uniform")
    _gradcheck(bn, _x(3, 7, 2), mask=_MASK if masked else None, training=training)


def test_batch_normalization_axis1_gradcheck() -> None:
    _gradcheck(L.BatchNormalization(axis=1, dtype="float64",
                                    gamma_initializer="glorot_uniform"), _x(3, 4, 2),
               training=True)


# -- BatchNormalization modes ---------------------------------------------------------------
def test_batch_normalization_moving_statistics() -> None:
    x = _x(4, 5, 3)
    bn = L.BatchNormalization(momentum=0.75, dtype="float64")
    bn(x, training=True)
    flat = x.reshape(-1, 3)
    np.testing.assert_allclose(bn.moving_mean.value, 0.25 * flat.mean(0), rtol=1e-12)
    np.testing.assert_allclose(bn.moving_variance.value, 0.75 + 0.25 * flat.var(0),  # biased
                               rtol=1e-12)
    assert [w.name for w in bn.non_trainable_weights] == ["moving_mean", "moving_variance"]
    assert [w.name for w in bn.trainable_weights] == ["gamma", "beta"]
    # Inference uses the moving statistics and leaves them alone.
    before = bn.get_weights()
    y = bn(x)
    np.testing.assert_allclose(y, (x - before[2]) / np.sqrt(before[3] + 1e-3), rtol=1e-12)
    for a, b in zip(before, bn.get_weights()):
        np.testing.assert_array_equal(a, b)
    # A frozen layer runs in inference mode even with training=True (as Keras).
    bn.trainable = False
    np.testing.assert_allclose(bn(x, training=True), y, rtol=1e-12)
    np.testing.assert_array_equal(bn.moving_mean.value, before[2])


def test_batch_normalization_masked_statistics() -> None:
    # Keras 3: moments over the unmasked steps, with backend.epsilon() (1e-7) added to the
    # count; masked steps are normalised with those statistics too.
    x = _x(3, 7, 2)
    bn = L.BatchNormalization(momentum=0.0, center=False, scale=False, dtype="float64")
    y = bn(x, mask=_MASK, training=True)
    kept = x[_MASK]
    n = len(kept) + 1e-7
    mean = kept.sum(0) / n
    var = ((kept - mean) ** 2).sum(0) / n
    np.testing.assert_allclose(bn.moving_mean.value, mean, rtol=1e-13)
    np.testing.assert_allclose(bn.moving_variance.value, var, rtol=1e-13)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-12)
    with pytest.raises(ValueError, match="mask"):
        bn(x, mask=_MASK[:, :, None], training=True)


def test_batch_normalization_weights_are_saved(tmp_path: Path) -> None:
    model = rnnkit.Sequential([L.Input((5, 3)), L.BatchNormalization(momentum=0.5)])
    model.layers[0](_x(2, 5, 3), training=True)
    path = tmp_path / "bn.weights.npz"
    model.save_weights(str(path))
    other = rnnkit.Sequential([L.Input((5, 3)), L.BatchNormalization(momentum=0.5)])
    other.load_weights(str(path))
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(other.layers[0].moving_mean.value, 0)


# -- noise layers ---------------------------------------------------------------------------
def test_noise_statistics() -> None:
    ones = np.ones((400, 50, 20))
    y = L.GaussianNoise(0.3, seed=1, dtype="float64")(ones, training=True) - 1
    assert abs(y.mean()) < 0.003 and abs(y.std() - 0.3) < 0.003
    y = L.GaussianDropout(0.2, seed=2, dtype="float64")(ones, training=True)
    assert abs(y.mean() - 1) < 0.003 and abs(y.var() - 0.25) < 0.005
    y = L.SpatialDropout1D(0.3, seed=3, dtype="float64")(ones, training=True)
    assert np.all(y == y[:, :1, :])                      # one draw per (sample, channel)
    assert set(np.unique(y)) == {0.0, 1 / 0.7}
    assert abs((y[:, 0] == 0).mean() - 0.3) < 0.02
    # The identity at inference; seeded layers repeat their noise.
    for layer in (L.GaussianNoise(0.3), L.GaussianDropout(0.2), L.SpatialDropout1D(0.3)):
        np.testing.assert_array_equal(layer(ones[:2]), ones[:2])
    a = L.GaussianDropout(0.2, seed=5)(ones[:2], training=True)
    b = L.GaussianDropout(0.2, seed=5)(ones[:2], training=True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, L.GaussianDropout(0.2, seed=6)(ones[:2], training=True))


@pytest.mark.parametrize("make", [lambda: L.GaussianNoise(0.5, dtype="float64"),
                                  lambda: L.GaussianDropout(0.4, dtype="float64"),
                                  lambda: L.SpatialDropout1D(0.5, dtype="float64")],
                         ids=["gnoise", "gdrop", "sdrop"])
def test_noise_backward_uses_drawn_noise(make: Any) -> None:
    layer = make()
    x = _x(3, 6, 4) + 3.0                                 # no zeros: noise = y / x
    y = layer.forward(x, training=True, need_grad=True)
    assert not np.allclose(y, x)
    dy = _x(3, 6, 4, seed=1)
    dx = layer.backward(dy)
    if isinstance(layer, L.GaussianNoise):
        np.testing.assert_array_equal(dx, dy)
    else:
        np.testing.assert_allclose(dx, dy * (y / x), rtol=1e-12)
    assert layer._cache is None
    layer.forward(x, need_grad=True)                      # inference: identity gradient
    np.testing.assert_array_equal(layer.backward(dy), dy)


# -- masks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("make,keeps", [
    (lambda: L.Conv1D(2, 3, padding="same"), False), (lambda: L.MaxPooling1D(1), False),
    (lambda: L.AveragePooling1D(1), False), (L.GlobalAveragePooling1D, False),
    (L.GlobalMaxPooling1D, False), (L.LayerNormalization, True),
    (L.BatchNormalization, True), (lambda: L.SpatialDropout1D(0.5), True),
    (lambda: L.GaussianNoise(0.1), True), (lambda: L.GaussianDropout(0.1), True),
], ids=["conv", "maxpool", "avgpool", "gavg", "gmax", "ln", "bn", "sdrop", "gnoise", "gdrop"])
def test_compute_mask_as_keras(make: Any, keeps: bool) -> None:
    layer = make()
    x = _x(3, 7, 2)
    layer(x)
    out = layer.compute_mask(x, _MASK)
    if keeps:
        np.testing.assert_array_equal(out, _MASK)
    else:
        assert out is None
    assert layer.compute_mask(x, None) is None


def test_global_max_pooling_ignores_mask() -> None:
    x = _x(3, 7, 2)
    gmp = L.GlobalMaxPooling1D()
    np.testing.assert_array_equal(gmp(x, mask=_MASK), x.max(axis=1).astype("float32"))
    gap = L.GlobalAveragePooling1D(dtype="float64")
    want = np.stack([x[b][_MASK[b]].mean(0) for b in range(3)])
    np.testing.assert_allclose(gap(x, mask=_MASK), want, rtol=1e-12)


# -- configs ----------------------------------------------------------------------------------
ALL_LAYERS = [
    lambda: L.Conv1D(4, 3, strides=2, padding="causal", activation="relu", use_bias=False,
                     kernel_initializer="he_normal", name="c"),
    lambda: L.MaxPooling1D(3, strides=1, padding="same"),
    lambda: L.AveragePooling1D(pool_size=[2], padding="same"),
    lambda: L.GlobalAveragePooling1D(keepdims=True),
    lambda: L.GlobalMaxPooling1D(),
    lambda: L.LayerNormalization(axis=[1, 2], epsilon=0.01, center=False),
    lambda: L.BatchNormalization(axis=1, momentum=0.9, scale=False,
                                 moving_variance_initializer="zeros"),
    lambda: L.SpatialDropout1D(0.25, seed=3),
    lambda: L.GaussianNoise(0.2, seed=4, dtype="float64"),
    lambda: L.GaussianDropout(0.3),
]
IDS = ["conv", "maxpool", "avgpool", "gavg", "gmax", "ln", "bn", "sdrop", "gnoise", "gdrop"]


@pytest.mark.parametrize("make", ALL_LAYERS, ids=IDS)
def test_config_round_trips(make: Any) -> None:
    layer = make()
    cfg = layer.get_config()
    json.dumps(cfg)
    assert type(layer).from_config(cfg).get_config() == cfg
    again = L.deserialize(json.loads(json.dumps(L.serialize(layer))))
    assert type(again) is type(layer) and again.get_config() == cfg
    saving._validate_layer(L.serialize(layer), "where", [0])
    # Same numbers after the round trip (weights copied).
    x = _x(2, 6, 3)
    layer(x)
    again(x)
    again.set_weights(layer.get_weights())
    np.testing.assert_array_equal(again(x), layer(x))


def test_keras_config_values() -> None:
    cfg = L.Conv1D(2, 3).get_config()
    assert (cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"], cfg["padding"],
            cfg["groups"], cfg["data_format"]) == ([3], [1], [1], "valid", 1, "channels_last")
    assert L.MaxPooling1D().get_config()["pool_size"] == [2]
    assert L.AveragePooling1D(3).get_config()["strides"] == [3]
    assert L.LayerNormalization().get_config()["axis"] == [-1]
    bn = L.BatchNormalization().get_config()
    assert (bn["axis"], bn["momentum"], bn["epsilon"]) == (-1, 0.99, 1e-3)
    # Keras's own spellings of the same values are accepted.
    assert L.Conv1D(2, (3,), strides=(2,), dilation_rate=[1]).kernel_size == 3


@pytest.mark.parametrize("cls,cfg,field", [
    ("Conv1D", {"filters": 2, "kernel_size": 3, "padding": "full"}, "padding"),
    ("Conv1D", {"filters": 2, "kernel_size": 0}, "kernel_size"),
    ("Conv1D", {"filters": 2, "kernel_size": [3, 3]}, "kernel_size"),
    ("Conv1D", {"filters": 2, "kernel_size": 3, "groups": 2}, "groups"),
    ("Conv1D", {"filters": 2, "kernel_size": 3, "data_format": "channels_first"},
     "data_format"),
    ("MaxPooling1D", {"pool_size": -1}, "pool_size"),
    ("AveragePooling1D", {"pool_size": 2, "strides": "2"}, "strides"),
    ("GlobalAveragePooling1D", {"keepdims": 1}, "keepdims"),
    ("GlobalMaxPooling1D", {"data_format": "nope"}, "data_format"),
    ("LayerNormalization", {"axis": [1, "2"]}, "axis"),
    ("LayerNormalization", {"rms_scaling": True}, "rms_scaling"),
    ("BatchNormalization", {"renorm": True}, "renorm"),
    ("BatchNormalization", {"momentum": "high"}, "momentum"),
    ("BatchNormalization", {"gamma_regularizer": {"class_name": "L2", "config": {"l2": -1.0}}},
     "gamma_regularizer"),
    ("SpatialDropout1D", {"rate": None}, "rate"),
    ("GaussianNoise", {"stddev": 0.1, "seed": -1}, "seed"),
    ("GaussianDropout", {"rate": float("nan")}, "rate"),
])
def test_bad_config_rejected(cls: str, cfg: Dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"where\.config\.{field}"):
        saving._validate_layer({"class_name": cls, "config": cfg}, "where", [0])


def test_missing_required_field_rejected() -> None:
    with pytest.raises(ValueError, match="kernel_size"):
        saving._validate_layer({"class_name": "Conv1D", "config": {"filters": 2}}, "w", [0])
    with pytest.raises(ValueError, match="pool_size"):
        saving._validate_layer({"class_name": "AveragePooling1D", "config": {}}, "w", [0])


@pytest.mark.parametrize("call,match", [
    (lambda: L.Conv1D(2, 3, groups=2), "groups"),
    (lambda: L.Conv1D(2, 3, strides=2, dilation_rate=2), "dilation_rate"),
    (lambda: L.Conv1D(0, 3), "filters"),
    (lambda: L.Conv1D(2, 3, padding="full"), "padding"),
    (lambda: L.Conv1D(2, 3, data_format="channels_first"), "data_format"),
    (lambda: L.Conv1D(2, 3, kernel_regularizer="l3"), "kernel_regularizer"),
    (lambda: L.MaxPooling1D(0), "pool_size"),
    (lambda: L.AveragePooling1D(2, padding="causal"), "padding"),
    (lambda: L.LayerNormalization(axis="x"), "axis"),
    (lambda: L.LayerNormalization(rms_scaling=True), "rms_scaling"),
    (lambda: L.BatchNormalization(momentum=2), "momentum"),
    (lambda: L.BatchNormalization(epsilon=-1), "epsilon"),
    (lambda: L.SpatialDropout1D(1.5), "rate"),
    (lambda: L.GaussianNoise(-0.1), "stddev"),
    (lambda: L.GaussianDropout(2), "rate"),
])
def test_bad_arguments(call: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# -- symbolic calls and shapes ------------------------------------------------------------------
@pytest.mark.parametrize("make,shape,want", [
    (lambda: L.Conv1D(5, 3), (9, 4), (None, 7, 5)),
    (lambda: L.Conv1D(5, 4, strides=2, padding="same"), (9, 4), (None, 5, 5)),
    (lambda: L.Conv1D(5, 3, dilation_rate=2, padding="causal"), (None, 4), (None, None, 5)),
    (lambda: L.Conv1D(5, 3, dilation_rate=3), (9, 4), (None, 3, 5)),
    (lambda: L.MaxPooling1D(), (9, 4), (None, 4, 4)),
    (lambda: L.MaxPooling1D(3, 2, "same"), (9, 4), (None, 5, 4)),
    (lambda: L.AveragePooling1D(2, 1), (None, 4), (None, None, 4)),
    (lambda: L.GlobalAveragePooling1D(), (9, 4), (None, 4)),
    (lambda: L.GlobalMaxPooling1D(keepdims=True), (None, 4), (None, 1, 4)),
    (lambda: L.LayerNormalization(), (9, 4), (None, 9, 4)),
    (lambda: L.BatchNormalization(), (4,), (None, 4)),
    (lambda: L.SpatialDropout1D(0.1), (9, 4), (None, 9, 4)),
    (lambda: L.GaussianNoise(0.1), (4,), (None, 4)),
    (lambda: L.GaussianDropout(0.1), (2, 3, 4), (None, 2, 3, 4)),
])
def test_symbolic_call(make: Any, shape: Any, want: Any) -> None:
    layer = make()
    y = layer(L.Input(shape))
    assert y.shape == want
    if None not in shape:  # the eager output agrees
        assert layer(np.zeros((2,) + shape)).shape == (2,) + want[1:]


@pytest.mark.parametrize("make,shape", [
    (lambda: L.Conv1D(2, 3), (4,)),
    (lambda: L.Conv1D(2, 5), (3, 4)),            # too few steps for the kernel
    (lambda: L.MaxPooling1D(4), (3, 2)),
    (lambda: L.AveragePooling1D(2), (2, 3, 4)),
    (lambda: L.GlobalMaxPooling1D(), (4,)),
    (lambda: L.GlobalAveragePooling1D(), (3, 4, 5)),
    (lambda: L.LayerNormalization(axis=3), (3, 4)),
    (lambda: L.LayerNormalization(), (None,)),
    (lambda: L.BatchNormalization(axis=0), (3, 4)),
    (lambda: L.SpatialDropout1D(0.1), (4,)),
])
def test_bad_input_shape(make: Any, shape: Any) -> None:
    layer = make()
    with pytest.raises(ValueError, match=rf"{layer.name}.*\(None, {shape[0]}"):
        layer(L.Input(shape))


def test_wrong_shape_after_build() -> None:
    conv = L.Conv1D(2, 3)
    conv(L.Input((9, 4)))
    with pytest.raises(ValueError, match=conv.name):
        conv(L.Input((9, 5)))
    with pytest.raises(ValueError, match="channels"):
        conv(np.zeros((2, 9, 5)))
    for layer in (L.LayerNormalization(), L.BatchNormalization()):
        layer(L.Input((9, 4)))
        with pytest.raises(ValueError, match=layer.name):
            layer(L.Input((9, 3)))
        with pytest.raises(ValueError, match=layer.name):
            layer(np.zeros((2, 9, 3)))


# -- shared layers: one cache per call slot ------------------------------------------------------
@pytest.mark.parametrize("make,training", [
    (lambda: L.Conv1D(3, 3, padding="same", dtype="float64"), False),
    (lambda: L.MaxPooling1D(2, dtype="float64"), False),
    (lambda: L.AveragePooling1D(3, 1, "same", dtype="float64"), False),
    (lambda: L.GlobalMaxPooling1D(dtype="float64"), False),
    (lambda: L.GlobalAveragePooling1D(dtype="float64"), False),
    (lambda: L.LayerNormalization(dtype="float64"), False),
    (lambda: L.BatchNormalization(dtype="float64"), True),
    (lambda: L.GaussianDropout(0.3, dtype="float64"), True),
], ids=["conv", "maxpool", "avgpool", "gmax", "gavg", "ln", "bn", "gdrop"])
def test_shared_call_slots(make: Any, training: bool) -> None:
    layer = make()
    x1, x2 = _x(2, 6, 3, seed=1), _x(2, 6, 3, seed=2)
    layer(x1)
    outs: List[Any] = []
    for key, x in ((1, x1), (2, x2)):
        with call_slot(key):
            outs.append(layer.forward(x, training=training, need_grad=True))
    dy1, dy2 = np.ones_like(outs[0]), 2 * np.ones_like(outs[1]) + outs[1]
    with call_slot(2):
        dx2 = layer.backward(dy2)
        g2 = [w.grad.copy() for w in layer.trainable_weights]
    with call_slot(1):
        dx1 = layer.backward(dy1)
        g1 = [w.grad.copy() for w in layer.trainable_weights]
    assert not np.allclose(dx1, dx2)
    # Each slot's gradient equals a lone call's (noise layers: dx = dy * y / x).
    for x, dy, y, dx, g in ((x1, dy1, outs[0], dx1, g1), (x2, dy2, outs[1], dx2, g2)):
        if isinstance(layer, L.GaussianDropout):
            np.testing.assert_allclose(dx, dy * y / x, rtol=1e-12)
            continue
        if isinstance(layer, L.BatchNormalization):
            layer.moving_mean.value[...] = 0   # the lone call reuses batch statistics
        layer.forward(x, training=training, need_grad=True)
        np.testing.assert_allclose(layer.backward(dy), dx, rtol=1e-12)
        for w, gw in zip(layer.trainable_weights, g):
            np.testing.assert_allclose(w.grad, gw, rtol=1e-12)


# -- dtypes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", ALL_LAYERS, ids=IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtypes(make: Any, dtype: str) -> None:
    cfg = make().get_config()
    cfg.pop("name")
    layer = type(make()).from_config({**cfg, "dtype": dtype})
    x = _x(2, 6, 3)
    layer(x[:1])                                           # build
    y = layer.forward(x, training=True, need_grad=True)
    assert y.dtype == np.dtype(dtype)
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == np.dtype(dtype)
    assert all(w.dtype == np.dtype(dtype) for w in layer.weights)
    assert all(w.grad.dtype == np.dtype(dtype) for w in layer.trainable_weights)
