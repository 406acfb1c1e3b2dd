"""Attention layers: ``Attention`` (Luong), ``AdditiveAttention`` (Bahdanau) and
``MultiHeadAttention``, NumPy forward and exact backward, numbers as Keras 3.

Shapes: query ``(B, Tq, Dq)``, value ``(B, Tv, Dv)``, key ``(B, Tv, Dk)`` (key defaults to
value). Scores ``(B, Tq, Tv)`` (``(B, heads, Tq, Tv)`` for MultiHeadAttention).

Calling with ``return_attention_scores=True`` returns ``[output, scores]`` (the softmax
weights before dropout); ``backward`` then takes ``[d_output, d_scores]`` (``d_scores`` may be
None).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import backend, initializers
from .. import config_schema as cs
from .base import Layer, Shape
from .registry import register

__all__ = ["Attention", "AdditiveAttention", "MultiHeadAttention"]

#: Keras's Attention subtracts this from masked scores (``scores - 1e9``, float32/64).
_MASK_BIAS = 1.0e9


def _shape_list(input_shape: Any) -> Any:
    """A list of shapes, also from the tuple of shapes ``Layer._ensure_built`` passes."""
    if isinstance(input_shape, tuple) and input_shape and all(
            isinstance(s, (tuple, list)) for s in input_shape):
        return [tuple(s) for s in input_shape]
    return input_shape


def _check_rate(layer: str, value: Any) -> float:
    if not cs.is_num(value) or not 0 <= value < 1:
        raise ValueError(f"{layer}: `dropout` must be a float in [0, 1), got {value!r}")
    return float(value)


def _softmax(s: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (max subtracted)."""
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_backward(w: np.ndarray, dw: np.ndarray) -> np.ndarray:
    """dL/ds for ``w = softmax(s)`` over the last axis."""
    return w * (dw - (dw * w).sum(axis=-1, keepdims=True))


def _causal(tq: int, tv: int) -> np.ndarray:
    """``(Tq, Tv)`` bool: query step i may attend to key steps j <= i (Keras's cumsum rule)."""
    return np.arange(tq)[:, None] >= np.arange(tv)[None, :]


def _dropout_keep(layer: Any, shape: Tuple[int, ...], dtype: Any) -> np.ndarray:
    """Inverted-dropout multiplier (0 or 1/(1-rate)) for attention weights."""
    rate = layer.dropout
    rng = layer._rng if layer._rng is not None else backend.rng()
    return ((rng.random(shape) >= rate) / (1.0 - rate)).astype(dtype)


class _ScoresFlag:
    """Mixin: remembers the last call's ``return_attention_scores`` (``_split_call`` sees it
    just before a symbolic call builds the layer and asks for output shapes and masks)."""

    _return_scores = False

    def _note_scores_flag(self, kwargs: Dict[str, Any]) -> None:
        self._return_scores = bool(kwargs.get("return_attention_scores", False))

    def _scores_flag(self, kwargs: Dict[str, Any]) -> bool:
        flag = kwargs.get("return_attention_scores")
        return self._return_scores if flag is None else bool(flag)


@register
class Attention(_ScoresFlag, Layer):
    """Dot-product (Luong) attention, Keras 3 ``keras.layers.Attention``.

    Called as ``layer([query, value])`` or ``layer([query, value, key])``; ``mask`` is
    ``[query_mask, value_mask]`` (bool ``(B, Tq)``, ``(B, Tv)``; in a functional model the
    inputs' masks arrive there). Scores: ``"dot"``: ``scale * q k^T``; ``"concat"``:
    ``concat_score_weight * sum(tanh(scale * (q_i + k_j)))``. Masked keys (value mask,
    ``use_causal_mask``) get ``-1e9`` added before the softmax; the output is zero at
    masked query steps; the output mask is the query mask. ``dropout`` drops attention
    weights in training.

    Weights (Keras order): ``scale`` ``()`` (ones, when ``use_scale``),
    ``concat_score_weight`` ``()`` (ones, ``score_mode="concat"``).
    Output ``(B, Tq, Dv)`` (and scores ``(B, Tq, Tv)`` with ``return_attention_scores``).
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "use_scale": cs.v_bool,
                     "score_mode": cs.v_choice("dot", "concat"), "dropout": cs.v_num,
                     "seed": cs.v_seed}
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0,
                 seed: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        cls = type(self).__name__
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"{cls}: `score_mode` must be 'dot' or 'concat', got {score_mode!r}")
        if not isinstance(use_scale, (bool, np.bool_)):
            raise ValueError(f"{cls}: `use_scale` must be a bool, got {use_scale!r}")
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = _check_rate(cls, dropout)
        self.seed = seed
        self._rng = backend.rng(seed) if seed is not None else None
        self.scale: Any = None
        self.concat_score_weight: Any = None

    # -- shapes --------------------------------------------------------------------------
    def _split_call(self, args: Sequence[Any], kwargs: Dict[str, Any]) -> Tuple[Any, Dict[str, Any]]:
        inputs, kwargs = Layer._split_call(self, args, kwargs)
        self._note_scores_flag(kwargs)
        return inputs, kwargs

    def _check_shapes(self, input_shape: Any) -> List[Shape]:
        cls = type(self).__name__
        input_shape = _shape_list(input_shape)
        if not isinstance(input_shape, list) or len(input_shape) not in (2, 3):
            raise ValueError(f"{cls} {self.name!r} must be called on a list [query, value] or "
                             f"[query, value, key], got input shape {input_shape}")
        shapes = [tuple(s) for s in input_shape]
        if any(len(s) != 3 for s in shapes):
            raise ValueError(f"{cls} {self.name!r} expects 3-D inputs (batch, steps, dim), got "
                             f"shapes {shapes}")
        q, v = shapes[0], shapes[1]
        k = shapes[2] if len(shapes) == 3 else v
        if v[1] is not None and k[1] is not None and v[1] != k[1]:
            raise ValueError(f"{cls} {self.name!r}: value and key need the same number of steps, "
                             f"got shapes {v} and {k}")
        if q[-1] is not None and k[-1] is not None and q[-1] != k[-1]:
            raise ValueError(f"{cls} {self.name!r}: query and key need the same last axis, got "
                             f"shapes {q} and {k}")
        return shapes

    def build(self, input_shape: Any) -> None:
        shapes = self._check_shapes(input_shape)
        self._build_weights(shapes)
        Layer.build(self, shapes)
        self.input_shape = shapes  # type: ignore[assignment]

    def _scalar_weight(self, name: str) -> Any:
        w = self.add_weight(name, (), "ones")
        w.value = w.value.reshape(())  # 0-d, as Keras (add_weight gives at least 1-d)
        return w

    def _build_weights(self, shapes: List[Shape]) -> None:
        if self.use_scale:
            self.scale = self._scalar_weight("scale")
        if self.score_mode == "concat":
            self.concat_score_weight = self._scalar_weight("concat_score_weight")

    def compute_output_shape(self, input_shape: Any, return_attention_scores: Optional[bool] = None
                             ) -> Any:
        shapes = self._check_shapes(input_shape)
        q, v = shapes[0], shapes[1]
        out = tuple(q[:-1]) + (v[-1],)
        flag = self._scores_flag({"return_attention_scores": return_attention_scores})
        return [out, tuple(q[:-1]) + (v[1],)] if flag else out

    def compute_mask(self, x: Any, mask: Any = None, **kwargs: Any) -> Any:
        qm = mask[0] if isinstance(mask, (list, tuple)) and mask else None
        return [qm, None] if self._scores_flag(kwargs) else qm

    def _check_symbolic_input(self, input_shape: Any) -> None:
        self._check_shapes(input_shape)
        scale = self.scale if self.built else None
        if scale is not None and scale.shape:  # AdditiveAttention's (dim,) scale
            got = _shape_list(input_shape)[0][-1]
            if got is not None and got != scale.shape[0]:
                raise ValueError(f"expected a query last axis of {scale.shape[0]} (the layer "
                                 f"was built for it), got {got}")

    # -- scores (overridden by AdditiveAttention) -----------------------------------------
    def _scores(self, q: np.ndarray, k: np.ndarray) -> Tuple[np.ndarray, Any]:
        """Scores ``(B, Tq, Tv)`` and what :meth:`_scores_backward` needs."""
        if self.score_mode == "dot":
            qk = q @ np.swapaxes(k, -1, -2)  # (B, Tq, Tv)
            s = qk * self.scale.value if self.scale is not None else qk
            return s, qk
        z = q[:, :, None, :] + k[:, None, :, :]  # (B, Tq, Tv, D)
        th = np.tanh(z * self.scale.value if self.scale is not None else z)
        s = self.concat_score_weight.value * th.sum(axis=-1)
        return s, (z, th)

    def _scores_backward(self, ds: np.ndarray, q: np.ndarray, k: np.ndarray, saved: Any
                         ) -> Tuple[np.ndarray, np.ndarray]:
        """dL/dq, dL/dk from dL/dscores; sets the weights' gradients."""
        if self.score_mode == "dot":
            qk = saved
            if self.scale is not None:
                self.scale.grad = np.asarray((ds * qk).sum(), dtype=self.dtype)
                ds = ds * self.scale.value
            return ds @ k, np.swapaxes(ds, -1, -2) @ q
        z, th = saved
        csw = self.concat_score_weight
        csw.grad = np.asarray((ds * th.sum(axis=-1)).sum(), dtype=self.dtype)
        dz = (ds * csw.value)[..., None] * (1.0 - th * th)  # d/d(scale*z)
        if self.scale is not None:
            self.scale.grad = np.asarray((dz * z).sum(), dtype=self.dtype)
            dz = dz * self.scale.value
        return dz.sum(axis=2), dz.sum(axis=1)

    # -- forward / backward ---------------------------------------------------------------
    def forward(self, x: Any, mask: Any = None, training: bool = False, need_grad: bool = False,
                return_attention_scores: bool = False, use_causal_mask: bool = False) -> Any:
        if not isinstance(x, (list, tuple)) or len(x) not in (2, 3):
            raise ValueError(f"{type(self).__name__} {self.name!r} must be called on a list "
                             "[query, value] or [query, value, key]")
        arrays = [self._cast_input(a, (3,)) for a in x]
        self._check_shapes([a.shape for a in arrays])
        q, v = arrays[0], arrays[1]
        k = arrays[2] if len(arrays) == 3 else v
        if mask is not None and not isinstance(mask, (list, tuple)):
            raise ValueError(f"{type(self).__name__} {self.name!r}: `mask` must be a list "
                             "[query_mask, value_mask]")
        qm = vm = None
        if mask:
            qm = None if mask[0] is None else np.asarray(mask[0], dtype=bool)
            vm = None if len(mask) < 2 or mask[1] is None else np.asarray(mask[1], dtype=bool)
        b, tq, tv = q.shape[0], q.shape[1], v.shape[1]
        for name, m, t in (("query_mask", qm, tq), ("value_mask", vm, tv)):
            if m is not None and m.shape != (b, t):
                raise ValueError(f"{type(self).__name__} {self.name!r}: `{name}` has shape "
                                 f"{m.shape}, expected {(b, t)}")
        s, saved = self._scores(q, k)  # (B, Tq, Tv)
        keep_keys: Optional[np.ndarray] = None  # (B|1, Tq|1, Tv) bool
        if vm is not None:
            keep_keys = vm[:, None, :]
        if use_causal_mask:
            causal = _causal(tq, tv)[None]
            keep_keys = causal if keep_keys is None else keep_keys & causal
        if keep_keys is not None:
            s = np.where(keep_keys, s, s - s.dtype.type(_MASK_BIAS))
        w = _softmax(s)  # (B, Tq, Tv)
        keep = None
        if training and self.dropout > 0:
            keep = _dropout_keep(self, w.shape, w.dtype)
        wd = w if keep is None else w * keep
        out = wd @ v  # (B, Tq, Dv)
        qkeep = None if qm is None else qm[..., None].astype(out.dtype)
        if qkeep is not None:
            out = out * qkeep
        if need_grad:
            self._cache = (q, v, k, len(arrays), saved, w, keep, qkeep, return_attention_scores)
        return [out, w] if return_attention_scores else out

    def backward(self, dy: Any) -> List[Optional[np.ndarray]]:
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward() needs a forward(need_grad=True) first")
        q, v, k, n_in, saved, w, keep, qkeep, scores_out = self._cache
        dscores = None
        if scores_out:
            dy, dscores = dy[0], dy[1]
        do = dy if qkeep is None else dy * qkeep
        wd = w if keep is None else w * keep
        dv = np.swapaxes(wd, -1, -2) @ do  # (B, Tv, Dv)
        dw = do @ np.swapaxes(v, -1, -2)  # (B, Tq, Tv)
        if keep is not None:
            dw = dw * keep
        if dscores is not None:
            dw = dw + dscores
        ds = _softmax_backward(w, dw)
        dq, dk = self._scores_backward(ds, q, k, saved)
        self._cache = None
        if n_in == 2:
            return [dq, dv + dk]
        return [dq, dv, dk]

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "use_scale": self.use_scale,
                "score_mode": self.score_mode, "dropout": self.dropout, "seed": self.seed}


@register
class AdditiveAttention(Attention):
    """Additive (Bahdanau) attention, Keras 3 ``keras.layers.AdditiveAttention``:
    scores ``sum(scale * tanh(q_i + k_j))`` over the feature axis.

    Called and masked as :class:`Attention`. Weight: ``scale`` ``(dim,)`` (glorot_uniform,
    when ``use_scale``; ``dim`` = the query's last axis).
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "use_scale": cs.v_bool, "dropout": cs.v_num,
                     "seed": cs.v_seed}
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def _build_weights(self, shapes: List[Shape]) -> None:
        dim = shapes[0][-1]
        if dim is None:
            raise ValueError(f"AdditiveAttention {self.name!r}: the query's last axis must be "
                             f"known, got shape {shapes[0]}")
        if self.use_scale:
            self.scale = self.add_weight("scale", (dim,), "glorot_uniform")

    def _scores(self, q: np.ndarray, k: np.ndarray) -> Tuple[np.ndarray, Any]:
        th = np.tanh(q[:, :, None, :] + k[:, None, :, :])  # (B, Tq, Tv, D)
        s = (th * self.scale.value).sum(axis=-1) if self.scale is not None else th.sum(axis=-1)
        return s, th

    def _scores_backward(self, ds: np.ndarray, q: np.ndarray, k: np.ndarray, saved: Any
                         ) -> Tuple[np.ndarray, np.ndarray]:
        th = saved
        dth = ds[..., None] * (self.scale.value if self.scale is not None else 1.0)
        if self.scale is not None:
            self.scale.grad = (ds[..., None] * th).sum(axis=(0, 1, 2))
        dz = dth * (1.0 - th * th)
        return dz.sum(axis=2), dz.sum(axis=1)

    def get_config(self) -> Dict[str, Any]:
        cfg = super().get_config()
        del cfg["score_mode"]
        return cfg


# ------------------------------------------------------------------------------------------
def _v_output_shape(v: Any, w: str) -> None:
    if v is None or (cs.is_int(v) and 0 < v <= cs.MAX_DIM):
        return
    if isinstance(v, list) and len(v) == 1:
        cs.v_dim(v[0], f"{w}[0]")
        return
    cs.fail(w, f"expected null, a size or a list of one size, got {cs.short(v)}")


def _v_attention_axes(v: Any, w: str) -> None:
    if v is None or v in (1, -2) and cs.is_int(v):
        return
    if isinstance(v, list) and len(v) == 1 and cs.is_int(v[0]) and v[0] in (1, -2):
        return
    cs.fail(w, f"only the default attention axes (null or [1]) are supported, got {cs.short(v)}")


@register
class MultiHeadAttention(_ScoresFlag, Layer):
    """Multi-head attention, Keras 3 ``keras.layers.MultiHeadAttention`` on 3-D inputs.

    Call: ``mha(query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
    attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False)``.
    Inputs (see :meth:`_split_call`): ``[query, value]``, ``[query, value, key]`` or
    ``[query, value, key, attention_mask]`` (key = value when only the mask is given);
    ``attention_mask`` (bool ``(B, Tq, Tv)``) takes no gradient. The masks of query, value and
    key (from the graph, or the ``*_mask`` keywords) combine with ``attention_mask`` and the
    causal mask by AND, as Keras does; the output mask is the query mask.

    ``Q = query @ Wq + bq`` ``(B, Tq, heads, key_dim)``, likewise K, V (``value_dim``);
    ``scores = softmax(Q K^T / sqrt(key_dim))`` ``(B, heads, Tq, Tv)`` over allowed keys;
    output ``sum_heads (scores V) @ Wo + bo`` ``(B, Tq, D_out)`` (``D_out`` = ``output_shape``
    or the query's last axis). As Keras's fused path, a query row with no allowed key averages
    all values, except with ``return_attention_scores`` or ``dropout > 0`` where Keras's
    softmax layer gives zeros there.

    Weights (Keras order, EinsumDense names): ``query/kernel (Dq, heads, key_dim)``,
    ``query/bias (heads, key_dim)``, ``key/kernel (Dk, heads, key_dim)``, ``key/bias``,
    ``value/kernel (Dv, heads, value_dim)``, ``value/bias (heads, value_dim)``,
    ``attention_output/kernel (heads, value_dim, D_out)``, ``attention_output/bias (D_out,)``
    (no biases with ``use_bias=False``).
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "num_heads": cs.v_dim, "key_dim": cs.v_dim,
                     "value_dim": cs.v_opt_dim, "dropout": cs.v_num, "use_bias": cs.v_bool,
                     "use_gate": cs.v_choice(False), "output_shape": _v_output_shape,
                     "attention_axes": _v_attention_axes, "sliding_window": cs.v_choice(None),
                     "kernel_initializer": cs.v_initializer,
                     "bias_initializer": cs.v_initializer, "seed": cs.v_seed,
                     **{k: cs.v_regularizer for k in (
                         "kernel_regularizer", "bias_regularizer", "activity_regularizer",
                         "kernel_constraint", "bias_constraint")}}
    CONFIG_REQUIRED: Tuple[str, ...] = ("num_heads", "key_dim")

    supports_masking = True

    def __init__(self, num_heads: int, key_dim: int, value_dim: Optional[int] = None,
                 dropout: float = 0.0, use_bias: bool = True, output_shape: Any = None,
                 attention_axes: Any = None, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", seed: Optional[int] = None,
                 use_gate: bool = False, sliding_window: Optional[int] = None,
                 **kwargs: Any) -> None:
        for reg in ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                    "kernel_constraint", "bias_constraint"):
            if kwargs.pop(reg, None) is not None:
                raise ValueError(f"MultiHeadAttention: `{reg}` is not supported by rnnkit")
        kwargs.pop("flash_attention", None)  # no fused kernels here: accepted and ignored
        super().__init__(**kwargs)
        for arg, val in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not cs.is_int(val) or val <= 0:
                raise ValueError(f"MultiHeadAttention: `{arg}` must be a positive int, got {val!r}")
        if value_dim is not None and (not cs.is_int(value_dim) or value_dim <= 0):
            raise ValueError(f"MultiHeadAttention: `value_dim` must be a positive int or None, "
                             f"got {value_dim!r}")
        if use_gate:
            raise ValueError("MultiHeadAttention: `use_gate=True` is not supported by rnnkit")
        if sliding_window is not None:
            raise ValueError("MultiHeadAttention: `sliding_window` is not supported by rnnkit")
        if output_shape is not None and not isinstance(output_shape, (int, list, tuple)):
            raise ValueError(f"MultiHeadAttention: `output_shape` must be an int or a list of "
                             f"one int, got {output_shape!r}")
        if isinstance(output_shape, (list, tuple)):
            if len(output_shape) != 1:
                raise ValueError("MultiHeadAttention: only a 1-D `output_shape` (one size) is "
                                 f"supported, got {output_shape!r}")
            output_shape = output_shape[0]
        if output_shape is not None and (not cs.is_int(output_shape) or output_shape <= 0):
            raise ValueError(f"MultiHeadAttention: `output_shape` must be positive, got "
                             f"{output_shape!r}")
        axes = attention_axes
        if isinstance(axes, (list, tuple)) and len(axes) == 1:
            axes = axes[0]
        if axes is not None and axes not in (1, -2):
            raise ValueError("MultiHeadAttention: only the default `attention_axes` (None, i.e. "
                             f"the time axis 1) is supported, got {attention_axes!r}")
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.value_dim = int(value_dim) if value_dim else self.key_dim
        self.dropout = _check_rate("MultiHeadAttention", dropout)
        self.use_bias = bool(use_bias)
        self._output_dim: Optional[int] = None if output_shape is None else int(output_shape)
        self.attention_axes: Optional[Tuple[int, ...]] = None
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.seed = seed
        self._rng = backend.rng(seed) if seed is not None else None

    # -- call signature ----------------------------------------------------------------
    def _split_call(self, args: Sequence[Any], kwargs: Dict[str, Any]) -> Tuple[Any, Dict[str, Any]]:
        """``mha(query, value, key=None, ..., attention_mask=None, ...)`` -> inputs
        ``[query, value(, key(, attention_mask))]``; ``*_mask`` keywords join ``mask``."""
        kwargs = dict(kwargs)
        names = ("query", "value", "key", "query_mask", "value_mask", "key_mask",
                 "attention_mask", "return_attention_scores", "training", "use_causal_mask")
        if len(args) > len(names):
            raise TypeError(f"MultiHeadAttention {self.name!r}: too many positional arguments")
        for n, a in zip(names, args):
            if n in kwargs:
                raise TypeError(f"MultiHeadAttention {self.name!r}: got `{n}` twice")
            kwargs[n] = a
        if "query" not in kwargs or "value" not in kwargs:
            raise TypeError(f"MultiHeadAttention {self.name!r} needs `query` and `value`")
        q, v = kwargs.pop("query"), kwargs.pop("value")
        k, am = kwargs.pop("key", None), kwargs.pop("attention_mask", None)
        inputs = [q, v]
        if k is not None or am is not None:
            inputs.append(v if k is None else k)
        if am is not None:
            inputs.append(am)
        masks = [kwargs.pop("query_mask", None), kwargs.pop("value_mask", None),
                 kwargs.pop("key_mask", None)]
        if any(m is not None for m in masks):
            if kwargs.get("mask") is not None:
                raise TypeError(f"MultiHeadAttention {self.name!r}: pass either `mask` or the "
                                "`*_mask` keywords")
            kwargs["mask"] = (masks + [None])[:len(inputs)]
        self._note_scores_flag(kwargs)
        return inputs, kwargs

    # -- shapes --------------------------------------------------------------------------
    def _check_shapes(self, input_shape: Any) -> List[Shape]:
        input_shape = _shape_list(input_shape)
        if not isinstance(input_shape, list) or len(input_shape) not in (2, 3, 4):
            raise ValueError(f"MultiHeadAttention {self.name!r} takes inputs [query, value(, key"
                             f"(, attention_mask))], got input shape {input_shape}")
        shapes = [tuple(s) for s in input_shape]
        if any(len(s) != 3 for s in shapes):
            raise ValueError(f"MultiHeadAttention {self.name!r} supports 3-D inputs (batch, "
                             f"steps, dim) only, got shapes {shapes}")
        q, v = shapes[0], shapes[1]
        k = shapes[2] if len(shapes) > 2 else v
        if any(s[-1] is None for s in (q, v, k)):
            raise ValueError(f"MultiHeadAttention {self.name!r}: last axes must be known, got "
                             f"shapes {shapes}")
        if v[1] is not None and k[1] is not None and v[1] != k[1]:
            raise ValueError(f"MultiHeadAttention {self.name!r}: value and key need the same "
                             f"number of steps, got shapes {v} and {k}")
        if len(shapes) == 4:
            am = shapes[3]
            for got, want in ((am[1], q[1]), (am[2], v[1])):
                if got is not None and want is not None and got != want:
                    raise ValueError(f"MultiHeadAttention {self.name!r}: attention_mask shape "
                                     f"{am} does not match (batch, {q[1]}, {v[1]})")
        return shapes

    def build(self, input_shape: Any) -> None:
        shapes = self._check_shapes(input_shape)
        q, v = shapes[0], shapes[1]
        k = shapes[2] if len(shapes) > 2 else v
        h, kd, vd = self.num_heads, self.key_dim, self.value_dim
        d_out = self._output_dim or q[-1]
        ki, bi = self.kernel_initializer, self.bias_initializer
        self.query_kernel = self.add_weight("query/kernel", (q[-1], h, kd), ki)
        self.query_bias = self.add_weight("query/bias", (h, kd), bi) if self.use_bias else None
        self.key_kernel = self.add_weight("key/kernel", (k[-1], h, kd), ki)
        self.key_bias = self.add_weight("key/bias", (h, kd), bi) if self.use_bias else None
        self.value_kernel = self.add_weight("value/kernel", (v[-1], h, vd), ki)
        self.value_bias = self.add_weight("value/bias", (h, vd), bi) if self.use_bias else None
        self.output_kernel = self.add_weight("attention_output/kernel", (h, vd, d_out), ki)
        self.output_bias = (self.add_weight("attention_output/bias", (d_out,), bi)
                            if self.use_bias else None)
        self.attention_axes = (1,)
        Layer.build(self, shapes)
        self.input_shape = shapes  # type: ignore[assignment]

    def _check_symbolic_input(self, input_shape: Any) -> None:
        if not self.built:
            return
        shapes = self._check_shapes(input_shape)
        want = (self.query_kernel.shape[0], self.value_kernel.shape[0], self.key_kernel.shape[0])
        got = (shapes[0][-1], shapes[1][-1], (shapes[2] if len(shapes) > 2 else shapes[1])[-1])
        if got != want:
            raise ValueError(f"expected last axes (query, value, key) {want} (the layer was "
                             f"built for them), got {got}")

    def compute_output_shape(self, input_shape: Any, return_attention_scores: Optional[bool] = None
                             ) -> Any:
        shapes = self._check_shapes(input_shape)
        q, v = shapes[0], shapes[1]
        out = tuple(q[:-1]) + (self._output_dim or q[-1],)
        if self._scores_flag({"return_attention_scores": return_attention_scores}):
            return [out, (q[0], self.num_heads, q[1], v[1])]
        return out

    def compute_mask(self, x: Any, mask: Any = None, **kwargs: Any) -> Any:
        qm = mask[0] if isinstance(mask, (list, tuple)) and mask else None
        return [qm, None] if self._scores_flag(kwargs) else qm

    # -- forward / backward ---------------------------------------------------------------
    def _allowed(self, b: int, tq: int, tv: int, masks: Sequence[Optional[np.ndarray]],
                 am: Optional[np.ndarray], causal: bool) -> Optional[np.ndarray]:
        """The combined bool mask (broadcastable to ``(B, Tq, Tv)``) or None, as Keras's
        ``_compute_attention_mask``: query ``[B,T,1]`` & value/key ``[B,1,S]`` & causal
        ``[1,T,S]`` & attention_mask."""
        allowed: Optional[np.ndarray] = None

        def conj(a: Optional[np.ndarray], m: np.ndarray) -> np.ndarray:
            return m if a is None else a & m

        qm, vm, km = masks
        if qm is not None:
            allowed = conj(allowed, qm[:, :, None])
        if vm is not None:
            allowed = conj(allowed, vm[:, None, :])
        if km is not None:
            allowed = conj(allowed, km[:, None, :])
        if causal:
            allowed = conj(allowed, _causal(tq, tv)[None])
        if am is not None:
            allowed = conj(allowed, am)
        return allowed

    def forward(self, x: Any, mask: Any = None, training: bool = False, need_grad: bool = False,
                return_attention_scores: bool = False, use_causal_mask: bool = False) -> Any:
        if not isinstance(x, (list, tuple)) or len(x) not in (2, 3, 4):
            raise ValueError(f"MultiHeadAttention {self.name!r} takes inputs [query, value(, key"
                             "(, attention_mask))]")
        n_in = len(x)
        am = None
        if n_in == 4:
            am = np.asarray(x[3])
            if am.dtype != bool:
                am = am > 0.5 if am.dtype.kind == "f" else am.astype(bool)
        arrays = [self._cast_input(a, (3,)) for a in x[:3]]
        q, v = arrays[0], arrays[1]
        k = arrays[2] if len(arrays) > 2 else v
        self._check_shapes([a.shape for a in arrays] + ([am.shape] if am is not None else []))
        self._check_symbolic_input([a.shape for a in arrays])
        b, tq, tv = q.shape[0], q.shape[1], v.shape[1]
        if am is not None and am.shape != (b, tq, tv):
            raise ValueError(f"MultiHeadAttention {self.name!r}: attention_mask has shape "
                             f"{am.shape}, expected {(b, tq, tv)}")
        ms: List[Optional[np.ndarray]] = [None, None, None]
        if mask is not None:
            if not isinstance(mask, (list, tuple)):
                raise ValueError(f"MultiHeadAttention {self.name!r}: `mask` must be a list "
                                 "aligned with the inputs")
            for i in range(min(3, len(mask), n_in)):
                if mask[i] is not None:
                    ms[i] = np.asarray(mask[i], dtype=bool)
        if n_in == 2:
            ms[2] = None  # Keras ignores the key mask when key is value
        for name, m, t in (("query", ms[0], tq), ("value", ms[1], tv), ("key", ms[2], tv)):
            if m is not None and m.shape != (b, t):
                raise ValueError(f"MultiHeadAttention {self.name!r}: the {name} mask has shape "
                                 f"{m.shape}, expected {(b, t)}")
        allowed = self._allowed(b, tq, tv, ms, am, use_causal_mask)

        def proj(a: np.ndarray, kern: Any, bias: Any) -> np.ndarray:
            p = np.einsum("btd,dnh->btnh", a, kern.value)
            return p + bias.value if bias is not None else p

        Q = proj(q, self.query_kernel, self.query_bias)  # (B, Tq, N, kd)
        K = proj(k, self.key_kernel, self.key_bias)  # (B, Tv, N, kd)
        V = proj(v, self.value_kernel, self.value_bias)  # (B, Tv, N, vd)
        inv = Q.dtype.type(1.0 / math.sqrt(float(self.key_dim)))
        Qs = Q * inv
        s = np.einsum("bsnh,btnh->bnts", K, Qs)  # (B, N, Tq, Tv)
        allowed4 = None if allowed is None else allowed[:, None]  # (B|1, 1, Tq|1, Tv)
        if allowed4 is not None:
            s = np.where(allowed4, s, s.dtype.type(-_MASK_BIAS))
        w = _softmax(s)
        if allowed4 is not None and (return_attention_scores or self.dropout > 0):
            w = np.where(allowed4, w, 0).astype(w.dtype)  # Keras's Softmax layer path
        keep = None
        if training and self.dropout > 0:
            keep = _dropout_keep(self, w.shape, w.dtype)
        wd = w if keep is None else w * keep
        C = np.einsum("bnts,bsnh->btnh", wd, V)  # (B, Tq, N, vd)
        out = np.einsum("btnh,nho->bto", C, self.output_kernel.value)
        if self.output_bias is not None:
            out = out + self.output_bias.value
        if need_grad:
            self._cache = (q, v, k, n_in, Qs, K, V, w, keep, C, allowed4,
                           return_attention_scores)
        return [out, w] if return_attention_scores else out

    def backward(self, dy: Any) -> List[Optional[np.ndarray]]:
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward() needs a forward(need_grad=True) first")
        q, v, k, n_in, Qs, K, V, w, keep, C, allowed4, scores_out = self._cache
        dscores = None
        if scores_out:
            dy, dscores = dy[0], dy[1]
        self.output_kernel.grad = np.einsum("btnh,bto->nho", C, dy)
        if self.output_bias is not None:
            self.output_bias.grad = dy.sum(axis=(0, 1))
        dC = np.einsum("bto,nho->btnh", dy, self.output_kernel.value)
        wd = w if keep is None else w * keep
        dV = np.einsum("bnts,btnh->bsnh", wd, dC)
        dw = np.einsum("btnh,bsnh->bnts", dC, V)
        if keep is not None:
            dw = dw * keep
        if dscores is not None:
            dw = dw + dscores
        ds = _softmax_backward(w, dw)
        if allowed4 is not None:
            ds = np.where(allowed4, ds, 0).astype(ds.dtype)  # masked logits are constants
        inv = Qs.dtype.type(1.0 / math.sqrt(float(self.key_dim)))
        dQ = np.einsum("bnts,bsnh->btnh", ds, K) * inv
        dK = np.einsum("bnts,btnh->bsnh", ds, Qs)

        def proj_back(a: np.ndarray, dP: np.ndarray, kern: Any, bias: Any) -> np.ndarray:
            kern.grad = np.einsum("btd,btnh->dnh", a, dP)
            if bias is not None:
                bias.grad = dP.sum(axis=(0, 1))
            return np.einsum("btnh,dnh->btd", dP, kern.value)

        dq = proj_back(q, dQ, self.query_kernel, self.query_bias)
        dk = proj_back(k, dK, self.key_kernel, self.key_bias)
        dv = proj_back(v, dV, self.value_kernel, self.value_bias)
        self._cache = None
        if n_in == 2:
            return [dq, dv + dk]
        grads: List[Optional[np.ndarray]] = [dq, dv, dk]
        return grads + [None] if n_in == 4 else grads

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "use_gate": False,
                "output_shape": None if self._output_dim is None else [self._output_dim],
                "attention_axes": None if self.attention_axes is None else list(self.attention_axes),
                "sliding_window": None,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": None, "bias_regularizer": None,
                "activity_regularizer": None, "kernel_constraint": None,
                "bias_constraint": None, "seed": self.seed}
