"""Unsigned LEB128 varints: the one integer codec of every mosapp bitstream.

7 bits per byte, the low group first, the high bit set on every byte but the last. The
``.sgc`` container frames its header and payload lengths with them (at most 9 bytes, 63
bits), and the waveform codecs their packet-length tables (at most 5 bytes, 35 bits).

>>> encode(300)
b'\\xac\\x02'
>>> decode(b"\\xac\\x02", 0, max_bytes=5)
(300, 2)

Damage is one error type, :class:`VarintError` (a :class:`ValueError`), in two kinds: the
data ends inside the varint (:class:`VarintTruncated`, which says how many bytes were
needed) or it runs longer than the caller allows (:class:`VarintTooLong`). Callers turn
it into their own one-sentence :class:`~mosapp.core.errors.BitstreamError`.
"""

from __future__ import annotations


class VarintError(ValueError):
    """A varint that cannot be read."""


class VarintTruncated(VarintError):
    """The data ends inside a varint (or before another fixed field): ``need`` bytes at least."""

    def __init__(self, need: int) -> None:
        super().__init__("varint runs past the end")
        self.need = need


class VarintTooLong(VarintError):
    """A varint longer than ``max_bytes``: damage, not a value."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"varint longer than {max_bytes} bytes")
        self.max_bytes = max_bytes


def encode(value: int) -> bytes:
    """``value`` (>= 0) as an unsigned LEB128.

    Raises:
        ValueError: a negative value.
    """
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


def decode(data: bytes | bytearray | memoryview, pos: int, *, max_bytes: int) -> tuple[int, int]:
    """The varint at ``data[pos:]``: (value, position after it).

    Raises:
        VarintTruncated: ``data`` ends before the varint does.
        VarintTooLong: the varint has more than ``max_bytes`` bytes.
    """
    value = 0
    for i in range(max_bytes):
        if pos + i >= len(data):
            raise VarintTruncated(pos + i + 1)
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise VarintTooLong(max_bytes)


__all__ = ["VarintError", "VarintTooLong", "VarintTruncated", "decode", "encode"]
