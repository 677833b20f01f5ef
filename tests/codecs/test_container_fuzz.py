"""Fuzzing real files of every codec family in both container versions (hypothesis, derandomized).

Each example takes a valid file (tests/fixtures/sgc: one per family and more), writes it as
container version 2 or 1, edits it — a header value, a bit anywhere, a key doubled, a name
given a trailing newline — and recomputes the CRC-32 (and, in version 1, there is no other
check to recompute). What must hold: ``mosapp decode`` refuses it in one sentence (exit 2,
nothing written), or decodes it to exactly the audio of the unmodified file.

A re-serialised header (keys reordered, spaces added: the same JSON) must decode, to exactly
the same audio, in every family. A forger who also recomputes the binding digest writes a
valid file by definition (nothing secret binds a header to its payload); for those the test
asserts one sentence or a clean decode (``test_hostile_headers`` in tests/test_fuzz.py too).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosapp.cli.main import main
from mosapp.codecs import container, get_codec
from mosapp.core import varint
from tests.helpers import require_codec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sgc"
FAST = ["--phase", "pghi", "--device", "cpu"]
#: One file of each codec family (and the other operating points, for the header edits).
FAMILIES = ["sgc-12", "sgc-thesis-12", "pghi-only", "pghi-only-two-band", "avif-12", "opus-12", "mp3-16", "aac-16",
            "lowpass-3.5k"]
FILES = sorted(p.stem for p in FIXTURES.glob("*.sgc"))
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=250,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _available(name: str) -> bool:
    return get_codec(name).availability().ok


@pytest.mark.parametrize("name", FILES)
def test_every_fixture_codec_runs_here(name):
    """The fuzz below draws from the fixtures whose codec runs; under CI that must be all of them."""
    require_codec(name)


def split(data: bytes) -> tuple[int, bytes, bytes]:
    (version,) = struct.unpack_from("<H", data, 4)
    header_len, pos = varint.decode(data, 6, max_bytes=9)
    payload_len, start = varint.decode(data, pos, max_bytes=9)
    return version, data[start:start + header_len], data[start + header_len: start + header_len + payload_len]


def frame(version: int, header: bytes, payload: bytes) -> bytes:
    body = (container.MAGIC + struct.pack("<H", version) + varint.encode(len(header)) + varint.encode(len(payload))
            + header + payload)
    return body + struct.pack("<I", zlib.crc32(body))


def as_version(data: bytes, version: int) -> bytes:
    """The file as container ``version`` writes it (version 1: no ``b``, no ``mi``), CRC recomputed."""
    _, header, payload = split(data)
    if version == 2:
        return data
    fields = json.loads(header)
    fields.pop("b", None)
    fields.pop("mi", None)
    return frame(1, json.dumps(fields, separators=(",", ":")).encode(), payload)


def decode(path: Path, out: Path, capsys) -> tuple[int, str]:
    rc = main(["decode", str(path), str(out), *FAST])
    return rc, capsys.readouterr().err


def assert_one_sentence(rc: int, err: str, what) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1, (what, rc, err)
    assert lines[0].startswith("mosapp: error: ") and lines[0].endswith("."), (what, lines[0])


_reference: dict[str, object] = {}


def reference_audio(name: str, tmp: Path, capsys):
    """The unmodified file's decoded audio (decoded here, once per file)."""
    if name not in _reference:
        out = tmp / f"{name}-reference.wav"
        rc, err = decode(FIXTURES / f"{name}.sgc", out, capsys)
        assert rc == 0, err
        _reference[name] = sf.read(str(out), always_2d=True)[0]
    return _reference[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_the_same_header_reserialised_decodes_to_the_same_audio_and_version_1_is_refused(name, tmp_path, capsys):
    require_codec(name)
    good = (FIXTURES / f"{name}.sgc").read_bytes()
    version, header, payload = split(good)
    fields = json.loads(header)
    spaced = json.dumps(dict(reversed(list(fields.items()))), indent=1).encode()  # same JSON, other bytes
    same = tmp_path / "same.sgc"
    same.write_bytes(frame(version, spaced, payload))
    rc, err = decode(same, tmp_path / "same.wav", capsys)
    assert rc == 0, err
    decoded = sf.read(str(tmp_path / "same.wav"), always_2d=True)[0]
    assert (decoded == reference_audio(name, tmp_path, capsys)).all()
    old = tmp_path / "old.sgc"
    old.write_bytes(as_version(good, 1))
    rc, err = decode(old, tmp_path / "old.wav", capsys)
    assert_one_sentence(rc, err, name)
    assert "container version 1" in err and not (tmp_path / "old.wav").exists()


VALUES = [0, 1, -1, 2, 12, 44_100, 48_000, 96_000, 2**31, 10**12, 1e300, -160.0, 0.5, 100.0, 3600 * 44_100, "12",
          "thesis", "", "sgc-6", "sgc-24", "opus-6", "pghi-only", "pghi-only\n", "0123456789abcdef", None, True, [],
          {}, [1, 2], [0.5, 0.5], [20.0], [-3.0]]


def _paths(value, prefix=()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


def _set(header: dict, path: tuple, value) -> None:
    target = header
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value


@settings(FUZZ)
@given(file_index=st.integers(min_value=0), version=st.sampled_from([1, 2]),
       kind=st.sampled_from(["value", "value", "bit", "duplicate", "newline"]),
       where=st.integers(min_value=0), value=st.sampled_from(VALUES), rebind=st.booleans())
def test_edited_files_of_every_family_are_refused_or_decode_unchanged(tmp_path_factory, capsys, file_index, version,
                                                                       kind, where, value, rebind):
    names = [n for n in FILES if _available(n)]
    name = names[file_index % len(names)]
    data = as_version((FIXTURES / f"{name}.sgc").read_bytes(), version)
    _, header, payload = split(data)
    fields = json.loads(header)
    if kind == "value":
        paths = _paths(fields)
        _set(fields, paths[where % len(paths)], value)
    elif kind == "newline":
        names_at = [p for p in _paths(fields) if isinstance(_get(fields, p), str)]
        path = names_at[where % len(names_at)]
        _set(fields, path, _get(fields, path) + "\n")
    if rebind and version == 2:
        fields["b"] = container.binding_digest(fields, payload)  # a forger who knows the whole format
    text = json.dumps(fields, separators=(",", ":")).encode()
    if kind == "duplicate":
        key = sorted(fields)[where % len(fields)]
        text = text[:-1] + b',"' + key.encode() + b'":' + json.dumps(fields[key]).encode() + b"}"
    body = bytearray(frame(version, text, payload)[:-4])
    if kind == "bit":
        body[where % len(body)] ^= 1 << (where // len(body)) % 8
    forged = bytes(body) + struct.pack("<I", zlib.crc32(body))  # the CRC-32 recomputed
    folder = tmp_path_factory.mktemp("forged")
    path, out = folder / "forged.sgc", folder / "out.wav"
    path.write_bytes(forged)
    rc, err = decode(path, out, capsys)
    what = (name, version, kind, where, value, rebind)
    assert "Traceback" not in err, (what, err)
    if rc != 0:
        assert_one_sentence(rc, err, what)
        assert sorted(p.name for p in folder.iterdir()) == ["forged.sgc"], what  # nothing written
        return
    assert version == 2, what  # a version 1 file is never decoded
    if rebind:
        return  # a valid file its forger wrote: decoding it is all that can be asked
    decoded = sf.read(str(out), always_2d=True)[0]
    reference = reference_audio(name, folder, capsys)
    assert decoded.shape == reference.shape and (decoded == reference).all(), f"exit 0 with changed audio: {what}"


def _get(header: dict, path: tuple):
    target = header
    for k in path:
        target = target[k]
    return target
