"""Callbacks against Keras 3 recordings (tests/fixtures/keras_training/callbacks.json): the
callbacks are driven with a fake model and fixed logs, exactly as make_callbacks.py drove
Keras's."""
import contextlib
import glob
import io
import json
import math
import os

import numpy as np
import pytest

import rnnkit
from rnnkit import backend, callbacks as C, layers, optimizers
from rnnkit.callbacks._event_file import read_scalars

FIX = json.load(open(os.path.join(os.path.dirname(__file__), "fixtures", "keras_training",
                                  "callbacks.json")))


class FakeModel:
    def __init__(self, lr=0.1):
        self.epoch = -1
        self.restored = None
        self.stop_training = False
        self.optimizer = optimizers.SGD(lr)

    def get_weights(self):
        return [np.array(self.epoch)]

    def set_weights(self, w):
        self.restored = int(w[0])


def drive(cb, values, monitor, lr=0.1):
    m = FakeModel(lr)
    cb.set_model(m)
    cb.set_params({"epochs": len(values), "steps": 1, "verbose": 0})
    out = {"epochs_run": 0, "lrs": [], "logged_lr": []}
    cb.on_train_begin()
    for epoch, v in enumerate(values):
        m.epoch = epoch
        cb.on_epoch_begin(epoch)
        logs = {monitor: v}
        cb.on_epoch_end(epoch, logs)
        out["epochs_run"] = epoch + 1
        out["lrs"].append(float(m.optimizer.learning_rate))
        out["logged_lr"].append(logs.get("learning_rate"))
        if m.stop_training:
            break
    cb.on_train_end()
    out["restored"] = m.restored
    return out, cb


@pytest.fixture(autouse=True)
def _float64_rates():
    # The recordings hold Python-float rates; rnnkit rounds rates through floatx.
    saved = backend.floatx()
    backend.set_floatx("float64")
    yield
    backend.set_floatx(saved)


@pytest.mark.parametrize("case", FIX["early_stopping"], ids=lambda c: json.dumps(c["kwargs"]))
def test_early_stopping_matches_keras(case):
    out, cb = drive(C.EarlyStopping(**case["kwargs"]), case["values"], case["monitor"])
    want = case["result"]
    assert out["epochs_run"] == want["epochs_run"]
    assert out["restored"] == want["restored"]
    assert cb.stopped_epoch == want["stopped_epoch"] and cb.best_epoch == want["best_epoch"]
    assert cb.wait == want["wait"] and cb.best == pytest.approx(want["best"])


@pytest.mark.parametrize("case", FIX["reduce_lr_on_plateau"], ids=lambda c: json.dumps(c["kwargs"]))
def test_reduce_lr_on_plateau_matches_keras(case):
    out, _ = drive(C.ReduceLROnPlateau(**case["kwargs"]), case["values"], case["monitor"],
                   case["initial_lr"])
    np.testing.assert_allclose(out["lrs"], case["result"]["lrs"], rtol=1e-12)
    np.testing.assert_allclose(out["logged_lr"], case["result"]["logged_lr"], rtol=1e-12)


def test_reduce_lr_rejects_factor_one():
    with pytest.raises(ValueError, match="factor"):
        C.ReduceLROnPlateau(factor=1.0)


def test_auto_mode_unknown_metric_raises_like_keras():
    cb = C.EarlyStopping(monitor="val_foo")
    cb.set_model(FakeModel())
    with pytest.raises(ValueError, match="mode='max'"):
        cb.on_train_begin()


@pytest.mark.parametrize("case", FIX["csv_logger"], ids=lambda c: json.dumps(c["kwargs"]))
def test_csv_logger_matches_keras(case, tmp_path):
    path = tmp_path / "log.csv"
    for _ in range(case["runs"]):
        cb = C.CSVLogger(str(path), **case["kwargs"])
        cb.set_model(FakeModel())
        cb.on_train_begin()
        for e, lg in enumerate(case["logs"]):
            cb.on_epoch_end(e, dict(lg))
        cb.on_train_end()
    with open(path, newline="") as f:
        assert f.read() == case["text"]


@pytest.mark.parametrize("case", FIX["terminate_on_nan"], ids=lambda c: str(c["losses"]))
def test_terminate_on_nan_matches_keras(case):
    cb = C.TerminateOnNaN()
    m = FakeModel()
    cb.set_model(m)
    stopped = None
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        for b, lv in enumerate(float(x) for x in case["losses"]):
            cb.on_train_batch_end(b, {"loss": lv})
            if m.stop_training:
                stopped = b
                break
    assert stopped == case["stopped_batch"] and buf.getvalue() == case["message"]
    with pytest.raises(RuntimeError, match="NaN or Inf"):
        C.TerminateOnNaN(raise_error=True).on_train_batch_end(0, {"loss": math.nan})


def _data():
    rs = np.random.RandomState(1)
    return rs.randn(16, 5, 3).astype("float32"), rs.randn(16, 1).astype("float32")


def _model(lr=0.05):
    backend.set_random_seed(0)
    m = rnnkit.Sequential([layers.Input((5, 3)), layers.SimpleRNN(4), layers.Dense(1)])
    m.compile(optimizer=optimizers.SGD(lr), loss="mse", metrics=["mae"])
    return m


def test_progbar_columns_match_keras():
    x, y = _data()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        _model().fit(x, y, batch_size=8, epochs=3, verbose=2, validation_split=0.25,
                     callbacks=[C.ReduceLROnPlateau("loss", factor=0.5, patience=0,
                                                    min_delta=10.0)])
        _model().fit(x, y, batch_size=8, epochs=1, verbose=2)
    import re
    cols = [re.findall(r" - ([a-z_]+):", ln) for ln in buf.getvalue().splitlines() if " - " in ln]
    want = FIX["progbar_columns"]
    assert cols == want["with_reduce_lr"] + want["plain"]


def test_verbose_auto_is_one_as_keras():
    x, y = _data()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        _model().fit(x, y, batch_size=8, epochs=1, verbose="auto")
    assert "━" in buf.getvalue()  # the verbose=1 bar, not the verbose=2 line


def test_tensorboard_tags_and_steps_match_keras(tmp_path):
    x, y = _data()
    _model().fit(x, y, batch_size=8, epochs=3, verbose=0, validation_split=0.25,
                 callbacks=[C.ReduceLROnPlateau("loss", factor=0.5, patience=0, min_delta=10.0),
                            C.TensorBoard(str(tmp_path))])
    got = []
    for sub in ("train", "validation"):
        files = glob.glob(str(tmp_path / sub / "events.out.tfevents*"))
        assert len(files) == 1
        got += [(sub, tag, step) for step, tag, _ in read_scalars(files[0])]
    want = [(e["dir"], e["tag"], e["step"]) for e in FIX["tensorboard"]["scalars"]]
    assert sorted(got) == sorted(want)
    lrs = {s: v for s, t, v in read_scalars(glob.glob(str(tmp_path / "train" / "*"))[0])
           if t == "epoch_learning_rate"}
    want_lr = {e["step"]: e["value"] for e in FIX["tensorboard"]["scalars"]
               if e["tag"] == "epoch_learning_rate"}
    assert lrs == pytest.approx(want_lr, rel=1e-6)


def test_tensorboard_files_load_in_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    x, y = _data()
    _model().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[C.TensorBoard(str(tmp_path))])
    acc = EventAccumulator(str(tmp_path / "train"))
    acc.Reload()
    tags = acc.Tags().get("scalars", []) or acc.Tags().get("tensors", [])
    assert "epoch_loss" in tags


def test_lambda_callback():
    seen = []
    cb = C.LambdaCallback(on_epoch_end=lambda e, logs: seen.append((e, sorted(logs))),
                          on_train_end=lambda logs: seen.append("end"))
    x, y = _data()
    _model().fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert seen == [(0, ["loss", "mae"]), (1, ["loss", "mae"]), "end"]
    with pytest.raises(TypeError, match="on_epoch_end"):
        C.LambdaCallback(on_epoch_end=3)


def test_remote_monitor_refuses_offline():
    x, y = _data()
    with pytest.raises(RuntimeError, match="network"):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[C.RemoteMonitor()])


def test_early_stopping_restores_without_stopping_in_fit():
    x, y = _data()
    m = _model(lr=0.5)  # a rate large enough that the loss goes up at some point
    es = C.EarlyStopping(monitor="loss", patience=100, restore_best_weights=True)
    h = m.fit(x, y, epochs=6, batch_size=16, verbose=0, shuffle=False, callbacks=[es])
    assert es.stopped_epoch == 0 and len(h.history["loss"]) == 6
    assert es.best_epoch == int(np.argmin(h.history["loss"]))
    for a, b in zip(m.get_weights(), es.best_weights):
        np.testing.assert_array_equal(a, b)


class _Interrupt(C.Callback):
    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


def test_backup_and_restore_resumes_exactly(tmp_path):
    x, y = _data()
    ref = _model()
    ref.compile(optimizer=optimizers.Adam(0.01), loss="mse")
    ref.fit(x, y, epochs=4, batch_size=8, verbose=0, shuffle=False)

    m = _model()
    m.compile(optimizer=optimizers.Adam(0.01), loss="mse")
    bk = C.BackupAndRestore(str(tmp_path / "bk"))
    with pytest.raises(KeyboardInterrupt):
        m.fit(x, y, epochs=4, batch_size=8, verbose=0, shuffle=False,
              callbacks=[bk, _Interrupt(2)])
    assert os.path.exists(tmp_path / "bk" / "latest.backup.npz")
    fresh = _model()  # a new process would rebuild the model: different weights, no state
    fresh.compile(optimizer=optimizers.Adam(0.01), loss="mse")
    h = fresh.fit(x, y, epochs=4, batch_size=8, verbose=0, shuffle=False,
                  callbacks=[C.BackupAndRestore(str(tmp_path / "bk"))])
    assert h.epoch == [2, 3]
    assert fresh.optimizer.iterations == ref.optimizer.iterations == 8
    for a, b in zip(fresh.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not os.path.exists(tmp_path / "bk")  # delete_checkpoint=True after a full fit


def test_backup_and_restore_refuses_mismatched_backup(tmp_path):
    x, y = _data()
    m = _model()
    m.fit(x, y, epochs=1, verbose=0, callbacks=[C.BackupAndRestore(str(tmp_path),
                                                                    delete_checkpoint=False)])
    other = rnnkit.Sequential([layers.Input((5, 3)), layers.GRU(2), layers.Dense(1)])
    other.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="not a valid backup"):
        other.fit(x, y, epochs=1, verbose=0, callbacks=[C.BackupAndRestore(str(tmp_path))])
    with pytest.raises(ValueError, match="save_freq"):
        C.BackupAndRestore(str(tmp_path), save_freq="batch")
