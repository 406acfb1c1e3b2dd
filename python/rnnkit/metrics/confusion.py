"""Confusion-matrix metrics (Keras 3 ``metrics/confusion_metrics.py``): the four counts,
``Precision``, ``Recall`` and ``AUC``.

Counting follows Keras's ``update_confusion_matrix_variables``: a prediction is positive at
threshold ``t`` when ``y_pred > t``; targets are cast to bool; comparisons run in float32 as
Keras's float32 variables do (so a prediction equal to a threshold counts as negative exactly
as in Keras). Evenly spaced thresholds use Keras's bucket path (``ceil(p * (n - 1)) - 1``
after clipping to [0, 1]); other thresholds compare directly. ``top_k`` keeps the k largest
predictions of the last axis (the rest become -1e10); ``class_id`` picks one column.

AUC (default 200 thresholds ``i / 199`` with the end points moved to ``-eps`` and ``1 + eps``)
sums Riemann rectangles over the ROC or PR curve; ``curve="PR"`` with
``summation_method="interpolation"`` uses the Davis & Goadrich interpolation of Keras's
``interpolate_pr_auc``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from .. import backend
from .base import Metric, _as_array, _match_rank

__all__ = ["TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives", "Precision",
           "Recall", "AUC", "confusion_counts"]

NEG_INF = -1e10

Thresholds = Union[None, float, Sequence[float]]


def _to_list(x: Any) -> List[Any]:
    return list(x) if isinstance(x, (list, tuple, np.ndarray)) else [x]


def _parse_thresholds(thresholds: Thresholds, default: float) -> List[float]:
    """Keras ``parse_init_thresholds``: every threshold a number in [0, 1]."""
    if thresholds is None:
        return [default]
    values = _to_list(thresholds)
    if not values:
        raise ValueError("`thresholds` must not be empty")
    bad = [t for t in values if isinstance(t, bool) or not isinstance(t, (int, float, np.number))
           or not 0 <= t <= 1]
    if bad:
        raise ValueError(f"Threshold values must be in [0, 1]. Received: {bad}")
    return [float(t) for t in values]


def _evenly_spaced(thresholds: Sequence[float]) -> bool:
    """Keras ``is_evenly_distributed_thresholds`` (at least 3, spaced ``1 / (n - 1)``)."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=backend.epsilon()))


def _filter_top_k(x: np.ndarray, k: int) -> np.ndarray:
    # Keras: keep the k largest of the last axis (ties: lower index first), rest -> -1e10.
    idx = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    keep = np.zeros(x.shape, dtype=bool)
    np.put_along_axis(keep, idx, True, axis=-1)
    return np.where(keep, x, np.float32(NEG_INF)).astype(x.dtype)


def _check_int(v: Any, what: str, low: int) -> Optional[int]:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise ValueError(f"`{what}` must be None or an integer >= {low}, got {v!r}")
    return int(v)


def confusion_counts(y_true: Any, y_pred: Any, thresholds: Sequence[float],
                     top_k: Optional[int] = None, class_id: Optional[int] = None,
                     sample_weight: Any = None, multi_label: bool = False,
                     label_weights: Any = None, evenly: bool = False) -> Dict[str, np.ndarray]:
    """Weighted ``tp, fp, tn, fn`` per threshold (shape ``(T,)``, or ``(T, labels)`` with
    ``multi_label``) for one batch."""
    p = _as_array(y_pred, "y_pred").astype(np.float32)
    t = _as_array(y_true, "y_true").astype(np.float32)
    p, t = _match_rank(p, t)
    if t.shape != p.shape:
        try:
            t = np.broadcast_to(t, p.shape)
        except ValueError:
            raise ValueError(f"`y_true` has shape {t.shape} but `y_pred` has shape {p.shape}; "
                             "they must match") from None
    sw = None
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.float32)[..., None]
        _, sw = _match_rank(t, sw, expand_rank_1=False)
    if top_k is not None:
        p = _filter_top_k(p, top_k)
    if class_id is not None:
        if p.ndim == 1:
            raise ValueError("When class_id is provided, y_pred must be a 2D array with shape "
                             f"(num_samples, num_classes), found shape: {p.shape}")
        if class_id >= p.shape[-1]:
            raise ValueError(f"`class_id`={class_id} is out of range for predictions with "
                             f"{p.shape[-1]} classes")
        t, p = t[..., class_id, None], p[..., class_id, None]
    if multi_label and p.ndim != 2:
        raise ValueError("`y_pred` must have rank 2 when `multi_label=True`. Found rank "
                         f"{p.ndim}. Full shape received for `y_pred`: {p.shape}")
    thr = np.asarray(thresholds, dtype=np.float64)
    n = len(thr)
    w = np.ones(p.shape) if sw is None else np.broadcast_to(sw, p.shape).astype(np.float64)
    if label_weights is not None and not multi_label:
        w = w * np.broadcast_to(np.asarray(label_weights, np.float64)[None], p.shape)
    pos = (t != 0).astype(np.float64)
    if not multi_label:
        p, pos, w = p.reshape(-1), pos.reshape(-1), w.reshape(-1)
    true_w, false_w = pos * w, (1.0 - pos) * w
    if evenly:
        with_eps = bool(thr[0] < 0.0 or thr[-1] > 1.0)
        pc = np.clip(p, np.float32(0), np.float32(1))
        bucket = np.ceil(pc * np.float32(n - 1)).astype(np.float64) - 1  # float32 product
        if with_eps:
            bucket = np.maximum(bucket, 0)
        bucket = bucket.astype(np.int64)
        valid = bucket >= 0  # TF's segment_sum drops negative ids
        if multi_label:
            tp_b = np.zeros((n, p.shape[1]))
            fp_b = np.zeros((n, p.shape[1]))
            cols = np.broadcast_to(np.arange(p.shape[1]), p.shape)
            np.add.at(tp_b, (bucket[valid], cols[valid]), true_w[valid])
            np.add.at(fp_b, (bucket[valid], cols[valid]), false_w[valid])
        else:
            tp_b = np.bincount(bucket[valid], true_w[valid], minlength=n)[:n]
            fp_b = np.bincount(bucket[valid], false_w[valid], minlength=n)[:n]
        tp = np.cumsum(tp_b[::-1], axis=0)[::-1]
        fp = np.cumsum(fp_b[::-1], axis=0)[::-1]
    else:
        thr32 = thr.astype(np.float32).reshape((n,) + (1,) * p.ndim)
        is_pos = p[None] > thr32  # (n, N) or (n, B, L)
        tp = (is_pos * true_w[None]).sum(axis=1)
        fp = (is_pos * false_w[None]).sum(axis=1)
    total_true, total_false = true_w.sum(axis=0), false_w.sum(axis=0)
    return {"tp": tp, "fp": fp, "tn": total_false - fp, "fn": total_true - tp}


def _divide_no_nan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, 0.0, a / np.where(b == 0, 1.0, b))


class _ThresholdMetric(Metric):
    """Shared state of the count metrics, Precision and Recall."""
    _COUNTS: tuple = ()

    def __init__(self, thresholds: Thresholds, top_k: Optional[int], class_id: Optional[int],
                 name: Optional[str], dtype: Optional[str]) -> None:
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = _check_int(top_k, "top_k", 1)
        self.class_id = _check_int(class_id, "class_id", 0)
        self.thresholds = _parse_thresholds(thresholds, 0.5 if top_k is None else NEG_INF)
        self._evenly = _evenly_spaced(self.thresholds)
        self.reset_state()

    def reset_state(self) -> None:
        for c in self._COUNTS:
            setattr(self, c, np.zeros(len(self.thresholds)))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulate the weighted counts of one batch."""
        counts = confusion_counts(y_true, y_pred, self.thresholds, top_k=self.top_k,
                                  class_id=self.class_id, sample_weight=sample_weight,
                                  evenly=self._evenly)
        for c in self._COUNTS:
            setattr(self, c, getattr(self, c) + counts[_ABBR[c]])

    def _one(self, r: np.ndarray) -> Any:
        return float(r[0]) if len(self.thresholds) == 1 else r


_ABBR = {"true_positives": "tp", "false_positives": "fp", "true_negatives": "tn",
         "false_negatives": "fn"}


class _Count(_ThresholdMetric):
    _WHICH = ""

    def __init__(self, thresholds: Thresholds = None, name: Optional[str] = None,
                 dtype: Optional[str] = None) -> None:
        self._COUNTS = ("accumulator",)
        super().__init__(thresholds, None, None, name, dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Add this batch's weighted count per threshold."""
        counts = confusion_counts(y_true, y_pred, self.thresholds, sample_weight=sample_weight,
                                  evenly=self._evenly)
        self.accumulator = self.accumulator + counts[self._WHICH]

    def result(self) -> Any:
        return self._one(self.accumulator)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_Count):
    """Weighted number of true positives (per threshold)."""
    _WHICH = "tp"


class FalsePositives(_Count):
    """Weighted number of false positives (per threshold)."""
    _WHICH = "fp"


class TrueNegatives(_Count):
    """Weighted number of true negatives (per threshold)."""
    _WHICH = "tn"


class FalseNegatives(_Count):
    """Weighted number of false negatives (per threshold)."""
    _WHICH = "fn"


class Precision(_ThresholdMetric):
    """``tp / (tp + fp)`` over everything seen (per threshold when several are given).

    ``thresholds`` default 0.5 (or "in the top k" with ``top_k``); ``class_id`` restricts
    to one class column."""
    _COUNTS = ("true_positives", "false_positives")

    def __init__(self, thresholds: Thresholds = None, top_k: Optional[int] = None,
                 class_id: Optional[int] = None, name: Optional[str] = None,
                 dtype: Optional[str] = None) -> None:
        super().__init__(thresholds, top_k, class_id, name, dtype)

    def result(self) -> Any:
        return self._one(_divide_no_nan(self.true_positives,
                                        self.true_positives + self.false_positives))

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds,
                "top_k": self.top_k, "class_id": self.class_id}


class Recall(_ThresholdMetric):
    """``tp / (tp + fn)`` over everything seen (same arguments as :class:`Precision`)."""
    _COUNTS = ("true_positives", "false_negatives")

    def __init__(self, thresholds: Thresholds = None, top_k: Optional[int] = None,
                 class_id: Optional[int] = None, name: Optional[str] = None,
                 dtype: Optional[str] = None) -> None:
        super().__init__(thresholds, top_k, class_id, name, dtype)

    def result(self) -> Any:
        return self._one(_divide_no_nan(self.true_positives,
                                        self.true_positives + self.false_negatives))

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds,
                "top_k": self.top_k, "class_id": self.class_id}


_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = ("interpolation", "majoring", "minoring")


class AUC(Metric):
    """Area under the ROC or PR curve from thresholded counts (Keras ``AUC``).

    Args: ``num_thresholds`` (default 200, > 1), ``curve`` "ROC" / "PR" / "PRGAIN",
    ``summation_method`` "interpolation" / "minoring" / "majoring", ``thresholds`` (explicit
    values in place of ``num_thresholds``), ``multi_label`` (one curve per column of
    ``(batch, labels)`` predictions, averaged, weighted by ``label_weights`` if given),
    ``num_labels``, ``label_weights``, ``from_logits`` (apply a sigmoid first).
    """

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC",
                 summation_method: str = "interpolation", name: Optional[str] = None,
                 dtype: Optional[str] = None, thresholds: Optional[Sequence[float]] = None,
                 multi_label: bool = False, num_labels: Optional[int] = None,
                 label_weights: Optional[Sequence[float]] = None,
                 from_logits: bool = False) -> None:
        if not isinstance(curve, str) or curve.lower() not in _CURVES:
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are '
                             '["PR", "ROC", "PRGAIN"]')
        if not isinstance(summation_method, str) or summation_method.lower() not in _SUMMATIONS:
            raise ValueError(f'Invalid AUC summation method value: "{summation_method}". '
                             'Expected values are ["interpolation", "majoring", "minoring"]')
        for arg, v in (("multi_label", multi_label), ("from_logits", from_logits)):
            if not isinstance(v, bool):
                raise ValueError(f"`{arg}` must be True or False, got {v!r}")
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            values = _to_list(thresholds)
            if any(isinstance(t, bool) or not isinstance(t, (int, float, np.number))
                   for t in values):
                raise ValueError(f"`thresholds` must be a list of numbers, got {thresholds!r}")
            inner = sorted(float(t) for t in values)
            self.num_thresholds = len(inner) + 2
            self._evenly = _evenly_spaced([0.0] + inner + [1.0])
        else:
            if (isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, np.integer))
                    or num_thresholds <= 1):
                raise ValueError("Argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds!r}")
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) * 1.0 / (self.num_thresholds - 1)
                     for i in range(self.num_thresholds - 2)]
            self._evenly = True
        eps = backend.epsilon()
        self._thresholds = np.array([0.0 - eps] + inner + [1.0 + eps])
        self.curve = _CURVES[curve.lower()]
        self.summation_method = summation_method.lower()
        super().__init__(name=name, dtype=dtype)
        self.multi_label = multi_label
        self.num_labels = _check_int(num_labels, "num_labels", 1)
        if num_labels and not multi_label:
            raise ValueError("`num_labels` is needed only when `multi_label` is True.")
        self.label_weights = (None if label_weights is None
                              else np.asarray(label_weights, dtype=np.float64).reshape(-1))
        self._from_logits = from_logits
        self.reset_state()

    @property
    def thresholds(self) -> List[float]:
        """The thresholds, end points included."""
        return [float(t) for t in self._thresholds]

    def reset_state(self) -> None:
        shape: Any = (self.num_thresholds,)
        if self.multi_label:
            shape = None if not self.num_labels else (self.num_thresholds, self.num_labels)
        for c in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
            setattr(self, c, None if shape is None else np.zeros(shape))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulate the weighted confusion counts at every threshold."""
        p = _as_array(y_pred, "y_pred").astype(np.float32)
        if self._from_logits:
            p = (1.0 / (1.0 + np.exp(-p.astype(np.float64)))).astype(np.float32)
        counts = confusion_counts(y_true, p, self._thresholds, sample_weight=sample_weight,
                                  multi_label=self.multi_label,
                                  label_weights=None if self.multi_label else self.label_weights,
                                  evenly=self._evenly)
        if self.true_positives is None:  # multi_label: shape known from the first batch
            for c in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
                setattr(self, c, np.zeros_like(counts["tp"]))
        if self.true_positives.shape != counts["tp"].shape:
            raise ValueError(f"AUC: this batch has {counts['tp'].shape[1:]} labels, earlier "
                             f"batches {self.true_positives.shape[1:]}")
        self.true_positives = self.true_positives + counts["tp"]
        self.false_positives = self.false_positives + counts["fp"]
        self.true_negatives = self.true_negatives + counts["tn"]
        self.false_negatives = self.false_negatives + counts["fn"]

    def _average(self, by_threshold: np.ndarray) -> float:
        if not self.multi_label:
            return float(np.sum(by_threshold))
        by_label = np.sum(by_threshold, axis=0)
        if self.label_weights is None:
            return float(np.mean(by_label))
        return float(_divide_no_nan(np.sum(by_label * self.label_weights),
                                    np.sum(self.label_weights)))

    def _interpolate_pr_auc(self) -> float:
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        with np.errstate(divide="ignore"):
            log_ratio = np.log(np.where(ratio > 0, ratio, 1.0))
        inc = _divide_no_nan(slope * (dtp + intercept * log_ratio),
                             np.maximum(tp[1:] + fn[1:], 0))
        return self._average(inc)

    def result(self) -> float:
        """The area under the chosen curve (0 before any update)."""
        if self.true_positives is None:
            return 0.0
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc()
        tp, fp, tn, fn = (self.true_positives, self.false_positives, self.true_negatives,
                          self.false_negatives)
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _divide_no_nan(tp, tp + fp)
        else:  # PRGAIN
            scale = _divide_no_nan(tp + fn, tn + fp)
            rg = 1.0 - scale * _divide_no_nan(fn, tp)
            pg = 1.0 - scale * _divide_no_nan(fp, tp)
            rg = np.maximum(np.where(tp == 0, 0.0, rg), 0.0)
            pg = np.where(tp == 0, 1.0, pg)
            x, y = rg, pg
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return self._average((x[:-1] - x[1:]) * heights)

    def get_config(self) -> Dict[str, Any]:
        config: Dict[str, Any] = {
            **super().get_config(), "num_thresholds": self.num_thresholds, "curve": self.curve,
            "summation_method": self.summation_method, "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else
            [float(v) for v in self.label_weights],
            "from_logits": self._from_logits}
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config
