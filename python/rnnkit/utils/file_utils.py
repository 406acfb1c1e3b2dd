"""``get_file``: Keras's cached-download helper, offline (rnnkit never opens network connections).

rnnkit looks the file up where Keras keeps it -- ``cache_dir`` (default ``$KERAS_HOME`` or
``~/.keras``) / ``cache_subdir`` (default ``"datasets"``) / ``fname`` -- so anything Keras
already downloaded on this machine is found. A cached file is returned (after checking
``file_hash`` when given); anything that would need a download raises :class:`OSError`
saying so.
"""
from __future__ import annotations

import hashlib
import os
import urllib.parse
from typing import Any, Optional

__all__ = ["get_file"]


def _cache_root(cache_dir: Optional[str]) -> str:
    if cache_dir is None:
        cache_dir = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return os.path.expanduser(os.fspath(cache_dir))


def _hash_file(path: str, algorithm: str) -> str:
    h = hashlib.sha256() if algorithm == "sha256" else hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def get_file(fname: Optional[str] = None, origin: Optional[str] = None, untar: bool = False,
             md5_hash: Optional[str] = None, file_hash: Optional[str] = None,
             cache_subdir: str = "datasets", hash_algorithm: str = "auto",
             extract: bool = False, archive_format: str = "auto",
             cache_dir: Optional[str] = None, force_download: bool = False) -> str:
    """Path of ``fname`` in the Keras cache; never downloads (see the module docstring).

    ``fname`` defaults to the last part of ``origin``'s URL path and must be a bare file name.
    With ``extract``/``untar`` the already-extracted folder is returned when present (Keras's
    names: ``<stem>_extracted`` for a ``fname`` with a suffix, else ``fname``). ``file_hash``
    (or ``md5_hash``) is checked against the cached file: sha256 or md5, ``"auto"`` picks by
    length as Keras. ``force_download=True`` always raises (it needs the network).
    ``archive_format`` is accepted for compatibility.
    """
    del archive_format  # extraction is never done here; the extracted folder must exist
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    if hash_algorithm not in ("auto", "sha256", "md5"):
        raise ValueError(f"get_file: `hash_algorithm` must be 'auto', 'sha256' or 'md5', "
                         f"got {hash_algorithm!r}")
    if fname is None or fname == "":
        if not origin:
            raise ValueError("get_file: give `fname` or `origin`")
        fname = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not fname or fname in (os.curdir, os.pardir):
            raise ValueError(f"get_file: cannot take a file name from origin {origin!r}; pass "
                             "`fname`")
    fname = os.fspath(fname)
    if os.sep in fname or (os.altsep and os.altsep in fname) or fname in (os.curdir, os.pardir):
        raise ValueError(f"get_file: `fname` must be a bare file name, got {fname!r}; choose the "
                         "folder with `cache_dir` / `cache_subdir`")
    datadir = os.path.join(_cache_root(cache_dir), cache_subdir)
    target = os.path.join(datadir, fname)
    if extract or untar:
        stem = fname.split(".", 1)[0]
        found = os.path.join(datadir, f"{stem}_extracted" if "." in fname else fname)
    else:
        found = target
    where = f"{origin!r}" if origin else "its origin"
    if force_download:
        raise OSError(f"get_file: force_download=True needs network access to fetch {where}; "
                      "rnnkit does not download files")
    if not os.path.exists(found):
        raise OSError(f"get_file: {found} is not in the cache and fetching it from {where} needs "
                      f"network access, which rnnkit does not use. Download it yourself and put "
                      f"it at {found}" + (" (extracted)" if extract or untar else ""))
    if file_hash is not None and os.path.isfile(found):
        algo = hash_algorithm
        if algo == "auto":
            algo = "sha256" if len(file_hash) == 64 else "md5"
        actual = _hash_file(found, algo)
        if actual != str(file_hash):
            raise ValueError(f"get_file: the cached file {found} has {algo} {actual}, expected "
                             f"{file_hash}; delete it and download it again")
    return found
