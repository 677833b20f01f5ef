"""``mp3-<kbps>``: libmp3lame CBR at the sample rate LAME itself picks for the bitrate.

LAME 3.100's own tables (the bitrates of the MPEG audio tables, ``optimum_bandwidth`` and
``optimum_samplefreq``) decide the coded rate (:func:`lame_sample_rate`) and which
bitrates are codable as CBR at it (:func:`mp3_codable`).
"""

from __future__ import annotations

from mosapp.codecs.classic.av_io import PyAvCodec
from mosapp.core.config import PIPELINE_SAMPLE_RATE

#: Bitrates (kbit/s) of the MPEG-1 Layer III table (32, 44.1, 48 kHz).
MPEG1_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
#: Bitrates (kbit/s) of the MPEG-2 / 2.5 Layer III table (8-24 kHz).
MPEG2_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
#: LAME's ``optimum_bandwidth`` table: (bitrate kbit/s, low-pass Hz) for CBR.
_LAME_LOWPASS = (
    (8, 2000), (16, 3700), (24, 3900), (32, 5500), (40, 7000), (48, 7500), (56, 10000),
    (64, 11000), (80, 13500), (96, 15100), (112, 15600), (128, 17000), (160, 17500),
    (192, 18600), (224, 19400), (256, 19700), (320, 20500),
)  # fmt: skip
#: LAME's ``optimum_samplefreq``: the highest low-pass each output rate is chosen for.
_LAME_RATE_FOR_LOWPASS = (
    (3970, 8000), (4510, 11025), (5420, 12000), (7230, 16000), (9970, 22050),
    (11220, 24000), (15250, 32000), (15960, 44100),
)  # fmt: skip
#: The MPEG audio sample rates, Hz.
_MPEG_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def lame_sample_rate(kbps: int, channels: int, input_rate: int = PIPELINE_SAMPLE_RATE) -> int:
    """The output rate LAME 3.100 picks for CBR at ``kbps`` when none is given.

    As ``lame_init_params``: the low-pass is ``optimum_bandwidth`` of the bitrate (the entry
    of :data:`_LAME_LOWPASS` nearest to it, ties upwards), times 1.5 for mono, capped at the
    input's Nyquist; ``optimum_samplefreq`` then takes the lowest MPEG rate whose threshold
    in :data:`_LAME_RATE_FOR_LOWPASS` the low-pass stays under (or, when the input's rate is
    lower than that, the MPEG rate at or just above the input's). FFmpeg's wrapper always
    hands LAME the context's rate, so this module resamples to the chosen rate itself.
    """
    table = [b for b, _ in _LAME_LOWPASS]
    idx = len(table) - 1
    for i in range(len(table) - 1):
        if table[i + 1] > kbps:
            idx = i if (table[i + 1] - kbps) > (kbps - table[i]) else i + 1
            break
    lowpass = float(_LAME_LOWPASS[idx][1])
    if channels == 1:
        lowpass *= 1.5
    lowpass = min(lowpass, input_rate / 2)
    suggested = max([r for r in _MPEG_RATES if r <= max(input_rate, 8000)] or [8000])
    suggested = min(suggested, 48000)
    for threshold, candidate in reversed(_LAME_RATE_FOR_LOWPASS):
        if int(lowpass) <= threshold:
            suggested = candidate
    if input_rate < suggested:  # never above the input: the MPEG rate just over it
        return min([r for r in _MPEG_RATES if r >= input_rate] or [48000])
    return suggested


def mp3_rate_ok(kbps: int, rate: int) -> bool:
    """Whether ``kbps`` is in the Layer III bitrate table of the MPEG version that has ``rate``."""
    return kbps in (MPEG1_KBPS if rate >= 32000 else MPEG2_KBPS)


def mp3_codable(kbps: int) -> bool:
    """Whether ``kbps`` is in the bitrate table at the rate LAME picks, for mono and stereo."""
    return all(mp3_rate_ok(kbps, lame_sample_rate(kbps, channels)) for channels in (1, 2))


class Mp3Codec(PyAvCodec):
    """LAME CBR at the sample rate LAME picks for the bitrate (:func:`lame_sample_rate`)."""

    family = "mp3"
    encoder = "libmp3lame"
    decoders = ("mp3float", "mp3")
    sample_format = "fltp"

    def __init__(self, kbps: float) -> None:
        super().__init__(kbps)
        mono, stereo = lame_sample_rate(int(kbps), 1), lame_sample_rate(int(kbps), 2)
        at = f"{mono / 1000:g} kHz" + ("" if mono == stereo else f" mono, {stereo / 1000:g} kHz stereo")
        self.description = f"MP3 (LAME) CBR {kbps:g} kbit/s, coded at {at}"

    #: LAME's 576 + 529 samples, with room for other builds.
    max_delay = 4608

    def coded_rate(self, channels: int) -> int:
        return lame_sample_rate(int(self.nominal_kbps), channels)

    def frame_samples(self, rate: int) -> int:
        return 1152 if rate >= 32000 else 576  # MPEG-1 / MPEG-2 Layer III


__all__ = ["MPEG1_KBPS", "MPEG2_KBPS", "Mp3Codec", "lame_sample_rate", "mp3_codable", "mp3_rate_ok"]
