"""Objective quality metrics: every figure mosapp reports, its definition and the one function that computes it.

:data:`METRICS` is the registry: for each metric its name (the key in every table, database
column and export), unit, direction (which way is better), a one-sentence definition and its
function. :func:`score` computes the requested ones of a decoded signal against its reference;
:mod:`mosapp.evaluation.evaluate` has the same figures a chunk at a time, for a long track.

Two words once had two meanings each and are now two names each:

* bitrate: ``file_kbps`` counts the whole ``.sgc`` file (container header included);
  ``payload_kbps`` only the codec's payload (what a study database stores per stimulus);
* consistency: ``decoded_consistency`` is that of the decoded audio's spectrogram (the codec
  table, the app); ``target_consistency`` that of the magnitude the phase reconstruction is
  asked to invert (a round trip's target: a property of its input, not of its output).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import scipy.fft
import soxr
import torch

from mosapp.core import job
from mosapp.core.config import get_geometry
from mosapp.core.dsp import pad_for_lattice, resolve_device, stft
from mosapp.core.errors import MosappError

#: Window lengths (= FFT sizes) of the multi-scale mel distance, as in DAC's evaluation.
MEL_WINDOW_LENGTHS: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048)
#: Mel bands per scale, paired with :data:`MEL_WINDOW_LENGTHS`.
MEL_N_MELS: tuple[int, ...] = (5, 10, 20, 40, 80, 160, 320)
#: Floor applied to mel magnitudes before the log10 (DAC's ``clamp_eps``).
MEL_CLAMP_EPS: float = 1e-5

#: Rate ViSQOL's audio mode is defined at; inputs are resampled to it.
VISQOL_SAMPLE_RATE: int = 48_000
#: Shortest input ViSQOL audio mode accepts: 45 frames of 80 ms hopped by 20 ms is 0.96 s.
VISQOL_MIN_SECONDS: float = 1.0

#: Relative magnitude floor of :func:`log_spectrogram_for_consistency`; tifresi's default
#: ``stft_dynamic_range_dB = 50`` gives ``10 ** (-50 / 10)``.
CONSISTENCY_RELATIVE_FLOOR: float = 1e-5


def _to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` (numpy array, torch tensor or sequence) as a float64/complex128 numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if np.iscomplexobj(arr):
        return arr.astype(np.complex128, copy=False)
    return arr.astype(np.float64, copy=False)


def spectral_convergence_db(reference_magnitude: Any, estimate_magnitude: Any) -> float:
    """Spectral convergence of an estimated magnitude spectrogram, in dB.

    ``SC = 20 log10( || |R| - |E| ||_F / || |R| ||_F )`` where ``R`` is the reference
    and ``E`` the estimate, both of any (equal) shape, numpy or torch, real or complex
    (the modulus is taken first). This is exactly ``-tifresi.metrics.projection_loss(R, E)``.

    Direction: lower is better (e.g. -25 dB means the error has 5.6 % of the reference's
    energy norm). An exact match gives ``-inf``; a silent reference (norm 0) gives ``nan``.

    Args:
        reference_magnitude: reference spectrogram (magnitudes or complex STFT).
        estimate_magnitude: estimated spectrogram of the same shape.

    Returns:
        Spectral convergence in dB (float; ``-inf`` for identical inputs, ``nan`` for a
        silent reference).

    Raises:
        MosappError: the two spectrograms have different shapes.
    """
    ref = np.abs(_to_numpy(reference_magnitude))
    est = np.abs(_to_numpy(estimate_magnitude))
    if ref.shape != est.shape:
        raise MosappError(
            f"Spectral convergence needs spectrograms of equal shape, got {ref.shape} and {est.shape}."
        )
    ref_norm = float(np.linalg.norm(ref.ravel()))
    if ref_norm == 0.0:
        return math.nan
    err_norm = float(np.linalg.norm((ref - est).ravel()))
    if err_norm == 0.0:
        return -math.inf
    return 20.0 * math.log10(err_norm / ref_norm)


def si_sdr_db(reference: Any, estimate: Any) -> float:
    """Scale-invariant signal-to-distortion ratio (Le Roux et al., 2019), in dB.

    Both signals are made zero-mean along their last (time) axis, then flattened (so a
    ``(channels, samples)`` pair is scored as one long signal). With ``s`` the reference
    and ``ŝ`` the estimate::

        alpha = (<ŝ, s> + eps) / (||s||^2 + eps)
        e_target = alpha * s,   e_res = ŝ - e_target
        SI-SDR = 10 log10( (||e_target||^2 + eps) / (||e_res||^2 + eps) )

    with ``eps = 2.22e-16`` (float64 machine epsilon) so silent inputs give a finite
    value. Direction: higher is better; it ignores the estimate's gain and is very
    sensitive to phase (a PGHI reconstruction with correct magnitudes but drifting phase
    can score near or below 0 dB). Identical signals score about ``10 log10(||s||^2 / eps)``
    (well above 100 dB for audio-level signals).

    Args:
        reference: reference waveform, shape ``(n,)`` or ``(channels, n)``.
        estimate: estimated waveform of the same shape.

    Returns:
        SI-SDR in dB.

    Raises:
        MosappError: the two waveforms have different shapes.
    """
    # Keep the inputs' dtype: chunks are promoted to float64 below, never whole tracks.
    ref = np.asarray(reference.detach().cpu().numpy() if hasattr(reference, "detach") else reference).real
    est = np.asarray(estimate.detach().cpu().numpy() if hasattr(estimate, "detach") else estimate).real
    if ref.shape != est.shape:
        raise MosappError(f"SI-SDR needs waveforms of equal shape, got {ref.shape} and {est.shape}.")
    if ref.size == 0:
        raise MosappError("SI-SDR needs non-empty waveforms.")
    eps = float(np.finfo(np.float64).eps)
    # Zero-mean inner products from plain sums, accumulated in float64 over chunks, so a
    # 10-minute track needs no full-length temporaries:
    # <e', r'> = sum(e r) - n mean(e) mean(r), and ||e' - a r'||^2 expands the same way.
    ref2 = ref.reshape(-1, ref.shape[-1]) if ref.ndim > 1 else ref[None, :]
    est2 = est.reshape(-1, est.shape[-1]) if est.ndim > 1 else est[None, :]
    er = rr = ee = 0.0
    chunk = 1 << 20
    for r_row, e_row in zip(ref2, est2):
        n = r_row.shape[-1]
        mean_r = float(np.mean(r_row, dtype=np.float64))
        mean_e = float(np.mean(e_row, dtype=np.float64))
        s_er = s_rr = s_ee = 0.0
        for start in range(0, n, chunk):
            r = r_row[start: start + chunk].astype(np.float64)
            e = e_row[start: start + chunk].astype(np.float64)
            s_er += float(np.dot(e, r))
            s_rr += float(np.dot(r, r))
            s_ee += float(np.dot(e, e))
        er += s_er - n * mean_e * mean_r
        rr += s_rr - n * mean_r * mean_r
        ee += s_ee - n * mean_e * mean_e
    alpha = (er + eps) / (rr + eps)
    target = alpha * alpha * rr
    residual = max(ee - 2.0 * alpha * er + alpha * alpha * rr, 0.0)
    return 10.0 * math.log10((target + eps) / (residual + eps))


@functools.cache
def _mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-style mel filterbank ``(n_mels, n_fft // 2 + 1)`` from librosa, cached.

    ``librosa.filters.mel(sr, n_fft, n_mels, fmin=0, fmax=sr/2, htk=False, norm='slaney')``,
    the same call descript-audiotools makes. librosa's "empty filters" warning (narrow
    low bands at the 320-band scale) is silenced; DAC evaluates with the same filters.
    """
    import librosa  # noqa: PLC0415 — heavy (numba, ~1 s), loaded when the first mel filterbank is built

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        filters = librosa.filters.mel(
            sr=sample_rate,
            n_fft=n_fft,
            n_mels=n_mels,
            fmin=0.0,
            fmax=sample_rate / 2.0,
            htk=False,
            norm="slaney",
        )
    filters = np.asarray(filters, dtype=np.float32)
    filters.setflags(write=False)
    return filters


def _as_tensor(x: Any):
    """``x`` as a torch tensor (detached if it already is one, float32 if it comes from numpy)."""
    if torch.is_tensor(x):
        return x.detach()
    return torch.from_numpy(np.ascontiguousarray(_to_numpy(x).real, dtype=np.float32))


def mel_distance(reference: Any, estimate: Any, sample_rate: int, *, device: Any = "cpu") -> float:
    """Multi-scale log-mel L1 distance, as in DAC's evaluation (``MelSpectrogramLoss``).

    For each scale ``(w, m)`` in ``zip(MEL_WINDOW_LENGTHS, MEL_N_MELS)`` =
    ``(32, 5), (64, 10), (128, 20), (256, 40), (512, 80), (1024, 160), (2048, 320)``:

    * STFT with ``torch.stft(n_fft=w, hop_length=w // 4, window=hann(w, periodic))``,
      ``center=True`` with reflect padding, magnitude ``|X|`` (power 1);
    * mel magnitude ``M = F_m |X|`` with ``F_m = librosa.filters.mel(sr, n_fft=w, n_mels=m,
      fmin=0, fmax=sr/2)`` (Slaney mel scale, ``norm='slaney'``);
    * ``d_w = mean | log10(max(M_ref, 1e-5)) - log10(max(M_est, 1e-5)) |`` over bands,
      frames and channels.

    ``distance = sum_w d_w`` (DAC's ``log_weight = 1``, ``mag_weight = 0``, ``pow = 1``).
    Units: summed mean absolute log10-magnitude differences (dimensionless, "decades").
    Direction: lower is better; 0 for identical signals. Computed in float32 like DAC.
    The value depends on the absolute level (the 1e-5 floor), so compare signals at the
    same scale (full scale = 1.0).

    Args:
        reference: reference waveform, numpy or torch, shape ``(n,)`` or ``(channels, n)``.
        estimate: estimated waveform of the same shape.
        sample_rate: sample rate of both signals in Hz (sets the mel filterbank).
        device: torch device to compute on: ``'cpu'`` (default), ``'cuda'``, ``'cuda:N'``
            or ``'auto'`` (CUDA when present).

    Returns:
        The mel distance (the mean over channels of each channel's distance).

    Raises:
        MosappError: shapes differ, are not 1-D/2-D, or the signal is too short
            (the 2048-sample scale needs more than 1024 samples for reflect padding).
        ConfigError: the device is unknown or CUDA is not available.
    """
    dev = resolve_device(device)
    ref = _as_tensor(reference)
    est = _as_tensor(estimate)
    if tuple(ref.shape) != tuple(est.shape):
        raise MosappError(
            f"Mel distance needs waveforms of equal shape, got {tuple(ref.shape)} and {tuple(est.shape)}."
        )
    if ref.ndim not in (1, 2):
        raise MosappError(
            f"Mel distance needs waveforms shaped (samples,) or (channels, samples), got {tuple(ref.shape)}."
        )
    min_samples = max(MEL_WINDOW_LENGTHS) // 2 + 1
    if ref.shape[-1] < min_samples:
        raise MosappError(f"Mel distance needs at least {min_samples} samples per channel, got {ref.shape[-1]}.")
    ref = ref.to(device=dev, dtype=torch.float32).reshape(-1, ref.shape[-1])
    est = est.to(device=dev, dtype=torch.float32).reshape(-1, est.shape[-1])
    both = torch.cat([ref, est], dim=0)
    n_channels = ref.shape[0]

    total = torch.zeros(n_channels, dtype=torch.float64, device=dev)
    with torch.no_grad():
        for window_length, n_mels in zip(MEL_WINDOW_LENGTHS, MEL_N_MELS):
            job.check()  # a cancelled run stops between scales (mosapp.core.job)
            logs = log_mel(both, sample_rate, window_length, n_mels)
            diff = (logs[:n_channels] - logs[n_channels:]).abs()
            total += diff.mean(dim=(1, 2)).to(torch.float64)
    return float(total.mean().item())


def log_mel(signals: torch.Tensor, sample_rate: int, window_length: int, n_mels: int) -> torch.Tensor:
    """One scale of :func:`mel_distance`: ``log10(max(F_m |X|, 1e-5))`` of float32 signals
    ``(c, n)``, shaped ``(c, n_mels, frames)``, on the signals' device."""
    window = torch.hann_window(window_length, periodic=True, dtype=torch.float32, device=signals.device)
    spec = torch.stft(
        signals,
        n_fft=window_length,
        hop_length=window_length // 4,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    ).abs()  # (c, bins, frames)
    filters = torch.from_numpy(_mel_filters(int(sample_rate), window_length, n_mels).copy()).to(signals.device)
    return torch.log10(torch.matmul(filters, spec).clamp(min=MEL_CLAMP_EPS))


def log_spectrogram_for_consistency(magnitude: Any, floor: float = CONSISTENCY_RELATIVE_FLOOR) -> np.ndarray:
    """The log spectrogram :func:`consistency` expects, in tifresi's convention.

    ``L = 10 log10( max(|S|, floor * max|S|) )``: tifresi's
    ``transforms.log_spectrogram(S, dynamic_range_dB=50)``, the representation its
    examples feed to ``metrics.consistency``. Note the factor is 10 (not 20) on a
    *magnitude*, and the floor is relative to the peak: the default ``1e-5`` equals
    tifresi's 50 "dB" dynamic range (100 dB in magnitude terms).

    Args:
        magnitude: magnitude (or complex) spectrogram ``(freq, time)``, numpy or torch.
        floor: magnitude floor relative to the spectrogram's peak, in (0, 1].

    Returns:
        float64 array of the same shape.

    Raises:
        MosappError: the floor is not in (0, 1].
    """
    if not 0.0 < floor <= 1.0:
        raise MosappError(f"The consistency log floor must be in (0, 1], got {floor}.")
    mag = np.abs(_to_numpy(magnitude))
    minimum = np.max(mag) * floor if mag.size else 0.0
    if minimum <= 0.0:
        minimum = np.finfo(np.float64).tiny  # silent spectrogram: keep the log finite
    return 10.0 * np.log10(np.clip(mag, a_min=minimum, a_max=None))


def _standardize(values: np.ndarray) -> np.ndarray:
    """Subtract the mean and divide by the l2 norm of the centred values."""
    centred = values - np.mean(values, keepdims=True)
    return centred / np.sqrt(np.sum(np.abs(centred) ** 2, keepdims=True))


def consistency(log_spectrogram: Any) -> float:
    """Spectrogram consistency (Marafioti et al., 2019), the seed's metric; same as ``tifresi.metrics.consistency``.

    Input ``L`` is tifresi's log spectrogram ``10 log10 |S|`` (see
    :func:`log_spectrogram_for_consistency`), shape ``(freq, time)``. With
    ``D = ln |S| = ln(10 ** (L / 10))`` and ``m, n`` over interior bins and frames::

        D_tt[m, n] = D[m, n-1] - 2 D[m, n] + D[m, n+1] + pi/4
        D_ff[m, n] = D[m-1, n] - 2 D[m, n] + D[m+1, n] + pi/4
        a = |D_tt|,  b = |D_ff|
        consistency = sum( (a - mean a) / ||a - mean a||_2  *  (b - mean b) / ||b - mean b||_2 )

    i.e. the Pearson correlation of the absolute second time and frequency derivatives of
    the log-magnitude. For a Gaussian-window STFT these derivatives are tied to each
    other, so a magnitude that comes from a real signal correlates strongly; a value in
    [-1, 1]. Direction: higher is more consistent (closer to a real STFT). It is
    unit-free and invariant to the spectrogram's gain, but depends on the lattice (the
    ``pi/4`` offset assumes tifresi's geometry) and on the log floor. A constant
    spectrogram has undefined correlation and gives ``nan``.

    Args:
        log_spectrogram: ``10 log10 |S|`` as a 2-D array ``(freq, time)``, at least 3 x 3.

    Returns:
        The consistency, a float in [-1, 1] (or ``nan``).

    Raises:
        MosappError: the input is not 2-D or is smaller than 3 x 3.
    """
    log10_spec = _to_numpy(log_spectrogram).real
    if log10_spec.ndim != 2 or min(log10_spec.shape) < 3:
        raise MosappError(
            f"Consistency needs a 2-D (freq, time) log spectrogram of at least 3 x 3, got shape {log10_spec.shape}."
        )
    # Same operations, in the same order, as tifresi (np.log of inv_log_spectrogram).
    log_spec = np.log(10 ** (log10_spec / 10))
    centre = log_spec[1:-1, 1:-1]
    ttderiv = log_spec[1:-1, :-2] - 2 * centre + log_spec[1:-1, 2:] + np.pi / 4
    ffderiv = log_spec[:-2, 1:-1] - 2 * centre + log_spec[2:, 1:-1] + np.pi / 4
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.sum(_standardize(np.abs(ttderiv)) * _standardize(np.abs(ffderiv)))
    return float(value)


@functools.lru_cache(maxsize=1)
def _visqol_api():
    """A ViSQOL v3 audio-mode API object (bundled SVR model), created once per process."""
    try:
        from visqol import VisqolApi  # noqa: PLC0415 — optional dependency (visqol-python)
    except ImportError:
        raise MosappError(
            "ViSQOL is not installed; install the visqol-python package to compute the visqol metric."
        ) from None
    api = VisqolApi()
    api.create(mode="audio")
    return api


def _mono_48k(x: Any, sample_rate: int) -> np.ndarray:
    """Mix ``(n,)`` or ``(channels, n)`` to mono (mean of channels) and resample to 48 kHz with soxr."""
    arr = _to_numpy(x).real
    if arr.ndim == 2:
        arr = arr.mean(axis=0)
    elif arr.ndim != 1:
        raise MosappError(f"ViSQOL needs waveforms shaped (samples,) or (channels, samples), got {arr.shape}.")
    if sample_rate != VISQOL_SAMPLE_RATE:
        arr = soxr.resample(arr, sample_rate, VISQOL_SAMPLE_RATE)
    return np.ascontiguousarray(arr, dtype=np.float64)


def visqol(reference: Any, estimate: Any, sample_rate: int) -> float:
    """ViSQOL v3 audio-mode MOS-LQO of ``estimate`` against ``reference``.

    Both signals are mixed to mono (mean of channels), resampled to 48 kHz with soxr
    (default "HQ" quality) and scored by ``visqol-python`` (a Python port of Google's
    ViSQOL v3.3.3): ``VisqolApi().create(mode="audio")`` then
    ``measure_from_arrays(ref, deg, 48000).moslqo``. Audio mode uses a 32-band gammatone
    spectrogram (50 Hz .. 24 kHz) with 80 ms windows and 20 ms hops, 30-frame patches,
    global alignment, NSIM similarity and the bundled SVR model mapping to MOS.
    Samples are taken as floats at full scale 1.0. Direction: higher is better, 1..5;
    identical signals score about 4.73 (the model's ceiling). The first call in a fresh
    environment JIT-compiles numba kernels (about 10 s); the cache then makes it fast.

    Args:
        reference: reference waveform, numpy or torch, shape ``(n,)`` or ``(channels, n)``.
        estimate: estimated waveform, same layout (lengths may differ slightly; ViSQOL aligns).
        sample_rate: sample rate of both signals in Hz.

    Returns:
        MOS-LQO, a float in [1, 5].

    Raises:
        MosappError: visqol-python is missing, or a signal is shorter than 1 s.
    """
    api = _visqol_api()
    if sample_rate <= 0:
        raise MosappError(f"ViSQOL needs a positive sample rate, got {sample_rate}.")
    ref = _mono_48k(reference, sample_rate)
    est = _mono_48k(estimate, sample_rate)
    shortest = min(ref.size, est.size) / VISQOL_SAMPLE_RATE
    if shortest < VISQOL_MIN_SECONDS:
        raise MosappError(
            f"ViSQOL needs at least {VISQOL_MIN_SECONDS:g} s of audio, got {shortest:.3f} s."
        )
    return float(api.measure_from_arrays(ref, est, VISQOL_SAMPLE_RATE).moslqo)


@dataclass
class Metrics:
    """One round trip's scores (:func:`mosapp.pipeline.roundtrip`); ``None`` where a metric was not computed.

    The fields are names of :data:`METRICS` (see there for units, directions and definitions);
    ``spectral_convergence_db`` is of the reconstruction against the round trip's target
    magnitude, ``target_consistency`` is of that target (not of the reconstruction).
    """

    spectral_convergence_db: float | None = None
    si_sdr_db: float | None = None
    mel_distance: float | None = None
    target_consistency: float | None = None
    visqol: float | None = None
    low_band_distance_db: float | None = None
    low_band_correlation: float | None = None
    high_band_distance_db: float | None = None
    high_band_correlation: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        """The scores as a ``{name: value}`` dict of plain Python floats (or ``None``), in field order."""
        return {key: (None if value is None else float(value)) for key, value in asdict(self).items()}


#: Analysis of the band metrics (:func:`band_metrics`, :func:`band_spectral_distance_db`,
#: :func:`band_spectral_correlation`): a 4096-sample periodic Hann window hopped by 1024 samples, at this rate.
BAND_SAMPLE_RATE: int = 44_100
BAND_WINDOW_LENGTH: int = 4096
BAND_HOP: int = 1024
#: Both dB spectrograms are floored at the reference's peak minus this many dB.
BAND_FLOOR_DB: float = 80.0
#: The low band is [20, 1000] Hz (bins 2..92 of the 4096-point STFT); the high band is
#: [1000 Hz, Nyquist] (bins 93..2048). No bin centre falls on 20 or 1000 Hz, so the bands are disjoint.
LOW_BAND_HZ: tuple[float, float] = (20.0, 1000.0)
HIGH_BAND_HZ: tuple[float, float] = (1000.0, BAND_SAMPLE_RATE / 2)
#: The four figures :func:`band_metrics` returns, as named in :class:`Metrics` and every table.
BAND_METRIC_NAMES: tuple[str, ...] = ("low_band_distance_db", "low_band_correlation",
                                      "high_band_distance_db", "high_band_correlation")
#: Frames transformed at once (bounds memory: about 40 MB per chunk for the pair).
_BAND_FRAMES_PER_CHUNK = 512
#: A frame whose floored band spectrum has a centred norm below this (dB) counts as constant.
_FLAT_NORM_DB = 1e-6


def _band_window() -> np.ndarray:
    n = np.arange(BAND_WINDOW_LENGTH)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / BAND_WINDOW_LENGTH)).astype(np.float32)


def _band_signal(x: Any, sample_rate: int) -> np.ndarray:
    """``x`` as a float32 ``(channels, n)`` array at :data:`BAND_SAMPLE_RATE` (no copy when it already is)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if np.iscomplexobj(arr):
        arr = arr.real
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise MosappError(f"Band metrics need waveforms shaped (samples,) or (channels, samples), got {arr.shape}.")
    arr = arr.astype(np.float32, copy=False)
    if int(sample_rate) <= 0:
        raise MosappError(f"Band metrics need a positive sample rate, got {sample_rate}.")
    if int(sample_rate) != BAND_SAMPLE_RATE:
        arr = np.ascontiguousarray(soxr.resample(arr.T, int(sample_rate), BAND_SAMPLE_RATE, quality="VHQ").T,
                                   dtype=np.float32)
    return arr


def _band_frame_count(n: int) -> int:
    """Whole frames of a signal of ``n`` samples (one, zero-padded, if it is shorter than a window)."""
    return 1 if n < BAND_WINDOW_LENGTH else 1 + (n - BAND_WINDOW_LENGTH) // BAND_HOP


def _band_db_frames(x: np.ndarray, f0: int, f1: int, window: np.ndarray, *, power: bool = False) -> np.ndarray:
    """``20 log10 |STFT|`` of frames [f0, f1) of the mono mix of ``x`` (channels, n): float32 (frames, 2049)
    (``power``: ``|STFT|^2`` instead, without the logarithm)."""
    s0 = f0 * BAND_HOP
    s1 = (f1 - 1) * BAND_HOP + BAND_WINDOW_LENGTH
    seg = x[:, s0:s1]
    seg = seg[0] if seg.shape[0] == 1 else seg.mean(axis=0, dtype=np.float32)  # the mono mix, chunk by chunk
    if seg.shape[-1] < s1 - s0:
        seg = np.pad(seg, (0, s1 - s0 - seg.shape[-1]))
    frames = np.lib.stride_tricks.sliding_window_view(seg, BAND_WINDOW_LENGTH)[::BAND_HOP] * window
    spec = scipy.fft.rfft(frames, axis=-1)
    out = np.square(spec.real)
    out += np.square(spec.imag)
    if power:
        return out
    np.maximum(out, np.float32(1e-30), out=out)  # (far below any reference's peak - 80 dB)
    np.log10(out, out=out)
    out *= np.float32(10.0)
    return out


def _band_bins(band_hz: tuple[float, float]) -> slice:
    """The STFT bins whose centre frequency lies in ``band_hz`` (inclusive), as a slice."""
    lo, hi = float(band_hz[0]), float(band_hz[1])
    if not 0.0 <= lo < hi:
        raise MosappError(f"A band needs 0 <= low < high Hz, got {band_hz}.")
    df = BAND_SAMPLE_RATE / BAND_WINDOW_LENGTH
    first = max(0, math.ceil(lo / df - 1e-9))
    last = min(BAND_WINDOW_LENGTH // 2, math.floor(hi / df + 1e-9))
    if last < first:
        raise MosappError(f"The band {lo:g}-{hi:g} Hz holds no bin of the {BAND_WINDOW_LENGTH}-point STFT.")
    return slice(first, last + 1)


def band_scores(
    reference: Any, estimate: Any, sample_rate: int, bands: tuple[tuple[float, float], ...] = (LOW_BAND_HZ, HIGH_BAND_HZ)
) -> list[tuple[float, float]]:
    """``(distance_dB, correlation)`` of each band in ``bands``: one chunked pass over both signals.

    The definitions are :func:`band_spectral_distance_db` and :func:`band_spectral_correlation`.
    Memory is bounded by :data:`_BAND_FRAMES_PER_CHUNK` frames, not by the signals' length: a first
    pass finds the reference's peak (which sets the floor), a second one accumulates per band the
    sum of |ΔdB| and the per-frame correlations.
    """
    ref = _band_signal(reference, sample_rate)
    est = _band_signal(estimate, sample_rate)
    if ref.shape != est.shape:
        raise MosappError(f"Band metrics need waveforms of equal shape, got {ref.shape} and {est.shape}.")
    if ref.shape[-1] == 0:
        raise MosappError("Band metrics need non-empty waveforms.")
    slices = [_band_bins(b) for b in bands]
    window = _band_window()
    n_frames = _band_frame_count(ref.shape[-1])
    chunks = [(f, min(n_frames, f + _BAND_FRAMES_PER_CHUNK)) for f in range(0, n_frames, _BAND_FRAMES_PER_CHUNK)]
    peak_power = 0.0
    for k, (f0, f1) in enumerate(chunks):
        job.report(k, 2 * len(chunks), "band chunks")  # a cancelled run stops here (mosapp.core.job)
        peak_power = max(peak_power, float(_band_db_frames(ref, f0, f1, window, power=True).max()))
    floor = np.float32(10.0 * math.log10(max(peak_power, 1e-30)) - BAND_FLOOR_DB)
    abs_sum = [0.0] * len(bands)
    corr_sum = [0.0] * len(bands)
    corr_frames = [0] * len(bands)
    for k, (f0, f1) in enumerate(chunks):
        job.report(len(chunks) + k, 2 * len(chunks), "band chunks")
        ref_db = np.maximum(_band_db_frames(ref, f0, f1, window), floor)
        est_db = np.maximum(_band_db_frames(est, f0, f1, window), floor)
        for i, sl in enumerate(slices):
            r = ref_db[:, sl].astype(np.float64)
            e = est_db[:, sl].astype(np.float64)
            abs_sum[i] += float(np.abs(r - e).sum())
            r -= r.mean(axis=1, keepdims=True)
            e -= e.mean(axis=1, keepdims=True)
            r_norm = np.sqrt((r * r).sum(axis=1))
            e_norm = np.sqrt((e * e).sum(axis=1))
            r_flat, e_flat = r_norm < _FLAT_NORM_DB, e_norm < _FLAT_NORM_DB
            with np.errstate(invalid="ignore", divide="ignore"):
                per_frame = (r * e).sum(axis=1) / (r_norm * e_norm)
            per_frame = np.where(r_flat ^ e_flat, 0.0, np.clip(per_frame, -1.0, 1.0))[~(r_flat & e_flat)]
            corr_sum[i] += float(per_frame.sum())
            corr_frames[i] += int(per_frame.size)
    out = []
    for i, sl in enumerate(slices):
        cells = n_frames * (sl.stop - sl.start)
        out.append((abs_sum[i] / cells, corr_sum[i] / corr_frames[i] if corr_frames[i] else math.nan))
    return out


def band_db(x: Any, sample_rate: int) -> np.ndarray:
    """The dB spectrogram the band metrics compare, unfloored: ``20 log10 |STFT|`` of the mono mix of
    ``x`` at :data:`BAND_SAMPLE_RATE` (4096-sample Hann window, hop 1024, whole frames from sample 0),
    float32 ``(frames, 2049)``. The metrics floor it at the reference's peak minus :data:`BAND_FLOOR_DB`.
    For fitting and diagnosis; the metrics themselves go through :func:`band_scores` in bounded memory."""
    signal = _band_signal(x, sample_rate)
    return _band_db_frames(signal, 0, _band_frame_count(signal.shape[-1]), _band_window())


def band_metrics(reference: Any, estimate: Any, sample_rate: int) -> dict[str, float]:
    """The four band figures of ``estimate`` against ``reference``, keyed by :data:`BAND_METRIC_NAMES`.

    ``low_band_distance_db`` / ``low_band_correlation`` over [20, 1000] Hz and
    ``high_band_distance_db`` / ``high_band_correlation`` over [1000 Hz, Nyquist]; definitions in
    :func:`band_spectral_distance_db` and :func:`band_spectral_correlation`. One chunked pass
    (memory bounded for a 10-minute track).
    """
    (low_d, low_c), (high_d, high_c) = band_scores(reference, estimate, sample_rate, (LOW_BAND_HZ, HIGH_BAND_HZ))
    return dict(zip(BAND_METRIC_NAMES, (low_d, low_c, high_d, high_c)))


def band_spectral_distance_db(
    reference: Any, estimate: Any, sample_rate: int, band_hz: tuple[float, float] = LOW_BAND_HZ
) -> float:
    """Log-spectral distance in one frequency band, in dB (the low band by default).

    Definition (issue "seeing low frequencies"):

    * both signals at 44.1 kHz (resampled with soxr VHQ otherwise); ``(channels, n)`` input is
      mixed to mono (the mean of the channels) first;
    * STFT with a 4096-sample periodic Hann window ``w[n] = 0.5 - 0.5 cos(2 pi n / 4096)``, hop
      1024, frames from sample 0, whole frames only (a signal shorter than one window is
      zero-padded to one), no centre padding, no window normalisation; ``D = 20 log10 |X|``;
    * both ``D_ref`` and ``D_est`` floored at ``max(D_ref) - 80 dB`` (the reference's peak over
      all bins and frames);
    * bins whose centre frequency ``k * 44100 / 4096`` lies in ``band_hz``: ``[20, 1000]`` Hz is
      bins 2..92 (:data:`LOW_BAND_HZ`), ``[1000, 22050]`` Hz bins 93..2048 (:data:`HIGH_BAND_HZ`);
    * ``distance = mean |D_ref - D_est|`` over those bins and all frames.

    Direction: lower is better; 0 for identical signals. It is not gain-invariant (a 6 dB
    quieter estimate scores 6 dB where both are above the floor), and the estimate must be
    sample-aligned with the reference (no delay compensation is done).

    Args:
        reference: reference waveform, ``(n,)`` or ``(channels, n)``, numpy or torch.
        estimate: estimate of the same shape.
        sample_rate: rate of both, Hz.
        band_hz: ``(low, high)`` edges in Hz; :data:`LOW_BAND_HZ` or :data:`HIGH_BAND_HZ`.

    Returns:
        The mean absolute dB difference (float).

    Raises:
        MosappError: shapes differ or are not 1-D/2-D, an empty signal, or a band with no bin.
    """
    return band_scores(reference, estimate, sample_rate, (band_hz,))[0][0]


def band_spectral_correlation(
    reference: Any, estimate: Any, sample_rate: int, band_hz: tuple[float, float] = LOW_BAND_HZ
) -> float:
    """Spectral correlation in one band: does the harmonic pattern survive? (low band by default)

    The same floored dB spectra over the same bins as :func:`band_spectral_distance_db`; per
    frame ``t``, the Pearson correlation ``r_t`` between ``D_ref[t, bins]`` and
    ``D_est[t, bins]``; ``correlation = mean_t r_t``. A frame where both spectra are constant
    (e.g. both at the floor: silence in the band) carries no pattern and is left out; a frame
    where only one is constant (e.g. the estimate is silent in the band) counts as ``r_t = 0``.
    If no frame is left, the result is ``nan``.

    Direction: higher is better; 1 for identical signals. It is invariant to the estimate's
    gain (as long as the floor is not reached) and sees where the harmonics are, not how loud.

    Returns:
        The mean per-frame correlation in ``[-1, 1]`` (float, or ``nan``).

    Raises:
        MosappError: as :func:`band_spectral_distance_db`.
    """
    return band_scores(reference, estimate, sample_rate, (band_hz,))[0][1]


# -- the registry ----------------------------------------------------------------------------

#: The lattice of the STFT-domain metrics of decoded audio (spectral convergence, consistency):
#: the same for every codec, so waveform and spectrogram codecs compare.
SCORE_GEOMETRY = "thesis"


def kbps(n_bytes: int, seconds: float) -> float:
    """``8 × n_bytes / seconds / 1000``: a bitrate in kbit/s (both ``file_kbps`` and ``payload_kbps``)."""
    return 8.0 * n_bytes / max(seconds, 1e-9) / 1000.0


def _first_channel(x: Any) -> torch.Tensor:
    arr = np.asarray(x, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr[0] if arr.ndim == 2 else arr))


def lattice_magnitude(x: Any, geometry: str = SCORE_GEOMETRY) -> torch.Tensor:
    """``|STFT|`` (bins, frames) of ``x`` (its first channel if ``(channels, n)``) zero-padded to
    ``geometry``'s periodic buffer: what the STFT-domain metrics compare."""
    lattice = get_geometry(geometry)
    return stft(pad_for_lattice(_first_channel(x), lattice)[0], lattice).abs()


def lattice_spectral_convergence_db(reference: Any, decoded: Any, geometry: str = SCORE_GEOMETRY) -> float:
    """:func:`spectral_convergence_db` of ``decoded``'s :func:`lattice_magnitude` against ``reference``'s."""
    return spectral_convergence_db(lattice_magnitude(reference, geometry), lattice_magnitude(decoded, geometry))


def magnitude_consistency(magnitude: Any) -> float:
    """:func:`consistency` of a magnitude spectrogram (tifresi's log floor); ``nan`` below 3 x 3 or silent."""
    mag = np.abs(_to_numpy(magnitude))
    if mag.ndim != 2 or min(mag.shape) < 3 or not mag.max() > 0:
        return math.nan
    return consistency(log_spectrogram_for_consistency(mag))


def decoded_consistency(decoded: Any, geometry: str = SCORE_GEOMETRY) -> float:
    """:func:`magnitude_consistency` of ``decoded``'s :func:`lattice_magnitude`."""
    return magnitude_consistency(lattice_magnitude(decoded, geometry))


Direction = Literal["higher", "lower"]
#: What a metric's function takes: ``signals`` ``(reference, decoded, sample_rate)``; ``bytes``
#: ``(n_bytes, seconds)``; ``magnitude`` a magnitude spectrogram ``(bins, frames)``.
Inputs = Literal["signals", "bytes", "magnitude", "sets"]


@dataclass(frozen=True)
class Metric:
    """One figure mosapp reports.

    Attributes:
        name: its key everywhere (tables, :class:`Metrics`, study database columns, exports).
        label: a short heading for people ("mel distance").
        unit: "kbit/s", "dB", "MOS" …; "" for a unit-free number.
        direction: ``"higher"`` or ``"lower"``: which way is better.
        definition: one sentence.
        inputs: what :attr:`function` takes (:data:`Inputs`).
        function: computes it.
    """

    name: str
    label: str
    unit: str
    direction: Direction
    definition: str
    inputs: Inputs
    function: Callable[..., float]

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"


def _band(name: str) -> Callable[[Any, Any, int], float]:
    def function(reference: Any, decoded: Any, sample_rate: int) -> float:
        return band_metrics(reference, decoded, sample_rate)[name]

    function.__name__ = name
    return function


def _fad(reference: Any, decoded: Any) -> float:
    from mosapp.core.fad import fad  # noqa: PLC0415 — scipy.linalg only when FAD is computed

    return fad(reference, decoded)


#: Every metric, in the order tables show them.
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("file_kbps", "bitrate (file)", "kbit/s", "lower",
           "8 × the bytes of the whole .sgc file (container header included) / the audio's seconds / 1000.",
           "bytes", kbps),
    Metric("payload_kbps", "bitrate (payload)", "kbit/s", "lower",
           "8 × the bytes of the codec's payload alone (no container) / the audio's seconds / 1000; "
           "what a study database stores per stimulus.",
           "bytes", kbps),
    Metric("mel_distance", "mel distance", "", "lower",
           "DAC's multi-scale log-mel L1 distance of the decoded audio to the reference (0 = identical).",
           "signals", mel_distance),
    Metric("spectral_convergence_db", "spectral convergence", "dB", "lower",
           "20 log10 of the Frobenius norm of the STFT-magnitude error over the reference's (thesis lattice; "
           "in a round trip: against the target magnitude it was asked to reach).",
           "signals", lambda reference, decoded, sample_rate: lattice_spectral_convergence_db(reference, decoded)),
    Metric("si_sdr_db", "SI-SDR", "dB", "higher",
           "Scale-invariant signal-to-distortion ratio of the decoded waveform (phase-sensitive).",
           "signals", lambda reference, decoded, sample_rate: si_sdr_db(reference, decoded)),
    Metric("visqol", "ViSQOL", "MOS", "higher",
           "ViSQOL v3 audio-mode MOS-LQO (1-5) at 48 kHz of the decoded audio against the reference.",
           "signals", visqol),
    Metric("decoded_consistency", "consistency (decoded)", "", "higher",
           "Spectrogram consistency (Marafioti et al.) of the decoded audio's thesis-lattice log spectrogram: "
           "how much it looks like the STFT of a real signal.",
           "signals", lambda reference, decoded, sample_rate: decoded_consistency(decoded)),
    Metric("target_consistency", "consistency (target)", "", "higher",
           "Spectrogram consistency of the target magnitude a round trip's phase reconstruction is given "
           "(the image after the codec): a property of the target, not of the reconstruction.",
           "magnitude", magnitude_consistency),
    Metric("low_band_distance_db", "low-band distance", "dB", "lower",
           "Mean absolute difference of the floored dB spectra (4096-point Hann STFT) over 20-1000 Hz.",
           "signals", _band("low_band_distance_db")),
    Metric("low_band_correlation", "low-band correlation", "", "higher",
           "Mean per-frame Pearson correlation of the floored dB spectra over 20-1000 Hz (-1..1).",
           "signals", _band("low_band_correlation")),
    Metric("high_band_distance_db", "high-band distance", "dB", "lower",
           "Mean absolute difference of the floored dB spectra above 1 kHz.",
           "signals", _band("high_band_distance_db")),
    Metric("high_band_correlation", "high-band correlation", "", "higher",
           "Mean per-frame Pearson correlation of the floored dB spectra above 1 kHz (-1..1).",
           "signals", _band("high_band_correlation")),
    Metric("fad", "FAD (CLAP)", "", "lower",
           "Fréchet Audio Distance between the CLAP embeddings of a codec's decoded excerpts and those of the "
           "excerpts (a figure of a set of clips, not of one; mosapp/core/fad.py, mosapp/models/clap.py).",
           "sets", _fad),
)}

#: The metrics of a decoded signal against its reference (what :func:`score` computes), in table order.
SIGNAL_METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS.values() if m.inputs == "signals")


#: The metrics a listening study can store per stimulus: its database columns and export columns, in that order
#: (the study's bitrate is ``payload_kbps``, a column of its own).
STUDY_METRIC_NAMES: tuple[str, ...] = ("mel_distance", "si_sdr_db", "spectral_convergence_db", "visqol",
                                       *BAND_METRIC_NAMES)


def metric(name: str) -> Metric:
    """The registry entry ``name``; raises :class:`MosappError` for an unknown one."""
    try:
        return METRICS[name]
    except KeyError:
        raise MosappError(f'Unknown metric "{name}"; known: {", ".join(METRICS)}.') from None


def score(reference: Any, decoded: Any, sample_rate: int, names: Iterable[str] = SIGNAL_METRIC_NAMES, *,
          geometry: str = SCORE_GEOMETRY) -> dict[str, float]:
    """The ``names`` metrics of ``decoded`` against ``reference`` (``(n,)`` or ``(channels, n)``), whole-track.

    Each is its registry function; the four band metrics come from one pass of :func:`band_metrics`,
    and the STFT-domain ones (spectral convergence, decoded consistency) are of the first channel
    on ``geometry``'s lattice. :func:`mosapp.evaluation.evaluate.score_steps` computes the same
    figures a chunk at a time.
    """
    wanted = [metric(n) for n in names]
    for m in wanted:
        if m.inputs != "signals":
            raise MosappError(f'The metric "{m.name}" is not one of a decoded signal against its reference.')
    band = band_metrics(reference, decoded, sample_rate) if {m.name for m in wanted} & set(BAND_METRIC_NAMES) else {}
    out: dict[str, float] = {}
    for m in wanted:
        if m.name in band:
            out[m.name] = band[m.name]
        elif m.name == "spectral_convergence_db":
            out[m.name] = lattice_spectral_convergence_db(reference, decoded, geometry)
        elif m.name == "decoded_consistency":
            out[m.name] = decoded_consistency(decoded, geometry)
        else:
            out[m.name] = float(m.function(reference, decoded, sample_rate))
    return out


__all__ = [
    "BAND_METRIC_NAMES", "CONSISTENCY_RELATIVE_FLOOR", "METRICS", "Metric", "Metrics", "SCORE_GEOMETRY",
    "SIGNAL_METRIC_NAMES", "STUDY_METRIC_NAMES", "band_metrics", "band_scores", "band_spectral_correlation", "band_spectral_distance_db",
    "consistency", "decoded_consistency", "kbps", "lattice_magnitude", "lattice_spectral_convergence_db",
    "log_spectrogram_for_consistency", "magnitude_consistency", "mel_distance", "metric", "score", "si_sdr_db",
    "spectral_convergence_db", "visqol",
]
