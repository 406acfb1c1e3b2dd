"""Sequence classification (the seed's other task, an RNN classifier), on generated data.

Each sequence is a noisy waveform of random length (padded with zeros at the end): a sine,
a square or a sawtooth wave. A ``Masking -> LSTM -> Dense(softmax)`` model learns the class;
accuracy is reported on held-out sequences. Run: ``python examples/classify_sequences.py``.
"""
from __future__ import annotations

import numpy as np

import rnnkit
from rnnkit.callbacks import EarlyStopping
from rnnkit.layers import LSTM, Dense, Masking
from rnnkit.models import Sequential

CLASSES = ("sine", "square", "sawtooth")


def make_dataset(n: int, t_max: int = 30, seed: int = 0):
    """``x (n, t_max, 1)`` zero-padded waveforms, ``y (n,)`` class ids."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, t_max, 1))
    y = rng.integers(0, len(CLASSES), n)
    for i in range(n):
        length = rng.integers(t_max // 2, t_max + 1)
        phase = rng.uniform(0, 2 * np.pi)
        freq = rng.uniform(0.15, 0.35)
        s = phase + freq * np.arange(length)
        wave = (np.sin(s), np.sign(np.sin(s)), ((s / np.pi) % 2) - 1)[y[i]]
        x[i, :length, 0] = wave + 0.1 * rng.standard_normal(length) + 1e-3  # never exactly 0
    return x, y


def main() -> None:
    """Train on 600 sequences, report accuracy on 200 held-out ones."""
    rnnkit.backend.set_random_seed(0)
    x_train, y_train = make_dataset(600, seed=1)
    x_test, y_test = make_dataset(200, seed=2)
    model = Sequential([Masking(0.0, input_shape=(30, 1)), LSTM(24),
                        Dense(len(CLASSES), activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    model.fit(x_train, y_train, batch_size=32, epochs=30, validation_split=0.2, verbose=2,
              callbacks=[EarlyStopping(monitor="val_accuracy", patience=5,
                                       restore_best_weights=True)])
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"held-out accuracy: {acc:.3f} (loss {loss:.4f}, chance {1 / len(CLASSES):.3f})")


if __name__ == "__main__":
    main()
