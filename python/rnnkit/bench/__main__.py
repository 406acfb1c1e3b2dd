"""Command line: ``python -m rnnkit.bench [options]`` (``--help`` for the options)."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence

from .imdb import IMDB_SIZE, parse_imdb_size
from .shapes import CELLS, PASSES, SUITES, parse_shapes
from .streaming import STREAM_SIZES

DESCRIPTION = """\
Benchmark rnnkit's C++ kernels (rnnkit.ops) against the NumPy reference (rnnkit.reference)
and PyTorch (nn.LSTM / nn.GRU / nn.RNN, batch_first, same weights) for LSTM, GRU and SimpleRNN,
fp32, forward (inference: training=False / torch.no_grad) and forward+BPTT (dy random,
dh_last = 0). For each cell, shape (T,B,I,H) and pass it prints the median time in ms,
GFLOP/s (forward 2*B*T*G*H*(I+H), backward twice that) and rnnkit's speed-up over the
reference and over PyTorch; once per run the machine, rnnkit.build_info() and NumPy's
in-run sgemm rate (2048x2048 fp32) for scale.

Before timing, every (cell, shape) is verified once: rnnkit's outputs and gradients must
match the float64 NumPy reference (small shapes, or any shape without PyTorch) or PyTorch
(larger shapes) within fp32 tolerance. A mismatch is reported loudly and the exit status
is 1.

The NumPy reference loops over time in Python and is slow on big shapes: by default it is
timed only where its estimated time per call is below --reference-limit seconds (estimated
from its measured time on the next smaller shape, or from the sgemm rate); skipped cells
show "-". --reference always times it; --no-reference never does.
PyTorch is optional; without it (or with --no-torch) its columns show "-".

--suites picks the row groups (default: all, in this order):
  cells      the grid above (--cells, --shapes, --passes).
  overhead   per-call overhead in microseconds: the tutorial SimpleRNN (T,B,I,H = 10,8,1,20)
             forward (training=False) and forward+BPTT, rnnkit vs reference vs PyTorch.
  streaming  one LSTM step with carried state (B=1, T=1, I=H; --stream-sizes H, default
             32,128,512,1024): ops.lstm_forward(x, ..., h0=h, c0=c, training=False) vs PyTorch
             nn.LSTMCell under no_grad, microseconds per step; checked against the float64
             reference over 3 chained steps.
  imdb       the Keras IMDB model (Embedding(20000,128) -> Bidirectional(LSTM(64), seq) ->
             Bidirectional(LSTM(64)) -> Dense(1, sigmoid), Adam, binary crossentropy, batch 32,
             sequence length 200; --imdb-size): ms per train_on_batch step, predict(x,
             batch_size=32) and model(x), vs a plain PyTorch training loop of the same model
             and, when `import keras` works (Keras 3), Keras's train_on_batch / predict /
             call (--no-keras leaves it out). All start from rnnkit's initial weights; before
             timing, predictions, the gradients of every weight (vs PyTorch autograd, or the
             NumPy reference kernels without PyTorch) and the first-step losses must agree.
Duration: the cells grid dominates (minutes at the two largest shapes); overhead and
streaming take a few seconds, imdb about 10-30 s (plus Keras's import and tracing). For a
quick run: --shapes small (every suite, the three small grid shapes), or
--suites overhead,streaming,imdb (no grid); --budget 0.1 shortens every measurement.
"""


def _csv(choices: Sequence[str]):
    def parse(text: str) -> List[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)} (comma-separated); got {text!r}")
        return items
    return parse


def _shapes(text: str):
    try:
        return parse_shapes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _imdb_size(text: str):
    try:
        return parse_imdb_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _sizes(text: str) -> List[int]:
    try:
        sizes = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers H[,H...]; got {text!r}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m rnnkit.bench``."""
    p = argparse.ArgumentParser(prog="python -m rnnkit.bench", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suites", type=_csv(SUITES), default=list(SUITES),
                   help="comma-separated row groups: cells, overhead, streaming, imdb "
                        "(default: all; see above)")
    p.add_argument("--cells", type=_csv(CELLS), default=list(CELLS),
                   help="comma-separated cells (default: %(default)s)".replace("%(default)s", ",".join(CELLS)))
    p.add_argument("--shapes", type=_shapes, default=parse_shapes("all"), metavar="small|all|TxBxIxH,...",
                   help="'small' (the tutorial shape, 50x1x64x64, 50x16x64x128), 'all' (default: those "
                        "plus 200x32x128x64 (IMDB), 200x32x128x128, 100x32x128x256, 100x64x256x512, "
                        "50x64x1024x1024) or explicit sizes")
    p.add_argument("--passes", type=_csv(PASSES), default=list(PASSES),
                   help="comma-separated passes: fwd, fwd+bwd (default: both)")
    p.add_argument("--budget", type=float, default=0.5, metavar="SECONDS",
                   help="timed seconds per measurement; the median of the repeats is reported, with at "
                        "least 3 repeats after one warm-up call; overhead and streaming rows at "
                        "least 10, imdb rows 5 (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="rnnkit.set_num_threads(N); PyTorch gets the same count "
                        "(default: rnnkit's default, the usable cores)")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--no-reference", dest="reference", action="store_const", const="never",
                     default="auto", help="never time the NumPy reference (it may still verify)")
    ref.add_argument("--reference", dest="reference", action="store_const", const="always",
                     help="time the NumPy reference at every shape, however slow")
    p.add_argument("--reference-limit", type=float, default=3.0, metavar="SECONDS",
                   help="auto mode: skip the reference where one call is estimated to take longer "
                        "(default: %(default)s)")
    p.add_argument("--settle", type=float, default=None, metavar="SECONDS",
                   help="sleep between the warm-up call and the timed calls, so thread teams woken "
                        "by the warm-up idle once (on small VMs a team that starts badly placed "
                        "runs many times slower until it does); default: min(0.2, --budget)")
    p.add_argument("--imdb-size", type=_imdb_size, default=IMDB_SIZE,
                   metavar="default|BATCHxSEQ_LENxVOCABxEMBEDxUNITS",
                   help=f"sizes of the imdb rows (default: {IMDB_SIZE.label})")
    p.add_argument("--stream-sizes", type=_sizes, default=list(STREAM_SIZES), metavar="H[,H...]",
                   help="hidden sizes of the streaming rows, I = H (default: "
                        f"{','.join(map(str, STREAM_SIZES))})")
    p.add_argument("--no-torch", dest="torch", action="store_false", help="leave PyTorch out")
    p.add_argument("--no-keras", dest="keras", action="store_false",
                   help="leave Keras out of the imdb rows (default: use it when it imports)")
    p.add_argument("--json", metavar="PATH", help="also write the full report as JSON")
    p.add_argument("--png", metavar="PATH",
                   help="also write a bar chart of the speed-ups (needs matplotlib, rnnkit[plot])")
    p.add_argument("--seed", type=int, default=0, help="seed of the random problems (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; returns the exit status (0 ok, 1 mismatch, 2 usage error)."""
    args = build_parser().parse_args(argv)
    if args.budget < 0 or (args.settle or 0) < 0 or (args.threads is not None and args.threads < 1):
        print("--budget and --settle must be >= 0, --threads >= 1", file=sys.stderr)
        return 2
    from .output import PlotUnavailable, format_header, format_table, write_json, write_png
    from .suite import Config, run_suite
    from .tables import format_sections

    def log(msg: str) -> None:
        if not args.quiet or msg.startswith("!!!"):
            print(msg, file=sys.stderr, flush=True)

    config = Config(cells=args.cells, shapes=args.shapes, passes=args.passes, budget=args.budget,
                    threads=args.threads, reference=args.reference,
                    reference_limit=args.reference_limit, torch=args.torch, settle=args.settle,
                    seed=args.seed, log=log, suites=args.suites, imdb_size=args.imdb_size,
                    stream_sizes=args.stream_sizes, keras=args.keras)
    report = run_suite(config)
    print(format_header(report))
    if report["results"]:
        print()
        print(format_table(report))
    sections = format_sections(report)
    if sections:
        print()
        print(sections)
    if args.json:
        write_json(report, args.json)
        print(f"\nJSON report written to {args.json}")
    if args.png:
        try:
            write_png(report, args.png)
            print(f"chart written to {args.png}")
        except PlotUnavailable as exc:
            print(f"note: {exc}", file=sys.stderr)
    if report["mismatches"]:
        print("\n!!! MISMATCH: rnnkit disagrees with its oracle:", file=sys.stderr)
        for m in report["mismatches"]:
            print(f"!!!   {m}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
