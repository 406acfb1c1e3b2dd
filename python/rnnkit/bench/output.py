"""Report output: the text table, the JSON file and the PNG chart of speed-ups."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

from .shapes import Shape

__all__ = ["format_header", "format_table", "render_table", "write_json", "write_png",
           "extra_speedups", "PlotUnavailable"]


class PlotUnavailable(RuntimeError):
    """The PNG chart needs matplotlib, which is not importable."""


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_header(report: Dict[str, Any]) -> str:
    """Machine, build, threads and the in-run NumPy sgemm rate, a few lines."""
    m = report["meta"]
    bi = m["build_info"]
    lines = [
        f"CPU: {m['cpu']} ({m['usable_cores']} usable cores); {m['platform']}",
        f"rnnkit {m['rnnkit']}: ISA {bi.get('isa')}, threads {m['rnnkit_threads']}, "
        f"compiler {bi.get('compiler')}; NumPy {m['numpy']}"
        + (f"; PyTorch {m['torch']} ({m['torch_threads']} threads)" if "torch" in m else "; PyTorch -"),
        f"NumPy sgemm 2048x2048 fp32 in this run: {m['numpy_sgemm_gflops']:.1f} GFLOP/s"
        + (f"; {m['keras']}" if "keras" in m else ""),
        "fp32; fwd = inference forward (training=False / torch.no_grad), fwd+bwd = forward + BPTT; "
        "ms = median; GFLOP/s: fwd 2*B*T*G*H*(I+H), fwd+bwd 3x; xref / xtorch = speed-up of rnnkit",
    ]
    return "\n".join(lines)


def format_table(report: Dict[str, Any]) -> str:
    """The results as a fixed-width text table (``-`` where a runner was not timed)."""
    head = ["cell", "T,B,I,H", "pass", "rnnkit ms", "GFLOP/s", "ref ms", "xref",
            "torch ms", "torch GF/s", "xtorch", "check"]
    rows: List[List[str]] = []
    for r in report["results"]:
        t = r["times"]
        mine, ref, tch = t.get("rnnkit"), t.get("reference"), t.get("torch")
        check = r["check"]
        rows.append([
            r["cell"], Shape(**r["shape"]).label, r["pass"],
            _fmt(mine and mine["ms"], ".3f"), _fmt(mine and mine["gflops"], ".1f"),
            _fmt(ref and ref["ms"], ".3f"), _fmt(r.get("speedup_vs_reference"), ".1f"),
            _fmt(tch and tch["ms"], ".3f"), _fmt(tch and tch["gflops"], ".1f"),
            _fmt(r.get("speedup_vs_torch"), ".2f"),
            ("ok " if check["ok"] else "FAIL ") + check["oracle"],
        ])
    return render_table(head, rows, left={0, 1, 2, 10})


def render_table(head: List[str], rows: List[List[str]], left: Set[int]) -> str:
    """Fixed-width columns: a header, a rule, the rows; columns in ``left`` left-aligned."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(head)]

    def line(cells: List[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(head), line(["-" * w for w in widths])] + [line(row) for row in rows]
    return "\n".join(out)


def write_json(report: Dict[str, Any], path: str | Path) -> None:
    """Write the report as indented JSON."""
    Path(path).write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def write_png(report: Dict[str, Any], path: str | Path) -> None:
    """Bar chart of rnnkit's speed-ups (log scale) over PyTorch and over the NumPy reference.

    One panel per baseline, one bar group per (cell, shape), one bar per pass; then, when the
    report has overhead / streaming / imdb rows with a baseline, one panel of those (one bar
    per baseline: reference, torch, keras).

    Raises:
        PlotUnavailable: matplotlib is not importable (install ``rnnkit[plot]``).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable("--png needs matplotlib, which is not installed "
                              "(pip install 'rnnkit[plot]'); no chart written") from exc
    results = report["results"]
    groups: List[str] = []
    passes: List[str] = []
    for r in results:
        g = f"{r['cell']}\n{Shape(**r['shape']).label}"
        if g not in groups:
            groups.append(g)
        if r["pass"] not in passes:
            passes.append(r["pass"])
    baselines = [b for b in ("torch", "reference")
                 if any(r.get(f"speedup_vs_{b}") is not None for r in results)]
    if not baselines and results:
        baselines = ["torch"]
    extra = extra_speedups(report)
    n_panels = len(baselines) + (1 if extra else 0)
    if not n_panels:
        baselines, n_panels = ["torch"], 1
    n_bars = max(len(groups), len(extra))
    fig, axes = plt.subplots(n_panels, 1, figsize=(max(8.0, 0.75 * n_bars + 2), 4.2 * n_panels),
                             squeeze=False)
    width = 0.8 / max(len(passes), 1)
    for ax, base in zip(axes[:, 0], baselines):
        for k, pass_ in enumerate(passes):
            xs, ys = [], []
            for r in results:
                s = r.get(f"speedup_vs_{base}")
                if r["pass"] == pass_ and s is not None:
                    xs.append(groups.index(f"{r['cell']}\n{Shape(**r['shape']).label}") + (k - (len(passes) - 1) / 2) * width)
                    ys.append(s)
            ax.bar(xs, ys, width=width, label=pass_)
        _style(ax, f"speed-up over {'PyTorch' if base == 'torch' else 'NumPy reference'}", groups)
    if extra:
        ax = axes[-1, 0]
        labels = list(dict.fromkeys(label for label, _, _ in extra))
        bases = list(dict.fromkeys(base for _, base, _ in extra))
        width = 0.8 / len(bases)
        for k, base in enumerate(bases):
            pts = [(labels.index(label) + (k - (len(bases) - 1) / 2) * width, s)
                   for label, b, s in extra if b == base]
            ax.bar([x for x, _ in pts], [y for _, y in pts], width=width, label=f"vs {base}")
        _style(ax, "speed-up (overhead, streaming, imdb)", labels)
    m = report["meta"]
    fig.suptitle(f"rnnkit fp32, {m['rnnkit_threads']} threads, ISA {m['build_info'].get('isa')}; "
                 f"{m['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(str(path), dpi=120)
    plt.close(fig)


def _style(ax: Any, ylabel: str, ticks: List[str]) -> None:
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_xticks(range(len(ticks)))
    ax.set_xticklabels(ticks, fontsize=7)
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)


def extra_speedups(report: Dict[str, Any]) -> List[Tuple[str, str, float]]:
    """``(row label, baseline, speed-up)`` of the overhead, streaming and imdb rows that have
    a baseline (the chart's last panel), in report order."""
    out: List[Tuple[str, str, float]] = []
    for r in report.get("overhead") or []:
        out += [(f"overhead\n{r['pass']}", b, r[f"speedup_vs_{b}"]) for b in ("torch", "reference")
                if r.get(f"speedup_vs_{b}") is not None]
    for r in report.get("streaming") or []:
        if r.get("speedup_vs_torch") is not None:
            out.append((f"stream\nH={r['H']}", "torch", r["speedup_vs_torch"]))
    imdb = report.get("imdb") or {}
    for r in imdb.get("results", []):
        out += [(f"imdb\n{r['operation']}", b, r[f"speedup_vs_{b}"]) for b in ("torch", "keras")
                if r.get(f"speedup_vs_{b}") is not None]
    return out
