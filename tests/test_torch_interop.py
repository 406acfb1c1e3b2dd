"""rnnkit.interop.torch: rnnkit.ops agrees with PyTorch's nn.LSTM / nn.GRU / nn.RNN on mapped
weights, forward and gradients (float64, tight), and the mapping round-trips.

The PyTorch comparisons skip when PyTorch is not installed; the missing-PyTorch error
message is tested without it.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, Tuple

import numpy as np
import pytest

import rnnkit.ops as ops
from rnnkit.interop import torch as interop
from _cases import backward, forward, make_problem

# (id, cell, rnnkit options)
CASES = [
    ("lstm", "lstm", {}),
    ("gru", "gru", {"reset_after": True}),
    ("simple_rnn_tanh", "simple_rnn", {"activation": "tanh"}),
    ("simple_rnn_relu", "simple_rnn", {"activation": "relu"}),
]
# (B, T, I, H): typical, B=1/T=1, I != H with H not a multiple of a vector width.
SHAPES = [(3, 5, 4, 6), (1, 1, 3, 2), (2, 7, 9, 17)]


def _torch_run(module: Any, cell: str, p: Dict[str, np.ndarray], torch: Any
               ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """Outputs and the gradients of L = sum(y*dy) + sum(h_last*dh_last) [+ sum(c*dc)]."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(True)  # noqa: E731
    x, h0 = t(p["x"]), t(p["h0"][None])
    states = [h0]
    if cell == "lstm":
        c0 = t(p["c0"][None])
        states.append(c0)
        y, (h, c) = module(x, (h0, c0))
        outs = {"y": y, "h_last": h[0], "c_last": c[0]}
    else:
        y, h = module(x, h0)
        outs = {"y": y, "h_last": h[0]}
    loss = (y * torch.from_numpy(p["dy"])).sum() + (outs["h_last"] * torch.from_numpy(p["dh_last"])).sum()
    if cell == "lstm":
        loss = loss + (outs["c_last"] * torch.from_numpy(p["dc_last"])).sum()
    params = list(module.parameters())
    g = torch.autograd.grad(loss, [x] + states + params)
    grads = {"x": g[0].numpy(), "h0": g[1][0].numpy()}
    if cell == "lstm":
        grads["c0"] = g[2][0].numpy()
    grads.update(interop.gradients_from_torch(module, g[1 + len(states):]))
    return {k: v.detach().numpy() for k, v in outs.items()}, grads


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B%dT%dI%dH%d" % s)
@pytest.mark.parametrize("cell,options", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_ops_match_torch_forward_and_gradients(cell: str, options: Dict[str, Any], shape) -> None:
    """Outputs and every gradient agree with PyTorch to float64 rounding."""
    torch = pytest.importorskip("torch")
    b, t, i, h = shape
    p = make_problem(cell, options, batch=b, time=t, features=i, units=h, seed=1)
    module = interop.to_torch(cell, p["kernel"], p["recurrent_kernel"], p["bias"], **options)
    assert next(module.parameters()).dtype == torch.float64
    want_out, want_grads = _torch_run(module, cell, p, torch)

    outs, cache = forward(ops, cell, p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                          h0=p["h0"], c0=p.get("c0"), **options)
    grads = backward(ops, cell, cache, p["dy"], p["dh_last"], p.get("dc_last"))
    assert set(grads) == set(want_grads)
    for name, want in list(want_out.items()) + list(want_grads.items()):
        got = outs[name] if name in want_out else grads[name]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("cell,options", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_ops_match_torch_float32(cell: str, options: Dict[str, Any]) -> None:
    """The float32 module (dtype follows the weights) agrees to fp32 tolerance."""
    torch = pytest.importorskip("torch")
    p = {k: v.astype(np.float32) for k, v in
         make_problem(cell, options, batch=4, time=6, features=5, units=8, seed=2).items()}
    module = interop.to_torch(cell, p["kernel"], p["recurrent_kernel"], p["bias"], **options)
    assert next(module.parameters()).dtype == torch.float32
    want_out, want_grads = _torch_run(module, cell, p, torch)
    outs, cache = forward(ops, cell, p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                          h0=p["h0"], c0=p.get("c0"), **options)
    grads = backward(ops, cell, cache, p["dy"], p["dh_last"], p.get("dc_last"))
    for name, want in list(want_out.items()) + list(want_grads.items()):
        got = outs[name] if name in want_out else grads[name]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(want).max()),
                                   err_msg=name)


@pytest.mark.parametrize("cell,options", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_round_trip(cell: str, options: Dict[str, Any]) -> None:
    """from_torch(to_torch(w)) == w; the module's layout is what the docstring says."""
    pytest.importorskip("torch")
    p = make_problem(cell, options, batch=2, time=3, features=4, units=5, seed=3)
    module = interop.to_torch(cell, p["kernel"], p["recurrent_kernel"], p["bias"], **options)
    assert interop.cell_of(module) == cell
    assert module.batch_first and module.num_layers == 1 and module.hidden_size == 5
    k, r, b = interop.from_torch(module)
    np.testing.assert_array_equal(k, p["kernel"])
    np.testing.assert_array_equal(r, p["recurrent_kernel"])
    np.testing.assert_array_equal(b, p["bias"])
    if cell == "lstm":  # Keras i,f,c,o == PyTorch i,f,g,o: no reordering
        np.testing.assert_array_equal(module.weight_ih_l0.detach().numpy(), p["kernel"].T)
    if cell == "gru":   # Keras [z|r|h] -> PyTorch [r|z|n]
        np.testing.assert_array_equal(module.weight_hh_l0.detach().numpy()[:5], p["recurrent_kernel"][:, 5:10].T)


def test_no_bias_module() -> None:
    """bias=None builds a module without biases, and rnnkit agrees with it."""
    torch = pytest.importorskip("torch")
    p = make_problem("lstm", {}, batch=2, time=4, features=3, units=5, seed=4)
    module = interop.to_torch("lstm", p["kernel"], p["recurrent_kernel"], None)
    assert not module.bias
    y_t, _ = module(torch.from_numpy(p["x"]))
    y, _, _, _ = ops.lstm_forward(p["x"], p["kernel"], p["recurrent_kernel"], None, training=False)
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert interop.from_torch(module)[2] is None


def test_unsupported_options_raise() -> None:
    """Options PyTorch cannot express raise ValueError naming the reason."""
    pytest.importorskip("torch")
    p = make_problem("gru", {"reset_after": False}, units=4)
    with pytest.raises(ValueError, match="reset_after=False"):
        interop.to_torch("gru", p["kernel"], p["recurrent_kernel"], None, reset_after=False)
    q = make_problem("simple_rnn", {}, units=4)
    with pytest.raises(ValueError, match="activation"):
        interop.to_torch("simple_rnn", q["kernel"], q["recurrent_kernel"], q["bias"], activation="linear")
    with pytest.raises(ValueError, match="cell"):
        interop.to_torch("rnn", q["kernel"], q["recurrent_kernel"])
    with pytest.raises(ValueError, match="bias"):
        interop.to_torch("simple_rnn", q["kernel"], q["recurrent_kernel"], q["bias"][:-1])


def test_missing_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PyTorch, the error is an ImportError that names rnnkit[torch]."""
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    p = make_problem("lstm", {}, units=3)
    with pytest.raises(ImportError, match=r"rnnkit\[torch\]"):
        interop.to_torch("lstm", p["kernel"], p["recurrent_kernel"], p["bias"])
