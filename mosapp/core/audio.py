"""Audio file input and output: reading and validating files, resampling, and restoring the original format on output."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from mosapp.core import job, memory
from mosapp.core.config import PIPELINE_SAMPLE_RATE
from mosapp.core.errors import AudioError, MemoryLimitError
from mosapp.core.files import atomic_write, existing_file

#: Accepted input sample rates in Hz, inclusive.
MIN_SAMPLE_RATE = 16_000
MAX_SAMPLE_RATE = 96_000
#: Mono or stereo; more channels must be mixed down by the user, who knows the layout.
MAX_CHANNELS = 2

#: Frames decoded at a time: bounds the memory a long file needs beyond its samples.
_READ_BLOCK_FRAMES = 1 << 18

#: soxr quality used for every rate change.
_SOXR_QUALITY = "VHQ"

#: Output containers chosen from the file extension, with their default subtype.
_WRITE_FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
}
if "MP3" in sf.available_formats():
    # libsndfile >= 1.1 encodes MP3 through LAME; older builds only lack this entry.
    _WRITE_FORMATS[".mp3"] = ("MP3", "MPEG_LAYER_III")

_READABLE = "WAV, FLAC, OGG/Vorbis and MP3"


def _join_or(items: list[str]) -> str:
    """'a, b or c' for a message."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


@dataclass(frozen=True)
class AudioInfo:
    """What the input file looked like, so the output can be given the same shape.

    Attributes:
        path: the file read, or None for audio that did not come from a file.
        sample_rate: the file's sample rate in Hz.
        channels: the file's channel count.
        frames: samples per channel actually decoded from the file.
        subtype: soundfile subtype, e.g. ``PCM_16``, ``FLOAT``, ``VORBIS``.
        format: soundfile major format, e.g. ``WAV``, ``FLAC``, ``OGG``, ``MP3``.
    """

    path: str | None
    sample_rate: int
    channels: int
    frames: int
    subtype: str | None
    format: str | None


@dataclass
class Audio:
    """Samples in the layout every stage uses, plus the bookkeeping of the source file.

    Attributes:
        samples: float32 array of shape ``(channels, n)``, C-contiguous.
        sample_rate: rate of ``samples`` in Hz.
        info: the original file's format.
    """

    samples: np.ndarray
    sample_rate: int
    info: AudioInfo

    @property
    def duration_s(self) -> float:
        """Length of ``samples`` in seconds."""
        return self.samples.shape[1] / self.sample_rate


def _as_2d_float32(samples: np.ndarray) -> np.ndarray:
    """Returns ``samples`` as a C-contiguous float32 ``(channels, n)`` array (1-D means mono)."""
    arr = np.asarray(samples, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    if arr.ndim != 2:
        raise ValueError(f"samples must have shape (channels, n), got {arr.shape}")
    return np.ascontiguousarray(arr)


def _target_length(n: int, from_rate: int, to_rate: int) -> int:
    """round(n * to_rate / from_rate), halves rounded up, computed exactly in integers."""
    return (2 * n * to_rate + from_rate) // (2 * from_rate)


def _fit_length(samples: np.ndarray, n: int) -> np.ndarray:
    """Crops or zero-pads the end of ``(channels, m)`` samples to exactly ``n`` samples."""
    m = samples.shape[1]
    if m == n:
        return samples
    if m > n:
        return np.ascontiguousarray(samples[:, :n])
    out = np.zeros((samples.shape[0], n), dtype=samples.dtype)
    out[:, :m] = samples
    return out


def mix_down(samples: np.ndarray) -> np.ndarray:
    """Averages all channels into one.

    Args:
        samples: ``(channels, n)`` array (1-D is taken as mono).

    Returns:
        float32 array of shape ``(1, n)``.
    """
    arr = _as_2d_float32(samples)
    if arr.shape[0] == 1:
        return arr
    return np.ascontiguousarray(arr.mean(axis=0, keepdims=True, dtype=np.float32))


def is_silent(samples: np.ndarray, threshold: float = 0.0) -> bool:
    """Tells whether no sample rises above ``threshold`` in magnitude.

    Args:
        samples: array of any shape.
        threshold: largest magnitude still counted as silence.

    Returns:
        True when ``max |x| <= threshold`` (also for an empty array).
    """
    arr = np.asarray(samples)
    if arr.size == 0:
        return True
    return bool(np.max(np.abs(arr)) <= threshold)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Changes the sample rate with soxr at very high quality.

    Args:
        samples: ``(channels, n)`` array (1-D is taken as mono).
        from_rate: rate of ``samples`` in Hz.
        to_rate: wanted rate in Hz.

    Returns:
        float32 array of shape ``(channels, round(n * to_rate / from_rate))``; the input
        itself (as float32, C-contiguous) when the rates are equal.

    Raises:
        ValueError: a rate is not positive.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} and {to_rate}")
    arr = _as_2d_float32(samples)
    if from_rate == to_rate:
        return arr
    n_out = _target_length(arr.shape[1], from_rate, to_rate)
    if arr.shape[1] == 0:
        return np.zeros((arr.shape[0], 0), dtype=np.float32)
    # soxr wants (n, channels); its own length rounding can differ by one sample from
    # ours, and callers rely on the documented length, so fit it afterwards.
    out = soxr.resample(np.ascontiguousarray(arr.T), from_rate, to_rate, quality=_SOXR_QUALITY)
    out = np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, arr.shape[0]).T)
    return _fit_length(out, n_out)


def _libsndfile_reason(exc: BaseException) -> str:
    """The short cause inside a soundfile exception, without the 'Error opening ...' prefix."""
    reason = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
    return " ".join(str(reason).split()).rstrip(".")


def _unreadable(name: str, exc: BaseException) -> AudioError:
    """The sentence for a file libsndfile cannot read (``exc``: what it raised)."""
    reason = _libsndfile_reason(exc)
    if "does not exist" in reason:
        # What libsndfile says when its MP3 probe of a corrupt file fails; the file exists (checked first).
        reason = "Format not recognised"
    return AudioError(f"{name} cannot be read as audio ({reason}); mosapp reads {_READABLE} files.")


def _wav_announced_frames(path: Path) -> int | None:
    """Frames a RIFF/WAVE file's ``data`` chunk announces, or None where its header cannot tell
    (not RIFF, a streaming writer's 0 or 0xFFFFFFFF size, no ``fmt`` chunk before ``data``)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = 0
            for _ in range(64):  # chunks before "data": fmt, fact, LIST, bext … never this many
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = fh.read(min(size, 16))
                    if len(fmt) < 14:
                        return None
                    block_align = struct.unpack_from("<H", fmt, 12)[0]
                    fh.seek(size - len(fmt) + (size & 1), os.SEEK_CUR)
                elif cid == b"data":
                    if size in (0, 0xFFFFFFFF) or block_align == 0:
                        return None
                    return size // block_align
                else:
                    fh.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return None
    return None


def _read_bytes(frames: int, channels: int, file_rate: int, sample_rate: int | None) -> int:
    """Bytes :func:`read_audio` holds at its peak for ``frames`` frames of ``channels`` (after mixing
    down): the blocks and their concatenation, then the resampled copy and its length fit."""
    read = 2 * 4 * frames * channels
    if sample_rate is None or sample_rate == file_rate:
        return read
    return read + 2 * 4 * _target_length(frames, file_rate, sample_rate) * channels


def probe_audio(path: str | os.PathLike[str]) -> AudioInfo:
    """An audio file's rate, channels, length (as its header says) and format, without decoding it.

    Raises:
        AudioError: missing, a folder, a pipe or device, or not audio.
    """
    name = os.fspath(path)
    existing_file(name, "an audio file; give a WAV, FLAC, OGG/Vorbis or MP3 file", AudioError)
    try:
        info = sf.info(name)
    except (sf.SoundFileError, RuntimeError, ValueError, EOFError, OSError, TypeError) as exc:
        raise _unreadable(name, exc) from None
    return AudioInfo(path=name, sample_rate=int(info.samplerate), channels=int(info.channels),
                     frames=max(int(info.frames), 0), subtype=info.subtype, format=info.format)


def read_excerpt(path: str | os.PathLike[str], start_s: float, length_s: float, *, mono: bool = True) -> Audio:
    """``length_s`` seconds of ``path`` from ``start_s``, at the file's rate, read by seeking: only
    the excerpt is decoded, however long the file (a 1 s excerpt of a 6-hour WAV reads 1 s).

    Returns:
        The excerpt (shorter where the file ends first; ``info.frames`` is what was read).

    Raises:
        AudioError: as :func:`read_audio` (a file that cannot seek is read from the start, up
            to the excerpt's end, never further).
    """
    name = os.fspath(path)
    p = existing_file(name, "an audio file; give a WAV, FLAC, OGG/Vorbis or MP3 file", AudioError)
    try:
        with sf.SoundFile(name) as f:
            rate, channels = int(f.samplerate), int(f.channels)
            if channels > MAX_CHANNELS or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
                return read_audio(p, sample_rate=None, mono=mono)  # its sentence
            start = int(round(start_s * rate))
            count = int(round(length_s * rate))
            memory.require(2 * 4 * count * channels, f"Reading {length_s:g} s of {name}")
            if f.seekable():
                f.seek(min(start, max(int(f.frames), 0)))
                block = f.read(frames=count, dtype="float32", always_2d=True)
            else:
                f.read(frames=start, dtype="float32", always_2d=True)
                block = f.read(frames=count, dtype="float32", always_2d=True)
            subtype, fmt = f.subtype, f.format
    except (AudioError, MemoryLimitError):
        raise
    except (sf.SoundFileError, RuntimeError, ValueError, EOFError, OSError, TypeError) as exc:
        raise _unreadable(name, exc) from None
    if not np.isfinite(block).all():
        raise AudioError(f"{name} contains NaN or infinite samples between {start_s:g} s and "
                         f"{start_s + length_s:g} s; mosapp needs finite sample values, so repair or re-export it.")
    samples = block.mean(axis=1, dtype=np.float32)[None, :] if mono and channels > 1 else block.T
    info = AudioInfo(path=name, sample_rate=rate, channels=channels, frames=int(block.shape[0]), subtype=subtype,
                     format=fmt)
    return Audio(samples=np.ascontiguousarray(samples, dtype=np.float32), sample_rate=rate, info=info)


def read_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate: int | None = PIPELINE_SAMPLE_RATE,
    mono: bool = True,
    on_block: Callable[[np.ndarray, int, int, int], None] | None = None,
) -> Audio:
    """Reads and validates an audio file.

    Silence is not rejected here; see :func:`is_silent`.

    Args:
        path: a file soundfile can read (WAV 16/24/32-bit integer or float, FLAC,
            OGG/Vorbis, MP3).
        sample_rate: rate to resample to in Hz, or None to keep the file's rate.
        mono: average the channels into one (shape ``(1, n)``); otherwise keep them.
        on_block: called after each block is read with (the block as (channels, m) float32 at
            the file's rate, its first frame, the file's rate, the frame count its header
            promises): for showing a long file while it is read.

    Returns:
        The samples as float32 ``(channels, n)`` at ``sample_rate`` and the file's format.

    Raises:
        MemoryLimitError: the samples its header announces would take more memory than the
            ceiling (:mod:`mosapp.core.memory`); checked before any is decoded.
        AudioError: the file is missing, a pipe or device, unreadable, not audio, empty, truncated (a WAV
            whose header announces more frames than it holds), has more than
            :data:`MAX_CHANNELS` channels, a rate outside
            [:data:`MIN_SAMPLE_RATE`, :data:`MAX_SAMPLE_RATE`], or NaN/Inf samples.
        ValueError: ``sample_rate`` is not positive (a programming error).
    """
    if sample_rate is not None and sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive or None, got {sample_rate}")
    name = os.fspath(path)
    p = _openable_file(name)
    try:
        with sf.SoundFile(name) as f:
            file_rate, channels, subtype, fmt = int(f.samplerate), int(f.channels), f.subtype, f.format
            # Check the header before decoding, so a bad file is refused without
            # reading possibly hours of audio.
            _check_header(name, p, channels, file_rate)
            decoded = _read_blocks(f, name, mono=mono, sample_rate=sample_rate, on_block=on_block)
    except (AudioError, MemoryLimitError):
        raise
    except (sf.SoundFileError, RuntimeError, ValueError, EOFError, OSError, TypeError) as exc:
        # LibsndfileError (a RuntimeError) covers bad headers and decode failures
        # mid-file; the others are what a misbehaving decoder may raise instead.
        reason = _libsndfile_reason(exc)
        if "does not exist" in reason:
            # What libsndfile says when its MP3 probe of a corrupt file fails; the file exists (checked above).
            reason = "Format not recognised"
        raise AudioError(
            f"{name} cannot be read as audio ({reason}); mosapp reads {_READABLE} files."
        ) from None
    decoded.check(name, p, file_rate, fmt)
    samples = decoded.parts[0] if len(decoded.parts) == 1 else np.concatenate(decoded.parts, axis=1)
    decoded.parts.clear()

    info = AudioInfo(
        path=name,
        sample_rate=file_rate,
        channels=channels,
        frames=decoded.frames,
        subtype=subtype,
        format=fmt,
    )
    rate = file_rate
    if sample_rate is not None and sample_rate != file_rate:
        samples = resample(samples, file_rate, sample_rate)
        rate = sample_rate
    return Audio(samples=np.ascontiguousarray(samples, dtype=np.float32), sample_rate=rate, info=info)


def _openable_file(name: str) -> Path:
    """``name`` as an existing regular (or pipe-like) file this process can open, not empty."""
    p = existing_file(name, "an audio file; give a WAV, FLAC, OGG/Vorbis or MP3 file", AudioError)
    try:
        # libsndfile reports a permission problem only as "System error"; open it
        # ourselves first so the message says what is wrong.
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise AudioError(f"{name} cannot be opened ({exc.strerror or exc}).") from None
    # libsndfile says only "Format not recognised" for a 0-byte file. Regular files
    # only: a pipe (e.g. bash process substitution) also reports size 0.
    if p.is_file() and p.stat().st_size == 0:
        raise AudioError(f"{name} is empty (0 bytes); give a WAV, FLAC, OGG/Vorbis or MP3 file.")
    return p


def _check_header(name: str, p: Path, channels: int, file_rate: int) -> None:
    """Refuse more than :data:`MAX_CHANNELS` channels, or a rate mosapp does not take, in one sentence."""
    if channels > MAX_CHANNELS:
        raise AudioError(
            f"{name} has {channels} channels; mosapp processes mono or stereo audio, so mix it "
            f"down first, e.g. `sox {p.name} out{p.suffix or '.wav'} remix 1-{channels}`."
        )
    if not MIN_SAMPLE_RATE <= file_rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{name} has a sample rate of {file_rate} Hz; mosapp accepts "
            f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz, so resample it first, e.g. "
            f"`sox {p.name} -r 44100 out{p.suffix or '.wav'}`."
        )


@dataclass
class _Decoded:
    """What :func:`_read_blocks` read: the blocks kept (until the first non-finite sample), and counts."""

    parts: list[np.ndarray] = field(default_factory=list)
    frames: int = 0
    n_nan: int = 0
    n_inf: int = 0
    #: The first frame with a NaN or infinite sample (-1: none).
    first_bad: int = -1

    def check(self, name: str, p: Path, file_rate: int, fmt: str) -> None:
        """Refuse an empty or truncated file, or one with non-finite samples, in one sentence."""
        frames = self.frames
        if frames == 0:
            raise AudioError(f"{name} contains no audio samples; give a file at least one sample long.")
        announced = _wav_announced_frames(p) if fmt == "WAV" else None
        if announced is not None and frames < announced:
            # libsndfile quietly reads what is there; a cut-off file is refused, not shortened.
            raise AudioError(
                f"{name} is truncated: its header announces {announced} frames ({announced / file_rate:.3f} s) but the "
                f"file holds {frames} ({frames / file_rate:.3f} s); re-export it, or rewrite its header to what is there "
                f"(e.g. `sox {p.name} fixed.wav`)."
            )
        if self.first_bad >= 0:
            kinds = [f"{n} {kind}" for n, kind in ((self.n_nan, "NaN"), (self.n_inf, "infinite")) if n]
            raise AudioError(
                f"{name} contains {' and '.join(kinds)} sample{'s' if self.n_nan + self.n_inf > 1 else ''}, the first at "
                f"{self.first_bad / file_rate:.3f} s; mosapp needs finite sample values, so repair or re-export the file."
            )


def _read_blocks(f: sf.SoundFile, name: str, *, mono: bool, sample_rate: int | None,
                 on_block: Callable[[np.ndarray, int, int, int], None] | None) -> _Decoded:
    """Every block of the open file ``f`` (mixed down where ``mono``), within the memory ceiling."""
    file_rate, channels = int(f.samplerate), int(f.channels)
    # The memory the samples will take, from the header, before decoding any: a 6-hour
    # file is refused in a sentence, not read until memory runs out.
    announced_frames = max(int(f.frames), 0)
    out_channels = 1 if mono else channels
    need = _read_bytes(announced_frames, out_channels, file_rate, sample_rate)
    memory.require(need, f"Reading {name} ({announced_frames / file_rate / 60:.1f} minutes)")
    # Read to the actual end (a truncated file's header may promise more frames
    # than it holds; MP3 does) in blocks, mixing down and checking values per
    # block, so a long file never sits in memory twice or in float64.
    out = _Decoded()
    while True:
        job.report(out.frames, max(out.frames, int(f.frames)), "frames read")
        # f.read stops at the decoder's real end (f.blocks would trust the header).
        block = f.read(frames=_READ_BLOCK_FRAMES, dtype="float32", always_2d=True)
        if block.shape[0] == 0:
            break
        finite = np.isfinite(block)
        if not finite.all():
            nan = int(np.isnan(block).sum())
            out.n_nan += nan
            out.n_inf += int((~finite).sum()) - nan
            if out.first_bad < 0:
                out.first_bad = out.frames + int(np.argmax(~finite.all(axis=1)))
        if out.first_bad < 0:
            out.parts.append(block.mean(axis=1, dtype=np.float32)[None, :] if mono and channels > 1
                             else np.ascontiguousarray(block.T))
            if on_block is not None:
                on_block(out.parts[-1], out.frames, file_rate, int(f.frames))
        out.frames += block.shape[0]
        if out.frames > announced_frames + _READ_BLOCK_FRAMES:
            # A header that understated the length (MP3 estimates it): check as it grows.
            memory.require(_read_bytes(out.frames, out_channels, file_rate, sample_rate),
                           f"Reading {name} (more than {out.frames / file_rate / 60:.1f} minutes)")
    return out


def restore_format(samples: np.ndarray, sample_rate: int, info: AudioInfo) -> np.ndarray:
    """Gives the pipeline's output the rate, length and channel count of the input file.

    Resamples to ``info.sample_rate``, crops or zero-pads the end to exactly
    ``info.frames`` samples, then duplicates a mono signal for a stereo original
    (or averages a stereo signal for a mono original).

    Args:
        samples: ``(channels, n)`` array at ``sample_rate`` (1-D is taken as mono).
        sample_rate: rate of ``samples`` in Hz.
        info: the original file's bookkeeping from :func:`read_audio`.

    Returns:
        float32 array of shape ``(info.channels, info.frames)``.

    Raises:
        ValueError: the channel counts cannot be reconciled (a programming error).
    """
    out = resample(samples, sample_rate, info.sample_rate)
    out = _fit_length(out, info.frames)
    have, want = out.shape[0], info.channels
    if have == want:
        return np.ascontiguousarray(out, dtype=np.float32)
    if have == 1:
        return np.ascontiguousarray(np.repeat(out, want, axis=0), dtype=np.float32)
    if want == 1:
        return mix_down(out)
    raise ValueError(f"cannot turn {have} channels into {want}")


#: Frames per block of the streaming functions below (about 2 MB a channel in float32).
STREAM_BLOCK_FRAMES = 1 << 19


def resample_blocks(blocks: Iterable[np.ndarray], from_rate: int, to_rate: int, channels: int) -> Iterator[np.ndarray]:
    """:func:`resample` of the concatenation of ``blocks`` (each ``(channels, m)``), block by block:
    soxr's stream resampler at the same quality, so whole and streamed give the same samples
    (until the length: this yields what soxr gives; :func:`fit_blocks` sets it)."""
    if from_rate == to_rate:
        for b in blocks:
            yield _as_2d_float32(b)
        return
    stream = soxr.ResampleStream(from_rate, to_rate, channels, dtype="float32", quality=_SOXR_QUALITY)
    for b in blocks:
        out = stream.resample_chunk(np.ascontiguousarray(_as_2d_float32(b).T), last=False)
        if len(out):
            yield np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, channels).T)
    out = stream.resample_chunk(np.zeros((0, channels), dtype=np.float32), last=True)
    if len(out):
        yield np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, channels).T)


def fit_blocks(blocks: Iterable[np.ndarray], n: int, channels: int) -> Iterator[np.ndarray]:
    """``blocks`` cropped or zero-padded at the end to exactly ``n`` samples in all (:func:`_fit_length`, streamed)."""
    done = 0
    for b in blocks:
        if done >= n:
            continue  # drain: the source may have a tail (a codec's flush) past n
        b = b[:, : n - done]
        done += b.shape[1]
        yield b
    while done < n:
        m = min(STREAM_BLOCK_FRAMES, n - done)
        done += m
        yield np.zeros((channels, m), dtype=np.float32)


def restore_format_blocks(blocks: Iterable[np.ndarray], sample_rate: int, channels: int,
                          info: AudioInfo) -> Iterator[np.ndarray]:
    """:func:`restore_format`, block by block, for outputs too long to hold: the same rate, length
    and channel count as the input file."""
    out = fit_blocks(resample_blocks(blocks, sample_rate, info.sample_rate, channels), info.frames, channels)
    for b in out:
        if channels == info.channels:
            yield b
        elif channels == 1:
            yield np.repeat(b, info.channels, axis=0)
        elif info.channels == 1:
            yield mix_down(b)
        else:
            raise ValueError(f"cannot turn {channels} channels into {info.channels}")


def write_audio_blocks(path: str | os.PathLike[str], blocks: Iterable[np.ndarray], sample_rate: int, channels: int,
                       *, subtype: str | None = None) -> None:
    """:func:`write_audio` of the concatenation of ``blocks`` (each ``(channels, m)``), written as they
    come: an hour of audio never sits in memory. Atomic as :func:`write_audio`: an exception from
    ``blocks`` (a damaged stream found half-way) leaves no file behind and is raised as it is."""
    name = os.fspath(path)
    p = Path(name)
    fmt, subtype = _write_format(name, subtype)
    integer = _is_integer_subtype(subtype)

    def write(fh: BinaryIO) -> None:
        with _SurfacedErrors(fh) as out, sf.SoundFile(out, "w", samplerate=int(sample_rate), channels=channels,
                                                      subtype=subtype, format=fmt) as f:
            for b in blocks:
                data = _as_2d_float32(b)
                f.write(np.ascontiguousarray((np.clip(data, -1.0, 1.0) if integer else data).T))

    atomic_write(
        p, write, suffix=p.suffix.lower(), error=AudioError,
        catch=(OSError, sf.SoundFileError, RuntimeError, ValueError, TypeError),
        reason=lambda exc: exc.strerror if isinstance(exc, OSError) and exc.strerror else _libsndfile_reason(exc),
    )


class _SurfacedErrors:
    """A file object for soundfile's virtual I/O whose write errors are raised, not lost.

    libsndfile writes through a C callback: an ``OSError`` there (a full disk) is printed as
    "Exception ignored" and turns into a short write, then an ``AssertionError`` inside
    soundfile. Here the callback reports the short write quietly and the first ``OSError`` is
    raised when the write ends, so the caller's message says "No space left on device".
    """

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        if self.error is not None:
            return 0
        try:
            self._fh.write(data)
        except OSError as exc:
            self.error = exc
            return 0
        return len(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self._fh, name)

    def __enter__(self) -> _SurfacedErrors:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self.error is not None:
            raise self.error


def _write_format(name: str, subtype: str | None) -> tuple[str, str]:
    """(format, subtype) for writing ``name``, from its extension.

    Raises:
        AudioError: the extension is not supported, or the subtype does not fit the format.
    """
    ext = Path(name).suffix.lower()
    if ext not in _WRITE_FORMATS:
        raise AudioError(f"{name} has an unsupported extension; mosapp writes {_join_or(list(_WRITE_FORMATS))} files.")
    fmt, default_subtype = _WRITE_FORMATS[ext]
    subtype = (subtype or default_subtype).upper()
    if not sf.check_format(fmt, subtype):
        raise AudioError(
            f"{name} cannot be written as {subtype}; {fmt} accepts {_join_or(list(sf.available_subtypes(fmt)))}."
        )
    return fmt, subtype


def _is_integer_subtype(subtype: str) -> bool:
    """True for subtypes that store integers, where values beyond [-1, 1] wrap or clip."""
    return subtype.startswith("PCM_") or subtype in {"ULAW", "ALAW", "DWVW_12", "DWVW_16", "DWVW_24"}


def write_audio(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sample_rate: int,
    *,
    subtype: str | None = None,
) -> None:
    """Writes an audio file atomically, choosing the format from the extension.

    The data goes to a temporary file in the same folder which is then renamed over
    ``path``, so an interrupted run never leaves a half-written file behind.

    Args:
        path: destination ending in ``.wav``, ``.flac``, ``.ogg`` (or ``.mp3`` where
            libsndfile can encode it).
        samples: ``(channels, n)`` float array (1-D is taken as mono).
        sample_rate: rate in Hz.
        subtype: soundfile subtype; default ``PCM_16`` for WAV and FLAC, ``VORBIS``
            for OGG. Integer subtypes get the samples clipped to [-1, 1].

    Raises:
        AudioError: the extension is not supported, the subtype does not fit the
            format, or the file cannot be written.
    """
    name = os.fspath(path)
    p = Path(name)
    ext = p.suffix.lower()
    if ext not in _WRITE_FORMATS:
        accepted = _join_or(list(_WRITE_FORMATS))
        raise AudioError(f"{name} has an unsupported extension; mosapp writes {accepted} files.")
    fmt, default_subtype = _WRITE_FORMATS[ext]
    subtype = (subtype or default_subtype).upper()
    if not sf.check_format(fmt, subtype):
        raise AudioError(
            f"{name} cannot be written as {subtype}; {fmt} accepts {_join_or(list(sf.available_subtypes(fmt)))}."
        )

    data = _as_2d_float32(samples)
    if _is_integer_subtype(subtype):
        # libsndfile would wrap out-of-range floats into loud clicks on some builds.
        data = np.clip(data, -1.0, 1.0)
    frames_by_channels = np.ascontiguousarray(data.T)

    def write(fh: BinaryIO) -> None:
        with _SurfacedErrors(fh) as out:
            sf.write(out, frames_by_channels, int(sample_rate), subtype=subtype, format=fmt)

    atomic_write(
        p,
        write,
        suffix=ext,
        error=AudioError,
        catch=(OSError, sf.SoundFileError, RuntimeError, ValueError, TypeError),
        reason=lambda exc: exc.strerror if isinstance(exc, OSError) and exc.strerror else _libsndfile_reason(exc),
    )
