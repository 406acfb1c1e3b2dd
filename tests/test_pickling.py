"""Pickling through rnnkit's own format (README "Reliability"): models and layers pickle as
the bytes ``save`` writes and unpickle through the checked load path; optimizers as config +
state; activations by name. What the format cannot hold raises ``pickle.PicklingError``."""
from __future__ import annotations

import copy
import io
import multiprocessing
import os
import pickle

import numpy as np
import pytest

import rnnkit
from rnnkit import callbacks, layers, losses, metrics, optimizers, saving
from rnnkit.layers.registry import REGISTRY
from rnnkit.optimizers import schedules

from _fork_workers import predict_pickled

TIMEOUT_S = 180
RNG = np.random.default_rng(0)
X3 = RNG.standard_normal((4, 6, 4)).astype(np.float32)
X2 = RNG.standard_normal((4, 4)).astype(np.float32)
XI = RNG.integers(0, 10, size=(4, 6)).astype(np.int32)


def rt(obj):
    return pickle.loads(pickle.dumps(obj))


def _seq3(layer):
    inp = rnnkit.Input((6, 4))
    return rnnkit.Model(inp, layer(inp)), X3


def _pair(layer):
    a, b = rnnkit.Input((6, 4)), rnnkit.Input((6, 4))
    return rnnkit.Model([a, b], layer([a, b])), [X3, X3 * 0.5 + 1]


def _two_d(layer):
    inp = rnnkit.Input((4,))
    return rnnkit.Model(inp, layer(inp)), X2


def _mha(_):
    inp = rnnkit.Input((6, 4))
    return rnnkit.Model(inp, layers.MultiHeadAttention(num_heads=2, key_dim=3)(inp, inp)), X3


def _embedding(_):
    inp = rnnkit.Input((6,), dtype="int32")
    return rnnkit.Model(inp, layers.Embedding(10, 3)(inp)), XI


def _nested_sequential(_):
    inp = rnnkit.Input((6, 4))
    inner = rnnkit.Sequential([layers.Input((6, 4)), layers.Dense(3)])
    return rnnkit.Model(inp, inner(inp)), X3


def _nested_functional(_):
    i2 = rnnkit.Input((6, 4))
    inner = rnnkit.Model(i2, layers.Dense(3)(i2))
    inp = rnnkit.Input((6, 4))
    return rnnkit.Model(inp, inner(inp)), X3


# One tiny model per registered layer class: {class name: factory -> (model, x)}.
FACTORIES = {
    "Activation": lambda: _seq3(layers.Activation("tanh")),
    "Add": lambda: _pair(layers.Add()),
    "Subtract": lambda: _pair(layers.Subtract()),
    "Multiply": lambda: _pair(layers.Multiply()),
    "Average": lambda: _pair(layers.Average()),
    "Maximum": lambda: _pair(layers.Maximum()),
    "Minimum": lambda: _pair(layers.Minimum()),
    "Concatenate": lambda: _pair(layers.Concatenate()),
    "Dot": lambda: _pair(layers.Dot(axes=2)),
    "Attention": lambda: _pair(layers.Attention()),
    "AdditiveAttention": lambda: _pair(layers.AdditiveAttention()),
    "MultiHeadAttention": lambda: _mha(None),
    "AveragePooling1D": lambda: _seq3(layers.AveragePooling1D(2)),
    "MaxPooling1D": lambda: _seq3(layers.MaxPooling1D(2)),
    "GlobalAveragePooling1D": lambda: _seq3(layers.GlobalAveragePooling1D()),
    "GlobalMaxPooling1D": lambda: _seq3(layers.GlobalMaxPooling1D()),
    "BatchNormalization": lambda: _seq3(layers.BatchNormalization()),
    "LayerNormalization": lambda: _seq3(layers.LayerNormalization()),
    "Bidirectional": lambda: _seq3(layers.Bidirectional(layers.LSTM(3, return_sequences=True))),
    "TimeDistributed": lambda: _seq3(layers.TimeDistributed(layers.Dense(3))),
    "Conv1D": lambda: _seq3(layers.Conv1D(3, 2)),
    "Dense": lambda: _seq3(layers.Dense(3, activation="gelu")),
    "Dropout": lambda: _seq3(layers.Dropout(0.5)),
    "GaussianDropout": lambda: _seq3(layers.GaussianDropout(0.3)),
    "GaussianNoise": lambda: _seq3(layers.GaussianNoise(0.1)),
    "SpatialDropout1D": lambda: _seq3(layers.SpatialDropout1D(0.3)),
    "Embedding": lambda: _embedding(None),
    "Flatten": lambda: _seq3(layers.Flatten()),
    "Masking": lambda: _seq3(layers.Masking()),
    "Permute": lambda: _seq3(layers.Permute((2, 1))),
    "RepeatVector": lambda: _two_d(layers.RepeatVector(3)),
    "Reshape": lambda: _seq3(layers.Reshape((24,))),
    "GRU": lambda: _seq3(layers.GRU(3, return_sequences=True)),
    "LSTM": lambda: _seq3(layers.LSTM(3)),
    "SimpleRNN": lambda: _seq3(layers.SimpleRNN(3)),
    "RNN": lambda: _seq3(layers.RNN(layers.LSTMCell(3))),
    "LSTMCell": lambda: _seq3(layers.RNN(layers.LSTMCell(3))),
    "GRUCell": lambda: _seq3(layers.RNN(layers.GRUCell(3))),
    "SimpleRNNCell": lambda: _seq3(layers.RNN(layers.SimpleRNNCell(3))),
    "StackedRNNCells": lambda: _seq3(layers.RNN(layers.StackedRNNCells(
        [layers.LSTMCell(3), layers.GRUCell(2)]))),
    "InputLayer": lambda: _seq3(layers.Dense(2)),
    "Sequential": lambda: _nested_sequential(None),
    "Model": lambda: _nested_functional(None),
    "Functional": lambda: _nested_functional(None),
}
# Documented as unpicklable (README "Reliability"): their Python function is code.
UNPICKLABLE = {"Lambda"}


def _assert_same_model(a, b, x):
    assert type(a) is type(b)
    assert a.get_config() == b.get_config()
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for u, v in zip(wa, wb):
        assert u.dtype == v.dtype and np.array_equal(u, v)
    pa, pb = a.predict(x, verbose=0), b.predict(x, verbose=0)
    for u, v in zip(pa if isinstance(pa, list) else [pa], pb if isinstance(pb, list) else [pb]):
        assert np.array_equal(u, v)


def test_every_registered_layer_has_a_case():
    assert sorted(set(REGISTRY) - set(FACTORIES) - UNPICKLABLE) == []


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_layer_round_trip(name):
    model, x = FACTORIES[name]()
    assert any(type(l).__name__ == name for l in _all_layers(model)) or name in (
        "InputLayer", "Functional"), name
    _assert_same_model(model, rt(model), x)
    # each layer on its own, too (config, build shape and weights)
    for layer in model.layers:
        back = rt(layer)
        assert type(back) is type(layer) and back.get_config() == layer.get_config()
        assert back.built == layer.built
        for u, v in zip(layer.get_weights(), back.get_weights()):
            assert np.array_equal(u, v)


def _all_layers(model):
    out = []
    for l in model.layers:
        out.append(l)
        for attr in ("layer", "forward_layer", "cell"):
            sub = getattr(l, attr, None)
            if sub is not None:
                out.append(sub)
                out.extend(getattr(sub, "cells", []))
        if hasattr(l, "layers"):
            out.extend(_all_layers(l))
    return out


def test_unbuilt_layer_and_sequential():
    d = rt(layers.Dense(3, activation="relu"))
    assert not d.built and d.get_config()["activation"] == "relu"
    s = rt(rnnkit.Sequential([layers.Dense(3)]))
    assert not s.built and len(s.layers) == 1


def test_lambda_refuses_clearly():
    inp = rnnkit.Input((6, 4))
    model = rnnkit.Model(inp, layers.Lambda(lambda t: t * 2)(inp))
    with pytest.raises(pickle.PicklingError, match="Lambda"):
        pickle.dumps(model)
    with pytest.raises(pickle.PicklingError, match="Lambda"):
        pickle.dumps(layers.Lambda(lambda t: t))
    c = copy.deepcopy(model)  # deepcopy still works
    assert np.array_equal(c.predict(X3, verbose=0), model.predict(X3, verbose=0))


def test_activations_by_name():
    for name in ("relu", "gelu", "softmax", "swish", "linear"):
        act = rnnkit.activations.get(name)
        assert rt(act) is act
        assert copy.deepcopy(act) is act
    assert len(pickle.dumps(rnnkit.activations.relu)) < 100


# -- optimizers and schedules -------------------------------------------------------------
SCHEDULES = [
    schedules.ExponentialDecay(0.1, 10, 0.9),
    schedules.PiecewiseConstantDecay([3], [0.1, 0.01]),
    schedules.PolynomialDecay(0.1, 10),
    schedules.InverseTimeDecay(0.1, 10, 0.5),
    schedules.CosineDecay(0.1, 10),
    schedules.CosineDecayRestarts(0.1, 10),
]


def test_every_schedule_has_a_case():
    assert sorted(type(s).__name__ for s in SCHEDULES) == sorted(schedules._CLASSES)


@pytest.mark.parametrize("sched", SCHEDULES, ids=lambda s: type(s).__name__)
def test_schedule_round_trip(sched):
    back = rt(sched)
    assert type(back) is type(sched) and back.get_config() == sched.get_config()
    for step in (0, 1, 5, 20):
        assert float(back(step)) == float(sched(step))
    opt = rt(optimizers.SGD(learning_rate=sched))
    assert type(opt._learning_rate) is type(sched)


def _step(opt, ws, seed):
    g = [np.random.default_rng(seed + i).standard_normal(w.shape).astype(w.dtype)
         for i, w in enumerate(ws)]
    opt.apply(g, ws)


OPT_CASES = [(n, {}) for n in sorted(optimizers._CLASSES)] + [
    ("Adam", {"use_ema": True, "ema_momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "nesterov": True, "gradient_accumulation_steps": 2}),
    ("AdamW", {"learning_rate": schedules.ExponentialDecay(0.01, 5, 0.5), "clipnorm": 1.0}),
]


@pytest.mark.parametrize("name,kw", OPT_CASES, ids=[f"{n}-{i}" for i, (n, _) in
                                                    enumerate(OPT_CASES)])
def test_optimizer_round_trip_with_state(name, kw):
    opt = optimizers._CLASSES[name](**kw)
    fresh = rt(opt)
    assert fresh.get_config() == opt.get_config() and not fresh.built
    ws = [np.ones((3, 2), np.float32), np.full((2,), 0.5, np.float32)]
    for s in range(3):
        _step(opt, ws, s)
    back = rt(opt)
    assert back.get_config() == opt.get_config()
    assert back.iterations == opt.iterations
    for u, v in zip(back.variables, opt.variables):
        assert np.array_equal(u, v)
    ws2 = [w.copy() for w in ws]
    _step(opt, ws, 10)
    _step(back, ws2, 10)
    for u, v in zip(ws, ws2):
        assert np.array_equal(u, v)
    for u, v in zip(back.variables, opt.variables):
        assert np.array_equal(u, v)


def test_optimizer_with_python_callable_lr_refuses():
    opt = optimizers.SGD(learning_rate=lambda: 0.1)
    with pytest.raises(pickle.PicklingError, match="callable"):
        pickle.dumps(opt)


def test_model_with_python_callable_lr_refuses():
    m = rnnkit.Sequential([layers.Input((4,)), layers.Dense(2)])
    m.compile(optimizer=optimizers.SGD(learning_rate=lambda: 0.1), loss="mse")
    with pytest.raises(pickle.PicklingError, match="callable"):
        pickle.dumps(m)


def test_optimizer_payload_is_checked():
    red = optimizers.Adam().__reduce__()
    fn = red[0]
    with pytest.raises(ValueError, match="optimizer"):
        fn('{"class_name": "os.system", "config": {}}', None, None)


# -- losses, metrics, callbacks --------------------------------------------------------------
YT = (RNG.random((8, 3)) > 0.5).astype(np.float32)
YP = RNG.random((8, 3)).astype(np.float32) * 0.9 + 0.05


@pytest.mark.parametrize("name", sorted(n for n in losses._CLASSES
                                        if n != "LossFunctionWrapper"))
def test_loss_round_trip(name):
    lo = losses._CLASSES[name]()
    back = rt(lo)
    assert type(back) is type(lo) and back.get_config() == lo.get_config()
    yt = YT if "Sparse" not in name else np.argmax(YT, axis=-1)
    assert np.array_equal(np.asarray(back(yt, YP)), np.asarray(lo(yt, YP)))


def _custom_loss(y_true, y_pred):
    return np.mean((y_true - y_pred) ** 2, axis=-1)


def test_custom_loss_refuses_clearly():
    with pytest.raises(pickle.PicklingError, match="custom loss"):
        pickle.dumps(losses.get(_custom_loss))
    m = rnnkit.Sequential([layers.Input((4,)), layers.Dense(2)])
    m.compile(optimizer="sgd", loss=_custom_loss)
    with pytest.raises(pickle.PicklingError, match="custom loss"):
        pickle.dumps(m)
    assert copy.deepcopy(m).compiled  # deepcopy still works


METRIC_ARGS = {"FBetaScore": {"beta": 2.0}}


def _metric_data(name):
    if "Sparse" in name:
        return np.argmax(YT, axis=-1), YP
    return YT, YP


@pytest.mark.parametrize("name", sorted(metrics._CLASSES))
def test_metric_round_trip_keeps_state(name):
    m = metrics._CLASSES[name](**METRIC_ARGS.get(name, {}))
    yt, yp = _metric_data(name)
    upd = (lambda mm, a, b: mm.update_state(a)) if name in ("Mean", "Sum") else (
        lambda mm, a, b: mm.update_state(a, b))
    upd(m, yt, yp)
    back = rt(m)
    assert type(back) is type(m) and back.get_config() == m.get_config()
    assert np.array_equal(np.asarray(back.result()), np.asarray(m.result()))
    upd(m, yt[:4], yp[:4])
    upd(back, yt[:4], yp[:4])
    assert np.array_equal(np.asarray(back.result()), np.asarray(m.result()))


def test_custom_metric_refuses_clearly():
    class MyMetric(metrics.Mean):
        pass
    with pytest.raises(pickle.PicklingError, match="MyMetric"):
        pickle.dumps(MyMetric())
    m = rnnkit.Sequential([layers.Input((4,)), layers.Dense(2)])
    m.compile(optimizer="sgd", loss="mse", metrics=[_custom_loss])
    with pytest.raises(pickle.PicklingError, match="custom metric"):
        pickle.dumps(m)


def _schedule_fn(epoch, lr):
    return lr * 0.5


def test_callbacks_round_trip(tmp_path):
    cbs = [callbacks.EarlyStopping(patience=3, monitor="loss"),
           callbacks.ReduceLROnPlateau(factor=0.5, patience=1),
           callbacks.TerminateOnNaN(),
           callbacks.ModelCheckpoint(str(tmp_path / "ck.npz")),
           callbacks.LearningRateScheduler(_schedule_fn),
           callbacks.CSVLogger(str(tmp_path / "log.csv")),
           callbacks.TensorBoard(str(tmp_path / "tb")),
           callbacks.BackupAndRestore(str(tmp_path / "bk")),
           callbacks.History()]
    for cb in cbs:
        back = rt(cb)
        assert type(back) is type(cb)
        assert {k for k in vars(back)} == {k for k in vars(cb)}


def test_callback_with_open_file_refuses(tmp_path):
    log = callbacks.CSVLogger(str(tmp_path / "log.csv"))
    seen = {}

    class Probe(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            with pytest.raises(pickle.PicklingError, match="CSVLogger.*open file"):
                pickle.dumps(log)
            seen["ok"] = True

    m = rnnkit.Sequential([layers.Input((4,)), layers.Dense(2)])
    m.compile(optimizer="sgd", loss="mse")
    m.fit(X2, X2[:, :2], epochs=1, verbose=0, callbacks=[log, Probe()])
    assert seen.get("ok")
    assert type(rt(log)) is callbacks.CSVLogger  # closed after training: fine again


# -- a compiled, trained functional model ---------------------------------------------------
def _trained_functional():
    a, b = rnnkit.Input((6, 4), name="a"), rnnkit.Input((4,), name="b")
    h = layers.LSTM(5)(a)
    h = layers.Concatenate()([h, layers.Dense(3, activation="relu")(b)])
    out1 = layers.Dense(2, name="reg")(h)
    out2 = layers.Dense(3, activation="softmax", name="cls")(h)
    model = rnnkit.Model([a, b], [out1, out2])
    model.compile(optimizer=optimizers.Adam(learning_rate=schedules.ExponentialDecay(
                      0.01, 5, 0.9)),
                  loss={"reg": "mse", "cls": "sparse_categorical_crossentropy"},
                  loss_weights={"reg": 0.5, "cls": 2.0},
                  metrics={"reg": ["mae"], "cls": ["accuracy"]})
    rng = np.random.default_rng(1)
    xa = rng.standard_normal((16, 6, 4)).astype(np.float32)
    xb = rng.standard_normal((16, 4)).astype(np.float32)
    y1 = rng.standard_normal((16, 2)).astype(np.float32)
    y2 = rng.integers(0, 3, 16)
    model.fit([xa, xb], [y1, y2], epochs=2, batch_size=8, verbose=0)
    return model, [xa, xb], [y1, y2]


def test_trained_functional_model_bitwise():
    model, x, y = _trained_functional()
    back = rt(model)
    _assert_same_model(model, back, x)
    assert back.compiled and back._loss_weights == model._loss_weights
    assert back.optimizer.get_config() == model.optimizer.get_config()
    assert back.optimizer.iterations == model.optimizer.iterations > 0
    for u, v in zip(back.optimizer.variables, model.optimizer.variables):
        assert np.array_equal(u, v)
    la = model.train_on_batch(x, y, return_dict=True)
    lb = back.train_on_batch(x, y, return_dict=True)
    assert la == lb
    _assert_same_model(model, back, x)


def test_payload_is_rnnkit_format_and_checked(tmp_path):
    model, x, _ = _trained_functional()
    fn, (data,) = model.__reduce__()
    assert fn is saving.loads_model
    # the payload is exactly a saved file: load_model opens it
    p = tmp_path / "m.npz"
    p.write_bytes(data)
    _assert_same_model(model, rnnkit.load_model(str(p)), x)
    # and tampered bytes are refused as a tampered file is
    bad = data.replace(b'"LSTM"', b'"LSTX"')
    with pytest.raises(ValueError, match="LSTX|not a readable|invalid"):
        saving.loads_model(bad)
    with pytest.raises(ValueError):
        saving.loads_model(data[:len(data) // 2])
    with pytest.raises(ValueError, match="empty"):
        saving.loads_model(b"")
    with pytest.raises(TypeError):
        saving.loads_model("not bytes")


def test_metric_and_layer_payloads_are_checked():
    fn, (cfg, state) = metrics.AUC().__reduce_ex__(4)
    with pytest.raises(ValueError, match="metric"):
        fn(cfg.replace('"AUC"', '"Evil"'), state)
    with pytest.raises(ValueError, match="state"):
        fn(cfg, {"bogus": np.zeros(3)})
    fn, (data,) = layers.Dense(3).__reduce__()
    assert fn is saving.loads_layer
    with pytest.raises(ValueError, match="corrupted|Dens_"):  # the zip CRC catches it
        saving.loads_layer(data.replace(b'"Dense"', b'"Dens_"'))


def test_deepcopy_independent():
    model, x, y = _trained_functional()
    c = copy.deepcopy(model)
    _assert_same_model(model, c, x)
    before = [w.copy() for w in model.get_weights()]
    c.train_on_batch(x, y)
    for u, v in zip(before, model.get_weights()):
        assert np.array_equal(u, v)
    assert any(not np.array_equal(u, v) for u, v in zip(before, c.get_weights()))
    assert c.optimizer is not model.optimizer


def test_pickle_protocols_and_nested_containers():
    model, x, _ = _trained_functional()
    for proto in range(2, pickle.HIGHEST_PROTOCOL + 1):
        obj = pickle.loads(pickle.dumps({"m": model, "again": model}, protocol=proto))
        assert obj["m"] is obj["again"]  # memo keeps identity
        _assert_same_model(model, obj["m"], x)


# -- multiprocessing -----------------------------------------------------------------------
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_pool_predict(method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method!r} not available here")
    model, x, _ = _trained_functional()
    local = model.predict(x, verbose=0)
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (tests_dir, saved) if p)
    try:
        with multiprocessing.get_context(method).Pool(2) as pool:
            got = pool.starmap_async(predict_pickled, [(model, x)] * 2).get(timeout=TIMEOUT_S)
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    for g in got:
        for u, v in zip(g, local):
            assert np.array_equal(u, v), method
