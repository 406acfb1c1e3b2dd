"""Bridges between rnnkit's Keras-layout weights and other frameworks.

Submodules import their framework lazily, so importing :mod:`rnnkit.interop` never needs them:

* :mod:`rnnkit.interop.torch` -- ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` from rnnkit weights and
  back, and whole modules (stacked, bidirectional) to and from rnnkit ``Sequential`` models
  (needs the ``rnnkit[torch]`` extra).
* :mod:`rnnkit.interop.state_dict` -- the same module conversion from / to a plain state dict
  of NumPy arrays, without PyTorch.
* :mod:`rnnkit.interop.onnx_export` -- a model as an ONNX file (``model.export(path,
  format="onnx")``; needs the ``rnnkit[onnx]`` extra, and ``onnxruntime`` to run the file),
  with :mod:`~rnnkit.interop.onnx_rnn` (recurrent layers) and
  :mod:`~rnnkit.interop.onnx_layers` (the other layers).
"""
