"""Waveform baselines (Opus, MP3, AAC through PyAV/FFmpeg) and the MUSHRA low-pass anchors.

Families and names (``<kbps>`` is any integer or decimal in the family's range):

* ``opus-<kbps>``: libopus, hard CBR (``vbr=off``), 20 ms frames, ``application=audio``, at
  48 kHz (Opus's own rate; the input is resampled with soxr VHQ and back). 6-256 kbit/s:
  Opus's documented lower end, and FFmpeg's upper limit for one channel. A CBR packet is
  ``bit_rate * 20 ms / 8`` bytes rounded to the nearest (halves up), so a rate that is not
  a multiple of 0.4 kbit/s comes out up to 0.2 kbit/s off (``opus-11`` codes at 11.2).
  Below about 20 kbit/s libopus codes a stereo input as mono (its own choice, not ours).
* ``mp3-<kbps>``: libmp3lame CBR, at the sample rate LAME itself picks for that bitrate
  (:func:`lame_sample_rate`: 8 kHz at 8 kbit/s, 16 kHz at 16-24, 22.05 kHz at 32 for mono).
  Only the bitrates of the MPEG audio tables are codable as CBR, so only those are names:
  8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320.
* ``aac-<kbps>``: FFmpeg's native AAC-LC encoder (the only AAC encoder in stock FFmpeg; no
  HE-AAC), 8-256 kbit/s. It has no CBR mode and misses its target by a few %, so the target
  is calibrated: while the stream is more than 1 % off nominal the encoder runs again with
  a corrected target (3 runs at most; the closest is kept). It also has a floor, about
  15 kbit/s mono and 23 kbit/s stereo at 44.1 kHz whatever the target; below it the coded
  rate steps down (32, 24, 22.05, 16 … 8 kHz) until the encoder meets nominal, as LAME lowers
  its rate for low bitrates (:meth:`AacCodec._encode_stream`). Mono 16-32 kbit/s stays at
  44.1 kHz; stereo 16 kbit/s goes to 16 kHz.
* ``lowpass-3.5k``, ``lowpass-7k``: the ITU-R BS.1534 (MUSHRA) anchors, see
  :class:`LowpassAnchor`.

The nominal bitrate is the whole stream's, all channels together (as every encoder's
``bit_rate`` is). A stereo ``opus-12`` spends 12 kbit/s on both channels.

The family by concern: :mod:`.framing` (the payload's packet framing), :mod:`.common` (the
checks every waveform codec shares), :mod:`.av_io` (running FFmpeg's encoders and
decoders through PyAV), :mod:`.opus`, :mod:`.lame` (MP3 and LAME's tables), :mod:`.aac`
(the rate calibration) and :mod:`.anchors`. This module registers the families.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mosapp.codecs import register_family
from mosapp.codecs.base import Codec
from mosapp.codecs.classic.aac import (
    AAC_FLOOR_SKIP,
    AAC_FLOOR_TOLERANCE,
    AAC_MAX_RUNS,
    AAC_RATE_TOLERANCE,
    AAC_RATES,
    AAC_TARGET_LIMITS,
    AacCodec,
)
from mosapp.codecs.classic.anchors import ANCHORS, LowpassAnchor
from mosapp.codecs.classic.av_io import PyAvCodec
from mosapp.codecs.classic.common import MAX_SECONDS
from mosapp.codecs.classic.framing import pack_packets, unpack_packets
from mosapp.codecs.classic.lame import MPEG1_KBPS, MPEG2_KBPS, Mp3Codec, lame_sample_rate, mp3_codable
from mosapp.codecs.classic.opus import OpusCodec
from mosapp.core.errors import ConfigError

# -- the registry ----------------------------------------------------------------------------------

#: Names ``mosapp codecs`` lists. Opus below 6 kbit/s is outside its documented range; MP3
#: below 8 kbit/s does not exist; FFmpeg's AAC-LC sounds broken below 16 kbit/s at 44.1 kHz
#: (it has no HE-AAC), so the AAC list starts there.
ADVERTISED = {
    "opus": [6, 8, 12, 16, 24],
    "mp3": [8, 16, 24, 32],
    "aac": [16, 24, 32],
}

_NAME = re.compile(r"^(opus|mp3|aac)-(\d+(?:\.\d+)?)$")


def _waveform_factory(family: str) -> Callable[[str], Codec | None]:
    """The factory of one waveform family: name -> codec, None when the name is not its own.

    The returned factory raises ConfigError when the name is the family's but the bitrate
    cannot be coded (the message says which can).
    """

    def factory(name: str) -> Codec | None:
        match = _NAME.match(name)
        if match is None or match.group(1) != family:
            return None
        kbps = float(match.group(2))
        if family == "mp3":
            allowed = [k for k in sorted(set(MPEG1_KBPS) | set(MPEG2_KBPS)) if mp3_codable(k)]
            if kbps not in allowed:
                raise ConfigError(
                    f'"{name}" is not a bitrate MP3 can code as CBR at the rate LAME picks for it; '
                    f'use one of {", ".join(map(str, allowed))} kbit/s.'
                )
            return Mp3Codec(int(kbps))
        cls = OpusCodec if family == "opus" else AacCodec
        if not cls.min_kbps <= kbps <= cls.max_kbps:
            raise ConfigError(f'"{name}" is out of range; {family} bitrates go from {cls.min_kbps:g} to {cls.max_kbps:g} kbit/s.')
        return cls(kbps)

    return factory


def _advertised(family: str) -> Callable[[], list[str]]:
    """The names ``mosapp codecs`` lists for one waveform family."""
    return lambda: [f"{family}-{k}" for k in ADVERTISED[family]]


for _family in ADVERTISED:
    register_family(_family, _waveform_factory(_family), _advertised(_family))
register_family("lowpass", lambda name: LowpassAnchor(ANCHORS[name]) if name in ANCHORS else None, lambda: list(ANCHORS))


__all__ = ["AAC_FLOOR_SKIP", "AAC_FLOOR_TOLERANCE", "AAC_MAX_RUNS", "AAC_RATES", "AAC_RATE_TOLERANCE",
           "AAC_TARGET_LIMITS", "ADVERTISED", "ANCHORS", "MAX_SECONDS", "MPEG1_KBPS", "MPEG2_KBPS", "AacCodec",
           "LowpassAnchor", "Mp3Codec", "OpusCodec", "PyAvCodec", "lame_sample_rate", "pack_packets",
           "unpack_packets"]
