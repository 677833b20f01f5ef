"""Waveform codecs run through FFmpeg's encoders and decoders (PyAV): :class:`PyAvCodec`.

The payload is the encoder's packets framed by :mod:`mosapp.codecs.classic.framing`. Its
``params``: ``rate`` (the coded sample rate), ``delay`` (samples at ``rate`` to drop from the decoder's
output: the encoder's priming, read from the first packet's pts), ``extradata`` (hex; the
AAC AudioSpecificConfig, empty otherwise) and ``bit_rate`` (the encoder's target, bit/s).

Delays found (they come from the encoders, not from this file): Opus pre-skip 312 samples
at 48 kHz; LAME 576 encoder + 529 decoder = 1105 samples at the MP3 rate; AAC priming 1024
samples at the coded rate. Decoding drops them, resamples back to 44.1 kHz when the coded
rate differs, and returns exactly ``n_samples`` samples aligned with the input. Measured
by cross-correlation with the input (tests/codecs/test_classic.py): lag 0 for MP3 (through
its 8-22.05 kHz resampling), AAC, and Opus at 48 kbit/s and up. Below that, Opus's output
itself sits up to 3 samples at 44.1 kHz off, either way: in SILK mode (6-12 kbit/s mono)
SILK codes at 8-16 kHz through its own IIR resamplers, whose delay libopus compensates in
whole samples at those rates, which leaves up to half a sample at 8 kHz (2.8 at 44.1 kHz);
at 16-32 kbit/s (CELT, hybrid for the first frames) the coarse coding of tonal music moves
the peak by about one sample while click trains stay at lag 0. This is Opus's output as
RFC 7845 defines it (decoded minus pre-skip) and is not corrected here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from mosapp.codecs import params as header_params
from mosapp.codecs.base import Availability, Encoded
from mosapp.codecs.classic.common import ClassicCodec, check_audio, fit
from mosapp.codecs.classic.framing import pack_packets, unpack_packets
from mosapp.core import job
from mosapp.core.audio import STREAM_BLOCK_FRAMES, fit_blocks, resample, resample_blocks
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig
from mosapp.core.errors import AudioError, BitstreamError, InvalidStreamError, ModelError


def _av() -> Any:
    """The ``av`` module, or None when PyAV is not installed."""
    try:
        import av  # noqa: PLC0415 — optional at run time: without PyAV the other codecs still list and run
    except ImportError:
        return None
    return av


def _has_codec(av: Any, name: str, mode: str) -> bool:
    try:
        av.codec.Codec(name, mode)
    except Exception:  # noqa: BLE001 — PyAV raises UnknownCodecError, older releases other types
        return False
    return True


def _frame_to_array(frame: Any) -> np.ndarray:
    """A decoded frame as float32 (channels, samples), whatever its sample format."""
    arr = frame.to_ndarray()
    fmt = frame.format
    if not fmt.is_planar:
        arr = arr.reshape(-1, len(frame.layout.channels)).T
    if arr.dtype == np.int16:
        return arr.astype(np.float32) / 32768.0
    if arr.dtype == np.int32:
        return arr.astype(np.float32) / 2147483648.0
    return arr.astype(np.float32, copy=False)


@dataclass
class EncoderRun:
    """One encoder run.

    Attributes:
        rate: coded sample rate, Hz.
        bit_rate: the encoder's target, bit/s.
        delay: encoder priming, samples at ``rate``.
        extradata: what the decoder needs besides the packets (AAC's AudioSpecificConfig).
        payload: the packets framed as in the module docstring.
        seconds: the time the packets cover (frames x frame size / rate): the clip plus
            the priming and the last frame's padding.
    """

    rate: int
    bit_rate: int
    delay: int
    extradata: bytes
    payload: bytes
    seconds: float

    @property
    def kbps(self) -> float:
        """The stream's own rate: payload bits per second of coded frames, kbit/s."""
        return 8.0 * len(self.payload) / self.seconds / 1000.0


class PyAvCodec(ClassicCodec):
    """A waveform codec run through FFmpeg's encoders and decoders (PyAV).

    Subclasses set :attr:`encoder`, :attr:`decoders` (first available one is used),
    :attr:`sample_format` (the encoder's input format) and implement :meth:`coded_rate`.
    """

    encoder: str = ""
    decoders: tuple[str, ...] = ()
    sample_format: str = "fltp"
    #: Whether the decoder needs the encoder's extradata (AAC's AudioSpecificConfig). Opus's
    #: (an OpusHead) is left out on purpose: given it, FFmpeg's decoders drop the pre-skip
    #: themselves, and the delay is dropped here, once, for every codec alike.
    needs_extradata: bool = False
    version = 1
    #: Every waveform codec has a bitrate (set from its name).
    nominal_kbps: float

    def __init__(self, kbps: float) -> None:
        self.nominal_kbps = float(kbps)
        self.name = f"{self.family}-{kbps:g}"

    # -- what subclasses choose ------------------------------------------------------------

    def coded_rate(self, channels: int) -> int:
        """Sample rate the encoder runs at."""
        return PIPELINE_SAMPLE_RATE

    def encoder_options(self) -> dict[str, str]:
        """Private FFmpeg options of the encoder."""
        return {}

    # -- availability ------------------------------------------------------------------------

    def availability(self) -> Availability:
        av = _av()
        if av is None:
            return Availability(False, f"{self.name} needs PyAV (pip install av), which is not installed.")
        if not _has_codec(av, self.encoder, "w"):
            return Availability(False, f"{self.name} needs FFmpeg's {self.encoder} encoder, which this PyAV build lacks.")
        if self._decoder_name(av) is None:
            return Availability(
                False, f"{self.name} needs one of FFmpeg's {' or '.join(self.decoders)} decoders, which this PyAV build lacks."
            )
        return Availability(True)

    def _decoder_name(self, av: Any) -> str | None:
        return next((d for d in self.decoders if _has_codec(av, d, "r")), None)

    def _require(self) -> Any:
        availability = self.availability()
        if not availability.ok:
            raise ModelError(availability.reason)
        return _av()

    # -- encoding ----------------------------------------------------------------------------

    def _run_encoder(self, av: Any, y: np.ndarray, rate: int, bit_rate: int) -> EncoderRun:
        """Encode (channels, m) float32 at ``rate`` with the encoder's target ``bit_rate``."""
        if y.shape[1] == 0:  # a clip of a few samples can round to none at a low rate
            y = np.zeros((y.shape[0], 1), dtype=np.float32)
        ctx = av.CodecContext.create(self.encoder, "w")
        ctx.sample_rate = rate
        layout = "mono" if y.shape[0] == 1 else "stereo"
        ctx.layout = layout
        ctx.format = self.sample_format
        ctx.bit_rate = bit_rate
        ctx.time_base = Fraction(1, rate)
        ctx.options = self.encoder_options()
        ctx.open()
        planar = self.sample_format.endswith("p")
        step = ctx.frame_size or 1024
        packets = []
        for start in range(0, y.shape[1], step):
            if start % (256 * step) == 0:
                job.report(start, y.shape[1], "samples encoded")
            chunk = y[:, start: start + step]
            arr = chunk if planar else chunk.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=self.sample_format, layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            packets.extend(ctx.encode(frame))
        packets.extend(ctx.encode(None))
        if not packets:
            raise RuntimeError(f"{self.encoder} returned no packets")
        first = packets[0]
        if first.pts is None:
            raise RuntimeError(f"{self.encoder} returned packets without timestamps")
        # FFmpeg's audio frame queue stamps each packet with the time of its input shifted
        # by the encoder's priming (AVCodecContext.initial_padding), so the first packet's
        # pts is minus the delay: Opus's pre-skip, LAME's 576 + 529, AAC's 1024.
        delay = -int(first.pts * first.time_base * rate) if first.time_base else -int(first.pts)
        if delay < 0:
            raise RuntimeError(f"{self.encoder} reported a negative delay ({delay})")
        extradata = bytes(ctx.extradata) if ctx.extradata and self.needs_extradata else b""
        data = [bytes(p) for p in packets]
        seconds = len(data) * step / rate
        return EncoderRun(rate, bit_rate, delay, extradata, pack_packets(data), seconds)

    def _encode_stream(self, av: Any, x: np.ndarray) -> EncoderRun:
        """Code the clip (float32 (channels, n) at the pipeline rate); CBR codecs run once."""
        rate = self.coded_rate(x.shape[0])
        return self._run_encoder(av, resample(x, PIPELINE_SAMPLE_RATE, rate), rate, int(round(self.nominal_kbps * 1000)))

    def encode(self, samples: np.ndarray, config: PipelineConfig) -> Encoded:
        x = check_audio(samples, self.name)
        av = self._require()
        try:
            stream = self._encode_stream(av, x)
        except av.error.FFmpegError as exc:
            raise AudioError(f"FFmpeg's {self.encoder} encoder refused the audio for {self.name} ({exc}).") from None
        params: dict[str, Any] = {
            "rate": stream.rate,
            "delay": stream.delay,
            "extradata": stream.extradata.hex(),
            "bit_rate": stream.bit_rate,
        }
        return Encoded(self.name, self.version, PIPELINE_SAMPLE_RATE, x.shape[1], x.shape[0], params, stream.payload)

    # -- decoding ----------------------------------------------------------------------------

    #: Packets an encoder may emit beyond the clip's frames (flush, priming).
    FLUSH_PACKETS = 4
    #: The largest encoder priming (samples at the coded rate) a stream may declare.
    max_delay: int = 4096

    def frame_samples(self, rate: int) -> int:
        """Samples at ``rate`` one packet of this codec holds."""
        return 1024

    def coded_rates(self, channels: int) -> tuple[int, ...]:
        """The coded rates a stream of this codec may declare."""
        return (self.coded_rate(channels),)

    def bit_rates(self) -> tuple[int, int]:
        """The encoder targets (bit/s) a stream of this codec may declare."""
        nominal = int(round(self.nominal_kbps * 1000))
        return nominal, nominal

    def check_stream(self, encoded: Encoded) -> tuple[int, int, bytes]:
        """Validate the header against this codec's declared ranges before decoding.

        Returns:
            (coded rate, delay, extradata).

        Raises:
            BitstreamError: a newer codec version.
            InvalidStreamError: a value out of range (rate, delay, bit rate, extradata, length).
        """
        self._check_encoded(encoded)
        rate = header_params.choice(encoded, "rate", self.coded_rates(encoded.channels))
        delay = int(header_params.number(encoded, "delay", 0, self.max_delay, integer=True, unit=" samples"))
        lo, hi = self.bit_rates()
        header_params.number(encoded, "bit_rate", lo, hi, integer=True, unit=" bit/s")
        extradata = header_params.hex_bytes(encoded, "extradata", 64 if self.needs_extradata else 0, default="")
        return rate, delay, extradata

    def _open_decoder(self, encoded: Encoded) -> tuple[Any, Any, list[bytes], int, int, int]:
        """(av, the decoder context, the packets, the coded rate, the delay, the samples needed at that
        rate), the packet count checked before decoding: every packet decodes to a frame, so this bounds
        the memory."""
        rate, delay, extradata = self.check_stream(encoded)
        av = self._require()
        packets = unpack_packets(encoded.payload, self.name)
        needed = (2 * encoded.n_samples * rate + PIPELINE_SAMPLE_RATE) // (2 * PIPELINE_SAMPLE_RATE)
        most = -(-(needed + delay) // self.frame_samples(rate)) + self.FLUSH_PACKETS
        if len(packets) > most:
            raise InvalidStreamError(
                f"the {self.name} payload holds {len(packets)} packets, more than the {most} that "
                f"{encoded.n_samples} samples need"
            )
        ctx = av.CodecContext.create(self._decoder_name(av), "r")
        ctx.sample_rate = rate
        ctx.layout = "mono" if encoded.channels == 1 else "stereo"
        if extradata:
            ctx.extradata = extradata
        return av, ctx, packets, rate, delay, needed

    def decode(self, encoded: Encoded, config: PipelineConfig) -> np.ndarray:
        av, ctx, packets, rate, delay, needed = self._open_decoder(encoded)
        channels = encoded.channels
        parts: list[np.ndarray] = []
        try:
            for i, data in enumerate(packets):
                if i % 256 == 0:
                    job.report(i, len(packets), "packets decoded")
                for frame in ctx.decode(av.Packet(data)):
                    parts.append(_frame_to_array(frame))
            for frame in ctx.decode(None):
                parts.append(_frame_to_array(frame))
        except av.error.FFmpegError as exc:
            raise BitstreamError(f"The {self.name} payload cannot be decoded ({exc}).") from None
        if not parts or any(p.shape[0] != channels for p in parts):
            raise BitstreamError(f"The {self.name} payload does not decode to {channels} channel(s).")
        y = np.concatenate(parts, axis=1)[:, delay:]
        if y.shape[1] < needed:
            raise BitstreamError(
                f"The {self.name} payload decodes to {y.shape[1]} samples, fewer than the {needed} its header promises."
            )
        if not np.isfinite(y).all():
            raise BitstreamError(f"The {self.name} payload decodes to non-finite samples.")
        # Resample everything past the delay (the tail is the encoder's flush, coded silence),
        # so the last input samples see their true neighbours; then crop to n.
        return fit(resample(y, rate, PIPELINE_SAMPLE_RATE), encoded.n_samples)

    def decode_blocks(self, encoded: Encoded, config: PipelineConfig) -> Iterator[np.ndarray]:
        """:meth:`decode`, block by block, for streams too long to hold decoded (an hour of stereo
        Opus is 1.3 GB of samples): the same samples in ``(channels, m)`` float32 blocks at the
        pipeline rate, ``n_samples`` in all, holding only the payload and one block at a time.

        Raises (while iterating):
            BitstreamError, InvalidStreamError: as :meth:`decode`.
        """
        av, ctx, packets, rate, delay, needed = self._open_decoder(encoded)
        channels = encoded.channels
        decoded = 0

        def at_rate() -> Iterator[np.ndarray]:
            nonlocal decoded
            skip = delay
            pending: list[np.ndarray] = []
            held = 0
            try:
                for i, data in enumerate([*packets, None]):
                    if i % 256 == 0:
                        job.report(i, len(packets), "packets decoded")
                    for frame in ctx.decode(None if data is None else av.Packet(data)):
                        arr = _frame_to_array(frame)
                        if arr.shape[0] != channels:
                            raise BitstreamError(f"The {self.name} payload does not decode to {channels} channel(s).")
                        if not np.isfinite(arr).all():
                            raise BitstreamError(f"The {self.name} payload decodes to non-finite samples.")
                        if skip:
                            cut = min(skip, arr.shape[1])
                            arr, skip = arr[:, cut:], skip - cut
                        decoded += arr.shape[1]
                        pending.append(arr)
                        held += arr.shape[1]
                        if held >= STREAM_BLOCK_FRAMES:
                            yield np.concatenate(pending, axis=1)
                            pending, held = [], 0
            except av.error.FFmpegError as exc:
                raise BitstreamError(f"The {self.name} payload cannot be decoded ({exc}).") from None
            if pending:
                yield np.concatenate(pending, axis=1)
            if decoded < needed:
                raise BitstreamError(
                    f"The {self.name} payload decodes to {decoded} samples, fewer than the {needed} its header promises."
                )

        yield from fit_blocks(resample_blocks(at_rate(), rate, PIPELINE_SAMPLE_RATE, channels), encoded.n_samples,
                              channels)


__all__ = ["EncoderRun", "PyAvCodec"]
