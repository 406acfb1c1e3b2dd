"""The IMDB model in Keras 3 (whatever backend Keras is configured with; TensorFlow by default).

Keras is optional and never a test dependency: :func:`keras_status` tells whether it imports
(and why not), :class:`KerasImdb` builds the same model from rnnkit's weights (the layouts are
identical) and times ``train_on_batch``, ``predict(x, batch_size=B, verbose=0)`` and
``model(x, training=False)`` -- Keras's defaults, including its choice of ``jit_compile``.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any, List, Optional, Tuple

import numpy as np

from .imdb import SGD_PROBE_LR, ImdbBatch, ImdbFramework, ImdbSize, gradients_by_sgd_step

__all__ = ["keras_status", "KerasImdb"]


def keras_status(num_threads: Optional[int] = None) -> Tuple[Optional[Any], str]:
    """``(keras module, description)`` or ``(None, reason)`` when Keras is not usable.

    With the TensorFlow backend, ``num_threads`` becomes TensorFlow's intra-op and inter-op
    thread counts (set before TensorFlow starts its pools).
    """
    if importlib.util.find_spec("keras") is None:
        return None, "Keras is not installed"
    try:
        keras = importlib.import_module("keras")
        backend = keras.backend.backend()
        if not str(getattr(keras, "__version__", "0")).startswith("3"):
            return None, f"Keras {keras.__version__} is not Keras 3"
        desc = f"Keras {keras.__version__} ({backend}"
        if backend == "tensorflow":
            tf = importlib.import_module("tensorflow")
            if num_threads is not None:
                try:
                    tf.config.threading.set_intra_op_parallelism_threads(int(num_threads))
                    tf.config.threading.set_inter_op_parallelism_threads(int(num_threads))
                except RuntimeError:  # TensorFlow already initialised its pools
                    pass
            desc += f" {tf.__version__}, intra-op {tf.config.threading.get_intra_op_parallelism_threads()}" \
                    f" / inter-op {tf.config.threading.get_inter_op_parallelism_threads()} threads"
        return keras, desc + ")"
    except Exception as exc:  # noqa: BLE001 - any import failure means "no Keras column"
        return None, f"Keras does not import: {type(exc).__name__}: {exc}"


class KerasImdb(ImdbFramework):
    """Keras 3: ``train_on_batch``, ``predict(x, batch_size=B, verbose=0)``, ``model(x)``."""

    name = "keras"

    def __init__(self, keras: Any, size: ImdbSize, batch: ImdbBatch, weights: List[np.ndarray],
                 optimizer: Any = "adam") -> None:
        """Build and compile the model with ``weights`` (rnnkit's ``get_weights()`` order)."""
        layers = keras.layers
        self.keras, self.size, self.batch = keras, size, batch
        self.model = keras.Sequential([
            keras.Input(shape=(size.seq_len,), dtype="int32"),
            layers.Embedding(size.vocab, size.embed),
            layers.Bidirectional(layers.LSTM(size.units, return_sequences=True)),
            layers.Bidirectional(layers.LSTM(size.units)),
            layers.Dense(1, activation="sigmoid"),
        ])
        self.model.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
        self.model.compile(optimizer=optimizer, loss="binary_crossentropy")

    def weights(self) -> List[np.ndarray]:
        """The model's current weights (Keras layout)."""
        return [np.asarray(w, dtype=np.float32) for w in self.model.get_weights()]

    def train_step(self) -> float:
        """See :meth:`ImdbFramework.train_step`."""
        out = self.model.train_on_batch(self.batch.x, self.batch.y)
        return float(out[0] if isinstance(out, (list, tuple)) else out)

    def predict(self) -> np.ndarray:
        """See :meth:`ImdbFramework.predict`."""
        return np.asarray(self.model.predict(self.batch.x, batch_size=self.size.batch, verbose=0))

    def call(self) -> np.ndarray:
        """See :meth:`ImdbFramework.call`."""
        return np.asarray(self.keras.ops.convert_to_numpy(self.model(self.batch.x, training=False)))

    def gradients(self) -> List[np.ndarray]:
        """See :meth:`ImdbFramework.gradients`: one ``SGD(learning_rate=SGD_PROBE_LR)``
        ``train_on_batch`` of a copy of the model."""
        w0 = self.weights()
        probe = KerasImdb(self.keras, self.size, self.batch, w0,
                          optimizer=self.keras.optimizers.SGD(learning_rate=SGD_PROBE_LR))
        probe.train_step()
        return gradients_by_sgd_step(w0, probe.weights())
