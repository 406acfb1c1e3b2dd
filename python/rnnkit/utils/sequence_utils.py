"""``pad_sequences``: a list of variable-length sequences -> one padded array (Keras 3 rules)."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

__all__ = ["pad_sequences"]


def pad_sequences(sequences: Sequence[Any], maxlen: Optional[int] = None, dtype: Any = "int32",
                  padding: str = "pre", truncating: str = "pre", value: Any = 0.0) -> np.ndarray:
    """Pad (or cut) each sequence to ``maxlen`` steps: returns ``(len(sequences), maxlen, *sample)``.

    As ``keras.utils.pad_sequences``: ``maxlen`` defaults to the longest sequence;
    ``padding``/``truncating`` ``"pre"`` (default) or ``"post"`` say at which end values are
    added / removed; ``value`` fills the padding; empty sequences become all ``value``. Each
    step may itself be an array (all of the first non-empty sequence's shape). String values
    need ``dtype=object`` (or a NumPy string dtype); a string ``value`` with a numeric dtype is
    refused.
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError("pad_sequences: `sequences` must be a list of sequences, got "
                         f"{type(sequences).__name__}")
    lengths = []
    sample_shape: Tuple[int, ...] = ()
    found_sample = False
    for s in sequences:
        try:
            n = len(s)
        except TypeError as exc:
            raise ValueError("pad_sequences: `sequences` must be a list of sequences; found the "
                             f"non-sequence {s!r}") from exc
        lengths.append(n)
        if n and not found_sample:
            sample_shape = np.asarray(s).shape[1:]  # steps may be vectors
            found_sample = True
    if maxlen is None:
        if not lengths:
            raise ValueError("pad_sequences: `sequences` is empty and `maxlen` is not given")
        maxlen = int(max(lengths))
    elif isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0:
        raise ValueError(f"pad_sequences: `maxlen` must be a non-negative int or None, got {maxlen!r}")
    if padding not in ("pre", "post"):
        raise ValueError(f"pad_sequences: `padding` must be 'pre' or 'post', got {padding!r}")
    if truncating not in ("pre", "post"):
        raise ValueError(f"pad_sequences: `truncating` must be 'pre' or 'post', got {truncating!r}")
    is_text_dtype = dtype is not object and (np.issubdtype(dtype, np.str_)
                                            or np.issubdtype(dtype, np.bytes_))
    if isinstance(value, str) and dtype is not object and not is_text_dtype:
        raise ValueError(f"pad_sequences: `dtype` {dtype} cannot hold the string `value` "
                         f"{value!r}; use dtype=object for variable-length strings")
    out = np.full((len(lengths), maxlen) + tuple(sample_shape), value, dtype=dtype)
    for i, s in enumerate(sequences):
        if not len(s):
            continue  # an empty sequence stays all padding
        if maxlen == 0:
            # Keras fails here too (its slice s[-0:] keeps everything): say why.
            raise ValueError("pad_sequences: `maxlen`=0 cannot hold the non-empty sequence at "
                             f"position {i}")
        kept = np.asarray(s[-maxlen:] if truncating == "pre" else s[:maxlen], dtype=dtype)
        if kept.shape[1:] != sample_shape:
            raise ValueError(f"pad_sequences: the steps of sequence {i} have shape "
                             f"{kept.shape[1:]}, expected {tuple(sample_shape)} (the shape in "
                             "the first non-empty sequence)")
        if padding == "post":
            out[i, :len(kept)] = kept
        else:
            out[i, maxlen - len(kept):] = kept
    return out
