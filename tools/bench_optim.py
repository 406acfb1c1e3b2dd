"""Optimizer step and Embedding gradient timings at the Keras IMDB model's sizes (issue 13).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/bench_optim.py [--repeat N]

1. One Adam step (``optimizer.apply``) over the parameter arrays of Embedding(20000, 128) ->
   Bidirectional(LSTM(64), return_sequences) -> Bidirectional(LSTM(64)) -> Dense(1):
   NumPy formulas vs the fused C++ update.
2. The Embedding gradient and its Adam / SGD update for a 32x200 batch of ids: dense
   (np.add.at into zeros, NumPy update), dense gradient + C++ update, and row-sparse
   (C++ row sums, C++ update over the touched rows' gradient).
3. Whole train_on_batch steps of that model: reference (dense, NumPy) vs default.
Prints medians in ms and the ratios; every variant's results are checked bitwise equal.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable, List

import numpy as np

import rnnkit._core as core
from rnnkit import optimizers as O
from rnnkit.layers.embedding import dense_gradient
from rnnkit.sparse_grad import SparseRows

V, D, B, T = 20000, 128, 32, 200
IMDB_SHAPES = ([(V, D)] + [(D, 256), (64, 256), (256,)] * 2 + [(128, 256), (64, 256), (256,)] * 2
               + [(128, 1), (1,)])


def median_ms(fn: Callable[[], None], repeat: int) -> float:
    fn()  # warm up (slots built, pool filled)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def adam_step(repeat: int) -> None:
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal(s).astype(np.float32) for s in IMDB_SHAPES]
    gs = [rng.standard_normal(s).astype(np.float32) * 1e-3 for s in IMDB_SHAPES]
    res = {}
    for fused in (False, True):
        opt = O.Adam()
        opt.use_fused_kernels = fused
        vs = [w.copy() for w in ws]
        res[fused] = median_ms(lambda: opt.apply(gs, vs), repeat)
    check_ws = []
    for fused in (False, True):  # same number of steps from the same start: bitwise equal
        opt = O.Adam()
        opt.use_fused_kernels = fused
        vs = [w.copy() for w in ws]
        for _ in range(3):
            opt.apply(gs, vs)
        check_ws.append(vs + [np.asarray(v) for v in opt.variables])
    assert all(a.tobytes() == b.tobytes() for a, b in zip(*check_ws))
    n = sum(int(np.prod(s)) for s in IMDB_SHAPES)
    print(f"Adam step, {len(IMDB_SHAPES)} arrays, {n:,} float32 parameters "
          f"({core.build_info()['isa']}, {core.get_num_threads()} threads)")
    print(f"  NumPy   {res[False]:8.2f} ms")
    print(f"  C++     {res[True]:8.2f} ms   NumPy/C++ = {res[False] / res[True]:.1f}x")


def embedding_update(opt_name: str, repeat: int) -> None:
    rng = np.random.default_rng(1)
    table0 = rng.standard_normal((V, D)).astype(np.float32)
    # IMDB-like: padded sequences (id 0 frequent), Zipf-distributed word ids
    ids = np.minimum(rng.zipf(1.3, (B, T)), V - 1)
    ids[:, : T // 3] = 0
    dy = rng.standard_normal((B, T, D)).astype(np.float32) * 1e-3

    def run(mode: str) -> Callable[[], None]:
        opt = O.get(opt_name)
        opt.use_fused_kernels = mode != "dense"
        table = table0.copy()
        state = {"opt": opt, "table": table}

        def step() -> None:
            if mode == "sparse":
                rows, sums = core.embedding_row_sums(ids.reshape(-1), dy.reshape(-1, D), V)
                g = SparseRows(rows, sums, (V, D))
            else:
                g = dense_gradient(ids, dy, table)
            opt.apply([g], [table])
        step.state = state  # type: ignore[attr-defined]
        return step

    times, finals = {}, {}
    for mode in ("dense", "dense+C++", "sparse"):
        times[mode] = median_ms(run(mode), repeat)
        step = run(mode)
        for _ in range(3):
            step()
        finals[mode] = [step.state["table"]] + [np.asarray(v) for v in  # type: ignore
                                                step.state["opt"].variables]  # type: ignore
    for mode in ("dense+C++", "sparse"):
        assert all(a.tobytes() == b.tobytes() for a, b in zip(finals["dense"], finals[mode]))
    u = len(np.unique(ids))
    print(f"Embedding({V}, {D}) gradient + {opt_name} update, ids {B}x{T} ({u} distinct)")
    for mode, t in times.items():
        ratio = "" if mode == "dense" else f"   dense/{mode} = {times['dense'] / t:.1f}x"
        print(f"  {mode:10s}{t:8.2f} ms{ratio}")


def imdb_train_step(repeat: int) -> None:
    """Whole ``train_on_batch`` steps of the IMDB model: reference path (dense Embedding
    gradient, NumPy Adam) vs the default (row-sparse gradient, fused C++ Adam)."""
    from rnnkit import layers as L
    from rnnkit import sparse_grad
    from rnnkit.models import Sequential

    rng = np.random.default_rng(2)
    x = np.minimum(rng.zipf(1.3, (B, T)), V - 1)
    y = rng.integers(0, 2, (B, 1)).astype(np.float32)
    times, weights = {}, {}
    for fast in (False, True):
        sparse_grad.set_row_gradients(fast)
        m = Sequential([L.Embedding(V, D, input_shape=(T,)),
                        L.Bidirectional(L.LSTM(64, return_sequences=True)),
                        L.Bidirectional(L.LSTM(64)), L.Dense(1, activation="sigmoid")])
        m.compile(optimizer="adam", loss="binary_crossentropy")
        m.optimizer.use_fused_kernels = fast
        m.set_weights([np.random.default_rng(3).standard_normal(w.shape).astype(w.dtype) * 0.05
                       for w in m.get_weights()])
        times[fast] = median_ms(lambda: m.train_on_batch(x, y), repeat)
        weights[fast] = m.get_weights()
    sparse_grad.set_row_gradients(True)
    print(f"IMDB model train_on_batch, batch {B}x{T}")
    print(f"  reference {times[False]:8.2f} ms")
    print(f"  default   {times[True]:8.2f} ms   reference/default = "
          f"{times[False] / times[True]:.2f}x")


def main(argv: List[str] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=30)
    a = p.parse_args(argv)
    adam_step(a.repeat)
    embedding_update("adam", a.repeat)
    embedding_update("sgd", a.repeat)
    imdb_train_step(max(3, a.repeat // 4))


if __name__ == "__main__":
    main()
