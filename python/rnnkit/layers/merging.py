"""Merge layers (Keras 3 semantics, TensorFlow backend): Concatenate, Add, Subtract, Multiply,
Average, Maximum, Minimum, Dot, and their functional forms (``concatenate``, ``add``, ...).

A merge layer is called on a list of tensors, ``layer([a, b, ...])``; it has no weights.

Element-wise merges (Add, Subtract, Multiply, Average, Maximum, Minimum) broadcast as Keras
does: inputs of lower rank get size-1 axes inserted after the batch axis until the ranks
agree, then sizes must be equal or 1 on every axis. Their output mask is the logical OR of
the input masks, or ``None`` as soon as one input has no mask. Multiply, Maximum and Minimum
also use the masks in the forward pass, as Keras does: Multiply treats masked entries as 1
(and zeroes the output where every input is masked); Maximum/Minimum skip masked entries.
The gradient of Maximum/Minimum goes to the input that was selected; ties go to the earlier
input (TensorFlow's ``maximum``/``minimum`` gradient rule, ``x >= y`` / ``x <= y``).

Concatenate's output mask concatenates the masks (missing ones as all-True) along the axis
and reduces the feature axis with OR. Dot returns no mask.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import backend
from .. import config_schema as cs
from .base import Layer, Shape
from .registry import register

__all__ = ["Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot",
           "concatenate", "add", "subtract", "multiply", "average", "maximum", "minimum", "dot"]

Masks = Optional[List[Optional[np.ndarray]]]


# -- config checkers for this module's fields ----------------------------------------------
def _v_axis(v: Any, w: str) -> None:
    """Concatenate.axis: an int in [-8, 8]."""
    if not cs.is_int(v) or not -8 <= v <= 8:
        cs.fail(w, f"expected an int in [-8, 8], got {cs.short(v)}")


def _v_dot_axes(v: Any, w: str) -> None:
    """Dot.axes: an int, or a list of two ints, each in [-8, 8] and not 0 (the batch)."""
    items = v if isinstance(v, list) else [v]
    if isinstance(v, list) and len(v) != 2:
        cs.fail(w, f"expected an int or a list of two ints, got {cs.short(v)}")
    for a in items:
        if not cs.is_int(a) or not -8 <= a <= 8 or a == 0:
            cs.fail(w, f"expected an int or two ints in [-8, 8] other than 0 (the batch "
                       f"axis), got {cs.short(v)}")


def _shape_list(input_shape: Any, layer: Layer, exactly: Optional[int] = None) -> List[Shape]:
    """Check that a merge layer got a list of shapes (of ``exactly`` entries when given)."""
    # (Layer._ensure_built passes the list of shapes as a tuple of tuples.)
    if (not isinstance(input_shape, (list, tuple)) or not input_shape
            or not all(isinstance(s, (tuple, list)) for s in input_shape)):
        raise ValueError(f"{type(layer).__name__} {layer.name!r} must be called on a list of "
                         f"tensors, got input shape {input_shape}")
    n = len(input_shape)
    if exactly is not None and n != exactly:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} must be called on exactly "
                         f"{exactly} inputs, got {n}: {input_shape}")
    if n < 1:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} must be called on a list of "
                         "at least one tensor, got an empty list")
    batches = {s[0] for s in input_shape if s} - {None}
    if len(batches) > 1:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: inputs have different batch "
                         f"sizes: {input_shape}")
    return [tuple(s) for s in input_shape]


def _build_merge(layer: Layer, input_shape: Any) -> None:
    """``Layer.build`` for a list of input shapes (kept as a list of tuples)."""
    shapes = [tuple(s) for s in input_shape] if isinstance(input_shape, (list, tuple)) \
        and input_shape and all(isinstance(s, (list, tuple)) for s in input_shape) \
        else input_shape
    layer.output_shape = layer.compute_output_shape(shapes)
    layer.input_shape = shapes
    layer.built = True


class _Merge(Layer):
    """Base of the element-wise merges: shape rules, broadcasting, masks and the layer
    protocol; subclasses give ``_combine`` (forward + what backward needs) and
    ``_grads``."""

    CONFIG_FIELDS = dict(cs.BASE_FIELDS)
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    supports_masking = True
    _exactly: Optional[int] = None

    def build(self, input_shape: Any) -> None:
        _build_merge(self, input_shape)

    # -- shapes ----------------------------------------------------------------------------
    def _pair_shape(self, s1: Shape, s2: Shape) -> Shape:
        """Keras's element-wise output shape of two sample shapes (batch axis excluded)."""
        if len(s1) < len(s2):
            s1, s2 = s2, s1
        if not s2:
            return s1
        out = list(s1[:len(s1) - len(s2)])
        for i, j in zip(s1[len(s1) - len(s2):], s2):
            if i is None or j is None:
                out.append(None)
            elif i == 1:
                out.append(j)
            elif j == 1 or i == j:
                out.append(i)
            else:
                raise ValueError(f"{type(self).__name__} {self.name!r}: inputs have "
                                 f"incompatible shapes {s1} and {s2}")
        return tuple(out)

    def compute_output_shape(self, input_shape: Any) -> Shape:
        shapes = _shape_list(input_shape, self, self._exactly)
        out = shapes[0][1:]
        for s in shapes[1:]:
            out = self._pair_shape(out, s[1:])
        batches = {s[0] for s in shapes} - {None}
        return ((batches.pop() if len(batches) == 1 else None),) + tuple(out)

    # -- arrays ----------------------------------------------------------------------------
    def _inputs(self, x: Any) -> List[np.ndarray]:
        if not isinstance(x, (list, tuple)):
            raise ValueError(f"{type(self).__name__} {self.name!r} must be called on a list of "
                             f"tensors, got a single input of shape {np.shape(x)}")
        xs = [self._cast_input(a) for a in x]
        self.compute_output_shape([a.shape for a in xs])  # shape check with a clear error
        return xs

    @staticmethod
    def _expand(xs: List[np.ndarray]) -> List[np.ndarray]:
        """Insert size-1 axes after the batch axis until every input has the top rank."""
        top = max(a.ndim for a in xs)
        return [a.reshape(a.shape[:1] + (1,) * (top - a.ndim) + a.shape[1:]) for a in xs]

    @staticmethod
    def _unbroadcast(g: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
        """Sum ``g`` (output shape) down to an input's ``shape`` (expanded rank kept by
        the caller's reshape afterwards)."""
        axes = tuple(i for i, (gs, s) in enumerate(zip(g.shape, shape)) if s == 1 and gs != 1)
        return g.sum(axis=axes, keepdims=True) if axes else g

    @staticmethod
    def _mask_like(m: Optional[np.ndarray], shape: Tuple[int, ...]) -> Optional[np.ndarray]:
        """A (B, T) mask broadcast to a (B, T, ...) input shape, as Keras's
        ``broadcast_to(expand_dims(mask, -1), shape)``."""
        if m is None:
            return None
        m = np.asarray(m, dtype=bool)
        try:
            return np.broadcast_to(m[..., None], shape)
        except ValueError:
            raise ValueError(f"mask of shape {m.shape} does not fit an input of shape "
                             f"{shape}") from None

    def forward(self, x: Any, mask: Masks = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        xs = self._inputs(x)
        masks: List[Optional[np.ndarray]] = list(mask) if mask is not None else [None] * len(xs)
        if len(masks) != len(xs):
            raise ValueError(f"{type(self).__name__} {self.name!r}: got {len(masks)} masks for "
                             f"{len(xs)} inputs")
        ex = self._expand(xs)
        out_shape = np.broadcast_shapes(*[a.shape for a in ex])
        y, aux = self._combine(ex, masks, out_shape)
        if need_grad:
            self._cache = ([a.shape for a in xs], [a.shape for a in ex], aux)
        return y

    def backward(self, dy: np.ndarray) -> List[np.ndarray]:
        shapes, ex_shapes, aux = self._cache
        self._cache = None
        dy = np.asarray(dy)
        grads = self._grads(dy, aux, len(shapes))
        return [self._unbroadcast(g, es).reshape(s)
                for g, es, s in zip(grads, ex_shapes, shapes)]

    def _combine(self, xs: List[np.ndarray], masks: List[Optional[np.ndarray]],
                 out_shape: Tuple[int, ...]) -> Tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _grads(self, dy: np.ndarray, aux: Any, n: int) -> List[np.ndarray]:
        raise NotImplementedError

    # -- masks -----------------------------------------------------------------------------
    def compute_mask(self, x: Any, mask: Any) -> Optional[np.ndarray]:
        """Logical OR of the input masks; ``None`` when any input has no mask."""
        if mask is None:
            return None
        if not isinstance(mask, (list, tuple)):
            raise ValueError(f"{type(self).__name__} {self.name!r}: `mask` must be a list "
                             f"(one entry per input), got {type(mask).__name__}")
        if any(m is None for m in mask):
            return None
        out = np.asarray(mask[0], dtype=bool)
        for m in mask[1:]:
            out = np.logical_or(out, np.asarray(m, dtype=bool))
        return out


@register
class Add(_Merge):
    """Element-wise sum of a list of inputs (same shapes, or broadcastable as Keras allows).

    No weights. Output mask: OR of the input masks (``None`` if any input has none).
    """

    CONFIG_FIELDS = dict(cs.BASE_FIELDS)
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    def _combine(self, xs: List[np.ndarray], masks: Any, out_shape: Any) -> Any:
        y = xs[0]
        for a in xs[1:]:
            y = y + a
        return np.broadcast_to(y, out_shape).copy(), None

    def _grads(self, dy: np.ndarray, aux: Any, n: int) -> List[np.ndarray]:
        return [dy] * n


@register
class Subtract(_Merge):
    """``inputs[0] - inputs[1]`` (exactly two inputs, broadcastable as Keras allows).

    No weights. Output mask: OR of the two masks (``None`` if either has none).
    """

    CONFIG_FIELDS = dict(cs.BASE_FIELDS)
    CONFIG_REQUIRED: Tuple[str, ...] = ()
    _exactly = 2

    def _combine(self, xs: List[np.ndarray], masks: Any, out_shape: Any) -> Any:
        return xs[0] - xs[1], None

    def _grads(self, dy: np.ndarray, aux: Any, n: int) -> List[np.ndarray]:
        return [dy, -dy]


@register
class Average(_Merge):
    """Element-wise mean of a list of inputs (broadcastable as Keras allows).

    No weights. Output mask: OR of the input masks (``None`` if any input has none).
    """

    CONFIG_FIELDS = dict(cs.BASE_FIELDS)
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    def _combine(self, xs: List[np.ndarray], masks: Any, out_shape: Any) -> Any:
        y = xs[0]
        for a in xs[1:]:
            y = y + a
        return np.broadcast_to(y / len(xs), out_shape).copy(), None

    def _grads(self, dy: np.ndarray, aux: Any, n: int) -> List[np.ndarray]:
        return [dy / n] * n


@register
class Multiply(_Merge):
    """Element-wise product of a list of inputs (broadcastable as Keras allows).

    Masks, as Keras 3: masked entries of an input count as 1; when every input has a mask,
    the output is zeroed where all of them are masked. No weights. Output mask: OR of the
    input masks (``None`` if any input has none).
    """

    CONFIG_FIELDS = dict(cs.BASE_FIELDS)
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    def _combine(self, xs: List[np.ndarray], masks: List[Optional[np.ndarray]],
                 out_shape: Any) -> Any:
        all_masked = all(m is not None for m in masks)
        factors, keeps = [], []
        out_mask: Optional[np.ndarray] = None
        for a, m in zip(xs, masks):
            mb = self._mask_like(m, a.shape)
            if mb is not None:
                a = np.where(mb, a, np.ones((), a.dtype))  # masked entries count as 1
                if all_masked:
                    out_mask = mb if out_mask is None else np.logical_or(out_mask, mb)
            factors.append(a)
            keeps.append(mb)
        y = np.broadcast_to(_product(factors), out_shape)
        if out_mask is not None:
            y = np.where(out_mask, y, np.zeros((), y.dtype))
        return np.array(y), (factors, keeps, out_shape)

    def _grads(self, dy: np.ndarray, aux: Any, n: int) -> List[np.ndarray]:
        # Where the output was zeroed (every input masked) each keep below is False too.
        factors, keeps, out_shape = aux
        grads = []
        for i in range(n):
            others = [f for j, f in enumerate(factors) if j != i]
            g = dy * np.broadcast_to(_product(others), out_shape) if others else dy
            if keeps[i] is not None:
                g = np.where(keeps[i], g, np.zeros((), g.dtype))
            grads.append(np.asarray(g))
        return grads


def _product(arrays: List[np.ndarray]) -> Any:
    y: Any = arrays[0]
    for a in arrays[1:]:
        y = y * a
    return y


class _Extremum(_Merge):
    """Maximum/Minimum as Keras's ``_apply_merge_op_and_or_mask``: masked entries are
    replaced by the running result (or the running result, where it is masked, by the new
    input) before each pairwise op. Every output entry is one input entry; backward sends
    the gradient to that input (ties: the earlier one, TensorFlow's rule)."""

    _take_first: Any = None  # np.greater_equal (Maximum) / np.less_equal (Minimum)

    def _combine(self, xs: List[np.ndarray], masks: List[Optional[np.ndarray]],
                 out_shape: Any) -> Any:
        shape = tuple(out_shape)
        out = np.broadcast_to(xs[0], shape)
        src = np.zeros(shape, np.intp)  # which input each output entry comes from
        out_mask = self._mask_like(masks[0], xs[0].shape)
        for i in range(1, len(xs)):
            x = np.broadcast_to(xs[i], shape)
            x_src = np.full(shape, i, np.intp)
            mb = self._mask_like(masks[i], xs[i].shape)
            if mb is not None:  # masked entries of x take the running result
                x, x_src = np.where(mb, x, out), np.where(mb, x_src, src)
            if out_mask is not None:  # masked running entries take x
                out, src = np.where(out_mask, out, x), np.where(out_mask, src, x_src)
            out_mask = (np.logical_or(out_mask, mb)
                        if mb is not None and out_mask is not None else None)
            first = type(self)._take_first(out, x)
            out, src = np.where(first, out, x), np.where(first, src, x_src)
        return np.array(out), src

    def _grads(self, dy: np.ndarray, src: np.ndarray, n: int) -> List[np.ndarray]:
        zero = np.zeros((), dy.dtype)
        return [np.where(src == i, dy, zero) for i in range(n)]


@register
class Maximum(_Extremum):
    """Element-wise maximum of a list of inputs (broadcastable as Keras allows).

    Masked entries are skipped (Keras 3). The gradient goes to the input holding the
    maximum (ties: the first of them). No weights. Output mask: OR of the input masks
    (``None`` if any input has none).
    """

    CONFIG_FIELDS = dict(cs.BASE_FIELDS)
    CONFIG_REQUIRED: Tuple[str, ...] = ()
    _take_first = np.greater_equal


@register
class Minimum(_Extremum):
    """Element-wise minimum of a list of inputs (broadcastable as Keras allows).

    Masked entries are skipped (Keras 3). The gradient goes to the input holding the
    minimum (ties: the first of them). No weights. Output mask: OR of the input masks
    (``None`` if any input has none).
    """

    CONFIG_FIELDS = dict(cs.BASE_FIELDS)
    CONFIG_REQUIRED: Tuple[str, ...] = ()
    _take_first = np.less_equal


# -- Concatenate -----------------------------------------------------------------------------
@register
class Concatenate(Layer):
    """Concatenate a list of inputs along ``axis`` (all other sizes must agree).

    No weights. Output mask, as Keras 3: each input's mask (all-True when it has none,
    ``None`` overall when no input has one) is broadcast to the input's shape, the masks are
    concatenated along ``axis`` and the last axis is reduced with OR — so for ``axis=-1`` on
    ``(B, T, D)`` inputs it is the OR of the masks, for ``axis=1`` the masks joined in time.
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "axis": _v_axis}
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    supports_masking = True

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        if not (cs.is_int(axis) or isinstance(axis, np.integer)):
            raise TypeError(f"Concatenate: `axis` must be an int, got {axis!r}")
        super().__init__(**kwargs)
        self.axis = int(axis)

    def build(self, input_shape: Any) -> None:
        _build_merge(self, input_shape)

    def compute_output_shape(self, input_shape: Any) -> Shape:
        shapes = _shape_list(input_shape, self)
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise ValueError(f"Concatenate {self.name!r}: inputs must have the same rank, got "
                             f"shapes {shapes}")
        rank = ranks.pop()
        if not -rank <= self.axis < rank:
            raise ValueError(f"Concatenate {self.name!r}: axis {self.axis} is out of range for "
                             f"inputs of rank {rank} (shapes {shapes})")
        ax = self.axis % rank
        out: List[Optional[int]] = list(shapes[0])
        for d in range(rank):
            sizes = [s[d] for s in shapes]
            if d == ax:
                out[d] = None if any(v is None for v in sizes) else int(sum(sizes))
                continue
            known = {v for v in sizes if v is not None}
            if len(known) > 1:
                raise ValueError(f"Concatenate {self.name!r}: inputs must have matching shapes "
                                 f"except along axis {self.axis}, got shapes {shapes}")
            out[d] = known.pop() if known else None
        return tuple(out)

    def forward(self, x: Any, mask: Masks = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        if not isinstance(x, (list, tuple)):
            raise ValueError(f"Concatenate {self.name!r} must be called on a list of tensors, "
                             f"got a single input of shape {np.shape(x)}")
        xs = [self._cast_input(a) for a in x]
        self.compute_output_shape([a.shape for a in xs])
        ax = self.axis % xs[0].ndim
        if need_grad:
            self._cache = (ax, np.cumsum([a.shape[ax] for a in xs])[:-1])
        return np.concatenate(xs, axis=ax)

    def backward(self, dy: np.ndarray) -> List[np.ndarray]:
        ax, splits = self._cache
        self._cache = None
        return [np.ascontiguousarray(g) for g in np.split(np.asarray(dy), splits, axis=ax)]

    def compute_mask(self, x: Any, mask: Any) -> Optional[np.ndarray]:
        if mask is None:
            return None
        if not isinstance(mask, (list, tuple)) or not isinstance(x, (list, tuple)) \
                or len(mask) != len(x):
            raise ValueError(f"Concatenate {self.name!r}: `mask` must be a list with one entry "
                             f"per input")
        if all(m is None for m in mask):
            return None
        full = []
        for xi, m in zip(x, mask):
            shape = tuple(np.shape(xi))
            if m is None:
                full.append(np.ones(shape, bool))
                continue
            m = np.asarray(m, dtype=bool)
            full.append(np.broadcast_to(m[..., None], shape) if m.ndim < len(shape) else m)
        return np.any(np.concatenate(full, axis=self.axis), axis=-1)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


# -- Dot -------------------------------------------------------------------------------------
@register
class Dot(Layer):
    """Batch dot product of two inputs along ``axes`` (Keras ``batch_dot``).

    ``axes``: an int (the same axis of both inputs; negative counts from the end of each) or
    a pair ``(axis of x, axis of y)``; the batch axis 0 cannot be used. Output: ``x``'s axes
    without the contracted one, then ``y``'s axes without batch and contracted axis; a
    result of rank 1 becomes ``(batch, 1)``. E.g. ``(B, T, D)`` · ``(B, S, D)`` with
    ``axes=2`` gives ``(B, T, S)``; ``(B, D)`` · ``(B, D)`` with ``axes=1`` gives ``(B, 1)``.
    ``normalize=True`` L2-normalises both inputs along their axes first (cosine similarity;
    Keras's ``x * min(rsqrt(sum x^2), 1/epsilon)``).

    No weights. Output mask: ``None``.
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "axes": _v_dot_axes, "normalize": cs.v_bool}
    CONFIG_REQUIRED: Tuple[str, ...] = ("axes",)

    supports_masking = True

    def __init__(self, axes: Union[int, Sequence[int]], normalize: bool = False,
                 **kwargs: Any) -> None:
        if cs.is_int(axes) or isinstance(axes, np.integer):
            axes_v: Union[int, List[int]] = int(axes)  # type: ignore[arg-type]
        elif isinstance(axes, (list, tuple)):
            if len(axes) != 2 or not all(cs.is_int(a) or isinstance(a, np.integer)
                                         for a in axes):
                raise ValueError(f"Dot: `axes` must be an int or a pair of ints, got {axes!r}")
            axes_v = [int(a) for a in axes]
        else:
            raise TypeError(f"Dot: `axes` must be an int or a pair of ints, got {axes!r}")
        if not isinstance(normalize, (bool, np.bool_)):
            raise TypeError(f"Dot: `normalize` must be a bool, got {normalize!r}")
        super().__init__(**kwargs)
        self.axes = axes_v
        self.normalize = bool(normalize)

    def _resolve_axes(self, r1: int, r2: int) -> Tuple[int, int]:
        if isinstance(self.axes, int):
            a = self.axes
            pair = (a % r1, a % r2) if a < 0 else (a, a)
        else:
            pair = (self.axes[0] % r1 if self.axes[0] < 0 else self.axes[0],
                    self.axes[1] % r2 if self.axes[1] < 0 else self.axes[1])
        return pair

    def build(self, input_shape: Any) -> None:
        _build_merge(self, input_shape)

    def compute_output_shape(self, input_shape: Any) -> Shape:
        s1, s2 = _shape_list(input_shape, self, exactly=2)
        if len(s1) < 2 or len(s2) < 2:
            raise ValueError(f"Dot {self.name!r}: inputs need rank >= 2 (batch + features), "
                             f"got shapes {s1} and {s2}")
        a1, a2 = self._resolve_axes(len(s1), len(s2))
        if not (0 < a1 < len(s1) and 0 < a2 < len(s2)):
            raise ValueError(f"Dot {self.name!r}: axes={self.axes} must name a non-batch axis "
                             f"of each input, got shapes {s1} and {s2}")
        if s1[a1] is not None and s2[a2] is not None and s1[a1] != s2[a2]:
            raise ValueError(f"Dot {self.name!r}: contracted sizes differ: {s1[a1]} (axis {a1} "
                             f"of {s1}) != {s2[a2]} (axis {a2} of {s2})")
        out = [d for i, d in enumerate(s1) if i != a1] + \
              [d for i, d in enumerate(s2) if i not in (0, a2)]
        if len(out) == 1:
            out.append(1)
        return tuple(out)

    def compute_mask(self, x: Any, mask: Any) -> None:
        return None

    @staticmethod
    def _l2_normalize(x: np.ndarray, axis: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``x * min(rsqrt(sum x^2), 1/eps)`` along ``axis``: (y, inv_norm, clamped)."""
        eps = backend.epsilon()
        sq = np.sum(x * x, axis=axis, keepdims=True)
        with np.errstate(divide="ignore"):
            inv = 1.0 / np.sqrt(sq)
        cap = np.asarray(1.0 / eps, x.dtype)
        clamped = inv > cap  # TF's minimum sends the gradient to inv_norm on ties
        inv = np.where(clamped, cap, inv).astype(x.dtype)
        return x * inv, inv, clamped

    @staticmethod
    def _l2_normalize_grad(g: np.ndarray, y: np.ndarray, inv: np.ndarray, clamped: np.ndarray,
                           axis: int) -> np.ndarray:
        # Unclamped: y = x / |x| -> dx = (g - y <g, y>) / |x|; clamped: y = x / eps -> g / eps.
        proj = np.sum(g * y, axis=axis, keepdims=True)
        return inv * (g - np.where(clamped, 0, 1).astype(g.dtype) * y * proj)

    def forward(self, x: Any, mask: Masks = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        if not isinstance(x, (list, tuple)):
            raise ValueError(f"Dot {self.name!r} must be called on a list of 2 tensors, got a "
                             f"single input of shape {np.shape(x)}")
        xs = [self._cast_input(a) for a in x]
        out_shape = self.compute_output_shape([a.shape for a in xs])
        a, b = xs
        ax1, ax2 = self._resolve_axes(a.ndim, b.ndim)
        norm_cache = None
        if self.normalize:
            a_n, inv_a, cl_a = self._l2_normalize(a, ax1)
            b_n, inv_b, cl_b = self._l2_normalize(b, ax2)
            norm_cache = (a_n, inv_a, cl_a, b_n, inv_b, cl_b)
            a, b = a_n, b_n
        # x -> (B, M, K) with the contracted axis last; y -> (B, K, N) with it second.
        am = np.moveaxis(a, ax1, -1)
        bm = np.moveaxis(b, ax2, 1)
        batch, k = a.shape[0], a.shape[ax1]
        a3 = am.reshape(batch, -1, k)
        b3 = bm.reshape(batch, k, -1)
        y = np.matmul(a3, b3).reshape(out_shape)  # (B, x rest..., y rest...) or (B, 1)
        if need_grad:
            self._cache = (a3, b3, am.shape, bm.shape, ax1, ax2, norm_cache)
        return y

    def backward(self, dy: np.ndarray) -> List[np.ndarray]:
        a3, b3, am_shape, bm_shape, ax1, ax2, norm_cache = self._cache
        self._cache = None
        g3 = np.asarray(dy).reshape(a3.shape[0], a3.shape[1], b3.shape[2])  # (B, M, N)
        da = np.moveaxis((g3 @ np.swapaxes(b3, 1, 2)).reshape(am_shape), -1, ax1)
        db = np.moveaxis((np.swapaxes(a3, 1, 2) @ g3).reshape(bm_shape), 1, ax2)
        if norm_cache is not None:
            a_n, inv_a, cl_a, b_n, inv_b, cl_b = norm_cache
            da = self._l2_normalize_grad(da, a_n, inv_a, cl_a, ax1)
            db = self._l2_normalize_grad(db, b_n, inv_b, cl_b, ax2)
        return [np.ascontiguousarray(da), np.ascontiguousarray(db)]

    def get_config(self) -> Dict[str, Any]:
        axes = self.axes if isinstance(self.axes, int) else list(self.axes)
        return {**super().get_config(), "axes": axes, "normalize": self.normalize}


# -- functional forms ------------------------------------------------------------------------
def concatenate(inputs: Sequence[Any], axis: int = -1, **kwargs: Any) -> Any:
    """``Concatenate(axis=axis, **kwargs)(inputs)`` (symbolic tensors or arrays)."""
    return Concatenate(axis=axis, **kwargs)(list(inputs))


def add(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Add(**kwargs)(inputs)``."""
    return Add(**kwargs)(list(inputs))


def subtract(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Subtract(**kwargs)(inputs)`` (exactly two inputs)."""
    return Subtract(**kwargs)(list(inputs))


def multiply(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(list(inputs))


def average(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(list(inputs))


def maximum(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Maximum(**kwargs)(inputs)``."""
    return Maximum(**kwargs)(list(inputs))


def minimum(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Minimum(**kwargs)(inputs)``."""
    return Minimum(**kwargs)(list(inputs))


def dot(inputs: Sequence[Any], axes: Union[int, Sequence[int]] = -1, normalize: bool = False,
        **kwargs: Any) -> Any:
    """``Dot(axes=axes, normalize=normalize, **kwargs)(inputs)`` (exactly two inputs)."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(list(inputs))
