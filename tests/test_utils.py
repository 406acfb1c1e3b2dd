"""rnnkit.utils against Keras 3 recordings (tests/fixtures/keras_training/utils.json)."""
import json
import os

import numpy as np
import pytest

import rnnkit
from rnnkit import backend, layers, utils

FIX = json.load(open(os.path.join(os.path.dirname(__file__), "fixtures", "keras_training",
                                  "utils.json")))


def _check(result, fn):
    if "error" in result:
        with pytest.raises(ValueError):
            fn()
        return
    want = result["ok"]
    got = fn()
    assert str(got.dtype) == want["dtype"] and list(got.shape) == want["shape"]
    if got.dtype == object or got.dtype.kind in "US":
        assert got.tolist() == want["values"]
    else:
        np.testing.assert_allclose(got.astype(float), np.array(want["values"], dtype=float),
                                   rtol=1e-6)


@pytest.mark.parametrize("case", FIX["pad_sequences"], ids=lambda c: json.dumps(c["kwargs"]))
def test_pad_sequences_matches_keras(case):
    kw = dict(case["kwargs"])
    if kw.get("dtype") == "object":
        kw["dtype"] = object
    _check(case["result"], lambda: utils.pad_sequences(case["sequences"], **kw))


@pytest.mark.parametrize("case", FIX["to_categorical"], ids=lambda c: str(c["x"]))
def test_to_categorical_matches_keras(case):
    _check(case["result"], lambda: utils.to_categorical(case["x"], num_classes=case["num_classes"]))


def test_to_categorical_rejects_out_of_range():
    with pytest.raises(ValueError, match="num_classes|class indices"):
        utils.to_categorical([0, 3], num_classes=3)


@pytest.mark.parametrize("case", FIX["normalize"], ids=lambda c: f"{c['axis']}-{c['order']}")
def test_normalize_matches_keras(case):
    order = np.inf if case["order"] == "inf" else case["order"]
    if "error" in case["result"] and case["axis"] == 0:
        # Keras 3.15.1 turns axis=0 into -1 (`axis or -1`) and fails to broadcast; Keras's
        # master fixed it (`if axis is None`). rnnkit follows the fix: check the formula.
        x = np.array(case["x"])
        norm = np.linalg.norm(x, order, 0)
        want = x / np.where(norm == 0, 1, norm)[None, :]
        np.testing.assert_allclose(utils.normalize(x, axis=0, order=order), want)
        return
    _check(case["result"], lambda: utils.normalize(np.array(case["x"]), axis=case["axis"],
                                                   order=order))


@pytest.mark.parametrize("case", FIX["timeseries"],
                         ids=lambda c: json.dumps(c["kwargs"]) + str(c["targets"]))
def test_timeseries_matches_keras(case):
    data = np.arange(40, dtype="float32").reshape(20, 2)
    targets = np.arange(100, 120) if case["targets"] else None
    ds = utils.timeseries_dataset_from_array(data, targets, **case["kwargs"])
    assert isinstance(ds, utils.PyDataset)
    for _ in range(2):  # re-iterable
        got = list(ds)
        assert len(got) == len(case["batches"]) == len(ds)
        for b, want in zip(got, case["batches"]):
            x = b[0] if case["targets"] else b
            np.testing.assert_array_equal(x, np.array(want["x"]["values"]))
            assert list(x.shape) == want["x"]["shape"]
            if case["targets"]:
                np.testing.assert_array_equal(b[1], np.array(want["y"]["values"]))


@pytest.mark.parametrize("case", FIX["timeseries_errors"], ids=lambda c: json.dumps(c["kwargs"]))
def test_timeseries_errors_match_keras(case):
    data = np.arange(40, dtype="float32").reshape(20, 2)
    assert case["error"] == "ValueError"
    with pytest.raises(ValueError):
        utils.timeseries_dataset_from_array(data, np.arange(20), **case["kwargs"])


def test_timeseries_shuffle_is_a_seeded_permutation():
    data = np.arange(30.0)[:, None]
    a = [b[1] for b in utils.timeseries_dataset_from_array(data, np.arange(30), 4, batch_size=5,
                                                            shuffle=True, seed=3)]
    b = [b[1] for b in utils.timeseries_dataset_from_array(data, np.arange(30), 4, batch_size=5,
                                                            shuffle=True, seed=3)]
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    flat = np.concatenate(a)
    assert sorted(flat.tolist()) == list(range(27)) and flat.tolist() != list(range(27))


def test_clear_session_resets_names_as_keras():
    backend.clear_session()
    a, b = layers.Dense(2).name, layers.Dense(2).name
    rnnkit.backend.clear_session()
    c = layers.Dense(2).name
    assert [a, b, c] == FIX["clear_session_names"]


def test_set_random_seed_seeds_numpy_and_rnnkit():
    utils.set_random_seed(5)
    a = (np.random.rand(), backend.rng().random())
    utils.set_random_seed(5)
    assert (np.random.rand(), backend.rng().random()) == a
    with pytest.raises(TypeError, match="seed"):
        utils.set_random_seed(1.5)


def test_keras_import_paths():
    from rnnkit.utils import pad_sequences, Progbar  # noqa: F401
    assert rnnkit.utils.pad_sequences is pad_sequences
    assert rnnkit.callbacks.Progbar is rnnkit.utils.Progbar


def test_pydataset_api():
    class DS(utils.PyDataset):
        def __init__(self):
            super().__init__(workers=4, use_multiprocessing=True)

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.full((2, 1), i), np.zeros((2, 1))

    ds = DS()
    assert ds.workers == 4 and ds.use_multiprocessing and ds.num_batches == 3
    assert [int(x[0, 0]) for x, _ in ds] == [0, 1, 2]
    with pytest.raises(NotImplementedError):
        len(utils.PyDataset())


def test_progbar_keeps_first_seen_order():
    import io
    s = io.StringIO()
    bar = utils.Progbar(2, verbose=2, stream=s)
    bar.update(1, [("loss", 1.0)], finalize=False)
    bar.update(2, [("loss", 0.5), ("val_loss", 0.25), ("learning_rate", 0.01)], finalize=True)
    assert s.getvalue().split(" - ")[3:] == ["loss: 0.5000", "val_loss: 0.2500",
                                             "learning_rate: 0.0100\n"]


def test_get_file_offline(tmp_path):
    with pytest.raises(OSError, match="network"):
        utils.get_file("x.csv", origin="https://example.com/x.csv", cache_dir=tmp_path)
    d = tmp_path / "datasets"
    d.mkdir()
    (d / "x.csv").write_text("1,2\n")
    assert utils.get_file(origin="https://example.com/x.csv", cache_dir=tmp_path) == str(d / "x.csv")
    import hashlib
    good = hashlib.sha256(b"1,2\n").hexdigest()
    assert utils.get_file("x.csv", file_hash=good, cache_dir=str(tmp_path)).endswith("x.csv")
    with pytest.raises(ValueError, match="sha256"):
        utils.get_file("x.csv", file_hash="0" * 64, cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="bare file name"):
        utils.get_file("../x.csv", cache_dir=str(tmp_path))
    with pytest.raises(OSError, match="network"):
        utils.get_file("x.csv", cache_dir=str(tmp_path), force_download=True)


def _functional():
    backend.clear_session()
    a = layers.Input((5, 3))
    b = layers.Input((4,))
    h = layers.LSTM(4)(a)
    out = layers.Dense(1)(layers.Concatenate()([h, b]))
    return rnnkit.Model([a, b], out)


def test_model_to_graph_edges():
    m = _functional()
    lys, edges = utils.model_to_graph(m)
    names = [la.name for la in lys]
    named = {(names[i], names[j]) for i, j in edges}
    assert ("lstm", "concatenate") in named and ("concatenate", "dense") in named
    assert any(t == "lstm" for _, t in named) and len(edges) == 4
    seq = rnnkit.Sequential([layers.Input((5, 3)), layers.GRU(2), layers.Dense(1)])
    lys, edges = utils.model_to_graph(seq)
    assert [type(la).__name__ for la in lys][1:] == ["GRU", "Dense"] and edges == [(0, 1), (1, 2)]


def test_plot_model(tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="matplotlib.*plot|plot.*matplotlib"):
            utils.plot_model(_functional(), to_file=str(tmp_path / "m.png"))
        return
    for model in (_functional(), rnnkit.Sequential([layers.Input((5, 3)), layers.GRU(2)])):
        path = tmp_path / f"{type(model).__name__}.png"
        utils.plot_model(model, to_file=str(path), show_shapes=True, dpi=50)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
