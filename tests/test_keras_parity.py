"""Parity with real Keras 3: same initial weights and data -> same History, weights,
predictions, summary() and progress lines.

The references in ``tests/keras_reference/*.npz`` were produced by real Keras 3.15.1 (torch
backend 2.13.0, CPU, float64) with ``make_keras_reference.py`` (run by hand in a throwaway
virtualenv; see its docstring). Each file holds a JSON spec of the model, the data, the initial
weights, and what Keras recorded after ``fit(..., shuffle=False)``. The test rebuilds the
same model in rnnkit from the spec and compares.

Two Keras runs are stored per case, because Keras's own float64 is not float64 throughout on
the torch (and JAX) backend:

* ``hist_*``, ``wf_*``, ``pred`` -- Keras exactly as shipped. Its ``result_type`` maps float64
  to float32 outside TensorFlow (``BIT64_TO_BIT32_DTYPE``), so ``divide_no_nan`` in the loss
  reduction and in the metrics returns float32: every History value is float32-rounded and
  every gradient is scaled by ``float32(1/n)`` instead of ``1/n``. rnnkit matches it to that
  precision only (relative ~1e-7; checked at 2e-6).
* ``f64_hist_*``, ``f64_wf_*``, ``f64_pred`` -- the same Keras run with that one map entry kept
  at float64 (what the TensorFlow backend does). Against it rnnkit matches to float64
  rounding: observed <= 2e-15 relative; checked at 1e-12.

Binary crossentropy: for these references (torch backend) the ``d*`` cases use a test-local
loss with the torch formula ``log(clip(p))`` computed from the probabilities. Keras 3.15's
TensorFlow backend has the same probability formula (no ``+ eps`` in the logs; recorded in
tests/fixtures/keras_training/losses.npz) but computes the loss from the sigmoid's logits
when ``y_pred`` is a sigmoid output (``_keras_logits``), as rnnkit does; on these
unsaturated outputs both agree to float64 rounding, which the last BCE test checks.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

from rnnkit import backend, layers as L, losses, optimizers
from rnnkit.models import Sequential

REF_DIR = Path(__file__).resolve().parent / "keras_reference"
CASES = sorted(p.stem for p in REF_DIR.glob("*.npz"))
BCE_CASES = [c for c in CASES if c.startswith("d")]

F64_RTOL = 1e-12     # vs Keras with float64 kept throughout (observed <= 2e-15)
SHIPPED_RTOL = 2e-6  # vs Keras as shipped on torch (float32 loss reduction; observed <= 9e-7)

# Same placeholders as make_keras_reference.normalize_timing (that module imports keras).
_ELAPSED = re.compile(r"(?<![\d.])\d+s(?=\x1b\[0m| -| )")
_PER_STEP = re.compile(r"\d+(?:us|ms|s)/step")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def normalize_timing(text: str) -> str:
    return _ELAPSED.sub("<ELAPSED>", _PER_STEP.sub("<PER_STEP>/step", text))


def test_references_are_present() -> None:
    assert len(CASES) == 12, f"expected 12 Keras references in {REF_DIR}, found {CASES}"


class TorchBackendBCE(losses.BinaryCrossentropy):
    """Keras's torch-backend binary crossentropy: ``-(t log p + (1-t) log(1-p))`` with
    ``p = clip(y_pred, eps, 1-eps)``, always from the probabilities (the torch backend has no
    ``_keras_logits``)."""

    def logits_values(self, y_true: np.ndarray, logits: np.ndarray) -> None:
        return None

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        eps = y_pred.dtype.type(backend.epsilon())
        p = np.clip(y_pred, eps, 1 - eps)
        return np.mean(-(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)), axis=-1)

    def call_grad(self, y_true: np.ndarray, y_pred: np.ndarray, dl: np.ndarray) -> np.ndarray:
        eps = y_pred.dtype.type(backend.epsilon())
        p = np.clip(y_pred, eps, 1 - eps)
        inside = (y_pred >= eps) & (y_pred <= 1 - eps)
        g = (-(y_true / p) + (1 - y_true) / (1 - p)) * inside
        return g / y_pred.dtype.type(y_pred.shape[-1]) * dl[..., None]


def _layer(spec: Dict[str, Any]) -> Any:
    if spec["class"] == "Bidirectional":
        return L.Bidirectional(_layer(spec["layer"]), **spec["config"])
    return getattr(L, spec["class"])(**spec["config"])


def _obj(spec: Any, module: Any) -> Any:
    return spec if isinstance(spec, str) else getattr(module, spec["class"])(**spec["config"])


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@lru_cache(maxsize=None)
def _run(case: str, torch_bce: bool = False) -> Dict[str, Any]:
    """Rebuild, train and record everything the Keras generator recorded (once per case)."""
    ref = np.load(REF_DIR / f"{case}.npz", allow_pickle=False)
    spec = json.loads(str(ref["spec"]))
    saved_floatx = backend.floatx()
    backend.set_floatx("float64")
    backend.reset_uids()  # fresh names, as keras.backend.clear_session() in the generator
    try:
        model = Sequential([L.Input(shape=tuple(spec["input_shape"]), dtype=spec["input_dtype"])]
                           + [_layer(s) for s in spec["layers"]])
        n_w = len([k for k in ref.files if k.startswith("w0_")])
        model.set_weights([ref[f"w0_{i:02d}"] for i in range(n_w)])
        comp = spec["compile"]
        loss = TorchBackendBCE() if torch_bce else _obj(comp["loss"], losses)
        model.compile(optimizer=_obj(comp["optimizer"], optimizers), loss=loss,
                      metrics=comp.get("metrics"))
        out: Dict[str, Any] = {"ref": ref, "n_w": n_w}
        lines: list = []
        model.summary(print_fn=lines.append)
        out["summary_before"] = "\n".join(lines)
        fit_kw = dict(spec["fit"])
        if "x_val" in ref.files:
            fit_kw["validation_data"] = (ref["x_val"], ref["y_val"])
        x, y = ref["x"], ref["y"]
        out["history"] = model.fit(x, y, shuffle=False, verbose=0, **fit_kw).history
        out["weights"] = model.get_weights()
        out["pred"] = model.predict(x, batch_size=7, verbose=0)
        out["evaluate"] = model.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
        lines = []
        model.summary(print_fn=lines.append)
        out["summary_after"] = "\n".join(lines)
        one = dict(fit_kw, epochs=1)
        for key, stream, verbose in (("v1_tty", _Tty(), 1), ("v2", io.StringIO(), 2)):
            with contextlib.redirect_stdout(stream):
                model.fit(x, y, shuffle=False, verbose=verbose, **one)
            out[key] = normalize_timing(stream.getvalue())
        return out
    finally:
        backend.set_floatx(saved_floatx)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference relative to the largest magnitude of the reference."""
    return float(np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.fixture(autouse=True)
def _columns(monkeypatch: pytest.MonkeyPatch) -> None:
    # The references were made with COLUMNS=120: summary() line_length = min(88, COLUMNS - 4).
    monkeypatch.setenv("COLUMNS", "120")


@pytest.mark.parametrize("case", CASES)
def test_history_weights_predictions_equal_keras_float64(case: str) -> None:
    r = _run(case, torch_bce=case in BCE_CASES)
    ref = r["ref"]
    keys = json.loads(str(ref["history_keys"]))
    assert list(r["history"]) == keys  # Keras's (sorted) log order
    for k in keys:
        np.testing.assert_allclose(r["history"][k], ref[f"f64_hist_{k}"], rtol=F64_RTOL,
                                   atol=1e-15, err_msg=f"{case}: history[{k!r}]")
    for i, w in enumerate(r["weights"]):
        assert _rel(w, ref[f"f64_wf_{i:02d}"]) <= F64_RTOL, f"{case}: final weight {i}"
    assert _rel(r["pred"], ref["f64_pred"]) <= F64_RTOL, f"{case}: predictions"


@pytest.mark.parametrize("case", CASES)
def test_matches_keras_as_shipped_to_its_float32_loss_reduction(case: str) -> None:
    r = _run(case, torch_bce=case in BCE_CASES)
    ref = r["ref"]
    for k in json.loads(str(ref["history_keys"])):
        # Keras's History values are float32-rounded here (see the module docstring).
        np.testing.assert_array_equal(ref[f"hist_{k}"].astype(np.float32), ref[f"hist_{k}"])
        np.testing.assert_allclose(r["history"][k], ref[f"hist_{k}"], rtol=SHIPPED_RTOL,
                                   atol=1e-12, err_msg=f"{case}: history[{k!r}]")
    for i, w in enumerate(r["weights"]):
        assert _rel(w, ref[f"wf_{i:02d}"]) <= SHIPPED_RTOL, f"{case}: final weight {i}"
    assert _rel(r["pred"], ref["pred"]) <= SHIPPED_RTOL
    ev = json.loads(str(ref["evaluate"]))
    assert sorted(r["evaluate"]) == sorted(ev)
    for k, v in ev.items():
        assert r["evaluate"][k] == pytest.approx(v, rel=SHIPPED_RTOL, abs=1e-12), k


@pytest.mark.parametrize("case", BCE_CASES)
def test_binary_crossentropy_tensorflow_logits_form_agrees_unsaturated(case: str) -> None:
    """rnnkit's own BCE (Keras TF backend: from the sigmoid's logits) vs torch Keras (from
    the probabilities): the same function away from saturation, so float64-rounding close."""
    r = _run(case)
    ref = r["ref"]
    for k in json.loads(str(ref["history_keys"])):
        np.testing.assert_allclose(r["history"][k], ref[f"f64_hist_{k}"], rtol=1e-10)
    for i, w in enumerate(r["weights"]):
        assert _rel(w, ref[f"f64_wf_{i:02d}"]) <= 1e-10


@pytest.mark.parametrize("case", CASES)
def test_summary_text_equals_keras(case: str) -> None:
    r = _run(case, torch_bce=case in BCE_CASES)
    assert r["summary_before"] == str(r["ref"]["summary_before"])
    assert r["summary_after"] == str(r["ref"]["summary_after"])  # with "Optimizer params"


def _final_segment(text: str) -> str:
    """What stays on screen: the text after the last carriage return (trailing pad dropped)."""
    return text.rsplit("\r", 1)[-1].rstrip("\n").rstrip(" ")


@pytest.mark.parametrize("case", CASES)
def test_progress_lines_equal_keras(case: str) -> None:
    r = _run(case, torch_bce=case in BCE_CASES)
    ref = r["ref"]
    # verbose=2: one line per epoch, byte for byte (timing replaced by placeholders)
    assert r["v2"] == str(ref["progbar_v2"])
    # verbose=1 on a terminal: the final bar with Keras's escape codes. (How many intermediate
    # redraws precede it depends on timing; Keras always draws "dynamically" on POSIX.)
    kv1 = str(ref["progbar_v1"])
    assert "Epoch" not in kv1 and "Epoch" not in r["v1_tty"]  # no header for epochs=1
    assert _final_segment(r["v1_tty"]) == _final_segment(kv1)


def test_progress_line_plain_when_not_a_terminal(capsys: pytest.CaptureFixture) -> None:
    """Off a terminal rnnkit writes only the finished bar, without escapes; its text equals
    Keras's final bar with the escapes removed."""
    case = "a_tutorial_simplernn_sgd"
    r = _run(case)
    keras_plain = _ANSI.sub("", _final_segment(str(r["ref"]["progbar_v1"])))
    assert keras_plain.startswith("5/5 ━━━━━━━━━━━━━━━━━━━━ <ELAPSED> <PER_STEP>/step - loss: ")
    assert _ANSI.sub("", _final_segment(r["v1_tty"])) == keras_plain
