"""``opus-<kbps>``: libopus, hard CBR, 20 ms frames, ``application=audio``, at 48 kHz."""

from __future__ import annotations

from mosapp.codecs.classic.av_io import PyAvCodec


class OpusCodec(PyAvCodec):
    """libopus at 48 kHz, hard CBR, 20 ms frames, ``application=audio``."""

    family = "opus"
    encoder = "libopus"
    decoders = ("libopus", "opus")
    sample_format = "flt"
    min_kbps, max_kbps = 6.0, 256.0

    def __init__(self, kbps: float) -> None:
        super().__init__(kbps)
        self.description = f"Opus (libopus) CBR {kbps:g} kbit/s, 20 ms frames, coded at 48 kHz"

    #: libopus's pre-skip is 312 samples at 48 kHz; RFC 7845 allows more, 80 ms is ample.
    max_delay = 3840

    def coded_rate(self, channels: int) -> int:
        return 48000

    def frame_samples(self, rate: int) -> int:
        return rate // 50  # 20 ms frames

    def encoder_options(self) -> dict[str, str]:
        return {"vbr": "off", "application": "audio", "frame_duration": "20"}


__all__ = ["OpusCodec"]
