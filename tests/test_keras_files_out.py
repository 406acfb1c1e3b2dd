"""Keras files out: ``model.save("*.keras")`` / ``save_weights("*.weights.h5")`` write Keras 3
files (rnnkit.keras_io.writer / to_keras).

Real Keras is never imported here. tests/fixtures/keras_out/ holds files rnnkit wrote
(``make_rnnkit_files.py``) that ``check_in_keras.py`` opened in Keras 3 and compared, with
its verdict in ``results.json``. These tests check that verdict, that rnnkit still writes
the same weights layout and config for those models, the archive structure, that rnnkit can
rebuild a model from its own ``config.json``, and the error paths. Tests that write files
skip without h5py.
"""
from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import sys
import zipfile
from typing import Any, Dict

import numpy as np
import pytest

import rnnkit
from rnnkit import layers as L
from rnnkit import optimizers
from rnnkit.models import Sequential, load_model

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras_out")
ARCHS = ["tutorial", "bilstm", "stacked_gru", "lstm_options", "encoder_decoder",
         "adam_trained", "many_layers", "nested_dict", "bidirectional_states"]
SEQUENTIAL_ARCHS = ["tutorial", "bilstm", "stacked_gru", "lstm_options", "adam_trained"]


def _fixture_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "keras_out_fixtures", os.path.join(FIXTURES, "make_rnnkit_files.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _h5_datasets(raw: bytes) -> Dict[str, np.ndarray]:
    h5py = pytest.importorskip("h5py")
    out: Dict[str, np.ndarray] = {}
    with h5py.File(io.BytesIO(raw), "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset)
                     else None)
    return out


def _names(obj: Any, acc: set) -> set:
    """Every layer/model name in a Keras config (values of "name" keys)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "name" and isinstance(v, str):
                acc.add(v)
            _names(v, acc)
    elif isinstance(obj, list):
        for v in obj:
            _names(v, acc)
    return acc


def _anonymous(obj: Any, names: set) -> Any:
    """The config with names (which depend on how many layers a process made) blanked."""
    if isinstance(obj, dict):
        return {k: _anonymous(v, names) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_anonymous(v, names) for v in obj]
    return "<name>" if isinstance(obj, str) and obj in names else obj


# --------------------------------------------------------------------------------------------
# What real Keras said (no h5py needed)
# --------------------------------------------------------------------------------------------
def test_keras_opened_every_architecture():
    with open(os.path.join(FIXTURES, "results.json")) as f:
        res = json.load(f)
    assert res["keras_version"].startswith("3.")
    assert res["results"] == {name: "ok" for name in ARCHS}


# --------------------------------------------------------------------------------------------
# rnnkit still writes what Keras verified
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def written(tmp_path_factory):
    pytest.importorskip("h5py")
    mod = _fixture_module()
    out = {}
    d = tmp_path_factory.mktemp("keras_out")
    for name in ARCHS:
        model, xs = mod.build(name)
        path = d / f"{name}.keras"
        model.save(path)
        model.save_weights(d / f"{name}.weights.h5")
        out[name] = (model, xs, path, d / f"{name}.weights.h5")
    return out


@pytest.mark.parametrize("name", ARCHS)
def test_same_files_as_the_keras_verified_ones(written, name):
    _, _, path, wpath = written[name]
    with zipfile.ZipFile(path) as mine, zipfile.ZipFile(
            os.path.join(FIXTURES, f"{name}.keras")) as ref:
        assert [i.filename for i in mine.infolist()] == ["metadata.json", "config.json",
                                                         "model.weights.h5"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in mine.infolist())
        got, want = _h5_datasets(mine.read("model.weights.h5")), _h5_datasets(
            ref.read("model.weights.h5"))
        assert sorted(got) == sorted(want)
        for k in want:
            assert got[k].shape == want[k].shape and got[k].dtype == want[k].dtype, k
            np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-7, err_msg=k)
        cm, cr = json.loads(mine.read("config.json")), json.loads(ref.read("config.json"))
        assert _anonymous(cm, _names(cm, set())) == _anonymous(cr, _names(cr, set()))
        meta = json.loads(mine.read("metadata.json"))
        assert set(meta) == {"keras_version", "date_saved"}
    with open(wpath, "rb") as f:
        assert sorted(_h5_datasets(f.read())) == sorted(want)


def test_archive_layout_matches_keras(written):
    _, _, path, _ = written["encoder_decoder"]
    with zipfile.ZipFile(path) as z:
        cfg = json.loads(z.read("config.json"))
        ds = _h5_datasets(z.read("model.weights.h5"))
    assert (cfg["module"], cfg["class_name"], cfg["registered_name"]) == (
        "keras.src.models.functional", "Functional", "Functional")
    layers = {lc["class_name"]: lc for lc in cfg["config"]["layers"]}
    dec = [lc for lc in cfg["config"]["layers"] if lc["class_name"] == "LSTM"][1]
    node = dec["inbound_nodes"][0]
    assert len(node["args"]) == 1 and len(node["kwargs"]["initial_state"]) == 2
    assert node["kwargs"]["initial_state"][0]["class_name"] == "__keras_tensor__"
    assert node["kwargs"]["initial_state"][1]["config"]["keras_history"][1:] == [0, 2]
    concat = layers["Concatenate"]["inbound_nodes"][0]["args"]
    assert len(concat) == 1 and len(concat[0]) == 2  # one list argument
    assert dec["config"]["dtype"] == {"module": "keras", "class_name": "DTypePolicy",
                                      "config": {"name": "float32"}, "registered_name": None}
    assert dec["config"]["kernel_initializer"]["module"] == "keras.initializers"
    assert "layers/lstm/cell/vars/0" in ds and "layers/lstm_1/cell/vars/2" in ds
    assert "layers/time_distributed/layer/vars/1" in ds
    assert [k for k in ds if k.startswith("optimizer")] == []  # not compiled


def test_trained_model_carries_keras_optimizer_state(written):
    model, _, path, _ = written["adam_trained"]
    with zipfile.ZipFile(path) as z:
        cc = json.loads(z.read("config.json"))["compile_config"]
        ds = _h5_datasets(z.read("model.weights.h5"))
    assert cc["optimizer"]["class_name"] == "Adam"
    assert cc["optimizer"]["module"] == "keras.optimizers"
    assert cc["loss"]["class_name"] == "MeanSquaredError"
    opt = sorted((k for k in ds if k.startswith("optimizer/vars/")),
                 key=lambda k: int(k.rsplit("/", 1)[1]))
    n_tw = len(model.trainable_weights)
    assert len(opt) == 2 + 2 * n_tw  # iterations, learning rate, (m, v) per variable
    assert ds["optimizer/vars/0"].shape == () and ds["optimizer/vars/0"].dtype == np.int64
    assert int(ds["optimizer/vars/0"]) == model.optimizer.iterations > 0
    np.testing.assert_allclose(ds["optimizer/vars/1"], 0.01, rtol=1e-6)
    assert ds["optimizer/vars/2"].shape == ds["optimizer/vars/3"].shape == \
        model.trainable_weights[0].shape


def test_dict_outputs_get_keyed_compile_settings_and_keras_layer_order(written):
    """Keras flattens dict inputs/outputs sorted by key: per-output losses are keyed by
    name, and the weights groups / optimizer slots follow Keras's layer order."""
    from rnnkit.keras_io.writer import keras_layer_order

    model, _, path, _ = written["nested_dict"]
    with zipfile.ZipFile(path) as z:
        cfg = json.loads(z.read("config.json"))
    cc = cfg["compile_config"]
    assert set(cc["loss"]) == {"sum_out", "pool_out"}
    assert cc["loss"]["pool_out"]["class_name"] == "MeanAbsoluteError"
    assert cc["metrics"] == {"sum_out": ["mae"], "pool_out": []}
    assert cc["optimizer"]["config"]["learning_rate"]["module"] == "keras.optimizers.schedules"
    assert set(cfg["config"]["input_layers"]) == {"a", "b"}
    # The order real Keras 3.15.1 lists after loading tests/fixtures/keras_out/nested_dict.keras
    # (rnnkit's own model.layers puts the Sequential before the Bidirectional).
    assert [type(la).__name__ for la in keras_layer_order(model)] == [
        "InputLayer", "InputLayer", "Bidirectional", "Sequential", "GlobalAveragePooling1D",
        "Add"]
    assert [type(la).__name__ for la in model.layers] != [
        type(la).__name__ for la in keras_layer_order(model)]


# --------------------------------------------------------------------------------------------
# rnnkit parses its own config.json back (a Sequential; the full reader is keras_io.reader)
# --------------------------------------------------------------------------------------------
def _unwrap(obj: Any) -> Any:
    """Keras's object envelopes -> rnnkit's ``{"class_name", "config"}`` / names."""
    if isinstance(obj, list):
        return [_unwrap(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if obj.get("class_name") == "DTypePolicy":
        return obj["config"]["name"]
    if "module" in obj and "class_name" in obj:
        return {"class_name": obj["class_name"], "config": _unwrap(obj.get("config", {}))}
    return {k: _unwrap(v) for k, v in obj.items()}


@pytest.mark.parametrize("name", SEQUENTIAL_ARCHS)
def test_rnnkit_rebuilds_from_its_config_json(written, name):
    from rnnkit.keras_io.writer import weight_groups

    model, xs, path, _ = written[name]
    with zipfile.ZipFile(path) as z:
        cfg = json.loads(z.read("config.json"))
        raw = z.read("model.weights.h5")
    assert cfg["class_name"] == "Sequential"
    inner = cfg["config"]
    first, rest = inner["layers"][0], inner["layers"][1:]
    assert first["class_name"] == "InputLayer"
    rk_cfg = {"name": inner["name"], "trainable": inner["trainable"],
              "build_input_shape": first["config"]["batch_shape"],
              "layers": [_unwrap(lc) for lc in rest]}
    if first["config"]["dtype"] != "float32":
        rk_cfg["input_dtype"] = first["config"]["dtype"]
    rebuilt = Sequential.from_config(rk_cfg)
    ds = _h5_datasets(raw)
    rebuilt.set_weights([ds[f"{p}/{i}"] for p, _, arrs in weight_groups(rebuilt)
                         for i in range(len(arrs))])
    np.testing.assert_allclose(rebuilt.predict(xs[0], verbose=0),
                               model.predict(xs[0], verbose=0), rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Optimizer state order (Keras's, observed with Keras 3.15: interleaved or one run per slot)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("opt, expected", [
    (optimizers.Adam(amsgrad=True), ["i", "lr", "a", "a", "b", "b", "a", "b"]),
    (optimizers.RMSprop(momentum=0.5, centered=True), ["i", "lr", "a", "b", "a", "b", "a", "b"]),
    (optimizers.SGD(), ["i", "lr"]),
    (optimizers.Nadam(), ["i", "lr", "a", "a", "b", "b", "s"]),
])
def test_optimizer_arrays_in_keras_order(opt, expected):
    from rnnkit.keras_io.writer import optimizer_arrays

    a, b = np.ones((2, 3), np.float32), np.ones((4,), np.float32)
    opt.build([a, b])
    shapes = {"i": (), "lr": (), "a": (2, 3), "b": (4,), "s": ()}
    assert [x.shape for x in optimizer_arrays(opt)] == [shapes[e] for e in expected]


# --------------------------------------------------------------------------------------------
# Dispatch, atomic writes, errors
# --------------------------------------------------------------------------------------------
def _small() -> Sequential:
    m = Sequential([L.LSTM(3, input_shape=(4, 2)), L.Dense(1)])
    m.compile("adam", "mse")
    return m


def test_rnnkit_format_for_npz_and_old_keras_named_files(tmp_path):
    m = _small()
    x = np.random.RandomState(0).randn(2, 4, 2).astype("float32")
    m.save(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        assert "__rnnkit_config__.npy" in z.namelist()
    # rnnkit-format files saved under a .keras name before this change still load
    shutil.copy(tmp_path / "m.npz", tmp_path / "old.keras")
    np.testing.assert_array_equal(load_model(tmp_path / "old.keras").predict(x, verbose=0),
                                  m.predict(x, verbose=0))


def test_atomic_and_overwrite(tmp_path):
    pytest.importorskip("h5py")
    m = _small()
    m.save(tmp_path / "m.keras")
    m.save_weights(tmp_path / "w.weights.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras", "w.weights.h5"]
    before = (tmp_path / "m.keras").read_bytes()
    with pytest.raises(FileExistsError):
        m.save(tmp_path / "m.keras", overwrite=False)
    with pytest.raises(FileExistsError):
        m.save_weights(tmp_path / "w.weights.h5", overwrite=False)
    assert (tmp_path / "m.keras").read_bytes() == before


def test_what_cannot_be_written(tmp_path):
    pytest.importorskip("h5py")
    inp = rnnkit.Input((3,))
    lam = rnnkit.Model(inp, L.Lambda(lambda t: t * 2)(inp))
    with pytest.raises(ValueError, match="Lambda"):
        lam.save(tmp_path / "lam.keras")
    m = _small()
    with pytest.raises(ValueError, match="legacy"):
        m.save(tmp_path / "m.h5")
    with pytest.raises(ValueError, match="weights.h5"):
        m.save_weights(tmp_path / "w.keras")
    assert list(tmp_path.iterdir()) == []


def test_custom_loss_is_left_out_with_a_warning(tmp_path):
    pytest.importorskip("h5py")
    m = Sequential([L.Dense(1, input_shape=(3,))])
    m.compile("adam", lambda y, p: (y - p) ** 2)
    m.fit(np.ones((2, 3), "float32"), np.ones((2, 1), "float32"), verbose=0)
    with pytest.warns(UserWarning, match="custom loss"):
        m.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        assert json.loads(z.read("config.json"))["compile_config"] == {}
        assert not any(k.startswith("optimizer") for k in _h5_datasets(z.read("model.weights.h5")))


def test_clear_error_without_h5py(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py -> ImportError
    m = _small()
    with pytest.raises(ImportError, match=r"rnnkit\[keras\]"):
        m.save(tmp_path / "m.keras")
    with pytest.raises(ImportError, match=r"rnnkit\[keras\]"):
        m.save_weights(tmp_path / "m.weights.h5")
    assert list(tmp_path.iterdir()) == []


def test_rnnkit_keras_archive_round_trips_through_the_reader(tmp_path) -> None:
    """rnnkit writes a .keras archive and reads it back: same predictions, and the restored
    optimizer state makes the next training step identical."""
    pytest.importorskip("h5py")
    import rnnkit
    from rnnkit import layers as L

    enc, dec = rnnkit.Input((5, 3)), rnnkit.Input((4, 2))
    _, h, c = L.LSTM(4, return_state=True)(enc)
    seq = L.LSTM(4, return_sequences=True)(dec, initial_state=[h, c])
    out = L.Dense(2, activation="softmax")(L.Concatenate()([seq, L.Attention()([seq, seq])]))
    model = rnnkit.Model([enc, dec], out)
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    r = np.random.default_rng(0)
    x = [r.random((6, 5, 3), dtype=np.float32), r.random((6, 4, 2), dtype=np.float32)]
    y = np.eye(2, dtype=np.float32)[r.integers(0, 2, (6, 4))]
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "m.keras")
    back = rnnkit.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
    model.train_on_batch(x, y)
    back.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(a, b)
