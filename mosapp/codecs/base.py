"""What every codec is: one interface for the command line, listening studies and the app.

A codec turns audio at the pipeline rate into a payload of bytes and back. The payload is
what a listener's bitrate pays for; :mod:`mosapp.bitstream` wraps it in a ``.sgc`` file
with everything decoding needs.

Two families share the interface:

* spectrogram codecs (``sgc-*``, ``msillm-*``, ``pghi-only``): STFT → log-magnitude
  image → image codec → image → phase reconstruction (see :mod:`mosapp.codecs.spectrogram`);
* waveform codecs and anchors (``opus-*``, ``mp3-*``, ``aac-*``, ``lowpass-*``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mosapp.config import PIPELINE_SAMPLE_RATE, PipelineConfig


@dataclass(frozen=True)
class Availability:
    """Whether a codec can run on this machine, and if not, one sentence saying why."""

    ok: bool
    reason: str = ""


@dataclass
class Encoded:
    """A codec's output: the payload and the few facts its decoder needs.

    Attributes:
        codec: registry name (e.g. ``opus-12``).
        codec_version: version of that codec's payload format; a decoder refuses newer ones.
        sample_rate: rate of the coded signal in Hz (the pipeline rate).
        n_samples: samples per channel of the coded signal.
        channels: coded channels (1 after the default mono mix-down).
        params: small JSON-serialisable dict of codec-specific decoding parameters
            (geometry, image scales, tile sizes …). It is stored in the file header.
        payload: the entropy-coded bytes.
    """

    codec: str
    codec_version: int
    sample_rate: int
    n_samples: int
    channels: int
    params: dict[str, Any] = field(default_factory=dict)
    payload: bytes = b""

    @property
    def seconds(self) -> float:
        return self.n_samples / self.sample_rate

    @property
    def payload_kbps(self) -> float:
        """Bitrate of the payload alone, kbit/s."""
        return 8.0 * len(self.payload) / max(self.seconds, 1e-9) / 1000.0


class Codec(ABC):
    """A named condition that codes audio.

    Subclasses set the class attributes (or instance attributes in ``__init__``) and
    implement :meth:`encode` and :meth:`decode`.

    Attributes:
        name: kebab-case registry name, e.g. ``sgc-12``, ``opus-16``, ``lowpass-3.5k``.
        family: ``sgc``, ``msillm``, ``pghi-only``, ``opus``, ``mp3``, ``aac`` or ``lowpass``.
        version: payload format version (bump when it changes).
        nominal_kbps: the advertised bitrate, or None (``pghi-only`` and anchors are not
            bitrate-bound).
        description: one line for ``mosapp codecs``.
    """

    name: str = ""
    family: str = ""
    version: int = 1
    nominal_kbps: float | None = None
    description: str = ""

    def availability(self) -> Availability:
        """Whether this machine can run the codec (files present, encoder compiled in …)."""
        return Availability(True)

    @abstractmethod
    def encode(self, samples: np.ndarray, config: PipelineConfig) -> Encoded:
        """Code ``samples`` (float32 ``(channels, n)`` at :data:`PIPELINE_SAMPLE_RATE`).

        Raises:
            MosappError: the codec is unavailable (its reason) or the input cannot be coded.
        """

    @abstractmethod
    def decode(self, encoded: Encoded, config: PipelineConfig) -> np.ndarray:
        """Decode to float32 ``(encoded.channels, encoded.n_samples)`` at the pipeline rate,
        sample-aligned with what was encoded.

        Raises:
            BitstreamError: the payload is damaged or from a newer codec version.
        """

    def process(self, samples: np.ndarray, config: PipelineConfig) -> tuple[np.ndarray, Encoded]:
        """Encode and decode in memory: (decoded samples, the encoded form)."""
        encoded = self.encode(samples, config)
        return self.decode(encoded, config), encoded

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def check_input(samples: np.ndarray) -> np.ndarray:
    """Return ``samples`` as C-contiguous float32 ``(channels, n)`` or raise ValueError (a bug)."""
    arr = np.ascontiguousarray(samples, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"samples must be (channels, n), got shape {arr.shape}")
    return arr


__all__ = ["Availability", "Codec", "Encoded", "PIPELINE_SAMPLE_RATE", "check_input"]
