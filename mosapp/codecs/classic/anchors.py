"""``lowpass-3.5k``, ``lowpass-7k``: the ITU-R BS.1534 (MUSHRA) low-pass anchors."""

from __future__ import annotations

import zlib

import numpy as np

from mosapp.codecs import params as header_params
from mosapp.codecs.base import Encoded
from mosapp.codecs.classic.common import ClassicCodec, check_audio
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig
from mosapp.core.errors import BitstreamError, InvalidStreamError

#: The anchors, cut-off in Hz.
ANCHORS = {"lowpass-3.5k": 3500.0, "lowpass-7k": 7000.0}


class LowpassAnchor(ClassicCodec):
    """ITU-R BS.1534 anchor: the input low-passed at ``cutoff_hz``, zero phase.

    The filter is a linear-phase FIR (Kaiser window, 100 dB stopband) applied centred, so it
    delays nothing: flat to ``cutoff_hz - TRANSITION_HZ``, at least 100 dB down from
    ``cutoff_hz`` on (the stopband starts at the cut-off itself, not half a transition above).
    Payload: the filtered signal divided by its peak (``params["scale"]``), as 16-bit PCM,
    channel after channel, zlib level 6. It is not bitrate-bound (``nominal_kbps`` None);
    on 30 s of mono music it costs 620-670 kbit/s.
    """

    family = "lowpass"
    version = 1
    nominal_kbps = None
    #: Width of the transition band below the cut-off, Hz.
    TRANSITION_HZ = 200.0
    #: Stopband attenuation, dB.
    STOPBAND_DB = 100.0

    def __init__(self, cutoff_hz: float) -> None:
        self.cutoff_hz = float(cutoff_hz)
        self.name = f"lowpass-{cutoff_hz / 1000:g}k"
        self.description = f"MUSHRA anchor: low-pass at {cutoff_hz / 1000:g} kHz (ITU-R BS.1534), zero phase"
        self._taps: np.ndarray | None = None

    def taps(self) -> np.ndarray:
        """The filter: odd length, symmetric, float64, unit DC gain."""
        if self._taps is None:
            from scipy.signal import firwin, kaiserord  # noqa: PLC0415 — scipy.signal takes ~0.7 s to import; only the anchors need it

            nyquist = PIPELINE_SAMPLE_RATE / 2
            numtaps, beta = kaiserord(self.STOPBAND_DB, self.TRANSITION_HZ / nyquist)
            numtaps |= 1
            self._taps = firwin(numtaps, self.cutoff_hz - self.TRANSITION_HZ / 2, window=("kaiser", beta), fs=PIPELINE_SAMPLE_RATE)
        return self._taps

    def filter(self, x: np.ndarray) -> np.ndarray:
        """Low-pass (channels, n) float32 without delay (the centred part of the convolution)."""
        from scipy.signal import oaconvolve  # noqa: PLC0415 — scipy.signal takes ~0.7 s to import; only the anchors need it

        h = self.taps()
        return np.stack([oaconvolve(ch.astype(np.float64), h, mode="same") for ch in x]).astype(np.float32)

    def encode(self, samples: np.ndarray, config: PipelineConfig) -> Encoded:
        x = check_audio(samples, self.name)
        y = self.filter(x)
        peak = float(np.abs(y).max())
        scale = peak if peak > 0 else 1.0
        pcm = np.round(y / scale * 32767.0).astype("<i2")
        payload = zlib.compress(pcm.tobytes(), 6)
        return Encoded(self.name, self.version, PIPELINE_SAMPLE_RATE, x.shape[1], x.shape[0], {"scale": scale}, payload)

    def decode(self, encoded: Encoded, config: PipelineConfig) -> np.ndarray:
        self._check_encoded(encoded)
        # The peak of the filtered signal: positive, and no input mosapp reads is louder than this.
        scale = header_params.number(encoded, "scale", 1e-12, 1e6)
        expected = 2 * encoded.channels * encoded.n_samples
        if len(encoded.payload) * 1100 < expected:
            # zlib expands at most about 1032-fold: the header promises more than the payload can hold.
            raise InvalidStreamError(
                f"the {self.name} payload of {len(encoded.payload)} bytes cannot hold the {encoded.n_samples} samples "
                f"its header announces"
            )
        try:
            inflater = zlib.decompressobj()
            raw = inflater.decompress(encoded.payload, expected + 1)
            if not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
                raise zlib.error("trailing or missing data")
        except zlib.error as exc:
            raise BitstreamError(f"The {self.name} payload is damaged ({exc}).") from None
        if len(raw) != expected:
            raise BitstreamError(f"The {self.name} payload has the wrong size for {encoded.channels} x {encoded.n_samples} samples.")
        pcm = np.frombuffer(raw, dtype="<i2").reshape(encoded.channels, encoded.n_samples)
        return (pcm.astype(np.float32) * np.float32(scale / 32767.0)).astype(np.float32)


__all__ = ["ANCHORS", "LowpassAnchor"]
