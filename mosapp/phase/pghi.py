"""Our PGHI: phase-gradient estimates from the log-magnitude in torch, heap integration compiled with numba.

Phase Gradient Heap Integration (Průša, Balazs, Søndergaard, IEEE/ACM TASLP 25(5), 2017).
For the Gaussian window ``exp(-pi t^2 / lambda)`` with ``lambda = hop * channels`` (both
geometries) and the time-invariant phase convention of :mod:`mosapp.core.dsp`, the STFT
phase ``phi`` and log-magnitude ``s`` obey (continuous time x, frequency w)::

    d phi / dx = (1 / lambda) d s / dw + 2 pi w        d phi / dw = -lambda d s / dx

On the lattice (step ``hop`` in time, ``1 / channels`` in frequency) and with centred
differences this becomes, per step::

    time step  (n -> n+1):  (s[m+1, n] - s[m-1, n]) / 2 + 2 pi hop m / channels
    freq step  (m -> m+1): -(s[m, n+1] - s[m, n-1]) / 2

The heap integration walks the coefficients from the loudest down, always extending
the phase from the loudest coefficient already known to its four neighbours with the
trapezoid rule. Coefficients below ``tol`` times the peak are not integrated (phase 0).

``seed`` frames (the end of the previous block) enter the heap as already known, which
is how long inputs are processed block by block without phase jumps at block edges
(as in real-time PGHI).

Compared with tifresi's reference, the heap is a bucket queue over the log-magnitude
(O(1) push and pop, see :func:`_heap_integrate`), and the "largest remaining
coefficient" for a new island comes from one sort, made only if an island is needed.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from mosapp.core import job
from mosapp.core.config import StftGeometry
from mosapp.phase import register_backend

#: Coefficients below this fraction of the block's peak are left out of the integration.
#: -100 dB: the image mapping's whole dynamic range; cells below it are black pixels.
DEFAULT_TOL = 1e-5


#: Columns of the per-cell record the kernel reads: magnitude, time step, frequency step, phase.
_MAG, _TSTEP, _FSTEP, _PHASE = 0, 1, 2, 3


def _carrier(geometry: StftGeometry, bins: int, device: torch.device) -> torch.Tensor:
    """2 pi hop m / M reduced modulo 2 pi, float32: the time step's carrier term per bin."""
    m = torch.arange(bins, device=device, dtype=torch.float64)
    # Time neighbours share m, so the reduction stays exact.
    return (2.0 * math.pi * torch.remainder(m * geometry.hop, geometry.channels) / geometry.channels).float()


def phase_records(magnitude: torch.Tensor, geometry: StftGeometry, floor: float) -> torch.Tensor:
    """The heap integration's input: float32 records (frames, bins, 4) on the magnitude's device.

    Columns: magnitude; phase increment of a time step and of a frequency step (the
    formulas of the module docstring); phase (zero). Time-major, so that frequency
    neighbours are adjacent in memory. float32 keeps the increments (below 2 pi plus a
    few nats) to 1e-6 rad; the integration wraps the phase after every step.

    On the CPU the log is torch's and the rest one pass of :func:`_fill_records` (the same
    float32 operations, so the same bits, as the torch code other devices run).

    Args:
        magnitude: (bins, frames) real tensor.
        geometry: the lattice.
        floor: absolute floor of the log, so silent cells do not produce huge gradients.
    """
    if magnitude.device.type == "cpu":
        return torch.from_numpy(_records_cpu(magnitude, geometry, floor)[0])
    mag_t = magnitude.to(torch.float32).T
    frames, bins = mag_t.shape
    s = mag_t.contiguous().clamp_min(floor).log_()  # a new tensor: the caller's magnitude stays intact
    carrier = _carrier(geometry, bins, magnitude.device)
    rec = torch.empty(frames, bins, 4, dtype=torch.float32, device=magnitude.device)
    rec[..., _MAG] = mag_t
    # Frequency derivative; a real signal's spectrum is even around bins 0 and M/2, so it is 0 there.
    t_step = rec[..., _TSTEP]
    t_step[:, 1:-1] = s[:, 2:] - s[:, :-2]
    t_step[:, 0] = 0.0
    t_step[:, -1] = 0.0
    t_step.mul_(0.5).add_(carrier)
    # Time derivative, negated; the lattice is periodic in time.
    f_step = rec[..., _FSTEP]
    f_step[1:-1] = s[:-2] - s[2:]
    f_step[0] = s[-1] - s[1]
    f_step[-1] = s[-2] - s[0]
    f_step.mul_(0.5)
    rec[..., _PHASE] = 0.0
    return rec


def _records_cpu(magnitude: torch.Tensor, geometry: StftGeometry, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`phase_records` of a CPU magnitude as numpy (frames, bins, 4), and the heap's
    initial state (frames * bins,): 2 where the magnitude is below ``floor``, else 0."""
    mag_t = magnitude.to(torch.float32).T
    frames, bins = mag_t.shape
    s = mag_t.contiguous().clamp_min(floor).log_()
    rec = np.empty((frames, bins, 4), dtype=np.float32)
    state = np.empty(frames * bins, dtype=np.uint8)
    _fill_records(mag_t.numpy(), s.numpy(), _carrier(geometry, bins, magnitude.device).numpy(), np.float32(floor),
                  rec, state)
    return rec, state


@numba.njit(cache=True, nogil=True)
def _fill_records(mag_t, s, carrier, threshold, rec, state):  # pragma: no cover - compiled
    """:func:`phase_records`'s columns from the magnitude and its log (frames, bins), and the
    heap's initial state (2 below ``threshold``, else 0), in one pass. Plain float32
    arithmetic in torch's order (no fast-math), so the records are bit for bit torch's."""
    frames, bins = s.shape
    half = np.float32(0.5)
    zero = np.float32(0.0)
    for n in range(frames):
        prev = n - 1 if n > 0 else frames - 1
        nxt = n + 1 if n + 1 < frames else 0
        sp, sn, sh = s[prev], s[nxt], s[n]
        for m in range(bins):
            mag = mag_t[n, m]
            rec[n, m, _MAG] = mag
            d = sh[m + 1] - sh[m - 1] if 0 < m < bins - 1 else zero
            rec[n, m, _TSTEP] = d * half + carrier[m]
            rec[n, m, _FSTEP] = (sp[m] - sn[m]) * half
            rec[n, m, _PHASE] = zero
            state[n * bins + m] = 2 if mag < threshold else 0


def phase_gradients(magnitude: torch.Tensor, geometry: StftGeometry, floor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(time step, frequency step) increments in the (bins, frames) layout of the spectrogram."""
    rec = phase_records(magnitude, geometry, floor)
    return rec[..., _TSTEP].T, rec[..., _FSTEP].T


#: The kernel looks at the job's cancel flag once per this many coefficients (a few ms of work).
CANCEL_CHECK_CELLS = 1 << 16

#: Buckets of the queue, 0.0015 dB apart: 196 dB above the tolerance, louder ones share the top
#: bucket. Coarser buckets (0.025 dB) cost 0.3 dB of spectral convergence on music; these match an exact heap.
QUEUE_LEVELS = 1 << 17
@numba.njit(cache=True, nogil=True, inline="always")
def _bucket(rec_bits, cell, floor_bits, levels):
    # A positive float32's bit pattern grows with its value; >> 11 leaves 2^-12-octave
    # steps (0.0015 dB) above the threshold's pattern.
    return min(levels - 1, max(0, (rec_bits[cell, _MAG] - floor_bits) >> 11))


@numba.njit(cache=True, nogil=True, inline="always")
def _push(rec_bits, head, group, cell, floor_bits, levels, top):
    # Queue ``cell`` last-in first-out in its magnitude's bucket: its magnitude slot becomes
    # the link to the bucket's previous head, stored as -2 - link (so -1 for none): a
    # negative slot is what marks a cell as known. Returns the new top bucket.
    b = _bucket(rec_bits, cell, floor_bits, levels)
    rec_bits[cell, _MAG] = -2 - head[b]
    head[b] = cell
    group[b >> 8] += 1
    return max(top, b)


#: The magnitude slot of a known cell that is not queued (a seed inside the seed frames, or a
#: cell below the tolerance, which is never integrated): negative, as every known cell's.
_KNOWN = -1


@numba.njit(cache=True, nogil=True)
def _heap_integrate(rec, state, bins, threshold, levels, hop, channels, frame_offset, stop):
    """Integrate phase in place, loudest known coefficient first; False when ``stop[0]`` was
    set before the end (the job was cancelled; the phase is then incomplete).

    Args:
        rec: float32 (frames * bins, 4) records, time-major (cell = n * bins + m), columns
            magnitude, time-step and frequency-step increments, phase (in/out, wrapped to
            [-pi, pi)). One 16-byte record per cell keeps all a cell needs in one cache
            line, its state included: the magnitude slot, read as int32, is positive (the
            magnitude's bits) while the cell is to be integrated and negative once it is
            known (seed, done, or below tolerance); a queued cell's slot holds the queue's
            link. So the magnitudes are overwritten.
        bins: frequency rows per frame.
        state: uint8 (frames * bins), read once at the start: 0 = to integrate,
            1 = known (seed), 2 = below tolerance (never touched).
        threshold: the tolerance as an absolute magnitude (positive).
        levels: buckets of the queue.
        hop, channels: the lattice (for island start phases).
        frame_offset: lattice index of the first frame.
        stop: uint8 (1,): the job's cancel flag (:func:`mosapp.core.job.cancel_flag`), read every
            :data:`CANCEL_CHECK_CELLS` coefficients.

    The max-heap is a bucket queue on the log-magnitude (buckets 0.0015 dB apart;
    last-in first-out within a bucket; a count per 256 buckets to skip empty stretches):
    push and pop are O(1) instead of O(log n) cache-missing sift steps, and the order
    differs from an exact heap only between coefficients less than 0.002 dB apart. A
    neighbour's test (is it known?) reads its own record, which the step then needs anyway:
    one cache line per neighbour (a separate state array cost a second one).
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
    # Every other known cell: marked in its record; the walk reads no state array.
    for cell in range(total):
        if state[cell] != 0 and rec_bits[cell, _MAG] >= 0:
            rec_bits[cell, _MAG] = _KNOWN

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
                    if rec_bits[cell, _MAG] >= 0 and rec[cell, _MAG] > best:
                        best = rec[cell, _MAG]
                        start = cell
            else:
                if restarts == 1:
                    candidates = np.nonzero(rec_bits[:, _MAG] >= 0)[0]
                    order = candidates[np.argsort(-rec[candidates, _MAG])]
                while cursor < order.size and rec_bits[order[cursor], _MAG] < 0:
                    cursor += 1
                if cursor < order.size:
                    start = order[cursor]
            if start < 0:
                return True
            restarts += 1
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
        head[top] = -2 - rec_bits[cell, _MAG]
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
            if rec_bits[nb, _MAG] < 0:
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
    if magnitude.device.type == "cpu":
        rec3, state = _records_cpu(magnitude, geometry, threshold)
        rec = rec3.reshape(frames * bins, 4)
    else:
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
    # A copy of the phase column, so the records (four times its size) are freed on return.
    return torch.from_numpy(np.ascontiguousarray(rec[:, _PHASE].reshape(frames, bins))).T


@register_backend("pghi")
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


def pghi_time_major(magnitude: torch.Tensor, geometry: StftGeometry, *, seed: torch.Tensor | None = None,
                    tol: float = DEFAULT_TOL, frame_offset: int = 0, **_: object) -> torch.Tensor:
    """:func:`pghi`'s coefficients transposed, (frames, bins) contiguous: the layout FGLA
    works in, made without a (bins, frames) array to copy from."""
    phase = pghi_phase(magnitude, geometry, seed=seed, tol=tol, frame_offset=frame_offset).to(magnitude.device).T
    real = torch.float64 if magnitude.dtype == torch.float64 else torch.float32
    complex_dtype = torch.complex128 if real == torch.float64 else torch.complex64
    coeffs = torch.empty(phase.shape, dtype=complex_dtype, device=magnitude.device)
    torch.polar(magnitude.to(real).T, phase.to(real), out=coeffs)
    if seed is not None and seed.shape[-1] > 0:
        coeffs[: seed.shape[-1]] = seed.T.to(coeffs.dtype)
    return coeffs
