"""The ``.sgc`` container: one codec payload plus everything needed to decode it and restore the source.

Layout (all integers little-endian; the byte-by-byte description is ``docs/bitstream.md``)::

    magic        4 bytes   b"SGC\\x1a"
    version      u16       container format version (CONTAINER_VERSION)
    header_len   ULEB128   bytes of the header
    payload_len  ULEB128   bytes of the payload
    header       header_len bytes of compact UTF-8 JSON (see HEADER_KEYS)
    payload      payload_len bytes: Encoded.payload, verbatim
    crc32        u32       zlib.crc32 of every byte before it

The framing (magic, version, the two lengths, header, payload, CRC-32 as the last four
bytes) is frozen for every container version, so a reader can tell a truncated or damaged
file from one written by a newer mosapp before it interprets the header.

The file size is the bitrate a listener pays, so the overhead is kept small: 14 to 16
bytes of framing plus a compact JSON header with short keys (about 100 bytes plus the
codec's ``params``).
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

from mosapp.audio import AudioInfo
from mosapp.codecs.base import Encoded
from mosapp.errors import BitstreamError, MosappError
from mosapp.files import atomic_write

#: The first four bytes of every ``.sgc`` file. 0x1A (Ctrl-Z) stops a terminal ``type``.
MAGIC = b"SGC\x1a"
#: The container format version this mosapp writes and the newest it reads.
CONTAINER_VERSION = 1
#: The file extension.
SUFFIX = ".sgc"

#: Header keys (JSON object), short because every byte is paid for:
#: codec name, codec payload version, coded sample rate, coded samples per channel,
#: coded channels, codec params, source file facts, mosapp version.
HEADER_KEYS = ("c", "cv", "sr", "n", "ch", "p", "s", "m")

_CRC_BYTES = 4
#: A ULEB128 longer than this (63 bits) is damage, not a length.
_MAX_VARINT_BYTES = 9


def _mosapp_version() -> str:
    from mosapp import __version__

    return __version__


def uleb128(value: int) -> bytes:
    """Unsigned LEB128: 7 bits per byte, low group first, high bit set on all but the last."""
    if value < 0:
        raise ValueError(f"lengths are non-negative, got {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Truncated(Exception):
    """Raised inside the framing parser when the data ends before a field does."""

    def __init__(self, need: int):
        self.need = need


def _read_uleb128(data: bytes, pos: int, name: str) -> tuple[int, int]:
    value = shift = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise _Truncated(pos + i + 1)
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos + i + 1
    raise BitstreamError(f"{name} is damaged: its length fields are not valid.")


def _header_dict(encoded: Encoded, source: AudioInfo) -> dict[str, Any]:
    return {
        "c": encoded.codec,
        "cv": int(encoded.codec_version),
        "sr": int(encoded.sample_rate),
        "n": int(encoded.n_samples),
        "ch": int(encoded.channels),
        "p": encoded.params,
        "s": [int(source.sample_rate), int(source.frames), int(source.channels), source.subtype, source.format],
        "m": _mosapp_version(),
    }


def pack(encoded: Encoded, source: AudioInfo) -> bytes:
    """The ``.sgc`` bytes of ``encoded``, with the facts of the ``source`` file it was read from.

    Raises:
        ValueError: ``encoded.params`` is not JSON-serialisable or a field is out of range
            (a programming error in the codec).
    """
    try:
        header = json.dumps(_header_dict(encoded, source), separators=(",", ":"), ensure_ascii=False,
                            allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the {encoded.codec} header cannot be stored as JSON: {exc}") from None
    payload = bytes(encoded.payload)
    body = b"".join([MAGIC, struct.pack("<H", CONTAINER_VERSION), uleb128(len(header)), uleb128(len(payload)),
                     header, payload])
    return body + struct.pack("<I", zlib.crc32(body))


def _fail_header(name: str, what: str) -> BitstreamError:
    return BitstreamError(f"{name} has a malformed header ({what}); it was not written by a working mosapp.")


def _int_field(header: dict, key: str, what: str, name: str, minimum: int) -> int:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail_header(name, f"{what} must be an integer of at least {minimum}, found {value!r}")
    return value


def unpack(data: bytes, name: str = "the .sgc data") -> tuple[Encoded, AudioInfo]:
    """Parse ``.sgc`` bytes into the codec's :class:`Encoded` and the source file's :class:`AudioInfo`.

    Args:
        data: the whole file.
        name: how messages call the data (the path, for :func:`read_sgc`).

    Returns:
        ``(encoded, source)``; ``source.path`` is None.

    Raises:
        BitstreamError: not an ``.sgc`` file, truncated, damaged (checksum), written by a
            newer mosapp, or a malformed header; one sentence naming ``name``.
    """
    data = bytes(data)
    found = len(data)
    if found == 0:
        raise BitstreamError(f"{name} is empty (0 bytes), not an .sgc file.")
    if data[: len(MAGIC)] != MAGIC[: min(found, len(MAGIC))]:
        raise BitstreamError(f"{name} is not an .sgc file (it does not start with the .sgc magic bytes).")
    try:
        if found < len(MAGIC) + 2:
            raise _Truncated(len(MAGIC) + 2)
        (version,) = struct.unpack_from("<H", data, len(MAGIC))
        header_len, pos = _read_uleb128(data, len(MAGIC) + 2, name)
        payload_len, pos = _read_uleb128(data, pos, name)
    except _Truncated as exc:
        raise BitstreamError(
            f"{name} is truncated: it ends after {found} bytes, inside the fixed part of the file "
            f"(at least {exc.need} bytes expected)."
        ) from None
    header_start = pos
    payload_start = header_start + header_len
    crc_start = payload_start + payload_len
    expected = crc_start + _CRC_BYTES
    if found < expected:
        raise BitstreamError(f"{name} is truncated: expected {expected} bytes, found {found}.")
    if found > expected:
        raise BitstreamError(
            f"{name} is damaged: its header announces {expected} bytes but the file has {found} "
            f"({found - expected} bytes too many)."
        )
    (stored,) = struct.unpack_from("<I", data, crc_start)
    computed = zlib.crc32(memoryview(data)[:crc_start])
    if stored != computed:
        raise BitstreamError(
            f"{name} is damaged: its checksum does not match (stored CRC-32 {stored:08x}, computed "
            f"{computed:08x}), so some bytes were changed after it was written."
        )
    if version > CONTAINER_VERSION:
        raise BitstreamError(
            f"{name} was written by a newer mosapp (container version {version}; this mosapp reads up to "
            f"version {CONTAINER_VERSION}): update mosapp."
        )
    if version < 1:
        raise BitstreamError(f"{name} has container version {version}, which no mosapp writes.")

    try:
        header = json.loads(data[header_start:payload_start].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _fail_header(name, f"not UTF-8 JSON: {exc}") from None
    if not isinstance(header, dict):
        raise _fail_header(name, "not a JSON object")
    codec = header.get("c")
    if not isinstance(codec, str) or not codec:
        raise _fail_header(name, "no codec name")
    codec_version = _int_field(header, "cv", "the codec version", name, 0)
    sample_rate = _int_field(header, "sr", "the sample rate", name, 1)
    n_samples = _int_field(header, "n", "the sample count", name, 0)
    channels = _int_field(header, "ch", "the channel count", name, 1)
    params = header.get("p", {})
    if not isinstance(params, dict):
        raise _fail_header(name, "the codec parameters are not a JSON object")
    src = header.get("s")
    if not isinstance(src, list) or len(src) < 5:
        raise _fail_header(name, "the source file facts are missing")
    src_rate, src_frames, src_channels, subtype, fmt = src[:5]
    for value, what, minimum in ((src_rate, "the source sample rate", 1), (src_frames, "the source length", 0),
                                 (src_channels, "the source channel count", 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _fail_header(name, f"{what} must be an integer of at least {minimum}, found {value!r}")
    for value, what in ((subtype, "the source subtype"), (fmt, "the source format")):
        if value is not None and not isinstance(value, str):
            raise _fail_header(name, f"{what} must be a string, found {value!r}")
    if channels != 1 and channels != src_channels:
        raise _fail_header(name, f"{channels} coded channels cannot be restored to {src_channels}")
    encoded = Encoded(codec=codec, codec_version=codec_version, sample_rate=sample_rate, n_samples=n_samples,
                      channels=channels, params=params, payload=data[payload_start:crc_start])
    source = AudioInfo(path=None, sample_rate=src_rate, channels=src_channels, frames=src_frames, subtype=subtype,
                       format=fmt)
    return encoded, source


def overhead_bytes(data: bytes) -> int:
    """Bytes of ``.sgc`` data that are not payload (framing, header, checksum)."""
    encoded, _ = unpack(data)
    return len(data) - len(encoded.payload)


def write_sgc(path: str | os.PathLike[str], encoded: Encoded, source: AudioInfo) -> int:
    """Write ``encoded`` to ``path`` atomically (temporary file in the same folder, then
    :func:`os.replace`); returns the file size in bytes.

    Raises:
        MosappError: the folder does not exist or the file cannot be written.
    """
    data = pack(encoded, source)
    atomic_write(path, lambda fh: fh.write(data), suffix=SUFFIX)
    return len(data)


def read_sgc(path: str | os.PathLike[str]) -> tuple[Encoded, AudioInfo]:
    """Read and check an ``.sgc`` file: see :func:`unpack`.

    Raises:
        MosappError: the file is missing or unreadable.
        BitstreamError: its content is not a valid ``.sgc`` file (see :func:`unpack`).
    """
    name = os.fspath(path)
    p = Path(name)
    if not p.exists():
        raise MosappError(f"{name} does not exist.")
    if p.is_dir():
        raise MosappError(f"{name} is a folder, not an .sgc file.")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise MosappError(f"{name} cannot be opened ({exc.strerror or exc}).") from None
    return unpack(data, name)


def file_kbps(path_or_bytes: str | os.PathLike[str] | bytes, encoded: Encoded) -> float:
    """Bitrate of the whole ``.sgc`` file, kbit/s: 8 × file bytes / ``encoded.seconds`` / 1000."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        size = len(path_or_bytes)
    else:
        size = os.path.getsize(path_or_bytes)
    return 8.0 * size / max(encoded.seconds, 1e-9) / 1000.0


__all__ = ["CONTAINER_VERSION", "MAGIC", "SUFFIX", "file_kbps", "overhead_bytes", "pack", "read_sgc", "unpack",
           "write_sgc"]
