"""model.export(path, format="onnx"): the ONNX file passes onnx.checker and, run by ONNX Runtime,
gives model.predict's outputs (float32, 1e-5). Needs onnx and onnxruntime (skipped otherwise);
the ImportError / format checks run without them."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import rnnkit
from rnnkit import layers as L

ATOL = 1e-5


def _runtime():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    return onnx, ort


def _export_and_run(model, xs, tmp_path, name="m.onnx", **kw):
    """Export, check, run in ONNX Runtime; returns (onnx outputs, predict outputs)."""
    onnx, ort = _runtime()
    path = tmp_path / name
    model.export(str(path), format="onnx", **kw)
    onnx.checker.check_model(onnx.load(str(path)))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == list(model.input_names)
    got = sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})
    want = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    if isinstance(want, dict):
        want = list(want.values())
    elif not isinstance(want, list):
        want = [want]
    assert len(got) == len(want)
    return got, want


def _assert_close(model, xs, tmp_path, **kw):
    got, want = _export_and_run(model, xs, tmp_path, **kw)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=0, atol=ATOL)


def _padded_ids(rng, lengths, t, vocab=20):
    """(B, T) int64 ids, right-padded with 0 after each row's length."""
    ids = rng.integers(1, vocab, size=(len(lengths), t))
    for i, n in enumerate(lengths):
        ids[i, n:] = 0
    return ids.astype(np.int64)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# -- the architectures ------------------------------------------------------------------------
def test_tutorial_simple_rnn(rng, tmp_path):
    model = rnnkit.Sequential([L.SimpleRNN(20, input_shape=(10, 1), return_sequences=True),
                               L.Dense(1)])
    _assert_close(model, [rng.normal(size=(8, 10, 1)).astype(np.float32)], tmp_path)


def test_embedding_mask_bidirectional_lstm(rng, tmp_path):
    model = rnnkit.Sequential([
        L.Input((None,), dtype="int64"), L.Embedding(30, 8, mask_zero=True),
        L.Bidirectional(L.LSTM(6, return_sequences=True)),
        L.Bidirectional(L.LSTM(5)), L.Dense(3, activation="softmax")])
    _assert_close(model, [_padded_ids(rng, [9, 3, 5, 1, 7], 9, 30)], tmp_path)


@pytest.mark.parametrize("reset_after", [True, False])
def test_stacked_masked_grus(rng, tmp_path, reset_after):
    model = rnnkit.Sequential([
        L.Input((None,), dtype="int64"), L.Embedding(20, 6, mask_zero=True),
        L.GRU(5, return_sequences=True, reset_after=reset_after),   # repeats past the length
        L.GRU(4, return_sequences=True, reset_after=reset_after, zero_output_for_mask=True),
        L.TimeDistributed(L.Dense(2))])
    _assert_close(model, [_padded_ids(rng, [8, 2, 5, 1], 8)], tmp_path)


@pytest.mark.parametrize("masked", [False, True])
def test_lstm_go_backwards_non_default_options(rng, tmp_path, masked):
    layers = ([L.Input((None,), dtype="int64"), L.Embedding(20, 3, mask_zero=True)] if masked
              else [L.Input((None, 3))])
    model = rnnkit.Sequential(layers + [
        L.LSTM(6, go_backwards=True, activation="relu", recurrent_activation="hard_sigmoid",
               return_sequences=True, unit_forget_bias=False, bias_initializer="glorot_uniform"),
        L.GRU(4, go_backwards=True, activation="softsign", recurrent_activation="sigmoid"),
        L.Dense(2)])
    x = (_padded_ids(rng, [7, 3, 1, 5], 7) if masked
         else rng.normal(size=(4, 7, 3)).astype(np.float32))
    _assert_close(model, [x], tmp_path)


def test_functional_two_inputs(rng, tmp_path):
    enc = L.Input((None, 3), name="encoder_in")
    dec = L.Input((None, 2), name="decoder_in")
    _, h, c = L.LSTM(5, return_state=True)(enc)
    seq = L.LSTM(5, return_sequences=True)(dec, initial_state=[h, c])
    side = L.Dense(5)(L.GlobalMaxPooling1D()(L.Conv1D(4, 3, padding="causal",
                                                       activation="relu")(enc)))
    out = L.Dense(2, name="seq_out")(L.Concatenate()([seq, L.RepeatVector(6)(side)]))
    summary = L.Add(name="summary")([h, side])
    model = rnnkit.Model([enc, dec], [out, summary])
    _assert_close(model, [rng.normal(size=(3, 5, 3)).astype(np.float32),
                          rng.normal(size=(3, 6, 2)).astype(np.float32)], tmp_path)


# -- more coverage ----------------------------------------------------------------------------
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul"])
def test_bidirectional_merge_modes_masking_layer(rng, tmp_path, merge_mode):
    x = rng.normal(size=(4, 6, 3)).astype(np.float32)
    x[1, 4:] = 0.0
    x[2, 1:] = 0.0
    model = rnnkit.Sequential([
        L.Input((None, 3)), L.Masking(0.0),
        L.Bidirectional(L.SimpleRNN(4, return_sequences=True), merge_mode=merge_mode),
        L.GlobalAveragePooling1D(), L.Dense(2, activation="tanh")])
    _assert_close(model, [x], tmp_path)


def test_bidirectional_different_backward_layer_and_states(rng, tmp_path):
    inp = L.Input((None, 3))
    outs = L.Bidirectional(L.GRU(4, return_sequences=True, return_state=True),
                           backward_layer=L.GRU(4, go_backwards=True, return_sequences=True,
                                                return_state=True, reset_after=False))(inp)
    model = rnnkit.Model(inp, outs)
    _assert_close(model, [rng.normal(size=(2, 5, 3)).astype(np.float32)], tmp_path)


def test_all_masked_row(rng, tmp_path):
    model = rnnkit.Sequential([L.Input((None,), dtype="int64"), L.Embedding(20, 4, mask_zero=True),
                               L.LSTM(5, return_sequences=True), L.SimpleRNN(3)])
    _assert_close(model, [_padded_ids(rng, [6, 0, 2], 6)], tmp_path)


@pytest.mark.parametrize("activation", ["tanh", "linear", "elu", "softplus", "hard_sigmoid_keras2"])
def test_rnn_activations(rng, tmp_path, activation):
    inp = L.Input((None, 3))
    outs = [cls(3, activation=activation, return_sequences=True)(inp)
            for cls in (L.SimpleRNN, L.GRU, L.LSTM)]
    model = rnnkit.Model(inp, outs)
    _assert_close(model, [rng.normal(size=(2, 5, 3)).astype(np.float32)], tmp_path)


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
def test_conv_pool_norm_layers(rng, tmp_path, padding):
    dil = 1 if padding == "valid" else 2
    layers = [L.Input((None, 3)),
              L.Conv1D(4, 3, padding=padding, dilation_rate=dil, strides=2 if dil == 1 else 1),
              L.LayerNormalization(), L.BatchNormalization(), L.Dropout(0.5)]
    if padding != "causal":
        layers += [L.MaxPooling1D(2, padding=padding),
                   L.AveragePooling1D(3, strides=1, padding=padding)]
    model = rnnkit.Sequential(layers + [L.GRU(3), L.Dense(2, activation="gelu")])
    bn = model.layers[2]
    bn.moving_mean.assign(rng.normal(size=4))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, size=4))
    _assert_close(model, [rng.normal(size=(2, 23, 3)).astype(np.float32)], tmp_path)


def test_nested_model_and_opset(rng, tmp_path):
    inner = rnnkit.Sequential([L.Input((None, 3)), L.SimpleRNN(4, return_sequences=True)])
    inp = L.Input((None, 3))
    model = rnnkit.Model(inp, L.Dense(2, activation="selu")(inner(inp)))
    _assert_close(model, [rng.normal(size=(2, 5, 3)).astype(np.float32)], tmp_path,
                  opset_version=18)


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("layer, words", [
    (lambda: L.Lambda(lambda t: t * 2), ["'lam'", "Lambda"]),
    (lambda: L.LSTM(3, activation="gelu"), ["'lam'", "gelu"]),
    (lambda: L.GRU(3, stateful=True), ["'lam'", "stateful"]),
    (lambda: L.LSTM(3, proj_size=2), ["'lam'", "proj_size"]),
])
def test_unsupported_layer_is_named(tmp_path, layer, words):
    _runtime()
    lyr = layer()
    lyr.name = "lam"
    model = rnnkit.Sequential([L.Input((4, 3), batch_size=2), lyr])
    path = tmp_path / "bad.onnx"
    with pytest.raises(ValueError) as info:
        model.export(str(path), format="onnx")
    for w in words:
        assert w in str(info.value)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_other_formats_are_refused(tmp_path):
    model = rnnkit.Sequential([L.Input((None, 3)), L.LSTM(2)])
    with pytest.raises(ValueError, match="format='onnx' only"):
        model.export(str(tmp_path / "m"))
    with pytest.raises(ValueError, match="format='onnx' only"):
        model.export(str(tmp_path / "m"), format="tf_saved_model")
    with pytest.raises(ValueError, match="input_signature"):
        model.export(str(tmp_path / "m"), format="onnx", input_signature=[(None, 3)])


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    model = rnnkit.Sequential([L.Input((None, 3)), L.LSTM(2)])
    with pytest.raises(ImportError, match=r"rnnkit\[onnx\]"):
        model.export(str(tmp_path / "m.onnx"), format="onnx")
