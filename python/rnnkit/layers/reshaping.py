"""Shape and element-wise layers without weights: RepeatVector, Flatten, Reshape, Permute,
Activation and Lambda (Keras 3 semantics, TensorFlow backend).

None of these layers has weights. RepeatVector, Flatten, Reshape and Permute drop the mask
(Keras: they do not support masking); Activation passes it on unchanged; Lambda returns the
``mask`` argument it was given (an array, or a callable ``mask(inputs, previous_mask)``).
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import activations
from ..logits import LogitsGradient
from .. import config_schema as cs
from .base import Layer, Shape
from .registry import register

__all__ = ["RepeatVector", "Flatten", "Reshape", "Permute", "Activation", "Lambda"]

#: Longest target_shape / dims accepted (matches config_schema's shape lists).
_MAX_RANK = 8


# -- config checkers for this module's fields ----------------------------------------------
def _v_target_shape(v: Any, w: str) -> None:
    """Reshape.target_shape: a list of sizes in [1, MAX_DIM] with at most one -1."""
    if not isinstance(v, list) or not 1 <= len(v) <= _MAX_RANK:
        cs.fail(w, f"expected a list of 1 to {_MAX_RANK} sizes, got {cs.short(v)}")
    for i, d in enumerate(v):
        if not cs.is_int(d) or not (d == -1 or 0 < d <= cs.MAX_DIM):
            cs.fail(f"{w}[{i}]", f"expected -1 or an int in [1, {cs.MAX_DIM}], got {cs.short(d)}")
    if v.count(-1) > 1:
        cs.fail(w, f"at most one -1 is allowed, got {cs.short(v)}")


def _v_permutation(v: Any, w: str) -> None:
    """Permute.dims: a permutation of 1..n (n <= 8)."""
    if not isinstance(v, list) or not 1 <= len(v) <= _MAX_RANK:
        cs.fail(w, f"expected a list of 1 to {_MAX_RANK} axes, got {cs.short(v)}")
    if not all(cs.is_int(d) for d in v) or sorted(v) != list(range(1, len(v) + 1)):
        cs.fail(w, f"expected a permutation of 1..{len(v)}, got {cs.short(v)}")


# -- RepeatVector ----------------------------------------------------------------------------
@register
class RepeatVector(Layer):
    """Repeat a ``(batch, features)`` input ``n`` times: output ``(batch, n, features)``.

    No weights. The mask is dropped (Keras: RepeatVector does not support masking).
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "n": cs.v_dim}
    CONFIG_REQUIRED: Tuple[str, ...] = ("n",)

    def __init__(self, n: int, **kwargs: Any) -> None:
        if not cs.is_int(n) and not isinstance(n, np.integer):
            raise TypeError(f"RepeatVector: `n` must be an int, got {n!r}")
        if n <= 0:
            raise ValueError(f"RepeatVector: `n` must be a positive int, got {n!r}")
        super().__init__(**kwargs)
        self.n = int(n)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 2:
            raise ValueError(f"RepeatVector {self.name!r} expects a 2-D input (batch, features),"
                             f" got shape {tuple(input_shape)}")
        return (input_shape[0], self.n, input_shape[1])

    def compute_mask(self, x: Any, mask: Any) -> None:
        return None

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._cast_input(x)
        self.compute_output_shape(x.shape)  # checks the rank
        if need_grad:
            self._cache = True
        # (B, F) -> (B, n, F)
        return np.repeat(x[:, None, :], self.n, axis=1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self._cache = None
        return np.asarray(dy).sum(axis=1)  # (B, n, F) -> (B, F)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "n": self.n}


# -- Flatten ---------------------------------------------------------------------------------
@register
class Flatten(Layer):
    """Flatten every axis but the batch axis: ``(batch, d1, d2, ...)`` -> ``(batch, d1*d2*...)``
    (a ``(batch,)`` input becomes ``(batch, 1)``). Only ``data_format="channels_last"``.

    No weights. The mask is dropped (Keras: Flatten does not support masking).
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "data_format": cs.v_choice("channels_last", None)}
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    def __init__(self, data_format: Optional[str] = None, **kwargs: Any) -> None:
        if data_format not in (None, "channels_last"):
            raise ValueError(f"Flatten: only data_format='channels_last' is supported in "
                             f"rnnkit, got {data_format!r}")
        super().__init__(**kwargs)
        self.data_format = "channels_last"

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) < 1:
            raise ValueError(f"Flatten {self.name!r} expects an input with a batch axis, "
                             f"got shape {tuple(input_shape)}")
        rest = tuple(input_shape[1:])
        if not rest:
            return (input_shape[0], 1)
        if any(d is None for d in rest):
            return (input_shape[0], None)
        return (input_shape[0], int(math.prod(rest)))

    def compute_mask(self, x: Any, mask: Any) -> None:
        return None

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._cast_input(x)
        if x.ndim < 1:
            raise ValueError(f"Flatten {self.name!r} expects an input with a batch axis, "
                             f"got shape {x.shape}")
        if need_grad:
            self._cache = x.shape
        return x.reshape(x.shape[0], -1) if x.ndim > 1 else x.reshape(-1, 1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        shape, self._cache = self._cache, None
        return np.asarray(dy).reshape(shape)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


# -- Reshape ---------------------------------------------------------------------------------
@register
class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (batch axis excluded; one entry may be -1,
    inferred from the sample size). Output ``(batch, *target_shape)``.

    No weights. The mask is dropped (Keras: Reshape does not support masking).
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "target_shape": _v_target_shape}
    CONFIG_REQUIRED: Tuple[str, ...] = ("target_shape",)

    def __init__(self, target_shape: Sequence[int], **kwargs: Any) -> None:
        try:
            target = tuple(target_shape)
        except TypeError:
            raise TypeError(f"Reshape: `target_shape` must be a tuple of ints, "
                            f"got {target_shape!r}") from None
        if not target or not all(cs.is_int(d) or isinstance(d, np.integer) for d in target):
            raise ValueError(f"Reshape: `target_shape` must be a non-empty tuple of ints, "
                             f"got {target_shape!r}")
        target = tuple(int(d) for d in target)
        if any(d < -1 or d == 0 for d in target) or target.count(-1) > 1:
            raise ValueError(f"Reshape: `target_shape` entries must be positive, with at most "
                             f"one -1 (inferred), got {target}")
        super().__init__(**kwargs)
        self.target_shape: Tuple[int, ...] = target

    def _resolve(self, sample_shape: Sequence[Optional[int]]) -> Tuple[Optional[int], ...]:
        """``target_shape`` with -1 resolved for a sample of ``sample_shape`` (None when the
        sample size is unknown); a size mismatch raises ValueError."""
        target = self.target_shape
        if any(d is None for d in sample_shape):
            return tuple(None if d == -1 else d for d in target)
        size = int(math.prod(sample_shape))
        known = int(math.prod(d for d in target if d != -1))
        if -1 not in target:
            if size != known:
                raise ValueError(f"Reshape {self.name!r}: cannot reshape a sample of shape "
                                 f"{tuple(sample_shape)} ({size} values) into target_shape "
                                 f"{target} ({known} values)")
            return target
        if size % known != 0:
            raise ValueError(f"Reshape {self.name!r}: cannot reshape a sample of shape "
                             f"{tuple(sample_shape)} ({size} values) into target_shape "
                             f"{target}: {size} is not a multiple of {known}")
        return tuple(size // known if d == -1 else d for d in target)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) < 1:
            raise ValueError(f"Reshape {self.name!r} expects an input with a batch axis, got "
                             f"shape {tuple(input_shape)}")
        return (input_shape[0],) + self._resolve(tuple(input_shape[1:]))

    def compute_mask(self, x: Any, mask: Any) -> None:
        return None

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._cast_input(x)
        out_shape = self.compute_output_shape(x.shape)
        if need_grad:
            self._cache = x.shape
        return x.reshape(out_shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        shape, self._cache = self._cache, None
        return np.asarray(dy).reshape(shape)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "target_shape": list(self.target_shape)}


# -- Permute ---------------------------------------------------------------------------------
@register
class Permute(Layer):
    """Permute the non-batch axes by ``dims`` (1-based, batch excluded): ``Permute((2, 1))``
    turns ``(batch, T, F)`` into ``(batch, F, T)``. Input rank must be ``len(dims) + 1``.

    No weights. The mask is dropped (Keras: Permute does not support masking).
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "dims": _v_permutation}
    CONFIG_REQUIRED: Tuple[str, ...] = ("dims",)

    def __init__(self, dims: Sequence[int], **kwargs: Any) -> None:
        try:
            d = tuple(dims)
        except TypeError:
            raise TypeError(f"Permute: `dims` must be a tuple of ints, got {dims!r}") from None
        if (not d or not all(cs.is_int(a) or isinstance(a, np.integer) for a in d)
                or sorted(int(a) for a in d) != list(range(1, len(d) + 1))):
            raise ValueError(f"Permute: `dims` must be a permutation of 1..n (the batch axis "
                             f"is excluded, indexing starts at 1), got {dims!r}")
        super().__init__(**kwargs)
        self.dims: Tuple[int, ...] = tuple(int(a) for a in d)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != len(self.dims) + 1:
            raise ValueError(f"Permute {self.name!r} with dims={self.dims} expects a "
                             f"{len(self.dims) + 1}-D input, got shape {tuple(input_shape)}")
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def compute_mask(self, x: Any, mask: Any) -> None:
        return None

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._cast_input(x)
        self.compute_output_shape(x.shape)  # checks the rank
        if need_grad:
            self._cache = True
        return np.ascontiguousarray(np.transpose(x, (0,) + self.dims))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self._cache = None
        inverse = np.argsort((0,) + self.dims)
        return np.ascontiguousarray(np.transpose(np.asarray(dy), inverse))

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "dims": list(self.dims)}


# -- Activation ------------------------------------------------------------------------------
@register
class Activation(Layer):
    """Apply an activation (a name or :class:`rnnkit.activations.Activation`; every name of
    :mod:`rnnkit.activations`, softmax / log_softmax over the last axis) to any-rank input.

    No weights. Masks pass through unchanged.
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "activation": cs.v_activation}
    CONFIG_REQUIRED: Tuple[str, ...] = ("activation",)

    supports_masking = True

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        act = activations.get(activation)  # unknown names raise ValueError
        super().__init__(**kwargs)
        self.activation = act

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._cast_input(x)
        y = np.asarray(self.activation(x), dtype=x.dtype)
        if need_grad:
            self._cache = (y, x if self.activation.uses_input else None)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        (y, z), self._cache = self._cache, None
        # (a LogitsGradient -- the loss used our logits -- goes to the activation as is)
        return self.activation.backward(y, dy if isinstance(dy, LogitsGradient)
                                        else np.asarray(dy), z)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


# -- Lambda ----------------------------------------------------------------------------------
def _probe_shape(shape: Sequence[Optional[int]], fill: int) -> Tuple[int, ...]:
    return tuple(fill if d is None else int(d) for d in shape)


@register
class Lambda(Layer):
    """Wrap a Python function of NumPy arrays as a layer (Keras ``Lambda``).

    ``function(inputs, **arguments)`` gets the input array (or list of arrays); it also gets
    ``mask=`` / ``training=`` when its signature names them. ``output_shape``: a tuple without
    the batch axis, or a callable of the full input shape; when omitted it is inferred by
    running ``function`` on zeros (unknown axes set to 2, then 3: axes whose size follows
    them are reported as ``None``). ``mask``: ``None`` (output unmasked), an array, or a
    callable ``mask(inputs, previous_mask)``.

    Limits in rnnkit (no autodiff): a Lambda is **inference-only**. ``forward`` always
    works; ``backward`` raises a RuntimeError naming the layer, so training fails only when
    a gradient actually has to flow through the Lambda. A Lambda cannot be saved either:
    ``get_config`` raises a ValueError (Python code is not serialised), and a saved config
    naming a Lambda is refused on load (as Keras does in safe mode): the class declares no
    ``CONFIG_FIELDS``, so the schema check treats it as unknown.

    No weights.
    """

    # Deliberately no CONFIG_FIELDS: a saved config can never name a Lambda (the schema
    # check in rnnkit.saving refuses it as an unknown layer class before anything is built).

    def __init__(self, function: Callable[..., Any], output_shape: Any = None,
                 mask: Any = None, arguments: Optional[Dict[str, Any]] = None,
                 **kwargs: Any) -> None:
        if not callable(function):
            raise TypeError(f"Lambda: `function` must be callable, got {function!r}")
        if output_shape is not None and not callable(output_shape):
            try:
                output_shape = tuple(None if d is None else int(d) for d in output_shape)
            except (TypeError, ValueError):
                raise TypeError(f"Lambda: `output_shape` must be a tuple (without the batch "
                                f"axis), a callable or None, got {output_shape!r}") from None
        if arguments is not None and not isinstance(arguments, dict):
            raise TypeError(f"Lambda: `arguments` must be a dict or None, got {arguments!r}")
        super().__init__(**kwargs)
        self.function = function
        self._output_shape = output_shape
        self.mask = mask
        self.arguments: Dict[str, Any] = dict(arguments or {})
        self.supports_masking = mask is not None
        try:
            params = inspect.signature(function).parameters
        except (TypeError, ValueError):  # builtins without a signature
            params = {}  # type: ignore[assignment]
        self._fn_takes_mask = "mask" in params
        self._fn_takes_training = "training" in params

    def _call_function(self, x: Any, mask: Any, training: bool) -> Any:
        kwargs = dict(self.arguments)
        if self._fn_takes_mask:
            kwargs["mask"] = mask
        if self._fn_takes_training:
            kwargs["training"] = training
        return self.function(x, **kwargs)

    def _as_input(self, x: Any) -> Any:
        """Float inputs take the layer dtype; integer/bool inputs (e.g. ids) are kept."""
        if isinstance(x, list):
            return [self._as_input(a) for a in x]
        arr = np.asarray(x)
        return self._cast_input(arr) if np.issubdtype(arr.dtype, np.floating) else arr

    def _as_output(self, y: Any) -> Any:
        if isinstance(y, (list, tuple)):
            return [self._as_output(a) for a in y]
        arr = np.asarray(y)
        return arr.astype(self.dtype, copy=False) if np.issubdtype(arr.dtype, np.floating) \
            else arr

    @staticmethod
    def _shapes(input_shape: Any) -> Any:
        """One shape tuple, or a list of them (``Layer._ensure_built`` passes a list of
        shapes as a tuple of tuples)."""
        if isinstance(input_shape, (list, tuple)) and input_shape \
                and all(isinstance(s, (list, tuple)) for s in input_shape):
            return [tuple(s) for s in input_shape]
        return tuple(input_shape)

    def build(self, input_shape: Any) -> None:
        self.input_shape = self._shapes(input_shape)
        self.built = True  # the output shape is only inferred when asked for

    def compute_output_shape(self, input_shape: Any) -> Any:
        input_shape = self._shapes(input_shape)
        if callable(self._output_shape):
            out = self._output_shape(input_shape)
            return [tuple(s) for s in out] if isinstance(out, list) else tuple(out)
        if self._output_shape is not None:
            batch = (input_shape[0] if not isinstance(input_shape, list)
                     else input_shape[0][0])
            return (batch,) + tuple(self._output_shape)
        return self._infer_output_shape(input_shape)

    def _infer_output_shape(self, input_shape: Any) -> Any:
        """Run the function on zeros (unknown sizes 2, then 3) and compare the shapes."""
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        has_unknown = any(d is None for s in shapes for d in s)
        probes = []
        for fill in ((2, 3) if has_unknown else (2,)):
            arrays = [np.zeros(_probe_shape(s, fill), self.dtype) for s in shapes]
            arg: Any = arrays if isinstance(input_shape, list) else arrays[0]
            try:
                out = self._call_function(arg, None, False)
            except Exception as exc:
                raise ValueError(f"Lambda {self.name!r}: could not infer the output shape by "
                                 f"running the function on zeros ({type(exc).__name__}: "
                                 f"{exc}); pass `output_shape`") from None
            outs = out if isinstance(out, (list, tuple)) else [out]
            probes.append([np.shape(o) for o in outs])
            multi = isinstance(out, (list, tuple))
        result = []
        for k, shp in enumerate(probes[0]):
            dims: List[Optional[int]] = []
            for i, d in enumerate(shp):
                varies = any(len(p[k]) != len(shp) or p[k][i] != d for p in probes[1:])
                dims.append(None if varies else int(d))
            result.append(tuple(dims))
        return result if multi else result[0]

    def compute_mask(self, x: Any, mask: Any) -> Any:
        if callable(self.mask):
            return self.mask(x, mask)
        return self.mask

    def forward(self, x: Any, mask: Any = None, training: bool = False,
                need_grad: bool = False) -> Any:
        y = self._as_output(self._call_function(self._as_input(x), mask, training))
        if need_grad:
            self._cache = True  # marks the pending call; backward refuses it
        return y

    def backward(self, dy: Any) -> Any:
        self._cache = None
        raise RuntimeError(f"Lambda layer {self.name!r} cannot be trained through: Lambda "
                           "layers are inference-only in rnnkit (there is no autodiff of "
                           "Python functions); use a built-in layer (Reshape, Permute, "
                           "Activation, merge layers, ...) or keep the Lambda where no "
                           "gradient has to flow through it")

    def get_config(self) -> Dict[str, Any]:
        raise ValueError(f"Lambda layer {self.name!r} cannot be serialised: rnnkit does not "
                         "save Python code. Rebuild the model in code, or use built-in layers "
                         "if it has to be saved")

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Lambda":
        raise ValueError("Lambda layers cannot be loaded from a config: rnnkit never runs "
                         "Python code from a saved file; rebuild the model in code")
