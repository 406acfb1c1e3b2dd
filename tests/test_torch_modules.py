"""Whole PyTorch nn.RNN / nn.LSTM / nn.GRU modules <-> rnnkit Sequential models
(rnnkit.interop.torch_modules, rnnkit.interop.state_dict).

Without PyTorch: recorded state dicts + outputs (tests/fixtures/torch_modules, made by
generate.py there) rebuild as rnnkit models that reproduce the outputs, and every error of
the state-dict path and of the rnnkit -> state-dict direction is checked. With PyTorch: the
full matrix cell (rnn tanh, rnn relu, lstm, gru) x num_layers 1-3 x bidirectional x bias,
float32 and float64, both directions.
"""
from __future__ import annotations

import itertools
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np
import pytest

from rnnkit.interop import state_dict as sdmod
from rnnkit.interop import torch as interop
from rnnkit.layers import GRU, LSTM, Bidirectional, Dense, Input, Masking, SimpleRNN
from rnnkit.models import Sequential

FIXTURES = Path(__file__).parent / "fixtures" / "torch_modules"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())["cases"]
TOL = {"float32": 1e-6, "float64": 1e-12}


def _close(got: np.ndarray, want: np.ndarray, dtype: str) -> None:
    assert got.dtype == np.dtype(dtype), (got.dtype, dtype)
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])


def _load(name: str) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(state dict, x, y) of a recorded case, read without pickle."""
    with np.load(FIXTURES / f"{name}.npz", allow_pickle=False) as f:
        state = {k[len("state/"):]: f[k] for k in f.files if k.startswith("state/")}
        return state, f["x"], f["y"]


def _batch_major(a: np.ndarray, batch_first: bool) -> np.ndarray:
    return a if batch_first else a.transpose(1, 0, 2)


# -- recorded state dicts, no PyTorch needed ---------------------------------------------------

@pytest.mark.parametrize("name", sorted(MANIFEST))
@pytest.mark.parametrize("infer", [False, True], ids=["given", "inferred"])
def test_recorded_state_dict_reproduces_torch(name: str, infer: bool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """sequential_from_state_dict(recorded arrays).predict(x) == the recorded module(x)[0]."""
    monkeypatch.setitem(sys.modules, "torch", None)  # prove the path never imports torch
    meta = MANIFEST[name]
    state, x, y = _load(name)
    sizes: Dict[str, Any] = ({} if infer else
                             dict(num_layers=meta["num_layers"], bidirectional=meta["bidirectional"]))
    model = interop.sequential_from_state_dict(state, meta["cell"],
                                               nonlinearity=meta["nonlinearity"],
                                               prefix=meta["prefix"], **sizes)
    assert len(model.layers) == meta["num_layers"]
    assert all(isinstance(l, Bidirectional) == meta["bidirectional"] for l in model.layers)
    bf = meta["batch_first"]
    got = model.predict(_batch_major(x, bf), verbose=0)
    _close(got, _batch_major(y, bf), meta["dtype"])


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_recorded_state_dict_round_trips_without_torch(name: str) -> None:
    """state dict -> rnnkit -> state dict: weights and GRU biases identical; LSTM/RNN keep the
    bias sum in bias_ih with bias_hh = 0; the spec is the module's."""
    meta = MANIFEST[name]
    state, _, _ = _load(name)
    prefix = meta["prefix"]
    state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    model = sdmod.sequential_from_state_dict(state, meta["cell"], nonlinearity=meta["nonlinearity"])
    back, spec = sdmod.sequential_to_state_dict(model)
    assert (spec.cell, spec.nonlinearity, spec.num_layers, spec.bidirectional, spec.bias,
            spec.dtype) == (meta["cell"], meta["nonlinearity"], meta["num_layers"],
                            meta["bidirectional"], meta["bias"], meta["dtype"])
    assert list(back) == list(state)  # same keys, PyTorch's order
    for key, v in back.items():
        assert v.dtype == state[key].dtype
        if key.startswith("weight") or meta["cell"] == "gru":
            np.testing.assert_array_equal(v, state[key], err_msg=key)
        elif key.startswith("bias_ih"):
            np.testing.assert_array_equal(v, state[key] + state[key.replace("_ih", "_hh")])
        else:
            assert not v.any()


def _lstm_state(layers: int = 1, bidirectional: bool = False, h: int = 2, i: int = 3,
                dtype: Any = np.float32) -> Dict[str, np.ndarray]:
    """A well-formed nn.LSTM state dict of zeros."""
    spec = sdmod.TorchRNNSpec("lstm", "tanh", i, h, layers, True, bidirectional, "float32")
    return {k: np.zeros(spec.shape(k), dtype) for k in spec.keys()}


@pytest.mark.parametrize("mutate,match", [
    (lambda s: s.pop("weight_hh_l1"), r"missing state_dict key 'weight_hh_l1'"),
    (lambda s: s.pop("bias_hh_l0_reverse"), r"missing state_dict key 'bias_hh_l0_reverse'"),
    (lambda s: s.update(extra=np.zeros(3)), r"unexpected state_dict key 'extra'"),
    (lambda s: s.update(weight_ih_l2=np.zeros((8, 4))), r"missing state_dict key 'weight_hh_l2'"),
    (lambda s: s.update(weight_ih_l1=np.zeros((8, 3), np.float32)),
     r"'weight_ih_l1': expected shape \(8, 4\), got \(8, 3\)"),
    (lambda s: s.update(bias_ih_l0=np.zeros((7,), np.float32)),
     r"'bias_ih_l0': expected shape \(8,\), got \(7,\)"),
    (lambda s: s.update(weight_hh_l0=np.zeros((8, 3), np.float32)), r"'weight_hh_l0'.*\(8, 3\)"),
    (lambda s: s.update(weight_hr_l0=np.zeros((1, 2), np.float32)),
     r"'weight_hr_l0': expected shape \(2, 2\), got \(1, 2\)"),
    (lambda s: s.update(weight_ih_l0=np.zeros((8, 3), np.int64)),
     r"'weight_ih_l0': expected floating-point"),
    (lambda s: s.update(weight_ih_l0=np.zeros((8, 3), np.float64)), r"mixes dtypes"),
    (lambda s: s.update(weight_ih_l0=np.zeros((8, 3), np.float16)), r"'weight_ih_l0'.*float16"),
    (lambda s: s.update(weight_ih_l0=[[0.0] * 3] * 8), r"'weight_ih_l0': expected a NumPy array"),
    (lambda s: s.update({3: np.zeros(2)}), r"keys must be strings"),
])
def test_state_dict_errors_name_the_key(mutate: Any, match: str) -> None:
    """Every malformed state dict is a ValueError naming the offending key."""
    state = _lstm_state(layers=2, bidirectional=True)
    mutate(state)
    with pytest.raises(ValueError, match=match):
        sdmod.sequential_from_state_dict(state, "lstm")


def test_state_dict_argument_errors() -> None:
    """Bad arguments and layouts that disagree with the given sizes are clear ValueErrors."""
    state = _lstm_state(layers=2, bidirectional=True)
    with pytest.raises(ValueError, match=r"unexpected state_dict key 'weight_ih_l1'.*num_layers=1"):
        sdmod.sequential_from_state_dict(state, "lstm", num_layers=1)
    with pytest.raises(ValueError, match=r"unexpected.*_reverse.*bidirectional=False"):
        sdmod.sequential_from_state_dict(state, "lstm", bidirectional=False)
    with pytest.raises(ValueError, match=r"missing state_dict key 'weight_ih_l2'"):
        sdmod.sequential_from_state_dict(state, "lstm", num_layers=3)
    with pytest.raises(ValueError, match=r"'weight_hh_l0'.*\(3\*H, H\)"):
        sdmod.sequential_from_state_dict(state, "gru")  # an LSTM's (8, 2) is no GRU weight
    with pytest.raises(ValueError, match="cell must be"):
        sdmod.sequential_from_state_dict(state, "transformer")
    with pytest.raises(ValueError, match="nonlinearity"):
        sdmod.sequential_from_state_dict(state, "lstm", nonlinearity="relu")
    with pytest.raises(ValueError, match="nonlinearity"):
        sdmod.sequential_from_state_dict(state, "rnn", nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        sdmod.sequential_from_state_dict(state, "lstm", num_layers=0)
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        sdmod.sequential_from_state_dict(state, "lstm", dtype="float16")
    with pytest.raises(ValueError, match="no parameters under prefix 'enc.'"):
        sdmod.sequential_from_state_dict(state, "lstm", prefix="enc.")
    with pytest.raises(ValueError, match="no parameters"):
        sdmod.sequential_from_state_dict({}, "lstm")
    with pytest.raises(ValueError, match="mapping"):
        sdmod.sequential_from_state_dict([1, 2], "lstm")
    with pytest.raises(ValueError, match="layer index too large"):
        sdmod.sequential_from_state_dict({"weight_ih_l99999999999": np.zeros(1)}, "lstm")


def test_state_dict_dtype_conversion_and_prefix() -> None:
    """dtype= converts (even from float16); prefix= picks one module out of a larger state dict."""
    state = {"enc." + k: v.astype(np.float16) for k, v in _lstm_state().items()}
    state["head.weight"] = np.zeros((1, 2), np.float16)
    model = sdmod.sequential_from_state_dict(state, "lstm", prefix="enc.", dtype="float64")
    assert all(w.dtype == np.float64 for w in model.get_weights())
    assert model.predict(np.zeros((1, 2, 3)), verbose=0).dtype == np.float64


def test_rnn_cell_aliases() -> None:
    """'rnn_relu' / 'simple_rnn' name nn.RNN; the activation follows the nonlinearity."""
    spec = sdmod.TorchRNNSpec("rnn", "tanh", 3, 2, 1, True, False, "float32")
    state = {k: np.zeros(spec.shape(k), np.float32) for k in spec.keys()}
    model = sdmod.sequential_from_state_dict(state, "rnn_relu")
    assert model.layers[0].activation.name == "relu"
    assert sdmod.sequential_from_state_dict(state, "simple_rnn").layers[0].activation.name == "tanh"
    with pytest.raises(ValueError, match="conflicts"):
        sdmod.sequential_from_state_dict(state, "rnn_tanh", nonlinearity="relu")


def _model(*layers: Any, features: int = 3, dtype: str = "float32") -> Sequential:
    return Sequential([Input(shape=(None, features), dtype=dtype), *layers])


@pytest.mark.parametrize("build,match", [
    (lambda: _model(LSTM(2, return_sequences=True), GRU(2, return_sequences=True)),
     r"layer 1 .*cell 'gru' differs from the first layer's 'lstm'"),
    (lambda: _model(Bidirectional(GRU(2, return_sequences=True), merge_mode="sum")),
     r"layer 0 .*merge_mode='sum'"),
    (lambda: _model(GRU(2, return_sequences=True, reset_after=False)), r"reset_after=False"),
    (lambda: _model(LSTM(2, return_sequences=True, go_backwards=True)),
     r"go_backwards=True outside Bidirectional"),
    (lambda: _model(Masking(), LSTM(2, return_sequences=True)), r"layer 0 .*Masking.*masks"),
    (lambda: _model(LSTM(2, return_sequences=True), Dense(1)), r"layer 1 .*Dense"),
    (lambda: _model(SimpleRNN(2, return_sequences=True, activation="sigmoid")),
     r"activation 'sigmoid'; nn.RNN supports only 'tanh' or 'relu'"),
    (lambda: _model(LSTM(2, return_sequences=True, recurrent_activation="hard_sigmoid")),
     r"recurrent_activation='hard_sigmoid'"),
    (lambda: _model(SimpleRNN(2, return_sequences=True), SimpleRNN(2, return_sequences=True,
                                                                   activation="relu")),
     r"activation 'relu' differs"),
    (lambda: _model(LSTM(2)), r"return_sequences=False"),
    (lambda: _model(LSTM(2, return_sequences=True), LSTM(3, return_sequences=True)),
     r"units 3 differs from the first layer's 2"),
    (lambda: _model(LSTM(2, return_sequences=True), LSTM(2, return_sequences=True, use_bias=False)),
     r"use_bias False differs"),
    (lambda: _model(LSTM(2, return_sequences=True, dtype="float64"),
                    LSTM(2, return_sequences=True)), r"dtype 'float32' differs"),
    (lambda: _model(LSTM(2, return_sequences=True),
                    Bidirectional(LSTM(2, return_sequences=True))), r"layer 1 .*mixes bidirectional"),
    (lambda: Sequential([LSTM(2, return_sequences=True)]), r"not built"),
    (lambda: Sequential([Input(batch_shape=(2, None, 3)),
                         LSTM(2, return_sequences=True, stateful=True)]), r"stateful=True"),
])
def test_to_state_dict_errors_name_the_layer(build: Any, match: str) -> None:
    """What PyTorch cannot express is a ValueError naming the layer and the reason."""
    with pytest.raises(ValueError, match=match):
        sdmod.sequential_to_state_dict(build())


def test_to_state_dict_rejects_other_models_and_warns_on_dropout() -> None:
    with pytest.raises(TypeError, match="Sequential"):
        sdmod.sequential_to_state_dict(LSTM(2))
    with pytest.warns(UserWarning, match="dropout=0.5.*not carried over"):
        sd, spec = sdmod.sequential_to_state_dict(_model(LSTM(2, return_sequences=True,
                                                              dropout=0.5)))
    assert spec.num_layers == 1 and set(sd) == {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                                "bias_hh_l0"}


def test_missing_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PyTorch the module converters raise an ImportError naming rnnkit[torch]."""
    monkeypatch.setitem(sys.modules, "torch", None)
    model = _model(LSTM(2, return_sequences=True))
    with pytest.raises(ImportError, match=r"rnnkit\[torch\]"):
        interop.sequential_to_torch(model)
    with pytest.raises(ImportError, match=r"rnnkit\[torch\]"):
        interop.sequential_from_torch(object())


# -- with PyTorch: the full matrix ---------------------------------------------------------

CELLS = [("rnn_tanh", "rnn", "tanh"), ("rnn_relu", "rnn", "relu"), ("lstm", "lstm", "tanh"),
         ("gru", "gru", "tanh")]
MATRIX = list(itertools.product(CELLS, [1, 2, 3], [False, True], [True, False]))


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Any:
    """Tiny modules: one PyTorch thread avoids thread start-up and oversubscription costs."""
    try:
        import torch
    except ImportError:  # the torch-free tests still run
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _module(torch: Any, cell: str, nl: str, **kw: Any) -> Any:
    if cell == "rnn":
        return torch.nn.RNN(nonlinearity=nl, **kw)
    return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](**kw)


@pytest.mark.parametrize("case,layers,bidir,bias", MATRIX, ids=[
    f"{c[0]}-L{n}-{'bi' if b else 'uni'}-{'bias' if bb else 'nobias'}"
    for c, n, b, bb in MATRIX])
def test_torch_round_trip_matrix(case: Tuple[str, str, str], layers: int, bidir: bool,
                                 bias: bool) -> None:
    """float32 and float64: predict == module(x)[0] (1e-6 / 1e-12); torch -> rnnkit -> torch
    gives the same state dict (LSTM/RNN: bias sum in bias_ih, bias_hh 0) and outputs;
    rnnkit -> torch -> rnnkit gives identical weights."""
    torch = pytest.importorskip("torch")
    _, cell, nl = case
    for dtype in ("float32", "float64"):
        torch.manual_seed(layers * 8 + bidir * 2 + bias)
        module = _module(torch, cell, nl, input_size=3, hidden_size=2, num_layers=layers,
                         bidirectional=bidir, bias=bias, batch_first=True,
                         dtype=getattr(torch, dtype))
        x = np.random.default_rng(layers).standard_normal((2, 4, 3)).astype(dtype)
        with torch.no_grad():
            want = module(torch.from_numpy(x))[0].numpy()
        model = interop.sequential_from_torch(module)
        assert all(l.dtype == dtype for l in model.layers)
        _close(model.predict(x, verbose=0), want, dtype)

        back = interop.sequential_to_torch(model)
        assert (type(back), back.num_layers, back.bidirectional, back.bias, back.batch_first,
                back.hidden_size, back.input_size) == (type(module), layers, bidir, bias, True, 2, 3)
        assert getattr(back, "nonlinearity", nl) == nl
        sd, sd_back = module.state_dict(), back.state_dict()
        assert list(sd_back) == list(sd)
        for key, v in sd_back.items():
            assert v.dtype == sd[key].dtype
            if key.startswith("weight") or cell == "gru":
                assert torch.equal(v, sd[key]), key
            elif key.startswith("bias_ih"):
                assert torch.equal(v, sd[key] + sd[key.replace("_ih", "_hh")]), key
            else:
                assert not v.any(), key
        with torch.no_grad():
            _close(back(torch.from_numpy(x))[0].numpy(), want, dtype)
        again = interop.sequential_from_torch(back)
        for a, b in zip(again.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell,nl", [("lstm", "tanh"), ("rnn", "relu")])
def test_torch_state_dict_identical_when_bias_hh_is_zero(cell: str, nl: str) -> None:
    """A module whose bias_hh is zero round-trips to exactly the same state dict."""
    torch = pytest.importorskip("torch")
    module = _module(torch, cell, nl, input_size=3, hidden_size=2, num_layers=2,
                     bidirectional=True, batch_first=True)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith("bias_hh"):
                p.zero_()
    back = interop.sequential_to_torch(interop.sequential_from_torch(module))
    sd, sd_back = module.state_dict(), back.state_dict()
    assert list(sd) == list(sd_back) and all(torch.equal(sd[k], sd_back[k]) for k in sd)


def test_torch_batch_first_false() -> None:
    """A batch_first=False module: the rnnkit model takes (B, T, I); back to PyTorch with
    either layout."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.GRU(3, 2, num_layers=2, bidirectional=True, batch_first=False,
                          dtype=torch.float64)
    x_tbi = np.random.default_rng(0).standard_normal((4, 2, 3))
    with torch.no_grad():
        want = module(torch.from_numpy(x_tbi))[0].numpy()  # (T, B, 2H)
    model = interop.sequential_from_torch(module)
    got = model.predict(x_tbi.transpose(1, 0, 2), verbose=0)
    _close(got.transpose(1, 0, 2), want, "float64")
    back = interop.sequential_to_torch(model, batch_first=False)
    assert not back.batch_first
    with torch.no_grad():
        _close(back(torch.from_numpy(x_tbi))[0].numpy(), want, "float64")


def test_rnnkit_model_to_torch() -> None:
    """A model built in rnnkit (random weights) runs the same in PyTorch."""
    torch = pytest.importorskip("torch")
    kw = dict(return_sequences=True, dtype="float64")
    model = _model(Bidirectional(LSTM(3, unit_forget_bias=False, bias_initializer="glorot_uniform",
                                      **kw)),
                   Bidirectional(LSTM(3, **kw)), dtype="float64")
    x = np.random.default_rng(1).standard_normal((2, 5, 3))
    module = interop.sequential_to_torch(model)
    assert isinstance(module, torch.nn.LSTM) and module.bidirectional and module.num_layers == 2
    assert next(module.parameters()).dtype == torch.float64
    with torch.no_grad():
        want = module(torch.from_numpy(x))[0].numpy()
    _close(model.predict(x, verbose=0), want, "float64")


def test_torch_module_errors_and_warnings() -> None:
    """dropout: converted with a warning; other modules: TypeError; half precision:
    ValueError unless dtype= converts."""
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="LSTM, GRU or RNN"):
        interop.sequential_from_torch(torch.nn.Linear(3, 2))
    module = torch.nn.LSTM(3, 2, num_layers=2, dropout=0.5, batch_first=True).eval()
    with pytest.warns(UserWarning, match="dropout=0.5.*only in training"):
        model = interop.sequential_from_torch(module)
    x = np.random.default_rng(2).standard_normal((2, 4, 3)).astype(np.float32)
    with torch.no_grad():
        _close(model.predict(x, verbose=0), module(torch.from_numpy(x))[0].numpy(), "float32")
    half = torch.nn.GRU(3, 2, batch_first=True).to(torch.bfloat16)
    with pytest.raises(ValueError, match="bfloat16|NumPy|convert"):
        interop.sequential_from_torch(half)
    model = interop.sequential_from_torch(half, dtype="float32")
    assert model.layers[0].dtype == "float32"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a one-layer module with dropout=0 warns about nothing
        interop.sequential_from_torch(torch.nn.RNN(3, 2))


def test_converted_model_saves_and_loads(tmp_path: Path) -> None:
    """A model from a recorded state dict is an ordinary rnnkit model: it saves, loads and
    predicts the same (no PyTorch involved)."""
    from rnnkit.models import load_model

    meta = MANIFEST["lstm_l2_bidir_f32"]
    state, x, y = _load("lstm_l2_bidir_f32")
    model = sdmod.sequential_from_state_dict(state, meta["cell"])
    path = str(tmp_path / "converted.rnnkit")
    model.save(path)
    _close(load_model(path).predict(x, verbose=0), y, "float32")


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_projected_lstm_round_trips(layers: int, bidir: bool, dtype: str) -> None:
    """nn.LSTM(proj_size=P) <-> rnnkit LSTM(units, proj_size=P): outputs equal, state dict
    back (LSTM bias rule as above)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(layers + 3 * bidir)
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    module = torch.nn.LSTM(3, 5, num_layers=layers, bidirectional=bidir, proj_size=2,
                           batch_first=True, dtype=tdtype).eval()
    model = interop.sequential_from_torch(module)
    first = model.layers[0].forward_layer if bidir else model.layers[0]
    assert first.proj_size == 2 and first.units == 5
    x = np.random.default_rng(layers).standard_normal((2, 4, 3)).astype(dtype)
    with torch.no_grad():
        want = module(torch.from_numpy(x))[0].numpy()
    _close(model.predict(x, verbose=0), want, dtype)
    back = interop.sequential_to_torch(model)
    assert back.proj_size == 2
    with torch.no_grad():
        _close(back(torch.from_numpy(x))[0].numpy(), want, dtype)
    sd = {k: v.numpy() for k, v in module.state_dict().items()}
    again = interop.sequential_from_state_dict(sd, "lstm")
    _close(again.predict(x, verbose=0), want, dtype)
