"""The schema of layer configs: typed field checkers, shared by every layer class.

Each layer class declares ``CONFIG_FIELDS`` (``{field: checker}``) and ``CONFIG_REQUIRED``
next to its ``get_config``; :mod:`rnnkit.saving` checks an untrusted file's config against
them before anything is built. A checker is ``check(value, where)`` and raises
:class:`SchemaError` (a ValueError) naming ``where`` (e.g. ``config.model.layers[2].units``).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Sequence

from . import activations, cells, initializers

#: Largest accepted size argument (units, input_dim, output_dim, shape entries).
MAX_DIM = 1 << 26
#: Longest accepted name string.
MAX_NAME = 1024


def v_choice(*options: Any) -> Any:
    """A checker accepting exactly ``options`` (e.g. ``v_choice("valid", "same")``)."""
    def check(v: Any, w: str) -> None:
        if not any(v is o or (type(v) is type(o) and v == o) for o in options):
            fail(w, f"expected one of {list(options)}, got {short(v)}")
    return check


def v_dims(v: Any, w: str) -> None:
    """A list of at most 8 sizes (or null), e.g. ``Reshape.target_shape``, axes lists."""
    v_shape(v, w)


def v_layer_ref(v: Any, w: str) -> None:
    """Marker: the field holds a nested layer config (``saving`` validates it recursively)."""
    raise AssertionError("v_layer_ref is a marker; saving validates nested layers itself")


def v_layer_refs(v: Any, w: str) -> None:
    """Marker: the field holds a list of nested layer configs."""
    raise AssertionError("v_layer_refs is a marker; saving validates nested layers itself")


# --------------------------------------------------------------------------------------------
class SchemaError(ValueError):
    pass


def fail(where: str, msg: str) -> None:
    raise SchemaError(f"{where}: {msg}")


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def v_str(v: Any, w: str) -> None:
    if not isinstance(v, str) or len(v) > MAX_NAME:
        fail(w, f"expected a string (at most {MAX_NAME} characters), got {short(v)}")


def v_opt_str(v: Any, w: str) -> None:
    if v is not None:
        v_str(v, w)


def v_bool(v: Any, w: str) -> None:
    if not isinstance(v, bool):
        fail(w, f"expected true/false, got {short(v)}")


def v_opt_bool(v: Any, w: str) -> None:
    if v is not None:
        v_bool(v, w)


def v_num(v: Any, w: str) -> None:
    if not is_num(v):
        fail(w, f"expected a finite number, got {short(v)}")


def v_opt_num(v: Any, w: str) -> None:
    if v is not None:
        v_num(v, w)


def v_dim(v: Any, w: str) -> None:
    if not is_int(v) or not 0 < v <= MAX_DIM:
        fail(w, f"expected an int in [1, {MAX_DIM}], got {short(v)}")


def v_opt_dim(v: Any, w: str) -> None:
    if v is not None:
        v_dim(v, w)


def v_seed(v: Any, w: str) -> None:
    if v is not None and (not is_int(v) or not 0 <= v < 2 ** 63):
        fail(w, f"expected null or an int in [0, 2**63), got {short(v)}")


def v_shape(v: Any, w: str) -> None:
    if v is None:
        return
    if not isinstance(v, list) or len(v) > 8:
        fail(w, f"expected a list of at most 8 sizes, got {short(v)}")
    for i, d in enumerate(v):
        v_opt_dim(d, f"{w}[{i}]")


def v_float_dtype(v: Any, w: str) -> None:
    if not (v is None or (isinstance(v, str) and v in ("float32", "float64"))):
        fail(w, f"expected 'float32', 'float64' or null, got {short(v)}")


def v_reduction(v: Any, w: str) -> None:
    if v not in (None, "sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none"):
        fail(w, f"unknown reduction {short(v)}")


# The fields of initializer, loss and optimizer configs, with their types.
SCALAR_FIELDS = {
    "seed": v_seed, "gain": v_num, "minval": v_num, "maxval": v_num, "mean": v_num,
    "stddev": v_num, "value": v_num,                                      # initializers
    "name": v_str, "reduction": v_reduction, "from_logits": v_bool,
    "dtype": v_float_dtype, "ignore_class": lambda v, w: None if v is None or (
        is_int(v) and abs(v) <= 2**31) else fail(w, f"expected an int or null, got {short(v)}"),
    "label_smoothing": v_num, "delta": v_num, "axis": lambda v, w: None if is_int(v) and abs(
        v) <= 64 else fail(w, f"expected a small int, got {short(v)}"),   # losses
    "learning_rate": lambda v, w: v_learning_rate(v, w), "weight_decay": v_opt_num,
    "clipnorm": v_opt_num, "clipvalue": v_opt_num, "global_clipnorm": v_opt_num,
    "momentum": v_num, "nesterov": v_bool, "beta_1": v_num, "beta_2": v_num,
    "epsilon": v_num, "amsgrad": v_bool, "rho": v_num, "centered": v_bool,
    "initial_accumulator_value": v_num, "use_ema": v_bool, "ema_momentum": v_num,
    "ema_overwrite_frequency": lambda v, w: v_opt_count(v, w, 1),
    "gradient_accumulation_steps": lambda v, w: v_opt_count(v, w, 2),
    "loss_scale_factor": lambda v, w: None if v is None else fail(w, "not supported"),
    "learning_rate_power": v_num, "l1_regularization_strength": v_num,
    "l2_regularization_strength": v_num, "l2_shrinkage_regularization_strength": v_num,
    "beta": v_num,                                                         # optimizers
}

#: Longest accepted ``boundaries``/``values`` list of a PiecewiseConstantDecay.
MAX_SCHEDULE_POINTS = 4096


def v_opt_count(v: Any, w: str, minimum: int) -> None:
    """null, or an int in ``[minimum, 2**31)`` (0 too: Keras treats it as off)."""
    if v is not None and (not is_int(v) or not (v == 0 or minimum <= v < 2 ** 31)):
        fail(w, f"expected null or an int >= {minimum}, got {short(v)}")


def v_num_list(v: Any, w: str) -> None:
    """A list of at most MAX_SCHEDULE_POINTS finite numbers."""
    if not isinstance(v, list) or not 0 < len(v) <= MAX_SCHEDULE_POINTS:
        fail(w, f"expected a list of 1 to {MAX_SCHEDULE_POINTS} numbers, got {short(v)}")
    for i, x in enumerate(v):
        v_num(x, f"{w}[{i}]")


def v_positive(v: Any, w: str) -> None:
    if not is_num(v) or v <= 0:
        fail(w, f"expected a finite number > 0, got {short(v)}")


# The fields of learning-rate schedule configs (Keras 3 names), with their types.
SCHEDULE_FIELDS = {
    "initial_learning_rate": v_num, "decay_steps": v_positive, "decay_rate": v_num,
    "staircase": v_bool, "name": v_str, "boundaries": v_num_list, "values": v_num_list,
    "end_learning_rate": v_num, "power": v_num, "cycle": v_bool, "alpha": v_num,
    "warmup_target": v_opt_num, "warmup_steps": v_num, "first_decay_steps": v_positive,
    "t_mul": v_positive, "m_mul": v_num,
}


def v_learning_rate(v: Any, w: str) -> None:
    """An optimizer's ``learning_rate``: a number, or a built-in schedule's
    ``{"class_name", "config"}``."""
    if not isinstance(v, dict):
        v_num(v, w)
        return
    from .optimizers import schedules  # config_schema sits below the optimizers package
    if set(v) - {"class_name", "config"}:
        fail(w, f"expected a number or {{'class_name', 'config'}}, got {short(v)}")
    if not isinstance(v.get("class_name"), str) or v["class_name"] not in schedules._CLASSES:
        fail(f"{w}.class_name", f"unknown learning rate schedule {short(v.get('class_name'))};"
                                f" known: {sorted(schedules._CLASSES)}")
    cfg = v.get("config", {})
    if not isinstance(cfg, dict) or len(cfg) > 16:
        fail(f"{w}.config", f"expected an object, got {short(cfg)}")
    for k, x in cfg.items():
        check = SCHEDULE_FIELDS.get(k)
        if check is None:
            fail(f"{w}.config", f"unknown field {short(k)}")
        check(x, f"{w}.config.{k}")


def v_scalars(v: Any, w: str) -> None:
    """A flat config object: known field names with typed values (the constructor then
    rejects fields its class does not take)."""
    if not isinstance(v, dict) or len(v) > 64:
        fail(w, f"expected an object, got {short(v)}")
    for k, x in v.items():
        check = SCALAR_FIELDS.get(k)
        if check is None:
            fail(w, f"unknown field {short(k)}")
        check(x, f"{w}.{k}")


def v_object(v: Any, w: str, classes: Sequence[str], names: Sequence[str]) -> None:
    """A name, or ``{"class_name": known, "config": {scalars}}`` (initializers, losses...)."""
    if isinstance(v, str):
        if v not in names:
            fail(w, f"unknown name {short(v)}")
        return
    if not isinstance(v, dict) or set(v) - {"class_name", "config"}:
        fail(w, f"expected a name or {{'class_name', 'config'}}, got {short(v)}")
    if not isinstance(v.get("class_name"), str) or v["class_name"] not in classes:
        fail(w, f"unknown class {short(v.get('class_name'))}; known: {sorted(classes)}")
    v_scalars(v.get("config", {}), f"{w}.config")


def v_initializer(v: Any, w: str) -> None:
    v_object(v, w, list(initializers._CLASSES), list(initializers._BY_NAME))


def v_activation(v: Any, w: str) -> None:
    # Dense's names, plus every name the RNN kernels take (a layer rejects what it lacks).
    if v is not None and (not isinstance(v, str)
                          or (v not in activations._ALL and v not in cells.ACTIVATIONS)):
        fail(w, f"unknown activation {short(v)}")


def _v_factor(v: Any, w: str) -> None:
    if not is_num(v) or v < 0:
        fail(w, f"expected a finite number >= 0, got {short(v)}")


def _v_axis_arg(v: Any, w: str) -> None:
    ok = (is_int(v) and -8 <= v < 8) or (isinstance(v, list) and 0 < len(v) <= 8
                                          and all(is_int(a) and -8 <= a < 8 for a in v))
    if not ok:
        fail(w, f"expected an axis (int in [-8, 8)) or a list of axes, got {short(v)}")


# Keras's regularizer / constraint classes and the config fields each takes.
REGULARIZER_FIELDS = {
    "L1": {"l1": _v_factor}, "L2": {"l2": _v_factor}, "L1L2": {"l1": _v_factor, "l2": _v_factor},
    "OrthogonalRegularizer": {"factor": _v_factor, "mode": v_choice("rows", "columns")},
}
CONSTRAINT_FIELDS = {
    "MaxNorm": {"max_value": v_num, "axis": _v_axis_arg}, "NonNeg": {},
    "UnitNorm": {"axis": _v_axis_arg},
    "MinMaxNorm": {"min_value": v_num, "max_value": v_num, "rate": v_num, "axis": _v_axis_arg},
}


def _v_typed_object(v: Any, w: str, classes: Dict[str, Dict[str, Any]],
                    names: Sequence[str]) -> None:
    """null, a name, or ``{"class_name": one of classes, "config": {its fields}}``."""
    if v is None:
        return
    if isinstance(v, str):
        if v not in names:
            fail(w, f"unknown name {short(v)}; known: {sorted(names)}")
        return
    if not isinstance(v, dict) or set(v) - {"class_name", "config", "module",
                                            "registered_name"}:
        fail(w, f"expected null, a name or {{'class_name', 'config'}}, got {short(v)}")
    cls = v.get("class_name")
    if not isinstance(cls, str) or cls not in classes:
        fail(w, f"unknown class {short(cls)}; known: {sorted(classes)}")
    for extra in ("module", "registered_name"):
        if extra in v and not (v[extra] is None or isinstance(v[extra], str)
                               and len(v[extra]) <= MAX_NAME):
            fail(f"{w}.{extra}", f"expected a string, got {short(v[extra])}")
    cfg = v.get("config", {})
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        fail(f"{w}.config", f"expected an object, got {short(cfg)}")
    for k, x in cfg.items():
        check = classes[cls].get(k)
        if check is None:
            fail(f"{w}.config", f"unknown field {short(k)} for {cls}; known: "
                 f"{sorted(classes[cls])}")
        check(x, f"{w}.config.{k}")


def v_regularizer(v: Any, w: str) -> None:
    """A regularizer: null, ``"l1"``/``"l2"``/``"l1_l2"``... or a Keras config object."""
    _v_typed_object(v, w, REGULARIZER_FIELDS, ["l1", "l2", "l1l2", "l1_l2",
                                                       "orthogonal_regularizer"])


def v_constraint(v: Any, w: str) -> None:
    """A constraint: null, ``"max_norm"``/``"non_neg"``... or a Keras config object."""
    _v_typed_object(v, w, CONSTRAINT_FIELDS, ["max_norm", "non_neg", "unit_norm",
                                              "min_max_norm"])


def weight_option_fields(*prefixes: str) -> Dict[str, Any]:
    """``{<prefix>_regularizer: v_regularizer, <prefix>_constraint: v_constraint}``."""
    out: Dict[str, Any] = {}
    for p in prefixes:
        out[f"{p}_regularizer"] = v_regularizer
        out[f"{p}_constraint"] = v_constraint
    return out


BASE_FIELDS = {"name": v_opt_str, "trainable": v_bool, "dtype": v_float_dtype,
         "batch_input_shape": v_shape, "input_shape": v_shape, "batch_size": v_opt_dim,
         "input_dim": v_opt_dim, "activity_regularizer": v_regularizer}
RNN_FIELDS = {**BASE_FIELDS, "units": v_dim, "activation": v_activation,
               "recurrent_activation": v_activation, "use_bias": v_bool,
               "kernel_initializer": v_initializer, "recurrent_initializer": v_initializer,
               "bias_initializer": v_initializer, "dropout": v_num,
               "recurrent_dropout": v_num, "return_sequences": v_bool,
               "return_state": v_bool, "go_backwards": v_bool, "stateful": v_bool,
               "unroll": v_bool, "seed": v_seed, "zero_output_for_mask": v_bool,
               "use_cudnn": lambda v, w: None if v in (None, True, False, "auto")
               else fail(w, f"unexpected {short(v)}"),
               "implementation": lambda v, w: None if v is None or (is_int(v) and 0 <= v <= 2)
               else fail(w, f"unexpected {short(v)}"),
               **weight_option_fields("kernel", "recurrent", "bias")}




def short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


