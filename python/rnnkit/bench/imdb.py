"""The Keras IMDB sentiment model, its sizes and data, and rnnkit's implementation of it.

The model (Keras's ``examples/nlp/bidirectional_lstm_imdb``)::

    Embedding(vocab, embed) -> Bidirectional(LSTM(units, return_sequences=True))
        -> Bidirectional(LSTM(units)) -> Dense(1, sigmoid)

compiled with ``optimizer="adam"`` (Keras defaults: lr 1e-3, betas 0.9/0.999, epsilon 1e-7)
and ``loss="binary_crossentropy"``; one batch of int token ids ``(batch, seq_len)`` and 0/1
labels ``(batch, 1)``. Every framework adapter (this module: rnnkit; :mod:`.imdb_torch`,
:mod:`.imdb_keras`) starts from the same Keras-layout weights (``rnnkit``'s
``model.get_weights()`` order) and exposes the same three timed operations:

* ``train_step()``: one optimizer step on the batch (what ``model.train_on_batch`` does);
  returns the batch loss computed before the update.
* ``predict()``: probabilities ``(batch, 1)`` as a user gets them (``model.predict(x,
  batch_size=batch)``; PyTorch: the module under ``torch.no_grad()``).
* ``call()``: the direct call ``model(x)`` (PyTorch: the same as ``predict``).
"""
from __future__ import annotations

import re
from typing import Any, List, NamedTuple, Optional

import numpy as np

__all__ = ["ImdbSize", "IMDB_SIZE", "parse_imdb_size", "ImdbBatch", "make_batch",
           "build_rnnkit_model", "ImdbFramework", "RnnkitImdb", "OPERATIONS",
           "SGD_PROBE_LR", "gradients_by_sgd_step", "WEIGHT_NAMES"]

# The timed operations, in report order.
OPERATIONS = ("train_step", "predict", "call")
# Names of the model's 15 weight arrays, ``get_weights()`` order (for the agreement checks).
WEIGHT_NAMES = tuple(["embeddings"] + [f"bilstm{k}_{d}_{w}" for k in (1, 2) for d in ("fwd", "bwd")
                                       for w in ("kernel", "recurrent_kernel", "bias")]
                     + ["dense_kernel", "dense_bias"])


class ImdbSize(NamedTuple):
    """Sizes of the IMDB model and batch."""

    batch: int = 32
    seq_len: int = 200
    vocab: int = 20000
    embed: int = 128
    units: int = 64

    @property
    def label(self) -> str:
        """``BxTxVxExH``, the ``--imdb-size`` syntax, e.g. ``32x200x20000x128x64``."""
        return "x".join(str(v) for v in self)


IMDB_SIZE = ImdbSize()  # what the Keras example trains with (batch 32, maxlen 200)


def parse_imdb_size(spec: str) -> ImdbSize:
    """``"default"`` or ``BATCHxSEQ_LENxVOCABxEMBEDxUNITS`` (e.g. ``"4x12x50x8x6"``).

    Raises:
        ValueError: the spec is neither, or a size is below 1.
    """
    if spec.strip() == "default":
        return IMDB_SIZE
    m = re.fullmatch(r"\s*(\d+)x(\d+)x(\d+)x(\d+)x(\d+)\s*", spec)
    if not m:
        raise ValueError(f"--imdb-size: expected 'default' or BATCHxSEQ_LENxVOCABxEMBEDxUNITS "
                         f"(e.g. {IMDB_SIZE.label}); got {spec!r}")
    size = ImdbSize(*(int(v) for v in m.groups()))
    if min(size) < 1:
        raise ValueError(f"--imdb-size: sizes must be positive; got {spec!r}")
    return size


class ImdbBatch(NamedTuple):
    """One training batch: int32 token ids ``x (batch, seq_len)`` and float32 labels ``y (batch, 1)``."""

    x: np.ndarray
    y: np.ndarray


def make_batch(size: ImdbSize, seed: int = 0) -> ImdbBatch:
    """A reproducible random batch: uniform token ids, balanced-ish random 0/1 labels."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, size.vocab, size=(size.batch, size.seq_len)).astype(np.int32)
    y = rng.integers(0, 2, size=(size.batch, 1)).astype(np.float32)
    return ImdbBatch(x, y)


def build_rnnkit_model(size: ImdbSize, weights: Optional[List[np.ndarray]] = None,
                       seed: int = 0) -> Any:
    """The compiled rnnkit model; ``weights`` (Keras layout) replace the seeded initial ones."""
    import rnnkit
    from rnnkit import backend
    from rnnkit.layers import LSTM, Bidirectional, Dense, Embedding

    backend.set_random_seed(seed)
    model = rnnkit.Sequential([
        rnnkit.layers.Input(shape=(size.seq_len,), dtype="int32"),
        Embedding(size.vocab, size.embed),
        Bidirectional(LSTM(size.units, return_sequences=True)),
        Bidirectional(LSTM(size.units)),
        Dense(1, activation="sigmoid"),
    ])
    if weights is not None:
        model.set_weights(weights)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


class ImdbFramework:
    """One framework's IMDB model on one batch (see the module docstring)."""

    name: str = "?"

    def train_step(self) -> float:  # pragma: no cover - abstract
        """One optimizer step; the batch loss before the update."""
        raise NotImplementedError

    def predict(self) -> np.ndarray:  # pragma: no cover - abstract
        """Probabilities ``(batch, 1)`` the way a user predicts."""
        raise NotImplementedError

    def call(self) -> np.ndarray:  # pragma: no cover - abstract
        """Probabilities ``(batch, 1)`` from a direct call of the model."""
        raise NotImplementedError

    def gradients(self) -> List[np.ndarray]:  # pragma: no cover - abstract
        """Gradients of the batch loss at the current weights, Keras layout; no update."""
        raise NotImplementedError


# Learning rate of the one plain-SGD step that reads the gradients of a Keras-style model
# through its public API: ``g = (w0 - w1) / lr``. A large rate keeps the fp32 cancellation
# error of ``w0 - w1`` (about eps * |w0|) far below ``lr * |g|``.
SGD_PROBE_LR = 1e4


def gradients_by_sgd_step(before: List[np.ndarray], after: List[np.ndarray],
                          lr: float = SGD_PROBE_LR) -> List[np.ndarray]:
    """The gradients one ``SGD(learning_rate=lr)`` step applied: ``(before - after) / lr``."""
    return [(np.asarray(b, np.float64) - np.asarray(a, np.float64)) / lr
            for b, a in zip(before, after)]


class RnnkitImdb(ImdbFramework):
    """rnnkit: ``model.train_on_batch``, ``model.predict(x, batch_size=B, verbose=0)``, ``model(x)``."""

    name = "rnnkit"

    def __init__(self, size: ImdbSize, batch: ImdbBatch, weights: Optional[List[np.ndarray]] = None,
                 seed: int = 0) -> None:
        self.size, self.batch = size, batch
        self.model = build_rnnkit_model(size, weights, seed)

    def weights(self) -> List[np.ndarray]:
        """The model's current weights, Keras layout (the other frameworks' starting point)."""
        return [np.array(w, dtype=np.float32) for w in self.model.get_weights()]

    def train_step(self) -> float:
        """See :meth:`ImdbFramework.train_step`."""
        return float(self.model.train_on_batch(self.batch.x, self.batch.y))

    def predict(self) -> np.ndarray:
        """See :meth:`ImdbFramework.predict`."""
        return np.asarray(self.model.predict(self.batch.x, batch_size=self.size.batch, verbose=0))

    def call(self) -> np.ndarray:
        """See :meth:`ImdbFramework.call`."""
        return np.asarray(self.model(self.batch.x))

    def gradients(self) -> List[np.ndarray]:
        """See :meth:`ImdbFramework.gradients`: one ``SGD(learning_rate=SGD_PROBE_LR)``
        ``train_on_batch`` of a copy of the model (public API only)."""
        from rnnkit.optimizers import SGD
        w0 = self.weights()
        probe = build_rnnkit_model(self.size, w0)
        probe.compile(optimizer=SGD(learning_rate=SGD_PROBE_LR), loss="binary_crossentropy")
        probe.train_on_batch(self.batch.x, self.batch.y)
        return gradients_by_sgd_step(w0, probe.get_weights())
