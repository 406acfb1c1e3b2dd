"""Attention, AdditiveAttention and MultiHeadAttention: Keras 3 references (recorded by
tests/fixtures/keras_layers/make_attention.py), float64 finite-difference gradients, masks,
configs, symbolic calls and per-slot caches."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

import rnnkit
from rnnkit import saving
from rnnkit.layers import AdditiveAttention, Attention, Input, MultiHeadAttention
from rnnkit.layers.node import call_slot

from _cases import numeric_grad

FIX = np.load(Path(__file__).parent / "fixtures" / "keras_layers" / "attention.npz")

ATT_CASES: Dict[str, Any] = {
    # name: (class, kwargs, weights, with key, with masks, causal)
    "dot_plain": (Attention, {}, [], False, False, False),
    "dot_scale_mask": (Attention, dict(use_scale=True), [0.7], True, True, False),
    "dot_causal": (Attention, {}, [], False, True, True),
    "concat_scale": (Attention, dict(use_scale=True, score_mode="concat"), [0.6, 1.3], True,
                     True, False),
    "concat_noscale": (Attention, dict(score_mode="concat"), [0.8], False, False, True),
    "add_scale": (AdditiveAttention, {}, [[0.5, -1.2, 0.9]], True, True, False),
    "add_noscale_causal": (AdditiveAttention, dict(use_scale=False), [], False, True, True),
}


def _att_inputs(three: bool, dtype: str = "float32") -> List[np.ndarray]:
    ins = [FIX["att/q"], FIX["att/v"]] + ([FIX["att/k"]] if three else [])
    return [a.astype(dtype) for a in ins]


@pytest.mark.parametrize("name", sorted(ATT_CASES))
def test_attention_matches_keras(name: str) -> None:
    cls, kw, ws, three, masks, causal = ATT_CASES[name]
    layer = cls(**kw)
    ins = _att_inputs(three)
    mask = [FIX["att/qm"], FIX["att/vm"]] if masks else None
    layer(ins, mask=mask)
    assert len(layer.get_weights()) == int(FIX[f"att/{name}/nweights"])
    layer.set_weights([np.asarray(w, "float32") for w in ws])
    out, scores = layer.forward(ins, mask=mask, return_attention_scores=True,
                                use_causal_mask=causal, need_grad=True)
    np.testing.assert_allclose(out, FIX[f"att/{name}/out"], rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(scores, FIX[f"att/{name}/scores"], rtol=1e-5, atol=2e-6)
    grads = layer.backward([FIX["att/probe"], None])
    assert len(grads) == len(ins)
    for i, g in enumerate(grads):
        np.testing.assert_allclose(g, FIX[f"att/{name}/grad{i}"], rtol=1e-4, atol=5e-6)


@pytest.mark.parametrize("name", ["dot_scale_mask", "concat_scale", "add_scale", "dot_causal"])
def test_attention_gradients_fd(name: str) -> None:
    cls, kw, ws, three, masks, causal = ATT_CASES[name]
    layer = cls(dtype="float64", **kw)
    rng = np.random.default_rng(3)
    ins = [rng.standard_normal(a.shape) for a in _att_inputs(three, "float64")]
    mask = [FIX["att/qm"], FIX["att/vm"]] if masks else None
    layer(ins, mask=mask)
    layer.set_weights([np.asarray(w, "float64") for w in ws])
    probe = rng.standard_normal((2, 4, 3))
    sprobe = rng.standard_normal((2, 4, 5))

    def loss() -> float:
        o, s = layer.forward(ins, mask=mask, return_attention_scores=True, use_causal_mask=causal)
        return float((o * probe).sum() + (s * sprobe).sum())

    layer.forward(ins, mask=mask, return_attention_scores=True, use_causal_mask=causal,
                  need_grad=True)
    grads = layer.backward([probe, sprobe])
    for a, g in zip(ins, grads):
        np.testing.assert_allclose(g, numeric_grad(loss, a), rtol=1e-6, atol=1e-8)
    for w in layer.weights:
        np.testing.assert_allclose(w.grad, numeric_grad(loss, w.value), rtol=1e-6, atol=1e-8)
    assert layer.weights or name == "dot_causal"


def test_attention_dropout_training_only() -> None:
    layer = Attention(dropout=0.5, seed=1, dtype="float64")
    ins = _att_inputs(False, "float64")
    plain = layer(ins)
    np.testing.assert_array_equal(layer(ins, training=False), plain)
    layer.forward(ins, training=True, need_grad=True)
    assert not np.allclose(layer.forward(ins, training=True), plain)
    # exact backward through the drop pattern of the call
    probe = np.random.default_rng(0).standard_normal(plain.shape)
    out = layer.forward(ins, training=True, need_grad=True)
    keep = layer._cache[6]
    grads = layer.backward(probe)

    def loss() -> float:  # same drop pattern, replayed
        q, v = ins
        w = np.exp(q @ v.transpose(0, 2, 1))
        w /= w.sum(-1, keepdims=True)
        return float(((w * keep) @ v * probe).sum())

    np.testing.assert_allclose((out * probe).sum(), loss())
    np.testing.assert_allclose(grads[0], numeric_grad(loss, ins[0]), rtol=1e-6, atol=1e-8)


def test_attention_masks_and_shapes() -> None:
    layer = Attention()
    qm, vm = FIX["att/qm"], FIX["att/vm"]
    ins = _att_inputs(False)
    np.testing.assert_array_equal(layer.compute_mask(ins, [qm, vm]), qm)
    assert layer.compute_mask(ins, None) is None
    out = layer(ins, mask=[qm, vm])
    assert np.all(out[~qm] == 0)
    # masked keys take no weight
    _, s = layer(ins, mask=[None, vm], return_attention_scores=True)
    assert np.all(s[np.broadcast_to(~vm[:, None, :], s.shape)] < 1e-30)
    q, v, k = Input((4, 3)), Input((5, 2)), Input((5, 3))
    y = Attention()([q, v, k])
    assert y.shape == (None, 4, 2)
    ya, ys = Attention()([q, v, k], return_attention_scores=True)
    assert ya.shape == (None, 4, 2) and ys.shape == (None, 4, 5)
    with pytest.raises(ValueError, match=r"attention.*\(None, 4, 3\)"):
        Attention()([q, Input((5, 4)), Input((6, 3))])
    with pytest.raises(ValueError, match="list"):
        Attention()(q)
    with pytest.raises(ValueError, match=r"additive.*\(None, 4, 3\)"):
        AdditiveAttention()([q, Input((5, 3, 2))])


@pytest.mark.parametrize("cls,kw", [(Attention, dict(use_scale=True, score_mode="concat",
                                                     dropout=0.1, seed=3)),
                                    (AdditiveAttention, dict(use_scale=False, dropout=0.2))])
def test_attention_config(cls: Any, kw: Dict[str, Any]) -> None:
    layer = cls(name="att_x", **kw)
    cfg = layer.get_config()
    assert cfg["name"] == "att_x" and ("score_mode" in cfg) == (cls is Attention)
    again = cls.from_config(cfg)
    assert again.get_config() == cfg
    ser = rnnkit.layers.serialize(layer)
    saving._validate_layer(ser, "where", [0])
    assert rnnkit.layers.deserialize(ser).get_config() == cfg
    bad = {"class_name": cls.__name__, "config": {**cfg, "use_scale": "yes"}}
    with pytest.raises(ValueError, match="use_scale"):
        saving._validate_layer(bad, "where", [0])
    with pytest.raises(ValueError, match="dropout"):
        cls(dropout=1.5)
    if cls is Attention:
        bad = {"class_name": "Attention", "config": {**cfg, "score_mode": "mul"}}
        with pytest.raises(ValueError, match="score_mode"):
            saving._validate_layer(bad, "where", [0])
        with pytest.raises(ValueError, match="score_mode"):
            Attention(score_mode="mul")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_attention_dtypes(dtype: str) -> None:
    layer = AdditiveAttention(dtype=dtype)
    out = layer(_att_inputs(True, dtype))
    assert out.dtype == dtype and layer.scale.value.dtype == dtype
    mha = MultiHeadAttention(2, 3, dtype=dtype)
    assert mha(FIX["mha/q"], FIX["mha/v"]).dtype == dtype


def test_attention_shared_call_slots() -> None:
    layer = Attention(use_scale=True, dtype="float64")
    rng = np.random.default_rng(5)
    a = [rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 5, 3))]
    b = [rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 5, 3))]
    pa, pb = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3))
    layer(a)
    expected = []
    for x, p in ((a, pa), (b, pb)):
        layer.forward(x, need_grad=True)
        expected.append((layer.backward(p), layer.scale.grad.copy()))
    with call_slot(1):
        layer.forward(a, need_grad=True)
    with call_slot(2):
        layer.forward(b, need_grad=True)
    for slot, p, (g, sg) in ((2, pb, expected[1]), (1, pa, expected[0])):
        with call_slot(slot):
            got = layer.backward(p)
        for u, w in zip(got, g):
            np.testing.assert_allclose(u, w)
        np.testing.assert_allclose(layer.scale.grad, sg)
    assert not np.allclose(expected[0][0][0], expected[1][0][0])


# ---------------------------------------------------------------- MultiHeadAttention
MHA_CASES: Dict[str, Any] = {
    # name: (kwargs, key, masks, attention_mask, causal, scores)
    "plain": (dict(num_heads=2, key_dim=3), False, False, False, False, False),
    "key_vdim_out": (dict(num_heads=3, key_dim=2, value_dim=4, output_shape=8), True, False,
                     False, False, False),
    "masked": (dict(num_heads=2, key_dim=3), False, True, False, False, False),
    "masked_scores": (dict(num_heads=2, key_dim=3), False, True, False, False, True),
    "amask_causal": (dict(num_heads=2, key_dim=3, use_bias=False), True, False, True, True,
                     False),
    "all": (dict(num_heads=2, key_dim=3, value_dim=2), True, True, True, True, True),
}


def _mha_call(name: str, dtype: str = "float32") -> Any:
    kw, use_key, masks, use_am, causal, scores = MHA_CASES[name]
    layer = MultiHeadAttention(dtype=dtype, **kw)
    call: Dict[str, Any] = dict(use_causal_mask=causal, return_attention_scores=scores)
    if use_key:
        call["key"] = FIX["mha/k"].astype(dtype)
    if use_am:
        call["attention_mask"] = FIX["mha/amask"]
    if masks:
        call["query_mask"], call["value_mask"] = FIX["mha/qm"], FIX["mha/vm"]
    q, v = FIX["mha/q"].astype(dtype), FIX["mha/v"].astype(dtype)
    layer(q, v, **call)
    return layer, q, v, call


@pytest.mark.parametrize("name", sorted(MHA_CASES))
def test_mha_matches_keras(name: str) -> None:
    layer, q, v, call = _mha_call(name)
    names = [str(n) for n in FIX[f"mha/{name}/wnames"]]
    assert [w.name for w in layer.weights] == names
    layer.set_weights([FIX[f"mha/{name}/w{i}"] for i in range(len(names))])
    res = layer(q, v, **call)
    out = res[0] if call["return_attention_scores"] else res
    np.testing.assert_allclose(out, FIX[f"mha/{name}/out"], rtol=1e-5, atol=3e-6)
    if call["return_attention_scores"]:
        np.testing.assert_allclose(res[1], FIX[f"mha/{name}/scores"], rtol=1e-5, atol=1e-6)
    if f"mha/{name}/gq" in FIX.files:
        inputs, kw = layer._split_call((q, v), dict(call))
        kw.pop("mask", None)
        layer.forward(inputs, need_grad=True, **kw)
        grads = layer.backward(FIX[f"mha/{name}/probe"])
        want = [FIX[f"mha/{name}/gq"], FIX[f"mha/{name}/gv"], FIX[f"mha/{name}/gk"]]
        if len(grads) == 2:  # key is value: its gradient is in value's
            assert not want[2].any()
        if len(inputs) == 4:
            assert grads[3] is None
        for g, w in zip(grads, want):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=5e-6)


@pytest.mark.parametrize("name", ["key_vdim_out", "all", "masked"])
def test_mha_gradients_fd(name: str) -> None:
    layer, q, v, call = _mha_call(name, "float64")
    rng = np.random.default_rng(11)
    for w in layer.weights:
        w.assign(rng.standard_normal(w.shape) * 0.5)
    inputs, kw = layer._split_call((q, v), dict(call))
    mask = kw.pop("mask", None)
    inputs = [rng.standard_normal(np.shape(a)) if i < 3 else a for i, a in enumerate(inputs)]
    out = layer.forward(inputs, mask=mask, **kw)
    scores = kw["return_attention_scores"]
    probe = rng.standard_normal((out[0] if scores else out).shape)
    sprobe = rng.standard_normal(out[1].shape) if scores else None

    def loss() -> float:
        r = layer.forward(inputs, mask=mask, **kw)
        return float((r[0] * probe).sum() + (r[1] * sprobe).sum()) if scores else \
            float((r * probe).sum())

    layer.forward(inputs, mask=mask, need_grad=True, **kw)
    grads = layer.backward([probe, sprobe] if scores else probe)
    for a, g in zip(inputs[:3], grads):
        np.testing.assert_allclose(g, numeric_grad(loss, a), rtol=1e-6, atol=1e-8)
    for w in layer.weights:
        np.testing.assert_allclose(w.grad, numeric_grad(loss, w.value), rtol=1e-6, atol=1e-8)


def test_mha_masks_symbolic_and_errors() -> None:
    mha = MultiHeadAttention(2, 3)
    q, v, am = Input((4, 5)), Input((6, 7)), Input((4, 6), dtype="bool")
    y = mha(q, v, attention_mask=am)
    assert y.shape == (None, 4, 5)
    assert [t.shape for t in y.node.inputs] == [(None, 4, 5), (None, 6, 7), (None, 6, 7),
                                               (None, 4, 6)]
    y2, s2 = MultiHeadAttention(3, 2, output_shape=9)(q, v, Input((6, 2)),
                                                       return_attention_scores=True)
    assert y2.shape == (None, 4, 9) and s2.shape == (None, 3, 4, 6)
    qm = FIX["mha/qm"]
    np.testing.assert_array_equal(mha.compute_mask(None, [qm, None]), qm)
    with pytest.raises(ValueError, match=r"multi_head_attention.*\(None, 6, 8\)"):
        mha(q, Input((6, 8)))  # built for value dim 7
    with pytest.raises(ValueError, match=r"\(None, 4\)"):
        MultiHeadAttention(2, 3)(Input((4,)), v)
    with pytest.raises(ValueError, match="attention_axes"):
        MultiHeadAttention(2, 3, attention_axes=(1, 2))
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadAttention(0, 3)
    # masked value steps take no attention weight
    layer, qa, va, call = _mha_call("masked_scores")
    _, s = layer(qa, va, **call)
    assert np.all(s[np.broadcast_to(~FIX["mha/vm"][:, None, None, :], s.shape)] == 0)


def test_mha_config() -> None:
    mha = MultiHeadAttention(2, 3, value_dim=4, output_shape=6, use_bias=False, dropout=0.1,
                             seed=2, name="mha_x")
    cfg = mha.get_config()
    assert cfg["attention_axes"] is None and cfg["output_shape"] == [6]
    mha(FIX["mha/q"], FIX["mha/v"])
    cfg = mha.get_config()
    assert cfg["attention_axes"] == [1]
    again = MultiHeadAttention.from_config(cfg)
    again(FIX["mha/q"], FIX["mha/v"])
    assert again.get_config() == cfg
    assert [w.shape for w in again.weights] == [w.shape for w in mha.weights]
    ser = rnnkit.layers.serialize(mha)
    saving._validate_layer(ser, "where", [0])
    assert rnnkit.layers.deserialize(ser).get_config()["value_dim"] == 4
    for field, value in (("num_heads", 0), ("attention_axes", [2]), ("use_gate", True),
                         ("output_shape", [2, 3])):
        bad = {"class_name": "MultiHeadAttention", "config": {**cfg, field: value}}
        with pytest.raises(ValueError, match=field):
            saving._validate_layer(bad, "where", [0])


def test_mha_shared_call_slots() -> None:
    layer, q, v, _ = _mha_call("plain", "float64")
    rng = np.random.default_rng(2)
    xs = [[rng.standard_normal(q.shape), rng.standard_normal(v.shape)] for _ in range(2)]
    ps = [rng.standard_normal(q.shape) for _ in range(2)]
    expected = []
    for x, p in zip(xs, ps):
        layer.forward(x, need_grad=True)
        expected.append((layer.backward(p), layer.query_kernel.grad.copy()))
    for slot, x in enumerate(xs):
        with call_slot(slot):
            layer.forward(x, need_grad=True)
    for slot in (1, 0):
        with call_slot(slot):
            got = layer.backward(ps[slot])
        for u, w in zip(got, expected[slot][0]):
            np.testing.assert_allclose(u, w)
        np.testing.assert_allclose(layer.query_kernel.grad, expected[slot][1])
