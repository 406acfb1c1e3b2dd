"""``Sequential``: a linear stack of layers with Keras 3's compile/fit/evaluate/predict.

Training step (as Keras 3 ``train_step``): forward with ``training=True`` keeping caches,
loss and ``dL/dy_pred`` from the compiled loss (masked as Keras), backward through the layers
in reverse (RNN layers use the kernels' BPTT), optimizer update, then the loss tracker
(weighted by batch size) and compiled metrics on that forward's predictions.
"""
from __future__ import annotations

import math
import shutil
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import backend
from . import callbacks as callbacks_mod
from . import layers as layers_mod
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from . import saving
from .layers.base import InputLayer, KerasTensor, Layer, Weight

__all__ = ["Sequential", "load_model"]


def _readable_size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n_bytes / 1024 < 1:
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.2f} PB"


def _ratio_reduce(total: int, widths: List[int]) -> List[int]:
    """Shrink ``widths`` by ``total`` characters in equal shares (rich's table collapse)."""
    out, remaining, ratio = [], total, len(widths)
    for w in widths:
        cut = min(w, round(remaining / ratio))
        out.append(w - cut)
        remaining -= cut
        ratio -= 1
    return out


@saving.register_model_class
class Sequential(Layer):
    """A linear stack of layers (Keras ``keras.Sequential``).

    Example::

        model = Sequential()
        model.add(SimpleRNN(20, input_shape=(10, 1), return_sequences=True))
        model.add(Dense(1))
        model.compile(loss="mse", optimizer="sgd")
        history = model.fit(x, y, epochs=20, batch_size=8, validation_split=0.1)
    """

    def __init__(self, layers: Optional[Sequence[Layer]] = None, name: Optional[str] = None,
                 trainable: bool = True) -> None:
        super().__init__(name=name or backend.unique_name("sequential"), trainable=trainable)
        self._layers: List[Layer] = []
        self._input_shape: Optional[Tuple[Optional[int], ...]] = None
        self.optimizer: Optional[optimizers_mod.Optimizer] = None
        self.loss: Optional[losses_mod.Loss] = None
        self.compiled = False
        self.stop_training = False
        self.history: Optional[callbacks_mod.History] = None
        self._metric_ids: List[Any] = []
        self._metrics: Optional[List[metrics_mod.Metric]] = None
        for layer in layers or []:
            self.add(layer)

    # -- structure ----------------------------------------------------------------------
    @property
    def layers(self) -> List[Layer]:
        """The layers, in order (the input layer is not listed, as in Keras)."""
        return list(self._layers)

    def add(self, layer: Layer) -> None:
        """Append a layer (an ``Input(...)`` sets the input shape instead)."""
        if isinstance(layer, KerasTensor) and isinstance(layer.layer, InputLayer):
            layer = layer.layer
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError("Sequential.add: an Input must come before any layer")
            self._input_shape = tuple(layer.batch_shape)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: `layer` must be a Layer, got {type(layer).__name__}")
        if getattr(layer, "return_state", False):
            raise ValueError(f"Sequential.add: layer {layer.name!r} has return_state=True; a "
                             "Sequential model needs single-output layers (call the layer "
                             "directly to get its states)")
        if getattr(layer, "merge_mode", "concat") is None:
            raise ValueError("Sequential.add: Bidirectional(merge_mode=None) has two outputs")
        if not self._layers and self._input_shape is None and layer.input_shape_arg is not None:
            self._input_shape = tuple(layer.input_shape_arg)
        self._layers.append(layer)
        if self._input_shape is not None:
            self._build_layers(self._input_shape)

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._layers:
            raise TypeError("There are no layers in the model.")
        return self._layers.pop()

    def _build_layers(self, input_shape: Tuple[Optional[int], ...]) -> None:
        shape: Any = tuple(input_shape)
        for layer in self._layers:
            layer._ensure_built(shape)
            layer.input_shape = shape
            shape = layer.compute_output_shape(shape)
            layer.output_shape = shape
        self.built = bool(self._layers)

    def build(self, input_shape: Optional[Sequence[Optional[int]]] = None) -> None:
        """Create all weights for ``input_shape`` (batch axis included, e.g. ``(None, 10, 1)``)."""
        if input_shape is not None:
            self._input_shape = tuple(input_shape)
        if self._input_shape is None:
            raise ValueError("Sequential.build: pass `input_shape` (e.g. (None, 10, 1)) or add "
                             "an Input/input_shape= first")
        self._build_layers(self._input_shape)

    @property
    def input_shape(self) -> Optional[Tuple[Optional[int], ...]]:  # type: ignore[override]
        """Declared input shape, batch axis first (None when unknown)."""
        return self._input_shape

    @input_shape.setter
    def input_shape(self, value: Any) -> None:
        pass  # set through add/build only

    @property
    def output_shape(self) -> Any:  # type: ignore[override]
        """Output shape of the last layer once built."""
        return self._layers[-1].output_shape if self.built else None

    @output_shape.setter
    def output_shape(self, value: Any) -> None:
        pass

    @property
    def weights(self) -> List[Weight]:
        """All weights in Keras order (layer by layer)."""
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self) -> List[Weight]:
        return [w for layer in self._layers for w in layer.trainable_weights] if self.trainable else []

    @property
    def non_trainable_weights(self) -> List[Weight]:
        if not self.trainable:
            return self.weights
        return [w for layer in self._layers for w in layer.non_trainable_weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set all weights, Keras order; count and every shape are checked first."""
        mine = self.weights
        weights = list(weights)
        if len(weights) != len(mine):
            raise ValueError(f"set_weights: the model has {len(mine)} weight arrays, got "
                             f"{len(weights)}")
        for i, (w, v) in enumerate(zip(mine, weights)):
            if np.shape(v) != w.shape:
                raise ValueError(f"set_weights: weights[{i}] ({w.name}) has shape {w.shape}, "
                                 f"got {np.shape(v)}")
        for w, v in zip(mine, weights):
            w.assign(v)

    def reset_states(self) -> None:
        """Reset the states of every stateful layer."""
        for layer in self._layers:
            if getattr(layer, "stateful", False):
                layer.reset_state()

    reset_state = reset_states

    # -- forward / backward -------------------------------------------------------------
    def _check_x(self, x: Any, where: str) -> np.ndarray:
        if isinstance(x, (list, tuple)) and x and isinstance(x[0], np.ndarray) and len(x) > 1:
            raise ValueError(f"{where}: a Sequential model takes a single input array")
        arr = np.asarray(x)
        if arr.dtype == object:
            raise TypeError(f"{where}: `x` must be a numeric array")
        if self._input_shape is None:
            self.build((None,) + arr.shape[1:])
        exp = self._input_shape
        ok = arr.ndim == len(exp) and all(e is None or e == a for e, a in zip(exp[1:], arr.shape[1:]))
        if not ok:
            raise ValueError(f"{where}: `x` has shape {arr.shape}, but the model expects "
                             f"{tuple(exp)} (None = any size)")
        return arr

    def _forward(self, x: np.ndarray, training: bool, need_grad: bool
                 ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        mask: Optional[np.ndarray] = None
        for layer in self._layers:
            x_in = x
            x = layer.forward(x_in, mask=mask, training=training, need_grad=need_grad)
            mask = layer.compute_mask(x_in, mask)
        return x, mask

    def _backward(self, dy: np.ndarray) -> None:
        for layer in reversed(self._layers):
            dy = layer.backward(dy)
            if dy is None:  # e.g. Embedding: integer input, nothing further to propagate
                break

    def __call__(self, x: Any, mask: Any = None, training: bool = False, **kwargs: Any) -> np.ndarray:
        """Eager forward pass on an array."""
        return self._forward(self._check_x(x, "call"), training, False)[0]

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        return self._forward(np.asarray(x), training, need_grad)[0]

    def loss_and_gradients(self, x: Any, y: Any, training: bool = False
                           ) -> Tuple[float, List[np.ndarray]]:
        """rnnkit extension: the compiled loss on ``(x, y)`` and its gradient w.r.t. every
        trainable weight (same order as ``trainable_weights``); weights are not changed."""
        self._require_compiled("loss_and_gradients")
        x = self._check_x(x, "loss_and_gradients")
        y_pred, mask = self._forward(x, training, True)
        loss, dy = self.loss.value_and_grad(y, y_pred, mask=mask)  # type: ignore[union-attr]
        for w in self.weights:
            w.grad = None
        self._backward(dy)
        return float(loss), [w.grad if w.grad is not None else np.zeros_like(w.value)
                             for w in self.trainable_weights]

    # -- compile / train ----------------------------------------------------------------
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Any = None,
                **kwargs: Any) -> None:
        """Configure training: optimizer (name or object), loss (name or Loss), metrics."""
        unsupported = {k for k, v in kwargs.items() if v not in (None, False, "auto")}
        if unsupported:
            raise ValueError(f"compile: unsupported argument(s) {sorted(unsupported)}")
        if loss is None:
            raise ValueError("compile: `loss` is required (e.g. 'mse')")
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = losses_mod.get(loss)
        if metrics is None:
            metrics = []
        if isinstance(metrics, (str, metrics_mod.Metric)):
            metrics = [metrics]
        self._metric_ids = list(metrics)
        for m in self._metric_ids:
            if isinstance(m, str):
                metrics_mod.get(m)  # fail early on unknown names
        self._metrics = None
        self.compiled = True

    def _require_compiled(self, where: str) -> None:
        if not self.compiled:
            raise RuntimeError(f"{where}: you must compile() the model first")

    def _get_metrics(self, y: Any, y_pred: np.ndarray) -> List[metrics_mod.Metric]:
        if self._metrics is None:
            self._metrics = [metrics_mod.get(m, y, y_pred, self.loss) for m in self._metric_ids]
        return self._metrics

    @property
    def metrics_names(self) -> List[str]:
        """``["loss", <metric names>...]``."""
        return ["loss"] + [m.name for m in (self._metrics or [])]

    def _train_batch(self, xb: np.ndarray, yb: np.ndarray, loss_tracker: metrics_mod.Mean) -> None:
        y_pred, mask = self._forward(xb, True, True)
        loss, dy = self.loss.value_and_grad(yb, y_pred, mask=mask)  # type: ignore[union-attr]
        for w in self.weights:
            w.grad = None
        self._backward(dy)
        tw = self.trainable_weights
        grads = [w.grad if w.grad is not None else np.zeros_like(w.value) for w in tw]
        self.optimizer.apply(grads, [w.value for w in tw])  # type: ignore[union-attr]
        loss_tracker.update_state(float(loss), sample_weight=len(xb))
        for m in self._get_metrics(yb, y_pred):
            m.update_state(yb, y_pred, mask)

    def _logs(self, loss_tracker: metrics_mod.Mean, prefix: str = "") -> Dict[str, float]:
        logs = {prefix + m.name: m.result() for m in (self._metrics or [])}
        logs[prefix + "loss"] = loss_tracker.result()
        # Keras 3 (utils.python_utils.pythonify_logs) hands logs over in sorted key order:
        # History keys and the progress-bar columns read e.g. loss, mse, val_loss, val_mse.
        return dict(sorted(logs.items()))

    @staticmethod
    def _check_xy(x: np.ndarray, y: Any, where: str) -> np.ndarray:
        if y is None:
            raise ValueError(f"{where}: `y` is required")
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != x.shape[0]:
            raise ValueError(f"{where}: `x` has {x.shape[0]} samples but `y` has shape {y.shape}")
        return y

    def fit(self, x: Any = None, y: Any = None, batch_size: Optional[int] = None, epochs: int = 1,
            verbose: Union[int, str] = "auto", callbacks: Optional[Sequence[Any]] = None,
            validation_split: float = 0.0, validation_data: Optional[Tuple[Any, Any]] = None,
            shuffle: Union[bool, str] = True, initial_epoch: int = 0,
            validation_batch_size: Optional[int] = None, **kwargs: Any) -> callbacks_mod.History:
        """Train for ``epochs`` epochs; returns the :class:`~rnnkit.callbacks.History`.

        ``validation_split`` holds out the last fraction of ``x``/``y`` before shuffling
        (Keras); the reported epoch loss is the batch-size-weighted mean of batch losses.
        """
        if kwargs:
            raise ValueError(f"fit: unsupported argument(s) {sorted(kwargs)}")
        self._require_compiled("fit")
        x = self._check_x(x, "fit")
        y = self._check_xy(x, y, "fit")
        batch_size = 32 if batch_size is None else batch_size
        if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"fit: `batch_size` must be a positive int, got {batch_size!r}")
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"fit: `epochs` must be a non-negative int, got {epochs!r}")
        verbose = 1 if verbose == "auto" else int(verbose)
        val: Optional[Tuple[np.ndarray, np.ndarray]] = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("fit: `validation_data` must be a tuple (x_val, y_val)")
            vx = self._check_x(validation_data[0], "fit (validation_data)")
            val = (vx, self._check_xy(vx, validation_data[1], "fit (validation_data)"))
        elif validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"fit: `validation_split` must be in (0, 1), got {validation_split}")
            split = int(math.floor(len(x) * (1.0 - validation_split)))
            if split == 0 or split == len(x):
                raise ValueError(f"fit: validation_split={validation_split} leaves an empty "
                                 f"training or validation set for {len(x)} samples")
            x, y, val = x[:split], y[:split], (x[split:], y[split:])
        n = len(x)
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
            for m in self._metrics or []:
                m.reset_state()
            tracker = metrics_mod.Mean("loss")
            order = backend.rng().permutation(n) if shuffle else np.arange(n)
            for step in range(steps):
                idx = order[step * batch_size:(step + 1) * batch_size]
                cblist.on_train_batch_begin(step)
                self._train_batch(x[idx], y[idx], tracker)
                cblist.on_train_batch_end(step, self._logs(tracker))
            logs = self._logs(tracker)
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
        x = self._check_x(x, "train_on_batch")
        y = self._check_xy(x, y, "train_on_batch")
        for m in self._metrics or []:
            m.reset_state()
        tracker = metrics_mod.Mean("loss")
        self._train_batch(x, y, tracker)
        return self._format_result(self._logs(tracker), return_dict)

    # -- evaluate / predict -------------------------------------------------------------
    def _evaluate_arrays(self, x: np.ndarray, y: np.ndarray, batch_size: int,
                         progbar: Optional[callbacks_mod.Progbar] = None) -> Dict[str, float]:
        tracker = metrics_mod.Mean("loss")
        # Validation/evaluation metrics are fresh copies so training metrics are untouched.
        y_pred0 = None
        metrics: List[metrics_mod.Metric] = []
        steps = int(math.ceil(len(x) / batch_size))
        for step in range(steps):
            xb, yb = x[step * batch_size:(step + 1) * batch_size], y[step * batch_size:(step + 1) * batch_size]
            y_pred, mask = self._forward(xb, False, False)
            if y_pred0 is None:
                y_pred0 = y_pred
                metrics = [metrics_mod.get(m, yb, y_pred, self.loss) for m in self._metric_ids]
                if self._metrics is None:
                    self._metrics = [metrics_mod.get(m, yb, y_pred, self.loss)
                                     for m in self._metric_ids]
            tracker.update_state(float(self.loss(yb, y_pred, mask=mask)),  # type: ignore[misc]
                                 sample_weight=len(xb))
            for m in metrics:
                m.update_state(yb, y_pred, mask)
            if progbar is not None:
                progbar.update(step + 1, [])
        logs = {m.name: m.result() for m in metrics}
        logs["loss"] = tracker.result()
        return dict(sorted(logs.items()))  # Keras order (see _logs)

    def _format_result(self, logs: Dict[str, float], return_dict: bool) -> Any:
        if return_dict:
            return logs
        names = [m.name for m in (self._metrics or [])]
        if not names:
            return logs["loss"]
        return [logs["loss"]] + [logs[n] for n in names]

    def evaluate(self, x: Any = None, y: Any = None, batch_size: Optional[int] = None,
                 verbose: Union[int, str] = "auto", return_dict: bool = False,
                 **kwargs: Any) -> Any:
        """Loss (and metrics) on ``(x, y)`` in inference mode: a float, or a list with metrics."""
        if kwargs:
            raise ValueError(f"evaluate: unsupported argument(s) {sorted(kwargs)}")
        self._require_compiled("evaluate")
        x = self._check_x(x, "evaluate")
        y = self._check_xy(x, y, "evaluate")
        batch_size = batch_size or 32
        verbose = 1 if verbose == "auto" else int(verbose)
        steps = int(math.ceil(len(x) / batch_size))
        bar = callbacks_mod.Progbar(steps, verbose=verbose) if verbose else None
        logs = self._evaluate_arrays(x, y, batch_size)
        if bar is not None:
            bar.update(steps, [(k, v) for k, v in logs.items()])
        return self._format_result(logs, return_dict)

    def test_on_batch(self, x: Any, y: Any, return_dict: bool = False) -> Any:
        """Loss (and metrics) of one batch in inference mode."""
        return self.evaluate(x, y, batch_size=len(np.asarray(x)), verbose=0,
                             return_dict=return_dict)

    def predict(self, x: Any, batch_size: Optional[int] = None,
                verbose: Union[int, str] = "auto", **kwargs: Any) -> np.ndarray:
        """Outputs for ``x`` in inference mode, computed ``batch_size`` (default 32) at a time."""
        if kwargs:
            raise ValueError(f"predict: unsupported argument(s) {sorted(kwargs)}")
        x = self._check_x(x, "predict")
        batch_size = batch_size or 32
        verbose = 1 if verbose == "auto" else int(verbose)
        steps = max(int(math.ceil(len(x) / batch_size)), 1)
        bar = callbacks_mod.Progbar(steps, verbose=verbose) if verbose else None
        outs = [self._forward(x[i:i + batch_size], False, False)[0]
                for i in range(0, max(len(x), 1), batch_size)]
        if bar is not None:
            bar.update(steps, [])
        return np.concatenate(outs, axis=0)

    def predict_on_batch(self, x: Any) -> np.ndarray:
        """Outputs for one batch, no progress bar."""
        return self._forward(self._check_x(x, "predict_on_batch"), False, False)[0]

    # -- summary ------------------------------------------------------------------------
    def summary(self, line_length: Optional[int] = None, positions: Optional[Sequence[float]] = None,
                print_fn: Any = None, **kwargs: Any) -> None:
        """Print the Keras 3 summary table (layer, output shape, parameter count, totals)."""
        # Keras hands print_fn the whole captured table at once, ending with a newline.
        print_fn = print_fn or sys.stdout.write
        line_length = line_length or min(88, shutil.get_terminal_size().columns - 4)
        positions = list(positions or [0.45, 0.80, 1.0])
        widths, cur = [], 0
        for p in positions:
            w = int(p * line_length) if p <= 1 else int(p)
            widths.append(w - cur)
            cur = w
        cells = [w + 2 for w in widths]  # content + one space of padding each side
        room = line_length - (len(cells) + 1)
        if sum(cells) > room:
            cells = _ratio_reduce(sum(cells) - room, cells)
        rows = []
        for layer in self._layers:
            shape = layer.output_shape if layer.built else None
            shape_s = "?" if shape is None else str(tuple(shape)).replace(",)", ")") \
                if not isinstance(shape, list) else str([tuple(s) for s in shape])
            params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
            rows.append([f"{layer.name} ({type(layer).__name__})", shape_s, params])
        header = ["Layer (type)", "Output Shape", "Param #"]
        for r in rows + [header]:
            for i, c in enumerate(r):
                cells[i] = max(cells[i], len(c) + 2)

        def line(l: str, mid: str, r: str, fill: str) -> str:
            return l + mid.join(fill * c for c in cells) + r

        def row(vals: Sequence[str], v: str) -> str:
            parts = [" " + (vals[i].rjust(cells[i] - 2) if i == 2 else vals[i].ljust(cells[i] - 2))
                     + " " for i in range(3)]
            return v + v.join(parts) + v

        out = [f'Model: "{self.name}"', line("┏", "┳", "┓", "━"), row(header, "┃"),
               line("┡", "╇", "┩", "━")]
        for i, r in enumerate(rows):
            out.append(row(r, "│"))
            if i < len(rows) - 1:
                out.append(line("├", "┼", "┤", "─"))
        out.append(line("└", "┴", "┘", "─"))
        tw, ntw = self.trainable_weights, self.non_trainable_weights
        t_n, t_b = sum(w.value.size for w in tw), sum(w.value.nbytes for w in tw)
        n_n, n_b = sum(w.value.size for w in ntw), sum(w.value.nbytes for w in ntw)
        o_n = o_b = 0
        if self.optimizer is not None and self.optimizer.built:
            # Keras counts its optimizer variables: ``iteration`` (int32 on the torch/JAX
            # backends -> 4 bytes; TensorFlow uses int64), ``learning_rate`` (a floatx
            # variable, absent for a callable rate) and the slots. rnnkit keeps iterations as
            # a Python int and the rate as a float, so count them as Keras stores them.
            slots = self.optimizer.variables[1:]
            o_n, o_b = 1 + sum(a.size for a in slots), 4 + sum(a.nbytes for a in slots)
            if not callable(self.optimizer._learning_rate):
                o_n, o_b = o_n + 1, o_b + np.dtype(backend.floatx()).itemsize
        out.append(f" Total params: {t_n + n_n + o_n:,} ({_readable_size(t_b + n_b + o_b)})")
        out.append(f" Trainable params: {t_n:,} ({_readable_size(t_b)})")
        out.append(f" Non-trainable params: {n_n:,} ({_readable_size(n_b)})")
        if self.optimizer is not None and self.optimizer.built:
            out.append(f" Optimizer params: {o_n:,} ({_readable_size(o_b)})")
        print_fn("\n".join(out) + "\n")

    # -- config and saving --------------------------------------------------------------
    def get_config(self) -> Dict[str, Any]:
        """``{"name", "layers": [...], "build_input_shape"}`` (JSON-serialisable)."""
        return {"name": self.name, "trainable": self.trainable,
                "build_input_shape": None if self._input_shape is None else list(self._input_shape),
                "layers": [layers_mod.serialize(layer) for layer in self._layers]}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Sequential":
        """Rebuild an (untrained) model from :meth:`get_config`."""
        if not isinstance(config, dict) or "layers" not in config:
            raise ValueError("Sequential.from_config: config must be a dict with 'layers'")
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        if config.get("build_input_shape") is not None:
            model._input_shape = tuple(config["build_input_shape"])
        for lc in config["layers"]:
            model.add(layers_mod.deserialize(lc))
        return model

    def save(self, filepath: str, overwrite: bool = True) -> None:
        """Save architecture, weights, compile settings and optimizer state (one file, atomic)."""
        saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath: str, overwrite: bool = True) -> None:
        """Save only the weights (``.npz``, atomic)."""
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: str) -> None:
        """Load weights saved by :meth:`save_weights` (or :meth:`save`); shapes are checked."""
        saving.load_weights(self, filepath)


def load_model(filepath: str, compile: bool = True) -> Sequential:
    """Load a model saved by :meth:`Sequential.save` (never executes code from the file)."""
    return saving.load_model(filepath, compile=compile)
