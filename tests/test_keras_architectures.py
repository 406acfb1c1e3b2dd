"""The architectures of tests/keras_architectures.py against Keras 3 recordings: with the
weights copied from Keras, predictions match to float32 rounding; three full-batch SGD steps
give Keras's losses and predictions; each model survives save/load."""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

import rnnkit
from keras_architectures import ARCHITECTURES, TRAIN_LR, TRAIN_STEPS

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                    "keras_architectures")


def _recorded(name: str) -> Any:
    return np.load(os.path.join(HERE, f"{name}.npz"))


def _n_weights(rec: Any) -> int:
    return len([k for k in rec.files if k.startswith("weight_") and k[7:].isdigit()])


def _built(name: str) -> Any:
    build, loss = ARCHITECTURES[name]
    model, x, y = build(rnnkit)
    rec = _recorded(name)
    model.set_weights([rec[f"weight_{i}"] for i in range(_n_weights(rec))])
    for i, a in enumerate(x):  # the same inputs Keras saw
        np.testing.assert_array_equal(a, rec[f"x_{i}"])
    return model, x, y, loss, rec


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_predictions_match_keras(name: str) -> None:
    model, x, _, _, rec = _built(name)
    assert len(model.weights) == _n_weights(rec)
    np.testing.assert_allclose(model.predict(x, verbose=0), rec["before"], rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_training_steps_match_keras(name: str) -> None:
    model, x, y, loss, rec = _built(name)
    model.compile(optimizer=rnnkit.optimizers.SGD(TRAIN_LR), loss=loss)
    losses = [model.train_on_batch(x, y) for _ in range(TRAIN_STEPS)]
    np.testing.assert_allclose(losses, rec["losses"], rtol=2e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0), rec["after"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_save_load_round_trip(name: str, tmp_path: Any) -> None:
    model, x, y, loss, _ = _built(name)
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "m.npz")
    back = rnnkit.models.load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [layer.name for layer in back.layers] == [layer.name for layer in model.layers]
