"""Gaussian-window STFT / inverse STFT in torch and the log-magnitude ⇄ grayscale image mapping.

The lattice is tifresi's ``GaussTruncTF`` (see :class:`mosapp.core.config.StftGeometry`): a
signal of ``L`` samples (``L`` a multiple of ``channels``) is treated as periodic and
analysed at ``L // hop`` frames, frame ``n`` centred on sample ``n * hop``. Coefficients
use the *time-invariant* phase convention (the DFT's time origin is the frame centre),
which is what phase-gradient integration wants::

    c[m, n] = sum_j x[n*hop + j] g[j] exp(-2i pi m j / M),   j in [-Lg/2, Lg/2)

Magnitudes equal tifresi's/ltfat's ``dgtreal`` (which uses the frequency-invariant
convention: same modulus, other phase).

The synthesis window is the minimum-norm dual window with the analysis window's support
(see :func:`_dual_window_np`), so ``istft(stft(x)) == x`` to float precision.

Shapes follow torchaudio: waveforms ``(..., time)``, spectrograms ``(..., freq, frames)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from mosapp.core import job
from mosapp.core.config import ImageMapping, StftGeometry
from mosapp.core.errors import ConfigError

#: Frames transformed at a time inside stft/synthesize (bounds their intermediates).
_CHUNK_FRAMES = 2048


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``auto`` / ``cpu`` / ``cuda`` / ``cuda:1`` into a torch device.

    Raises:
        ConfigError: CUDA was asked for and is not available, or the name is unknown.
    """
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if str(device).startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f'Device "{device}" was requested but this machine has no CUDA GPU that torch can use; use --device cpu or auto.')
        return torch.device(device)
    raise ConfigError(f'Unknown device "{device}"; known devices: auto, cpu, cuda.')


def _window_np(geometry: StftGeometry) -> np.ndarray:
    """The analysis window in *linear* layout: index k is time offset k - Lg/2 from the frame centre."""
    lg = geometry.window_length
    j = np.arange(lg, dtype=np.float64) - lg // 2
    # exp(4 ln(h) (j / Lgtrue)^2) == exp(-pi j^2 / (hop * channels)), cut at height h.
    g = np.exp(4.0 * math.log(geometry.min_height) * (j / geometry.true_window_length) ** 2)
    return g / np.linalg.norm(g)


def _dual_window_np(geometry: StftGeometry) -> np.ndarray:
    """Minimum-norm dual window with the analysis window's support (Wexler-Raz conditions).

    Synthesis tiles each frame's length-M inverse FFT over Lg samples, so sample l also
    receives aliases x[l + rM] g[l - na + rM] for |r| < Lg/M. Perfect reconstruction asks,
    for every l modulo hop and every such r, ``sum_n gamma[l - na] g[l - na + rM] = delta_r``.
    These few hundred equations are solved once; their minimum-norm solution is the
    painless dual ``g / sum_n g[. - na]^2`` plus a correction of ~1e-5.
    """
    g = _window_np(geometry)
    lg, a, m = geometry.window_length, geometry.hop, geometry.channels
    q = lg // m
    shifts = range(-(q - 1), q)
    rows, rhs = [], []
    t = np.arange(lg)
    for residue in range(a):
        for r in shifts:
            row = np.zeros(lg)
            cols = t[(t % a) == residue]
            src = cols + r * m
            ok = (src >= 0) & (src < lg)
            row[cols[ok]] = g[src[ok]]
            rows.append(row)
            rhs.append(1.0 if r == 0 else 0.0)
    gamma, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    return gamma


@lru_cache(maxsize=32)
def _cached_windows(geometry: StftGeometry, device: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.as_tensor(_window_np(geometry), dtype=dtype, device=device)
    gamma = torch.as_tensor(_dual_window_np(geometry), dtype=dtype, device=device)
    q = geometry.window_length // geometry.channels
    # Moving the DFT origin from the buffer start to the frame centre (Lg/2 samples in)
    # multiplies bin m by exp(i pi m q) = (-1)^(m q).
    m = torch.arange(geometry.bins, device=device)
    sign = (1 - 2 * ((m * q) % 2)).to(dtype)
    return g, gamma, sign


def windows(geometry: StftGeometry, device: torch.device | str = "cpu",
            dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Analysis window, synthesis (dual) window and the per-bin centre-origin sign, on ``device``."""
    return _cached_windows(geometry, str(device), dtype)


def padded_length(n_samples: int, geometry: StftGeometry) -> int:
    """Length of the zero-padded, periodic buffer the lattice analyses for ``n_samples`` of audio.

    Half a window of zeros on each side keeps the circular wrap away from the audio; the
    total is rounded up to a multiple of ``channels`` (tifresi's requirement).
    """
    lg, m = geometry.window_length, geometry.channels
    need = n_samples + lg
    return int(math.ceil(need / m) * m)


def pad_for_lattice(x: torch.Tensor, geometry: StftGeometry) -> tuple[torch.Tensor, int]:
    """Zero-pad ``x`` (..., time) to the periodic buffer; returns it and the audio's offset in it."""
    n = x.shape[-1]
    total = padded_length(n, geometry)
    left = geometry.window_length // 2
    return torch.nn.functional.pad(x, (left, total - n - left)), left


def _frames(x: torch.Tensor, geometry: StftGeometry, start: int, stop: int) -> torch.Tensor:
    """Windowed-segment buffers (..., frames, Lg) for frames [start, stop) of periodic signal x."""
    a, lg, length = geometry.hop, geometry.window_length, x.shape[-1]
    first = start * a - lg // 2
    last = (stop - 1) * a + lg // 2  # exclusive
    idx = torch.arange(first, last, device=x.device) % length
    seg = x.index_select(-1, idx) if (first < 0 or last > length) else x[..., first:last]
    return seg.unfold(-1, lg, a)


def stft(
    x: torch.Tensor,
    geometry: StftGeometry,
    frame_start: int = 0,
    frame_stop: int | None = None,
) -> torch.Tensor:
    """Complex Gaussian STFT of a periodic signal.

    Args:
        x: real tensor (..., L), L a multiple of ``geometry.channels``; its device and
            dtype (float32 or float64) are used.
        geometry: the lattice.
        frame_start, frame_stop: compute only frames [start, stop) (for block processing);
            default all ``L // hop`` frames.

    Returns:
        complex tensor (..., bins, frames).
    """
    length = x.shape[-1]
    if length % geometry.channels:
        raise ValueError(f"signal length {length} is not a multiple of {geometry.channels}")
    n_frames = length // geometry.hop
    frame_stop = n_frames if frame_stop is None else frame_stop
    g, _, sign = windows(geometry, x.device, x.dtype)
    q, m = geometry.window_length // geometry.channels, geometry.channels
    complex_dtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    out = torch.empty(*x.shape[:-1], frame_stop - frame_start, geometry.bins, dtype=complex_dtype, device=x.device)
    # In chunks of frames, so the (frames, window) intermediate stays small on long blocks.
    for c0 in range(frame_start, frame_stop, _CHUNK_FRAMES):
        c1 = min(c0 + _CHUNK_FRAMES, frame_stop)
        seg = _frames(x, geometry, c0, c1) * g
        folded = seg.reshape(*seg.shape[:-1], q, m).sum(-2)
        out[..., c0 - frame_start: c1 - frame_start, :] = torch.fft.rfft(folded, dim=-1) * sign
    return out.transpose(-1, -2)


def stft_magnitude(
    x: torch.Tensor,
    geometry: StftGeometry,
    frame_start: int = 0,
    frame_stop: int | None = None,
    *,
    length: int | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """``stft(...).abs()`` bit for bit, without the complex (bins, frames) array and, for
    audio not yet padded, without the padded copy.

    ``x`` (n,) is taken as lying at ``offset`` in a periodic buffer of ``length`` samples
    that is zero elsewhere (default: ``x`` is that buffer): ``stft_magnitude(x, g, length=
    padded_length(n, g), offset=Lg // 2)`` equals ``stft(pad_for_lattice(x, g)[0], g).abs()``.
    Each chunk of frames is transformed as :func:`stft` does (the same chunks, products,
    sums and FFT) and its modulus taken while it is time-major (the centre-origin sign
    does not change a modulus), so only a (frames, bins) real result is allocated.

    Returns:
        float32/float64 (bins, frames), a transposed view of time-major storage.
    """
    if x.dim() != 1:
        raise ValueError(f"stft_magnitude takes one channel (n,), got shape {tuple(x.shape)}")
    length = x.shape[-1] if length is None else length
    if length % geometry.channels:
        raise ValueError(f"signal length {length} is not a multiple of {geometry.channels}")
    if offset < 0 or offset + x.shape[-1] > length:
        raise ValueError(f"{x.shape[-1]} samples at offset {offset} do not fit a buffer of {length}")
    frame_stop = length // geometry.hop if frame_stop is None else frame_stop
    g, _, _ = windows(geometry, x.device, x.dtype)
    a, lg = geometry.hop, geometry.window_length
    q, m = lg // geometry.channels, geometry.channels
    out = torch.empty(frame_stop - frame_start, geometry.bins, dtype=x.dtype, device=x.device)
    whole = offset == 0 and x.shape[-1] == length
    for c0 in range(frame_start, frame_stop, _CHUNK_FRAMES):
        c1 = min(c0 + _CHUNK_FRAMES, frame_stop)
        if whole:
            seg = _frames(x, geometry, c0, c1)
        else:
            # The chunk's span of the periodic buffer, made from x and zeros (a few MB).
            first = c0 * a - lg // 2
            span = (c1 - 1 - c0) * a + lg
            buf = torch.zeros(span, dtype=x.dtype, device=x.device)
            for shift in (-length, 0, length):  # the wrap-around copies of x
                lo = max(first, offset + shift)
                hi = min(first + span, offset + shift + x.shape[-1])
                if lo < hi:
                    buf[lo - first: hi - first] = x[lo - offset - shift: hi - offset - shift]
            seg = buf.unfold(-1, lg, a)
        folded = (seg * g).reshape(c1 - c0, q, m).sum(-2)
        torch.abs(torch.fft.rfft(folded, dim=-1), out=out[c0 - frame_start: c1 - frame_start])
    return out.T


def synthesize(coeffs: torch.Tensor, geometry: StftGeometry, out: torch.Tensor, frame_start: int = 0) -> torch.Tensor:
    """Overlap-add the frames of ``coeffs`` (..., bins, frames) into periodic buffer ``out`` (..., L).

    Frame ``i`` of ``coeffs`` is lattice frame ``frame_start + i``; ``out`` is changed in
    place and returned. Each frame's inverse FFT (M samples) is periodic over the window
    buffer (Lg = q M samples), and Lg is a whole number of hops, so the synthesis is
    ``Lg / hop`` multiply-adds of (frames, hop) slabs: no (frames, Lg) intermediate and
    no per-sample scatter.
    """
    real_dtype = torch.float64 if coeffs.dtype == torch.complex128 else torch.float32
    _, gamma, sign = windows(geometry, coeffs.device, real_dtype)
    a, m, lg, length = geometry.hop, geometry.channels, geometry.window_length, out.shape[-1]
    k = lg // a
    total = coeffs.shape[-1]
    # In chunks of frames: bounded intermediates on long blocks.
    for c0 in range(0, total, _CHUNK_FRAMES):
        c1 = min(c0 + _CHUNK_FRAMES, total)
        seg = torch.fft.irfft((coeffs[..., c0:c1] * sign[:, None]).transpose(-1, -2), n=m, dim=-1)  # (..., n, M)
        n = seg.shape[-2]
        flat = torch.zeros(*seg.shape[:-2], n + k - 1, a, dtype=real_dtype, device=coeffs.device)
        for j in range(k):
            src = (j * a) % m
            flat[..., j: j + n, :] += seg[..., src: src + a] * gamma[j * a: (j + 1) * a]
        flat = flat.reshape(*seg.shape[:-2], (n + k - 1) * a)
        first = (frame_start + c0) * a - lg // 2
        span = flat.shape[-1]
        if first >= 0 and first + span <= length:
            out[..., first:first + span] += flat
        else:
            idx = torch.arange(first, first + span, device=out.device) % length
            out.index_add_(out.dim() - 1, idx, flat)
    return out


def istft(coeffs: torch.Tensor, geometry: StftGeometry, length: int | None = None) -> torch.Tensor:
    """Inverse of :func:`stft` for a full set of frames: (..., bins, frames) → (..., L)."""
    n = coeffs.shape[-1]
    length = n * geometry.hop if length is None else length
    real_dtype = torch.float64 if coeffs.dtype == torch.complex128 else torch.float32
    out = torch.zeros(*coeffs.shape[:-2], length, dtype=real_dtype, device=coeffs.device)
    return synthesize(coeffs, geometry, out)


# --------------------------------------------------------------------------- image mapping


@dataclass(frozen=True)
class ImageScale:
    """What decoding needs to turn an image back into absolute magnitudes.

    Attributes:
        top_db: the clip's peak magnitude in dB (re 1.0), mapped to pixel 1.
        dynamic_range_db: dB span mapped to [0, 1]; pixel 0 is ``top_db - dynamic_range_db``.
    """

    top_db: float
    dynamic_range_db: float

    def as_dict(self) -> dict[str, float]:
        return {"top_db": self.top_db, "dynamic_range_db": self.dynamic_range_db}


#: The image mapping used where none is given (100 dB of dynamic range).
DEFAULT_MAPPING = ImageMapping()

#: ``top_db`` values an image scale may have: from the mapping's absolute floor (-160 dB, an
#: all-silent clip) to 120 dB (samples a million times full scale; louder is refused on encoding).
TOP_DB_RANGE = (DEFAULT_MAPPING.floor_db, 120.0)


def image_scale_for(peak_magnitude: float, mapping: ImageMapping = DEFAULT_MAPPING) -> ImageScale:
    """The scale that maps a clip whose largest magnitude is ``peak_magnitude`` to [0, 1]."""
    floor = 10.0 ** (mapping.floor_db / 20.0)
    top_db = 20.0 * math.log10(max(float(peak_magnitude), floor))
    return ImageScale(top_db=top_db, dynamic_range_db=mapping.dynamic_range_db)


def magnitude_to_image(magnitude: torch.Tensor, scale: ImageScale) -> torch.Tensor:
    """Log-magnitude grayscale image in [0, 1]: ``clip((dB - top_db) / range + 1, 0, 1)``."""
    floor = 10.0 ** ((scale.top_db - scale.dynamic_range_db - 1.0) / 20.0)
    db = 20.0 * torch.log10(magnitude.clamp_min(floor))
    return ((db - scale.top_db) / scale.dynamic_range_db + 1.0).clamp(0.0, 1.0)


def image_to_magnitude(image: torch.Tensor, scale: ImageScale) -> torch.Tensor:
    """Inverse of :func:`magnitude_to_image`; pixel 0 becomes exact zero magnitude (silence)."""
    db = (image - 1.0) * scale.dynamic_range_db + scale.top_db
    mag = torch.pow(10.0, db / 20.0)
    return torch.where(image > 0, mag, torch.zeros_like(mag))


def spectrogram_image(
    x: torch.Tensor,
    geometry: StftGeometry,
    mapping: ImageMapping = DEFAULT_MAPPING,
    *,
    chunk_frames: int = 8192,
    rows: tuple[int, int] | None = None,
    progress: tuple[str, str] | None = None,
) -> tuple[list[torch.Tensor], ImageScale]:
    """The spectrogram-to-image step: pad → STFT magnitude → peak → scale → image.

    ``x`` (n,) is padded to the lattice (:func:`pad_for_lattice`) and analysed in chunks of
    ``chunk_frames`` frames; the largest magnitude gives the clip's own :class:`ImageScale`
    (:func:`image_scale_for` with ``mapping``), and each chunk becomes its part of the
    [0, 1] image (:func:`magnitude_to_image`). Every codec, and training, makes its images
    here, so an image means the same thing wherever it is made.

    Args:
        x: one channel of audio at the geometry's rate, on the working device.
        geometry: the lattice.
        mapping: the image's dynamic range.
        chunk_frames: frames per STFT call and per returned chunk (a codec's tile size).
        rows: ``(first, stop)``: keep rows ``[0, stop)``, take the peak over rows
            ``[first, stop)`` and make the rows below ``first`` black (a band that has
            nothing there); default all rows.
        progress: the units :func:`mosapp.core.job.report` counts frames in while the
            magnitudes are measured and while the image is made; default no reports.

    Returns:
        (the image's chunks, float32 (rows, frames of the chunk) each, in order; its scale).
    """
    first, stop = (0, geometry.bins) if rows is None else rows
    xp, _ = pad_for_lattice(x, geometry)
    n_frames = geometry.frames_for(xp.shape[-1])
    spans = [(t0, min(t0 + chunk_frames, n_frames)) for t0 in range(0, n_frames, chunk_frames)]
    chunks: list[torch.Tensor] = []
    peak = 0.0
    for t0, t1 in spans:
        if progress is not None:
            job.report(t0, n_frames, progress[0])
        magnitude = stft(xp, geometry, t0, t1).abs()[:stop]
        peak = max(peak, float(magnitude[first:].max()))
        chunks.append(magnitude)
    scale = image_scale_for(peak, mapping)
    for i, (t0, _) in enumerate(spans):
        if progress is not None:
            job.report(t0, n_frames, progress[1])
        image = magnitude_to_image(chunks[i], scale)
        if first:
            image[:first] = 0.0
        chunks[i] = image
    return chunks, scale
