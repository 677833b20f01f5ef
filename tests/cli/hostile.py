"""Hostile and huge inputs that cost little to make: what the memory-ceiling test runs every command on.

* a sparse 6-hour WAV (3.8 GB announced, a few kB on disk);
* 1-hour streams that pass every range check of their header and payload: stereo Opus (a
  10 s encode's packets repeated), pghi-only silence (its real tile table), the lowpass anchor
  restored to 96 kHz (zlib of silence), AVIF (a short encode's header told one hour);
* a zlib bomb: a pghi-only stream whose one tile inflates to 3 GB (3 MB of file).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from mosapp.codecs import get_codec
from mosapp.codecs.base import Encoded
from mosapp.codecs.classic.framing import pack_packets, unpack_packets
from mosapp.codecs.container import pack
from mosapp.core import dsp
from mosapp.core.audio import AudioInfo
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig, get_geometry

HOUR = 3600 * PIPELINE_SAMPLE_RATE


def sparse_wav(path: Path, hours: float = 6.0, rate: int = 44_100, channels: int = 2) -> Path:
    """A 16-bit WAV announcing ``hours`` of audio, its data a hole in the file (zeros, no disk)."""
    data = int(hours * 3600 * rate) * 2 * channels
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    with open(path, "wb") as fh:
        fh.write(b"RIFF" + struct.pack("<I", 4 + 8 + 16 + 8 + data) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
                 + b"data" + struct.pack("<I", data))
        fh.truncate(44 + data)
        # Two seconds of a tone three hours in (a study's excerpt there has sound to normalise).
        t = np.arange(2 * rate) / rate
        tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
        fh.seek(44 + int(3 * 3600 * rate) * 2 * channels)
        fh.write(np.repeat(tone[:, None], channels, axis=1).tobytes())
    return path


def _source(rate: int, channels: int, seconds: float) -> AudioInfo:
    return AudioInfo(path=None, sample_rate=rate, channels=channels, frames=int(seconds * rate), subtype="PCM_16",
                     format="WAV")


def opus_hour(path: Path, kbps: int = 12) -> Path:
    """One hour of stereo Opus: the packets of a 10 s stereo encode, repeated."""
    codec = get_codec(f"opus-{kbps}")
    rng = np.random.default_rng(0)
    t = np.arange(10 * PIPELINE_SAMPLE_RATE) / PIPELINE_SAMPLE_RATE
    x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)
    x += 0.01 * rng.standard_normal(x.shape).astype(np.float32)
    short = codec.encode(x, PipelineConfig(mono=False))
    packets = unpack_packets(short.payload, codec.name)
    body = packets[1:-4]  # steady-state packets (no priming, no flush), repeated
    rate, delay = int(short.params["rate"]), int(short.params["delay"])
    at_rate = (2 * HOUR * rate + PIPELINE_SAMPLE_RATE) // (2 * PIPELINE_SAMPLE_RATE)
    total = -(-(at_rate + delay) // codec.frame_samples(rate)) + 1  # what the hour needs, and one to flush
    need = total - 5
    stream = packets[:1] + (body * (need // len(body) + 1))[:need] + packets[-4:]
    encoded = Encoded(codec.name, short.codec_version, PIPELINE_SAMPLE_RATE, HOUR, 2, dict(short.params),
                      pack_packets(stream))
    path.write_bytes(pack(encoded, _source(PIPELINE_SAMPLE_RATE, 2, 3600)))
    return path


def pghi_only_hour(path: Path) -> Path:
    """One hour of pghi-only silence with its real tile table (every tile the same few kB of zlib)."""
    codec = get_codec("pghi-only")
    geometry = get_geometry("thesis")
    n_frames = geometry.frames_for(dsp.padded_length(HOUR, geometry))
    tile = codec.tile_frames
    parts = []
    blobs: dict[int, bytes] = {}
    for t0 in range(0, n_frames, tile):
        width = min(tile, n_frames - t0)
        if width not in blobs:
            blobs[width] = zlib.compress(bytes(2 * geometry.bins * width), 9)
        parts += [struct.pack("<I", len(blobs[width])), blobs[width]]
    encoded = Encoded("pghi-only", codec.version, PIPELINE_SAMPLE_RATE, HOUR, 1,
                      {"geometry": "thesis", "tile_frames": tile, "top_db": [-20.0], "dynamic_range_db": 100.0},
                      b"".join(parts), model=codec.model_id())
    path.write_bytes(pack(encoded, _source(PIPELINE_SAMPLE_RATE, 1, 3600)))
    return path


def zeros_zlib(size: int, chunk: int = 1 << 20) -> bytes:
    """A valid zlib stream of ``size`` zero bytes (a multiple of ``chunk``), made in milliseconds:
    after a full flush the deflate state is reset, so every further chunk of zeros compresses to
    the same bytes; the Adler-32 of n zeros is ``(n mod 65521) << 16 | 1``."""
    count = size // chunk
    assert count >= 3 and count * chunk == size
    deflate = zlib.compressobj(9)
    zeros = bytes(chunk)
    head = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    middle = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert middle == again
    tail = deflate.flush()
    return head + middle * (count - 1) + tail[:-4] + struct.pack(">I", ((size % 65521) << 16) | 1)


def zlib_bomb(path: Path, gigabytes: int = 3) -> Path:
    """A 2 s pghi-only stream whose one tile is zlib of ``gigabytes`` GB of zeros (about 1 MB a GB)."""
    codec = get_codec("pghi-only")
    n = 2 * PIPELINE_SAMPLE_RATE
    bomb = zeros_zlib(gigabytes << 30)
    geometry = get_geometry("thesis")
    n_frames = geometry.frames_for(dsp.padded_length(n, geometry))
    assert n_frames <= codec.tile_frames  # one tile
    encoded = Encoded("pghi-only", codec.version, PIPELINE_SAMPLE_RATE, n, 1,
                      {"geometry": "thesis", "tile_frames": codec.tile_frames, "top_db": [-20.0],
                       "dynamic_range_db": 100.0},
                      struct.pack("<I", len(bomb)) + bomb, model=codec.model_id())
    path.write_bytes(pack(encoded, _source(PIPELINE_SAMPLE_RATE, 1, 2)))
    return path


def lowpass_hour_96k(path: Path) -> Path:
    """One hour of the lowpass anchor (stereo silence, zlib of 16-bit PCM) restored to a 96 kHz source."""
    codec = get_codec("lowpass-3.5k")
    deflate = zlib.compressobj(9)
    chunk = bytes(2 * 2 * PIPELINE_SAMPLE_RATE * 60)  # a minute of stereo int16 zeros
    payload = b"".join(deflate.compress(chunk) for _ in range(60)) + deflate.flush()
    encoded = Encoded(codec.name, codec.version, PIPELINE_SAMPLE_RATE, HOUR, 2, {"scale": 1.0}, payload)
    path.write_bytes(pack(encoded, _source(96_000, 2, 3600)))
    return path


def avif_hour(path: Path, short: Path) -> Path:
    """An AVIF stream whose header says one hour (the short file ``short``'s payload): every header
    field in range, the payload's tile table short of what the hour needs."""
    from mosapp.codecs.container import read_sgc

    encoded, _ = read_sgc(short)
    long = Encoded(encoded.codec, encoded.codec_version, PIPELINE_SAMPLE_RATE, HOUR, encoded.channels,
                   dict(encoded.params), encoded.payload, model=encoded.model)
    path.write_bytes(pack(long, _source(PIPELINE_SAMPLE_RATE, encoded.channels, 3600)))
    return path


__all__ = ["HOUR", "avif_hour", "lowpass_hour_96k", "opus_hour", "pghi_only_hour", "sparse_wav", "zlib_bomb"]
