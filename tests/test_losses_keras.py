"""Losses against Keras 3.15.1 (TensorFlow backend, float64) recordings, float64 finite
differences of every gradient, crossentropy from the logits of sigmoid/softmax outputs, and
custom (function / subclass) losses.

Fixtures: tests/fixtures/keras_training/losses.npz, made by make_losses.py (never run here).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator

import numpy as np
import pytest

from rnnkit import Input, Model, backend, layers as L, losses, optimizers
from rnnkit.custom_losses import numerical_gradient
from rnnkit.logits import LogitsGradient, logits_of

FIX = Path(__file__).resolve().parent / "fixtures" / "keras_training" / "losses.npz"
DATA = dict(np.load(FIX))
FN_CASES = sorted({k.split("/")[1] for k in DATA if k.startswith("fn/")})
MODEL_CASES = sorted({k.split("/")[1] for k in DATA if k.startswith("model/")})
RTOL = 1e-9


@pytest.fixture
def f64() -> Iterator[None]:
    old = backend.floatx()
    backend.set_floatx("float64")
    try:
        yield
    finally:
        backend.set_floatx(old)


def _loss(cfg: Dict[str, Any], **over: Any) -> losses.Loss:
    return losses.get({"class_name": cfg["class_name"], "config": {**cfg["config"], **over}})


# -- loss functions vs Keras ------------------------------------------------------------------
@pytest.mark.parametrize("case", FN_CASES)
def test_loss_values_and_gradient_equal_keras(case: str) -> None:
    p = f"fn/{case}/"
    cfg = json.loads(str(DATA[p + "config"]))
    t, yp, sw = DATA[p + "y_true"], DATA[p + "y_pred"], DATA[p + "sw"]
    np.testing.assert_allclose(_loss(cfg, reduction=None)(t, yp), DATA[p + "none"],
                               rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(_loss(cfg, reduction="sum")(t, yp), DATA[p + "sum"],
                               rtol=RTOL, atol=1e-12)
    value, grad = _loss(cfg).value_and_grad(t, yp, sample_weight=sw)
    assert value == pytest.approx(float(DATA[p + "value_sw"]), rel=RTOL, abs=1e-12)
    np.testing.assert_allclose(grad, DATA[p + "grad"], rtol=1e-8, atol=1e-12)


def _fd_total(loss: losses.Loss, t: np.ndarray, yp: np.ndarray, sw: np.ndarray) -> np.ndarray:
    g = np.zeros_like(yp)
    for i in np.ndindex(yp.shape):
        h = 1e-6 * max(1.0, abs(yp[i]))
        a, b = yp.copy(), yp.copy()
        a[i] += h
        b[i] -= h
        g[i] = (loss(t, a, sample_weight=sw) - loss(t, b, sample_weight=sw)) / (2 * h)
    return g


FD_CASES = {
    "mse": ({}, "reg"), "mae": ({}, "reg"), "huber": ({"delta": 0.7}, "reg"),
    "log_cosh": ({}, "reg"), "mape": ({}, "reg"), "msle": ({}, "pos"), "kld": ({}, "prob"),
    "poisson": ({}, "pos"), "cosine_similarity": ({}, "reg"), "hinge": ({}, "bin"),
    "squared_hinge": ({}, "bin"), "categorical_hinge": ({}, "onehot"),
    "binary_crossentropy": ({"label_smoothing": 0.1}, "bin_prob"),
    "categorical_crossentropy": ({"label_smoothing": 0.2}, "onehot_prob"),
    "sparse_categorical_crossentropy": ({}, "labels_prob"),
}
FD_LOGITS = ["binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"]


def _fd_data(kind: str, rng: np.random.Generator) -> Any:
    shape = (3, 4)
    reg = rng.normal(size=shape)
    prob = rng.dirichlet(np.ones(4), size=3)
    return {
        "reg": (rng.normal(size=shape), reg),
        "pos": (rng.uniform(0, 2, shape), rng.uniform(0.1, 2, shape)),
        "prob": (rng.dirichlet(np.ones(4), size=3), prob),
        "bin": (rng.integers(0, 2, shape).astype(float), reg),
        "onehot": (np.eye(4)[[0, 2, 3]], reg),
        "bin_prob": (rng.integers(0, 2, shape).astype(float), rng.uniform(0.05, 0.95, shape)),
        "onehot_prob": (np.eye(4)[[0, 2, 3]], prob),
        "labels_prob": (np.array([1, 3, 0]), prob),
        "logits": (np.eye(4)[[0, 2, 3]], reg * 3),
    }[kind]


@pytest.mark.parametrize("name", sorted(FD_CASES))
def test_gradient_matches_float64_finite_differences(name: str) -> None:
    rng = np.random.default_rng(7)
    kwargs, kind = FD_CASES[name]
    loss = losses.get({"class_name": type(losses.get(name)).__name__, "config": kwargs})
    t, yp = _fd_data(kind, rng)
    sw = rng.uniform(0.5, 2, 3)
    _, grad = loss.value_and_grad(t, yp, sample_weight=sw)
    np.testing.assert_allclose(grad, _fd_total(loss, t, yp, sw), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", FD_LOGITS)
def test_from_logits_gradient_matches_finite_differences(name: str) -> None:
    rng = np.random.default_rng(8)
    cls = type(losses.get(name))
    kw = {} if name.startswith("sparse") else {"label_smoothing": 0.1}
    loss = cls(from_logits=True, **kw)
    t, z = _fd_data("logits", rng)
    if name.startswith("sparse"):
        t = t.argmax(-1)
    elif name.startswith("binary"):
        t = (t > 0).astype(float)
    _, grad = loss.value_and_grad(t, z)
    np.testing.assert_allclose(grad, _fd_total(loss, t, z, None), rtol=1e-6, atol=1e-9)


def test_cosine_similarity_axis_gradient_and_names() -> None:
    rng = np.random.default_rng(3)
    t, yp = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    loss = losses.CosineSimilarity(axis=1)
    assert loss(t, yp, sample_weight=None).shape == ()
    _, g = loss.value_and_grad(t, yp)
    np.testing.assert_allclose(g, _fd_total(loss, t, yp, None), rtol=1e-6, atol=1e-9)
    # names and functions as Keras
    assert isinstance(losses.get("huber"), losses.Huber)
    assert losses.get("huber").name == "huber_loss"
    assert isinstance(losses.get("Huber"), losses.Huber)
    assert isinstance(losses.get("mape"), losses.MeanAbsolutePercentageError)
    assert isinstance(losses.get("MSLE"), losses.MeanSquaredLogarithmicError)
    assert isinstance(losses.get("kld"), losses.KLDivergence)
    assert isinstance(losses.get(losses.Poisson), losses.Poisson)
    np.testing.assert_allclose(losses.huber(t, yp, delta=0.5),
                               losses.Huber(0.5, reduction=None)(t, yp))
    cfg = losses.serialize(losses.Huber(delta=0.3))
    assert losses.get(cfg).delta == 0.3


@pytest.mark.parametrize("bad", [
    lambda: losses.Huber(delta="x"), lambda: losses.Huber(delta=-1.0),
    lambda: losses.BinaryCrossentropy(label_smoothing=2.0),
    lambda: losses.CategoricalCrossentropy(axis=1),
    lambda: losses.SparseCategoricalCrossentropy(ignore_class=1.5),
    lambda: losses.CosineSimilarity(axis="a"),
])
def test_bad_arguments_name_the_argument(bad: Any) -> None:
    with pytest.raises(ValueError, match="`(delta|label_smoothing|axis|ignore_class)`"):
        bad()


# -- crossentropy from the logits of sigmoid / softmax outputs ---------------------------------
def _model(spec: Dict[str, Any], x: np.ndarray) -> Model:
    inp = Input(x.shape[1:])
    kind, units, act = spec["layer"], spec["units"], spec["act"]
    if kind == "activation_layer":
        out = L.Activation(act)(L.Dense(units)(inp))
    elif kind == "time_distributed":
        out = L.TimeDistributed(L.Dense(units, activation=act))(inp)
    elif kind == "conv1d":
        out = L.Conv1D(units, 2, activation=act)(inp)
    else:
        out = L.Dense(units, activation=act)(inp)
    return Model(inp, out)


@pytest.mark.parametrize("case", MODEL_CASES)
def test_model_loss_gradient_and_step_equal_keras(case: str, f64: None) -> None:
    p = f"model/{case}/"
    spec = json.loads(str(DATA[p + "spec"]))
    x, y = DATA[p + "x"], DATA[p + "y"]
    model = _model(spec, x)
    n = len(model.weights)
    model.set_weights([DATA[p + f"w{i}"] for i in range(n)])
    loss = spec["loss"] if isinstance(spec["loss"], str) else losses.get(spec["loss"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # from_logits=True on a sigmoid output
        model.compile(optimizer=optimizers.SGD(learning_rate=1.0), loss=loss,
                      metrics=[spec["metric"]] if spec["metric"] else None)
        value, grads = model.loss_and_gradients(x, y, training=True)
        assert value == pytest.approx(float(DATA[p + "tape_loss"]), rel=1e-10)
        for i, g in enumerate(grads):
            np.testing.assert_allclose(g, DATA[p + f"tape_g{i}"], rtol=1e-8, atol=1e-10)
        ev = model.evaluate(x, y, verbose=0, return_dict=True)
        assert ev["loss"] == pytest.approx(float(DATA[p + "eval_loss"]), rel=1e-10)
        if spec["metric"]:
            assert ev[spec["metric"]] == pytest.approx(float(DATA[p + "eval_metric"]), rel=1e-10)
        plain = np.array(model.predict(x, verbose=0))  # a copy: no logits -> probabilities
        lo = losses.get(loss)
        assert lo(y, plain) == pytest.approx(float(DATA[p + "prob_loss"]), rel=1e-9)
        model.train_on_batch(x, y)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, DATA[p + f"step_w{i}"], rtol=1e-8, atol=1e-10)


def test_confidently_wrong_sigmoid_costs_its_logit_and_keeps_a_gradient(f64: None) -> None:
    inp = Input((1,))
    model = Model(inp, L.Dense(1, activation="sigmoid")(inp))
    model.set_weights([np.array([[30.0]]), np.array([0.0])])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    x, y = np.array([[1.0]]), np.array([[0.0]])
    value, grads = model.loss_and_gradients(x, y)
    assert value == pytest.approx(30.0, rel=1e-9)  # not -log(1e-7) ~ 16.1
    assert grads[0][0, 0] == pytest.approx(1.0, rel=1e-9)  # sigmoid(30) - 0
    out = model(x)
    assert logits_of(out) is not None and logits_of(out.copy()) is None
    assert losses.get("binary_crossentropy")(y, out.copy()) == pytest.approx(16.118, rel=1e-4)


def test_logits_gradient_passes_a_linear_activation_and_sums_with_other_paths(f64: None) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), np.eye(4)[rng.integers(0, 4, 5)]
    inp = Input((3,))
    d = L.Dense(4, activation="softmax")
    a = Model(inp, L.Activation("linear")(d(inp)))
    a.compile(optimizer="sgd", loss="categorical_crossentropy")
    inp2 = Input((3,))
    b = Model(inp2, L.Dense(4, activation="softmax")(inp2))
    b.set_weights(a.get_weights())
    b.compile(optimizer="sgd", loss="categorical_crossentropy")
    va, ga = a.loss_and_gradients(x, y)
    vb, gb = b.loss_and_gradients(x, y)
    assert va == pytest.approx(vb, rel=1e-12)
    for u, v in zip(ga, gb):
        np.testing.assert_allclose(u, v, rtol=1e-12)
    # LogitsGradient arithmetic: scaling and an extra dL/dy through the activation
    out = np.array([0.5])
    g = LogitsGradient(np.array([1.0]), out) * 2.0 + np.array([3.0])
    assert g.dz[0] == 2.0 and g.extra[0] == 3.0


# -- custom losses -----------------------------------------------------------------------------
def my_mse(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return np.mean((y_pred - y_true) ** 2, axis=-1)


def test_numerical_gradient_accuracy_on_smooth_losses() -> None:
    rng = np.random.default_rng(11)
    t, yp = rng.normal(size=(6, 5)), rng.normal(size=(6, 5)) * 2
    dl = rng.uniform(0.5, 1.5, 6)
    for loss in (losses.MeanSquaredError(), losses.LogCosh(), losses.Huber(delta=10.0),
                 losses.CosineSimilarity()):
        exact = loss.call_grad(t, yp, dl)
        fd = numerical_gradient(loss.call, t, yp, dl)
        err = np.max(np.abs(fd - exact)) / np.max(np.abs(exact))
        assert err < 1e-8, (type(loss).__name__, err)  # README / docstring state this


def test_function_loss_trains_like_the_builtin(f64: None) -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    models = []
    for loss in (my_mse, "mse"):
        backend.set_random_seed(3)
        inp = Input((3,))
        m = Model(inp, L.Dense(2)(inp))
        m.compile(optimizer=optimizers.SGD(0.1), loss=loss)
        m.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
        models.append(m)
    assert models[0].loss.name == "my_mse"
    for u, v in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-8)


def test_loss_subclass_with_exact_gradient_is_used() -> None:
    calls = []

    class Quartic(losses.Loss):
        def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
            return np.sum((y_pred - y_true) ** 4, axis=-1)

        def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray
                      ) -> np.ndarray:
            calls.append(1)
            return 4 * (y_pred - y_true) ** 3 * dl[..., None]

    t, yp = np.zeros((2, 3)), np.arange(6.0).reshape(2, 3) / 5
    v, g = Quartic().value_and_grad(t, yp)
    assert calls and v == pytest.approx(np.sum(yp ** 4) / 2)

    class NoGrad(Quartic):
        call_grad = losses.Loss.call_grad  # the finite-difference fallback

    _, g2 = NoGrad().value_and_grad(t, yp)
    np.testing.assert_allclose(g2, g, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("fn, match", [
    (lambda t, p: np.ones(7), "shape"),
    (lambda t, p: np.log(p[:, 0] - 10.0), "not finite"),
    (lambda t, p: 1 / 0, "ZeroDivisionError"),
])
def test_undifferentiable_function_errors_name_it(fn: Any, match: str) -> None:
    fn.__name__ = "bad_loss"
    loss = losses.get(fn)
    with pytest.raises(ValueError, match=f"bad_loss.*{match}|{match}.*bad_loss"):
        with np.errstate(all="ignore"):
            loss.value_and_grad(np.zeros((2, 3)), np.ones((2, 3)))


def test_save_model_with_custom_loss_keeps_weights_drops_compile(tmp_path: Path) -> None:
    inp = Input((3,))
    m = Model(inp, L.Dense(2)(inp))
    m.compile(optimizer="adam", loss=my_mse)
    path = tmp_path / "m.npz"
    with pytest.warns(UserWarning, match="my_mse"):
        m.save(str(path))
    loaded = losses  # noqa: F841  (import kept for symmetry)
    from rnnkit.models import load_model
    back = load_model(str(path))
    assert not back.compiled
    for u, v in zip(back.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(u, v)
    # built-in new losses round-trip through the schema-checked compile config
    m.compile(optimizer="adam", loss=losses.Huber(delta=0.25))
    m.save(str(path))
    assert load_model(str(path)).loss.delta == 0.25
