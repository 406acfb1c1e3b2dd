"""The non-recurrent layers as ONNX nodes (inference behaviour: dropout and noise are identity).

Every emitter takes the builder, the layer, its input tensor names, their masks (ONNX bool
``(B, T)`` tensor names or None) and their Keras shapes (batch axis first, None = unknown), and
returns the output names and masks -- the masks following rnnkit's ``compute_mask`` of the layer.
An emitter raises :class:`ExportError` naming the layer for an option it cannot express.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import activations as acts_mod
from ..layers import convolutional, core, embedding, merging, noise, normalization, pooling
from ..layers import reshaping, wrappers
from ._onnx_graph import ExportError, GraphBuilder

__all__ = ["EMITTERS", "apply_activation"]

Masks = List[Optional[str]]
Shapes = List[Tuple[Optional[int], ...]]
Outputs = Tuple[List[str], Masks]


def _f32(a: Any) -> np.ndarray:
    return np.asarray(a, np.float32)


# -- activations --------------------------------------------------------------------------
def apply_activation(b: GraphBuilder, name: str, x: str, hint: str, where: str) -> str:
    """``activation(x)`` for an rnnkit activation name (softmax/log_softmax on the last axis)."""
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus",
              "softsign": "Softsign", "exponential": "Exp"}
    if name == "linear":
        return x
    if name in simple:
        return b.op(simple[name], [x], hint)
    if name in ("softmax", "log_softmax"):
        return b.op("Softmax" if name == "softmax" else "LogSoftmax", [x], hint, axis=-1)
    if name == "elu":
        return b.op("Elu", [x], hint, alpha=1.0)
    if name == "selu":
        return b.op("Selu", [x], hint, alpha=acts_mod.SELU_ALPHA, gamma=acts_mod.SELU_SCALE)
    if name == "leaky_relu":
        return b.op("LeakyRelu", [x], hint, alpha=0.2)
    if name == "relu6":
        return b.op("Clip", [x, b.const(np.float32(0), "zero"), b.const(np.float32(6), "six")],
                    hint)
    if name in ("hard_sigmoid", "hard_silu"):
        hs = b.op("HardSigmoid", [x], hint, alpha=1.0 / 6.0, beta=0.5)
        return hs if name == "hard_sigmoid" else b.op("Mul", [x, hs], hint)
    if name == "silu":
        return b.op("Mul", [x, b.op("Sigmoid", [x], hint)], hint)
    if name == "mish":
        return b.op("Mul", [x, b.op("Tanh", [b.op("Softplus", [x], hint)], hint)], hint)
    if name == "gelu":  # exact: x/2 (1 + erf(x / sqrt 2))
        e = b.op("Erf", [b.op("Mul", [x, b.const(np.float32(math.sqrt(0.5)), "rsqrt2")],
                              hint)], hint)
        half_x = b.op("Mul", [x, b.const(np.float32(0.5), "half")], hint)
        return b.op("Mul", [half_x, b.op("Add", [e, b.const(np.float32(1), "one")], hint)],
                    hint)
    raise ExportError(f"layer {where!r}: activation {name!r} cannot be exported to ONNX")


# -- core ---------------------------------------------------------------------------------
def _dense(b: GraphBuilder, layer: core.Dense, ins: List[str], masks: Masks,
           shapes: Shapes) -> Outputs:
    z = b.op("MatMul", [ins[0], b.const(_f32(layer.kernel.value), f"{layer.name}/kernel")],
             layer.name)  # (..., in) @ (in, units)
    if layer.bias is not None:
        z = b.op("Add", [z, b.const(_f32(layer.bias.value), f"{layer.name}/bias")], layer.name)
    return [apply_activation(b, layer.activation.name, z, layer.name, layer.name)], masks[:1]


def _identity(b: GraphBuilder, layer: Any, ins: List[str], masks: Masks,
              shapes: Shapes) -> Outputs:
    """Dropout, noise layers: the identity at inference; the mask passes."""
    return ins[:1], masks[:1]


def _activation(b: GraphBuilder, layer: reshaping.Activation, ins: List[str], masks: Masks,
                shapes: Shapes) -> Outputs:
    return [apply_activation(b, layer.activation.name, ins[0], layer.name, layer.name)], masks[:1]


def _masking(b: GraphBuilder, layer: core.Masking, ins: List[str], masks: Masks,
             shapes: Shapes) -> Outputs:
    """keep (B, T) = any(x != mask_value, axis=-1); output x * keep."""
    h = layer.name
    differs = b.op("Not", [b.op("Equal", [ins[0], b.const(np.float32(layer.mask_value),
                                                            f"{h}/mask_value")], h)], h)
    keep = b.reduce("ReduceMax", b.op("Cast", [differs], h, to=b.onnx.TensorProto.FLOAT),
                    [-1], h, keepdims=True)                       # (B, T, 1) float 0/1
    out = b.op("Mul", [ins[0], keep], h)
    mask = b.op("Cast", [b.squeeze(keep, [-1], h)], h, to=b.onnx.TensorProto.BOOL)
    return [out], [mask]


def _embedding(b: GraphBuilder, layer: embedding.Embedding, ins: List[str], masks: Masks,
               shapes: Shapes) -> Outputs:
    h = layer.name
    ids = b.op("Cast", [ins[0]], h, to=b.onnx.TensorProto.INT64)
    out = b.op("Gather", [b.const(_f32(layer.embeddings.value), f"{h}/embeddings"), ids], h,
               axis=0)                                            # (B, T) -> (B, T, D)
    mask = None
    if layer.mask_zero:
        mask = b.op("Not", [b.op("Equal", [ids, b.const(np.int64(0), "zero_i64")], h)], h)
    return [out], [mask]


def _time_distributed(b: GraphBuilder, layer: wrappers.TimeDistributed, ins: List[str],
                      masks: Masks, shapes: Shapes) -> Outputs:
    """Layers acting on the last axis run on ``(B, T, ...)`` as they are."""
    inner = layer.layer
    if type(inner) not in (core.Dense, reshaping.Activation, core.Dropout):
        raise ExportError(f"layer {layer.name!r} (TimeDistributed): wrapping "
                          f"{type(inner).__name__} cannot be exported to ONNX (supported: "
                          "Dense, Activation, Dropout)")
    outs, _ = EMITTERS[type(inner)](b, inner, ins, [None], shapes)
    return outs, masks[:1]


# -- merges -------------------------------------------------------------------------------
def _same_rank(b: GraphBuilder, ins: List[str], shapes: Shapes, hint: str) -> List[str]:
    """rnnkit broadcasts lower-rank inputs by inserting axes right after the batch axis."""
    top = max(len(s) for s in shapes)
    return [x if len(s) == top else b.unsqueeze(x, list(range(1, 1 + top - len(s))), hint)
            for x, s in zip(ins, shapes)]


def _or_masks(b: GraphBuilder, masks: Masks, hint: str) -> Optional[str]:
    """OR of the masks; None as soon as one input has none (rnnkit's merge rule)."""
    if any(m is None for m in masks):
        return None
    out = masks[0]
    for m in masks[1:]:
        out = b.op("Or", [out, m], hint)  # type: ignore[list-item]
    return out


def _merge(op: str) -> Callable[..., Outputs]:
    def emit(b: GraphBuilder, layer: Any, ins: List[str], masks: Masks,
             shapes: Shapes) -> Outputs:
        h = layer.name
        if op in ("Mul", "Max", "Min") and any(m is not None for m in masks):
            raise ExportError(f"layer {h!r} ({type(layer).__name__}): masked inputs change "
                              "its result (masked entries are skipped) and cannot be exported "
                              "to ONNX")
        xs = _same_rank(b, ins, shapes, h)
        if op == "Sub":
            y = b.op("Sub", xs, h)
        elif op == "Mean":  # rnnkit: sum / n
            total = xs[0]
            for x in xs[1:]:
                total = b.op("Add", [total, x], h)
            y = b.op("Div", [total, b.const(np.float32(len(xs)), "count")], h)
        elif op == "Add":
            y = xs[0]
            for x in xs[1:]:
                y = b.op("Add", [y, x], h)
        else:
            y = xs[0]
            for x in xs[1:]:
                y = b.op(op, [y, x], h)
        return [y], [_or_masks(b, masks, h)]
    return emit


def _concatenate(b: GraphBuilder, layer: merging.Concatenate, ins: List[str], masks: Masks,
                 shapes: Shapes) -> Outputs:
    h = layer.name
    rank = len(shapes[0])
    axis = layer.axis % rank
    y = b.op("Concat", ins, h, axis=axis)
    if all(m is None for m in masks):
        return [y], [None]
    if axis != rank - 1 or rank != 3:
        raise ExportError(f"layer {h!r} (Concatenate): joining masked inputs along axis "
                          f"{layer.axis} cannot be exported to ONNX (only the last axis of "
                          "(batch, time, features) inputs)")
    # Missing masks count as all-True, and the result is their OR: all-True = no mask.
    return [y], [_or_masks(b, masks, h)]


# -- pooling ------------------------------------------------------------------------------
def _global_average(b: GraphBuilder, layer: pooling.GlobalAveragePooling1D, ins: List[str],
                    masks: Masks, shapes: Shapes) -> Outputs:
    h, x, mask = layer.name, ins[0], masks[0]
    if mask is None:
        return [b.reduce("ReduceMean", x, [1], h, keepdims=layer.keepdims)], [None]
    m = b.unsqueeze(b.op("Cast", [mask], h, to=b.onnx.TensorProto.FLOAT), [2], h)  # (B, T, 1)
    total = b.reduce("ReduceSum", b.op("Mul", [x, m], h), [1], h, keepdims=layer.keepdims)
    count = b.reduce("ReduceSum", m, [1], h, keepdims=layer.keepdims)
    return [b.op("Div", [total, count], h)], [None]


def _global_max(b: GraphBuilder, layer: pooling.GlobalMaxPooling1D, ins: List[str],
                masks: Masks, shapes: Shapes) -> Outputs:
    return [b.reduce("ReduceMax", ins[0], [1], layer.name, keepdims=layer.keepdims)], [None]


def _channels_first(b: GraphBuilder, x: str, hint: str) -> str:
    return b.op("Transpose", [x], hint, perm=[0, 2, 1])  # (B, T, C) <-> (B, C, T)


def _pads(padding: str, extent: int, stride: int) -> Dict[str, Any]:
    """ONNX padding attributes for Keras's "valid" / "same" / "causal" over a window spanning
    ``extent`` steps. TensorFlow's "same" puts the odd step on the right: with stride 1 that is
    fixed pads (ONNX Runtime refuses SAME_* with dilations), otherwise ONNX's SAME_UPPER."""
    if padding == "same" and stride > 1:
        return {"auto_pad": "SAME_UPPER"}
    if padding == "same":
        return {"pads": [(extent - 1) // 2, extent - 1 - (extent - 1) // 2]}
    return {"pads": [extent - 1 if padding == "causal" else 0, 0]}


def _pool(op: str) -> Callable[..., Outputs]:
    def emit(b: GraphBuilder, layer: Any, ins: List[str], masks: Masks,
             shapes: Shapes) -> Outputs:
        h = layer.name
        y = b.op(op, [_channels_first(b, ins[0], h)], h, kernel_shape=[layer.pool_size],
                 strides=[layer.strides], **_pads(layer.padding, layer.pool_size, layer.strides))
        return [_channels_first(b, y, h)], [None]
    return emit


def _conv1d(b: GraphBuilder, layer: convolutional.Conv1D, ins: List[str], masks: Masks,
            shapes: Shapes) -> Outputs:
    h = layer.name
    w = b.const(_f32(layer.kernel.value).transpose(2, 1, 0), f"{h}/kernel")  # (F, C, k)
    inputs = [_channels_first(b, ins[0], h), w]
    if layer.bias is not None:
        inputs.append(b.const(_f32(layer.bias.value), f"{h}/bias"))
    y = b.op("Conv", inputs, h, kernel_shape=[layer.kernel_size], strides=[layer.strides],
             dilations=[layer.dilation_rate], **_pads(layer.padding, layer._extent, layer.strides))
    y = _channels_first(b, y, h)
    return [apply_activation(b, layer.activation.name, y, h, h)], [None]


# -- normalization ------------------------------------------------------------------------
def _layer_norm(b: GraphBuilder, layer: normalization.LayerNormalization, ins: List[str],
                masks: Masks, shapes: Shapes) -> Outputs:
    h = layer.name
    rank = len(shapes[0])
    if sorted(a % rank for a in layer.axis) != [rank - 1]:
        raise ExportError(f"layer {h!r} (LayerNormalization): only axis=-1 can be exported "
                          f"to ONNX, got axis={layer.axis}")
    n = shapes[0][-1]
    gamma = (_f32(layer.gamma.value).reshape(-1) if layer.gamma is not None
             else np.ones(n, np.float32))
    beta = (_f32(layer.beta.value).reshape(-1) if layer.beta is not None
            else np.zeros(n, np.float32))
    y = b.op("LayerNormalization", [ins[0], b.const(gamma, f"{h}/gamma"),
                                    b.const(beta, f"{h}/beta")], h, axis=-1,
             epsilon=float(layer.epsilon))
    return [y], masks[:1]


def _batch_norm(b: GraphBuilder, layer: normalization.BatchNormalization, ins: List[str],
                masks: Masks, shapes: Shapes) -> Outputs:
    """Inference: ``x * scale + shift`` with the moving statistics folded in."""
    h = layer.name
    rank = len(shapes[0])
    ax = layer.axis % rank
    mean = np.asarray(layer.moving_mean.value, np.float64).reshape(-1)
    var = np.asarray(layer.moving_variance.value, np.float64).reshape(-1)
    scale = 1.0 / np.sqrt(var + layer.epsilon)
    if layer.gamma is not None:
        scale = scale * np.asarray(layer.gamma.value, np.float64).reshape(-1)
    shift = -mean * scale
    if layer.beta is not None:
        shift = shift + np.asarray(layer.beta.value, np.float64).reshape(-1)
    bshape = [1] * (rank - 1 - ax) if ax != rank - 1 else []
    scale_c = b.const(_f32(scale).reshape([-1] + bshape), f"{h}/scale")
    shift_c = b.const(_f32(shift).reshape([-1] + bshape), f"{h}/shift")
    return [b.op("Add", [b.op("Mul", [ins[0], scale_c], h), shift_c], h)], masks[:1]


# -- reshaping ----------------------------------------------------------------------------
def _flatten(b: GraphBuilder, layer: Any, ins: List[str], masks: Masks,
             shapes: Shapes) -> Outputs:
    return [b.op("Flatten", ins[:1], layer.name, axis=1)], [None]


def _reshape(b: GraphBuilder, layer: Any, ins: List[str], masks: Masks,
             shapes: Shapes) -> Outputs:
    return [b.op("Reshape", [ins[0], b.ints([0] + list(layer.target_shape))], layer.name)], [None]


def _permute(b: GraphBuilder, layer: Any, ins: List[str], masks: Masks,
             shapes: Shapes) -> Outputs:
    return [b.op("Transpose", ins[:1], layer.name, perm=[0] + list(layer.dims))], [None]


def _repeat_vector(b: GraphBuilder, layer: Any, ins: List[str], masks: Masks,
                   shapes: Shapes) -> Outputs:
    h = layer.name  # (B, F) -> (B, 1, F) -> (B, n, F)
    return [b.op("Tile", [b.unsqueeze(ins[0], [1], h), b.ints([1, layer.n, 1])], h)], [None]


EMITTERS: Dict[type, Callable[..., Outputs]] = {
    core.Dense: _dense,
    core.Dropout: _identity,
    noise.SpatialDropout1D: _identity,
    noise.GaussianNoise: _identity,
    noise.GaussianDropout: _identity,
    core.Masking: _masking,
    embedding.Embedding: _embedding,
    reshaping.Activation: _activation,
    wrappers.TimeDistributed: _time_distributed,
    merging.Add: _merge("Add"),
    merging.Subtract: _merge("Sub"),
    merging.Average: _merge("Mean"),
    merging.Multiply: _merge("Mul"),
    merging.Maximum: _merge("Max"),
    merging.Minimum: _merge("Min"),
    merging.Concatenate: _concatenate,
    pooling.GlobalAveragePooling1D: _global_average,
    pooling.GlobalMaxPooling1D: _global_max,
    pooling.MaxPooling1D: _pool("MaxPool"),
    pooling.AveragePooling1D: _pool("AveragePool"),
    convolutional.Conv1D: _conv1d,
    normalization.LayerNormalization: _layer_norm,
    normalization.BatchNormalization: _batch_norm,
    reshaping.Flatten: _flatten,
    reshaping.Reshape: _reshape,
    reshaping.Permute: _permute,
    reshaping.RepeatVector: _repeat_vector,
}
