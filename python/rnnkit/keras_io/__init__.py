"""Keras 3 file interop: read and write ``.keras`` / ``.h5`` / ``.weights.h5`` files.

Reading: :func:`rnnkit.models.load_model` and ``Model.load_weights`` recognise Keras files by
their content and hand them to :mod:`.reader` (configs translated by :mod:`.from_keras`).
Writing: ``model.save("m.keras")`` and ``model.save_weights("w.weights.h5")`` go through
:mod:`.writer` (configs translated by :mod:`.to_keras`). Needs the optional extra
``rnnkit[keras]`` (h5py), imported only when a Keras file is read or written.
"""
