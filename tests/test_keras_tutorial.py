"""The seed tutorial's Keras code runs on rnnkit with only its imports changed."""
from __future__ import annotations

import re
import sys
import types

import numpy as np
import pytest

import rnnkit

# The seed tutorial (a blog article, not in the repository; docs/spec.md), Keras part, verbatim except: `keras` -> `rnnkit` in the
# import lines, and the IPython-only `%matplotlib inline` line dropped (it is not Python).
TUTORIAL = r'''
import numpy as np
import matplotlib.pyplot as plt
x_data = np.linspace(-2*np.pi, 2*np.pi) # -2π to 2π
sin_data = np.sin(x_data) + 0.1*np.random.randn(len(x_data)) # add noise to sin func
plt.style.use('ggplot')
plt.figure(figsize=(12, 8))
plt.plot(x_data, sin_data)
plt.show()
n_rnn = 10 # num of time series
n_sample = len(x_data)-n_rnn # num of samples
x = np.zeros((n_sample, n_rnn)) # input
t = np.zeros((n_sample, n_rnn)) # label
for i in range(0, n_sample):
    x[i] = sin_data[i:i+n_rnn]
    t[i] = sin_data[i+1:i+n_rnn+1]
x = x.reshape(n_sample, n_rnn, 1)
t = t.reshape(n_sample, n_rnn, 1)
from rnnkit.models import Sequential
from rnnkit.layers import Dense, SimpleRNN
batch_size = 8 # batch size
n_in = 1 # num of neurons in input layer
n_mid = 20 # num of neurons in mid layer
n_out = 1 # num of neurons in output layer
model = Sequential()
model.add(SimpleRNN(n_mid, input_shape=(n_rnn, n_in), return_sequences=True))
model.add(Dense(n_out, activation="linear"))
model.compile(loss="mean_squared_error", optimizer="sgd")
print(model.summary())
history = model.fit(x, t, epochs=20, batch_size=batch_size, validation_split=0.1)
loss = history.history['loss']
vloss = history.history['val_loss']
plt.figure(figsize=(12, 8))
plt.plot(np.arange(len(loss)), loss)
plt.plot(np.arange(len(vloss)), vloss)
plt.show()
predicted = x[0].reshape(-1)
for i in range(0, n_sample):
    y = model.predict(predicted[-n_rnn:].reshape(1, n_rnn, 1))
    predicted = np.append(predicted, y[0][n_rnn-1][0])
plt.figure(figsize=(12, 8))
plt.plot(np.arange(len(sin_data)), sin_data, label="training")
plt.plot(np.arange(len(predicted)), predicted, label="predicted")
plt.legend()
plt.show()
'''


@pytest.fixture
def harmless_pyplot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real matplotlib on the Agg backend with show() a no-op; a do-nothing stub if absent."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    except ImportError:
        stub = types.ModuleType("matplotlib.pyplot")
        stub.__getattr__ = lambda name: (lambda *a, **k: types.SimpleNamespace(  # type: ignore
            use=lambda *a, **k: None))
        stub.style = types.SimpleNamespace(use=lambda *a, **k: None)  # type: ignore[attr-defined]
        pkg = types.ModuleType("matplotlib")
        pkg.pyplot = stub  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "matplotlib", pkg)
        monkeypatch.setitem(sys.modules, "matplotlib.pyplot", stub)


def test_tutorial_runs_unchanged(harmless_pyplot: None, capsys: pytest.CaptureFixture) -> None:
    np.random.seed(0)
    rnnkit.backend.set_random_seed(0)
    rnnkit.backend.reset_uids()  # fresh names, as in a new Python session
    ns: dict = {}
    exec(compile(TUTORIAL, "rnn_article_keras", "exec"), ns)
    out = capsys.readouterr().out

    # summary(): Keras 3 table with the tutorial's numbers, then print() of its None
    assert 'Model: "sequential"' in out
    assert re.search(r"│ simple_rnn \(SimpleRNN\) +│ \(None, 10, 20\) +│ +440 │", out)
    assert re.search(r"│ dense \(Dense\) +│ \(None, 10, 1\) +│ +21 │", out)
    assert " Total params: 461 (1.80 KB)" in out
    assert " Trainable params: 461 (1.80 KB)" in out
    assert " Non-trainable params: 0 (0.00 B)" in out
    assert "\nNone\n" in out

    # 36 training samples / batch 8 -> 5 steps; one finished bar per epoch with val_loss
    bars = re.findall(r"^5/5 ━{20} \d+s \d+(?:us|ms|s)/step - loss: [0-9.e-]+ - val_loss: "
                      r"[0-9.e-]+$", out, flags=re.M)
    assert len(bars) == 20
    assert out.count("Epoch 1/20") == 1 and out.count("Epoch 20/20") == 1

    loss, vloss = ns["loss"], ns["vloss"]
    assert len(loss) == len(vloss) == 20
    assert loss[-1] < 0.5 * loss[0] and vloss[-1] < vloss[0]
    assert all(np.isfinite(loss))

    predicted = ns["predicted"]
    assert predicted.shape == (50,) and np.all(np.isfinite(predicted))
    # the autoregressive prediction stays on the scale of a sine wave
    assert np.abs(predicted).max() < 2.0
    assert out.count("1/1 ━━━━━━━━━━━━━━━━━━━━") == 40  # predict() progress lines, as Keras
