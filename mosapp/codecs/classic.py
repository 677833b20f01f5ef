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

Payload of the waveform codecs (integers little-endian)::

    u32     CRC-32 of everything after it
    varint  byte count T of the packet-length table
    T bytes zlib (level 9) of the packets' byte lengths, each an unsigned LEB128 varint
    ...     the encoder's packets back to back, as FFmpeg emitted them (raw Opus packets,
            MP3 frames with their headers, raw AAC access units)

The length table is what an Ogg page's lacing values, LATM's length bytes or an MP4
sample-size table carry; zlib makes it almost free for CBR streams (every length equal, or
MP3's alternating padding: 15-25 bytes per 30 s) and about 0.6 bytes per packet for AAC
(0.2-0.25 kbit/s). ``params``:
``rate`` (the coded sample rate), ``delay`` (samples at ``rate`` to drop from the decoder's
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

import re
import zlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from mosapp.codecs import params as header_params
from mosapp.codecs import register_family
from mosapp.codecs.base import Availability, Codec, Encoded, check_input
from mosapp.core import job, varint
from mosapp.core.audio import resample
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig
from mosapp.core.errors import AudioError, BitstreamError, ConfigError, InvalidStreamError, ModelError

#: Longest stream a header may announce, seconds (the container's limit, docs/bitstream.md).
MAX_SECONDS = 3600

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


def _mp3_rate_ok(kbps: int, rate: int) -> bool:
    """Whether ``kbps`` is in the Layer III bitrate table of the MPEG version that has ``rate``."""
    return kbps in (MPEG1_KBPS if rate >= 32000 else MPEG2_KBPS)


# -- packet framing ------------------------------------------------------------------------

#: A packet length or table size longer than this (35 bits) is damage.
_MAX_VARINT_BYTES = 5


def pack_packets(packets: list[bytes]) -> bytes:
    """The payload layout of the module docstring."""
    table = zlib.compress(b"".join(varint.encode(len(p)) for p in packets), 9)
    body = varint.encode(len(table)) + table + b"".join(packets)
    return zlib.crc32(body).to_bytes(4, "little") + body


def unpack_packets(payload: bytes, name: str) -> list[bytes]:
    """Split a payload into packets.

    Raises:
        BitstreamError: wrong checksum, truncated or inconsistent payload.
    """
    if len(payload) < 5:
        raise BitstreamError(f"The {name} payload is truncated ({len(payload)} bytes).")
    body = memoryview(payload)[4:]
    if zlib.crc32(body) != int.from_bytes(payload[:4], "little"):
        raise BitstreamError(f"The {name} payload is damaged (its checksum does not match).")
    try:
        size, pos = varint.decode(body, 0, max_bytes=_MAX_VARINT_BYTES)
        if pos + size > len(body):
            raise ValueError("length table runs past the end")
        data_bytes = len(body) - pos - size
        inflater = zlib.decompressobj()
        # Every packet is at least one byte, so the table cannot be longer than this.
        raw = inflater.decompress(bytes(body[pos: pos + size]), 5 * data_bytes + 5)
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError("length table does not inflate cleanly")
        pos += size
        packets: list[bytes] = []
        at = 0
        while at < len(raw):
            length, at = varint.decode(raw, at, max_bytes=_MAX_VARINT_BYTES)
            if length == 0 or pos + length > len(body):
                raise ValueError("a packet length does not fit the payload")
            packets.append(bytes(body[pos: pos + length]))
            pos += length
        if pos != len(body):
            raise ValueError(f"{len(body) - pos} bytes follow the last packet")
    except (ValueError, zlib.error) as exc:
        raise BitstreamError(f"The {name} payload is damaged ({exc}).") from None
    if not packets:
        raise BitstreamError(f"The {name} payload holds no packets.")
    return packets


# -- shared checks ---------------------------------------------------------------------------


def _check_audio(samples: np.ndarray, name: str) -> np.ndarray:
    """float32 (channels, n), 1 or 2 channels, at least one sample, all finite; else AudioError."""
    x = check_input(samples)
    if x.shape[0] not in (1, 2):
        raise AudioError(f"{name} codes mono or stereo audio, not {x.shape[0]} channels; mix down first.")
    if x.shape[1] == 0:
        raise AudioError(f"{name} was given no samples to code.")
    if not np.isfinite(x).all():
        raise AudioError(f"{name} cannot code NaN or infinite samples.")
    return x


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad the end of (channels, m) to n samples, as float32 C-contiguous."""
    out = np.zeros((y.shape[0], n), dtype=np.float32)
    m = min(n, y.shape[1])
    out[:, :m] = y[:, :m]
    return out


class _ClassicCodec(Codec):
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


# -- waveform codecs through PyAV --------------------------------------------------------------


def _av():
    """The ``av`` module, or None when PyAV is not installed."""
    try:
        import av
    except ImportError:
        return None
    return av


def _has_codec(av, name: str, mode: str) -> bool:
    try:
        av.codec.Codec(name, mode)
    except Exception:  # UnknownCodecError, or whatever an old PyAV raises
        return False
    return True


def _frame_to_array(frame) -> np.ndarray:
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
class _Stream:
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


class PyAvCodec(_ClassicCodec):
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

    def _decoder_name(self, av) -> str | None:
        return next((d for d in self.decoders if _has_codec(av, d, "r")), None)

    def _require(self):
        availability = self.availability()
        if not availability.ok:
            raise ModelError(availability.reason)
        return _av()

    # -- encoding ----------------------------------------------------------------------------

    def _run_encoder(self, av, y: np.ndarray, rate: int, bit_rate: int) -> _Stream:
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
        return _Stream(rate, bit_rate, delay, extradata, pack_packets(data), seconds)

    def _encode_stream(self, av, x: np.ndarray) -> _Stream:
        """Code the clip (float32 (channels, n) at the pipeline rate); CBR codecs run once."""
        rate = self.coded_rate(x.shape[0])
        return self._run_encoder(av, resample(x, PIPELINE_SAMPLE_RATE, rate), rate, int(round(self.nominal_kbps * 1000)))

    def encode(self, samples: np.ndarray, config: PipelineConfig) -> Encoded:
        x = _check_audio(samples, self.name)
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

    def decode(self, encoded: Encoded, config: PipelineConfig) -> np.ndarray:
        rate, delay, extradata = self.check_stream(encoded)
        av = self._require()
        packets = unpack_packets(encoded.payload, self.name)
        at_rate = (2 * encoded.n_samples * rate + PIPELINE_SAMPLE_RATE) // (2 * PIPELINE_SAMPLE_RATE)
        most = -(-(at_rate + delay) // self.frame_samples(rate)) + self.FLUSH_PACKETS
        if len(packets) > most:
            # Checked before decoding: every packet decodes to a frame, so this bounds the memory.
            raise InvalidStreamError(
                f"the {self.name} payload holds {len(packets)} packets, more than the {most} that "
                f"{encoded.n_samples} samples need"
            )
        channels = encoded.channels
        ctx = av.CodecContext.create(self._decoder_name(av), "r")
        ctx.sample_rate = rate
        ctx.layout = "mono" if channels == 1 else "stereo"
        if extradata:
            ctx.extradata = extradata
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
        needed = (2 * encoded.n_samples * rate + PIPELINE_SAMPLE_RATE) // (2 * PIPELINE_SAMPLE_RATE)
        if y.shape[1] < needed:
            raise BitstreamError(
                f"The {self.name} payload decodes to {y.shape[1]} samples, fewer than the {needed} its header promises."
            )
        if not np.isfinite(y).all():
            raise BitstreamError(f"The {self.name} payload decodes to non-finite samples.")
        # Resample everything past the delay (the tail is the encoder's flush, coded silence),
        # so the last input samples see their true neighbours; then crop to n.
        return _fit(resample(y, rate, PIPELINE_SAMPLE_RATE), encoded.n_samples)


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

    def _encode_stream(self, av, x: np.ndarray) -> _Stream:
        """The first rate of :data:`AAC_RATES` the encoder can meet nominal at, rate-calibrated.

        At each rate the encoder first runs with its target at nominal. While the stream's
        own rate (:attr:`_Stream.kbps`: payload bits per second of coded frames, so short
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
        best: _Stream | None = None
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
        return best


# -- MUSHRA anchors ------------------------------------------------------------------------------


class LowpassAnchor(_ClassicCodec):
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
            from scipy.signal import firwin, kaiserord

            nyquist = PIPELINE_SAMPLE_RATE / 2
            numtaps, beta = kaiserord(self.STOPBAND_DB, self.TRANSITION_HZ / nyquist)
            numtaps |= 1
            self._taps = firwin(numtaps, self.cutoff_hz - self.TRANSITION_HZ / 2, window=("kaiser", beta), fs=PIPELINE_SAMPLE_RATE)
        return self._taps

    def filter(self, x: np.ndarray) -> np.ndarray:
        """Low-pass (channels, n) float32 without delay (the centred part of the convolution)."""
        from scipy.signal import oaconvolve

        h = self.taps()
        return np.stack([oaconvolve(ch.astype(np.float64), h, mode="same") for ch in x]).astype(np.float32)

    def encode(self, samples: np.ndarray, config: PipelineConfig) -> Encoded:
        x = _check_audio(samples, self.name)
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


# -- the registry ----------------------------------------------------------------------------------

#: Names ``mosapp codecs`` lists. Opus below 6 kbit/s is outside its documented range; MP3
#: below 8 kbit/s does not exist; FFmpeg's AAC-LC sounds broken below 16 kbit/s at 44.1 kHz
#: (it has no HE-AAC), so the AAC list starts there.
ADVERTISED = {
    "opus": [6, 8, 12, 16, 24],
    "mp3": [8, 16, 24, 32],
    "aac": [16, 24, 32],
}
#: The anchors, cut-off in Hz.
ANCHORS = {"lowpass-3.5k": 3500.0, "lowpass-7k": 7000.0}

_NAME = re.compile(r"^(opus|mp3|aac)-(\d+(?:\.\d+)?)$")


def _waveform_factory(family: str):
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
            allowed = [k for k in sorted(set(MPEG1_KBPS) | set(MPEG2_KBPS)) if _mp3_codable(k)]
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


def _mp3_codable(kbps: int) -> bool:
    """Whether ``kbps`` is in the bitrate table at the rate LAME picks, for mono and stereo."""
    return all(_mp3_rate_ok(kbps, lame_sample_rate(kbps, channels)) for channels in (1, 2))


for _family in ADVERTISED:
    register_family(
        _family, _waveform_factory(_family), lambda family=_family: [f"{family}-{k}" for k in ADVERTISED[family]]
    )
register_family("lowpass", lambda name: LowpassAnchor(ANCHORS[name]) if name in ANCHORS else None, lambda: list(ANCHORS))
