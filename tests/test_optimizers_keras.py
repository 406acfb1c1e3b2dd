"""Optimizers and learning-rate schedules against Keras 3 recordings.

tests/fixtures/keras_training/optimizers.{npz,json} (made by make_optimizers.py with Keras
3.15 / TensorFlow) hold, for fixed float32 variables and six fixed gradient steps, the
weights after every ``apply_gradients`` and after ``finalize_variable_values`` for AdamW,
Nadam, Adamax, Adadelta, Ftrl and Lion (plain, weight decay, EMA, gradient accumulation,
all together) and the older optimizers with the new options; each schedule's values at
several steps; the default configs. Also: save/load continues exactly, hostile schedule
configs are refused, bad arguments are named.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np
import pytest

from rnnkit import layers as L
from rnnkit import optimizers as O
from rnnkit.models import Sequential, load_model
from rnnkit.optimizers import schedules as S

HERE = Path(__file__).parent / "fixtures" / "keras_training"
META = json.loads((HERE / "optimizers.json").read_text())
REC = dict(np.load(HERE / "optimizers.npz"))
W0 = [REC["w0_0"], REC["w0_1"]]
GRADS = [[REC[f"grad_{s}_{j}"] for j in range(2)] for s in range(META["n_steps"])]


def _close(mine: np.ndarray, ref: np.ndarray, what: str) -> None:
    """float32 agreement: 5e-7 relative, measured against the array's largest entry (a few
    ulps; pow/log/cos may differ from TensorFlow's by one)."""
    scale = max(float(np.max(np.abs(ref))), 1e-30)
    np.testing.assert_allclose(mine, ref, rtol=5e-7, atol=5e-7 * scale, err_msg=what)


@pytest.mark.parametrize("case", sorted(META["cases"]))
def test_trajectory_matches_keras(case: str) -> None:
    c = META["cases"][case]
    opt = O.get({"class_name": c["class_name"], "config": c["kwargs"]})
    vs = [w.copy() for w in W0]
    for s, gs in enumerate(GRADS):
        np.testing.assert_allclose(opt.learning_rate, REC[f"{case}/lr"][s], rtol=2e-7)
        opt.apply_gradients(zip(gs, vs))
        assert opt.iterations == c["iterations"][s]
        for j, v in enumerate(vs):
            assert v.dtype == np.float32
            _close(v, REC[f"{case}/traj_{j}"][s], f"{case} step {s} variable {j}")
    opt.finalize_variable_values(vs)
    for j, v in enumerate(vs):
        _close(v, REC[f"{case}/final_{j}"], f"{case} finalized variable {j}")


@pytest.mark.parametrize("key", sorted(META["schedules"]))
def test_schedule_values_match_keras(key: str) -> None:
    spec = META["schedules"][key]
    sch = S.deserialize(spec)
    got = np.array([sch(s) for s in META["steps"]], dtype=np.float32)
    ref = REC[f"schedule/{key}"]
    np.testing.assert_allclose(got, ref, rtol=3e-7, atol=1e-9, err_msg=key)
    again = S.deserialize(S.serialize(sch))
    assert again.get_config() == sch.get_config()


@pytest.mark.parametrize("cls", sorted(META["schedule_configs"]))
def test_schedule_config_keys_and_defaults(cls: str) -> None:
    ref = META["schedule_configs"][cls]  # Keras's get_config of one recorded schedule
    mine = [getattr(S, cls)(**s["config"]).get_config() for s in META["schedules"].values()
            if s["class_name"] == cls]
    assert all(set(c) == set(ref) for c in mine)
    assert ref in mine


@pytest.mark.parametrize("cls", sorted(META["defaults"]))
def test_default_config_matches_keras(cls: str) -> None:
    mine = O.get(cls.lower()).get_config()
    assert mine.pop("name") == O.get(cls).name
    ref = dict(META["defaults"][cls])
    # Keras reports the float32 variable's value; rnnkit keeps the float it was given.
    assert np.float32(mine.pop("learning_rate")) == np.float32(ref.pop("learning_rate"))
    assert mine == ref


def test_learning_rate_assignment() -> None:
    opt = O.SGD(learning_rate=S.ExponentialDecay(0.1, 3, 0.5))
    assert META["set_lr_on_schedule"] == "TypeError"
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.2
    opt = O.Lion(learning_rate=0.1)
    opt.learning_rate = 0.25  # ReduceLROnPlateau / LearningRateScheduler do this
    assert opt.learning_rate == 0.25
    opt.learning_rate = S.PolynomialDecay(0.1, 4)
    assert opt.learning_rate == pytest.approx(0.1)


def test_schedule_subclass_and_plain_callables() -> None:
    class Halving(S.LearningRateSchedule):
        def __call__(self, step: Any) -> float:
            return 0.5 / (step + 1)

    opt = O.SGD(learning_rate=Halving())
    w = np.ones(2, dtype=np.float32)
    for _ in range(3):
        opt.apply([np.ones(2, np.float32)], [w])
    np.testing.assert_allclose(w, 1 - 0.5 * (1 + 1 / 2 + 1 / 3), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="get_config"):
        Halving().get_config()
    assert O.SGD(learning_rate=lambda: 0.3).learning_rate == pytest.approx(0.3)  # Keras
    assert O.SGD(learning_rate=lambda step: 0.3 / (step + 1)).learning_rate == pytest.approx(0.3)


# -- save / load -----------------------------------------------------------------------------
def _model(opt: O.Optimizer) -> Sequential:
    from rnnkit import backend
    backend.set_random_seed(11)
    m = Sequential([L.Input((3,)), L.Dense(4, activation="tanh"), L.Dense(2)])
    m.compile(optimizer=opt, loss="mse")
    return m


_X = np.random.default_rng(5).normal(size=(6, 3)).astype(np.float32)
_Y = np.random.default_rng(6).normal(size=(6, 2)).astype(np.float32)

SAVE_CASES: Dict[str, Callable[[], O.Optimizer]] = {
    "adamw_ema_acc": lambda: O.AdamW(0.05, use_ema=True, ema_overwrite_frequency=3,
                                     gradient_accumulation_steps=2, amsgrad=True),
    "nadam_schedule": lambda: O.Nadam(S.CosineDecayRestarts(0.05, 2), weight_decay=0.01),
    "adamax_acc": lambda: O.Adamax(0.05, gradient_accumulation_steps=3, clipnorm=0.5),
    "adadelta_ema": lambda: O.Adadelta(1.0, use_ema=True, ema_momentum=0.5),
    "ftrl_regs": lambda: O.Ftrl(S.ExponentialDecay(0.5, 2, 0.8, staircase=True),
                                l1_regularization_strength=0.01, beta=0.2),
    "lion_piecewise": lambda: O.Lion(S.PiecewiseConstantDecay([2, 4], [0.02, 0.01, 0.005])),
    "sgd_poly_acc": lambda: O.SGD(S.PolynomialDecay(0.1, 5, cycle=True), momentum=0.9,
                                  gradient_accumulation_steps=2),
}


@pytest.mark.parametrize("case", sorted(SAVE_CASES))
def test_save_load_continues_exactly(case: str, tmp_path: Path) -> None:
    a, b = _model(SAVE_CASES[case]()), _model(SAVE_CASES[case]())
    for _ in range(3):  # 3 steps: accumulators hold a partial sum when saved
        a.train_on_batch(_X, _Y)
        b.train_on_batch(_X, _Y)
    path = str(tmp_path / "m.npz")
    a.save(path)
    c = load_model(path)
    assert type(c.optimizer) is type(a.optimizer)
    assert c.optimizer.get_config() == a.optimizer.get_config()
    assert type(c.optimizer._learning_rate) is type(a.optimizer._learning_rate)
    assert c.optimizer.iterations == a.optimizer.iterations
    assert c.optimizer.learning_rate == a.optimizer.learning_rate
    for _ in range(4):
        b.train_on_batch(_X, _Y)
        c.train_on_batch(_X, _Y)
    for wb, wc in zip(b.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(wb, wc)
    assert c.optimizer._iterations == b.optimizer._iterations == 7
    for sb, sc in zip(b.optimizer.variables, c.optimizer.variables):
        np.testing.assert_array_equal(sb, sc)


def test_fit_finalizes_ema() -> None:
    m = _model(O.Nadam(0.05, use_ema=True, ema_momentum=0.6))
    m.fit(_X, _Y, batch_size=2, epochs=2, shuffle=False, verbose=0)
    avgs = m.optimizer._state["average"]
    for w, avg in zip(m.trainable_weights, avgs):
        np.testing.assert_array_equal(w.value, avg)
    plain = _model(O.Nadam(0.05))
    plain.fit(_X, _Y, batch_size=2, epochs=2, shuffle=False, verbose=0)
    assert not np.array_equal(plain.get_weights()[0], m.get_weights()[0])


def _edit_saved(tmp_path: Path, edit: Callable[[Dict[str, Any]], None]) -> str:
    m = _model(O.SGD(S.ExponentialDecay(0.1, 3, 0.5), use_ema=True))
    m.train_on_batch(_X, _Y)
    src = tmp_path / "ok.npz"
    m.save(str(src))
    with zipfile.ZipFile(src) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    key = "__rnnkit_config__.npy"
    meta = json.loads(np.load(io.BytesIO(members[key])).tobytes())
    edit(meta["compile"]["optimizer"]["config"])
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(json.dumps(meta).encode(), np.uint8))
    members[key] = buf.getvalue()
    dst = tmp_path / "bad.npz"
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return str(dst)


def _lr_cfg(cfg: Dict[str, Any]) -> Dict[str, Any]:
    return cfg["learning_rate"]["config"]


@pytest.mark.parametrize("edit,match", [
    (lambda c: c.update(learning_rate={"class_name": "Evil", "config": {}}),
     "unknown learning rate schedule"),
    (lambda c: c.update(learning_rate={"class_name": "ExponentialDecay", "config": {},
                                       "module": "os"}), "learning_rate"),
    (lambda c: c.update(learning_rate="0.1"), "learning_rate"),
    (lambda c: _lr_cfg(c).update(decay_steps=-3), "decay_steps"),
    (lambda c: _lr_cfg(c).update(decay_rate=[0.5]), "decay_rate"),
    (lambda c: _lr_cfg(c).update(staircase="yes"), "staircase"),
    (lambda c: _lr_cfg(c).update(boundaries=list(range(10 ** 5))), "boundaries"),
    (lambda c: _lr_cfg(c).update(__class__=1), "unknown field"),
    (lambda c: _lr_cfg(c).update(warmup_target=0.3), "compile config"),  # wrong class
    (lambda c: c.update(use_ema="yes"), "use_ema"),
    (lambda c: c.update(ema_momentum=None), "ema_momentum"),
    (lambda c: c.update(ema_overwrite_frequency=-2), "ema_overwrite_frequency"),
    (lambda c: c.update(gradient_accumulation_steps=1), "gradient_accumulation_steps"),
    (lambda c: c.update(gradient_accumulation_steps=2.5), "gradient_accumulation_steps"),
    (lambda c: c.update(loss_scale_factor=128.0), "loss_scale_factor"),
    (lambda c: c.update(use_ema=False), "unexpected member"),  # state no longer matches
    (lambda c: c.update(gradient_accumulation_steps=2), "missing"),
])
def test_hostile_optimizer_configs_refused(tmp_path: Path, edit: Any, match: str) -> None:
    path = _edit_saved(tmp_path, edit)
    with pytest.raises(ValueError) as info:
        load_model(path)
    assert path in str(info.value) and match in str(info.value), str(info.value)


def test_intact_schedule_file_loads(tmp_path: Path) -> None:
    path = _edit_saved(tmp_path, lambda c: None)
    m = load_model(path)
    assert isinstance(m.optimizer._learning_rate, S.ExponentialDecay)
    assert m.optimizer.learning_rate == pytest.approx(0.1 * 0.5 ** (1 / 3))


# -- arguments -------------------------------------------------------------------------------
@pytest.mark.parametrize("make,arg", [
    (lambda: O.AdamW(weight_decay=None), "weight_decay"),
    (lambda: O.Nadam(weight_decay="0.1"), "weight_decay"),
    (lambda: O.Adamax(beta_1="a"), "beta_1"),
    (lambda: O.Adadelta(rho=None), "rho"),
    (lambda: O.Ftrl(learning_rate_power=0.5), "learning_rate_power"),
    (lambda: O.Ftrl(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (lambda: O.Ftrl(l1_regularization_strength=-1.0), "l1_regularization_strength"),
    (lambda: O.Ftrl(l2_shrinkage_regularization_strength=-1.0),
     "l2_shrinkage_regularization_strength"),
    (lambda: O.Lion(beta_1=0.0), "beta_1"),
    (lambda: O.Lion(beta_1=1.5), "beta_1"),
    (lambda: O.Adam(use_ema=True, ema_momentum=1.5), "ema_momentum"),
    (lambda: O.Adam(use_ema="yes"), "use_ema"),
    (lambda: O.Adam(use_ema=True, ema_overwrite_frequency=-1), "ema_overwrite_frequency"),
    (lambda: O.Adam(use_ema=True, ema_overwrite_frequency=1.5), "ema_overwrite_frequency"),
    (lambda: O.Adam(gradient_accumulation_steps=1), "gradient_accumulation_steps"),
    (lambda: O.Adam(gradient_accumulation_steps=2.0), "gradient_accumulation_steps"),
    (lambda: O.Adam(loss_scale_factor=2.0), "loss_scale_factor"),
    (lambda: O.Adam(clipnorm=1.0, clipvalue=1.0), "clipvalue"),
    (lambda: O.Adam(clipnorm="1"), "clipnorm"),
    (lambda: O.Adam(bogus=1), "bogus"),
    (lambda: S.ExponentialDecay(0.1, 0, 0.5), "decay_steps"),
    (lambda: S.ExponentialDecay(0.1, 3, 0.5, staircase="no"), "staircase"),
    (lambda: S.PiecewiseConstantDecay([1, 2], [0.1]), "boundaries"),
    (lambda: S.PiecewiseConstantDecay([1], [0.1, "x"]), "values[1]"),
    (lambda: S.PolynomialDecay(0.1, -1), "decay_steps"),
    (lambda: S.PolynomialDecay(0.1, 5, power=float("inf")), "power"),
    (lambda: S.InverseTimeDecay("0.1", 5, 0.5), "initial_learning_rate"),
    (lambda: S.CosineDecay(0.1, 5, warmup_steps=-1), "warmup_steps"),
    (lambda: S.CosineDecay(0.1, 5, warmup_target="x"), "warmup_target"),
    (lambda: S.CosineDecayRestarts(0.1, 0), "first_decay_steps"),
    (lambda: S.CosineDecayRestarts(0.1, 3, t_mul=0.0), "t_mul"),
    (lambda: S.deserialize({"class_name": "Nope", "config": {}}), "Nope"),
    (lambda: O.get("adafactor"), "adafactor"),
])
def test_bad_arguments_named(make: Callable[[], Any], arg: str) -> None:
    with pytest.raises(ValueError) as info:
        make()
    assert arg in str(info.value), str(info.value)


def test_get_by_name_class_and_config() -> None:
    for name in ("adamw", "nadam", "adamax", "adadelta", "ftrl", "lion", "AdamW", "Nadam"):
        opt = O.get(name)
        assert type(opt).__name__.lower() == name.lower()
        again = O.get(O.serialize(opt))
        assert again.get_config() == opt.get_config()
    opt = O.AdamW(S.CosineDecay(0.1, 10, warmup_target=0.2, warmup_steps=3))
    cfg = O.serialize(opt)
    assert cfg["config"]["learning_rate"]["class_name"] == "CosineDecay"
    assert json.loads(json.dumps(cfg)) == cfg
    again = O.get(cfg)
    assert isinstance(again._learning_rate, S.CosineDecay)
    assert again._learning_rate.get_config() == opt._learning_rate.get_config()


def test_state_layout_counts_new_slots() -> None:
    opt = O.Nadam(use_ema=True, gradient_accumulation_steps=2)
    ws: List[np.ndarray] = [np.zeros((2, 3), np.float32), np.zeros(3, np.float32)]
    opt.build(ws)
    # iterations, 2 averages, 2 accumulators, 2 momenta, 2 velocities, u_product
    assert len(opt.variables) == 1 + 2 * 4 + 1
    assert [s for s, _ in opt.state_specs([(2, 3), (3,)])][-1] == "optimizer scalar 'u_product'"
    with pytest.raises(ValueError, match="expected 10"):
        opt.set_state(opt.variables[:-1], ws)
