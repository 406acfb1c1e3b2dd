"""The seed tutorial end to end: SimpleRNN sine-wave regression with the Keras-style API.

Run: ``python examples/sine_wave.py [--out DIR]``. Trains for 20 epochs, predicts the curve
autoregressively from the first window and, when matplotlib is installed, saves
``loss.png`` and ``prediction.png`` into ``--out`` (default: the current directory).
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from rnnkit.layers import Dense, SimpleRNN
from rnnkit.models import Sequential


def make_data(n_rnn: int = 10, seed: int = 0):
    """Noisy sine on [-2π, 2π] cut into windows: inputs x and next-step targets t, (N, n_rnn, 1)."""
    rng = np.random.default_rng(seed)
    x_data = np.linspace(-2 * np.pi, 2 * np.pi)
    sin_data = np.sin(x_data) + 0.1 * rng.standard_normal(len(x_data))
    n_sample = len(x_data) - n_rnn
    x = np.stack([sin_data[i:i + n_rnn] for i in range(n_sample)])[..., None]
    t = np.stack([sin_data[i + 1:i + n_rnn + 1] for i in range(n_sample)])[..., None]
    return sin_data, x, t


def main() -> None:
    """Train, predict, report and plot."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=".", help="directory for the PNG plots")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    n_rnn = 10
    sin_data, x, t = make_data(n_rnn)

    model = Sequential()
    model.add(SimpleRNN(20, input_shape=(n_rnn, 1), return_sequences=True))
    model.add(Dense(1, activation="linear"))
    model.compile(loss="mean_squared_error", optimizer="sgd")
    model.summary()
    history = model.fit(x, t, epochs=args.epochs, batch_size=8, validation_split=0.1)

    predicted = x[0].reshape(-1)
    for _ in range(len(x)):
        y = model.predict(predicted[-n_rnn:].reshape(1, n_rnn, 1), verbose=0)
        predicted = np.append(predicted, y[0, n_rnn - 1, 0])
    rmse = float(np.sqrt(np.mean((predicted - sin_data) ** 2)))
    print(f"final loss {history.history['loss'][-1]:.4f}, val_loss "
          f"{history.history['val_loss'][-1]:.4f}, autoregressive RMSE {rmse:.4f}")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: skipping plots (pip install 'rnnkit[plot]')")
        return
    os.makedirs(args.out, exist_ok=True)
    plt.figure(figsize=(12, 8))
    plt.plot(history.history["loss"], label="loss")
    plt.plot(history.history["val_loss"], label="val_loss")
    plt.legend()
    plt.savefig(os.path.join(args.out, "loss.png"))
    plt.figure(figsize=(12, 8))
    plt.plot(sin_data, label="training")
    plt.plot(predicted, label="predicted")
    plt.legend()
    plt.savefig(os.path.join(args.out, "prediction.png"))
    print(f"plots saved in {os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
