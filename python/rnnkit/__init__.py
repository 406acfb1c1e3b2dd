"""rnnkit: fast CPU SimpleRNN, LSTM and GRU (forward + BPTT) on NumPy arrays.

Modules:
    rnnkit.ops        C++ kernels (pybind11), the fast path.
    rnnkit.reference  plain-NumPy twins with identical signatures, the test oracle.
"""
from ._version import __version__
from . import ops, reference
from . import runtime
from .runtime import (build_info, get_num_threads, get_pool_limit, pool_stats, release_memory,
                      set_num_threads, set_pool_limit)

__all__ = ["ops", "reference", "runtime", "build_info", "get_num_threads", "set_num_threads",
           "release_memory", "set_pool_limit", "get_pool_limit", "pool_stats"]

# --- Keras-style API ---
from . import backend, activations, initializers, losses, metrics, optimizers, callbacks  # noqa: E402
from . import layers, models, utils  # noqa: E402
from .layers import Input  # noqa: E402
from .models import Model, Sequential, load_model  # noqa: E402

__all__ += ["backend", "activations", "initializers", "losses", "metrics", "optimizers",
            "callbacks", "layers", "models", "utils", "Input", "Model", "Sequential", "load_model"]
# --- end Keras-style API ---
