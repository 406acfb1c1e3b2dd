"""The per-call path of the bindings (issue 13, call overhead): signatures, argument binding,
the training cache's private copies and the output arrays. No timing assertions here.

* rnnkit.ops keeps the reference's public signatures and passes every argument to
  ``rnnkit._core`` by position, so the two must list the same parameters in the same order.
* ``rnnkit._core``'s functions bind arguments themselves (vectorcall, fast_call.hpp): keywords
  work as in Python, with Python's errors.
* The training cache keeps private copies of x, the weights and the mask in one block.
* Outputs are C-contiguous, writeable arrays, small ones from NumPy, large ones (64 KiB and
  up) from the block pool; the results do not depend on which.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import rnnkit._core as core
from rnnkit import cells, ops, reference

from _cases import CELL_VARIANTS, backward, forward, make_problem, projection

NAMES = ops.__all__


def _params(f):
    return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]


@pytest.mark.parametrize("name", NAMES)
def test_ops_signatures_are_the_reference_ones(name):
    """Names, kinds (keyword-only after bias) and defaults; the annotations differ."""
    assert _params(getattr(ops, name)) == _params(getattr(reference, name))
    assert getattr(ops, name).__doc__  # documented


@pytest.mark.parametrize("name", NAMES)
def test_core_parameters_follow_ops_order(name):
    """ops passes its arguments to _core by position: same names, order and defaults."""
    def plain(sig):
        return [(p.name, p.default) for p in sig.parameters.values()]

    assert plain(inspect.signature(getattr(core, name))) == plain(
        inspect.signature(getattr(ops, name)))


def _problem(cell, options, dtype=np.float32, **sizes):
    p = make_problem(cell, options, **sizes)
    return {k: v.astype(dtype) for k, v in p.items()}


def _core_args(cell, p):
    """The required positional arguments of <cell>_forward."""
    return (p["x"], p["kernel"], p["recurrent_kernel"]) + tuple(projection(p).values())


@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=[v[0] for v in CELL_VARIANTS])
def test_core_keywords_match_positions_bitwise(variant):
    _, cell, options = variant
    p = _problem(cell, options)
    fwd = getattr(core, f"{cell}_forward")
    states = {"h0": p["h0"], **({"c0": p["c0"]} if "c0" in p else {})}
    by_name = fwd(*_core_args(cell, p), bias=p["bias"], **states, **options, training=False)
    params = list(inspect.signature(fwd).parameters.values())
    values = {**dict(zip([q.name for q in params], _core_args(cell, p))), "bias": p["bias"],
              **states, **options, "training": False}
    by_position = fwd(*[values.get(q.name, q.default) for q in params])
    for a, b in zip(by_name[:-1], by_position[:-1]):
        np.testing.assert_array_equal(a, b)
    assert by_name[-1] is None and by_position[-1] is None


def test_core_argument_errors_are_pythons():
    p = _problem("simple_rnn", {})
    args = _core_args("simple_rnn", p)
    f = core.simple_rnn_forward
    with pytest.raises(TypeError, match=r"simple_rnn_forward\(\) got an unexpected keyword "
                                        r"argument 'units'"):
        f(*args, units=3)
    with pytest.raises(TypeError, match=r"missing required argument 'recurrent_kernel'"):
        f(p["x"], p["kernel"])
    with pytest.raises(TypeError, match=r"got multiple values for argument 'kernel'"):
        f(*args, kernel=p["kernel"])
    with pytest.raises(TypeError, match=r"takes at most 9 positional arguments \(10 given\)"):
        f(*args, *([None] * 7))
    # A keyword built at run time (not interned) is matched by its text.
    key = "".join(["train", "ing"])
    assert f(*args, **{key: False})[-1] is None
    with pytest.raises(TypeError, match=r"simple_rnn_backward\(\) missing required argument "
                                        r"'cache'"):
        core.simple_rnn_backward()


@pytest.mark.parametrize("variant", CELL_VARIANTS, ids=[v[0] for v in CELL_VARIANTS])
def test_cache_keeps_private_copies(variant):
    """Editing x, the weights and the mask after a training forward changes no gradient."""
    _, cell, options = variant
    p = _problem(cell, options)
    mask = np.ones((3, 5), dtype=bool)
    mask[1, 2:] = False

    def run(edit):
        q = {k: v.copy() for k, v in p.items()}
        m = mask.copy()
        _, cache = forward(ops, cell, q["x"], q["kernel"], q["recurrent_kernel"], q["bias"],
                           h0=q["h0"], c0=q.get("c0"), **projection(q), mask=m, **options)
        if edit:
            for k in ("x", "kernel", "recurrent_kernel", "projection_kernel"):
                if k in q:
                    q[k][...] = 7.0
            m[...] = False
        return backward(ops, cell, cache, q["dy"], q["dh_last"], q.get("dc_last"))

    want, got = run(edit=False), run(edit=True)
    assert want.keys() == got.keys()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


@pytest.mark.parametrize("batch, time", [(2, 3), (64, 300)], ids=["numpy", "pooled"])
@pytest.mark.parametrize("cell", cells.CELL_NAMES)
def test_outputs_are_writeable_c_contiguous_and_independent(cell, batch, time):
    """Small outputs (NumPy's memory) and large ones (the block pool, 64 KiB and up): each a
    separate, writeable, C-contiguous array of the result dtype."""
    options = {"reset_after": True} if cell == "gru" else {}
    p = _problem(cell, options, batch=batch, time=time, features=2, units=4)
    outs, cache = forward(ops, cell, p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                          h0=p["h0"], c0=p.get("c0"), **projection(p), **options)
    grads = backward(ops, cell, cache, p["dy"], p["dh_last"], p.get("dc_last"))
    arrays = list(outs.values()) + list(grads.values())
    for a in arrays:
        assert type(a) is np.ndarray and a.dtype == np.float32
        assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
    for i, a in enumerate(arrays):
        for b in arrays[i + 1:]:
            assert not np.shares_memory(a, b)
    if time == 300:  # y is 64*300*width*4 bytes >= 64 KiB: pool memory behind a capsule
        assert not outs["y"].flags.owndata and outs["y"].base is not None
    want = forward(reference, cell, p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                   h0=p["h0"], c0=p.get("c0"), **projection(p), **options)[0]
    for k in outs:
        np.testing.assert_allclose(outs[k], want[k], rtol=2e-4, atol=2e-5, err_msg=k)


def test_exact_float32_arrays_are_read_in_place_and_others_converted():
    """The conversion shortcut (an exact ndarray of the result dtype) gives the same results as
    the general path (a subclass, a non-contiguous view, another byte order)."""
    p = _problem("lstm", {})
    args = _core_args("lstm", p)
    want = ops.lstm_forward(*args, training=False)

    class Sub(np.ndarray):
        pass

    variants = [
        tuple(a.view(Sub) for a in args),
        tuple(np.asfortranarray(a) for a in args),
        tuple(a.astype(a.dtype.newbyteorder()) for a in args),
    ]
    for v in variants:
        got = ops.lstm_forward(*v, training=False)
        for a, b in zip(got[:-1], want[:-1]):
            np.testing.assert_array_equal(a, b)
