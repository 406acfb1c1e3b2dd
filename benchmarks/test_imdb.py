"""Benchmark: the Keras IMDB model (Embedding -> BiLSTM(seq) -> BiLSTM -> Dense(1, sigmoid),
Adam, binary crossentropy) -- one training step and predict, rnnkit vs PyTorch vs Keras 3.

Every framework starts from rnnkit's initial weights (:mod:`rnnkit.bench.imdb`). Each
benchmark asserts something real: a training step's first loss equals rnnkit's (before any
update the three compute the same function), the loss is finite and lower after the timed
steps on the same batch; predictions have the right shape, are probabilities and agree with
rnnkit's. PyTorch and Keras are skipped when they do not import.

The default size is small so that CI (``--benchmark-disable``, one call each) stays quick; the
size users train at (batch 32, sequence length 200, vocabulary 20000) runs with::

    RNNKIT_BENCH_IMDB_SIZE=default pytest benchmarks/test_imdb.py --benchmark-enable \\
        --benchmark-group-by=group --benchmark-columns=median,mean,stddev,rounds

(``python -m rnnkit.bench --suites imdb`` gives the same comparison as one table.)
"""
from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import List

import numpy as np
import pytest

import rnnkit
from rnnkit.bench.imdb import ImdbBatch, ImdbFramework, RnnkitImdb, make_batch, parse_imdb_size
from rnnkit.bench.imdb_suite import LOSS_TOL, PREDICT_TOL

pytest.importorskip("pytest_benchmark")

SIZE = parse_imdb_size(os.environ.get("RNNKIT_BENCH_IMDB_SIZE", "8x40x1000x32x16"))
FRAMEWORKS = ["rnnkit", "torch", "keras"]


@lru_cache(maxsize=None)
def _batch() -> ImdbBatch:
    return make_batch(SIZE, seed=0)


@lru_cache(maxsize=None)
def _initial_weights() -> List[np.ndarray]:
    return RnnkitImdb(SIZE, _batch(), seed=0).weights()


@lru_cache(maxsize=None)
def _rnnkit_first() -> tuple:
    """rnnkit's predictions and first-step loss at the initial weights (the agreement target)."""
    fw = RnnkitImdb(SIZE, _batch(), _initial_weights())
    return fw.predict(), fw.train_step()


def _framework(name: str) -> ImdbFramework:
    """A fresh model of ``name`` with the initial weights (skips when it does not import)."""
    if name == "rnnkit":
        return RnnkitImdb(SIZE, _batch(), _initial_weights())
    if name == "torch":
        pytest.importorskip("torch")
        from rnnkit.bench.imdb_torch import TorchImdb
        return TorchImdb(SIZE, _batch(), _initial_weights(), rnnkit.get_num_threads())
    from rnnkit.bench.imdb_keras import KerasImdb, keras_status
    keras, why = keras_status(rnnkit.get_num_threads())
    if keras is None:
        pytest.skip(why)
    return KerasImdb(keras, SIZE, _batch(), _initial_weights())


@pytest.mark.benchmark(group=f"imdb train step {SIZE.label}")
@pytest.mark.parametrize("name", FRAMEWORKS)
def test_imdb_train_step(benchmark, name: str) -> None:
    """One optimizer step on the batch; the first loss agrees with rnnkit's, training lowers it."""
    fw = _framework(name)
    first = fw.train_step()
    want = _rnnkit_first()[1]
    assert first == pytest.approx(want, rel=LOSS_TOL)
    last = benchmark(fw.train_step)
    assert math.isfinite(last)
    assert last < first


@pytest.mark.benchmark(group=f"imdb predict {SIZE.label}")
@pytest.mark.parametrize("name", FRAMEWORKS)
def test_imdb_predict(benchmark, name: str) -> None:
    """``predict`` at the initial weights: probabilities (batch, 1) equal to rnnkit's."""
    fw = _framework(name)
    p = benchmark(fw.predict)
    assert p.shape == (SIZE.batch, 1)
    assert np.all((p > 0) & (p < 1))
    np.testing.assert_allclose(p, _rnnkit_first()[0], rtol=0, atol=PREDICT_TOL)
