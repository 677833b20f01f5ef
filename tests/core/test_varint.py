"""The one varint codec: unsigned LEB128 with its two kinds of damage."""

from __future__ import annotations

import pytest

from mosapp.core import varint


@pytest.mark.parametrize("value, data", [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"),
                                         (300, b"\xac\x02"), (2**35 - 1, b"\xff\xff\xff\xff\x7f")])
def test_encode_and_decode_known_values(value, data):
    assert varint.encode(value) == data
    assert varint.decode(b"ab" + data + b"cd", 2, max_bytes=5) == (value, 2 + len(data))


def test_round_trip_over_byte_boundaries():
    for bits in range(64):
        for value in {2**bits - 1, 2**bits, 2**bits + 1}:
            data = varint.encode(value)
            assert len(data) == max(1, -(-value.bit_length() // 7))
            assert varint.decode(data, 0, max_bytes=10) == (value, len(data))


def test_negative_values_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        varint.encode(-1)


def test_truncated_says_how_many_bytes_it_needed():
    with pytest.raises(varint.VarintTruncated, match="runs past the end") as info:
        varint.decode(b"xx\x80\x80", 2, max_bytes=9)
    assert info.value.need == 5
    with pytest.raises(varint.VarintTruncated) as info:
        varint.decode(b"", 0, max_bytes=9)
    assert info.value.need == 1


def test_too_long_is_damage_of_the_same_error_type():
    with pytest.raises(varint.VarintTooLong, match="longer than 5 bytes"):
        varint.decode(b"\xff" * 5 + b"\x01", 0, max_bytes=5)
    assert varint.decode(b"\xff" * 8 + b"\x01", 0, max_bytes=9)[1] == 9
    for kind in (varint.VarintTruncated, varint.VarintTooLong):
        assert issubclass(kind, varint.VarintError) and issubclass(kind, ValueError)
