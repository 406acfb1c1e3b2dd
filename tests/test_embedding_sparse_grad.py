"""Embedding gradients as touched rows (rnnkit.sparse_grad.SparseRows).

* The row sums (rnnkit._core.embedding_row_sums) equal ``np.add.at`` into zeros bitwise
  (repeated ids, padding-heavy batches, signed zeros, both dtypes).
* Training with row-sparse gradients (the default) gives bitwise the weights and optimizer
  slots of the dense reference path (set_row_gradients(False), NumPy optimizer formulas),
  with regularizers, constraints, clipping, weight decay, EMA, accumulation and a shared
  Embedding.
* Keras 3 semantics (tests/fixtures/keras_sparse, recorded with TensorFlow): an optimizer
  with state updates every row (SGD momentum and Adam keep moving rows without a
  gradient), plain SGD only the gradient's rows.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest

import rnnkit._core as core
from rnnkit import constraints, layers as L, regularizers, sparse_grad
from rnnkit.layers.embedding import dense_gradient
from rnnkit.models import Model, Sequential
from rnnkit.sparse_grad import SparseRows

REC = dict(np.load(Path(__file__).parent / "fixtures" / "keras_sparse" / "keras_sparse.npz"))


@pytest.fixture
def reference_path() -> Iterator[None]:
    """Restores the default (row-sparse gradients on) after a test turned it off."""
    yield
    sparse_grad.set_row_gradients(True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ids_kind", ["repeats", "padding", "all_same", "empty", "distinct"])
def test_row_sums_equal_add_at(ids_kind: str, dtype: Any) -> None:
    rng = np.random.default_rng(4)
    V, D = 50, 7
    ids = {"repeats": rng.integers(0, 10, (8, 30)),
           "padding": np.where(rng.random((8, 30)) < 0.7, 0, rng.integers(0, V, (8, 30))),
           "all_same": np.full((4, 9), 3),
           "empty": np.zeros((0, 5), np.int64),
           "distinct": rng.permutation(V)[:40].reshape(4, 10)}[ids_kind]
    dy = (rng.standard_normal(ids.shape + (D,))
          * 10.0 ** rng.integers(-6, 6, ids.shape + (D,))).astype(dtype)
    dy.reshape(-1)[::5] = -0.0  # -0.0 + 0 is +0: the sums must start from zero as add.at
    table = np.zeros((V, D), dtype)
    ref = dense_gradient(ids, dy, table)
    rows, sums = core.embedding_row_sums(ids.reshape(-1), dy.reshape(-1, D), V)
    assert rows.dtype == np.int64 and np.all(np.diff(rows) > 0)
    assert set(rows.tolist()) == set(ids.reshape(-1).tolist())
    got = SparseRows(rows, sums, (V, D)).dense()
    assert got.dtype == ref.dtype and got.tobytes() == ref.tobytes()
    layer = L.Embedding(V, D, dtype=np.dtype(dtype).name)
    layer.build((None, None))
    layer.forward(ids, need_grad=True)
    layer.backward(dy)  # outside a training step: a dense array
    assert isinstance(layer.embeddings.grad, np.ndarray)
    assert layer.embeddings.grad.tobytes() == ref.tobytes()


def test_sparse_rows_dense_views() -> None:
    g = SparseRows(np.array([1, 3]), np.array([[1.0, -2.0], [0.5, 0.25]], np.float32), (4, 2))
    d = np.zeros((4, 2), np.float32)
    d[[1, 3]] = g.values
    for got in (g.dense(), np.asarray(g), g + 0, np.zeros((4, 2), np.float32) + g,
                g + SparseRows(np.array([], np.int64), np.zeros((0, 2), np.float32), (4, 2))):
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        np.testing.assert_array_equal(got, d)
    assert g.shape == (4, 2) and g.ndim == 2 and g.astype(np.float64).dense().dtype == np.float64
    np.testing.assert_array_equal(g + np.ones((4, 2)), d + 1)
    with pytest.raises(ValueError, match="do not match rows"):
        SparseRows(np.array([1]), np.zeros((2, 2)), (4, 2))
    with pytest.raises(ValueError, match="`enabled` must be a bool"):
        sparse_grad.set_row_gradients("no")  # type: ignore[arg-type]
    assert not sparse_grad.rows_wanted()
    with sparse_grad.collect_rows():
        assert sparse_grad.rows_wanted()
    assert not sparse_grad.rows_wanted()


def test_mixed_dtype_gradient_keeps_add_at_rounding() -> None:
    layer = L.Embedding(6, 2)
    layer.build((None, None))
    ids = np.array([[1, 1, 1, 2]])
    dy = np.array([[[1e-8, 1.0], [1.0, 1e-8], [1e-8, 1e-8], [2.0, 3.0]]])  # float64
    layer.forward(ids, need_grad=True)
    layer.backward(dy)
    ref = dense_gradient(ids, dy, layer.embeddings.value)
    assert layer.embeddings.grad.tobytes() == ref.tobytes()


def _seq(optimizer: Any, emb_kw: Dict[str, Any], dtype: str = "float32") -> Sequential:
    m = Sequential([L.Embedding(30, 4, input_shape=(6,), dtype=dtype, **emb_kw),
                    L.Flatten(dtype=dtype), L.Dense(1, dtype=dtype)])
    m.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(0)
    for w in m.weights:
        w.assign(rng.standard_normal(w.shape))
    return m


def _shared(optimizer: Any, emb_kw: Dict[str, Any], dtype: str = "float32") -> Model:
    """One Embedding called on two inputs: its two gradients are summed (dense)."""
    a, b = L.Input((6,)), L.Input((6,))
    emb = L.Embedding(30, 4, dtype=dtype, **emb_kw)
    out = L.Dense(1, dtype=dtype)(L.Concatenate()([L.Flatten()(emb(a)), L.Flatten()(emb(b))]))
    m = Model([a, b], out)
    m.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(0)
    for w in m.weights:
        w.assign(rng.standard_normal(w.shape))
    return m


OPT_CASES: List[Dict[str, Any]] = [
    {"class_name": "SGD", "config": {"learning_rate": 0.1}},
    {"class_name": "SGD", "config": {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}},
    {"class_name": "Adam", "config": {"learning_rate": 0.01}},
    {"class_name": "Adam", "config": {"amsgrad": True, "clipvalue": 0.05}},
    {"class_name": "AdamW", "config": {"weight_decay": 0.1}},
    {"class_name": "Adam", "config": {"clipnorm": 0.1}},
    {"class_name": "SGD", "config": {"global_clipnorm": 0.1}},
    {"class_name": "RMSprop", "config": {"centered": True, "use_ema": True}},
    {"class_name": "Adagrad", "config": {"gradient_accumulation_steps": 2}},
    {"class_name": "Nadam", "config": {}},
    {"class_name": "Ftrl", "config": {}},
]
EMB_CASES: List[Dict[str, Any]] = [
    {}, {"embeddings_regularizer": regularizers.L2(0.01)},
    {"embeddings_constraint": constraints.MaxNorm(1.0)}, {"mask_zero": True},
]


def _train(make: Any, opt: Dict[str, Any], emb_kw: Dict[str, Any], dtype: str, sparse: bool,
           seen: List[Any]) -> List[np.ndarray]:
    sparse_grad.set_row_gradients(sparse)
    m = make(opt, emb_kw, dtype)
    m.optimizer.use_fused_kernels = sparse
    apply = m.optimizer.apply

    def spy(grads: Any, variables: Any) -> None:
        seen.extend(type(g).__name__ for g in grads)
        apply(grads, variables)

    m.optimizer.apply = spy
    rng = np.random.default_rng(1)
    n_inputs = len(m.inputs) if isinstance(m, Model) and not isinstance(m, Sequential) else 1
    x = [rng.integers(0, 12, (16, 6)) for _ in range(n_inputs)]
    x[0][:, :2] = 0  # a padding-heavy id
    y = rng.standard_normal((16, 1))
    m.fit(x if n_inputs > 1 else x[0], y, batch_size=4, epochs=2, verbose=0, shuffle=False)
    sparse_grad.set_row_gradients(True)
    return [w.numpy() for w in m.weights] + [np.asarray(v) for v in m.optimizer.variables]


@pytest.mark.parametrize("emb_kw", EMB_CASES, ids=lambda k: "-".join(k) or "plain")
@pytest.mark.parametrize("opt", OPT_CASES, ids=lambda o: o["class_name"] + "-".join(o["config"]))
def test_training_sparse_equals_dense_reference(opt: Dict[str, Any], emb_kw: Dict[str, Any],
                                                reference_path: None) -> None:
    for make, dtype in ((_seq, "float32"), (_seq, "float64"), (_shared, "float32")):
        seen_sparse: List[str] = []
        got = _train(make, opt, emb_kw, dtype, True, seen_sparse)
        seen_dense: List[str] = []
        ref = _train(make, opt, emb_kw, dtype, False, seen_dense)
        assert "SparseRows" not in seen_dense
        # the row-sparse gradient reaches the optimizer unless something needs it dense
        assert ("SparseRows" in seen_sparse) == (
            make is _seq and "embeddings_regularizer" not in emb_kw)
        for k, (a, b) in enumerate(zip(got, ref)):
            assert a.tobytes() == b.tobytes(), f"{make.__name__} {dtype} array {k}"


def test_loss_and_gradients_stay_dense() -> None:
    m = _seq("adam", {})
    x = np.array([[1, 2, 2, 3, 0, 0]])
    _, grads = m.loss_and_gradients(x, np.ones((1, 1)))
    assert all(isinstance(g, np.ndarray) for g in grads)
    assert np.count_nonzero(np.abs(grads[0]).sum(axis=1)) == 4  # ids 0, 1, 2, 3


KERAS_OPTS = {
    "sgd": {"class_name": "SGD", "config": {"learning_rate": 0.1}},
    "sgd_momentum": {"class_name": "SGD", "config": {"learning_rate": 0.1, "momentum": 0.9}},
    "adam": {"class_name": "Adam", "config": {"learning_rate": 0.05}},
    "rmsprop": {"class_name": "RMSprop", "config": {"learning_rate": 0.05}},
    "adagrad": {"class_name": "Adagrad", "config": {"learning_rate": 0.1}},
}


def _keras_run(batch_set: str, case: str) -> List[List[np.ndarray]]:
    """rnnkit's weights after each of the three recorded train_on_batch steps."""
    m = Sequential([L.Embedding(40, 3, input_shape=(5,)), L.Flatten(), L.Dense(1)])
    m.compile(optimizer=KERAS_OPTS[case], loss="mse")
    m.set_weights([REC[f"w0_{j}"] for j in range(3)])
    out = []
    for s in range(3):
        m.train_on_batch(REC[f"{batch_set}/x_{s}"], REC[f"y_{s}"])
        out.append(m.get_weights())
    return out


def _moved_after_step0(steps: List[List[np.ndarray]], rows: slice) -> np.ndarray:
    return np.any(steps[2][0][rows] != steps[0][0][rows], axis=1)


@pytest.mark.parametrize("case", sorted(KERAS_OPTS))
def test_matches_keras_row_semantics(case: str) -> None:
    """Batches without repeated ids: the weights follow Keras 3 / TensorFlow; rows 30..39
    never get a gradient (never move); rows 10..19 only in step 0: afterwards SGD momentum
    and Adam still move them (Keras densifies their update), plain SGD, RMSprop and Adagrad
    leave them (a zero gradient changes nothing there)."""
    mine = _keras_run("unique", case)
    keras = [[REC[f"unique/{case}/step{s}_{j}"] for j in range(3)] for s in range(3)]
    for s in range(3):
        for j in range(3):
            np.testing.assert_allclose(mine[s][j], keras[s][j], rtol=2e-6, atol=2e-6,
                                       err_msg=f"{case} step {s} weight {j}")
        np.testing.assert_array_equal(mine[s][0][30:], REC["w0_0"][30:])
    moved, moved_keras = _moved_after_step0(mine, slice(10, 20)), _moved_after_step0(keras, slice(10, 20))
    np.testing.assert_array_equal(moved, moved_keras)
    assert moved.all() == (case in ("sgd_momentum", "adam")) and (moved.any() == moved.all())


@pytest.mark.parametrize("case", sorted(KERAS_OPTS))
def test_keras_repeated_ids(case: str) -> None:
    """Batches with repeated ids. The same rows move as in Keras. SGD's weights follow Keras;
    for optimizers that square the gradient, TensorFlow squares each repeated id's
    contributions before summing them (ops.square on the IndexedSlices' values), rnnkit
    squares the summed gradient, as the dense gradient (and Keras's other backends) do:
    the repeated rows differ, by design."""
    mine = _keras_run("repeats", case)
    keras = [[REC[f"repeats/{case}/step{s}_{j}"] for j in range(3)] for s in range(3)]
    for s in range(3):
        np.testing.assert_array_equal(mine[s][0][9:], REC["w0_0"][9:])
        np.testing.assert_array_equal(keras[s][0][9:], REC["w0_0"][9:])
    np.testing.assert_array_equal(_moved_after_step0(mine, slice(6, 9)),
                                  _moved_after_step0(keras, slice(6, 9)))
    squares = case in ("adam", "rmsprop", "adagrad")
    close = np.allclose(mine[0][0], keras[0][0], rtol=2e-6, atol=2e-6)
    assert close != squares, f"{case}: step 0 embeddings {'match' if close else 'differ'}"
    if not squares:
        for s in range(3):
            for j in range(3):
                np.testing.assert_allclose(mine[s][j], keras[s][j], rtol=2e-6, atol=2e-6,
                                           err_msg=f"{case} step {s} weight {j}")
