"""Optimizer updates and losses pinned to Keras 3's published formulas (hand-computed numbers).

Expected values are written out from the formulas in plain Python floats, independent of
the implementation (which works on arrays in the variable dtype).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from rnnkit import backend, losses, metrics, optimizers


@pytest.fixture(autouse=True)
def float64():
    backend.set_floatx("float64")
    yield
    backend.set_floatx("float32")


def _run(opt: optimizers.Optimizer, grads, w0=1.0, steps=None):
    w = np.array([w0], dtype=np.float64)
    out = []
    for g in grads:
        opt.apply([np.array([g])], [w])
        out.append(float(w[0]))
    return out


G = [0.5, -0.25, 1.5]


def test_defaults_match_keras3() -> None:
    assert optimizers.SGD().learning_rate == 0.01
    a = optimizers.Adam()
    assert (a.learning_rate, a.beta_1, a.beta_2, a.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    r = optimizers.RMSprop()
    assert (r.learning_rate, r.rho, r.epsilon, r.momentum) == (0.001, 0.9, 1e-7, 0.0)
    ag = optimizers.Adagrad()
    assert (ag.learning_rate, ag.initial_accumulator_value, ag.epsilon) == (0.001, 0.1, 1e-7)
    assert isinstance(optimizers.get("rmsprop"), optimizers.RMSprop)


def test_sgd_plain_momentum_nesterov() -> None:
    assert _run(optimizers.SGD(0.1), [0.5]) == pytest.approx([0.95], abs=1e-15)
    # momentum 0.9: m1 = -0.05, w1 = 0.95; m2 = 0.9*-0.05 - 0.1*-0.25 = -0.02, w2 = 0.93
    assert _run(optimizers.SGD(0.1, momentum=0.9), G[:2]) == pytest.approx([0.95, 0.93], abs=1e-15)
    # nesterov: w1 = 1 + 0.9*m1 - 0.1*g1 = 1 - 0.045 - 0.05 = 0.905
    #           m2 = -0.02 ; w2 = 0.905 + 0.9*-0.02 + 0.025 = 0.912
    assert _run(optimizers.SGD(0.1, momentum=0.9, nesterov=True), G[:2]) == pytest.approx(
        [0.905, 0.912], abs=1e-15)


def test_adam_and_amsgrad() -> None:
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    for ams in (False, True):
        w, m, v, vh, exp = 1.0, 0.0, 0.0, 0.0, []
        for t, g in enumerate(G, start=1):
            alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            m += (g - m) * (1 - b1)
            v += (g * g - v) * (1 - b2)
            vh = max(vh, v)
            w -= m * alpha / (math.sqrt(vh if ams else v) + eps)
            exp.append(w)
        got = _run(optimizers.Adam(lr, amsgrad=ams), G)
        assert got == pytest.approx(exp, rel=1e-14)
    # first Adam step moves by ~lr regardless of |g|
    assert _run(optimizers.Adam(0.01), [123.0])[0] == pytest.approx(0.99, abs=1e-8)


@pytest.mark.parametrize("momentum,centered", [(0.0, False), (0.5, False), (0.0, True), (0.5, True)])
def test_rmsprop(momentum: float, centered: bool) -> None:
    lr, rho, eps = 0.01, 0.9, 1e-7
    w, v, a, mom, exp = 1.0, 0.0, 0.0, 0.0, []
    for g in G:
        v = rho * v + (1 - rho) * g * g
        if centered:
            a = rho * a + (1 - rho) * g
            den = v - a * a + eps
        else:
            den = v + eps  # eps inside the sqrt (Keras 3)
        inc = lr * g / math.sqrt(den)
        if momentum:
            mom = momentum * mom + inc
            w -= mom
        else:
            w -= inc
        exp.append(w)
    got = _run(optimizers.RMSprop(lr, momentum=momentum, centered=centered), G)
    assert got == pytest.approx(exp, rel=1e-14)


def test_adagrad() -> None:
    lr, eps, acc, w, exp = 0.1, 1e-7, 0.1, 1.0, []
    for g in G:
        acc += g * g
        w -= lr * g / math.sqrt(acc + eps)
        exp.append(w)
    assert _run(optimizers.Adagrad(lr), G) == pytest.approx(exp, rel=1e-14)


def test_clipping() -> None:
    g1, g2 = np.array([3.0, 4.0]), np.array([12.0])  # norms 5 and 12; global 13
    w1, w2 = np.zeros(2), np.zeros(1)
    optimizers.SGD(1.0, clipnorm=1.0).apply([g1, g2], [w1, w2])
    np.testing.assert_allclose(w1, [-0.6, -0.8], atol=1e-15)
    np.testing.assert_allclose(w2, [-1.0], atol=1e-15)
    w1, w2 = np.zeros(2), np.zeros(1)
    optimizers.SGD(1.0, global_clipnorm=2.6).apply([g1, g2], [w1, w2])  # scale 0.2
    np.testing.assert_allclose(w1, [-0.6, -0.8], atol=1e-15)
    np.testing.assert_allclose(w2, [-2.4], atol=1e-15)
    w1, w2 = np.zeros(2), np.zeros(1)
    optimizers.SGD(1.0, clipvalue=3.5).apply([g1, g2], [w1, w2])
    np.testing.assert_allclose(w1, [-3.0, -3.5])
    np.testing.assert_allclose(w2, [-3.5])
    w = np.zeros(2)
    optimizers.SGD(1.0, clipnorm=10.0).apply([g1], [w])  # below the threshold: unchanged
    np.testing.assert_allclose(w, [-3.0, -4.0])
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)


def test_optimizer_errors() -> None:
    with pytest.raises(ValueError, match="Unknown optimizer"):
        optimizers.get("adamw_typo")
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.Adam(betas=0.9)


def test_float32_updates_stay_float32() -> None:
    backend.set_floatx("float32")
    w = np.ones(3, np.float32)
    optimizers.Adam(0.1).apply([np.full(3, 0.5, np.float32)], [w])
    assert w.dtype == np.float32


# -- losses -----------------------------------------------------------------------------
def test_mse_mae_reduction() -> None:
    yt = np.array([[[0.0], [1.0]], [[2.0], [3.0]]])  # (B=2, T=2, 1)
    yp = np.array([[[1.0], [1.0]], [[2.0], [5.0]]])
    assert losses.get("mean_squared_error")(yt, yp) == pytest.approx((1 + 0 + 0 + 4) / 4)
    assert losses.get("mae")(yt, yp) == pytest.approx((1 + 0 + 0 + 2) / 4)
    assert losses.MeanSquaredError(reduction="sum")(yt, yp) == pytest.approx(5.0)
    np.testing.assert_allclose(losses.MeanSquaredError(reduction="none")(yt, yp), [[1, 0], [0, 4]])
    # (B,) targets against (B, 1) predictions are expanded, as Keras
    assert losses.get("mse")(np.array([1.0, 2.0]), np.array([[1.0], [4.0]])) == pytest.approx(2.0)


def test_masked_loss_is_mean_over_valid_steps() -> None:
    yt, yp = np.zeros((2, 3, 1)), np.arange(6.0).reshape(2, 3, 1)
    mask = np.array([[True, True, False], [True, False, False]])
    # Keras 3.15 apply_mask: weights divide_no_nan(total, valid) -- no eps (checked against
    # real Keras in test_keras_parity.py); nothing valid -> 0
    expected = (0 + 1 + 9) / 3
    assert losses.get("mse")(yt, yp, mask=mask) == pytest.approx(expected, rel=1e-15)
    assert losses.get("mse")(yt, yp, mask=np.zeros((2, 3), bool)) == 0.0


def test_crossentropies() -> None:
    eps = 1e-7
    p = np.array([[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]])
    t = np.array([[0, 0, 1], [1, 0, 0]], float)
    exp = -(math.log(0.5) + math.log(0.9)) / 2
    assert losses.get("categorical_crossentropy")(t, p) == pytest.approx(exp, rel=1e-12)
    assert losses.get("sparse_categorical_crossentropy")([2, 0], p) == pytest.approx(exp, rel=1e-12)
    assert losses.get("sparse_categorical_crossentropy")([[2], [0]], p) == pytest.approx(exp, rel=1e-12)
    # unnormalised probabilities are renormalised first (Keras)
    assert losses.get("categorical_crossentropy")(t, 2 * p) == pytest.approx(exp, rel=1e-12)
    z = np.log(p) + 0.7  # logits of p
    cce = losses.CategoricalCrossentropy(from_logits=True)
    assert cce(t, z) == pytest.approx(exp, rel=1e-12)
    scce = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert scce(np.array([2, 0]), z) == pytest.approx(exp, rel=1e-12)
    # binary: Keras 3.15 TF backend form, the probability clipped to [eps, 1-eps] and no eps
    # inside the logs (recorded: tests/fixtures/keras_training/losses.npz, bce_prob_sat)
    yb, pb = np.array([[1.0, 0.0]]), np.array([[0.8, 1.0]])
    pc = min(1.0, 1 - eps)
    e1 = -math.log(0.8)
    e2 = -math.log(1 - pc)
    assert losses.get("binary_crossentropy")(yb, pb) == pytest.approx((e1 + e2) / 2, rel=1e-9)
    x = np.array([[2.0, -30.0]])
    bl = losses.BinaryCrossentropy(from_logits=True)
    exp_l = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-30.0))) / 2
    assert bl(np.array([[1.0, 0.0]]), x) == pytest.approx(exp_l, rel=1e-12)


def test_loss_errors() -> None:
    with pytest.raises(ValueError, match="Unknown loss"):
        losses.get("mean_square_error")
    with pytest.raises(ValueError, match="shape"):
        losses.get("mse")(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="class ids"):
        losses.get("sparse_categorical_crossentropy")([3, 0], np.full((2, 3), 1 / 3))


def test_accuracy_variants() -> None:
    yp = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    assert isinstance(metrics.get("accuracy", np.array([1, 2]), yp), metrics.SparseCategoricalAccuracy)
    assert isinstance(metrics.get("accuracy", np.eye(3)[[1, 2]], yp), metrics.CategoricalAccuracy)
    assert isinstance(metrics.get("accuracy", np.ones((2, 1)), np.ones((2, 1))), metrics.BinaryAccuracy)
    m = metrics.get("accuracy", np.array([1, 2]), yp)
    m.update_state(np.array([1, 2]), yp)
    assert m.result() == 0.5
    b = metrics.BinaryAccuracy()
    b.update_state(np.array([[1.0], [0.0], [1.0]]), np.array([[0.9], [0.2], [0.4]]))
    assert b.result() == pytest.approx(2 / 3)
