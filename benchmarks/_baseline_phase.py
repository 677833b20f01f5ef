"""A pinned copy of the phase reconstruction as it was before issue 29 (commit de52add), for side-by-side timing.

Copied verbatim from mosapp/core/dsp.py (the windows, ``stft``, ``synthesize``, ``istft``),
mosapp/phase/fgla.py (``_project_consistent``, ``fgla_refine``) and mosapp/phase/pghi.py
(``phase_records``, the numba bucket-queue kernel, ``pghi_phase``, ``pghi``) at that commit;
only ``dsp.`` prefixes were dropped so the copy uses its own transforms. The benchmarks
(benchmarks/phase_speed.py, codec_speed.py, roundtrip.py) time it against today's code in the
same run: :func:`old_code` swaps it into the package for the length of a ``with`` block, so a
whole decode or round trip runs the old phase reconstruction and transforms.

Not part of the package: nothing under mosapp/ imports it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import numba
import numpy as np
import torch

from mosapp.core import job
from mosapp.core.config import StftGeometry

_CHUNK_FRAMES = 2048
DEFAULT_ALPHA = 0.99
DEFAULT_TOL = 1e-5
_MAG, _TSTEP, _FSTEP, _PHASE = 0, 1, 2, 3
CANCEL_CHECK_CELLS = 1 << 16
QUEUE_LEVELS = 1 << 17


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


def _project_consistent(c: torch.Tensor, geometry: StftGeometry) -> torch.Tensor:
    """STFT of the overlap-added signal of the frames in ``c`` (a block, not periodic)."""
    frames = c.shape[-1]
    a, lg = geometry.hop, geometry.window_length
    # A buffer wide enough that the block's windows never wrap onto each other.
    span = (frames - 1) * a + lg
    length = ((span + geometry.channels - 1) // geometry.channels + 1) * geometry.channels
    real_dtype = torch.float64 if c.dtype == torch.complex128 else torch.float32
    buf = torch.zeros(length, dtype=real_dtype, device=c.device)
    synthesize(c, geometry, buf, frame_start=lg // (2 * a))
    return stft(buf, geometry, lg // (2 * a), lg // (2 * a) + frames)


def fgla_refine(magnitude: torch.Tensor, init: torch.Tensor, geometry: StftGeometry, *, iterations: int,
                seed: torch.Tensor | None = None, alpha: float = DEFAULT_ALPHA) -> torch.Tensor:
    """Run ``iterations`` FGLA steps from complex ``init``; returns magnitude-projected coefficients."""
    mag = magnitude.to(init.real.dtype)
    k = 0 if seed is None else seed.shape[-1]

    def p_mag(c: torch.Tensor) -> torch.Tensor:
        out = mag * torch.exp(1j * torch.angle(c))
        if k and seed is not None:
            out[:, :k] = seed
        return out

    c_prev = init
    t = init
    for _ in range(iterations):
        job.check()  # one step is a fraction of a second even on a 32 s block
        c = _project_consistent(p_mag(t), geometry)
        t = c + alpha * (c - c_prev)
        c_prev = c
    return p_mag(c_prev)


def phase_records(magnitude: torch.Tensor, geometry: StftGeometry, floor: float) -> torch.Tensor:
    """The heap integration's input: float32 records (frames, bins, 4) on the magnitude's device.

    Columns: magnitude; phase increment of a time step and of a frequency step (the
    formulas of the module docstring); phase (zero). Time-major, so that frequency
    neighbours are adjacent in memory. float32 keeps the increments (below 2 pi plus a
    few nats) to 1e-6 rad; the integration wraps the phase after every step.

    Args:
        magnitude: (bins, frames) real tensor.
        geometry: the lattice.
        floor: absolute floor of the log, so silent cells do not produce huge gradients.
    """
    mag_t = magnitude.to(torch.float32).T
    frames, bins = mag_t.shape
    rec = torch.empty(frames, bins, 4, dtype=torch.float32, device=magnitude.device)
    rec[..., _MAG] = mag_t
    s = mag_t.contiguous().clamp_min(floor).log_()  # a new tensor: the caller's magnitude stays intact
    # Frequency derivative; a real signal's spectrum is even around bins 0 and M/2, so it is 0 there.
    t_step = rec[..., _TSTEP]
    t_step[:, 1:-1] = s[:, 2:] - s[:, :-2]
    t_step[:, 0] = 0.0
    t_step[:, -1] = 0.0
    m = torch.arange(bins, device=s.device, dtype=torch.float64)
    # 2 pi hop m / M reduced modulo 2 pi: time neighbours share m, so this stays exact.
    carrier = (2.0 * math.pi * torch.remainder(m * geometry.hop, geometry.channels) / geometry.channels).float()
    t_step.mul_(0.5).add_(carrier)
    # Time derivative, negated; the lattice is periodic in time.
    f_step = rec[..., _FSTEP]
    f_step[1:-1] = s[:-2] - s[2:]
    f_step[0] = s[-1] - s[1]
    f_step[-1] = s[-2] - s[0]
    f_step.mul_(0.5)
    rec[..., _PHASE] = 0.0
    return rec


@numba.njit(cache=True, nogil=True, inline="always")
def _bucket(rec_bits, cell, floor_bits, levels):
    # A positive float32's bit pattern grows with its value; >> 11 leaves 2^-12-octave
    # steps (0.0015 dB) above the threshold's pattern.
    return min(levels - 1, max(0, (rec_bits[cell, _MAG] - floor_bits) >> 11))


@numba.njit(cache=True, nogil=True, inline="always")
def _push(rec_bits, head, group, cell, floor_bits, levels, top):
    # Queue ``cell`` last-in first-out in its magnitude's bucket: its magnitude slot becomes
    # the link to the bucket's previous head. Returns the new top bucket.
    b = _bucket(rec_bits, cell, floor_bits, levels)
    rec_bits[cell, _MAG] = head[b]
    head[b] = cell
    group[b >> 8] += 1
    return max(top, b)


@numba.njit(cache=True, nogil=True)
def _heap_integrate(rec, state, bins, threshold, levels, hop, channels, frame_offset, stop):
    """Integrate phase in place, loudest known coefficient first; False when ``stop[0]`` was
    set before the end (the job was cancelled; the phase is then incomplete).

    Args:
        rec: float32 (frames * bins, 4) records, time-major (cell = n * bins + m), columns
            magnitude, time-step and frequency-step increments, phase (in/out, wrapped to
            [-pi, pi)). One 16-byte record per cell keeps all a cell needs in one cache
            line; once a cell is queued its magnitude is no longer needed and its slot
            holds the queue's next-cell link (so the magnitudes are overwritten).
        bins: frequency rows per frame.
        state: uint8 (frames * bins): 0 = to integrate, 1 = known (seed or done),
            2 = below tolerance (never touched).
        threshold: the tolerance as an absolute magnitude.
        levels: buckets of the queue.
        hop, channels: the lattice (for island start phases).
        frame_offset: lattice index of the first frame.
        stop: uint8 (1,): the job's cancel flag (:func:`mosapp.core.job.cancel_flag`), read every
            :data:`CANCEL_CHECK_CELLS` coefficients.

    The max-heap is a bucket queue on the log-magnitude (buckets 0.0015 dB apart;
    last-in first-out within a bucket; a count per 256 buckets to skip empty stretches):
    push and pop are O(1) instead of O(log n) cache-missing sift steps, and the order
    differs from an exact heap only between coefficients less than 0.002 dB apart.
    """
    total = rec.shape[0]
    frames = total // bins
    rec_bits = rec.view(np.int32)
    floor_bits = np.array([threshold], dtype=np.float32).view(np.int32)[0]
    two_pi = 2.0 * np.pi

    head = np.full(levels, -1, dtype=np.int32)
    group = np.zeros((levels >> 8) + 1, dtype=np.int32)
    top = -1
    queued = 0

    # Seeds: known cells next to unknown ones start the integration.
    for cell in range(total):
        if state[cell] == 1:
            n = cell // bins
            m = cell - n * bins
            if ((n + 1 < frames and state[cell + bins] == 0) or (n > 0 and state[cell - bins] == 0)
                    or (m + 1 < bins and state[cell + 1] == 0) or (m > 0 and state[cell - 1] == 0)):
                top = _push(rec_bits, head, group, cell, floor_bits, levels, top)
                queued += 1

    order = np.empty(0, dtype=np.int64)
    cursor = 0
    restarts = 0
    popped = 0
    while True:
        popped += 1
        if (popped & (CANCEL_CHECK_CELLS - 1)) == 0 and stop[0] != 0:
            return False
        if queued == 0:
            # A new island: start at the loudest coefficient not yet reached. The first
            # is found by a scan; what is left after it is sorted once (small islands).
            start = -1
            if restarts < 1:
                best = -1.0
                for cell in range(total):
                    if state[cell] == 0 and rec[cell, _MAG] > best:
                        best = rec[cell, _MAG]
                        start = cell
            else:
                if restarts == 1:
                    candidates = np.nonzero(state == 0)[0]
                    order = candidates[np.argsort(-rec[candidates, _MAG])]
                while cursor < order.size and state[order[cursor]] != 0:
                    cursor += 1
                if cursor < order.size:
                    start = order[cursor]
            if start < 0:
                return True
            restarts += 1
            state[start] = 1
            # Zero phase in the frequency-invariant convention (tifresi's choice): as if
            # the island's partial had started at time 0. Islands then line up with one
            # another better than with zero time-invariant phase (0.5 dB SC on music).
            sn = start // bins + frame_offset
            sm = start - (start // bins) * bins
            p0 = two_pi * ((sm * sn * hop) % channels) / channels
            rec[start, _PHASE] = p0 - two_pi if p0 >= np.pi else p0
            top = _push(rec_bits, head, group, start, floor_bits, levels, top)
            queued += 1

        while group[top >> 8] == 0:
            top = ((top >> 8) << 8) - 1
        while head[top] < 0:
            top -= 1
        cell = head[top]
        head[top] = rec_bits[cell, _MAG]
        group[top >> 8] -= 1
        queued -= 1

        n = cell // bins
        m = cell - n * bins
        p = rec[cell, _PHASE]
        t_here = rec[cell, _TSTEP]
        f_here = rec[cell, _FSTEP]
        for k in range(4):
            if k == 0:
                if n + 1 >= frames:
                    continue
                nb = cell + bins
            elif k == 1:
                if n == 0:
                    continue
                nb = cell - bins
            elif k == 2:
                if m + 1 >= bins:
                    continue
                nb = cell + 1
            else:
                if m == 0:
                    continue
                nb = cell - 1
            if state[nb] != 0:
                continue
            if k == 0:
                q = p + 0.5 * (t_here + rec[nb, _TSTEP])
            elif k == 1:
                q = p - 0.5 * (t_here + rec[nb, _TSTEP])
            elif k == 2:
                q = p + 0.5 * (f_here + rec[nb, _FSTEP])
            else:
                q = p - 0.5 * (f_here + rec[nb, _FSTEP])
            # Wrapped, the phase fits float32 to 1e-7 rad however long the path.
            rec[nb, _PHASE] = q - two_pi * np.floor((q + np.pi) / two_pi)
            state[nb] = 1
            top = _push(rec_bits, head, group, nb, floor_bits, levels, top)
            queued += 1


def pghi_phase(
    magnitude: torch.Tensor,
    geometry: StftGeometry,
    *,
    seed: torch.Tensor | None = None,
    tol: float = DEFAULT_TOL,
    frame_offset: int = 0,
) -> torch.Tensor:
    """Phase (float32 in [-pi, pi), bins x frames, on CPU) by PGHI; see the module docstring.

    Args:
        magnitude: (bins, frames) on any device.
        geometry: the lattice.
        seed: known coefficients of the first frames (the previous block's end).
        tol: coefficients below ``tol`` x peak are not integrated.
        frame_offset: lattice index of frame 0 (island start phases are absolute).
    """
    peak = float(magnitude.max()) if magnitude.numel() else 0.0
    bins, frames = magnitude.shape
    if peak <= 0.0 or not math.isfinite(peak):
        # Silence: there is no phase to find; zero phase gives zero output.
        return torch.zeros(bins, frames, dtype=torch.float32)
    threshold = peak * tol
    rec = phase_records(magnitude, geometry, floor=threshold).reshape(frames * bins, 4).to("cpu").numpy()
    state = np.where(rec[:, _MAG] < threshold, np.uint8(2), np.uint8(0))
    if seed is not None and seed.shape[-1] > 0:
        k = seed.shape[-1]
        rec[: k * bins, _PHASE] = torch.angle(seed).detach().to("cpu", torch.float32).T.reshape(-1).numpy()
        state[: k * bins] = 1
    job.check()
    finished = _heap_integrate(rec, state, bins, np.float32(threshold), QUEUE_LEVELS, geometry.hop, geometry.channels,
                               frame_offset, job.cancel_flag())
    if not finished:
        job.check()  # cancelled: raises
    return torch.from_numpy(rec[:, _PHASE].reshape(frames, bins)).T


def pghi(magnitude: torch.Tensor, geometry: StftGeometry, *, seed: torch.Tensor | None = None,
         tol: float = DEFAULT_TOL, frame_offset: int = 0, **_: object) -> torch.Tensor:
    """PGHI coefficients: ``magnitude * exp(i * phase)`` on the magnitude's device."""
    phase = pghi_phase(magnitude, geometry, seed=seed, tol=tol, frame_offset=frame_offset).to(magnitude.device)
    real = torch.float64 if magnitude.dtype == torch.float64 else torch.float32
    coeffs = torch.polar(magnitude.to(real), phase.to(real))
    if seed is not None and seed.shape[-1] > 0:
        # Seed frames are final: pass them through bit-exactly.
        coeffs[:, : seed.shape[-1]] = seed.to(coeffs.dtype)
    return coeffs


def pghi_fgla(magnitude: torch.Tensor, geometry: StftGeometry, *, seed: torch.Tensor | None = None,
              iterations: int = 32, **options: object) -> torch.Tensor:
    """The old default backend: PGHI's phase refined by ``iterations`` FGLA steps."""
    init = pghi(magnitude, geometry, seed=seed, **options)  # type: ignore[arg-type]
    return fgla_refine(magnitude, init, geometry, iterations=iterations, seed=seed)


@contextmanager
def old_code() -> Iterator[None]:
    """Inside the block the package runs this copy: the ``pghi`` and ``pghi+fgla`` backends and
    :mod:`mosapp.core.dsp`'s ``stft``/``synthesize``/``istft`` (everything that calls them
    through the module, as the codecs and :mod:`mosapp.phase.invert` do)."""
    import mosapp.phase as phase
    from mosapp.core import dsp

    phase.backend_names()  # load the registry first
    saved_backends = dict(phase._BACKENDS)
    saved_dsp = (dsp.stft, dsp.synthesize, dsp.istft)
    phase._BACKENDS["pghi"] = pghi  # type: ignore[assignment]
    phase._BACKENDS["pghi+fgla"] = pghi_fgla  # type: ignore[assignment]
    dsp.stft, dsp.synthesize, dsp.istft = stft, synthesize, istft  # type: ignore[assignment]
    try:
        yield
    finally:
        phase._BACKENDS.clear()
        phase._BACKENDS.update(saved_backends)
        dsp.stft, dsp.synthesize, dsp.istft = saved_dsp  # type: ignore[assignment]
