"""Generate the real-Keras-3 training references used by ``tests/test_keras_parity.py``.

Run BY HAND, never by the tests, in a throwaway virtualenv that holds Keras 3 (torch backend,
CPU); Keras, TensorFlow and torch are never project dependencies::

    python -m venv /tmp/kerasvenv
    /tmp/kerasvenv/bin/pip install torch==2.13.0 keras numpy
    cd <repo> && KERAS_BACKEND=torch COLUMNS=120 \\
        /tmp/kerasvenv/bin/python tests/keras_reference/make_keras_reference.py

(The committed files were made with keras 3.15.1, torch 2.13.0+cpu, numpy 2.4.6.)

For every case in ``CASES`` this script, in float64 (``keras.config.set_floatx("float64")``):

1. builds the model from a small JSON *spec* (layers, compile and fit arguments) that the test
   reads back to build the same model in rnnkit;
2. sets deterministic initial weights drawn from ``numpy.random.default_rng(seed)`` (saved);
3. records ``summary()`` (``print_fn`` form, i.e. rich's plain capture) before training;
4. trains with ``fit(..., shuffle=False, verbose=0)`` and records the per-epoch History, the
   final weights, ``predict(x, batch_size=7)``, ``evaluate`` and ``summary()`` after training;
5. trains one more epoch with ``verbose=1`` and one with ``verbose=2``, capturing stdout, with
   the timing parts replaced by ``<ELAPSED>`` (``\\d+s``) and ``<PER_STEP>`` (``\\d+(us|ms|s)``)
   so the test can compare the rest of the text exactly (how many intermediate verbose=1
   redraws appear depends on timing; the test reads only the final bar);
6. repeats the training of step 4 (``f64_hist_*``, ``f64_wf_*``, ``f64_pred``) with Keras's float64 -> float32 ``result_type``
   mapping of non-TensorFlow backends switched off (see ``_float64_results``): the as-shipped
   torch backend reduces the loss and the metrics in float32 even in a float64 model.

Everything except ``progbar_v1`` is reproducible bit for bit (checked by regenerating).

Each case goes to ``tests/keras_reference/<case>.npz``: arrays as float64/int64, text as NumPy
unicode scalars, the spec and History key order as JSON strings -- loadable with
``allow_pickle=False``.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("COLUMNS", "120")  # summary(): default line_length = min(88, COLUMNS - 4)

import numpy as np  # noqa: E402
import keras  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent

# ----------------------------------------------------------------------------------- specs
# Layer spec: {"class": "LSTM", "config": {...}} (+ "layer": {...} for Bidirectional).
# Optimizer/loss spec: a string, or {"class": ..., "config": {...}}. The same specs are
# rebuilt in rnnkit by the test, with rnnkit's classes of the same names.


def _sine_tutorial_data():
    """The seed tutorial's data (docs/spec.md) with a fixed noise seed: 40 windows of 10."""
    rng = np.random.default_rng(0)
    x_data = np.linspace(-2 * np.pi, 2 * np.pi)
    sin_data = np.sin(x_data) + 0.1 * rng.standard_normal(len(x_data))
    n_rnn = 10
    n_sample = len(x_data) - n_rnn
    x = np.zeros((n_sample, n_rnn))
    t = np.zeros((n_sample, n_rnn))
    for i in range(n_sample):
        x[i] = sin_data[i:i + n_rnn]
        t[i] = sin_data[i + 1:i + n_rnn + 1]
    return {"x": x.reshape(n_sample, n_rnn, 1), "y": t.reshape(n_sample, n_rnn, 1)}


def _onehot(ids, n):
    return np.eye(n)[ids]


def _data_b():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(30, 6, 3))
    ids = rng.integers(0, 3, size=30)
    return {"x": x[:24], "y": _onehot(ids[:24], 3), "x_val": x[24:], "y_val": _onehot(ids[24:], 3)}


def _data_c():
    rng = np.random.default_rng(12)
    return {"x": rng.normal(size=(20, 5, 3)), "y": rng.normal(size=(20, 5, 2))}


def _data_d():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(20, 6, 2))
    y = (x[:, :, 0].sum(axis=1, keepdims=True) > 0).astype(np.float64)
    return {"x": x, "y": y}


def _padded_ids(rng, n, t, vocab):
    """Integer ids with right padding (0) of varying length, plus some zeros mid-sequence."""
    x = rng.integers(1, vocab, size=(n, t))
    for i in range(n):
        length = int(rng.integers(2, t + 1))
        x[i, length:] = 0
    x[1, 2] = 0  # a masked step inside a sequence
    x[3, 0] = 0  # a masked first step
    return x


def _data_e_seq():
    rng = np.random.default_rng(14)
    x = _padded_ids(rng, 20, 7, 12)
    y = rng.integers(0, 4, size=(20, 7))
    return {"x": x, "y": y}


def _data_e_last():
    rng = np.random.default_rng(15)
    x = _padded_ids(rng, 20, 7, 12)
    y = rng.integers(0, 3, size=(20,))
    return {"x": x, "y": y}


def _masked_floats(rng, n, t, f):
    x = rng.normal(size=(n, t, f))
    for i in range(n):
        length = int(rng.integers(2, t + 1))
        x[i, length:] = 0.0
    x[2, 1] = 0.0  # a padded step inside a sequence
    x[4, 0] = 0.0  # a padded first step
    return x


def _data_f_seq():
    rng = np.random.default_rng(16)
    return {"x": _masked_floats(rng, 18, 6, 2), "y": rng.normal(size=(18, 6, 1))}


def _data_f_last():
    rng = np.random.default_rng(17)
    return {"x": _masked_floats(rng, 18, 6, 2), "y": rng.normal(size=(18, 1))}


def _data_g():
    rng = np.random.default_rng(18)
    return {"x": rng.normal(size=(16, 5, 3)), "y": 3.0 * rng.normal(size=(16, 2))}


def L(cls, **config):  # noqa: N802 - reads like a layer constructor
    return {"class": cls, "config": config}


CASES = {
    # (a) the tutorial model, loss/optimizer given as strings as in the article
    "a_tutorial_simplernn_sgd": dict(
        data=_sine_tutorial_data, input_shape=[10, 1],
        layers=[L("SimpleRNN", units=20, return_sequences=True), L("Dense", units=1,
                                                                  activation="linear")],
        compile=dict(optimizer="sgd", loss="mean_squared_error"),
        fit=dict(batch_size=8, epochs=3, validation_split=0.1)),
    # (b) LSTM -> softmax, categorical crossentropy, AMSGrad Adam with clipnorm, accuracy
    "b_lstm_adam_amsgrad_clipnorm": dict(
        data=_data_b, input_shape=[6, 3],
        layers=[L("LSTM", units=8), L("Dense", units=3, activation="softmax")],
        compile=dict(optimizer=L("Adam", learning_rate=0.02, amsgrad=True, clipnorm=1.0),
                     loss="categorical_crossentropy", metrics=["accuracy"]),
        fit=dict(batch_size=5, epochs=3)),
    # (c) GRU(reset_after=False) sequences -> Dense, mae, centered RMSprop with momentum
    "c_gru_v1_rmsprop_centered": dict(
        data=_data_c, input_shape=[5, 3],
        layers=[L("GRU", units=6, reset_after=False, return_sequences=True),
                L("Dense", units=2)],
        compile=dict(optimizer=L("RMSprop", learning_rate=0.005, momentum=0.9, centered=True),
                     loss="mae", metrics=["mse"]),
        fit=dict(batch_size=6, epochs=3, validation_split=0.2)),
    # (d) GRU -> sigmoid, binary crossentropy, Nesterov SGD and Adagrad
    "d1_gru_bce_sgd_nesterov": dict(
        data=_data_d, input_shape=[6, 2],
        layers=[L("GRU", units=5), L("Dense", units=1, activation="sigmoid")],
        compile=dict(optimizer=L("SGD", learning_rate=0.1, momentum=0.9, nesterov=True),
                     loss="binary_crossentropy", metrics=["accuracy"]),
        fit=dict(batch_size=8, epochs=3)),
    "d2_gru_bce_adagrad": dict(
        data=_data_d, input_shape=[6, 2],
        layers=[L("GRU", units=5), L("Dense", units=1, activation="sigmoid")],
        compile=dict(optimizer=L("Adagrad", learning_rate=0.1),
                     loss="binary_crossentropy", metrics=["accuracy"]),
        fit=dict(batch_size=8, epochs=3)),
    # (e) Embedding(mask_zero) -> Bidirectional(LSTM) -> Dense logits, sparse CE from logits;
    # with return_sequences the mask reaches the loss and the metric.
    "e1_embedding_bilstm_seq_sparse_logits": dict(
        data=_data_e_seq, input_shape=[7], input_dtype="int64",
        layers=[L("Embedding", input_dim=12, output_dim=4, mask_zero=True),
                {"class": "Bidirectional", "config": {"merge_mode": "concat"},
                 "layer": L("LSTM", units=5, return_sequences=True)},
                L("Dense", units=4)],
        compile=dict(optimizer=L("Adam", learning_rate=0.01),
                     loss=L("SparseCategoricalCrossentropy", from_logits=True),
                     metrics=["accuracy"]),
        fit=dict(batch_size=6, epochs=3, validation_split=0.25)),
    "e2_embedding_bilstm_last_sparse_logits": dict(
        data=_data_e_last, input_shape=[7], input_dtype="int64",
        layers=[L("Embedding", input_dim=12, output_dim=4, mask_zero=True),
                {"class": "Bidirectional", "config": {"merge_mode": "sum"},
                 "layer": L("LSTM", units=5)},
                L("Dense", units=3)],
        compile=dict(optimizer=L("Adam", learning_rate=0.01),
                     loss=L("SparseCategoricalCrossentropy", from_logits=True),
                     metrics=["accuracy"]),
        fit=dict(batch_size=6, epochs=3)),
    # (f) Masking layer over padded float steps
    "f1_masking_lstm_seq_mse": dict(
        data=_data_f_seq, input_shape=[6, 2],
        layers=[L("Masking", mask_value=0.0), L("LSTM", units=4, return_sequences=True),
                L("Dense", units=1)],
        compile=dict(optimizer=L("SGD", learning_rate=0.05), loss="mse", metrics=["mae"]),
        fit=dict(batch_size=5, epochs=3)),
    "f2_masking_simplernn_last_adam": dict(
        data=_data_f_last, input_shape=[6, 2],
        layers=[L("Masking", mask_value=0.0), L("SimpleRNN", units=4), L("Dense", units=1)],
        compile=dict(optimizer=L("Adam", learning_rate=0.01), loss="mse"),
        fit=dict(batch_size=5, epochs=3)),
    # (g) gradient clipping: global_clipnorm and clipvalue (thresholds small enough to bite)
    "g1_global_clipnorm_adam": dict(
        data=_data_g, input_shape=[5, 3],
        layers=[L("SimpleRNN", units=6), L("Dense", units=2)],
        compile=dict(optimizer=L("Adam", learning_rate=0.05, global_clipnorm=0.05), loss="mse"),
        fit=dict(batch_size=6, epochs=3)),
    "g2_clipvalue_sgd": dict(
        data=_data_g, input_shape=[5, 3],
        layers=[L("SimpleRNN", units=6), L("Dense", units=2)],
        compile=dict(optimizer=L("SGD", learning_rate=0.5, clipvalue=0.01), loss="mse"),
        fit=dict(batch_size=6, epochs=3)),
    # per-tensor clipnorm that bites (in (b) clipnorm=1.0 stays above the gradient norms)
    "g3_clipnorm_sgd": dict(
        data=_data_g, input_shape=[5, 3],
        layers=[L("SimpleRNN", units=6), L("Dense", units=2)],
        compile=dict(optimizer=L("SGD", learning_rate=0.1, clipnorm=0.5), loss="mse"),
        fit=dict(batch_size=6, epochs=3)),
}

_ELAPSED = re.compile(r"(?<![\d.])\d+s(?=\x1b\[0m| -| )")
_PER_STEP = re.compile(r"\d+(?:us|ms|s)/step")


def normalize_timing(text: str) -> str:
    """Replace the run-time dependent parts of progress-bar text by placeholders."""
    text = _PER_STEP.sub("<PER_STEP>/step", text)
    return _ELAPSED.sub("<ELAPSED>", text)


# ------------------------------------------------------------------------------ Keras side
def _keras_layer(spec):
    if spec["class"] == "Bidirectional":
        return keras.layers.Bidirectional(_keras_layer(spec["layer"]), **spec["config"])
    return getattr(keras.layers, spec["class"])(**spec["config"])


def _keras_obj(spec, module):
    return spec if isinstance(spec, str) else getattr(module, spec["class"])(**spec["config"])


def _initial_weights(model, seed):
    """Deterministic, moderate initial weights (uniform in [-0.5, 0.5))."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(-0.5, 0.5, size=tuple(w.shape)) for w in model.weights]


def _summary(model):
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def _captured(fn):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fn()
    return buf.getvalue()


def _train(case, seed):
    """Build, set the initial weights, compile and fit; returns (model, data, w0, history)."""
    keras.backend.clear_session()  # fresh layer names: sequential, simple_rnn, dense, ...
    keras.config.set_floatx("float64")
    data = case["data"]()
    model = keras.Sequential(
        [keras.Input(shape=tuple(case["input_shape"]), dtype=case.get("input_dtype"))]
        + [_keras_layer(s) for s in case["layers"]])
    w0 = _initial_weights(model, seed)
    model.set_weights(w0)
    comp = case["compile"]
    model.compile(optimizer=_keras_obj(comp["optimizer"], keras.optimizers),
                  loss=_keras_obj(comp["loss"], keras.losses), metrics=comp.get("metrics"))
    summary_before = _summary(model)
    fit_kw = dict(case["fit"])
    if "x_val" in data:
        fit_kw["validation_data"] = (data["x_val"], data["y_val"])
    hist = model.fit(data["x"], data["y"], shuffle=False, verbose=0, **fit_kw)
    return model, data, w0, hist, fit_kw, summary_before


@contextlib.contextmanager
def _float64_results():
    """Keras 3 on a non-TensorFlow backend maps float64 to float32 in ``result_type``
    (``BIT64_TO_BIT32_DTYPE``, "aligned with JAX"), so ops that promote through it -- e.g.
    ``divide_no_nan`` in the loss reduction and in the metrics -- return float32 even in a
    float64 model: the History is float32-rounded and every gradient is scaled by
    ``float32(1/n)``. The TensorFlow backend keeps float64. This context keeps float64 as the
    TF backend does; everything else is unchanged real Keras."""
    from keras.src.backend.common import dtypes
    saved = dtypes.BIT64_TO_BIT32_DTYPE["float64"]
    dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"
    try:
        yield
    finally:
        dtypes.BIT64_TO_BIT32_DTYPE["float64"] = saved


def run_case(name, case, seed):
    model, data, w0, hist, fit_kw, summary_before = _train(case, seed)
    wf = [np.asarray(w) for w in model.get_weights()]
    pred = model.predict(data["x"], batch_size=7, verbose=0)
    ev = model.evaluate(data["x"], data["y"], batch_size=7, verbose=0, return_dict=True)
    summary_after = _summary(model)
    one_epoch = dict(fit_kw, epochs=1)
    v1 = _captured(lambda: model.fit(data["x"], data["y"], shuffle=False, verbose=1, **one_epoch))
    v2 = _captured(lambda: model.fit(data["x"], data["y"], shuffle=False, verbose=2, **one_epoch))
    with _float64_results():
        model64, _, _, hist64, _, _ = _train(case, seed)
        wf64 = [np.asarray(w) for w in model64.get_weights()]
        pred64 = model64.predict(data["x"], batch_size=7, verbose=0)
    spec = {k: case[k] for k in ("input_shape", "layers", "compile", "fit")}
    spec["input_dtype"] = case.get("input_dtype")
    spec["seed"] = seed
    out = {
        "spec": np.str_(json.dumps(spec)),
        "keras_version": np.str_(f"keras {keras.__version__}, backend {keras.backend.backend()}"),
        "history_keys": np.str_(json.dumps(list(hist.history))),
        "evaluate": np.str_(json.dumps({k: float(v) for k, v in ev.items()})),
        "summary_before": np.str_(summary_before),
        "summary_after": np.str_(summary_after),
        "progbar_v1": np.str_(normalize_timing(v1)),
        "progbar_v2": np.str_(normalize_timing(v2)),
        "pred": np.asarray(pred, dtype=np.float64),
    }
    for k, v in data.items():
        out[k] = np.asarray(v)
    for i, w in enumerate(w0):
        out[f"w0_{i:02d}"] = np.asarray(w, dtype=np.float64)
    for i, w in enumerate(wf):
        out[f"wf_{i:02d}"] = np.asarray(w, dtype=np.float64)
    for k, v in hist.history.items():
        out[f"hist_{k}"] = np.asarray(v, dtype=np.float64)
    # the same training with float64 kept in result_type (see _float64_results)
    out["f64_pred"] = np.asarray(pred64, dtype=np.float64)
    for i, w in enumerate(wf64):
        out[f"f64_wf_{i:02d}"] = np.asarray(w, dtype=np.float64)
    for k, v in hist64.history.items():
        out[f"f64_hist_{k}"] = np.asarray(v, dtype=np.float64)
    path = OUT_DIR / f"{name}.npz"
    np.savez_compressed(path, **out)
    return path


def main(argv):
    names = argv[1:] or list(CASES)
    for i, name in enumerate(CASES):
        if name in names:
            path = run_case(name, CASES[name], seed=100 + i)
            print(f"wrote {path.name} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv)
