"""Loading real Keras files (.keras, legacy .h5, .weights.h5) into rnnkit, and refusing
hostile ones. Fixtures were recorded with Keras 3.15.1 by
tests/fixtures/keras_files/make_keras_files.py (never run here; keras is never imported)."""
import io
import json
import os
import shutil
import struct
import sys
import zipfile

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import saving

h5py = pytest.importorskip("h5py")

D = os.path.join(os.path.dirname(__file__), "fixtures", "keras_files")
MODELS = ["simple_rnn", "emb_bilstm", "stacked_gru", "lstm_options", "enc_dec", "trained"]


def fixture(name):
    return os.path.join(D, name)


def recorded(name):
    with np.load(fixture(name + ".npz")) as f:
        return dict(f)


def inputs(rec):
    xs = [rec[k] for k in sorted(rec) if k[0] == "x" and k[1:].isdigit()]
    return xs if len(xs) > 1 else xs[0]


@pytest.mark.parametrize("ext", [".keras", ".h5"])
@pytest.mark.parametrize("name", MODELS)
def test_predictions_equal_keras(name, ext):
    model = rk.models.load_model(fixture(name + ext))
    rec = recorded(name)
    y = model.predict(inputs(rec), verbose=0)
    np.testing.assert_allclose(y, rec["y0"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_weights_files_into_existing_model(name):
    ref = rk.models.load_model(fixture(name + ".keras"))
    for source in (".weights.h5", ".h5", ".keras"):
        fresh = rk.models.clone_model(ref)
        fresh.load_weights(fixture(name + source))
        for a, b in zip(ref.get_weights(), fresh.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_translated_options():
    m = rk.models.load_model(fixture("lstm_options.keras"))
    lstm = m.layers[0]
    cfg = lstm.get_config()
    assert (cfg["go_backwards"], cfg["activation"], cfg["recurrent_activation"],
            cfg["unit_forget_bias"]) == (True, "relu", "hard_sigmoid", False)
    gru = rk.models.load_model(fixture("stacked_gru.h5"))
    assert [lay.get_config().get("reset_after") for lay in gru.layers[1:3]] == [True, False]
    emb = rk.models.load_model(fixture("emb_bilstm.keras"))
    assert emb.layers[0].get_config()["mask_zero"] is True
    assert type(emb.layers[1]).__name__ == "Bidirectional"


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_compile_and_adam_state_continue_training(ext):
    rec = recorded("trained")
    model = rk.models.load_model(fixture("trained" + ext))
    assert type(model.optimizer).__name__ == "Adam"
    assert model.optimizer._iterations == 4
    model.train_on_batch(rec["xb"], rec["yb"])
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, rec[f"after{i}"], rtol=1e-5, atol=1e-6)
    # Without the restored state the same step lands elsewhere: the state mattered.
    fresh = rk.models.load_model(fixture("trained" + ext), compile=False)
    fresh.compile(optimizer=rk.optimizers.Adam(0.01), loss="mse")
    fresh.train_on_batch(rec["xb"], rec["yb"])
    assert not np.allclose(fresh.get_weights()[0], rec["after0"], atol=1e-6)


def test_compile_settings_restored():
    m = rk.models.load_model(fixture("emb_bilstm.keras"))
    assert type(m.optimizer).__name__ == "RMSprop"
    m = rk.models.load_model(fixture("simple_rnn.h5"), compile=False)
    assert not m.compiled


def test_rnnkit_format_still_loads(tmp_path):
    m = rk.models.load_model(fixture("enc_dec.keras"))
    p = str(tmp_path / "m.npz")
    m.save(p)
    again = rk.models.load_model(p)
    rec = recorded("enc_dec")
    np.testing.assert_allclose(again.predict(inputs(rec), verbose=0), rec["y0"], atol=1e-6)
    w = str(tmp_path / "w.npz")
    m.save_weights(w)
    again.load_weights(w)


def test_keras2_hard_sigmoid(tmp_path):
    p = str(tmp_path / "k2.h5")
    shutil.copy(fixture("lstm_options.h5"), p)
    with h5py.File(p, "r+") as f:
        f.attrs["keras_version"] = "2.15.0"
    m = rk.models.load_model(p)
    assert m.layers[0].get_config()["recurrent_activation"] == "hard_sigmoid_keras2"


# --------------------------------------------------------------------------------------------
# Hostile files
# --------------------------------------------------------------------------------------------
def rewrite_keras(src, dst, edit_config=None, members=None):
    """Copy a .keras archive, editing its config.json / replacing members."""
    with zipfile.ZipFile(src) as z:
        data = {n: z.read(n) for n in z.namelist()}
    if edit_config is not None:
        cfg = json.loads(data["config.json"])
        edit_config(cfg)
        data["config.json"] = json.dumps(cfg).encode()
    data.update(members or {})
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in data.items():
            if b is not None:
                z.writestr(n, b)
    return dst


def refused(path, *words):
    with pytest.raises(ValueError) as info:
        rk.models.load_model(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_truncated_zip(tmp_path):
    raw = open(fixture("simple_rnn.keras"), "rb").read()
    p = tmp_path / "cut.keras"
    p.write_bytes(raw[: len(raw) // 2])
    refused(str(p))


def test_zip_bomb_member(tmp_path):
    # A config.json over MAX_CONFIG_BYTES is refused before it is read.
    p = str(tmp_path / "big.keras")
    rewrite_keras(fixture("simple_rnn.keras"), p,
                  members={"config.json": b" " * (saving.MAX_CONFIG_BYTES + 10)})
    refused(p, "config.json")
    # A member whose directory entry claims an absurd inflated size.
    q = tmp_path / "bomb.keras"
    raw = bytearray(open(fixture("simple_rnn.keras"), "rb").read())
    cd = raw.rfind(b"PK\x01\x02" + b"", 0)
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as z:
        names = z.namelist()
    pos = 0
    for _ in names:  # patch every central-directory entry's uncompressed size
        pos = raw.find(b"PK\x01\x02", pos)
        raw[pos + 24:pos + 28] = struct.pack("<I", 0xFFFFFFF0)
        pos += 4
    assert cd > 0
    q.write_bytes(bytes(raw))
    refused(str(q))


@pytest.mark.parametrize("where", ["layer", "module", "model"])
def test_arbitrary_class_names(tmp_path, where):
    def edit(cfg):
        if where == "layer":
            cfg["config"]["layers"][1]["class_name"] = "os.system"
        elif where == "module":
            cfg["config"]["layers"][1]["module"] = "os"
            cfg["config"]["layers"][1]["class_name"] = "system"
        else:
            cfg["class_name"] = "os.system"
    p = rewrite_keras(fixture("simple_rnn.keras"), str(tmp_path / "evil.keras"), edit)
    msg = refused(p)
    assert "os" in msg


def test_unknown_layer_names_layer_and_class(tmp_path):
    def edit(cfg):
        cfg["config"]["layers"][2]["class_name"] = "ConvLSTM2D"
    p = rewrite_keras(fixture("simple_rnn.keras"), str(tmp_path / "x.keras"), edit)
    refused(p, "ConvLSTM2D", "dense")


def test_lambda_refused(tmp_path):
    def edit(cfg):
        cfg["config"]["layers"][2] = {
            "module": "keras.layers", "class_name": "Lambda", "registered_name": None,
            "config": {"name": "evil", "function": {"class_name": "__lambda__", "config": {
                "code": "4wEAAAAAAAAA", "defaults": None, "closure": None}}}}
    p = rewrite_keras(fixture("simple_rnn.keras"), str(tmp_path / "lam.keras"), edit)
    refused(p, "Lambda", "evil")


def test_absurd_dataset_shape(tmp_path):
    p = str(tmp_path / "absurd.weights.h5")
    shutil.copy(fixture("simple_rnn.weights.h5"), p)
    with h5py.File(p, "r+") as f:
        del f["layers/simple_rnn/cell/vars/0"]
        f.create_dataset("layers/simple_rnn/cell/vars/0", shape=(2 ** 40, 2 ** 20),
                         dtype="f4", chunks=(1, 1024))  # declared only: nothing allocated
    m = rk.models.load_model(fixture("simple_rnn.keras"))
    before = m.get_weights()
    with pytest.raises(ValueError, match="shape") as info:
        m.load_weights(p)
    assert p in str(info.value)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)  # nothing half-loaded
    # ... and inside a .keras archive.
    q = rewrite_keras(fixture("simple_rnn.keras"), str(tmp_path / "absurd.keras"),
                      members={"model.weights.h5": open(p, "rb").read()})
    refused(q, "shape")


def test_total_bytes_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(saving, "MAX_WEIGHT_BYTES", 100)
    refused(fixture("simple_rnn.keras"), "MAX_WEIGHT_BYTES")


def test_wrong_dtype_refused(tmp_path):
    p = str(tmp_path / "str.weights.h5")
    shutil.copy(fixture("simple_rnn.weights.h5"), p)
    with h5py.File(p, "r+") as f:
        shape = f["layers/dense/vars/1"].shape
        del f["layers/dense/vars/1"]
        f.create_dataset("layers/dense/vars/1", data=np.zeros(shape, dtype="i4"))
    m = rk.models.load_model(fixture("simple_rnn.keras"))
    with pytest.raises(ValueError, match="dtype"):
        m.load_weights(p)


def test_missing_weights(tmp_path):
    p = str(tmp_path / "missing.weights.h5")
    shutil.copy(fixture("simple_rnn.weights.h5"), p)
    with h5py.File(p, "r+") as f:
        del f["layers/dense/vars/1"]
    q = rewrite_keras(fixture("simple_rnn.keras"), str(tmp_path / "missing.keras"),
                      members={"model.weights.h5": open(p, "rb").read()})
    refused(q, "missing")
    r = rewrite_keras(fixture("simple_rnn.keras"), str(tmp_path / "noweights.keras"),
                      members={"model.weights.h5": None})
    refused(r, "model.weights.h5")
    s = str(tmp_path / "legacy.h5")
    shutil.copy(fixture("simple_rnn.h5"), s)
    with h5py.File(s, "r+") as f:
        del f["model_weights/dense"]
    refused(s, "dense")


def test_external_link_refused(tmp_path):
    other = str(tmp_path / "other.h5")
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.zeros((20, 1), "f4"))
    p = str(tmp_path / "link.weights.h5")
    shutil.copy(fixture("simple_rnn.weights.h5"), p)
    with h5py.File(p, "r+") as f:
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = h5py.ExternalLink(other, "x")
    m = rk.models.load_model(fixture("simple_rnn.keras"))
    with pytest.raises(ValueError, match="ExternalLink"):
        m.load_weights(p)


def test_not_a_model_h5(tmp_path):
    p = str(tmp_path / "plain.h5")
    with h5py.File(p, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    refused(p, "model_config")
    q = tmp_path / "garbage.h5"
    q.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    refused(str(q))


def test_without_h5py_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"rnnkit\[keras\]"):
        rk.models.load_model(fixture("simple_rnn.keras"))


# A config in tf.keras 2.x's format (batch_input_shape, nested-list inbound_nodes, Keras 2
# optimizer fields), attached to the recorded legacy weights of the tutorial model.
_K2_RNN = {"name": "simple_rnn", "trainable": True, "dtype": "float32",
           "return_sequences": True, "return_state": False, "go_backwards": False,
           "stateful": False, "unroll": False, "time_major": False, "units": 20,
           "activation": "tanh", "use_bias": True,
           "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
           "recurrent_initializer": {"class_name": "Orthogonal",
                                     "config": {"gain": 1.0, "seed": None}},
           "bias_initializer": {"class_name": "Zeros", "config": {}},
           "kernel_regularizer": None, "recurrent_regularizer": None, "bias_regularizer": None,
           "activity_regularizer": None, "kernel_constraint": None,
           "recurrent_constraint": None, "bias_constraint": None, "dropout": 0.0,
           "recurrent_dropout": 0.0}
_K2_DENSE = {"name": "dense", "trainable": True, "dtype": "float32", "units": 1,
             "activation": "linear", "use_bias": True,
             "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
             "bias_initializer": {"class_name": "Zeros", "config": {}},
             "kernel_regularizer": None, "bias_regularizer": None,
             "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_keras2_format_configs(tmp_path, kind):
    if kind == "sequential":
        cfg = {"class_name": "Sequential", "config": {"name": "s", "layers": [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 10, 1],
                                                    "dtype": "float32", "sparse": False,
                                                    "ragged": False, "name": "input_1"}},
            {"class_name": "SimpleRNN", "config": _K2_RNN},
            {"class_name": "Dense", "config": _K2_DENSE}]}}
    else:
        cfg = {"class_name": "Functional", "config": {"name": "f", "layers": [
            {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
             "config": {"batch_input_shape": [None, 10, 1], "dtype": "float32",
                        "sparse": False, "ragged": False, "name": "input_1"}},
            {"class_name": "SimpleRNN", "name": "simple_rnn", "config": _K2_RNN,
             "inbound_nodes": [[["input_1", 0, 0, {}]]]},
            {"class_name": "Dense", "name": "dense", "config": _K2_DENSE,
             "inbound_nodes": [[["simple_rnn", 0, 0, {}]]]}],
            "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]]}}
    p = str(tmp_path / "k2.h5")
    shutil.copy(fixture("simple_rnn.h5"), p)
    with h5py.File(p, "r+") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["model_config"] = json.dumps(cfg)
        f.attrs["training_config"] = json.dumps({
            "loss": "mse", "metrics": [["mae"]], "weighted_metrics": None,
            "loss_weights": None, "optimizer_config": {"class_name": "Adam", "config": {
                "name": "Adam", "learning_rate": 0.001, "decay": 0.0, "beta_1": 0.9,
                "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False,
                "is_legacy_optimizer": False, "jit_compile": False}}})
    model = rk.models.load_model(p)
    rec = recorded("simple_rnn")
    np.testing.assert_allclose(model.predict(inputs(rec), verbose=0), rec["y0"],
                               rtol=1e-5, atol=1e-6)
    assert type(model.optimizer).__name__ == "Adam"
