"""Text tables of the overhead, streaming and IMDB rows (``-`` where a runner did not run).

Ratios are speed-ups of rnnkit, as in the main table: ``xtorch = torch time / rnnkit time``
(above 1: rnnkit is faster).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .output import render_table
from .shapes import Shape

__all__ = ["format_overhead", "format_streaming", "format_imdb", "format_sections"]


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _t(times: Dict[str, Any], name: str, unit: str) -> Optional[float]:
    rec = times.get(name)
    return rec[unit] if rec else None


def _check(check: Dict[str, Any]) -> str:
    return ("ok " if check["ok"] else "FAIL ") + check["oracle"]


def format_overhead(records: List[Dict[str, Any]]) -> str:
    """Per-call overhead at the tutorial SimpleRNN shape, microseconds."""
    head = ["cell", "T,B,I,H", "pass", "rnnkit us", "ref us", "xref", "torch us", "xtorch", "check"]
    rows = [[r["cell"], Shape(**r["shape"]).label, r["pass"],
             _fmt(_t(r["times"], "rnnkit", "us"), ".1f"),
             _fmt(_t(r["times"], "reference", "us"), ".1f"), _fmt(r["speedup_vs_reference"], ".1f"),
             _fmt(_t(r["times"], "torch", "us"), ".1f"), _fmt(r["speedup_vs_torch"], ".2f"),
             _check(r["check"])] for r in records]
    return ("Per-call overhead (fwd: training=False; fwd+bwd: training=True forward + "
            "simple_rnn_backward), microseconds per call\n"
            + render_table(head, rows, left={0, 1, 2, 8}))


def format_streaming(records: List[Dict[str, Any]]) -> str:
    """One streaming LSTM step (B=1, T=1, I=H, carried h/c), microseconds per step."""
    head = ["H", "rnnkit us", "torch LSTMCell us", "xtorch", "check"]
    rows = [[str(r["H"]), _fmt(_t(r["times"], "rnnkit", "us"), ".1f"),
             _fmt(_t(r["times"], "torch", "us"), ".1f"), _fmt(r["speedup_vs_torch"], ".2f"),
             _check(r["check"])] for r in records]
    return ("Streaming LSTM step, B=1 T=1 I=H, carried (h, c), inference: ops.lstm_forward vs "
            "nn.LSTMCell (no_grad), microseconds per step\n"
            + render_table(head, rows, left={4}))


def format_imdb(section: Dict[str, Any]) -> str:
    """The IMDB model: ms per training step / predict / call and the agreement check."""
    s = section["size"]
    head = ["operation", "rnnkit ms", "torch ms", "xtorch", "keras ms", "xkeras"]
    rows = [[r["operation"], _fmt(_t(r["times"], "rnnkit", "ms"), ".2f"),
             _fmt(_t(r["times"], "torch", "ms"), ".2f"), _fmt(r["speedup_vs_torch"], ".2f"),
             _fmt(_t(r["times"], "keras", "ms"), ".2f"), _fmt(r["speedup_vs_keras"], ".2f")]
            for r in section["results"]]
    c = section["check"]
    losses = ", ".join(f"{k} {v:.6f}" for k, v in c["first_loss"].items())
    return (f"IMDB model: Embedding({s['vocab']},{s['embed']}) -> BiLSTM({s['units']}, seq) -> "
            f"BiLSTM({s['units']}) -> Dense(1, sigmoid); Adam, binary crossentropy; batch "
            f"{s['batch']}, seq_len {s['seq_len']}; ms = median per call\n"
            "train_step = train_on_batch (torch: zero_grad+forward+BCEWithLogits+backward+Adam); "
            "predict = model.predict(x, batch_size) (torch: no_grad); call = model(x)\n"
            + render_table(head, rows, left={0})
            + f"\ncheck: {_check(c)} (gradients max rel err {c['max_rel_err']:.1e}); "
              f"first-step loss: {losses}")


def format_sections(report: Dict[str, Any]) -> str:
    """The tables of every extra section present in ``report``, blank-line separated."""
    parts = []
    if report.get("overhead"):
        parts.append(format_overhead(report["overhead"]))
    if report.get("streaming"):
        parts.append(format_streaming(report["streaming"]))
    if report.get("imdb"):
        parts.append(format_imdb(report["imdb"]))
    return "\n\n".join(parts)
