"""Bridges between rnnkit's Keras-layout weights and other frameworks.

Submodules import their framework lazily, so importing :mod:`rnnkit.interop` never needs them:

* :mod:`rnnkit.interop.torch` -- ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` from rnnkit weights and
  back (needs the ``rnnkit[torch]`` extra).
"""
