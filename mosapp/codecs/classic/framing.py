"""The packet framing of the waveform codecs' payload.

Payload of the waveform codecs (integers little-endian)::

    u32     CRC-32 of everything after it
    varint  byte count T of the packet-length table
    T bytes zlib (level 9) of the packets' byte lengths, each an unsigned LEB128 varint
    ...     the encoder's packets back to back, as FFmpeg emitted them (raw Opus packets,
            MP3 frames with their headers, raw AAC access units)

The length table is what an Ogg page's lacing values, LATM's length bytes or an MP4
sample-size table carry; zlib makes it almost free for CBR streams (every length equal, or
MP3's alternating padding: 15-25 bytes per 30 s) and about 0.6 bytes per packet for AAC
(0.2-0.25 kbit/s).
"""

from __future__ import annotations

import zlib

from mosapp.core import varint
from mosapp.core.errors import BitstreamError

#: A packet length or table size longer than this (35 bits) is damage.
_MAX_VARINT_BYTES = 5


def pack_packets(packets: list[bytes]) -> bytes:
    """The payload layout of the module docstring."""
    table = zlib.compress(b"".join(varint.encode(len(p)) for p in packets), 9)
    body = varint.encode(len(table)) + table + b"".join(packets)
    return zlib.crc32(body).to_bytes(4, "little") + body


def unpack_packets(payload: bytes, name: str) -> list[bytes]:
    """Split a payload into packets.

    Raises:
        BitstreamError: wrong checksum, truncated or inconsistent payload.
    """
    if len(payload) < 5:
        raise BitstreamError(f"The {name} payload is truncated ({len(payload)} bytes).")
    body = memoryview(payload)[4:]
    if zlib.crc32(body) != int.from_bytes(payload[:4], "little"):
        raise BitstreamError(f"The {name} payload is damaged (its checksum does not match).")
    try:
        size, pos = varint.decode(body, 0, max_bytes=_MAX_VARINT_BYTES)
        if pos + size > len(body):
            raise ValueError("length table runs past the end")
        data_bytes = len(body) - pos - size
        inflater = zlib.decompressobj()
        # Every packet is at least one byte, so the table cannot be longer than this.
        raw = inflater.decompress(bytes(body[pos: pos + size]), 5 * data_bytes + 5)
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError("length table does not inflate cleanly")
        pos += size
        packets: list[bytes] = []
        at = 0
        while at < len(raw):
            length, at = varint.decode(raw, at, max_bytes=_MAX_VARINT_BYTES)
            if length == 0 or pos + length > len(body):
                raise ValueError("a packet length does not fit the payload")
            packets.append(bytes(body[pos: pos + length]))
            pos += length
        if pos != len(body):
            raise ValueError(f"{len(body) - pos} bytes follow the last packet")
    except (ValueError, zlib.error) as exc:
        raise BitstreamError(f"The {name} payload is damaged ({exc}).") from None
    if not packets:
        raise BitstreamError(f"The {name} payload holds no packets.")
    return packets


__all__ = ["pack_packets", "unpack_packets"]
