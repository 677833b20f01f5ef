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

On the CPU the records live on a lattice with a border of known cells one cell wide
(:func:`_fill_records`), so the walk needs neither bounds checks nor a division to find
a cell's neighbours, and the kernel prefetches the records the next pop will read.
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np
import torch
from llvmlite import ir
from numba.core import cgutils, types
from numba.cpython.unsafe.numbers import leading_zeros
from numba.extending import intrinsic

from mosapp.core import job
from mosapp.core.config import StftGeometry
from mosapp.phase import register_backend

#: Coefficients below this fraction of the block's peak are left out of the integration.
#: -100 dB: the image mapping's whole dynamic range; cells below it are black pixels.
DEFAULT_TOL = 1e-5


#: Columns of the per-cell record the kernel reads: magnitude, time step, frequency step, phase.
_MAG, _TSTEP, _FSTEP, _PHASE = 0, 1, 2, 3

#: Bytes of one record (four float32): the kernel's prefetch addresses are in these units.
_RECORD_BYTES = 16


def _carrier(geometry: StftGeometry, bins: int, device: torch.device) -> torch.Tensor:
    """2 pi hop m / M reduced modulo 2 pi, float32: the time step's carrier term per bin."""
    m = torch.arange(bins, device=device, dtype=torch.float64)
    # Time neighbours share m, so the reduction stays exact.
    return (2.0 * math.pi * torch.remainder(m * geometry.hop, geometry.channels) / geometry.channels).float()


def phase_records(magnitude: torch.Tensor, geometry: StftGeometry, floor: float) -> torch.Tensor:
    """The phase increments as float32 records (frames, bins, 4) on the magnitude's device.

    Columns: magnitude; phase increment of a time step and of a frequency step (the
    formulas of the module docstring); phase (zero). Time-major, so that frequency
    neighbours are adjacent in memory. float32 keeps the increments (below 2 pi plus a
    few nats) to 1e-6 rad; the integration wraps the phase after every step. The CPU
    kernel's records (:func:`_fill_records`) hold the same bits, on a lattice with a border.

    Args:
        magnitude: (bins, frames) real tensor.
        geometry: the lattice.
        floor: absolute floor of the log, so silent cells do not produce huge gradients.
    """
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


def _lattice_records(magnitude: torch.Tensor, geometry: StftGeometry, threshold: float,
                     seed_frames: int) -> tuple[np.ndarray, int]:
    """The kernel's input for a (bins, frames) magnitude: float32 records (frames + 2, bins + 2, 4)
    with a border of known cells, and the first island's start (see :func:`_fill_records`).

    Long inputs are filled by two threads (the fill releases the GIL), each on half of the
    frames, when torch may use two: the fill is a third of PGHI's time outside the walk.
    """
    mag_t = magnitude.detach().to("cpu", torch.float32).T
    frames, bins = mag_t.shape
    s = mag_t.contiguous().clamp_min(threshold).log_()
    rec = np.empty((frames + 2, bins + 2, 4), dtype=np.float32)
    args = (mag_t.numpy(), s.numpy(), _carrier(geometry, bins, torch.device("cpu")).numpy(), np.float32(threshold),
            seed_frames, rec)
    if frames < _PARALLEL_FILL_FRAMES or torch.get_num_threads() < 2:
        return rec, _fill_records(*args, 0, frames)[1]
    half = frames // 2
    second: list[tuple[float, int] | BaseException] = []

    def fill_second_half() -> None:
        try:
            second.append(_fill_records(*args, half, frames))
        except BaseException as exc:  # noqa: BLE001 — handed to the caller's thread, raised there
            second.append(exc)

    helper = threading.Thread(target=fill_second_half, daemon=True)
    helper.start()
    best, start = _fill_records(*args, 0, half)
    helper.join()
    if isinstance(second[0], BaseException):
        raise second[0]
    # The first in time-major order among equals: the second half's only if strictly louder.
    best_2, start_2 = second[0]
    return rec, (start_2 if start_2 >= 0 and best_2 > best else start)


#: Inputs with at least this many frames are filled by two threads (about 1.5 s on the thesis lattice).
_PARALLEL_FILL_FRAMES = 1 << 10


@numba.njit(cache=True, nogil=True)
def _fill_records(mag_t, s, carrier, threshold, seed_frames, rec, first, last):  # pragma: no cover - compiled
    """The kernel's records of frames ``first`` to ``last`` (exclusive) from the magnitude and
    its log (frames, bins), in one pass.

    ``rec`` is (frames + 2, bins + 2, 4): cell (n, m) of the spectrogram is rec[n + 1, m + 1],
    with :func:`phase_records`'s columns, bit for bit (plain float32 arithmetic in torch's
    order, no fast-math). The border (zero increments and phase) and the cells below
    ``threshold`` get the known mark in their magnitude slot (read as int32), so the walk never enters them; seed cells (the
    first ``seed_frames`` frames) keep their magnitude, which decides their place in the queue.

    Returns (magnitude, record index) of the loudest cell outside the seed frames, the first
    in time-major order among equals: the first island's start; index -1 if there is none.
    """
    frames, bins = s.shape
    width = bins + 2
    bits = rec.view(np.int32)
    half = np.float32(0.5)
    zero = np.float32(0.0)
    for m in range(width):
        for c in range(1, 4):
            if first == 0:
                rec[0, m, c] = zero
            if last == frames:
                rec[frames + 1, m, c] = zero
        if first == 0:
            bits[0, m, _MAG] = _KNOWN
        if last == frames:
            bits[frames + 1, m, _MAG] = _KNOWN
    best = np.float32(-1.0)
    start = -1
    for n in range(first, last):
        prev = n - 1 if n > 0 else frames - 1
        nxt = n + 1 if n + 1 < frames else 0
        sp, sn, sh = s[prev], s[nxt], s[n]
        i = n + 1
        for c in range(1, 4):
            rec[i, 0, c] = zero
            rec[i, bins + 1, c] = zero
        bits[i, 0, _MAG] = _KNOWN
        bits[i, bins + 1, _MAG] = _KNOWN
        for m in range(bins):
            mag = mag_t[n, m]
            d = sh[m + 1] - sh[m - 1] if 0 < m < bins - 1 else zero
            rec[i, m + 1, _TSTEP] = d * half + carrier[m]
            rec[i, m + 1, _FSTEP] = (sp[m] - sn[m]) * half
            rec[i, m + 1, _PHASE] = zero
            if mag >= threshold or n < seed_frames:
                rec[i, m + 1, _MAG] = mag
                if n >= seed_frames and mag > best:
                    best = mag
                    start = i * width + m + 1
            else:
                bits[i, m + 1, _MAG] = _KNOWN
    return best, start


def phase_gradients(magnitude: torch.Tensor, geometry: StftGeometry, floor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(time step, frequency step) increments in the (bins, frames) layout of the spectrogram."""
    rec = phase_records(magnitude, geometry, floor)
    return rec[..., _TSTEP].T, rec[..., _FSTEP].T


#: The kernel looks at the job's cancel flag once per this many coefficients (a few ms of work).
CANCEL_CHECK_CELLS = 1 << 16

#: Buckets of the queue, 0.0015 dB apart: 196 dB above the tolerance, louder ones share the top
#: bucket. Coarser buckets (0.025 dB) cost 0.3 dB of spectral convergence on music; these match an exact heap.
QUEUE_LEVELS = 1 << 17

#: The magnitude slot of a known cell that is not queued (the border, a seed, or a cell below
#: the tolerance, which is never integrated): negative, as every known cell's.
_KNOWN = -1


@intrinsic
def _prefetch(typingctx, address):  # pragma: no cover - compiled
    """Prefetch the cache line at ``address`` (an integer) for reading: a hint, which never faults."""
    sig = types.void(types.intp)

    def codegen(context, builder, signature, args):
        ptr = ir.PointerType()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [ptr, i32, i32, i32]),
                                            "llvm.prefetch.p0")
        # read, high temporal locality, data cache
        builder.call(fn, [builder.inttoptr(args[0], ptr), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, nogil=True, inline="always")
def _prefetch_cell(base, cell, width):  # pragma: no cover - compiled
    # The record and its two time neighbours (its frequency neighbours share its cache line or the next).
    # (mypy sees numba's intrinsic wrapper, whose call takes the typing context too.)
    _prefetch(base + cell * _RECORD_BYTES)  # type: ignore[call-arg]
    _prefetch(base + (cell + width) * _RECORD_BYTES)
    _prefetch(base + (cell - width) * _RECORD_BYTES)


@numba.njit(cache=True, nogil=True, inline="always")
def _push(rec_bits, head, occupied, cell, floor_bits, levels):  # pragma: no cover - compiled
    # Queue ``cell`` last-in first-out in its magnitude's bucket and return the bucket. A positive
    # float32's bit pattern grows with its value; >> 11 leaves 2^-12-octave steps (0.0015 dB)
    # above the threshold's pattern. The cell's magnitude slot becomes the link to the bucket's
    # previous head, stored as -2 - link (so -1 for none): a negative slot marks a known cell.
    b = min(levels - 1, max(0, (rec_bits[cell, _MAG] - floor_bits) >> 11))
    rec_bits[cell, _MAG] = -2 - head[b]
    head[b] = cell
    occupied[b >> 6] |= np.int64(1) << (b & 63)
    return b


@numba.njit(cache=True, nogil=True)
def _heap_integrate(rec, width, seed_frames, first_start, threshold, levels, hop, channels, frame_offset,
                    stop):  # pragma: no cover - compiled
    """Integrate phase in place, loudest known coefficient first; False when ``stop[0]`` was
    set before the end (the job was cancelled; the phase is then incomplete).

    Args:
        rec: float32 ((frames + 2) * width, 4) records from :func:`_fill_records`, time-major
            with a border one cell wide (cell = (n + 1) * width + m + 1), columns magnitude,
            time-step and frequency-step increments, phase (in/out, wrapped to [-pi, pi)).
            One 16-byte record per cell keeps all a cell needs in one cache line, its state
            included: the magnitude slot, read as int32, is positive (the magnitude's bits)
            while the cell is to be integrated and negative once it is known (border, seed,
            done, or below tolerance); a queued cell's slot holds the queue's link. So the
            magnitudes are overwritten.
        width: bins + 2.
        seed_frames: the first this many frames are known (their phase is given).
        first_start: the first island's start, from :func:`_fill_records` (used when no seed
            reaches an unknown cell).
        threshold: the tolerance as an absolute magnitude (positive).
        levels: buckets of the queue.
        hop, channels: the lattice (for island start phases).
        frame_offset: lattice index of the first frame.
        stop: uint8 (1,): the job's cancel flag (:func:`mosapp.core.job.cancel_flag`), read every
            :data:`CANCEL_CHECK_CELLS` coefficients.

    The max-heap is a bucket queue on the log-magnitude (buckets 0.0015 dB apart;
    last-in first-out within a bucket): push and pop are O(1) instead of O(log n)
    cache-missing sift steps, and the order differs from an exact heap only between
    coefficients less than 0.002 dB apart. A bitmap of the non-empty buckets finds the
    next one 64 buckets per step. A neighbour's test (is it known?) reads its own record,
    which the step then needs anyway: one cache line per neighbour. The border makes the
    four neighbours cell +- width and cell +- 1, with no bounds to check.
    """
    total = rec.shape[0]
    rec_bits = rec.view(np.int32)
    base = rec.ctypes.data
    floor_bits = np.array([threshold], dtype=np.float32).view(np.int32)[0]
    two_pi = 2.0 * np.pi

    head = np.full(levels, -1, dtype=np.int32)
    occupied = np.zeros((levels + 63) >> 6, dtype=np.int64)
    top = -1
    queued = 0

    # Seeds: the last seed frame's cells next to a cell to integrate start the integration
    # (a seed's other neighbours are seeds or the border); then every seed cell is known.
    if seed_frames > 0:
        row = seed_frames * width
        for cell in range(row + 1, row + width - 1):
            if rec_bits[cell + width, _MAG] >= 0:
                top = max(top, _push(rec_bits, head, occupied, cell, floor_bits, levels))
                queued += 1
        for cell in range(width, row + width):
            if rec_bits[cell, _MAG] >= 0:
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
            # A new island: start at the loudest coefficient not yet reached. The first is
            # the fill's (or, once seeds have reached cells, a scan's); what is left after it
            # is sorted once (small islands).
            start = -1
            if restarts < 1:
                if popped == 1:
                    start = first_start
                else:
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
            sn = start // width - 1 + frame_offset
            sm = start - (start // width) * width - 1
            p0 = two_pi * ((sm * sn * hop) % channels) / channels
            rec[start, _PHASE] = p0 - two_pi if p0 >= np.pi else p0
            top = max(top, _push(rec_bits, head, occupied, start, floor_bits, levels))
            queued += 1

        cell = head[top]
        nxt = -2 - rec_bits[cell, _MAG]
        head[top] = nxt
        queued -= 1
        if nxt >= 0:
            _prefetch_cell(base, nxt, width)
        else:
            # The bucket is empty: find the next non-empty one below it in the bitmap.
            w = top >> 6
            word = occupied[w] & ~(np.int64(1) << (top & 63))
            occupied[w] = word
            if queued > 0:
                word &= (np.int64(2) << (top & 63)) - 1
                while word == 0:
                    w -= 1
                    word = occupied[w]
                top = (w << 6) + 63 - leading_zeros(word)  # type: ignore[call-arg]
                _prefetch_cell(base, head[top], width)
            else:
                top = -1

        p = rec[cell, _PHASE]
        t_here = rec[cell, _TSTEP]
        f_here = rec[cell, _FSTEP]
        for k in range(4):
            if k == 0:
                nb = cell + width
            elif k == 1:
                nb = cell - width
            elif k == 2:
                nb = cell + 1
            else:
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
            top = max(top, _push(rec_bits, head, occupied, nb, floor_bits, levels))
            queued += 1


def _phase_lattice(
    magnitude: torch.Tensor,
    geometry: StftGeometry,
    *,
    seed: torch.Tensor | None,
    tol: float,
    frame_offset: int,
) -> np.ndarray | None:
    """PGHI's phase as a (frames, bins) float32 view into the kernel's records (None for silence)."""
    # amax, not max: max() without a dimension is ten times slower on a transposed tensor.
    peak = float(torch.amax(magnitude)) if magnitude.numel() else 0.0
    if peak <= 0.0 or not math.isfinite(peak):
        return None
    threshold = peak * tol
    seed_frames = seed.shape[-1] if seed is not None else 0
    rec3, first_start = _lattice_records(magnitude, geometry, threshold, seed_frames)
    if seed is not None and seed_frames > 0:
        rec3[1: seed_frames + 1, 1:-1, _PHASE] = torch.angle(seed).detach().to("cpu", torch.float32).T.numpy()
    job.check()
    frames2, width = rec3.shape[:2]
    finished = _heap_integrate(rec3.reshape(frames2 * width, 4), width, seed_frames, first_start, np.float32(threshold),
                               QUEUE_LEVELS, geometry.hop, geometry.channels, frame_offset, job.cancel_flag())
    if not finished:
        job.check()  # cancelled: raises
    return rec3[1:-1, 1:-1, _PHASE]


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
    phase = _phase_lattice(magnitude, geometry, seed=seed, tol=tol, frame_offset=frame_offset)
    if phase is None:
        # Silence: there is no phase to find; zero phase gives zero output.
        return torch.zeros(magnitude.shape, dtype=torch.float32)
    # A copy, so the records (four times its size) are freed on return.
    return torch.from_numpy(np.ascontiguousarray(phase)).T


def _coefficients(magnitude: torch.Tensor, geometry: StftGeometry, seed: torch.Tensor | None, tol: float,
                  frame_offset: int, *, time_major: bool) -> torch.Tensor:
    """``magnitude * exp(i * phase)`` as (frames, bins) on the magnitude's device: contiguous if
    ``time_major``, else the transpose of a contiguous (bins, frames) tensor."""
    phase_np = _phase_lattice(magnitude, geometry, seed=seed, tol=tol, frame_offset=frame_offset)
    real = torch.float64 if magnitude.dtype == torch.float64 else torch.float32
    complex_dtype = torch.complex128 if real == torch.float64 else torch.complex64
    mag_t = magnitude.to(real).T
    if phase_np is None:
        # Silence: there is no phase to find; zero phase gives zero output.
        phase = torch.zeros(mag_t.shape, dtype=real, device=magnitude.device)
    else:
        phase = torch.from_numpy(phase_np).to(magnitude.device, real)
    if time_major:
        coeffs = torch.empty(mag_t.shape, dtype=complex_dtype, device=magnitude.device)
        torch.polar(mag_t, phase, out=coeffs)
    else:
        coeffs = torch.polar(mag_t.T, phase.T).T
    if seed is not None and seed.shape[-1] > 0:
        # Seed frames are final: pass them through bit-exactly.
        coeffs[: seed.shape[-1]] = seed.T.to(coeffs.dtype)
    return coeffs


@register_backend("pghi")
def pghi(magnitude: torch.Tensor, geometry: StftGeometry, *, seed: torch.Tensor | None = None,
         tol: float = DEFAULT_TOL, frame_offset: int = 0, **_: object) -> torch.Tensor:
    """PGHI coefficients: ``magnitude * exp(i * phase)`` (bins, frames) on the magnitude's device."""
    return _coefficients(magnitude, geometry, seed, tol, frame_offset, time_major=False).T


def pghi_time_major(magnitude: torch.Tensor, geometry: StftGeometry, *, seed: torch.Tensor | None = None,
                    tol: float = DEFAULT_TOL, frame_offset: int = 0, **_: object) -> torch.Tensor:
    """:func:`pghi`'s coefficients transposed, (frames, bins) contiguous: the layout FGLA
    works in, made without a (bins, frames) array to copy from."""
    return _coefficients(magnitude, geometry, seed, tol, frame_offset, time_major=True)
