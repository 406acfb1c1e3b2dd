"""``plot_model``: draw a model's layer graph to a PNG with matplotlib (no Graphviz needed).

Boxes are the layers (one per layer, Input layers included), arrows follow the tensors
between layer calls (``layer._inbound_nodes``). Each layer sits on the row of its longest
path from an input, so the picture reads top to bottom (``rankdir="TB"``) or left to right
(``"LR"``) as Keras's Graphviz drawing does.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["plot_model", "model_to_graph"]

_MPL_HINT = ("plot_model needs matplotlib: install it with `pip install rnnkit[plot]` (the "
             "`plot` extra) or `pip install matplotlib`")


def _shape_text(shape: Any) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")" if shape is not None else "?"


def model_to_graph(model: Any) -> Tuple[List[Any], List[Tuple[int, int]]]:
    """``(layers, edges)``: every layer of ``model`` and ``(from, to)`` index pairs.

    A functional model's edges come from its layer calls (nodes); a Sequential model is a
    chain, preceded by its input (a pseudo-layer described by the model's input shape).
    """
    graph = getattr(model, "_graph", None)
    if graph is not None:  # functional Model
        layers = list(model.layers)
        index = {id(layer): i for i, layer in enumerate(layers)}
        edges = []
        for node in graph.nodes:
            for t in node.inputs:
                src = t.node.layer if t.node is not None else t.layer
                e = (index[id(src)], index[id(node.layer)])
                if e not in edges:
                    edges.append(e)
        return layers, edges
    layers = list(model.layers)
    shape = getattr(model, "_input_shape", None)
    if shape is not None:
        head = _InputBox(getattr(model, "_input_name", "input_layer"), shape)
        layers = [head] + layers
    return layers, [(i, i + 1) for i in range(len(layers) - 1)]


class _InputBox:
    """Stands for a Sequential model's input in the drawing."""

    def __init__(self, name: str, shape: Tuple[Optional[int], ...]) -> None:
        self.name = name
        self.batch_shape = (None,) + tuple(shape) if shape and shape[0] is not None else tuple(shape)
        self.input_shape = self.output_shape = self.batch_shape
        self.dtype = "float32"
        self.trainable = True


def _label(layer: Any, show_shapes: bool, show_dtype: bool, show_layer_names: bool,
           show_layer_activations: bool, show_trainable: bool) -> str:
    cls = "InputLayer" if isinstance(layer, _InputBox) else type(layer).__name__
    lines = [f"{layer.name} ({cls})" if show_layer_names else cls]
    if show_layer_activations:
        act = getattr(layer, "activation", None)
        if act is not None:
            lines.append("Activation: " + getattr(act, "__name__", str(act)))
    if show_dtype:
        lines.append(f"dtype: {getattr(layer, 'dtype', '?')}")
    if show_shapes:
        ins = getattr(layer, "input_shape", None)
        if cls == "InputLayer":
            ins = getattr(layer, "batch_shape", ins)
        lines.append(f"Input shape: {_shape_text(ins)}")
        lines.append(f"Output shape: {_shape_text(getattr(layer, 'output_shape', None))}")
    if show_trainable:
        lines.append("Trainable: " + ("yes" if getattr(layer, "trainable", True) else "no"))
    return "\n".join(lines)


def _levels(n: int, edges: List[Tuple[int, int]]) -> List[int]:
    # Longest path from a source: edges always go from an earlier layer to a later one in
    # Keras's layer order, so one pass in that order suffices; loop for safety otherwise.
    level = [0] * n
    for _ in range(n):
        changed = False
        for a, b in edges:
            if level[b] < level[a] + 1:
                level[b] = level[a] + 1
                changed = True
        if not changed:
            break
    return level


def plot_model(model: Any, to_file: str = "model.png", show_shapes: bool = False,
               show_dtype: bool = False, show_layer_names: bool = True, rankdir: str = "TB",
               expand_nested: bool = False, dpi: int = 200, show_layer_activations: bool = False,
               show_trainable: bool = False, **kwargs: Any) -> None:
    """Draw ``model``'s layers and their connections to ``to_file`` (PNG, or any format
    matplotlib writes, chosen by the file suffix).

    Arguments as ``keras.utils.plot_model``: box labels hold ``name (Class)`` and, on request,
    shapes, dtype, activation, trainability; ``rankdir`` is ``"TB"`` or ``"LR"``.
    ``expand_nested`` is accepted; nested models are drawn as one box. Needs matplotlib
    (ImportError naming the ``plot`` extra otherwise).
    """
    if kwargs:
        raise ValueError(f"plot_model: unsupported argument(s) {sorted(kwargs)}")
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"plot_model: `rankdir` must be 'TB' or 'LR', got {rankdir!r}")
    del expand_nested
    try:
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError as exc:
        raise ImportError(_MPL_HINT) from exc
    if not getattr(model, "built", True) or not model.layers:
        raise ValueError("plot_model: the model has no layers to draw yet (build it first)")
    layers, edges = model_to_graph(model)
    labels = [_label(la, show_shapes, show_dtype, show_layer_names, show_layer_activations,
                     show_trainable) for la in layers]
    level = _levels(len(layers), edges)
    rows: Dict[int, List[int]] = {}
    for i, lv in enumerate(level):
        rows.setdefault(lv, []).append(i)
    n_rows, n_cols = max(rows) + 1, max(len(r) for r in rows.values())
    n_lines = max(lab.count("\n") + 1 for lab in labels)
    box_w, box_h = 3.2, 0.35 + 0.22 * n_lines        # inches
    gap_w, gap_h = 0.5, 0.6
    pos: Dict[int, Tuple[float, float]] = {}
    for lv, members in rows.items():
        for k, i in enumerate(members):
            across = (k - (len(members) - 1) / 2) * (box_w + gap_w)
            down = -lv * (box_h + gap_h)
            pos[i] = (across, down) if rankdir == "TB" else (-down * (box_w + gap_w)
                                                            / (box_h + gap_h), -across * 0.5)
    if rankdir == "TB":
        fig_w, fig_h = n_cols * (box_w + gap_w) + gap_w, n_rows * (box_h + gap_h) + gap_h
    else:
        fig_w = n_rows * (box_w + gap_w) + gap_w
        fig_h = n_cols * (box_h + gap_h) + gap_h
    fig = Figure(figsize=(fig_w, fig_h))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - box_w / 2 - gap_w / 2, max(xs) + box_w / 2 + gap_w / 2)
    ax.set_ylim(min(ys) - box_h / 2 - gap_h / 2, max(ys) + box_h / 2 + gap_h / 2)
    for a, b in edges:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        if rankdir == "TB":
            start, end = (xa, ya - box_h / 2), (xb, yb + box_h / 2)
        else:
            start, end = (xa + box_w / 2, ya), (xb - box_w / 2, yb)
        ax.annotate("", xy=end, xytext=start,
                    arrowprops={"arrowstyle": "-|>", "color": "0.25", "lw": 1.0})
    for i, lab in enumerate(labels):
        x, y = pos[i]
        ax.text(x, y, lab, ha="center", va="center", fontsize=8, family="monospace",
                bbox={"boxstyle": "round,pad=0.4", "fc": "#eef3fb", "ec": "#3b5b92"})
    to_file = os.fspath(to_file)
    directory = os.path.dirname(os.path.abspath(to_file))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(to_file, dpi=dpi)
    return None
