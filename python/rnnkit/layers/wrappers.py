"""Bidirectional and TimeDistributed wrappers."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import config_schema as cs
from .base import Layer, Shape, Weight
from .recurrent import _RNN, split_state_call
from .registry import deserialize, register, serialize

__all__ = ["Bidirectional", "TimeDistributed"]

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


@register
class Bidirectional(Layer):
    """Run an RNN forwards and a copy backwards, then merge (concat, sum, mul, ave or None).

    As Keras 3: the backward copy has ``go_backwards=True``; with ``return_sequences`` its
    output is flipped back to input time order, and masked steps output zeros in both
    directions. Weights: forward layer's then backward layer's.
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "merge_mode": cs.v_choice(*_MERGE_MODES),
                     "layer": cs.v_layer_ref, "backward_layer": cs.v_layer_ref}
    CONFIG_REQUIRED: Tuple[str, ...] = ("layer",)

    supports_masking = True

    def __init__(self, layer: _RNN, merge_mode: Optional[str] = "concat",
                 backward_layer: Optional[_RNN] = None, **kwargs: Any) -> None:
        if not isinstance(layer, _RNN):
            raise TypeError(f"Bidirectional: `layer` must be a SimpleRNN/LSTM/GRU, got {layer!r}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Bidirectional: `merge_mode` must be one of {_MERGE_MODES}, "
                             f"got {merge_mode!r}")
        super().__init__(**kwargs)
        cfg = layer.get_config()
        cfg["name"] = "forward_" + layer.name.removeprefix("forward_")
        self.forward_layer = type(layer).from_config(cfg)
        if backward_layer is None:
            cfg = layer.get_config()
            cfg["go_backwards"] = True
            cfg["name"] = "backward_" + layer.name.removeprefix("backward_")
            backward_layer = type(layer).from_config(cfg)
        elif not isinstance(backward_layer, _RNN):
            raise TypeError("Bidirectional: `backward_layer` must be a SimpleRNN/LSTM/GRU")
        self.backward_layer = backward_layer
        if self.forward_layer.go_backwards == self.backward_layer.go_backwards:
            raise ValueError("Forward and backward layers must have different `go_backwards`")
        for a in ("stateful", "return_sequences", "return_state"):
            if getattr(self.forward_layer, a) != getattr(self.backward_layer, a):
                raise ValueError(f"Forward and backward layers must agree on `{a}`")
        for sub in (self.forward_layer, self.backward_layer):
            sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = self.forward_layer.return_sequences
        self.return_state = self.forward_layer.return_state
        self.stateful = self.forward_layer.stateful
        if self.input_shape_arg is None and layer.input_shape_arg is not None:
            self.input_shape_arg = layer.input_shape_arg

    @property
    def weights(self) -> List[Weight]:
        return self.forward_layer.weights + self.backward_layer.weights

    def _split_call(self, args: Sequence[Any], kwargs: Dict[str, Any]) -> Any:
        """``initial_state=[forward states..., backward states...]`` become extra inputs."""
        return split_state_call(self, args, kwargs)

    def build(self, input_shape: Shape) -> None:
        if isinstance(input_shape, list):  # [x, *initial states]
            input_shape = input_shape[0]
        self.forward_layer._ensure_built(input_shape)
        self.backward_layer._ensure_built(input_shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Any:
        if isinstance(input_shape, list):  # [x, *forward states, *backward states]
            half = (len(input_shape) - 1) // 2
            if len(input_shape) - 1 != 2 * self.forward_layer._n_states:
                raise ValueError(f"`initial_state` needs {2 * self.forward_layer._n_states} "
                                 f"tensor(s) (forward then backward), got {len(input_shape) - 1}")
            self.forward_layer.compute_output_shape([input_shape[0]] + input_shape[1:1 + half])
            input_shape = input_shape[0]
        out = self.forward_layer.compute_output_shape(input_shape)
        states: List[Any] = []
        if self.return_state:
            out, states = out[0], out[1:]
        if self.merge_mode == "concat":
            out = tuple(out[:-1]) + (2 * out[-1],)
        elif self.merge_mode is None:
            out = [out, out]
        if self.return_state:
            return (out if isinstance(out, list) else [out]) + states + states
        return out

    def compute_mask(self, x: Any, mask: Any) -> Any:
        if isinstance(mask, list):  # [x's mask, states' masks]
            mask = mask[0]
        out = mask if self.return_sequences else None
        if self.return_state:
            n_out = 2 if self.merge_mode is None else 1
            return [out] * n_out + [None] * (2 * self.forward_layer._n_states)
        return [out, out] if self.merge_mode is None else out

    def reset_state(self) -> None:
        """Reset both directions of a stateful layer."""
        if not self.stateful:
            raise AttributeError("Layer must be stateful.")
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    reset_states = reset_state

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False, initial_state: Optional[Sequence[Any]] = None) -> Any:
        fs = bs = None
        states_given = isinstance(x, list)
        if states_given:  # [x, *forward states, *backward states] (see _split_call)
            x, initial_state = x[0], x[1:]
            mask = mask[0] if isinstance(mask, list) else mask
        if initial_state is not None:
            half = len(initial_state) // 2
            fs, bs = list(initial_state[:half]), list(initial_state[half:])
        yf = self.forward_layer.forward(x, mask, training, need_grad, initial_state=fs)
        yb = self.backward_layer.forward(x, mask, training, need_grad, initial_state=bs)
        states: List[np.ndarray] = []
        if self.return_state:
            states = list(yf[1:]) + list(yb[1:])
            yf, yb = yf[0], yb[0]
        if self.return_sequences:
            yb = yb[:, ::-1]  # back to input time order
        if self.merge_mode == "concat":
            out: Any = np.concatenate([yf, yb], axis=-1)
        elif self.merge_mode == "sum":
            out = yf + yb
        elif self.merge_mode == "ave":
            out = (yf + yb) / 2
        elif self.merge_mode == "mul":
            out = yf * yb
        else:
            out = [yf, yb]
        if need_grad:
            self._cache = (yf, yb, states_given)
        if self.return_state:
            return (out if isinstance(out, list) else [out]) + states
        return out

    def backward(self, dy: Any) -> Any:
        yf, yb, states_given = self._cache
        self._cache = None
        n_out = 2 if self.merge_mode is None else 1
        dstates: List[Optional[np.ndarray]] = []
        if self.return_state:
            dy, dstates = (dy[:n_out] if n_out == 2 else dy[0]), list(dy[n_out:])
        if self.merge_mode == "concat":
            h = yf.shape[-1]
            dyf, dyb = dy[..., :h], dy[..., h:]
        elif self.merge_mode == "sum":
            dyf = dyb = dy
        elif self.merge_mode == "ave":
            dyf = dyb = dy / 2
        elif self.merge_mode == "mul":
            dyf, dyb = dy * yb, dy * yf
        else:
            dyf, dyb = dy
        if self.return_sequences:
            dyb = dyb[:, ::-1]
        half = len(dstates) // 2
        dxf = self.forward_layer.backward(dyf, dstates[:half] or None)
        dxb = self.backward_layer.backward(dyb, dstates[half:] or None)
        self.initial_state_grads = ((self.forward_layer.initial_state_grads or [])
                                    + (self.backward_layer.initial_state_grads or []))
        dx = dxf + dxb
        return [dx] + list(self.initial_state_grads) if states_given else dx

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "merge_mode": self.merge_mode,
                "layer": serialize(self.forward_layer),
                "backward_layer": serialize(self.backward_layer)}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Bidirectional":
        config = dict(config)
        config["layer"] = deserialize(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = deserialize(config["backward_layer"])
        return cls(**config)


@register
class TimeDistributed(Layer):
    """Apply ``layer`` to every time step: ``(B, T, ...) -> (B*T, ...) -> layer -> (B, T, ...)``."""

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "layer": cs.v_layer_ref}
    CONFIG_REQUIRED: Tuple[str, ...] = ("layer",)

    supports_masking = True

    def __init__(self, layer: Layer, **kwargs: Any) -> None:
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed: `layer` must be a Layer, got {layer!r}")
        super().__init__(**kwargs)
        self.layer = layer
        if self.input_shape_arg is None and layer.input_shape_arg is not None:
            self.input_shape_arg = layer.input_shape_arg

    @property
    def weights(self) -> List[Weight]:
        return self.layer.weights

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) < 3:
            raise ValueError(f"TimeDistributed {self.name!r} needs input (batch, time, ...), "
                             f"got {input_shape}")
        self.layer._ensure_built((None,) + tuple(input_shape[2:]))
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return tuple(input_shape[:2]) + tuple(inner[1:])

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim < 3:
            raise ValueError(f"TimeDistributed {self.name!r} needs input (batch, time, ...), "
                             f"got shape {x.shape}")
        b, t = x.shape[:2]
        y = self.layer.forward(x.reshape((b * t,) + x.shape[2:]), None, training, need_grad)
        if need_grad:
            self._cache = x.shape
        return y.reshape((b, t) + y.shape[1:])

    def backward(self, dy: np.ndarray) -> Optional[np.ndarray]:
        xshape, self._cache = self._cache, None
        b, t = dy.shape[:2]
        dx = self.layer.backward(dy.reshape((b * t,) + dy.shape[2:]))
        return None if dx is None else dx.reshape(xshape)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "layer": serialize(self.layer)}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "TimeDistributed":
        config = dict(config)
        config["layer"] = deserialize(config["layer"])
        return cls(**config)
