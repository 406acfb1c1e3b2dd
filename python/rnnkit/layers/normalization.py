"""LayerNormalization and BatchNormalization, with exact backward passes."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import initializers
from .. import config_schema as cs
from .base import Layer, Shape
from .registry import register

__all__ = ["LayerNormalization", "BatchNormalization"]

#: Keras's backend.epsilon(), added to the count of unmasked entries in masked BN moments.
_KERAS_EPSILON = 1e-7


def _v_axis(v: Any, w: str) -> None:
    if not cs.is_int(v) or not -8 <= v < 8:
        cs.fail(w, f"expected an axis in [-8, 8), got {cs.short(v)}")


def _v_axes(v: Any, w: str) -> None:
    if isinstance(v, list):
        if not 0 < len(v) <= 8:
            cs.fail(w, f"expected 1 to 8 axes, got {cs.short(v)}")
        for i, a in enumerate(v):
            _v_axis(a, f"{w}[{i}]")
    else:
        _v_axis(v, w)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _check_eps(layer: str, epsilon: Any) -> float:
    if not isinstance(epsilon, (int, float)) or isinstance(epsilon, bool) or not epsilon >= 0 \
            or not np.isfinite(epsilon):
        raise ValueError(f"{layer}: `epsilon` must be a finite number >= 0, got {epsilon!r}")
    return float(epsilon)


def _resolve_axes(layer: Layer, axes: Sequence[int], ndim: int, input_shape: Shape) -> List[int]:
    out = []
    for a in axes:
        p = a + ndim if a < 0 else a
        if not 0 < p < ndim:
            raise ValueError(f"{type(layer).__name__} {layer.name!r}: axis {a} is out of range "
                             f"(or the batch axis) for input shape {tuple(input_shape)}")
        if input_shape[p] is None:
            raise ValueError(f"{type(layer).__name__} {layer.name!r}: axis {a} of input shape "
                             f"{tuple(input_shape)} must be known")
        out.append(p)
    if len(set(out)) != len(out):
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: repeated axes {list(axes)}")
    return out


@register
class LayerNormalization(Layer):
    """Normalise each sample over ``axis`` (default the last):
    ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta`` with the mean and (biased)
    variance taken over ``axis``. Any rank >= 2; the output has the input's shape.

    Weights (Keras order): ``gamma`` (if ``scale``), ``beta`` (if ``center``), each of shape
    ``[input_shape[a] for a in axis]``. Masks pass through unchanged (not used).
    ``rms_scaling=True`` is not supported.
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "axis": _v_axes, "epsilon": cs.v_num,
                     "center": cs.v_bool, "scale": cs.v_bool,
                     "rms_scaling": cs.v_choice(False),
                     "beta_initializer": cs.v_initializer, "gamma_initializer": cs.v_initializer,
                     **cs.weight_option_fields("beta", "gamma")}
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    supports_masking = True

    def __init__(self, axis: Any = -1, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, rms_scaling: bool = False,
                 beta_initializer: Any = "zeros", gamma_initializer: Any = "ones",
                 **kwargs: Any) -> None:
        self._weight_options(kwargs, ("beta", "gamma"))
        super().__init__(**kwargs)
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        if not axes or not all(_is_int(a) for a in axes):
            raise ValueError(f"LayerNormalization: `axis` must be an int or a non-empty list "
                             f"of ints, got {axis!r}")
        self.axis = [int(a) for a in axes]
        self.epsilon = _check_eps("LayerNormalization", epsilon)
        if rms_scaling:
            raise ValueError("LayerNormalization: `rms_scaling=True` is not supported by rnnkit")
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.gamma = self.beta = None

    def build(self, input_shape: Shape) -> None:
        axes = _resolve_axes(self, self.axis, len(input_shape), input_shape)
        shape = tuple(input_shape[a] for a in axes)
        if self.scale:
            self.gamma = self.add_weight("gamma", shape, self.gamma_initializer,
                                         **self._weight_kw("gamma"))
        if self.center:
            self.beta = self.add_weight("beta", shape, self.beta_initializer,
                                        **self._weight_kw("beta"))
        super().build(input_shape)

    def _check_shape(self, input_shape: Shape) -> List[int]:
        axes = _resolve_axes(self, self.axis, len(input_shape), input_shape)
        built = self.input_shape
        if built is not None and len(built) == len(input_shape):
            for a in axes:
                if input_shape[a] != built[a]:
                    raise ValueError(f"LayerNormalization {self.name!r}: axis {a} has size "
                                     f"{input_shape[a]}, the layer was built for "
                                     f"{built[a]} (input shape {tuple(input_shape)})")
        elif built is not None:
            raise ValueError(f"LayerNormalization {self.name!r}: expected rank {len(built)} "
                             f"input, got shape {tuple(input_shape)}")
        return axes

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._check_shape(input_shape)
        return tuple(input_shape)

    def _check_symbolic_input(self, input_shape: Any) -> None:
        if self.built and isinstance(input_shape, tuple):
            self._check_shape(input_shape)

    def _param(self, w: Optional[Any], bshape: Tuple[int, ...]) -> Optional[np.ndarray]:
        # Keras reshapes (not transposes) the weight to the broadcast shape.
        return None if w is None else w.value.reshape(bshape)

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._cast_input(x)
        axes = tuple(self._check_shape(x.shape))
        bshape = tuple(x.shape[i] if i in axes else 1 for i in range(x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        xc = x - mean
        inv = 1.0 / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + self.epsilon)
        xhat = xc * inv
        gamma, beta = self._param(self.gamma, bshape), self._param(self.beta, bshape)
        y = xhat if gamma is None else xhat * gamma
        if beta is not None:
            y = y + beta
        if need_grad:
            self._cache = (xhat, inv, axes, bshape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        xhat, inv, axes, bshape = self._cache
        dy = np.asarray(dy, xhat.dtype)
        others = tuple(i for i in range(dy.ndim) if i not in axes)
        if self.beta is not None:
            self.beta.grad = dy.sum(axis=others).reshape(self.beta.shape)
        if self.gamma is not None:
            self.gamma.grad = (dy * xhat).sum(axis=others).reshape(self.gamma.shape)
            dy = dy * self.gamma.value.reshape(bshape)                 # d xhat
        dx = inv * (dy - dy.mean(axis=axes, keepdims=True)
                    - xhat * (dy * xhat).mean(axis=axes, keepdims=True))
        self._cache = None
        return dx

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "axis": list(self.axis), "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "rms_scaling": False,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                **self._weight_options_config()}


@register
class BatchNormalization(Layer):
    """Normalise each feature along ``axis`` (default the last) with statistics over all the
    other axes: ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta``.

    In training (``training=True`` and the layer trainable) ``mean``/``var`` are the batch's
    mean and biased variance, computed over the unmasked steps when a mask ``(batch, steps)``
    is given (as Keras 3: masked steps are still normalised, they just do not count), and the
    moving statistics are updated in place:
    ``moving = moving * momentum + batch_stat * (1 - momentum)``. Otherwise the moving
    statistics are used.

    Weights (Keras order): ``gamma`` (if ``scale``), ``beta`` (if ``center``),
    ``moving_mean``, ``moving_variance`` (the last two not trainable), each ``(features,)``.
    Masks pass through unchanged.
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "axis": _v_axis, "momentum": cs.v_num,
                     "epsilon": cs.v_num, "center": cs.v_bool, "scale": cs.v_bool,
                     "beta_initializer": cs.v_initializer, "gamma_initializer": cs.v_initializer,
                     "moving_mean_initializer": cs.v_initializer,
                     "moving_variance_initializer": cs.v_initializer,
                     "synchronized": cs.v_bool, "renorm": cs.v_choice(False),
                     "renorm_clipping": cs.v_choice(None), "renorm_momentum": cs.v_num,
                     **cs.weight_option_fields("beta", "gamma")}
    CONFIG_REQUIRED: Tuple[str, ...] = ()

    supports_masking = True

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", moving_mean_initializer: Any = "zeros",
                 moving_variance_initializer: Any = "ones", synchronized: bool = False,
                 renorm: bool = False, renorm_clipping: Any = None,
                 renorm_momentum: float = 0.99, **kwargs: Any) -> None:
        self._weight_options(kwargs, ("beta", "gamma"))
        super().__init__(**kwargs)
        if not _is_int(axis):
            raise ValueError(f"BatchNormalization: `axis` must be an int, got {axis!r}")
        self.axis = int(axis)
        if not isinstance(momentum, (int, float)) or isinstance(momentum, bool) \
                or not 0 <= momentum <= 1:
            raise ValueError(f"BatchNormalization: `momentum` must be in [0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.epsilon = _check_eps("BatchNormalization", epsilon)
        if renorm or renorm_clipping is not None:
            raise ValueError("BatchNormalization: `renorm` is not supported by rnnkit")
        self.center = bool(center)
        self.scale = bool(scale)
        self.synchronized = bool(synchronized)  # one device: same result either way
        self.renorm_momentum = float(renorm_momentum)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.gamma = self.beta = None

    def _feature_axis(self, input_shape: Shape) -> int:
        ax = _resolve_axes(self, [self.axis], len(input_shape), input_shape)[0]
        built = self.input_shape
        if built is not None and (len(built) != len(input_shape) or built[ax] != input_shape[ax]):
            raise ValueError(f"BatchNormalization {self.name!r}: the layer was built for input "
                             f"shape {built}, got {tuple(input_shape)}")
        return ax

    def build(self, input_shape: Shape) -> None:
        ax = self._feature_axis(input_shape)
        shape = (input_shape[ax],)
        if self.scale:
            self.gamma = self.add_weight("gamma", shape, self.gamma_initializer,
                                         **self._weight_kw("gamma"))
        if self.center:
            self.beta = self.add_weight("beta", shape, self.beta_initializer,
                                        **self._weight_kw("beta"))
        self.moving_mean = self.add_weight("moving_mean", shape, self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape,
                                               self.moving_variance_initializer, trainable=False)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._feature_axis(input_shape)
        return tuple(input_shape)

    def _check_symbolic_input(self, input_shape: Any) -> None:
        if self.built and isinstance(input_shape, tuple):
            self._feature_axis(input_shape)

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = self._cast_input(x)
        ax = self._feature_axis(x.shape)
        others = tuple(i for i in range(x.ndim) if i != ax)
        bshape = tuple(x.shape[i] if i == ax else 1 for i in range(x.ndim))
        batch_stats = bool(training) and self.trainable
        w = None
        if batch_stats:
            if mask is None:
                mean = x.mean(axis=others, keepdims=True)
                xc = x - mean
                var = (xc * xc).mean(axis=others, keepdims=True)
            else:
                m = np.asarray(mask, bool)
                if m.ndim != x.ndim - 1:
                    raise ValueError(f"BatchNormalization {self.name!r}: the mask must have one "
                                     f"axis less than the input, got mask shape {m.shape} for "
                                     f"input shape {x.shape}")
                # Keras: mask[..., None] broadcast to the input, moments weighted by it, and
                # backend.epsilon() added to the count.
                w = np.broadcast_to(m[..., None], x.shape).astype(x.dtype)
                count = w.sum(axis=others, keepdims=True) + x.dtype.type(_KERAS_EPSILON)
                mean = (w * x).sum(axis=others, keepdims=True) / count
                xc = x - mean
                var = (w * xc * xc).sum(axis=others, keepdims=True) / count
                w = (w, count)
            mom = self.momentum
            self.moving_mean.value[...] = (self.moving_mean.value * mom
                                           + mean.reshape(-1) * (1.0 - mom))
            self.moving_variance.value[...] = (self.moving_variance.value * mom
                                               + var.reshape(-1) * (1.0 - mom))
        else:
            mean = self.moving_mean.value.reshape(bshape)
            var = self.moving_variance.value.reshape(bshape)
            xc = x - mean
        inv = 1.0 / np.sqrt(var + self.epsilon)
        xhat = xc * inv
        y = xhat if self.gamma is None else xhat * self.gamma.value.reshape(bshape)
        if self.beta is not None:
            y = y + self.beta.value.reshape(bshape)
        if need_grad:
            self._cache = (xhat, xc, inv, others, bshape, batch_stats, w)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        xhat, xc, inv, others, bshape, batch_stats, w = self._cache
        dy = np.asarray(dy, xhat.dtype)
        if self.beta is not None:
            self.beta.grad = dy.sum(axis=others)
        if self.gamma is not None:
            self.gamma.grad = (dy * xhat).sum(axis=others)
            dy = dy * self.gamma.value.reshape(bshape)                   # d xhat
        self._cache = None
        if not batch_stats:
            return dy * inv
        if w is None:
            # mean/var over all n entries of a feature: the usual BN input gradient.
            return inv * (dy - dy.mean(axis=others, keepdims=True)
                          - xhat * (dy * xhat).mean(axis=others, keepdims=True))
        weights, count = w
        # mean = sum(w x)/N, var = sum(w (x-mean)^2)/N with N = sum(w) + eps_k (not sum(w)).
        dvar = -0.5 * inv ** 3 * (dy * xc).sum(axis=others, keepdims=True)
        dmean = (-inv * dy.sum(axis=others, keepdims=True)
                 - 2.0 * dvar * (weights * xc).sum(axis=others, keepdims=True) / count)
        return dy * inv + weights * (2.0 * dvar * xc + dmean) / count

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer":
                    initializers.serialize(self.moving_variance_initializer),
                "synchronized": self.synchronized, "renorm": False, "renorm_clipping": None,
                "renorm_momentum": self.renorm_momentum, **self._weight_options_config()}
