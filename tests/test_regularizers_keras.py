"""Regularizers and constraints against Keras 3 recordings (tests/fixtures/keras_training/
regularizers.npz, made by make_regularizers.py), float64 finite differences of every penalty
gradient (weights and activity), the Trainer's use of them (fit / evaluate parity with Keras,
Sequential and functional), configs, saving, and the layers that pass them through."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import numpy as np
import pytest

import rnnkit
from rnnkit import config_schema as cs
from rnnkit import constraints as C
from rnnkit import layers as L
from rnnkit import regularizers as R
from rnnkit.models import Model, Sequential, load_model

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "keras_training")
REC = np.load(os.path.join(HERE, "regularizers.npz"))
with open(os.path.join(HERE, "regularizers.json")) as _f:
    CFG: Dict[str, Any] = json.load(_f)

REGS = {
    "l1": R.L1(0.01), "l2": R.L2(0.01), "l1l2": R.L1L2(l1=0.01, l2=0.02),
    "name_l1": R.get("l1"), "name_l2": R.get("l2"), "name_l1l2": R.get("l1l2"),
    "orth_rows": R.OrthogonalRegularizer(0.05, mode="rows"),
    "orth_columns": R.OrthogonalRegularizer(0.05, mode="columns"),
}
CONS = {
    "maxnorm_default": (C.MaxNorm(), "con_w"), "maxnorm_1_axis1": (C.MaxNorm(1.0, axis=1), "con_w"),
    "nonneg": (C.NonNeg(), "con_w"), "unitnorm": (C.UnitNorm(), "con_w"),
    "unitnorm_axis1": (C.UnitNorm(axis=1), "con_w"),
    "minmax": (C.MinMaxNorm(min_value=0.5, max_value=1.2, rate=0.7, axis=0), "con_w"),
    "minmax_default": (C.MinMaxNorm(), "con_w"),
    "maxnorm_3d_axes01": (C.MaxNorm(max_value=1.5, axis=[0, 1]), "con_w3"),
}


def _fd(f: Any, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


# -- the regularizers themselves ----------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(REGS))
def test_penalty_and_gradient_match_keras(key: str) -> None:
    reg, w = REGS[key], REC["reg_w"]
    # Keras keeps L1's and the orthogonal factor as float32 tensors: ~1e-8 relative.
    np.testing.assert_allclose(reg(w), REC[f"reg_{key}_value"], rtol=2e-7, atol=1e-9)
    np.testing.assert_allclose(reg.gradient(w), REC[f"reg_{key}_grad"], rtol=2e-6, atol=1e-8)


@pytest.mark.parametrize("key", sorted(REGS))
def test_gradient_finite_differences(key: str) -> None:
    w = REC["reg_w"].copy()
    w[1, 2] = 0.3  # L1 has a kink at the recorded exact zero
    np.testing.assert_allclose(REGS[key].gradient(w), _fd(REGS[key], w), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("key", sorted(REGS))
def test_serialization_matches_keras(key: str) -> None:
    ours, theirs = R.serialize(REGS[key]), CFG[f"reg_{key}"]
    assert ours["class_name"] == theirs["class_name"]
    assert set(ours["config"]) == set(theirs["config"])
    for k, v in ours["config"].items():
        assert v == pytest.approx(theirs["config"][k], rel=1e-6) if isinstance(v, float) \
            else v == theirs["config"][k]
    back = R.get(theirs)  # Keras's own form (module, registered_name) resolves too
    np.testing.assert_allclose(back(REC["reg_w"]), REGS[key](REC["reg_w"]), rtol=1e-6)


def test_names_defaults_and_errors() -> None:
    assert R.get("l2").get_config() == {"l2": 0.01}
    assert R.get("l1").get_config() == {"l1": 0.01}
    assert R.get("l1l2").get_config() == {"l1": 0.0, "l2": 0.0}          # Keras 3
    assert R.get("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}       # Keras 2 / docs
    assert R.get(R.L2).get_config() == {"l2": 0.01}
    assert R.get(None) is None
    assert R.serialize(R.L2(0.5)) == {"class_name": "L2", "config": {"l2": 0.5}}
    for bad in (lambda: R.L2(-1), lambda: R.L1(float("nan")), lambda: R.L1L2(l1="x"),
                lambda: R.OrthogonalRegularizer(0.1, mode="diag"), lambda: R.get("l3"),
                lambda: R.get(lambda w: 0.0), lambda: R.get({"class_name": "Evil"})):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError, match="rank 2"):
        R.OrthogonalRegularizer()(np.ones(3))
    with pytest.raises(ValueError, match="kernel_regularizer"):
        L.Dense(2, kernel_regularizer="l3")


# -- constraints --------------------------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(CONS))
def test_constraint_matches_keras(key: str) -> None:
    con, w = CONS[key]
    np.testing.assert_allclose(con(REC[w]), REC[f"con_{key}"], rtol=1e-12, atol=1e-14)
    ours, theirs = C.serialize(con), CFG[f"con_{key}"]
    assert ours["class_name"] == theirs["class_name"] and ours["config"] == theirs["config"]
    np.testing.assert_allclose(C.get(theirs)(REC[w]), REC[f"con_{key}"], rtol=1e-12)


def test_constraint_names_and_errors() -> None:
    assert isinstance(C.get("max_norm"), C.MaxNorm) and C.get("max_norm").max_value == 2
    assert isinstance(C.get("non_neg"), C.NonNeg)
    assert C.get("unit_norm").axis == 0 and C.get("min_max_norm").get_config()["max_value"] == 1.0
    for bad in (lambda: C.MaxNorm(axis="0"), lambda: C.MaxNorm(float("inf")),
                lambda: C.get("clip"), lambda: C.get({"class_name": "X", "config": {}})):
        with pytest.raises(ValueError):
            bad()


# -- training: parity with Keras ----------------------------------------------------------------
def _layers(extra: bool) -> List[Any]:
    lk: Dict[str, Any] = dict(kernel_regularizer=R.L2(0.01), recurrent_regularizer=R.L2(0.02),
                              bias_regularizer=R.L1(0.01))
    dk: Dict[str, Any] = dict(kernel_regularizer="l2")
    if extra:
        lk.update(activity_regularizer=R.L1L2(l1=0.001, l2=0.01),
                  recurrent_constraint=C.MaxNorm(0.8, axis=0))
        dk.update(kernel_constraint=C.UnitNorm(axis=0), bias_constraint=C.NonNeg(),
                  activity_regularizer=R.L2(0.05),
                  kernel_regularizer=R.OrthogonalRegularizer(0.1, "columns"))
    return [L.LSTM(4, **lk), L.Dense(2, **dk)]


def _model(extra: bool, functional: bool) -> Any:
    lstm, dense = _layers(extra)
    if functional:
        inp = L.Input((5, 3))
        m: Any = Model(inp, dense(lstm(inp)))
    else:
        m = Sequential([L.Input((5, 3)), lstm, dense])
    m.set_weights([REC[f"fit_init_{i}"] for i in range(5)])
    m.compile(optimizer=rnnkit.optimizers.SGD(0.1), loss="mse")
    return m


@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
@pytest.mark.parametrize("tag", ["fit", "fitx"])
def test_fit_matches_keras(tag: str, functional: bool) -> None:
    """L2-regularised LSTM + Dense, SGD, 2 epochs, shuffle=False (``fitx`` adds activity
    regularizers, an orthogonal regularizer and three constraints): History (which includes
    the penalties), final weights and evaluate() (which includes them too) as Keras."""
    x, y = REC["fit_x"], REC["fit_y"]
    m = _model(tag == "fitx", functional)
    np.testing.assert_allclose(m.evaluate(x, y, batch_size=4, verbose=0),
                               REC[f"{tag}_eval_before"], rtol=1e-6)
    h = m.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(h.history["loss"], REC[f"{tag}_loss"], rtol=1e-6)
    for i, w in enumerate(m.get_weights()):
        np.testing.assert_allclose(w, REC[f"{tag}_final_{i}"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.evaluate(x, y, batch_size=4, verbose=0),
                               REC[f"{tag}_eval_after"], rtol=1e-6)


def test_total_gradient_finite_differences_float64() -> None:
    """loss_and_gradients (loss + weight penalties + activity penalties) against central
    differences of the same total, float64, through the Sequential chain."""
    rnnkit.backend.set_floatx("float64")
    try:
        rng = np.random.default_rng(3)
        x, y = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 2))
        m = Sequential([L.Input((4, 2)),
                        L.GRU(3, return_sequences=True, kernel_regularizer=R.L1L2(0.01, 0.02),
                              activity_regularizer=R.L2(0.1)),
                        L.Conv1D(2, 2, activation="gelu", bias_regularizer="l2",
                                 activity_regularizer=R.L1(0.03)),
                        L.LayerNormalization(gamma_regularizer=R.L2(0.2)),
                        L.Flatten(),
                        L.Dense(2, kernel_regularizer=R.OrthogonalRegularizer(0.3),
                                activity_regularizer=R.L1L2(0.01, 0.05))])
        m.compile("sgd", "mse")
        total, grads = m.loss_and_gradients(x, y)
        for w, g in zip(m.trainable_weights, grads):
            def f(v: np.ndarray, w: Any = w) -> float:
                old = w.value.copy()
                w.value[...] = v
                try:
                    return m.loss_and_gradients(x, y)[0]
                finally:
                    w.value[...] = old
            np.testing.assert_allclose(g, _fd(f, w.value.copy()), rtol=1e-5, atol=1e-8,
                                       err_msg=w.name)
        plain = m.evaluate(x, y, verbose=0)
        assert plain == pytest.approx(total, rel=1e-12)
    finally:
        rnnkit.backend.set_floatx("float32")


def test_frozen_weights_are_not_regularized_or_constrained() -> None:
    """Keras adds penalties of trainable weights only, and constrains what it updates."""
    d = L.Dense(2, kernel_regularizer=R.L2(1.0), kernel_constraint=C.NonNeg(), trainable=False)
    m = Sequential([L.Input((3,)), d, L.Dense(1)])
    m.compile("sgd", "mse")
    x, y = np.ones((2, 3), "float32"), np.zeros((2, 1), "float32")
    k0 = d.kernel.numpy()
    assert m.evaluate(x, y, verbose=0) == pytest.approx(float(np.mean(m.predict(x, verbose=0) ** 2)),
                                                        rel=1e-6)
    m.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(d.kernel.numpy(), k0)


# -- pass-through layers ------------------------------------------------------------------------
def test_wrappers_and_cells_pass_regularizers_through() -> None:
    bi = L.Bidirectional(L.LSTM(3, return_sequences=True, kernel_regularizer=R.L2(0.1),
                                recurrent_constraint="non_neg"))
    td = L.TimeDistributed(L.Dense(2, kernel_regularizer="l1", bias_constraint=C.MaxNorm(1.0)))
    rnn = L.RNN(L.GRUCell(3, kernel_regularizer=R.L2(0.2), bias_constraint="non_neg"))
    m = Sequential([L.Input((4, 2)), bi, td, rnn])
    m.build((None, 4, 2))
    regs = [w.regularizer for w in m.weights if w.regularizer is not None]
    cons = [w.constraint for w in m.weights if w.constraint is not None]
    assert len(regs) == 4 and len(cons) == 4
    assert bi.backward_layer.kernel.regularizer.get_config() == {"l2": 0.1}
    assert rnn.get_config()["cell"]["config"]["kernel_regularizer"] == \
        {"class_name": "L2", "config": {"l2": 0.2}}
    m.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 4, 2)).astype("float32"), rng.normal(size=(4, 3)).astype("float32")
    m.fit(x, y, epochs=1, verbose=0)
    assert np.all(bi.forward_layer.recurrent_kernel.value >= 0)
    assert np.all(rnn.layers[0].bias.value >= 0)
    clone = Sequential.from_config(m.get_config())
    clone.build((None, 4, 2))
    assert [str(w.regularizer) for w in clone.weights] == [str(w.regularizer) for w in m.weights]
    assert [str(w.constraint) for w in clone.weights] == [str(w.constraint) for w in m.weights]


# -- configs and saving -------------------------------------------------------------------------
def test_layer_configs_match_keras() -> None:
    keys = ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
            "activity_regularizer", "kernel_constraint", "recurrent_constraint",
            "bias_constraint")
    m = _model(True, False)
    for ours, theirs in zip(m.layers, CFG["fitx_layers"]):
        cfg = ours.get_config()
        for k in keys:
            if k not in theirs:
                assert k not in cfg
                continue
            a, b = cfg[k], theirs[k]
            assert (a is None) == (b is None), k
            if a is not None:
                assert a["class_name"] == b["class_name"], k
                for f, v in a["config"].items():
                    want = b["config"][f]
                    assert (v == want if isinstance(v, (str, list)) else
                            v == pytest.approx(want, rel=1e-6)), (k, f)
        cs_fields = type(ours).CONFIG_FIELDS
        for k, v in theirs.items():  # Keras's own entries pass our schema
            if k in keys:
                cs_fields[k](v, f"keras.{k}")


def test_save_load_round_trip(tmp_path: Any) -> None:
    m = _model(True, False)
    x, y = REC["fit_x"], REC["fit_y"]
    m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    path = str(tmp_path / "reg.npz")
    m.save(path)
    m2 = load_model(path)
    assert m2.get_config() == m.get_config()
    h1 = m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    h2 = m2.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert h1.history == h2.history
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("value,match", [
    ({"class_name": "L2", "config": {"l2": -0.1}}, ">= 0"),
    ({"class_name": "L2", "config": {"l2": float("nan")}}, ">= 0"),
    ({"class_name": "L2", "config": {"l2": "0.1"}}, ">= 0"),
    ({"class_name": "L1", "config": {"l2": 0.1}}, "unknown field"),
    ({"class_name": "os.system", "config": {}}, "unknown class"),
    ({"class_name": "OrthogonalRegularizer", "config": {"mode": "diag"}}, "mode"),
    ("l7", "unknown name"),
    ([1, 2], "expected null"),
])
def test_schema_refuses_bad_regularizers(value: Any, match: str) -> None:
    with pytest.raises(cs.SchemaError, match=match):
        cs.v_regularizer(value, "config.layers[1].kernel_regularizer")


@pytest.mark.parametrize("value,match", [
    ({"class_name": "MaxNorm", "config": {"max_value": float("inf")}}, "finite"),
    ({"class_name": "MaxNorm", "config": {"axis": "0"}}, "axis"),
    ({"class_name": "UnitNorm", "config": {"axis": [0, 99]}}, "axis"),
    ({"class_name": "NonNeg", "config": {"x": 1}}, "unknown field"),
    ({"class_name": "Lambda", "config": {}}, "unknown class"),
])
def test_schema_refuses_bad_constraints(value: Any, match: str) -> None:
    with pytest.raises(cs.SchemaError, match=match):
        cs.v_constraint(value, "config.layers[1].kernel_constraint")


def test_hostile_saved_file_is_refused(tmp_path: Any) -> None:
    m = Sequential([L.Input((3,)), L.Dense(2, kernel_regularizer=R.L2(0.1))])
    m.compile("sgd", "mse")
    path = str(tmp_path / "m.npz")
    m.save(path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    cfg = json.loads(bytes(arrays["__rnnkit_config__"]).decode())
    text = json.dumps(cfg).replace('"l2": 0.1', '"l2": -5.0')
    assert text != json.dumps(cfg)
    arrays["__rnnkit_config__"] = np.frombuffer(text.encode(), np.uint8)
    bad = str(tmp_path / "bad.npz")
    with open(bad, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match="kernel_regularizer"):
        load_model(bad)


# -- Embedding with pretrained vectors ----------------------------------------------------------
def test_embedding_pretrained_vectors() -> None:
    table = np.arange(12, dtype="float32").reshape(4, 3)
    ids = np.array([[1, 3], [0, 2]])
    for layer in (L.Embedding(4, 3, weights=[table]), L.Embedding(4, 3, weights=table),
                  L.Embedding(4, 3, embeddings_initializer=rnnkit.initializers.Constant(table)),
                  L.Embedding(4, 3, embeddings_initializer=table)):
        np.testing.assert_array_equal(layer(ids), table[ids])
        assert layer.get_config()["embeddings_initializer"]["class_name"] == "RandomUniform"
    frozen = L.Embedding(4, 3, weights=[table], trainable=False,
                         embeddings_regularizer=R.L2(1.0))
    m = Sequential([L.Input((2,), dtype="int32"), frozen, L.Flatten(), L.Dense(1)])
    m.compile("sgd", "mse")
    m.fit(ids, np.ones((2, 1), "float32"), epochs=2, verbose=0)
    np.testing.assert_array_equal(frozen.embeddings.value, table)
    with pytest.raises(ValueError, match="weights"):
        L.Embedding(4, 3, weights=[np.ones((3, 3))])
    with pytest.raises(ValueError, match="embeddings_initializer"):
        L.Embedding(4, 3, embeddings_initializer=np.ones((4, 2)))
