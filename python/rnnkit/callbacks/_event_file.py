"""Minimal TensorBoard event-file writer: TFRecord framing of hand-encoded ``Event`` protos.

Only what scalar logging needs (``tensorflow/core/util/event.proto``):
``Event{wall_time=1 double, step=2 int64, file_version=3 string, summary=5 Summary}``,
``Summary{value=1 repeated Value}``, ``Value{tag=1 string, simple_value=2 float}``.
TFRecord: ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``.
No TensorFlow or TensorBoard import is needed to write; TensorBoard reads the files.
"""
from __future__ import annotations

import os
import socket
import struct
import time
from typing import BinaryIO, List, Optional, Tuple

__all__ = ["EventFileWriter", "read_scalars"]


def _crc32c_table() -> List[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1   # Castagnoli, reflected
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``."""
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 fields encode negatives as 10-byte two's complement
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _bytes_field(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def encode_event(wall_time: float, step: int, file_version: Optional[str] = None,
                 scalars: Optional[List[Tuple[str, float]]] = None) -> bytes:
    """Serialized ``Event`` with a file version or a summary of scalar values."""
    msg = _key(1, 1) + struct.pack("<d", wall_time) + _key(2, 0) + _varint(int(step))
    if file_version is not None:
        msg += _bytes_field(3, file_version.encode("utf-8"))
    if scalars:
        summary = b"".join(
            _bytes_field(1, _bytes_field(1, tag.encode("utf-8")) + _key(2, 5)
                         + struct.pack("<f", float(value)))
            for tag, value in scalars)
        msg += _bytes_field(5, summary)
    return msg


class EventFileWriter:
    """Appends events to ``<logdir>/events.out.tfevents.<time>.<host>.<pid>.<n>.v2``."""

    _count = 0

    def __init__(self, logdir: str) -> None:
        os.makedirs(logdir, exist_ok=True)
        EventFileWriter._count += 1
        name = (f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}."
                f"{os.getpid()}.{EventFileWriter._count}.v2")
        self.path = os.path.join(logdir, name)
        self._f: Optional[BinaryIO] = open(self.path, "wb")
        self._write(encode_event(time.time(), 0, file_version="brain.Event:2"))

    def _write(self, data: bytes) -> None:
        assert self._f is not None, "writer is closed"
        header = struct.pack("<Q", len(data))
        self._f.write(header + struct.pack("<I", _masked(header)) + data
                      + struct.pack("<I", _masked(data)))

    def add_scalars(self, step: int, scalars: List[Tuple[str, float]]) -> None:
        """One event holding ``(tag, value)`` scalars at ``step``."""
        self._write(encode_event(time.time(), step, scalars=scalars))

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _read_varint(buf: bytes, i: int) -> Tuple[int, int]:
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def _fields(buf: bytes) -> List[Tuple[int, int, object]]:
    out, i = [], 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(buf, i)
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        elif wire == 2:
            n, i = _read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.append((field, wire, v))
    return out


def read_scalars(path: str) -> List[Tuple[int, str, float]]:
    """``(step, tag, value)`` of every scalar in an event file (checks the CRCs); for tests."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    while i < len(data):
        header = data[i:i + 8]
        (n,) = struct.unpack("<Q", header)
        if struct.unpack("<I", data[i + 8:i + 12])[0] != _masked(header):
            raise ValueError("bad length CRC")
        rec = data[i + 12:i + 12 + n]
        if struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] != _masked(rec):
            raise ValueError("bad data CRC")
        i += 16 + n
        step = 0
        for field, _, v in _fields(rec):
            if field == 2:
                step = int(v)  # type: ignore[arg-type]
            if field == 5:
                for _, _, val in _fields(v):  # type: ignore[arg-type]
                    tag, value = "", 0.0
                    for f2, _, v2 in _fields(val):  # type: ignore[arg-type]
                        if f2 == 1:
                            tag = bytes(v2).decode("utf-8")  # type: ignore[arg-type]
                        elif f2 == 2:
                            value = struct.unpack("<f", v2)[0]  # type: ignore[arg-type]
                    out.append((step, tag, value))
    return out
