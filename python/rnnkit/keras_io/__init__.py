"""Keras file interop: read (and write) Keras ``.keras`` / ``.h5`` / ``.weights.h5`` files.

Reading: :func:`rnnkit.models.load_model` and ``Model.load_weights`` recognise Keras files by
their content and hand them to :mod:`.reader` (configs translated by :mod:`.from_keras`).
Needs the optional extra ``rnnkit[keras]`` (h5py), imported only when a Keras file is read.
"""
