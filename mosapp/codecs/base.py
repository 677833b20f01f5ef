"""What every codec is: one interface for the command line, listening studies and the app.

A codec turns audio at the pipeline rate into a payload of bytes and back. The payload is
what a listener's bitrate pays for; :mod:`mosapp.codecs.container` wraps it in a ``.sgc`` file
with everything decoding needs.

Two kinds share the interface:

* spectrogram codecs: STFT → log-magnitude image → image codec → image → phase
  reconstruction (see :mod:`mosapp.codecs.spectrogram`): the learned ``sgc-*`` (two-band,
  :mod:`mosapp.codecs.sgc`) and ``sgc-thesis-*``, ``msillm-*``, the classic image codecs
  ``avif-*``, ``webp-*`` and ``jpeg-*`` on the same two-band images (:mod:`mosapp.codecs.image`),
  and ``pghi-only`` / ``pghi-only-two-band`` (the magnitude uncompressed: what phase
  reconstruction alone costs);
* waveform codecs and anchors: ``opus-*``, ``mp3-*``, ``aac-*`` and the ``lowpass-*`` anchors
  (:mod:`mosapp.codecs.classic`), and the neural baselines ``encodec-*`` and ``dac-*``
  (:mod:`mosapp.codecs.baselines`).

Each family registers itself (:data:`mosapp.codecs.FAMILY_MODULES`); ``mosapp codecs`` lists them.
"""

from __future__ import annotations

import hashlib
import os
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig
from mosapp.core.errors import InvalidStreamError

#: Characters of the hex digest :func:`file_model_id` keeps (64 bits).
MODEL_ID_HEX = 16
_MODEL_IDS: dict[tuple[str, int, int], str] = {}
_MODEL_IDS_LOCK = threading.Lock()


def file_model_id(path: str | os.PathLike[str]) -> str:
    """The identifier of the model whose weights are the file ``path``: the first
    :data:`MODEL_ID_HEX` hex digits of the SHA-256 of its bytes (cached per path, size and
    modification time, so a retrained file gets a new identifier)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    with _MODEL_IDS_LOCK:
        found = _MODEL_IDS.get(key)
    if found is None:
        digest = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        found = digest.hexdigest()[:MODEL_ID_HEX]
        with _MODEL_IDS_LOCK:
            _MODEL_IDS[key] = found
    return found


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
        model: identifier of the trained model the stream was coded with
            (:meth:`Codec.model_id`), or None for codecs without one and for streams read
            from container version 1 files, which did not record it.
    """

    codec: str
    codec_version: int
    sample_rate: int
    n_samples: int
    channels: int
    params: dict[str, Any] = field(default_factory=dict)
    payload: bytes = b""
    model: str | None = None

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

    def model_id(self) -> str | None:
        """Identifier of the trained model this codec codes with (:func:`file_model_id` of its
        weights file), or None when it has none. Written into every stream it encodes and
        checked on decoding, so a stream is never decoded with another model's weights."""
        return None

    def check_model(self, encoded: Encoded) -> None:
        """Refuse a stream coded with another model than the one this codec loads.

        Raises:
            InvalidStreamError: ``encoded.model`` is set and is not :meth:`model_id`.
        """
        if encoded.model is None:
            return  # container version 1 (no model recorded) or a codec without a model
        mine = self.model_id()
        if encoded.model != mine:
            have = f"the {self.name} model here is {mine}" if mine else f"{self.name} has no trained model"
            raise InvalidStreamError(
                f"the stream was coded with model {encoded.model}, but {have}; decode it with the weights "
                f"it was coded with"
            )

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


__all__ = ["Availability", "Codec", "Encoded", "MODEL_ID_HEX", "PIPELINE_SAMPLE_RATE", "check_input", "file_model_id"]
