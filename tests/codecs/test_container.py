"""The .sgc container: pack/unpack, files on disk, and every kind of damage ending in one sentence."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

from mosapp.codecs import container, get_codec
from mosapp.codecs.base import Encoded
from mosapp.codecs.container import CONTAINER_VERSION, MAGIC, file_kbps, pack, read_sgc, unpack, write_sgc
from mosapp.core import varint
from mosapp.core.audio import AudioInfo
from mosapp.core.config import PipelineConfig
from mosapp.core.errors import BitstreamError, MosappError
from tests.codecs.forging import forge, header_of, reseal, set_at, version_1, with_header
from tests.helpers import music_like

SOURCE = AudioInfo(path="/somewhere/in.wav", sample_rate=48_000, channels=2, frames=96_000, subtype="PCM_24",
                   format="WAV")


def small_encoded(payload: bytes = bytes(range(200)) * 2, **kw) -> Encoded:
    fields = dict(codec="pghi-only", codec_version=1, sample_rate=44_100, n_samples=88_200, channels=1,
                  params={"geometry": "thesis", "tile_frames": 2048, "top_db": [-3.25], "dynamic_range_db": 100.0},
                  payload=payload)
    fields.update(kw)
    return Encoded(**fields)


def one_sentence(exc: BaseException, *needles: str) -> str:
    msg = str(exc)
    assert "\n" not in msg and msg.endswith("."), msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


# --------------------------------------------------------------------------- round trips


def test_pack_unpack_round_trip():
    enc = small_encoded()
    data = pack(enc, SOURCE)
    assert data[:4] == MAGIC and data[4:6] == b"\x02\x00"
    got, src = unpack(data)
    assert got == enc
    assert src == AudioInfo(path=None, sample_rate=48_000, channels=2, frames=96_000, subtype="PCM_24", format="WAV")


def test_round_trip_keeps_odd_values():
    enc = small_encoded(payload=b"", codec_version=0, n_samples=0, channels=2,
                        params={"unicode": "ü€", "nested": {"a": [1, 2.5, None, True]}, "big": 2**40},
                        model="0123456789abcdef")
    src = AudioInfo(path=None, sample_rate=22_050, channels=2, frames=0, subtype=None, format=None)
    assert unpack(pack(enc, src)) == (enc, src)


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16_383, 16_384, 2_100_000])
def test_lengths_across_uleb128_boundaries(size):
    payload = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    enc = small_encoded(payload=payload)
    got, _ = unpack(pack(enc, SOURCE))
    assert got.payload == payload


def test_real_codec_round_trip_decodes_identically():
    codec = get_codec("pghi-only")
    config = PipelineConfig(phase="pghi", device="cpu")
    enc = codec.encode(music_like(1.0), config)
    one_second = AudioInfo(path=None, sample_rate=48_000, channels=2, frames=48_000, subtype="PCM_24", format="WAV")
    enc2, src = unpack(pack(enc, one_second))
    assert enc2 == enc and src.frames == one_second.frames
    np.testing.assert_array_equal(codec.decode(enc2, config), codec.decode(enc, config))


def test_overhead_is_small():
    enc = small_encoded()
    data = pack(enc, SOURCE)
    overhead = len(data) - len(enc.payload)
    params = len(json.dumps(enc.params, separators=(",", ":")))
    # framing (magic 4 + version 2 + lengths 2..4 + CRC 4), ~100 bytes of fixed header keys and
    # the 23-byte binding digest
    assert overhead - params <= 145, overhead - params
    assert container.overhead_bytes(data) == overhead


def test_unknown_header_keys_are_ignored():
    enc = small_encoded()
    header = header_of(pack(enc, SOURCE))
    header["future"] = {"x": 1}
    header["b"] = container.binding_digest(header, enc.payload)  # a later mosapp's writer binds its keys too
    got, _ = unpack(with_header(json.dumps(header).encode(), payload=enc.payload))
    assert got == enc


def test_file_kbps_counts_the_whole_file(tmp_path):
    enc = small_encoded()
    path = tmp_path / "a.sgc"
    size = write_sgc(path, enc, SOURCE)
    assert size == path.stat().st_size == len(pack(enc, SOURCE))
    expected = 8 * size / 2.0 / 1000
    assert file_kbps(path, enc) == pytest.approx(expected)
    assert file_kbps(str(path), enc) == pytest.approx(expected)
    assert file_kbps(path.read_bytes(), enc) == pytest.approx(expected)
    assert file_kbps(path, enc) > enc.payload_kbps


def test_write_is_atomic_and_overwrites(tmp_path):
    path = tmp_path / "a.sgc"
    path.write_bytes(b"old")
    write_sgc(path, small_encoded(), SOURCE)
    assert read_sgc(path)[0] == small_encoded()
    assert sorted(os.listdir(tmp_path)) == ["a.sgc"]  # no temporary file left


def test_write_into_missing_folder(tmp_path):
    with pytest.raises(MosappError) as info:
        write_sgc(tmp_path / "no" / "a.sgc", small_encoded(), SOURCE)
    one_sentence(info.value, "does not exist")


def test_read_missing_file(tmp_path):
    with pytest.raises(MosappError) as info:
        read_sgc(tmp_path / "gone.sgc")
    one_sentence(info.value, "gone.sgc", "does not exist")


# --------------------------------------------------------------------------- damage


GOOD = pack(small_encoded(), SOURCE)


def test_empty():
    with pytest.raises(BitstreamError) as info:
        unpack(b"", "e.sgc")
    one_sentence(info.value, "e.sgc", "empty")


@pytest.mark.parametrize("data", [b"RIFF\x24\x00\x00\x00WAVEfmt ", b"x", b"SGC\x00rest", GOOD[::-1]],
                         ids=["wav", "one-byte", "near-magic", "reversed"])
def test_wrong_magic(data):
    with pytest.raises(BitstreamError) as info:
        unpack(data, "w.sgc")
    one_sentence(info.value, "w.sgc", "not an .sgc file")


def test_every_truncation_is_refused():
    for n in range(1, len(GOOD)):
        with pytest.raises(BitstreamError) as info:
            unpack(GOOD[:n], "t.sgc")
        msg = one_sentence(info.value, "t.sgc", "truncated")
        assert f"found {n}." in msg or f"after {n} bytes" in msg, msg
    with pytest.raises(BitstreamError) as info:
        unpack(GOOD[:-1], "t.sgc")
    one_sentence(info.value, f"expected {len(GOOD)} bytes, found {len(GOOD) - 1}")


def test_trailing_bytes_are_damage():
    with pytest.raises(BitstreamError) as info:
        unpack(GOOD + b"\x00\x00", "x.sgc")
    one_sentence(info.value, "x.sgc", "damaged", "2 bytes too many")


def test_every_single_bit_flip_is_refused():
    """Every bit of a whole file, one at a time: always a BitstreamError sentence, never a crash."""
    _, pos = varint.decode(GOOD, 6, max_bytes=9)
    _, header_start = varint.decode(GOOD, pos, max_bytes=9)
    buf = bytearray(GOOD)
    messages = []
    for byte in range(len(GOOD)):
        for bit in range(8):
            buf[byte] ^= 1 << bit
            with pytest.raises(BitstreamError) as info:
                unpack(bytes(buf), "f.sgc")
            buf[byte] ^= 1 << bit
            msg = one_sentence(info.value, "f.sgc")
            if byte < 4:
                assert "not an .sgc file" in msg
            elif 4 <= byte < 6 or byte >= header_start:
                # version, header, payload and the CRC itself: the checksum catches it
                assert "checksum does not match" in msg, (byte, bit, msg)
            messages.append(msg)
    for kind in ("not an .sgc file", "checksum does not match", "truncated"):
        assert any(kind in m for m in messages), kind


def test_newer_container_version():
    body = bytearray(GOOD[:-4])
    body[4:6] = struct.pack("<H", CONTAINER_VERSION + 1)
    with pytest.raises(BitstreamError) as info:
        unpack(reseal(bytes(body)), "new.sgc")
    one_sentence(info.value, "new.sgc", f"container version {CONTAINER_VERSION + 1}", "update mosapp")


def test_version_zero():
    body = bytearray(GOOD[:-4])
    body[4:6] = b"\x00\x00"
    with pytest.raises(BitstreamError) as info:
        unpack(reseal(bytes(body)), "z.sgc")
    one_sentence(info.value, "z.sgc", "version 0")


def _valid_header() -> dict:
    return header_of(GOOD)


MALFORMED = {
    "not-utf8": b"\xff\xfe{}",
    "not-json": b"{codec: 1}",
    "array": b"[1, 2]",
    "no-codec": json.dumps({k: v for k, v in _valid_header().items() if k != "c"}).encode(),
    "bad-rate": json.dumps({**_valid_header(), "sr": "44100"}).encode(),
    "negative-n": json.dumps({**_valid_header(), "n": -1}).encode(),
    "bool-channels": json.dumps({**_valid_header(), "ch": True}).encode(),
    "params-list": json.dumps({**_valid_header(), "p": [1]}).encode(),
    "no-source": json.dumps({k: v for k, v in _valid_header().items() if k != "s"}).encode(),
    "short-source": json.dumps({**_valid_header(), "s": [48000, 10]}).encode(),
    "source-rate-zero": json.dumps({**_valid_header(), "s": [0, 10, 1, "PCM_16", "WAV"]}).encode(),
    "subtype-number": json.dumps({**_valid_header(), "s": [48000, 10, 1, 16, "WAV"]}).encode(),
    "channels-mismatch": json.dumps({**_valid_header(), "ch": 2, "s": [48000, 10, 1, "PCM_16", "WAV"]}).encode(),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_header(case):
    with pytest.raises(BitstreamError) as info:
        unpack(with_header(MALFORMED[case]), "m.sgc")
    one_sentence(info.value, "m.sgc", "is not a valid mosapp file")


def test_overlong_length_field():
    data = reseal(MAGIC + b"\x01\x00" + b"\xff" * 12)
    with pytest.raises(BitstreamError) as info:
        unpack(data, "l.sgc")
    one_sentence(info.value, "l.sgc", "damaged")


def test_read_sgc_names_the_path(tmp_path):
    path = tmp_path / "cut.sgc"
    path.write_bytes(GOOD[:50])
    with pytest.raises(BitstreamError) as info:
        read_sgc(path)
    one_sentence(info.value, str(path), "truncated", f"expected {len(GOOD)} bytes, found 50")


# --------------------------------------------------------------------------- forged headers (CRC recomputed)
#
# A header rewritten by a tool that knows the framing and recomputes the CRC-32: every value
# is checked against its declared range before use, and the binding digest catches an edit
# that stays in range.


FORGED = {
    # case: (edit, words the sentence holds)
    "sample-rate-1": (set_at(["sr"], 1), ["sample rate", "1 Hz", "44100"]),
    "sample-rate-huge": (set_at(["sr"], 10**9), ["sample rate"]),
    "samples-huge": (set_at(["n"], 2**44), ["coded sample count", "17592186044416"]),
    "samples-off-by-one": (set_at(["n"], 88_201), ["88201 coded samples", "gives 88200"]),
    "source-frames-huge": (set_at(["s", 1], 50 * 2**30), ["source length"]),
    "source-rate-1e9": (set_at(["s", 0], 10**9), ["source sample rate", "1000000000"]),
    "source-rate-1": (set_at(["s", 0], 1), ["source sample rate"]),
    "source-channels-9": (set_at(["s", 2], 9), ["source channel count"]),
    "channels-3": (set_at(["ch"], 3), ["coded channel count"]),
    "deep-json": (set_at(["p", "deep"], json.loads("[" * 500 + "]" * 500)), ["nests", "levels"]),
    "codec-name-garbage": (set_at(["c"], "../../etc"), ["no codec"]),
    "subtype-huge": (set_at(["s", 3], "X" * 5000), ["source subtype"]),
    "codec-renamed": (set_at(["c"], "sgc-6"), ["binding digest", "edited"]),
    "top-db-in-range": (set_at(["p", "top_db"], [-10.0]), ["binding digest"]),
    "version-string": (set_at(["m"], "9.9.9"), ["binding digest"]),
    "model-added": (set_at(["mi"], "0123456789abcdef"), ["binding digest"]),
    "binding-removed": (lambda h: h.pop("b"), ["binding digest"]),
}


@pytest.mark.parametrize("case", list(FORGED))
def test_forged_header_values_are_refused(case):
    edit, words = FORGED[case]
    with pytest.raises(BitstreamError) as info:
        unpack(forge(GOOD, edit), "f.sgc")
    one_sentence(info.value, "f.sgc is not a valid mosapp file: ", *words)


def test_infinity_and_nan_tokens_are_refused():
    for token in ("Infinity", "-Infinity", "NaN", "1e999"):
        text = json.dumps(header_of(GOOD)).replace("-3.25", token)
        with pytest.raises(BitstreamError) as info:
            unpack(with_header(text.encode(), payload=small_encoded().payload), "i.sgc")
        one_sentence(info.value, "i.sgc is not a valid mosapp file", "not UTF-8 JSON")


def test_nesting_deeper_than_the_interpreter_allows_is_one_sentence():
    # json.loads would raise RecursionError here; the depth is counted before parsing.
    deep = b'{"p":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    with pytest.raises(BitstreamError) as info:
        unpack(with_header(deep), "d.sgc")
    one_sentence(info.value, "d.sgc is not a valid mosapp file", "30001 levels")


def test_an_oversized_header_is_refused():
    header = header_of(GOOD)
    header["p"]["pad"] = "x" * 70_000
    with pytest.raises(BitstreamError) as info:
        unpack(with_header(json.dumps(header).encode()), "h.sgc")
    one_sentence(info.value, "h.sgc is not a valid mosapp file", "65536")


def test_pack_refuses_what_unpack_would_refuse():
    with pytest.raises(ValueError, match="coded samples"):
        pack(small_encoded(n_samples=1234), SOURCE)
    with pytest.raises(ValueError, match="sample rate"):
        pack(small_encoded(sample_rate=8000), SOURCE)


def test_container_version_1_is_refused_with_how_to_convert_it():
    with pytest.raises(BitstreamError) as info:
        unpack(version_1(GOOD), "old.sgc")
    one_sentence(info.value, "old.sgc is a container version 1 file", "mosapp convert old.sgc NEW.sgc")


def test_a_version_1_header_edit_with_the_crc_recomputed_is_refused():
    # The bypass that was found: rewrite as version 1, edit an in-range value, recompute the CRC only.
    forged = forge(version_1(GOOD), set_at(["p", "top_db"], [20.0]))
    with pytest.raises(BitstreamError, match="container version 1"):
        unpack(forged, "f.sgc")


def test_converting_a_trusted_version_1_file_gives_the_same_stream_bound():
    from mosapp.codecs.container import upgrade_version_1

    upgraded = upgrade_version_1(version_1(GOOD), "old.sgc")
    assert upgraded[4:6] == b"\x02\x00" and "b" in header_of(upgraded)
    enc, src = unpack(upgraded, "new.sgc")
    assert enc == small_encoded() and enc.model is None and src.frames == SOURCE.frames
    assert upgrade_version_1(GOOD) == GOOD  # a current file is left as it is


def test_converting_checks_a_version_1_file_s_values():
    from mosapp.codecs.container import upgrade_version_1

    with pytest.raises(BitstreamError) as info:
        upgrade_version_1(forge(version_1(GOOD), set_at(["sr"], 1)), "old.sgc")
    one_sentence(info.value, "old.sgc is not a valid mosapp file", "sample rate")


def rebind(data: bytes, edit) -> bytes:
    """:func:`forge`, then the binding digest recomputed too: a forger who knows the whole format."""
    def both(header):
        edit(header)
        header["b"] = container.binding_digest(header, _payload(data))
    return forge(data, both)


def _payload(data: bytes) -> bytes:
    _, pos = varint.decode(data, 6, max_bytes=9)
    payload_len, _ = varint.decode(data, pos, max_bytes=9)
    return data[len(data) - 4 - payload_len: len(data) - 4]


@pytest.mark.parametrize("path,value,words", [
    (["c"], "pghi-only\n", ["names no codec"]),
    (["s", 3], "PCM_24\n", ["source subtype"]),
    (["s", 4], "WAV\n", ["source format"]),
    (["mi"], "0123456789abcdef\n", ["model identifier"]),
])
def test_a_trailing_newline_does_not_pass_a_name_pattern(path, value, words):
    with pytest.raises(BitstreamError) as info:
        unpack(rebind(GOOD, set_at(path, value)), "n.sgc")
    one_sentence(info.value, "n.sgc is not a valid mosapp file", *words)


def test_duplicate_header_keys_are_refused():
    header = header_of(GOOD)
    text = json.dumps(header, separators=(",", ":"))
    doubled = text[:-1] + ',"c":"opus-12"}'  # a second "c": which one counts would depend on the parser
    with pytest.raises(BitstreamError) as info:
        unpack(with_header(doubled.encode(), payload=_payload(GOOD)), "d.sgc")
    one_sentence(info.value, "d.sgc is not a valid mosapp file", 'the key "c" appears twice')


def test_read_sgc_refuses_a_device_and_a_fifo_without_reading(tmp_path):
    if os.path.exists("/dev/zero"):
        with pytest.raises(MosappError) as info:
            read_sgc("/dev/zero")
        one_sentence(info.value, "/dev/zero is a device; mosapp reads regular files only")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "in.sgc"
        os.mkfifo(fifo)
        with pytest.raises(MosappError) as info:
            read_sgc(fifo)  # opening a FIFO for reading would block until a writer comes
        one_sentence(info.value, "is a named pipe (FIFO); mosapp reads regular files only")


def test_read_sgc_reads_only_the_magic_of_a_large_file_that_is_not_sgc(tmp_path):
    big = tmp_path / "six-hours.wav"
    with open(big, "wb") as fh:
        fh.write(b"RIFF")
        fh.truncate(8 * 2**30)  # sparse: 8 GB that take no disk
    with pytest.raises(BitstreamError, match="is not an .sgc file"):
        read_sgc(big)


def test_read_sgc_refuses_a_file_larger_than_the_memory_ceiling(tmp_path, monkeypatch):
    from mosapp.core.errors import MemoryLimitError

    big = tmp_path / "big.sgc"
    with open(big, "wb") as fh:
        fh.write(GOOD[:6])
        fh.truncate(3 * 2**30)
    monkeypatch.setenv("MOSAPP_MAX_MEMORY", "2G")
    with pytest.raises(MemoryLimitError) as info:
        read_sgc(big)
    one_sentence(info.value, "big.sgc", "ceiling of 2.0 GB", "--max-memory")


def test_reading_a_missing_file_or_a_folder_says_so(tmp_path):
    with pytest.raises(MosappError) as info:
        read_sgc(tmp_path / "gone.sgc")
    assert not isinstance(info.value, BitstreamError)
    one_sentence(info.value, "gone.sgc does not exist")
    with pytest.raises(MosappError) as info:
        read_sgc(tmp_path)
    assert str(info.value) == f"{tmp_path} is a folder, not an .sgc file."
