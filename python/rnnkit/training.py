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
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod

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
        weighted metrics also receive the sample weights of ``fit``/``evaluate``."""
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

    @staticmethod
    def _take(arrays: Arrays, idx: Any) -> Arrays:
        return [a[idx] for a in arrays]

    # -- one step -----------------------------------------------------------------------
    def _losses_and_grads(self, ys: Arrays, y_preds: Arrays, masks: List[Optional[np.ndarray]]
                          ) -> Tuple[float, List[float], List[Optional[np.ndarray]]]:
        total, parts, douts = 0.0, [], []
        for lo, w, y, yp, m in zip(self._losses, self._loss_weights, ys, y_preds, masks):
            if lo is None:
                douts.append(None)
                continue
            value, dy = lo.value_and_grad(y, yp, mask=m)
            parts.append(float(value))
            total += w * float(value)
            douts.append(dy if w == 1.0 else dy * np.asarray(w, dtype=dy.dtype))
        return total, parts, douts

    def _clear_grads(self) -> None:
        for w in self.weights:  # type: ignore[attr-defined]
            w.grad = None

    def _train_batch(self, xb: Arrays, yb: Arrays, trackers: List[metrics_mod.Mean]) -> None:
        y_preds, masks = self._forward_lists(xb, True, True)
        total, parts, douts = self._losses_and_grads(yb, y_preds, masks)
        self._clear_grads()
        self._backward_lists(douts)
        tw = self.trainable_weights  # type: ignore[attr-defined]
        grads = [w.grad if w.grad is not None else np.zeros_like(w.value) for w in tw]
        self.optimizer.apply(grads, [w.value for w in tw])  # type: ignore[union-attr]
        self._update_trackers(trackers, total, parts, len(xb[0]))
        self._update_metrics(self._get_metrics(yb, y_preds), yb, y_preds, masks)

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
        y_preds, masks = self._forward_lists(xs, training, True)
        total, _, douts = self._losses_and_grads(ys, y_preds, masks)
        self._clear_grads()
        self._backward_lists(douts)
        return float(total), [w.grad if w.grad is not None else np.zeros_like(w.value)
                              for w in self.trainable_weights]  # type: ignore[attr-defined]

    # -- fit ----------------------------------------------------------------------------
    def fit(self, x: Any = None, y: Any = None, batch_size: Optional[int] = None, epochs: int = 1,
            verbose: Union[int, str] = "auto", callbacks: Optional[Sequence[Any]] = None,
            validation_split: float = 0.0, validation_data: Optional[Tuple[Any, Any]] = None,
            shuffle: Union[bool, str] = True, initial_epoch: int = 0,
            validation_batch_size: Optional[int] = None, **kwargs: Any) -> callbacks_mod.History:
        """Train for ``epochs`` epochs; returns the :class:`~rnnkit.callbacks.History`.

        ``x``/``y``: arrays, or lists / dicts keyed by input / output name for models with
        several. ``validation_split`` holds out the last fraction before shuffling (Keras);
        the reported epoch loss is the batch-size-weighted mean of batch losses.
        """
        if kwargs:
            raise ValueError(f"fit: unsupported argument(s) {sorted(kwargs)}")
        self._require_compiled("fit")
        xs = self._check_x(x, "fit")
        ys = self._check_xy(xs, y, "fit")
        batch_size = 32 if batch_size is None else batch_size
        if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"fit: `batch_size` must be a positive int, got {batch_size!r}")
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"fit: `epochs` must be a non-negative int, got {epochs!r}")
        verbose = 1 if verbose == "auto" else int(verbose)
        val: Optional[Tuple[Arrays, Arrays]] = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("fit: `validation_data` must be a tuple (x_val, y_val)")
            vx = self._check_x(validation_data[0], "fit (validation_data)")
            val = (vx, self._check_xy(vx, validation_data[1], "fit (validation_data)"))
        elif validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"fit: `validation_split` must be in (0, 1), got {validation_split}")
            n_all = len(xs[0])
            split = int(math.floor(n_all * (1.0 - validation_split)))
            if split == 0 or split == n_all:
                raise ValueError(f"fit: validation_split={validation_split} leaves an empty "
                                 f"training or validation set for {n_all} samples")
            val = (self._take(xs, slice(split, None)), self._take(ys, slice(split, None)))
            xs, ys = self._take(xs, slice(None, split)), self._take(ys, slice(None, split))
        n = len(xs[0])
        steps = int(math.ceil(n / batch_size))
        history = callbacks_mod.History()
        cbs: List[callbacks_mod.Callback] = []
        if verbose:
            cbs.append(callbacks_mod.ProgbarLogger())
        cbs += list(callbacks or []) + [history]
        cblist = callbacks_mod.CallbackList(cbs, self, {"epochs": epochs, "steps": steps,
                                                         "verbose": verbose})
        self.stop_training = False
        cblist.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            cblist.on_epoch_begin(epoch)
            for _, m, _ in self._metrics or []:
                m.reset_state()
            trackers = self._new_trackers()
            order = backend.rng().permutation(n) if shuffle else np.arange(n)
            for step in range(steps):
                idx = order[step * batch_size:(step + 1) * batch_size]
                cblist.on_train_batch_begin(step)
                self._train_batch(self._take(xs, idx), self._take(ys, idx), trackers)
                cblist.on_train_batch_end(step, self._logs(trackers))
            logs = self._logs(trackers)
            if val is not None:
                vlogs = self._evaluate_arrays(val[0], val[1], validation_batch_size or batch_size)
                logs.update({"val_" + k: v for k, v in vlogs.items()})
            cblist.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cblist.on_train_end()
        return history

    def train_on_batch(self, x: Any, y: Any, return_dict: bool = False) -> Any:
        """One optimizer step on one batch; returns the loss (and metrics) of that batch."""
        self._require_compiled("train_on_batch")
        xs = self._check_x(x, "train_on_batch")
        ys = self._check_xy(xs, y, "train_on_batch")
        for _, m, _ in self._metrics or []:
            m.reset_state()
        trackers = self._new_trackers()
        self._train_batch(xs, ys, trackers)
        return self._format_result(self._logs(trackers), return_dict)

    # -- evaluate / predict -------------------------------------------------------------
    def _evaluate_arrays(self, xs: Arrays, ys: Arrays, batch_size: int) -> Dict[str, float]:
        trackers = self._new_trackers()
        # Evaluation metrics are fresh copies so the training metrics are untouched.
        metrics: Optional[List[Tuple[int, metrics_mod.Metric, str]]] = None
        n = len(xs[0])
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            xb, yb = self._take(xs, sl), self._take(ys, sl)
            y_preds, masks = self._forward_lists(xb, False, False)
            if metrics is None:
                metrics = self._make_metrics(yb, y_preds)
                for _, m, _ in metrics:  # Metric objects given to compile are shared: start
                    m.reset_state()      # from zero as Keras's evaluate does
                if self._metrics is None:
                    self._metrics = self._make_metrics(yb, y_preds)
            parts = []
            total = 0.0
            for lo, w, y, yp, m in zip(self._losses, self._loss_weights, yb, y_preds, masks):
                if lo is not None:
                    v = float(lo(y, yp, mask=m))
                    parts.append(v)
                    total += w * v
            self._update_trackers(trackers, total, parts, len(xb[0]))
            self._update_metrics(metrics, yb, y_preds, masks)
        return self._logs(trackers, metrics or [])

    def _format_result(self, logs: Dict[str, float], return_dict: bool) -> Any:
        if return_dict:
            return logs
        names = self.metrics_names
        values = [logs[n] for n in names if n in logs]
        return values[0] if len(values) == 1 else values

    def evaluate(self, x: Any = None, y: Any = None, batch_size: Optional[int] = None,
                 verbose: Union[int, str] = "auto", return_dict: bool = False,
                 **kwargs: Any) -> Any:
        """Loss (and metrics) on ``(x, y)`` in inference mode: a float, or a list in
        :attr:`metrics_names` order."""
        if kwargs:
            raise ValueError(f"evaluate: unsupported argument(s) {sorted(kwargs)}")
        self._require_compiled("evaluate")
        xs = self._check_x(x, "evaluate")
        ys = self._check_xy(xs, y, "evaluate")
        batch_size = batch_size or 32
        verbose = 1 if verbose == "auto" else int(verbose)
        steps = int(math.ceil(len(xs[0]) / batch_size))
        bar = callbacks_mod.Progbar(steps, verbose=verbose) if verbose else None
        logs = self._evaluate_arrays(xs, ys, batch_size)
        if bar is not None:
            bar.update(steps, [(k, v) for k, v in logs.items()])
        return self._format_result(logs, return_dict)

    def test_on_batch(self, x: Any, y: Any, return_dict: bool = False) -> Any:
        """Loss (and metrics) of one batch in inference mode."""
        xs = self._check_x(x, "test_on_batch")
        return self.evaluate(xs if len(xs) > 1 else xs[0], y, batch_size=max(len(xs[0]), 1),
                             verbose=0, return_dict=return_dict)

    def predict(self, x: Any, batch_size: Optional[int] = None,
                verbose: Union[int, str] = "auto", **kwargs: Any) -> Any:
        """Outputs for ``x`` in inference mode, computed ``batch_size`` (default 32) at a time:
        one array, or a list / dict of arrays for a model with several outputs."""
        if kwargs:
            raise ValueError(f"predict: unsupported argument(s) {sorted(kwargs)}")
        xs = self._check_x(x, "predict")
        batch_size = batch_size or 32
        verbose = 1 if verbose == "auto" else int(verbose)
        n = len(xs[0])
        steps = max(int(math.ceil(n / batch_size)), 1)
        bar = callbacks_mod.Progbar(steps, verbose=verbose) if verbose else None
        chunks = [self._forward_lists(self._take(xs, slice(i, i + batch_size)), False, False)[0]
                  for i in range(0, max(n, 1), batch_size)]
        if bar is not None:
            bar.update(steps, [])
        outs = [np.concatenate([c[j] for c in chunks], axis=0) for j in range(len(chunks[0]))]
        return self._structure_outputs(outs)

    def predict_on_batch(self, x: Any) -> Any:
        """Outputs for one batch, no progress bar."""
        return self._structure_outputs(
            self._forward_lists(self._check_x(x, "predict_on_batch"), False, False)[0])
