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

import hashlib
import json
import math
import os
import re
import struct
import zlib
from typing import Any, BinaryIO, NoReturn

from mosapp.codecs.base import MODEL_ID_HEX, Encoded
from mosapp.core import memory, varint
from mosapp.core.audio import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, AudioInfo
from mosapp.core.config import PIPELINE_SAMPLE_RATE
from mosapp.core.errors import BitstreamError, InvalidStreamError, MosappError
from mosapp.core.files import atomic_write, existing_file
from mosapp.core.version import __version__

#: The first four bytes of every ``.sgc`` file. 0x1A (Ctrl-Z) stops a terminal ``type``.
MAGIC = b"SGC\x1a"
#: The container format version this mosapp writes and the only one it decodes. Version 2 added
#: the binding digest (``b``) and the model identifier (``mi``). A version 1 file's header is
#: bound to its payload by nothing but a CRC-32 anyone can recompute, so it is refused with a
#: sentence naming ``mosapp convert``, which rewrites a file one trusts as version 2
#: (:func:`upgrade_version_1`): one integrity rule for every file decoded.
CONTAINER_VERSION = 2
#: The version mosapp 0.1.0 wrote: read only by :func:`upgrade_version_1`.
LEGACY_VERSION = 1
#: The file extension.
SUFFIX = ".sgc"

#: Header keys (JSON object), short because every byte is paid for:
#: codec name, codec payload version, coded sample rate, coded samples per channel,
#: coded channels, codec params, source file facts, mosapp version.
#: Version 2 adds ``mi`` (model identifier, codecs with trained weights) and ``b`` (binding digest).
HEADER_KEYS = ("c", "cv", "sr", "n", "ch", "p", "s", "m", "mi", "b")
MODEL_KEY = "mi"
BINDING_KEY = "b"

#: Coded sample rates a header may give: every codec codes at the pipeline rate.
ACCEPTED_CODED_RATES = (PIPELINE_SAMPLE_RATE,)
#: The longest stream (seconds) mosapp writes or decodes: decoding keeps a clip's image in
#: memory (about 0.7 MB a second a channel), so this bounds what a header can make it allocate.
MAX_STREAM_SECONDS = 3600
#: Header bytes at most, and JSON nesting at most (the codecs' params nest 2 levels).
MAX_HEADER_BYTES = 65_536
MAX_JSON_DEPTH = 8
# Matched with fullmatch: "$" would let a trailing newline through.
_CODEC_NAME = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}")
_FORMAT_NAME = re.compile(r"[A-Za-z0-9_ -]{1,32}")
_MODEL_ID = re.compile(rf"[0-9a-f]{{{MODEL_ID_HEX}}}")

_CRC_BYTES = 4
#: A ULEB128 longer than this (63 bits) is damage, not a length.
_MAX_VARINT_BYTES = 9


def _mosapp_version() -> str:
    return __version__


def _header_dict(encoded: Encoded, source: AudioInfo) -> dict[str, Any]:
    header = {
        "c": encoded.codec,
        "cv": int(encoded.codec_version),
        "sr": int(encoded.sample_rate),
        "n": int(encoded.n_samples),
        "ch": int(encoded.channels),
        "p": encoded.params,
        "s": [int(source.sample_rate), int(source.frames), int(source.channels), source.subtype, source.format],
        "m": _mosapp_version(),
    }
    if encoded.model is not None:
        header[MODEL_KEY] = encoded.model
    header[BINDING_KEY] = binding_digest(header, bytes(encoded.payload))
    return header


def pack(encoded: Encoded, source: AudioInfo) -> bytes:
    """The ``.sgc`` bytes of ``encoded``, with the facts of the ``source`` file it was read from.

    Raises:
        ValueError: ``encoded.params`` is not JSON-serialisable or a field is out of range,
            so :func:`unpack` would refuse the file (a programming error in the codec).
    """
    try:
        fields = _header_dict(encoded, source)
        header = json.dumps(fields, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the {encoded.codec} header cannot be stored as JSON: {exc}") from None
    payload = bytes(encoded.payload)
    # Never write what the reader refuses.
    try:
        if len(header) > MAX_HEADER_BYTES or _depth(header) > MAX_JSON_DEPTH:
            raise ValueError(f"the header is {len(header)} bytes or nests too deep")
        check_header(json.loads(header), payload, f"the {encoded.codec} stream", bound=True)
    except (ValueError, BitstreamError) as exc:
        raise ValueError(f"the {encoded.codec} stream cannot be written: {exc}") from None
    body = b"".join([MAGIC, struct.pack("<H", CONTAINER_VERSION), varint.encode(len(header)), varint.encode(len(payload)),
                     header, payload])
    return body + struct.pack("<I", zlib.crc32(body))


def _invalid(name: str, what: str) -> BitstreamError:
    return InvalidStreamError(f"{name} is not a valid mosapp file: {what}.")


def _depth(text: bytes) -> int:
    """Deepest nesting of JSON arrays/objects in ``text`` (brackets inside strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _no_constant(token: str) -> NoReturn:
    raise ValueError(f"{token} is not a number JSON allows")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(f"{token} is too large a number")
    return value


def binding_digest(header: dict[str, Any], payload: bytes) -> str:
    """The digest that binds a header to its payload: BLAKE2b-64 over the canonical JSON of
    every header key but ``b`` (sorted keys, ASCII), a zero byte, and the payload."""
    canonical = json.dumps({k: v for k, v in header.items() if k != BINDING_KEY}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")
    digest = hashlib.blake2b(digest_size=8)
    digest.update(canonical)
    digest.update(b"\0")
    digest.update(payload)
    return digest.hexdigest()


def _int(value: Any, name: str, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(name, f"{what} in its header is {_shown(value)}, not a whole number")
    if not lo <= value <= hi:
        raise _invalid(name, f"{what} in its header is {value}, outside {lo} to {hi}")
    return value


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, float) or math.isfinite(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def target_frames(n: int, from_rate: int, to_rate: int) -> int:
    """round(n * to_rate / from_rate), halves up: the length :func:`mosapp.core.audio.resample` gives."""
    return (2 * n * to_rate + from_rate) // (2 * from_rate)


def check_header(header: Any, payload: bytes, name: str, *, bound: bool) -> tuple[Encoded, AudioInfo]:
    """Validate a parsed header against the container's declared ranges (see docs/bitstream.md).

    Args:
        header: the parsed JSON.
        payload: the payload bytes (for the binding digest).
        name: how messages call the data.
        bound: require and check the binding digest ``b`` (container version 2 and later).

    Raises:
        InvalidStreamError: one sentence, "<name> is not a valid mosapp file: …".
    """
    if not isinstance(header, dict):
        raise _invalid(name, "its header is not a JSON object")
    codec = header.get("c")
    if not isinstance(codec, str) or not _CODEC_NAME.fullmatch(codec):
        raise _invalid(name, f"its header names no codec (c is {_shown(codec)})")
    codec_version = _int(header.get("cv"), name, "the codec version", 0, 65535)
    sample_rate = header.get("sr")
    if sample_rate not in ACCEPTED_CODED_RATES or isinstance(sample_rate, bool):
        raise _invalid(name, f"the coded sample rate in its header is {_shown(sample_rate)} Hz; mosapp codes at "
                             f"{' or '.join(map(str, ACCEPTED_CODED_RATES))} Hz")
    n_samples = _int(header.get("n"), name, "the coded sample count", 0, MAX_STREAM_SECONDS * sample_rate)
    channels = _int(header.get("ch"), name, "the coded channel count", 1, MAX_CHANNELS)
    params = header.get("p", {})
    if not isinstance(params, dict):
        raise _invalid(name, "the codec parameters in its header are not a JSON object")
    src = header.get("s")
    if not isinstance(src, list) or len(src) != 5:
        raise _invalid(name, "the source file facts in its header are missing or incomplete")
    src_rate = _int(src[0], name, "the source sample rate", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
    src_frames = _int(src[1], name, "the source length", 0, MAX_STREAM_SECONDS * MAX_SAMPLE_RATE)
    src_channels = _int(src[2], name, "the source channel count", 1, MAX_CHANNELS)
    subtype, fmt = src[3], src[4]
    for value, what in ((subtype, "the source subtype"), (fmt, "the source format")):
        if value is not None and (not isinstance(value, str) or not _FORMAT_NAME.fullmatch(value)):
            raise _invalid(name, f"{what} in its header is {_shown(value)}, not a sound file format name")
    if channels != 1 and channels != src_channels:
        raise _invalid(name, f"its {channels} coded channels cannot be restored to {src_channels}")
    expected = target_frames(src_frames, src_rate, sample_rate)
    if n_samples != expected:
        raise _invalid(name, f"its header announces {n_samples} coded samples, but a {src_rate} Hz source of "
                             f"{src_frames} frames gives {expected}")
    model = header.get(MODEL_KEY)
    if model is not None and (not isinstance(model, str) or not _MODEL_ID.fullmatch(model)):
        raise _invalid(name, f"the model identifier in its header is {_shown(model)}, not {MODEL_ID_HEX} hex digits")
    written_by = header.get("m")
    if written_by is not None and (not isinstance(written_by, str) or len(written_by) > 64):
        raise _invalid(name, "the mosapp version in its header is not a short string")
    if bound:
        stored = header.get(BINDING_KEY)
        if not isinstance(stored, str) or stored != binding_digest(header, payload):
            raise _invalid(name, "its header does not match its payload (the binding digest differs), so the header "
                                 "was edited after the file was written")
    encoded = Encoded(codec=codec, codec_version=codec_version, sample_rate=sample_rate, n_samples=n_samples,
                      channels=channels, params=params, payload=payload, model=model)
    source = AudioInfo(path=None, sample_rate=src_rate, channels=src_channels, frames=src_frames, subtype=subtype,
                       format=fmt)
    return encoded, source


def unpack(data: bytes, name: str = "the .sgc data", *, legacy: bool = False) -> tuple[Encoded, AudioInfo]:
    """Parse ``.sgc`` bytes into the codec's :class:`Encoded` and the source file's :class:`AudioInfo`.

    Args:
        data: the whole file.
        name: how messages call the data (the path, for :func:`read_sgc`).
        legacy: also read container version 1 (for :func:`upgrade_version_1` only).

    Returns:
        ``(encoded, source)``; ``source.path`` is None.

    Raises:
        BitstreamError: not an ``.sgc`` file, truncated, damaged (checksum), written by a
            newer mosapp, or container version 1 (see :data:`CONTAINER_VERSION`); one sentence
            naming ``name``.
        InvalidStreamError: (a BitstreamError) a header value out of its declared range,
            inconsistent with the others, or edited after writing (binding digest).
    """
    data = bytes(data)
    found = len(data)
    if found == 0:
        raise BitstreamError(f"{name} is empty (0 bytes), not an .sgc file.")
    if data[: len(MAGIC)] != MAGIC[: min(found, len(MAGIC))]:
        raise BitstreamError(f"{name} is not an .sgc file (it does not start with the .sgc magic bytes).")
    try:
        if found < len(MAGIC) + 2:
            raise varint.VarintTruncated(len(MAGIC) + 2)
        (version,) = struct.unpack_from("<H", data, len(MAGIC))
        header_len, pos = varint.decode(data, len(MAGIC) + 2, max_bytes=_MAX_VARINT_BYTES)
        payload_len, pos = varint.decode(data, pos, max_bytes=_MAX_VARINT_BYTES)
    except varint.VarintTruncated as exc:
        raise BitstreamError(
            f"{name} is truncated: it ends after {found} bytes, inside the fixed part of the file "
            f"(at least {exc.need} bytes expected)."
        ) from None
    except varint.VarintTooLong:
        raise BitstreamError(f"{name} is damaged: its length fields are not valid.") from None
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
    if version < CONTAINER_VERSION and not legacy:
        raise BitstreamError(
            f"{name} is a container version {version} file (mosapp 0.1.0), whose header nothing binds to its payload, "
            f"so an edited one cannot be told from the original; if you trust where it came from, convert it once "
            f"with `mosapp convert {name} NEW.sgc` and decode that."
        )
    if header_len > MAX_HEADER_BYTES:
        raise _invalid(name, f"its header is {header_len} bytes, more than the {MAX_HEADER_BYTES} a header may have")
    text = data[header_start:payload_start]
    depth = _depth(text)
    if depth > MAX_JSON_DEPTH:
        raise _invalid(name, f"its header nests {depth} levels deep, more than the {MAX_JSON_DEPTH} allowed")
    try:
        header = json.loads(text.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float,
                            object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _invalid(name, f"its header is not UTF-8 JSON ({_first_line(exc)})") from None
    return check_header(header, data[payload_start:crc_start], name, bound=version >= 2)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: a second ``"c"`` (which one a reader takes
    differs from parser to parser) is an edit, not a header mosapp wrote."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f'the key "{key[:20]}" appears twice')
        out[key] = value
    return out


def upgrade_version_1(data: bytes, name: str = "the .sgc data") -> bytes:
    """The bytes of a container version 1 file rewritten as the current version: the same
    stream, its header now bound to its payload (``mosapp convert``). Only for files one
    trusts: what a version 1 header says cannot be checked against its payload.

    Raises:
        BitstreamError: not a valid version 1 (or later) file; a current file is returned as it is.
    """
    encoded, source = unpack(data, name, legacy=True)
    if bytes(data[len(MAGIC): len(MAGIC) + 2]) == struct.pack("<H", CONTAINER_VERSION):
        return bytes(data)
    try:
        return pack(encoded, source)
    except ValueError as exc:
        raise _invalid(name, str(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.rstrip(".")[:120]


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

    def write(fh: BinaryIO) -> None:
        fh.write(data)

    atomic_write(path, write, suffix=SUFFIX)
    return len(data)


def read_sgc(path: str | os.PathLike[str]) -> tuple[Encoded, AudioInfo]:
    """Read and check an ``.sgc`` file: see :func:`unpack`.

    Raises:
        MosappError: the file is missing or unreadable.
        BitstreamError: its content is not a valid ``.sgc`` file (see :func:`unpack`).
    """
    return unpack(read_sgc_bytes(path), os.fspath(path))


def read_sgc_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the ``.sgc`` file ``path``, read only once its first bytes are the magic and its
    size fits the memory ceiling (a 6-hour WAV or ``/dev/zero`` given as an .sgc file is never read whole).

    Raises:
        MosappError: missing, a folder, not a regular file (a FIFO, a device), unreadable.
        MemoryLimitError: larger than the memory ceiling allows.
        BitstreamError: not an .sgc file.
    """
    name = os.fspath(path)
    p = existing_file(name, "an .sgc file")
    try:
        with open(p, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(len(MAGIC))
            if head != MAGIC:
                unpack(head, name)  # says what is wrong: empty, not .sgc, truncated
            # The payload is sliced out of the bytes once more when the file is unpacked.
            memory.require(2 * size, f"Reading {name} ({memory.describe(size)})")
            return head + fh.read(size - len(head) + 1)  # one byte more: a file that grows is refused as damaged
    except OSError as exc:
        raise MosappError(f"{name} cannot be opened ({exc.strerror or exc}).") from None


def file_kbps(path_or_bytes: str | os.PathLike[str] | bytes, encoded: Encoded) -> float:
    """Bitrate of the whole ``.sgc`` file, kbit/s: 8 × file bytes / ``encoded.seconds`` / 1000."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        size = len(path_or_bytes)
    else:
        size = os.path.getsize(path_or_bytes)
    return 8.0 * size / max(encoded.seconds, 1e-9) / 1000.0


__all__ = ["CONTAINER_VERSION", "LEGACY_VERSION", "MAGIC", "MAX_STREAM_SECONDS", "SUFFIX", "binding_digest", "check_header",
           "file_kbps", "overhead_bytes", "pack", "read_sgc", "read_sgc_bytes", "unpack", "upgrade_version_1", "write_sgc"]
