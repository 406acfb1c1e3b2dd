"""compile / fit / evaluate / predict for models with one or several inputs and outputs.

:class:`Trainer` is the training loop shared by ``Sequential`` and functional ``Model``
(Keras 3's ``Trainer``). A model provides four things: ``input_names`` and ``output_names``,
the declared input shapes (``_input_specs``), ``_forward_lists(xs, training, need_grad)`` ->
``(outputs, masks)`` and ``_backward_lists(douts)``.

Training step (as Keras 3 ``train_step``): forward with ``training=True`` keeping caches; each
output's loss and ``dL/dy_pred`` from its compiled loss (masked as Keras), scaled by its loss
weight; backward; optimizer update; then the loss trackers (weighted by batch size) and the
compiled metrics on that forward's predictions.

Losses and metrics per output follow Keras 3 (``trainers/compile_utils.py``): one loss for
every output, or a list (one per output) or a dict keyed by output name; ``loss_weights``
likewise; metrics: a list for a single output, else a list with one entry per output or a
dict. With several losses the logs also hold ``<output>_loss`` (unweighted), and metrics of a
multi-output model are named ``<output>_<metric>``.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import backend
from . import callbacks as callbacks_mod
from . import constraints as constraints_mod
from . import data_adapter
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from . import regularizers as regularizers_mod
from . import sparse_grad

__all__ = ["Trainer"]

Arrays = List[np.ndarray]


def _per_output(arg: Any, names: Sequence[str], what: str, default: Any) -> List[Any]:
    """``arg`` (one value, a list with one entry per output, or a dict by output name) ->
    one entry per output."""
    n = len(names)
    if isinstance(arg, dict):
        unknown = sorted(set(arg) - set(names))
        if unknown:
            raise ValueError(f"compile: `{what}` has keys {unknown} that are not outputs of the "
                             f"model; the outputs are {list(names)}")
        return [arg.get(name, default) for name in names]
    if isinstance(arg, (list, tuple)):
        if len(arg) != n:
            raise ValueError(f"compile: `{what}` has {len(arg)} entries but the model has {n} "
                             f"output(s) {list(names)}")
        return list(arg)
    return [arg] * n


def _is_one_metric(m: Any) -> bool:
    """One metric identifier (not a list / dict of them)."""
    return (isinstance(m, (str, metrics_mod.Metric))
            or (isinstance(m, dict) and "class_name" in m)  # a metric config
            or (callable(m) and not isinstance(m, (list, tuple, dict))))


class Trainer:
    """The training loop (see the module docstring). Mixed into ``Model``."""

    # -- what a model provides ----------------------------------------------------------
    input_names: List[str]
    output_names: List[str]

    def _input_specs(self) -> List[Tuple[Tuple[Optional[int], ...], Optional[str]]]:
        """``(batch shape, dtype)`` of each input."""
        raise NotImplementedError

    def _forward_lists(self, xs: Arrays, training: bool, need_grad: bool
                       ) -> Tuple[List[np.ndarray], List[Optional[np.ndarray]]]:
        raise NotImplementedError

    def _backward_lists(self, douts: List[Optional[np.ndarray]]) -> None:
        raise NotImplementedError

    def _structure_outputs(self, outs: List[np.ndarray]) -> Any:
        """Model outputs as the user declared them (one array, a list or a dict)."""
        return outs[0] if len(outs) == 1 else outs

    def _init_trainer(self) -> None:
        self.optimizer: Optional[optimizers_mod.Optimizer] = None
        self.loss: Any = None
        self.compiled = False
        self.stop_training = False
        self.history: Optional[callbacks_mod.History] = None
        self._losses: List[Optional[losses_mod.Loss]] = []
        self._loss_weights: List[float] = []
        self._metric_ids: List[List[Any]] = []
        self._weighted_metric_ids: List[List[Any]] = []
        self._weighted_metric_names: set = set()
        self._metrics: Optional[List[Tuple[int, metrics_mod.Metric, str]]] = None
        self._compile_args: Dict[str, Any] = {}

    # -- compile ------------------------------------------------------------------------
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, loss_weights: Any = None,
                metrics: Any = None, weighted_metrics: Any = None, **kwargs: Any) -> None:
        """Configure training: optimizer (name or object), loss(es), loss weights, metrics.

        ``metrics`` / ``weighted_metrics``: names, Metric objects or classes, config dicts or
        functions ``(y_true, y_pred) -> per-sample values`` (see :func:`rnnkit.metrics.get`);
        weighted metrics also receive the sample weights of ``fit``/``evaluate``.
        ``run_eagerly``, ``jit_compile`` and ``steps_per_execution`` are accepted and have no
        effect: rnnkit always runs eagerly on its own kernels, one batch per step.
        """
        spe = kwargs.pop("steps_per_execution", 1)
        if not isinstance(spe, (int, np.integer)) or isinstance(spe, bool) or spe <= 0:
            raise ValueError(f"compile: `steps_per_execution` must be a positive int, got {spe!r}")
        for flag in ("run_eagerly", "jit_compile"):
            value = kwargs.pop(flag, None)
            if value not in (None, True, False, "auto"):
                raise ValueError(f"compile: `{flag}` must be True, False, 'auto' or None, got "
                                 f"{value!r}")
        unsupported = {k for k, v in kwargs.items() if v not in (None, False, "auto")}
        if unsupported:
            raise ValueError(f"compile: unsupported argument(s) {sorted(unsupported)}")
        if loss is None:
            raise ValueError("compile: `loss` is required (e.g. 'mse')")
        names = self.output_names
        per_loss = _per_output(loss, names, "loss", None)
        if all(lo is None for lo in per_loss):
            raise ValueError("compile: `loss` gives no output a loss")
        self._losses = [None if lo is None else losses_mod.get(lo) for lo in per_loss]
        weights = _per_output(loss_weights, names, "loss_weights", 1.0)
        for name, w in zip(names, weights):
            if w is None:
                continue
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
                raise ValueError(f"compile: the loss weight of output {name!r} must be a finite "
                                 f"number, got {w!r}")
        self._loss_weights = [1.0 if w is None else float(w) for w in weights]
        self._metric_ids = self._resolve_metric_ids(metrics)
        self._weighted_metric_ids = self._resolve_metric_ids(weighted_metrics)
        for ids in self._metric_ids + self._weighted_metric_ids:
            for m in ids:
                if isinstance(m, (str, dict)):
                    metrics_mod.get(m)  # fail early on unknown names / bad configs
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = self._losses[0] if len(self._losses) == 1 else self._losses
        self._compile_args = {"loss": loss, "loss_weights": loss_weights, "metrics": metrics,
                              "weighted_metrics": weighted_metrics}
        self._metrics = None
        self.compiled = True

    def _resolve_metric_ids(self, metrics: Any) -> List[List[Any]]:
        names = self.output_names
        if metrics is None:
            return [[] for _ in names]
        if _is_one_metric(metrics):
            metrics = [metrics]
        if len(names) == 1:
            flat = metrics.get(names[0], []) if isinstance(metrics, dict) else metrics
            flat = [flat] if _is_one_metric(flat) else flat
            return [[m for entry in flat for m in (entry if isinstance(entry, (list, tuple))
                                                   else [entry]) if m is not None]]
        if isinstance(metrics, (list, tuple)) and len(metrics) != len(names):
            raise ValueError(f"compile: for a model with {len(names)} outputs {list(names)}, "
                             "`metrics` must be a dict keyed by output name or a list with one "
                             f"entry (a metric or a list of metrics) per output; got {metrics!r}")
        per = _per_output(metrics, names, "metrics", None)
        return [[] if e is None else ([e] if _is_one_metric(e) else list(e)) for e in per]

    def _require_compiled(self, where: str) -> None:
        if not self.compiled:
            raise RuntimeError(f"{where}: you must compile() the model first")

    def _get_metrics(self, ys: Arrays, y_preds: Arrays) -> List[Tuple[int, metrics_mod.Metric, str]]:
        if self._metrics is None:
            self._metrics = self._make_metrics(ys, y_preds)
        return self._metrics

    def _make_metrics(self, ys: Arrays, y_preds: Arrays) -> List[Tuple[int, metrics_mod.Metric, str]]:
        """``(output index, metric, log name)`` for the metrics, then the weighted metrics.

        Names as Keras's ``CompileMetrics.result``: ``<output>_`` prefix with several outputs;
        a repeated name gets ``_1``, ``_2``...; a weighted metric whose name is taken becomes
        ``weighted_<name>`` (then ``_1``...). Weighted ones are remembered by name."""
        out: List[Tuple[int, metrics_mod.Metric, str]] = []
        counts: Dict[str, int] = {}
        multi = len(self.output_names) > 1
        self._weighted_metric_names = set()
        for weighted, id_lists in ((False, self._metric_ids), (True, self._weighted_metric_ids)):
            for i, ids in enumerate(id_lists):
                prefix = f"{self.output_names[i]}_" if multi else ""
                for m in ids:
                    metric = metrics_mod.get(m, ys[i], y_preds[i], self._losses[i])
                    name = prefix + metric.name
                    if name in counts and weighted:
                        name = f"{prefix}weighted_{metric.name}"
                    if name in counts:
                        counts[name] += 1
                        name = f"{name}_{counts[name] - 1}"
                    else:
                        counts[name] = 1
                    if weighted:
                        self._weighted_metric_names.add(name)
                    out.append((i, metric, name))
        return out

    def _update_metrics(self, metrics: List[Tuple[int, metrics_mod.Metric, str]], ys: Arrays,
                        y_preds: Arrays, masks: List[Optional[np.ndarray]],
                        sample_weights: Optional[List[Optional[np.ndarray]]] = None) -> None:
        """Update every compiled metric on one batch; only the weighted metrics get
        ``sample_weights`` (one array or None per output); masks reach all of them."""
        for i, m, name in metrics:
            sw = None
            if sample_weights is not None and name in self._weighted_metric_names:
                sw = sample_weights[i]
            metrics_mod.update_metric(m, ys[i], y_preds[i], sample_weight=sw, mask=masks[i])

    @property
    def metrics_names(self) -> List[str]:
        """``["loss", <per-output losses>..., <metric names>...]``."""
        return ["loss"] + self._output_loss_names() + [n for _, _, n in (self._metrics or [])]

    def _output_loss_names(self) -> List[str]:
        named = [f"{n}_loss" for n, lo in zip(self.output_names, self._losses) if lo is not None]
        return named if len(named) > 1 else []

    # -- data ---------------------------------------------------------------------------
    def _as_list(self, data: Any, names: Sequence[str], arg: str, where: str) -> Arrays:
        n = len(names)
        if isinstance(data, dict):
            missing = [k for k in names if k not in data]
            if missing:
                raise ValueError(f"{where}: `{arg}` has no entry for {missing} (the model's "
                                 f"{'inputs' if arg.startswith('x') else 'outputs'} are "
                                 f"{list(names)}; got keys {sorted(map(str, data))})")
            extra = sorted(set(map(str, data)) - set(names))
            if extra:
                raise ValueError(f"{where}: `{arg}` has keys {extra} that are not "
                                 f"{'inputs' if arg.startswith('x') else 'outputs'} of the "
                                 f"model ({list(names)})")
            items = [data[k] for k in names]
        elif isinstance(data, (list, tuple)) and n > 1:
            if len(data) != n:
                raise ValueError(f"{where}: the model has {n} "
                                 f"{'inputs' if arg.startswith('x') else 'outputs'} "
                                 f"{list(names)} but `{arg}` has {len(data)} entries")
            items = list(data)
        elif n > 1:
            raise ValueError(f"{where}: the model has {n} "
                             f"{'inputs' if arg.startswith('x') else 'outputs'} {list(names)}; "
                             f"pass `{arg}` as a list or a dict keyed by those names")
        else:
            if (isinstance(data, (list, tuple)) and len(data) > 1
                    and all(isinstance(d, np.ndarray) for d in data)):
                raise ValueError(f"{where}: the model takes a single "
                                 f"{'input' if arg.startswith('x') else 'output'} array, "
                                 f"got a list of {len(data)} arrays as `{arg}`")
            if isinstance(data, (list, tuple)) and len(data) == 1 and isinstance(data[0], np.ndarray):
                data = data[0]
            items = [data]
        out = []
        for k, item in zip(names, items):
            if item is None:
                raise ValueError(f"{where}: `{arg}` is missing for {k!r}")
            a = np.asarray(item)
            if a.dtype == object:
                raise TypeError(f"{where}: `{arg}` for {k!r} must be a numeric array")
            out.append(a)
        return out

    def _check_x(self, x: Any, where: str) -> Arrays:
        if x is None:
            raise ValueError(f"{where}: `x` is required")
        xs = self._as_list(x, self.input_names, "x", where)
        specs = self._input_specs()
        for name, a, (shape, _) in zip(self.input_names, xs, specs):
            ok = a.ndim == len(shape) and all(e is None or e == d
                                              for e, d in zip(shape[1:], a.shape[1:]))
            if not ok:
                label = "`x`" if len(xs) == 1 else f"input {name!r}"
                raise ValueError(f"{where}: {label} has shape {a.shape}, but the model expects "
                                 f"{tuple(shape)} (None = any size)")
        counts = {a.shape[0] for a in xs}
        if len(counts) > 1:
            raise ValueError(f"{where}: the inputs have different numbers of samples "
                             f"{[a.shape[0] for a in xs]}")
        return xs

    def _check_xy(self, xs: Arrays, y: Any, where: str) -> Arrays:
        if y is None:
            raise ValueError(f"{where}: `y` is required")
        ys = self._as_list(y, self.output_names, "y", where)
        n = xs[0].shape[0]
        for name, a in zip(self.output_names, ys):
            if a.ndim == 0 or a.shape[0] != n:
                label = "`y`" if len(ys) == 1 else f"`y` for output {name!r}"
                raise ValueError(f"{where}: `x` has {n} samples but {label} has shape {a.shape}")
        return ys

    # -- one step -----------------------------------------------------------------------
    def _losses_and_grads(self, ys: Arrays, y_preds: Arrays, masks: List[Optional[np.ndarray]],
                          sws: Optional[List[Optional[np.ndarray]]] = None
                          ) -> Tuple[float, List[float], List[Optional[np.ndarray]]]:
        total, parts, douts = 0.0, [], []
        sws = sws or [None] * len(ys)
        for lo, w, y, yp, m, sw in zip(self._losses, self._loss_weights, ys, y_preds, masks, sws):
            if lo is None:
                douts.append(None)
                continue
            value, dy = lo.value_and_grad(y, yp, sample_weight=sw, mask=m)
            parts.append(float(value))
            total += w * float(value)
            douts.append(dy if w == 1.0 else dy * np.asarray(w, dtype=dy.dtype))
        return total, parts, douts

    def _clear_grads(self) -> None:
        for w in self.weights:  # type: ignore[attr-defined]
            w.grad = None

    def _train_batch(self, xb: Arrays, yb: Arrays, trackers: List[metrics_mod.Mean],
                     sws: Optional[List[Optional[np.ndarray]]] = None) -> None:
        with regularizers_mod.collect_activity() as activity:
            y_preds, masks = self._forward_lists(xb, True, True)
        total, parts, douts = self._losses_and_grads(yb, y_preds, masks, sws)
        self._clear_grads()
        with sparse_grad.collect_rows():  # an Embedding's gradient may be its touched rows
            self._backward_lists(douts)
        tw = self.trainable_weights  # type: ignore[attr-defined]
        # Keras: the total loss includes the regularization penalties (before the update).
        total += activity.total + regularizers_mod.weight_penalties(tw)
        grads = [w.grad if w.grad is not None else np.zeros_like(w.value) for w in tw]
        self.optimizer.apply(grads, [w.value for w in tw])  # type: ignore[union-attr]
        constraints_mod.apply_constraints(tw)  # Keras: after optimizer.apply
        self._update_trackers(trackers, total, parts, len(xb[0]))
        self._update_metrics(self._get_metrics(yb, y_preds), yb, y_preds, masks, sws)

    def _new_trackers(self) -> List[metrics_mod.Mean]:
        return [metrics_mod.Mean(n) for n in ["loss"] + self._output_loss_names()]

    def _update_trackers(self, trackers: List[metrics_mod.Mean], total: float,
                         parts: List[float], batch: int) -> None:
        trackers[0].update_state(total, sample_weight=batch)
        if len(trackers) > 1:
            for t, v in zip(trackers[1:], parts):
                t.update_state(v, sample_weight=batch)

    def _logs(self, trackers: List[metrics_mod.Mean],
              metrics: Optional[List[Tuple[int, metrics_mod.Metric, str]]] = None) -> Dict[str, float]:
        metrics = self._metrics if metrics is None else metrics
        logs = {n: metrics_mod.result_value(m) for _, m, n in (metrics or [])}
        for t in trackers:
            logs[t.name] = t.result()
        # Keras 3 (utils.python_utils.pythonify_logs) hands logs over in sorted key order:
        # History keys and the progress-bar columns read e.g. loss, mse, val_loss, val_mse.
        return dict(sorted(logs.items()))

    def loss_and_gradients(self, x: Any, y: Any, training: bool = False
                           ) -> Tuple[float, List[np.ndarray]]:
        """rnnkit extension: the compiled (total) loss on ``(x, y)`` and its gradient w.r.t.
        every trainable weight (``trainable_weights`` order); weights are not changed."""
        self._require_compiled("loss_and_gradients")
        xs = self._check_x(x, "loss_and_gradients")
        ys = self._check_xy(xs, y, "loss_and_gradients")
        with regularizers_mod.collect_activity() as activity:
            y_preds, masks = self._forward_lists(xs, training, True)
        total, _, douts = self._losses_and_grads(ys, y_preds, masks)
        self._clear_grads()
        self._backward_lists(douts)
        total += activity.total + regularizers_mod.weight_penalties(
            self.trainable_weights)  # type: ignore[attr-defined]
        return float(total), [w.grad if w.grad is not None else np.zeros_like(w.value)
                              for w in self.trainable_weights]  # type: ignore[attr-defined]

    # -- data sources -------------------------------------------------------------------
    def _check_batch_size(self, batch_size: Any, where: str, default: int = 32) -> int:
        batch_size = default if batch_size is None else batch_size
        if (not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool)
                or batch_size <= 0):
            raise ValueError(f"{where}: `batch_size` must be a positive int, got {batch_size!r}")
        return int(batch_size)

    @staticmethod
    def _check_steps(steps: Any, name: str, where: str) -> Optional[int]:
        if steps is None:
            return None
        if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps <= 0:
            raise ValueError(f"{where}: `{name}` must be a positive int or None, got {steps!r}")
        return int(steps)

    def _source(self, x: Any, y: Any, sample_weight: Any, class_weight: Any, batch_size: int,
                shuffle: Any, where: str, need_y: bool) -> Any:
        """An adapter over arrays (checked here once) or over a dataset/generator (each of
        its batches is checked as it arrives)."""
        if x is None:
            raise ValueError(f"{where}: `x` is required")
        if data_adapter.is_array_like(x):
            xs = self._check_x(x, where)
            ys = self._check_xy(xs, y, where) if (need_y or y is not None) else None
            sws = self._sample_weights(sample_weight, class_weight, ys, where)
            return data_adapter.ArrayAdapter(xs, ys, sws, batch_size, shuffle)
        for arg, value in (("y", y), ("sample_weight", sample_weight)):
            if value is not None:
                raise ValueError(f"{where}: `{arg}` must not be given when `x` is a dataset or "
                                 "generator (its batches carry the targets and weights)")
        return data_adapter.get_adapter(x, where, shuffle)

    def _batch(self, batch: Any, class_weight: Any, where: str, need_y: bool, checked: bool
               ) -> Tuple[Arrays, Optional[Arrays], Optional[List[Optional[np.ndarray]]]]:
        xb, yb, swb = batch
        if checked:  # an ArrayAdapter batch: lists already checked as a whole
            return xb, yb, swb
        xs = self._check_x(xb, where)
        if yb is None and need_y:
            raise ValueError(f"{where}: the dataset's batches must be (x, y) or (x, y, "
                             "sample_weight); got a batch without targets")
        ys = None if yb is None else self._check_xy(xs, yb, where)
        return xs, ys, self._sample_weights(swb, class_weight, ys, where)

    def _sample_weights(self, sample_weight: Any, class_weight: Any, ys: Optional[Arrays],
                        where: str) -> Optional[List[Optional[np.ndarray]]]:
        """One weight array (or None) per output: ``(N,)`` per sample, or ``(N, T)`` per
        timestep for sequence outputs; ``class_weight`` becomes per-sample weights."""
        if class_weight is not None:
            if sample_weight is not None:
                raise ValueError(f"{where}: you cannot use `class_weight` and `sample_weight` "
                                 "at the same time")
            if ys is None or len(ys) != 1:
                raise ValueError(f"{where}: `class_weight` is only supported for models with "
                                 "a single output")
            return [data_adapter.class_weight_to_sample_weights(ys[0], class_weight)]
        if sample_weight is None:
            return None
        if ys is None:
            raise ValueError(f"{where}: `sample_weight` needs targets `y`")
        names = self.output_names
        if isinstance(sample_weight, dict):
            unknown = sorted(set(map(str, sample_weight)) - set(names))
            if unknown:
                raise ValueError(f"{where}: `sample_weight` has keys {unknown} that are not "
                                 f"outputs of the model ({list(names)})")
            per = [sample_weight.get(n) for n in names]
        elif isinstance(sample_weight, (list, tuple)) and len(names) > 1:
            if len(sample_weight) != len(names):
                raise ValueError(f"{where}: `sample_weight` has {len(sample_weight)} entries but "
                                 f"the model has {len(names)} outputs {list(names)}")
            per = list(sample_weight)
        else:
            per = [sample_weight] * len(names)  # one array weighs every output (Keras)
        out: List[Optional[np.ndarray]] = []
        for name, sw, y in zip(names, per, ys):
            if sw is None:
                out.append(None)
                continue
            a = np.asarray(sw)
            if a.dtype == object or not (np.issubdtype(a.dtype, np.floating)
                                         or np.issubdtype(a.dtype, np.integer)
                                         or a.dtype == bool):
                raise TypeError(f"{where}: `sample_weight` for {name!r} must be numeric")
            a = a.astype(backend.floatx())
            if a.ndim == 0 or a.ndim > y.ndim or a.shape != y.shape[:a.ndim]:
                raise ValueError(f"{where}: `sample_weight` for {name!r} has shape {a.shape}; "
                                 f"expected (samples,) = {y.shape[:1]} or per timestep "
                                 f"{y.shape[:2]} (targets have shape {y.shape})")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{where}: `sample_weight` for {name!r} holds NaN or inf")
            out.append(a)
        return out

    # -- fit ----------------------------------------------------------------------------
    def fit(self, x: Any = None, y: Any = None, batch_size: Optional[int] = None, epochs: int = 1,
            verbose: Union[int, str] = "auto", callbacks: Optional[Sequence[Any]] = None,
            validation_split: float = 0.0, validation_data: Optional[Any] = None,
            shuffle: Union[bool, str] = True, class_weight: Optional[Dict[int, float]] = None,
            sample_weight: Any = None, initial_epoch: int = 0,
            steps_per_epoch: Optional[int] = None, validation_steps: Optional[int] = None,
            validation_batch_size: Optional[int] = None, validation_freq: int = 1,
            **kwargs: Any) -> callbacks_mod.History:
        """Train for ``epochs`` epochs; returns the :class:`~rnnkit.callbacks.History`.

        ``x``/``y``: arrays (lists / dicts keyed by input / output name for models with
        several), or ``x`` a ``PyDataset``, generator or iterable of ``(x, y[, sample_weight])``
        batches. ``sample_weight`` per sample ``(N,)`` or per timestep ``(N, T)``;
        ``class_weight`` ``{class: weight}`` (single output). ``validation_split`` holds out
        the last fraction of arrays before shuffling (Keras); ``validation_data`` is
        ``(x, y)``, ``(x, y, sample_weight)`` or a dataset, evaluated every
        ``validation_freq`` epochs. ``steps_per_epoch`` batches make an epoch (the next epoch
        continues the same pass, as Keras). The reported epoch loss is the
        batch-size-weighted mean of batch losses.
        """
        if kwargs:
            raise ValueError(f"fit: unsupported argument(s) {sorted(kwargs)}")
        self._require_compiled("fit")
        batch_size = self._check_batch_size(batch_size, "fit")
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"fit: `epochs` must be a non-negative int, got {epochs!r}")
        steps_per_epoch = self._check_steps(steps_per_epoch, "steps_per_epoch", "fit")
        validation_steps = self._check_steps(validation_steps, "validation_steps", "fit")
        if (not isinstance(validation_freq, (int, np.integer)) or isinstance(validation_freq, bool)
                or validation_freq <= 0):
            raise ValueError(f"fit: `validation_freq` must be a positive int, got "
                             f"{validation_freq!r}")
        verbose = 1 if verbose == "auto" else int(verbose)
        source = self._source(x, y, sample_weight, class_weight, batch_size, shuffle, "fit",
                              need_y=True)
        arrays = isinstance(source, data_adapter.ArrayAdapter)
        val: Any = None
        if validation_data is not None:
            if isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3) \
                    and data_adapter.is_array_like(validation_data[0]):
                vx, vy = validation_data[0], validation_data[1]
                vsw = validation_data[2] if len(validation_data) == 3 else None
                val = self._source(vx, vy, vsw, None, validation_batch_size or batch_size, False,
                                   "fit (validation_data)", need_y=True)
            elif isinstance(validation_data, (tuple, list)):
                raise ValueError("fit: `validation_data` must be (x_val, y_val), (x_val, y_val, "
                                 "sample_weight_val) or a dataset")
            else:
                val = self._source(validation_data, None, None, None, 1, False,
                                   "fit (validation_data)", need_y=True)
        elif validation_split:
            if not arrays:
                raise ValueError("fit: `validation_split` is only supported for arrays; pass "
                                 "`validation_data` with a dataset or generator")
            if not 0 < validation_split < 1:
                raise ValueError(f"fit: `validation_split` must be in (0, 1), got {validation_split}")
            n_all = source.num_samples
            split = int(math.floor(n_all * (1.0 - validation_split)))
            if split == 0 or split == n_all:
                raise ValueError(f"fit: validation_split={validation_split} leaves an empty "
                                 f"training or validation set for {n_all} samples")
            cut = (lambda arrs, sl: None if arrs is None else
                   [None if a is None else a[sl] for a in arrs])
            head, tail = slice(None, split), slice(split, None)
            val = data_adapter.ArrayAdapter(cut(source.xs, tail), cut(source.ys, tail),
                                            cut(source.sws, tail),
                                            validation_batch_size or batch_size, False)
            source = data_adapter.ArrayAdapter(cut(source.xs, head), cut(source.ys, head),
                                               cut(source.sws, head), batch_size, shuffle)
        epoch_iter = data_adapter.EpochIterator(source, steps_per_epoch)
        history = callbacks_mod.History()
        # Keras order: the user's callbacks, then History, then the progress bar (so it shows
        # a learning_rate the others added to the logs).
        cbs: List[callbacks_mod.Callback] = list(callbacks or []) + [history]
        if verbose:
            cbs.append(callbacks_mod.ProgbarLogger())
        cblist = callbacks_mod.CallbackList(cbs, self, {"epochs": epochs,
                                                         "steps": epoch_iter.steps,
                                                         "verbose": verbose})
        self.stop_training = False
        self._initial_epoch = initial_epoch  # BackupAndRestore may move it in on_train_begin
        cblist.on_train_begin()
        for epoch in range(self._initial_epoch, epochs):
            cblist.on_epoch_begin(epoch)
            for _, m, _ in self._metrics or []:
                m.reset_state()
            trackers = self._new_trackers()
            for step, batch in enumerate(epoch_iter.epoch()):
                xb, yb, swb = self._batch(batch, class_weight, "fit", True, arrays)
                cblist.on_train_batch_begin(step)
                self._train_batch(xb, yb, trackers, swb)  # type: ignore[arg-type]
                cblist.on_train_batch_end(step, self._logs(trackers))
            logs = self._logs(trackers)
            if val is not None and (epoch + 1) % validation_freq == 0:
                vlogs = self._evaluate_source(val, validation_steps, "fit (validation_data)")
                logs.update({"val_" + k: v for k, v in vlogs.items()})
            cblist.on_epoch_end(epoch, logs)
            if self.stop_training or epoch_iter.exhausted:
                break
        if epochs > 0 and self.optimizer is not None:
            # Keras: e.g. replace the weights by their EMA (use_ema) once training ends.
            self.optimizer.finalize_variable_values([w.value for w in self.trainable_weights])  # type: ignore[attr-defined]
        cblist.on_train_end()
        return history

    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                       class_weight: Optional[Dict[int, float]] = None,
                       return_dict: bool = False) -> Any:
        """One optimizer step on one batch; returns the loss (and metrics) of that batch."""
        self._require_compiled("train_on_batch")
        xs = self._check_x(x, "train_on_batch")
        ys = self._check_xy(xs, y, "train_on_batch")
        sws = self._sample_weights(sample_weight, class_weight, ys, "train_on_batch")
        for _, m, _ in self._metrics or []:
            m.reset_state()
        trackers = self._new_trackers()
        self._train_batch(xs, ys, trackers, sws)
        return self._format_result(self._logs(trackers), return_dict)

    # -- evaluate / predict -------------------------------------------------------------
    def _evaluate_source(self, source: Any, steps: Optional[int], where: str,
                         progbar: Any = None) -> Dict[str, float]:
        trackers = self._new_trackers()
        # Evaluation metrics are fresh copies so the training metrics are untouched.
        metrics: Optional[List[Tuple[int, metrics_mod.Metric, str]]] = None
        arrays = isinstance(source, data_adapter.ArrayAdapter)
        for step, batch in enumerate(data_adapter.EpochIterator(source, steps).epoch()):
            xb, yb, swb = self._batch(batch, None, where, True, arrays)
            with regularizers_mod.collect_activity() as activity:
                y_preds, masks = self._forward_lists(xb, False, False)
            if metrics is None:
                metrics = self._make_metrics(yb, y_preds)  # type: ignore[arg-type]
                for _, m, _ in metrics:  # Metric objects given to compile are shared: start
                    m.reset_state()      # from zero as Keras's evaluate does
                if self._metrics is None:
                    self._metrics = self._make_metrics(yb, y_preds)  # type: ignore[arg-type]
            sws = swb or [None] * len(y_preds)
            parts = []
            # Keras's test_step loss includes the regularization penalties too.
            total = activity.total + regularizers_mod.weight_penalties(
                self.trainable_weights, add_grads=False)  # type: ignore[attr-defined]
            for lo, w, y, yp, m, sw in zip(self._losses, self._loss_weights, yb,  # type: ignore
                                           y_preds, masks, sws):
                if lo is not None:
                    v = float(lo(y, yp, sample_weight=sw, mask=m))
                    parts.append(v)
                    total += w * v
            self._update_trackers(trackers, total, parts, len(xb[0]))
            self._update_metrics(metrics, yb, y_preds, masks, swb)  # type: ignore[arg-type]
            if progbar is not None:
                progbar.update(step + 1, [])
        return self._logs(trackers, metrics or [])

    def _format_result(self, logs: Dict[str, float], return_dict: bool) -> Any:
        if return_dict:
            return logs
        names = self.metrics_names
        values = [logs[n] for n in names if n in logs]
        return values[0] if len(values) == 1 else values

    def evaluate(self, x: Any = None, y: Any = None, batch_size: Optional[int] = None,
                 verbose: Union[int, str] = "auto", sample_weight: Any = None,
                 steps: Optional[int] = None, callbacks: Optional[Sequence[Any]] = None,
                 return_dict: bool = False, **kwargs: Any) -> Any:
        """Loss (and metrics) on ``(x, y)`` (or a dataset) in inference mode: a float, or a
        list in :attr:`metrics_names` order (a dict with ``return_dict=True``)."""
        if kwargs:
            raise ValueError(f"evaluate: unsupported argument(s) {sorted(kwargs)}")
        self._require_compiled("evaluate")
        batch_size = self._check_batch_size(batch_size, "evaluate")
        steps = self._check_steps(steps, "steps", "evaluate")
        verbose = 1 if verbose == "auto" else int(verbose)
        source = self._source(x, y, sample_weight, None, batch_size, False, "evaluate",
                              need_y=True)
        n_steps = steps or source.num_batches
        bar = callbacks_mod.Progbar(n_steps, verbose=verbose) if verbose and n_steps else None
        logs = self._evaluate_source(source, steps, "evaluate")
        if bar is not None:
            bar.update(n_steps, [(k, v) for k, v in logs.items()])
        return self._format_result(logs, return_dict)

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                      return_dict: bool = False) -> Any:
        """Loss (and metrics) of one batch in inference mode."""
        xs = self._check_x(x, "test_on_batch")
        return self.evaluate(xs if len(xs) > 1 else xs[0], y, batch_size=max(len(xs[0]), 1),
                             sample_weight=sample_weight, verbose=0, return_dict=return_dict)

    def predict(self, x: Any, batch_size: Optional[int] = None,
                verbose: Union[int, str] = "auto", steps: Optional[int] = None,
                callbacks: Optional[Sequence[Any]] = None, **kwargs: Any) -> Any:
        """Outputs for ``x`` (arrays, or a dataset / generator of ``x`` or ``(x, ...)``
        batches) in inference mode, ``batch_size`` (default 32) at a time: one array, or a
        list / dict of arrays for a model with several outputs."""
        if kwargs:
            raise ValueError(f"predict: unsupported argument(s) {sorted(kwargs)}")
        batch_size = self._check_batch_size(batch_size, "predict")
        steps = self._check_steps(steps, "steps", "predict")
        verbose = 1 if verbose == "auto" else int(verbose)
        source = self._source(x, None, None, None, batch_size, False, "predict", need_y=False)
        arrays = isinstance(source, data_adapter.ArrayAdapter)
        chunks = []
        if arrays and source.num_samples == 0:
            chunks.append(self._forward_lists(source.xs, False, False)[0])
        for batch in data_adapter.EpochIterator(source, steps).epoch():
            xb, _, _ = self._batch(batch, None, "predict", False, arrays)
            chunks.append(self._forward_lists(xb, False, False)[0])
        if not chunks:
            raise ValueError("predict: the dataset or generator gave no batches")
        n_steps = len(chunks)
        if verbose:
            callbacks_mod.Progbar(n_steps, verbose=verbose).update(n_steps, [])
        outs = [np.concatenate([c[j] for c in chunks], axis=0) for j in range(len(chunks[0]))]
        return self._structure_outputs(outs)

    def predict_on_batch(self, x: Any) -> Any:
        """Outputs for one batch, no progress bar."""
        return self._structure_outputs(
            self._forward_lists(self._check_x(x, "predict_on_batch"), False, False)[0])
