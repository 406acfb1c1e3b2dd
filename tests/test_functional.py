"""The functional API: Input, Model(inputs, outputs), graphs with states, shared layers,
several inputs and outputs, training, saving and configs, and clear errors for bad graphs."""
from __future__ import annotations

import json
from typing import Any, Iterator, List

import numpy as np
import pytest

import rnnkit
from rnnkit import layers as L
from rnnkit import saving
from rnnkit.models import Model, Sequential, clone_model, load_model, model_from_json

from _cases import numeric_grad


@pytest.fixture(autouse=True)
def _float64() -> Iterator[None]:
    previous = rnnkit.backend.floatx()
    rnnkit.backend.set_floatx("float64")
    yield
    rnnkit.backend.set_floatx(previous)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _encoder_decoder() -> Model:
    """GRU encoder -> state -> GRU decoder; a Dense shared by the sequence and the state."""
    enc_in = rnnkit.Input((5, 3), name="enc")
    dec_in = rnnkit.Input((4, 2), name="dec")
    _, h = L.GRU(6, return_state=True, name="encoder")(enc_in)
    seq = L.GRU(6, return_sequences=True, name="decoder")(dec_in, initial_state=[h])
    shared = L.Dense(3, name="shared")
    return Model([enc_in, dec_in], [shared(seq), shared(h)], name="ed")


def _data(seed: int = 0) -> tuple:
    r = _rng(seed)
    return ([r.normal(size=(6, 5, 3)), r.normal(size=(6, 4, 2))],
            [r.normal(size=(6, 4, 3)), r.normal(size=(6, 3))])


def test_input_is_symbolic_and_layers_record_shapes() -> None:
    x = rnnkit.Input((7, 3), name="seq")
    assert x.shape == (None, 7, 3)
    y, h, c = L.LSTM(4, return_state=True, return_sequences=True)(x)
    assert (y.shape, h.shape, c.shape) == ((None, 7, 4), (None, 4), (None, 4))
    with pytest.raises(TypeError, match="symbolic"):
        np.asarray(x)


def test_structure_order_and_weights_match_keras_order() -> None:
    m = _encoder_decoder()
    assert [layer.name for layer in m.layers] == ["enc", "dec", "encoder", "decoder", "shared"]
    assert [w.name for w in m.weights] == ["kernel", "recurrent_kernel", "bias"] * 2 + [
        "kernel", "bias"]
    assert m.get_layer("decoder") is m.layers[3] and m.get_layer(index=-1).name == "shared"
    assert m.output_names == ["shared", "shared_1"] and m.input_names == ["enc", "dec"]
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        m.get_layer("nope")


def test_gradients_through_states_shared_layer_and_fan_out() -> None:
    """Every weight gradient of the whole graph equals central differences (float64)."""
    m = _encoder_decoder()
    m.compile("sgd", ["mse", "mse"], loss_weights=[1.0, 0.5])
    x, y = _data()
    _, grads = m.loss_and_gradients(x, y)
    for w, g in zip(m.trainable_weights, grads):
        num = numeric_grad(lambda: m.loss_and_gradients(x, y)[0], w.value)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8, err_msg=w.name)


def test_input_gradients_of_a_nested_model() -> None:
    """A model called as a layer passes gradients back to its inputs."""
    inner = _encoder_decoder()
    a, b = rnnkit.Input((5, 3)), rnnkit.Input((4, 2))
    s, v = inner([a, b])
    outer = Model([a, b], L.Add()([L.GlobalAveragePooling1D()(s), v]))
    x, _ = _data(1)
    outer.forward(x, need_grad=True)
    dx = outer.backward(np.ones((6, 3)))
    for i in range(2):
        num = numeric_grad(lambda: float(outer.forward(x).sum()), x[i])
        np.testing.assert_allclose(dx[i], num, rtol=1e-6, atol=1e-8)


def test_fit_evaluate_predict_with_several_outputs() -> None:
    m = _encoder_decoder()
    m.compile("adam", ["mse", "mse"], loss_weights=[1.0, 0.5], metrics=[["mae"], ["mae"]])
    x, y = _data()
    hist = m.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert sorted(hist.history) == ["loss", "shared_1_loss", "shared_1_mae", "shared_loss",
                                    "shared_mae"]
    res = m.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(res["loss"], res["shared_loss"] + 0.5 * res["shared_1_loss"])
    assert m.metrics_names == ["loss", "shared_loss", "shared_1_loss", "shared_mae",
                               "shared_1_mae"]
    out = m.predict(x, verbose=0, batch_size=4)
    assert [o.shape for o in out] == [(6, 4, 3), (6, 3)]
    np.testing.assert_allclose(out[0], m(x)[0])


def test_dict_inputs_and_outputs_and_named_errors() -> None:
    a, b = rnnkit.Input((4,), name="a"), rnnkit.Input((2,), name="b")
    out = L.Dense(3, name="y")(L.Concatenate()([L.Dense(4)(a), b]))
    m = Model({"a": a, "b": b}, {"y": out})
    m.compile("sgd", {"y": "mse"})
    xa, xb = np.ones((5, 4)), np.ones((5, 2))
    m.fit({"a": xa, "b": xb}, {"y": np.zeros((5, 3))}, verbose=0)
    assert set(m.predict({"b": xb, "a": xa}, verbose=0)) == {"y"}
    with pytest.raises(ValueError, match=r"no entry for \['b'\]"):
        m.fit({"a": xa}, {"y": np.zeros((5, 3))}, verbose=0)
    with pytest.raises(ValueError, match="input 'b' has shape"):
        m.predict({"a": xa, "b": np.ones((5, 3))}, verbose=0)
    with pytest.raises(ValueError, match="not outputs of the model"):
        m.compile("sgd", {"z": "mse"})


def test_bad_graphs_are_named() -> None:
    a, b = rnnkit.Input((4,), name="ga"), rnnkit.Input((2,), name="gb")
    with pytest.raises(ValueError, match="need Input 'gb'"):
        Model(a, L.Dense(2)(b))
    with pytest.raises(ValueError, match=r"\['dup'\]"):
        Model(a, L.Dense(2, name="dup")(L.Dense(2, name="dup")(a)))
    dense = L.Dense(2, name="d4")
    dense(a)
    with pytest.raises(ValueError, match=r"'d4' \(Dense\).*\(None, 2\).*last axis of 4"):
        dense(b)
    with pytest.raises(ValueError, match=r"'lstm_bad' \(LSTM\).*\(None, 4\)"):
        L.LSTM(3, name="lstm_bad")(a)
    with pytest.raises(TypeError, match="subclassing"):
        Model()


def test_save_load_json_and_clone_round_trip(tmp_path: Any) -> None:
    m = _encoder_decoder()
    m.compile("adam", ["mse", "mae"], loss_weights=[1.0, 2.0], metrics=[["mae"], []])
    x, y = _data()
    m.fit(x, y, epochs=1, verbose=0)
    m.save(tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    for p, q in zip(m.predict(x, verbose=0), back.predict(x, verbose=0)):
        np.testing.assert_array_equal(p, q)
    assert back._loss_weights == [1.0, 2.0]
    # The next training step continues identically (optimizer state restored).
    m.train_on_batch(x, y)
    back.train_on_batch(x, y)
    for p, q in zip(m.get_weights(), back.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-12)
    rebuilt = model_from_json(m.to_json())
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in m.weights]
    rebuilt.set_weights(m.get_weights())
    np.testing.assert_array_equal(rebuilt.predict(x, verbose=0)[1], m.predict(x, verbose=0)[1])
    twin = clone_model(m)
    assert not np.array_equal(twin.get_weights()[0], m.get_weights()[0])  # fresh weights


def test_sequential_inside_model_and_model_inside_model(tmp_path: Any) -> None:
    seq = Sequential([L.Input((5, 3)), L.LSTM(4), L.Dense(2)], name="inner_seq")
    t = rnnkit.Input((5, 3))
    m = Model(t, L.Dense(1)(seq(t)))
    x = _rng(2).normal(size=(6, 5, 3))
    m.compile("sgd", "mse")
    m.fit(x, np.zeros((6, 1)), verbose=0)
    m.save(tmp_path / "nested.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "nested.npz").predict(x, verbose=0),
                                  m.predict(x, verbose=0))
    assert Sequential.from_config(json.loads(seq.to_json())["config"]).get_layer(index=0).units == 4


def test_summary_shows_connections() -> None:
    lines: List[str] = []
    _encoder_decoder().summary(print_fn=lines.append)
    text = "".join(lines)
    assert "Connected to" in text and "encoder[0][1]" in text and "decoder[0][0]" in text


def test_chain_summary_has_three_columns() -> None:
    x = rnnkit.Input((4,))
    lines: List[str] = []
    Model(x, L.Dense(2)(L.Dense(3)(x))).summary(print_fn=lines.append)
    assert "Connected to" not in "".join(lines)


def test_layer_input_and_output_views() -> None:
    x = rnnkit.Input((3,), name="v_in")
    d = L.Dense(2, name="v_dense")
    y = d(x)
    assert d.output is y and d.input is x
    sub = Model(x, L.Dense(1)(y))
    feats = Model(sub.inputs, sub.get_layer("v_dense").output)
    assert feats.predict(np.ones((2, 3)), verbose=0).shape == (2, 2)
    d(rnnkit.Input((3,)))
    with pytest.raises(AttributeError, match="ambiguous"):
        _ = d.output


@pytest.mark.parametrize("mutate, where", [
    (lambda c: c["layers"][2]["inbound_nodes"][0]["args"][0].__setitem__(1, -1), "args[0]"),
    (lambda c: c["layers"][2]["inbound_nodes"][0]["kwargs"].update(x=[1]), "kwargs.x"),
    (lambda c: c["layers"][2].update(extra=1), "layers[2]"),
    (lambda c: c.update(output_layers=[]), "output_layers"),
    (lambda c: c["layers"][2]["config"].update(units=-1), "units"),
])
def test_hostile_graph_configs_are_refused(mutate: Any, where: str) -> None:
    cfg = json.loads(_encoder_decoder().to_json())
    mutate(cfg["config"])
    with pytest.raises(ValueError, match=where.replace("[", r"\[").replace("]", r"\]")):
        model_from_json(json.dumps(cfg))


def test_graph_referring_to_missing_tensors_is_refused() -> None:
    cfg = json.loads(_encoder_decoder().to_json())
    cfg["config"]["layers"][3]["inbound_nodes"][0]["args"][1] = ["encoder", 5, 0]
    with pytest.raises(ValueError, match="no layer call produces"):
        model_from_json(json.dumps(cfg))


def test_lambda_on_an_input_does_not_block_training() -> None:
    """Training never asks a weightless node fed only by inputs for its gradient."""
    x = rnnkit.Input((4,))
    scaled = L.Lambda(lambda v: v / 2.0)(x)
    m = Model(x, L.Dense(1)(scaled))
    m.compile("sgd", "mse")
    m.fit(np.ones((3, 4)), np.zeros((3, 1)), verbose=0)
    y = m.layers[-1]
    assert y.kernel.grad is not None
