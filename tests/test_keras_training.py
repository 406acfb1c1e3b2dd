"""fit/evaluate/predict semantics (Keras 3), callbacks, get/set_weights, summary, errors."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest

from rnnkit import backend, callbacks, layers as L, optimizers
from rnnkit.models import Sequential, load_model


@pytest.fixture(autouse=True)
def float64():
    backend.set_floatx("float64")
    backend.set_random_seed(5)
    yield
    backend.set_floatx("float32")


def _model(opt="sgd", loss="mse", **kw) -> Sequential:
    m = Sequential([L.SimpleRNN(4, return_sequences=True, input_shape=(6, 2)), L.Dense(1)])
    m.compile(opt, loss, **kw)
    return m


RNG = np.random.default_rng(1)
X = RNG.normal(size=(20, 6, 2))
Y = RNG.normal(size=(20, 6, 1))


def test_fit_no_shuffle_equals_manual_sgd_steps_and_weighted_epoch_loss() -> None:
    m = _model()
    w0 = m.get_weights()
    ref = _model()
    ref.set_weights(w0)
    hist = m.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0, validation_split=0.25)
    # manual replay: last 25% held out before shuffling; batches 8, 7 (partial kept)
    xt, yt = X[:15], Y[:15]
    for _ in range(2):
        losses, sizes = [], []
        for s in (slice(0, 8), slice(8, 15)):
            loss, grads = ref.loss_and_gradients(xt[s], yt[s])
            for w, g in zip(ref.trainable_weights, grads):
                w.value -= 0.01 * g
            losses.append(loss)
            sizes.append(len(xt[s]))
        epoch_loss = np.average(losses, weights=sizes)
    assert hist.history["loss"][-1] == pytest.approx(epoch_loss, rel=1e-12)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)
    assert hist.history["val_loss"][-1] == pytest.approx(m.evaluate(X[15:], Y[15:], verbose=0))
    assert hist.epoch == [0, 1]


def test_metrics_validation_data_train_on_batch_and_predict() -> None:
    m = Sequential([L.GRU(5, input_shape=(6, 2)), L.Dense(3, activation="softmax")])
    m.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    y = RNG.integers(0, 3, size=20)
    h = m.fit(X, y, batch_size=5, epochs=3, verbose=0, validation_data=(X[:6], y[:6]))
    assert list(h.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    loss, acc = m.evaluate(X, y, verbose=0)
    assert 0 <= acc <= 1 and loss > 0
    assert m.metrics_names == ["loss", "accuracy"]
    assert isinstance(m.train_on_batch(X[:5], y[:5]), list)
    p = m.predict(X, batch_size=7, verbose=0)
    np.testing.assert_allclose(p, m.predict_on_batch(X), atol=1e-12)
    np.testing.assert_allclose(p.sum(-1), 1.0)


def test_progress_bar_verbose_modes(capsys: pytest.CaptureFixture) -> None:
    m = _model(metrics=["mae"])
    m.fit(X, Y, batch_size=8, epochs=2, verbose=2, validation_split=0.2)
    out = capsys.readouterr().out
    # Keras sorts the logs: loss, mae, val_loss, val_mae (checked in test_keras_parity.py)
    lines = re.findall(r"^2/2 - \d+s - \d+(?:us|ms|s)/step - loss: \S+ - mae: \S+ - val_loss: \S+ "
                       r"- val_mae: \S+$", out, flags=re.M)
    assert len(lines) == 2 and out.count("Epoch 2/2") == 1
    m.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""
    bar = callbacks.Progbar(3, stream=io.StringIO())
    bar.update(3, [("loss", 0.00012)])
    assert bar.stream.getvalue().startswith("3/3 ━━━━━━━━━━━━━━━━━━━━ ")
    assert bar.stream.getvalue().rstrip().endswith("- loss: 1.2000e-04")


def test_get_set_weights_checks() -> None:
    m = _model()
    w = m.get_weights()
    assert [a.shape for a in w] == [(2, 4), (4, 4), (4,), (4, 1), (1,)]
    with pytest.raises(ValueError, match="5 weight arrays"):
        m.set_weights(w[:-1])
    bad = list(w)
    bad[1] = np.zeros((4, 5))
    with pytest.raises(ValueError, match=r"weights\[1\].*\(4, 4\)"):
        m.set_weights(bad)
    m.set_weights([a + 1 for a in w])
    np.testing.assert_allclose(m.get_weights()[0], w[0] + 1)


def test_input_errors() -> None:
    m = _model()
    with pytest.raises(ValueError, match=r"expects \(None, 6, 2\)"):
        m.fit(X[..., :1], Y, verbose=0)
    with pytest.raises(ValueError, match=r"expects"):
        m.predict(X[0], verbose=0)
    with pytest.raises(ValueError, match="samples"):
        m.fit(X, Y[:5], verbose=0)
    with pytest.raises(ValueError, match="Unknown loss"):
        _model(loss="msee")
    with pytest.raises(ValueError, match="Unknown optimizer"):
        _model(opt="sgdd")
    with pytest.raises(RuntimeError, match="compile"):
        Sequential([L.Dense(1, input_shape=(3,))]).fit(np.zeros((2, 3)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="validation_split"):
        m.fit(X, Y, validation_split=1.5, verbose=0)


class _RecordWeights(callbacks.Callback):
    """Keeps a copy of the weights at the end of every epoch (put it before the callback under test)."""

    def __init__(self) -> None:
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None) -> None:
        assert epoch == len(self.weights)
        self.weights.append([w.copy() for w in self.model.get_weights()])


def test_early_stopping_restore_and_scheduler() -> None:
    # One batch per epoch; the loss falls for lr=0.5, then rises once the scheduler sets lr=5.
    m = _model(opt=optimizers.SGD(0.5))
    lrs = []
    rec = _RecordWeights()
    es = callbacks.EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    sched = callbacks.LearningRateScheduler(lambda e, lr: lrs.append(lr) or (5.0 if e >= 3 else lr))
    h = m.fit(X, Y, epochs=12, batch_size=20, verbose=0, callbacks=[sched, rec, es], shuffle=False)
    loss = h.history["loss"]
    assert lrs[0] == 0.5 and h.history["learning_rate"] == [0.5] * 3 + [5.0] * (len(loss) - 3)

    # Keras's rule: stop at the first epoch that ends `patience` epochs without improvement.
    best_epoch = int(np.argmin(loss))
    assert es.best == min(loss) and es.best_epoch == best_epoch
    assert 0 < best_epoch and best_epoch + 2 < 12, f"the run must improve, then stop early: {loss}"
    assert all(v >= loss[best_epoch] for v in loss[best_epoch + 1:])
    assert all(loss[e] < min(loss[:e]) for e in range(1, best_epoch + 1)), loss
    assert es.stopped_epoch == best_epoch + 2 and len(loss) == best_epoch + 3
    assert m.stop_training

    # restore_best_weights: the weights at the end of the best epoch (not the last, not the first).
    final = m.get_weights()
    for got, want in zip(final, rec.weights[best_epoch]):
        np.testing.assert_array_equal(got, want)
    assert not all(np.array_equal(a, b) for a, b in zip(final, rec.weights[-1]))
    assert m.evaluate(X, Y, verbose=0) < loss[-1]


def test_model_checkpoint_best_only(tmp_path) -> None:
    # lr=1 makes val_loss go up and down: saving at every epoch must be told apart.
    m = _model(opt=optimizers.SGD(1.0))
    rec = _RecordWeights()
    path = str(tmp_path / "ck-{epoch:02d}.npz")
    ck = callbacks.ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    h = m.fit(X, Y, epochs=8, batch_size=10, verbose=0, validation_split=0.5, shuffle=False,
              callbacks=[rec, ck])
    val = h.history["val_loss"]
    improved = [e for e in range(len(val)) if val[e] < min(val[:e], default=np.inf)]
    assert 1 < len(improved) < len(val), f"val_loss must both improve and worsen: {val}"
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"ck-{e + 1:02d}.npz" for e in improved]
    assert ck.best == min(val)
    # Each file holds the model as it was at the end of its epoch.
    for e in improved:
        saved = load_model(str(tmp_path / f"ck-{e + 1:02d}.npz"))
        for got, want in zip(saved.get_weights(), rec.weights[e]):
            np.testing.assert_array_equal(got, want)


def test_summary_unbuilt_and_optimizer_line() -> None:
    m = Sequential([L.Dense(3), L.Dense(1)])
    lines = []
    m.summary(print_fn=lines.append)
    assert "0 (unbuilt)" in lines[0] and " ?" in lines[0]
    m2 = _model(opt="adam")
    m2.fit(X, Y, epochs=1, verbose=0)
    lines = []
    m2.summary(print_fn=lines.append)
    assert " Optimizer params: " in lines[0]
