"""What every waveform codec and anchor shares: the input checks, the output's length and
the checks of an encoded stream's header."""

from __future__ import annotations

import numpy as np

from mosapp.codecs.base import Codec, Encoded, check_input
from mosapp.core.config import PIPELINE_SAMPLE_RATE
from mosapp.core.errors import AudioError, BitstreamError, InvalidStreamError

#: Longest stream a header may announce, seconds (the container's limit, docs/bitstream.md).
MAX_SECONDS = 3600


def check_audio(samples: np.ndarray, name: str) -> np.ndarray:
    """float32 (channels, n), 1 or 2 channels, at least one sample, all finite; else AudioError."""
    x = check_input(samples)
    if x.shape[0] not in (1, 2):
        raise AudioError(f"{name} codes mono or stereo audio, not {x.shape[0]} channels; mix down first.")
    if x.shape[1] == 0:
        raise AudioError(f"{name} was given no samples to code.")
    if not np.isfinite(x).all():
        raise AudioError(f"{name} cannot code NaN or infinite samples.")
    return x


def fit(y: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad the end of (channels, m) to n samples, as float32 C-contiguous."""
    out = np.zeros((y.shape[0], n), dtype=np.float32)
    m = min(n, y.shape[1])
    out[:, :m] = y[:, :m]
    return out


class ClassicCodec(Codec):
    """What the waveform codecs and anchors share: the checks of an encoded stream's header."""

    def _check_encoded(self, encoded: Encoded) -> None:
        if encoded.codec_version > self.version:
            raise BitstreamError(
                f"The stream was written by {encoded.codec} version {encoded.codec_version}; this mosapp reads "
                f"up to version {self.version}: update mosapp."
            )
        if encoded.codec != self.name:
            raise InvalidStreamError(f"a {encoded.codec} stream cannot be decoded as {self.name}")
        self.check_model(encoded)
        if encoded.sample_rate != PIPELINE_SAMPLE_RATE or encoded.channels not in (1, 2) or encoded.n_samples <= 0 \
                or encoded.n_samples > MAX_SECONDS * PIPELINE_SAMPLE_RATE:
            raise InvalidStreamError(
                f"the {self.name} stream header is invalid ({encoded.channels} channel(s), "
                f"{encoded.n_samples} samples at {encoded.sample_rate} Hz)"
            )


__all__ = ["MAX_SECONDS", "ClassicCodec", "check_audio", "fit"]
