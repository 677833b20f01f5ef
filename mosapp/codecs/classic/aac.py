"""``aac-<kbps>``: FFmpeg's native AAC-LC encoder, its target calibrated to nominal, at the
highest sample rate that meets it (:meth:`AacCodec._encode_stream`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mosapp.codecs.classic.av_io import EncoderRun, PyAvCodec
from mosapp.core.audio import resample
from mosapp.core.config import PIPELINE_SAMPLE_RATE

#: AAC: the sample rates tried, in order (see :meth:`AacCodec._encode_stream`).
AAC_RATES = (44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
#: AAC: another encoder run while the best one's rate is further than this from nominal.
AAC_RATE_TOLERANCE = 0.01
#: AAC: encoder runs per sample rate at most.
AAC_MAX_RUNS = 3
#: AAC: a rate whose calibrated stream is still this much over nominal is given up for the next.
AAC_FLOOR_TOLERANCE = 0.03
#: AAC: a first run this much over nominal is at the encoder's floor: no second run there.
AAC_FLOOR_SKIP = 0.10
#: AAC: a later run's target is kept within these factors of nominal.
AAC_TARGET_LIMITS = (0.75, 1.05)


class AacCodec(PyAvCodec):
    """FFmpeg's AAC-LC encoder, its target calibrated to nominal, at the highest rate that meets it."""

    family = "aac"
    encoder = "aac"
    decoders = ("aac",)
    sample_format = "fltp"
    needs_extradata = True
    min_kbps, max_kbps = 8.0, 256.0

    def __init__(self, kbps: float) -> None:
        super().__init__(kbps)
        self.description = f"AAC-LC (FFmpeg's encoder) {kbps:g} kbit/s average, at 44.1 kHz or the highest rate meeting it"

    def coded_rates(self, channels: int) -> tuple[int, ...]:
        return AAC_RATES

    def bit_rates(self) -> tuple[int, int]:
        lo, hi = AAC_TARGET_LIMITS
        nominal = self.nominal_kbps * 1000
        return int(lo * nominal) - 1, int(hi * nominal) + 1

    def _encode_stream(self, av: Any, x: np.ndarray) -> EncoderRun:
        """The first rate of :data:`AAC_RATES` the encoder can meet nominal at, rate-calibrated.

        At each rate the encoder first runs with its target at nominal. While the stream's
        own rate (:attr:`EncoderRun.kbps`: payload bits per second of coded frames, so short
        clips are not judged by their priming) is more than :data:`AAC_RATE_TOLERANCE` off,
        it runs again (at most :data:`AAC_MAX_RUNS` runs) with the target moved by the
        secant through the runs so far (scaled by nominal/measured after the first), kept
        within :data:`AAC_TARGET_LIMITS`; the closest run is kept. A first run more than
        :data:`AAC_FLOOR_SKIP` over nominal, or a best run still more than
        :data:`AAC_FLOOR_TOLERANCE` over, means the encoder is at its floor at this rate:
        the next lower rate is tried.
        """
        nominal = self.nominal_kbps
        lo, hi = (f * nominal * 1000 for f in AAC_TARGET_LIMITS)
        best: EncoderRun | None = None
        for rate in AAC_RATES:
            y = resample(x, PIPELINE_SAMPLE_RATE, rate)
            runs = [self._run_encoder(av, y, rate, int(round(nominal * 1000)))]
            while len(runs) < AAC_MAX_RUNS and runs[0].kbps < nominal * (1.0 + AAC_FLOOR_SKIP):
                closest = min(runs, key=lambda r: abs(r.kbps - nominal))
                if abs(closest.kbps / nominal - 1.0) <= AAC_RATE_TOLERANCE:
                    break
                last = runs[-1]
                if len(runs) == 1 or runs[-2].kbps == last.kbps:
                    target = last.bit_rate * nominal / last.kbps
                else:
                    prev = runs[-2]
                    slope = (last.bit_rate - prev.bit_rate) / (last.kbps - prev.kbps)
                    target = last.bit_rate + (nominal - last.kbps) * slope
                target = int(round(min(max(target, lo), hi)))
                if any(r.bit_rate == target for r in runs):
                    break
                runs.append(self._run_encoder(av, y, rate, target))
            stream = min(runs, key=lambda r: abs(r.kbps - nominal))
            if best is None or abs(stream.kbps - nominal) < abs(best.kbps - nominal):
                best = stream
            if stream.kbps <= nominal * (1.0 + AAC_FLOOR_TOLERANCE):
                return stream
        assert best is not None  # AAC_RATES is not empty
        return best


__all__ = ["AAC_FLOOR_SKIP", "AAC_FLOOR_TOLERANCE", "AAC_MAX_RUNS", "AAC_RATES", "AAC_RATE_TOLERANCE",
           "AAC_TARGET_LIMITS", "AacCodec"]
