"""Schema of metrics in saved compile configs (untrusted files are checked before anything
is built): a metric is a name from :data:`rnnkit.metrics.NAMES` or
``{"class_name": <rnnkit metric class>, "config": {field: value}}`` whose fields are typed,
bounded (no huge allocations from a hostile file) and accepted by that class."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict

from ..config_schema import (MAX_DIM, fail, is_int, short, v_bool, v_choice, v_float_dtype,
                             v_num, v_opt_num, v_str)

__all__ = ["v_metric", "MAX_THRESHOLDS", "MAX_AUC_CELLS"]

#: Longest accepted threshold / label-weight list.
MAX_THRESHOLDS = 4096
#: AUC keeps 4 arrays of ``num_thresholds * num_labels`` floats; bound their size.
MAX_AUC_CELLS = 1 << 22


def _v_int(low: int, high: int, optional: bool = False) -> Callable[[Any, str], None]:
    def check(v: Any, w: str) -> None:
        if v is None and optional:
            return
        if not is_int(v) or not low <= v <= high:
            fail(w, f"expected {'null or ' if optional else ''}an int in [{low}, {high}], "
                    f"got {short(v)}")
    return check


def _v_numbers(v: Any, w: str) -> None:
    if not isinstance(v, list) or not 0 < len(v) <= MAX_THRESHOLDS:
        fail(w, f"expected a list of 1 to {MAX_THRESHOLDS} numbers, got {short(v)}")
    for i, x in enumerate(v):
        v_num(x, f"{w}[{i}]")


def _v_thresholds(v: Any, w: str) -> None:
    if v is None:
        return
    if isinstance(v, list):
        _v_numbers(v, w)
    else:
        v_num(v, w)


def _v_opt_numbers(v: Any, w: str) -> None:
    if v is not None:
        _v_numbers(v, w)


FIELDS: Dict[str, Callable[[Any, str], None]] = {
    "name": v_str, "dtype": v_float_dtype, "thresholds": _v_thresholds,
    "top_k": _v_int(1, MAX_DIM, True), "class_id": _v_int(0, MAX_DIM, True),
    "num_thresholds": _v_int(2, MAX_AUC_CELLS), "curve": v_choice("ROC", "PR", "PRGAIN"),
    "summation_method": v_choice("interpolation", "majoring", "minoring"),
    "multi_label": v_bool, "num_labels": _v_int(1, MAX_DIM, True),
    "label_weights": _v_opt_numbers, "from_logits": v_bool,
    "average": v_choice(None, "micro", "macro", "weighted"), "beta": v_num,
    "threshold": v_opt_num, "k": _v_int(1, MAX_DIM), "from_sorted_ids": v_bool,
    "class_aggregation": v_choice(None, "uniform_average", "variance_weighted_average"),
    "num_regressors": _v_int(0, MAX_DIM), "axis": _v_int(-8, 7),
}


def v_metric(v: Any, w: str) -> None:
    """Check one saved metric entry (raises ``SchemaError`` naming ``w``)."""
    from . import NAMES, _CLASSES
    if isinstance(v, str):
        if v not in NAMES:
            fail(w, f"unknown metric {short(v)}")
        return
    if not isinstance(v, dict) or set(v) - {"class_name", "config"}:
        fail(w, f"expected a metric name or {{'class_name', 'config'}}, got {short(v)}")
    cls = _CLASSES.get(v.get("class_name")) if isinstance(v.get("class_name"), str) else None
    if cls is None or v["class_name"] in ("Mean", "Sum"):
        fail(f"{w}.class_name", f"unknown metric class {short(v.get('class_name'))}")
    cfg = v.get("config", {})
    if not isinstance(cfg, dict) or len(cfg) > 32:
        fail(f"{w}.config", f"expected an object, got {short(cfg)}")
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    for k, x in cfg.items():
        if k not in FIELDS or k not in accepted:
            fail(f"{w}.config", f"unknown field {short(k)} for {v['class_name']}")
        FIELDS[k](x, f"{w}.config.{k}")
    if v["class_name"] == "AUC":
        n = len(cfg["thresholds"]) + 2 if isinstance(cfg.get("thresholds"), list) else \
            cfg.get("num_thresholds", 200)
        if n * (cfg.get("num_labels") or 1) > MAX_AUC_CELLS:
            fail(f"{w}.config", f"num_thresholds * num_labels is over {MAX_AUC_CELLS}")
