"""``python -m rnnkit.bench``: rnnkit.ops vs the NumPy reference vs PyTorch, side by side.

Modules, one job each:

* :mod:`~rnnkit.bench.shapes`   benchmark shapes and the FLOP model.
* :mod:`~rnnkit.bench.problem`  random fp32 problems (inputs, weights, states, upstream grads).
* :mod:`~rnnkit.bench.runners`  the three runners: rnnkit.ops, rnnkit.reference, PyTorch.
* :mod:`~rnnkit.bench.verify`   agreement checks between runners.
* :mod:`~rnnkit.bench.timing`   median-of-repeats timing under a time budget.
* :mod:`~rnnkit.bench.sysinfo`  machine description and the in-run NumPy sgemm rate.
* :mod:`~rnnkit.bench.suite`    runs the grid and builds the report dict.
* :mod:`~rnnkit.bench.output`   text table, JSON and PNG chart.
* ``__main__``                  the command line.
"""
