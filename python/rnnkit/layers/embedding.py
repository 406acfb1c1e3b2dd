"""Embedding: integer ids -> dense vectors, with Keras's ``mask_zero``."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from .. import _core, initializers, sparse_grad
from .. import config_schema as cs
from .base import Layer, Shape
from .registry import register

__all__ = ["Embedding", "dense_gradient"]


def dense_gradient(ids: np.ndarray, dy: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The reference gradient of ``table[ids]``: ``dy`` rows scattered into zeros of
    ``table``'s shape and dtype, repeated ids accumulating in occurrence order."""
    g = np.zeros_like(table)
    np.add.at(g, ids.reshape(-1), dy.reshape(-1, table.shape[1]))
    return g


@register
class Embedding(Layer):
    """Look up rows of ``embeddings (input_dim, output_dim)``: ``(B, T)`` ids -> ``(B, T, D)``.

    ``mask_zero=True`` makes id 0 padding: the mask ``ids != 0`` flows to later layers.
    ``input_length`` (Keras 2) is accepted as the first layer's input shape ``(input_length,)``.

    Pretrained vectors: ``weights=[matrix]`` (or ``weights=matrix``, as Keras 3), or
    ``embeddings_initializer=Constant(matrix)`` / the ``(input_dim, output_dim)`` array itself;
    ``trainable=False`` freezes them. The matrix travels as the layer's weights: its config
    names the default initializer, as Keras does for ``weights=``.
    """

    CONFIG_FIELDS = {**cs.BASE_FIELDS, "input_dim": cs.v_dim, "output_dim": cs.v_dim,
                     "embeddings_initializer": cs.v_initializer, "mask_zero": cs.v_bool,
                     "input_length": cs.v_opt_dim,
                     **cs.weight_option_fields("embeddings")}
    CONFIG_REQUIRED: Tuple[str, ...] = ("input_dim", "output_dim")

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer: Any = "uniform",
                 mask_zero: bool = False, input_length: Optional[int] = None,
                 weights: Any = None, **kwargs: Any) -> None:
        if input_length is not None and "input_shape" not in kwargs and \
                "batch_input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,)
        self._weight_options(kwargs, ("embeddings",))
        super().__init__(**kwargs)
        for arg, v in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"Embedding: `{arg}` must be a positive int, got {v!r}")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        table = (self.input_dim, self.output_dim)
        # A pretrained matrix: an array, or Constant(matrix) (an array-valued Constant).
        self._pretrained: Optional[np.ndarray] = None
        init = embeddings_initializer
        if isinstance(init, initializers.Constant) and np.ndim(init.value) > 0:
            init = init.value
        if isinstance(init, (np.ndarray, list)):
            self._pretrained = self._matrix("embeddings_initializer", init, table)
            init = "uniform"
        self.embeddings_initializer = initializers.get(init)
        if weights is not None:
            if isinstance(weights, (list, tuple)) and len(weights) == 1:
                weights = weights[0]
            self._pretrained = self._matrix("weights", weights, table)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        if self._pretrained is not None:
            self.build((None, None))

    @staticmethod
    def _matrix(arg: str, value: Any, shape: Tuple[int, int]) -> np.ndarray:
        m = np.asarray(value)
        if m.shape != shape or not np.issubdtype(m.dtype, np.number):
            raise ValueError(f"Embedding: `{arg}` must be a numeric matrix of shape {shape} "
                             f"(input_dim, output_dim), got {m.dtype} of shape {m.shape}")
        if not np.all(np.isfinite(m)):
            raise ValueError(f"Embedding: `{arg}` holds non-finite values")
        return m

    def build(self, input_shape: Shape) -> None:
        init = self._pretrained if self._pretrained is not None else self.embeddings_initializer
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          init, **self._weight_kw("embeddings"))
        self._pretrained = None
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape) + (self.output_dim,)

    def _check_symbolic_input(self, input_shape: Any) -> None:
        """Any id shape is fine (the table does not depend on it)."""

    def compute_mask(self, x: Any, mask: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        return np.asarray(x) != 0 if self.mask_zero else None

    def _ids(self, x: Any) -> np.ndarray:
        arr = np.asarray(x)
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise TypeError(f"Embedding {self.name!r}: input must hold integer ids, got {arr.dtype}")
        ids = arr.astype(np.int64)
        if np.any(ids != arr):
            raise ValueError(f"Embedding {self.name!r}: input must hold integer ids")
        if ids.size and (ids.min() < 0 or ids.max() >= self.input_dim):
            raise ValueError(f"Embedding {self.name!r}: ids must be in [0, {self.input_dim}), got "
                             f"range [{ids.min()}, {ids.max()}]")
        return ids

    def forward(self, x: Any, mask: Optional[np.ndarray] = None, training: bool = False,
                need_grad: bool = False) -> np.ndarray:
        ids = self._ids(x)
        if need_grad:
            self._cache = ids
        return self.embeddings.value[ids]

    def backward(self, dy: np.ndarray) -> None:
        """``embeddings.grad``: the summed ``dy`` rows of each id. Inside a training step
        (:func:`rnnkit.sparse_grad.collect_rows`) a :class:`~rnnkit.sparse_grad.SparseRows`
        of the touched rows, else dense; both bitwise equal to :func:`dense_gradient`."""
        ids, self._cache = self._cache, None
        table = self.embeddings.value
        dy = np.asarray(dy)
        if dy.dtype != table.dtype or table.dtype not in (np.float32, np.float64):
            # np.add.at would add in the wider dtype, then round: keep its exact result
            self.embeddings.grad = dense_gradient(ids, dy, table)
            return None
        rows, sums = _core.embedding_row_sums(ids.reshape(-1), dy.reshape(-1, self.output_dim),
                                              self.input_dim)
        g = sparse_grad.SparseRows(rows, sums, table.shape)
        self.embeddings.grad = g if sparse_grad.rows_wanted() else g.dense()
        return None  # integer inputs have no gradient

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "mask_zero": self.mask_zero, **self._weight_options_config()}
