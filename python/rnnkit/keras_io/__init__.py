"""Keras 3 files: write ``.keras`` / ``.weights.h5`` (:mod:`.writer`, :mod:`.to_keras`).

Needs h5py (``pip install rnnkit[keras]``); imported lazily, so ``import rnnkit`` works
without it.
"""
