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
    "learning_rate": v_num, "weight_decay": v_opt_num, "clipnorm": v_opt_num,
    "clipvalue": v_opt_num, "global_clipnorm": v_opt_num, "momentum": v_num,
    "nesterov": v_bool, "beta_1": v_num, "beta_2": v_num, "epsilon": v_num,
    "amsgrad": v_bool, "rho": v_num, "centered": v_bool,
    "initial_accumulator_value": v_num,                                    # optimizers
}


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


def v_regularizer(v: Any, w: str) -> None:
    if v is not None:
        fail(w, "regularizers/constraints are not supported")


BASE_FIELDS = {"name": v_opt_str, "trainable": v_bool, "dtype": v_float_dtype,
         "batch_input_shape": v_shape, "input_shape": v_shape, "batch_size": v_opt_dim,
         "input_dim": v_opt_dim}
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
               **{k: v_regularizer for k in (
                   "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                   "activity_regularizer", "kernel_constraint", "recurrent_constraint",
                   "bias_constraint")}}




def short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


