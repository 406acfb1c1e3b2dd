"""Activations against Keras 3 recordings (values and derivatives on a float64 grid, from
tests/fixtures/keras_training/make_regularizers.py), float64 finite differences of every
derivative, and their use in Dense / Conv1D / Activation layers (backward and configs)."""
from __future__ import annotations

import json
import os
from typing import Any, Dict

import numpy as np
import pytest

from rnnkit import activations as A
from rnnkit import config_schema as cs
from rnnkit import layers as L
from rnnkit.models import Sequential

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "keras_training")
REC = np.load(os.path.join(HERE, "regularizers.npz"))
with open(os.path.join(HERE, "regularizers.json")) as _f:
    CFG: Dict[str, Any] = json.load(_f)

#: recording key -> (activation, keyword arguments of the call)
CASES = {
    "relu": (A.relu, {}), "leaky_relu": (A.leaky_relu, {}), "relu6": (A.relu6, {}),
    "sigmoid": (A.sigmoid, {}), "tanh": (A.tanh, {}), "elu": (A.elu, {}),
    "elu_alpha": (A.elu, {"alpha": 0.7}),
    "leaky_relu_slope": (A.leaky_relu, {"negative_slope": 0.05}),
    "selu": (A.selu, {}), "softplus": (A.softplus, {}), "softsign": (A.softsign, {}),
    "silu": (A.silu, {}), "swish": (A.get("swish"), {}), "gelu": (A.gelu, {}),
    "gelu_approximate": (A.gelu, {"approximate": True}), "hard_sigmoid": (A.hard_sigmoid, {}),
    "hard_silu": (A.hard_silu, {}), "hard_swish": (A.get("hard_swish"), {}),
    "exponential": (A.exponential, {}), "mish": (A.mish, {}), "linear": (A.linear, {}),
}


@pytest.mark.parametrize("key", sorted(CASES))
def test_value_and_derivative_match_keras(key: str) -> None:
    act, kw = CASES[key]
    z = REC["act_z"]
    y = act(z, **kw)
    # leaky_relu's slope and gelu's erf are float32-rounded / approximated in TensorFlow.
    np.testing.assert_allclose(y, REC[f"act_{key}_y"], rtol=2e-7, atol=1e-8)
    dz = act.backward(y, np.ones_like(z), z, **kw)
    np.testing.assert_allclose(dz, REC[f"act_{key}_dy"], rtol=2e-7, atol=1e-8)


@pytest.mark.parametrize("key", ["softmax", "log_softmax"])
def test_last_axis_activations_match_keras(key: str) -> None:
    act, z, r = A.get(key), REC["act_z2"], REC["act_r2"]
    y = act(z)
    np.testing.assert_allclose(y, REC[f"act_{key}_y"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(act.backward(y, r, z), REC[f"act_{key}_dy"], rtol=1e-10,
                               atol=1e-13)


@pytest.mark.parametrize("key", sorted(CASES) + ["softmax", "log_softmax"])
def test_derivative_finite_differences(key: str) -> None:
    act, kw = CASES[key] if key in CASES else (A.get(key), {})
    rng = np.random.default_rng(5)
    z = rng.uniform(-4, 4, size=(3, 7))
    z = z[np.all(np.abs(z[..., None] - np.array([-3, 0, 3, 6])) > 1e-3, axis=-1).all(1)]  # kinks
    r = rng.normal(size=z.shape)
    g = act.backward(act(z, **kw), r, z, **kw)
    eps = 1e-6
    num = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[i] += eps
        zm[i] -= eps
        num[i] = ((act(zp, **kw) - act(zm, **kw)) * r).sum() / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


def test_names_and_aliases() -> None:
    for name, want in CFG["act_names"].items():
        assert A.serialize(A.get(name)) == want
    assert A.get("swish") is A.silu and A.get("hard_swish") is A.hard_silu
    with pytest.raises(ValueError, match="Unknown activation"):
        A.get("swoosh")
    with pytest.raises(ValueError, match="pre-activation"):
        A.gelu.backward(np.zeros(2), np.ones(2))


@pytest.mark.parametrize("name", ["gelu", "elu", "selu", "mish", "leaky_relu", "hard_silu",
                                  "softplus", "log_softmax", "exponential", "relu6"])
def test_layers_backward_finite_differences(name: str) -> None:
    """Dense, Conv1D and Activation with the activation: dL/dx and dL/dkernel (float64)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 3))
    for layer in (L.Dense(4, activation=name, dtype="float64"),
                  L.Conv1D(4, 2, activation=name, dtype="float64"),
                  L.Activation(name, dtype="float64")):
        y = layer(x)
        r = rng.normal(size=y.shape)
        layer.forward(x, need_grad=True)
        dx = layer.backward(r)
        eps = 1e-6
        num = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            xp, xm = x.copy(), x.copy()
            xp[i] += eps
            xm[i] -= eps
            num[i] = ((layer.forward(xp) - layer.forward(xm)) * r).sum() / (2 * eps)
        np.testing.assert_allclose(dx, num, rtol=1e-5, atol=1e-8, err_msg=type(layer).__name__)
        if layer.weights:
            k = layer.weights[0]
            gk = k.grad.copy()
            numk = np.zeros_like(k.value)
            for i in np.ndindex(k.shape):
                old = k.value[i]
                k.value[i] = old + eps
                fp = (layer.forward(x) * r).sum()
                k.value[i] = old - eps
                fm = (layer.forward(x) * r).sum()
                k.value[i] = old
                numk[i] = (fp - fm) / (2 * eps)
            np.testing.assert_allclose(gk, numk, rtol=1e-5, atol=1e-8)


def test_configs_round_trip_and_schema() -> None:
    m = Sequential([L.Input((4,)), L.Dense(3, activation="swish"), L.Activation("hard_swish"),
                    L.Dense(2, activation="log_softmax")])
    cfg = m.get_config()
    assert [lc["config"].get("activation") for lc in cfg["layers"]] == \
        ["silu", "hard_silu", "log_softmax"]
    clone = Sequential.from_config(cfg)
    clone.set_weights(m.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    np.testing.assert_array_equal(clone.predict(x, verbose=0), m.predict(x, verbose=0))
    for name in ("gelu", "mish", "hard_swish", "leaky_relu", "exponential"):
        cs.v_activation(name, "where")
    with pytest.raises(cs.SchemaError):
        cs.v_activation("os.system", "where")
