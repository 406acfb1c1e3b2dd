"""fit/evaluate/predict arguments beyond arrays: sample and class weights, validation data
with weights and frequency, steps_per_epoch, datasets and generators, compile's no-op flags.
Runs are compared with Keras 3 recordings (fixtures/keras_training/fit_arguments.npz)."""
from __future__ import annotations

import os
import warnings
from typing import Any, Dict, Iterator

import numpy as np
import pytest

import rnnkit
from rnnkit import layers as L
from rnnkit.models import Sequential

REC = np.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                           "keras_training", "fit_arguments.npz"))


def _classifier() -> Sequential:
    return Sequential([L.Input((5, 3)), L.LSTM(4), L.Dense(3)])


def _tagger() -> Sequential:
    return Sequential([L.Input((6,), dtype="int32"), L.Embedding(9, 4, mask_zero=True),
                       L.LSTM(3, return_sequences=True), L.Dense(2)])


def _from_keras(name: str, build: Any, optimizer: Any = None) -> Sequential:
    model = build()
    model.set_weights([REC[f"{name}/w{i}"] for i in range(int(REC[f"{name}/init"]))])
    model.compile(optimizer=optimizer or rnnkit.optimizers.SGD(0.1), loss="mse")
    return model


def _check_run(name: str, model: Sequential, history: Any) -> None:
    keys = sorted(k.split("/", 2)[2] for k in REC.files if k.startswith(f"{name}/history/"))
    assert sorted(history.history) == keys
    for k in keys:
        np.testing.assert_allclose(history.history[k], REC[f"{name}/history/{k}"], rtol=2e-5)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, REC[f"{name}/final{i}"], rtol=1e-4, atol=1e-6)


def test_class_weight_matches_keras() -> None:
    m = _from_keras("class_weight", _classifier)
    h = m.fit(REC["x"], REC["y_cls"], batch_size=4, epochs=2, shuffle=False, verbose=0,
              class_weight={0: 0.5, 1: 2.0, 2: 1.0})
    _check_run("class_weight", m, h)


def test_per_timestep_sample_weights_on_a_masked_sequence_match_keras() -> None:
    m = _from_keras("sample_weight_seq", _tagger)
    h = m.fit(REC["ids"], REC["y_seq"], batch_size=4, epochs=2, shuffle=False, verbose=0,
              sample_weight=REC["sw_seq"])
    _check_run("sample_weight_seq", m, h)
    got = m.evaluate(REC["ids"], REC["y_seq"], sample_weight=REC["sw_seq"], batch_size=5,
                     verbose=0)
    np.testing.assert_allclose(got, REC["sample_weight_seq/evaluate"], rtol=2e-5)


def test_weighted_validation_data_every_second_epoch_matches_keras() -> None:
    m = _from_keras("validation_weighted", _classifier)
    x, y, sw = REC["x"], REC["y_cls"], REC["sw"]
    h = m.fit(x[:8], y[:8], batch_size=4, epochs=4, shuffle=False, verbose=0,
              validation_freq=2, validation_data=(x[8:], y[8:], sw[8:]))
    assert len(h.history["val_loss"]) == 2  # epochs 2 and 4 only, as Keras
    _check_run("validation_weighted", m, h)


def test_steps_per_epoch_continues_the_pass_as_keras() -> None:
    m = _from_keras("steps_per_epoch", _classifier)
    h = m.fit(REC["x"], REC["y_cls"], batch_size=4, epochs=4, steps_per_epoch=2,
              shuffle=False, verbose=0)
    _check_run("steps_per_epoch", m, h)


class _Batches:
    """A PyDataset-like object: len() batches, [i] -> (x, y), on_epoch_end hook."""

    def __init__(self, x: np.ndarray, y: np.ndarray, size: int) -> None:
        self.x, self.y, self.size = x, y, size
        self.epochs_ended = 0

    def __len__(self) -> int:
        return int(np.ceil(len(self.x) / self.size))

    def __getitem__(self, i: int) -> tuple:
        sl = slice(i * self.size, (i + 1) * self.size)
        return self.x[sl], self.y[sl]

    def on_epoch_end(self) -> None:
        self.epochs_ended += 1


def test_a_dataset_trains_exactly_like_the_same_arrays() -> None:
    a, b = _from_keras("class_weight", _classifier), _from_keras("class_weight", _classifier)
    ds = _Batches(REC["x"], REC["y_cls"], 4)
    ha = a.fit(ds, epochs=3, shuffle=False, verbose=0)
    hb = b.fit(REC["x"], REC["y_cls"], batch_size=4, epochs=3, shuffle=False, verbose=0)
    assert ds.epochs_ended == 3
    np.testing.assert_array_equal(ha.history["loss"], hb.history["loss"])
    np.testing.assert_array_equal(a.predict(ds, verbose=0), b.predict(REC["x"], verbose=0))
    assert a.evaluate(ds, verbose=0) == b.evaluate(REC["x"], REC["y_cls"], batch_size=4,
                                                   verbose=0)


def test_generators_with_and_without_steps() -> None:
    m = _from_keras("class_weight", _classifier)
    x, y = REC["x"], REC["y_cls"]

    def endless() -> Iterator[tuple]:
        while True:
            for i in range(0, 12, 4):
                yield x[i:i + 4], y[i:i + 4], np.ones(len(x[i:i + 4]), np.float32)

    h = m.fit(endless(), steps_per_epoch=3, epochs=2, verbose=0)
    assert len(h.history["loss"]) == 2
    finite = (xy for xy in [(x[:4], y[:4]), (x[4:], y[4:])])
    assert len(m.fit(finite, epochs=1, verbose=0).history["loss"]) == 1
    short = (xy for xy in [(x[:4], y[:4])])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = m.fit(short, steps_per_epoch=2, epochs=5, verbose=0)
    assert len(h.history["loss"]) == 1 and "ran out of data" in str(caught[0].message)
    assert m.predict((b for b in [x[:4], x[4:]]), verbose=0).shape == (12, 3)


def test_bad_fit_arguments_are_named() -> None:
    m = _from_keras("class_weight", _classifier)
    x, y = REC["x"], REC["y_cls"]
    cases: Dict[str, Dict[str, Any]] = {
        "cannot use `class_weight` and `sample_weight`": dict(class_weight={0: 1.0},
                                                              sample_weight=np.ones(12)),
        "`class_weight` must be a dict": dict(class_weight=[1.0, 2.0]),
        "integer class indices": dict(class_weight={"a": 1.0}),
        r"`sample_weight` for 'dense\S*' has shape \(11,\)": dict(sample_weight=np.ones(11)),
        "NaN or inf": dict(sample_weight=np.full(12, np.nan)),
        "`validation_freq` must be a positive int": dict(validation_freq=0),
        "`steps_per_epoch` must be a positive int": dict(steps_per_epoch=-1),
        "`validation_data` must be": dict(validation_data=(x,)),
    }
    for message, kwargs in cases.items():
        with pytest.raises((ValueError, TypeError), match=message):
            m.fit(x, y, verbose=0, **kwargs)
    with pytest.raises(ValueError, match="`y` must not be given"):
        m.fit(_Batches(x, y, 4), y, verbose=0)
    with pytest.raises(ValueError, match="only supported for arrays"):
        m.fit(_Batches(x, y, 4), validation_split=0.5, verbose=0)
    with pytest.raises(ValueError, match="one class per sample"):
        _from_keras("sample_weight_seq", _tagger).fit(REC["ids"], REC["y_seq"], verbose=0,
                                                      class_weight={0: 1.0})


def test_compile_accepts_keras_execution_flags() -> None:
    m = _classifier()
    m.compile("sgd", "mse", run_eagerly=True, jit_compile=False, steps_per_execution=4)
    with pytest.raises(ValueError, match="steps_per_execution"):
        m.compile("sgd", "mse", steps_per_execution=0)


def test_multi_output_sample_weights_by_name() -> None:
    a = rnnkit.Input((3,), name="in")
    m = rnnkit.Model(a, {"p": L.Dense(1, name="p")(a), "q": L.Dense(2, name="q")(a)})
    m.compile("sgd", "mse")
    x = np.ones((4, 3), np.float32)
    y = {"p": np.zeros((4, 1)), "q": np.zeros((4, 2))}
    zero = m.evaluate(x, y, sample_weight={"p": np.zeros(4), "q": np.zeros(4)}, verbose=0,
                      return_dict=True)
    assert zero["loss"] == 0.0
    only_q = m.evaluate(x, y, sample_weight={"p": np.zeros(4)}, verbose=0, return_dict=True)
    assert only_q["p_loss"] == 0.0 and only_q["q_loss"] > 0.0


@pytest.mark.parametrize("name, optimizer, callbacks, epochs", [
    ("adamw", lambda: rnnkit.optimizers.AdamW(learning_rate=0.05, weight_decay=0.1), list, 3),
    ("exponential_decay", lambda: rnnkit.optimizers.SGD(
        rnnkit.optimizers.schedules.ExponentialDecay(0.3, decay_steps=2, decay_rate=0.5)),
     list, 3),
    ("reduce_lr", lambda: rnnkit.optimizers.SGD(0.5), lambda: [
        rnnkit.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0,
                                           min_delta=0.05)], 6),
])
def test_optimizer_schedule_and_callback_training_match_keras(name: str, optimizer: Any,
                                                              callbacks: Any,
                                                              epochs: int) -> None:
    """fit(shuffle=False) from Keras's weights: AdamW with weight decay, an ExponentialDecay
    schedule, ReduceLROnPlateau (its learning_rate log included)."""
    m = _from_keras(name, _classifier, optimizer())
    h = m.fit(REC["x"], REC["y_cls"], batch_size=4, epochs=epochs, shuffle=False, verbose=0,
              callbacks=callbacks())
    _check_run(name, m, h)


def test_weighted_metrics_receive_fit_and_evaluate_sample_weights() -> None:
    m = Sequential([L.Input((3,)), L.Dense(1)])
    m.compile("sgd", "mse", metrics=["mae"], weighted_metrics=["mae"])
    x, y = np.ones((4, 3), np.float32), np.arange(4.0, dtype=np.float32).reshape(4, 1)
    p = float(m.predict(x, verbose=0)[0, 0])
    res = m.evaluate(x, y, sample_weight=np.array([1.0, 0, 0, 0]), verbose=0, return_dict=True)
    np.testing.assert_allclose(res["weighted_mae"], abs(p), rtol=1e-6)
    np.testing.assert_allclose(res["mae"], np.mean(np.abs(p - np.arange(4.0))), rtol=1e-6)
    np.testing.assert_allclose(res["loss"], p * p / 4, rtol=1e-6)
