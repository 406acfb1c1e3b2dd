"""Dask integration (extra ``rnnkit[dask]``: dask[array], distributed).

``predict`` and ``evaluate`` run a model over ``dask.array`` data chunked along the batch
axis; ``fit`` trains synchronously data-parallel on a ``distributed`` cluster (one replica
per worker, gradients averaged every step). Hyperparameter search: scikit-learn's
``GridSearchCV`` under ``joblib.parallel_backend("dask")`` (see the README).
"""
from __future__ import annotations

from ._common import require_dask as _require_dask

_require_dask()

from ._fit import fit  # noqa: E402
from ._predict import evaluate, predict  # noqa: E402

__all__ = ["predict", "evaluate", "fit"]
