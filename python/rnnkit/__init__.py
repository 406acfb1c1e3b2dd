"""rnnkit: fast CPU SimpleRNN, LSTM and GRU (forward + BPTT) on NumPy arrays.

Modules:
    rnnkit.ops        C++ kernels (pybind11), the fast path.
    rnnkit.reference  plain-NumPy twins with identical signatures, the test oracle.
"""
from . import ops, reference

__all__ = ["ops", "reference"]
__version__ = "0.1.0"
