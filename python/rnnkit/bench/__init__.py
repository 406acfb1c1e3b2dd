"""``python -m rnnkit.bench``: rnnkit.ops vs the NumPy reference vs PyTorch (and Keras 3 for the
IMDB model), side by side.

Modules, one job each:

* :mod:`~rnnkit.bench.shapes`   benchmark shapes and the FLOP model.
* :mod:`~rnnkit.bench.problem`  random fp32 problems (inputs, weights, states, upstream grads).
* :mod:`~rnnkit.bench.runners`  the three runners: rnnkit.ops, rnnkit.reference, PyTorch.
* :mod:`~rnnkit.bench.verify`   agreement checks between runners.
* :mod:`~rnnkit.bench.timing`   median-of-repeats timing under a time budget.
* :mod:`~rnnkit.bench.sysinfo`  machine description and the in-run NumPy sgemm rate.
* :mod:`~rnnkit.bench.overhead`  per-call overhead rows: the tutorial SimpleRNN in microseconds.
* :mod:`~rnnkit.bench.streaming` single-step LSTM inference with carried state vs nn.LSTMCell.
* :mod:`~rnnkit.bench.imdb`     the Keras IMDB model: sizes, data, rnnkit's implementation.
* :mod:`~rnnkit.bench.imdb_torch` / :mod:`~rnnkit.bench.imdb_keras`  the same model in PyTorch
  and Keras 3, from rnnkit's weights.
* :mod:`~rnnkit.bench.imdb_suite` verifies and times the IMDB rows.
* :mod:`~rnnkit.bench.suite`    runs the selected suites and builds the report dict.
* :mod:`~rnnkit.bench.output`   main text table, JSON and PNG chart.
* :mod:`~rnnkit.bench.tables`   text tables of the overhead, streaming and IMDB rows.
* ``__main__``                  the command line.
"""
