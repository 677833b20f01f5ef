"""Writing .sgc files by hand: well-framed files with any header, and the edits a forger makes.

Shared by the container tests (tests/codecs) and the CLI's decode tests (tests/cli).
"""

from __future__ import annotations

import json
import struct
import zlib

from mosapp.codecs.container import CONTAINER_VERSION, MAGIC
from mosapp.core import varint


def reseal(body: bytes) -> bytes:
    """``body`` (everything before the CRC) with a valid CRC-32 appended."""
    return body + struct.pack("<I", zlib.crc32(body))


def with_header(header: bytes, payload: bytes = b"xyz", version: int = CONTAINER_VERSION) -> bytes:
    """A well-framed file with an arbitrary header (valid CRC)."""
    return reseal(MAGIC + struct.pack("<H", version) + varint.encode(len(header))
                  + varint.encode(len(payload)) + header + payload)


def header_of(data: bytes) -> dict:
    hlen, pos = varint.decode(data, 6, max_bytes=9)
    _, start = varint.decode(data, pos, max_bytes=9)
    return json.loads(data[start:start + hlen])


def forge(data: bytes, edit) -> bytes:
    """``data`` with its header JSON changed by ``edit(header)`` (in place) and a valid CRC-32;
    the binding digest ``b`` is left as it was, as a forger who only knows the framing would."""
    header = header_of(data)
    _, pos = varint.decode(data, 6, max_bytes=9)
    payload_len, start = varint.decode(data, pos, max_bytes=9)
    payload = data[len(data) - 4 - payload_len: len(data) - 4]
    edit(header)
    (version,) = struct.unpack_from("<H", data, 4)
    return with_header(json.dumps(header, allow_nan=True).encode(), payload=payload, version=version)


def set_at(path, value):
    """A header edit that sets the value at ``path`` (keys and indices), for :func:`forge`."""
    def edit(header):
        target = header
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


def version_1(data: bytes) -> bytes:
    """The same stream as mosapp 0.1.0 wrote it: container version 1, no ``b`` or ``mi`` key."""
    header = header_of(data)
    header.pop("b", None)
    header.pop("mi", None)
    _, pos = varint.decode(data, 6, max_bytes=9)
    payload_len, _ = varint.decode(data, pos, max_bytes=9)
    payload = data[len(data) - 4 - payload_len: len(data) - 4]
    return with_header(json.dumps(header, separators=(",", ":")).encode(), payload=payload, version=1)
