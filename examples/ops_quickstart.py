"""Train a small LSTM regressor with rnnkit.ops inside a plain NumPy loop.

The task: read 20 noisy samples of a sine wave and predict the next one. The model is
one LSTM layer (rnnkit.ops: forward + BPTT in C++) and a linear read-out of the last hidden
state, trained with Adam written in a few lines of NumPy. At the end the same forward pass
is run through rnnkit.reference (the NumPy oracle) to show the two agree.

    python examples/ops_quickstart.py
"""
from __future__ import annotations

import time

import numpy as np

import rnnkit.ops as ops
import rnnkit.reference as reference


def make_data(rng: np.random.Generator, n: int, steps: int) -> tuple:
    """Windows of a noisy sine: x (n, steps, 1) and the next value y (n, 1)."""
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    t = phase + 0.3 * np.arange(steps + 1)[None, :]
    wave = np.sin(t) + 0.05 * rng.standard_normal(t.shape)
    return wave[:, :steps, None].astype(np.float32), wave[:, steps:].astype(np.float32)


def init_params(rng: np.random.Generator, features: int, units: int) -> dict:
    """Glorot-uniform kernel, orthogonal recurrent kernel, forget-gate bias 1 (Keras defaults)."""
    limit = np.sqrt(6.0 / (features + 4 * units))
    q, _ = np.linalg.qr(rng.standard_normal((4 * units, units)))
    bias = np.zeros(4 * units)
    bias[units:2 * units] = 1.0
    return {
        "kernel": rng.uniform(-limit, limit, (features, 4 * units)),
        "recurrent_kernel": q.T,
        "bias": bias,
        "w_out": rng.uniform(-0.1, 0.1, (units, 1)),
        "b_out": np.zeros(1),
    }


def main() -> None:
    rng = np.random.default_rng(0)
    steps, units = 20, 32
    x_train, y_train = make_data(rng, 512, steps)
    x_test, y_test = make_data(rng, 128, steps)
    params = {k: v.astype(np.float32) for k, v in init_params(rng, 1, units).items()}
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    lr, beta1, beta2, eps = 0.01, 0.9, 0.999, 1e-7

    def predict(p: dict, x: np.ndarray, module=ops) -> np.ndarray:
        _, h_last, _, _ = module.lstm_forward(x, p["kernel"], p["recurrent_kernel"], p["bias"],
                                              training=False)
        return h_last @ p["w_out"] + p["b_out"]

    start = time.perf_counter()
    step = 0
    for epoch in range(1, 31):
        order = rng.permutation(len(x_train))
        for batch in np.array_split(order, len(order) // 32):
            xb, yb = x_train[batch], y_train[batch]
            _, h_last, _, cache = ops.lstm_forward(xb, params["kernel"],
                                                   params["recurrent_kernel"], params["bias"])
            pred = h_last @ params["w_out"] + params["b_out"]
            d_pred = 2.0 * (pred - yb) / len(yb)          # d mean-squared-error
            grads = ops.lstm_backward(cache, dh_last=d_pred @ params["w_out"].T)
            grads["w_out"] = h_last.T @ d_pred
            grads["b_out"] = d_pred.sum(axis=0)
            step += 1
            for k in params:                              # Adam
                m, v = moments[k]
                m[...] = beta1 * m + (1 - beta1) * grads[k]
                v[...] = beta2 * v + (1 - beta2) * grads[k] ** 2
                m_hat = m / (1 - beta1 ** step)
                v_hat = v / (1 - beta2 ** step)
                params[k] -= lr * m_hat / (np.sqrt(v_hat) + eps)
        if epoch % 5 == 0:
            test_mse = float(np.mean((predict(params, x_test) - y_test) ** 2))
            print(f"epoch {epoch:2d}  test mse {test_mse:.5f}")
    print(f"trained in {time.perf_counter() - start:.2f} s")

    ours, oracle = predict(params, x_test), predict(params, x_test, reference)
    print(f"max |ops - reference| on the test predictions: {np.abs(ours - oracle).max():.2e}")
    print("first five predictions vs targets:")
    for p, t in zip(ours[:5, 0], y_test[:5, 0]):
        print(f"  {p:+.3f}  {t:+.3f}")


if __name__ == "__main__":
    main()
