"""Saving per docs/spec.md §6: round trips, no pickle, atomic writes, clear errors on bad files."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

from rnnkit import backend, layers as L, saving
from rnnkit.models import Sequential, load_model


@pytest.fixture(autouse=True)
def seeded():
    backend.set_random_seed(9)
    yield


def _model() -> Sequential:
    m = Sequential([L.Input((6,)), L.Embedding(15, 4, mask_zero=True),
                    L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="ave"),
                    L.Dropout(0.1), L.LSTM(5, dropout=0.1), L.Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


X = np.random.default_rng(0).integers(0, 15, size=(16, 6))
Y = np.random.default_rng(1).integers(0, 2, size=16)


def test_save_load_round_trip_with_optimizer_state(tmp_path) -> None:
    m = _model()
    m.fit(X, Y, epochs=2, batch_size=8, verbose=0)
    path = str(tmp_path / "model.npz")
    m.save(path)
    m2 = load_model(path)
    np.testing.assert_array_equal(m.predict(X, verbose=0), m2.predict(X, verbose=0))
    assert [l.name for l in m2.layers] == [l.name for l in m.layers]
    assert m2.optimizer.iterations == m.optimizer.iterations
    # training continues identically from the restored optimizer state: same data, same
    # order, same dropout masks (reseeded) -> the same weights, optimizer state and History
    # to the last bit. Adam's moments differ from a fresh optimizer's, so this fails if the
    # optimizer state were not restored.
    backend.set_random_seed(123)
    h1 = m.fit(X, Y, epochs=3, batch_size=8, verbose=0, shuffle=False)
    backend.set_random_seed(123)
    h2 = m2.fit(X, Y, epochs=3, batch_size=8, verbose=0, shuffle=False)
    assert h1.history == h2.history
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)
    assert m2.optimizer.iterations == m.optimizer.iterations
    for a, b in zip(m.optimizer.variables, m2.optimizer.variables):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)
    with np.load(path, allow_pickle=False) as z:  # loads with pickle disabled
        assert "__rnnkit_config__" in z.files


def test_weights_and_config_round_trip(tmp_path) -> None:
    m = _model()
    path = str(tmp_path / "w.weights.npz")
    m.save_weights(path)
    clone = Sequential.from_config(m.get_config())
    clone.load_weights(path)
    np.testing.assert_array_equal(m.predict(X, verbose=0), clone.predict(X, verbose=0))
    other = Sequential([L.Input((6,)), L.Embedding(15, 4), L.GRU(3), L.Dense(2)])
    with pytest.raises(ValueError, match="weight arrays|shape"):
        other.load_weights(path)


def test_truncated_and_corrupted_files(tmp_path) -> None:
    m = _model()
    path = str(tmp_path / "m.npz")
    m.save(path)
    data = open(path, "rb").read()
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_model(str(trunc))
    bad = bytearray(data)
    for i in range(200, 400):
        bad[i] ^= 0xFF
    (tmp_path / "bad.npz").write_bytes(bytes(bad))
    with pytest.raises(ValueError):
        load_model(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not an rnnkit file"):
        load_model(str(tmp_path / "plain.npz"))
    with pytest.raises(FileNotFoundError):
        load_model(str(tmp_path / "missing.npz"))
    m.save_weights(str(tmp_path / "w.npz"))
    with pytest.raises(ValueError, match="not a saved model"):
        load_model(str(tmp_path / "w.npz"))


def test_interrupted_save_keeps_old_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _model()
    path = str(tmp_path / "m.npz")
    m.save(path)
    before = open(path, "rb").read()

    def boom(*a, **k):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(saving.np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        m.save(path)
    assert open(path, "rb").read() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temp file left
    with pytest.raises(FileExistsError):
        monkeypatch.undo()
        m.save(path, overwrite=False)


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path) -> None:
    """A save killed with SIGKILL leaves its temporary file; a later save into the same
    directory removes it once it is a minute old -- and nothing else (live writers', other
    hosts', other names)."""
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from rnnkit import layers as L, saving
        from rnnkit.models import Sequential
        m = Sequential([L.Input((3, 2)), L.SimpleRNN(2), L.Dense(1)])
        def killed(f, **arrays):
            f.write(b"PK partial")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        saving.np.savez = killed
        m.save({str(tmp_path / "m.npz")!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".rnnkit-") and left[0].endswith(".tmp"), left
    host = saving._host_tag()
    assert left[0].startswith(f".rnnkit-{host}-{proc.pid}-"), left
    keep = [".rnnkit-abc123.tmp",                         # older naming: writer unknown
            f".rnnkit-{host}-1-abcdef12.tmp",             # pid 1 is alive
            f".rnnkit-{host}-{os.getpid()}-abcdef12.tmp",  # this process (another thread)
            f".rnnkit-0000beef-{proc.pid}-abcdef12.tmp",  # another host: its pids are not ours
            f".rnnkit-{host}-{proc.pid}-abcdef12.tmp.bak", f"x.rnnkit-{host}-{proc.pid}-ab.tmp",
            "notes.tmp", "model.keras.tmp"]
    for name in keep:
        (tmp_path / name).write_bytes(b"keep")
    os.mkdir(tmp_path / f".rnnkit-{host}-{proc.pid}-dirdir.tmp")  # not a regular file
    m = _model()
    m.save(str(tmp_path / "m.npz"))
    assert left[0] in os.listdir(tmp_path)  # younger than a minute: kept for now
    old = time.time() - 120
    for p in tmp_path.iterdir():
        os.utime(p, (old, old))
    m.save(str(tmp_path / "m.npz"))
    after = sorted(p.name for p in tmp_path.iterdir())
    assert left[0] not in after
    assert after == sorted(keep + ["m.npz", f".rnnkit-{host}-{proc.pid}-dirdir.tmp"])
    load_model(str(tmp_path / "m.npz"))
