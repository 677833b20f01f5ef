"""Fast Griffin–Lim (Perraudin, Balazs, Søndergaard, WASPAA 2013) on the device, alone or refining PGHI.

Iteration, with ``P_mag(c) = |S| c / |c|`` and ``P_con(c) = stft(istft(c))``::

    c_k = P_con(P_mag(t_{k-1}));   t_k = c_k + alpha (c_k - c_{k-1}),   alpha = 0.99

The result is ``P_mag(c_N)``. Inside a block, the ``seed`` frames are re-imposed after
every projection so the block joins the previous one seamlessly; the block's own edge
frames see a truncated overlap-add, which is why the pipeline gives every block context
frames on both sides and keeps only its core.

How an iteration is computed (issue 29: it was 70 % of decoding). The coefficients live
time-major, (frames, bins), so every frame's bins are contiguous for the FFTs and no
transpose is ever made; the iteration runs over chunks of :data:`CHUNK_FRAMES` frames so
its temporaries stay a few MB and in cache:

* ``P_mag`` without transcendentals: ``t * (|S| / max(|t|, eps))`` in real arithmetic
  (was ``|S| exp(i angle(t))``: an atan2, a cos and a sin per coefficient);
* ``P_con`` as one batched inverse real FFT of the chunk, the overlap-add as ``Lg / hop``
  multiply-adds of (frames, hop) slabs into the block's signal, and the analysis as the
  same slabs of the signal times the window folded onto ``M`` samples, then one batched
  real FFT (no (frames, Lg) buffer, no whole-block zero buffer, no re-analysis set-up);
* the per-bin sign of the centre-origin convention is applied once on entry and exit
  (the iteration commutes with it), not twice per iteration;
* the acceleration step is one ``lerp`` per chunk: ``t = c_prev + (1 + alpha)(c - c_prev)``;
* float32 throughout for float32 input (float64 stays float64);
* on the CPU the FFTs are scipy's pocketfft with the torch thread count as workers (twice
  as fast as torch's CPU FFT on this kind of machine); anywhere else (CUDA) ``torch.fft``:
  the rest is the same torch code on every device.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import scipy.fft
import torch

from mosapp.core import dsp, job
from mosapp.core.config import StftGeometry
from mosapp.phase import register_backend
from mosapp.phase.pghi import pghi_time_major

DEFAULT_ALPHA = 0.99
#: Frames per chunk of an iteration: big enough that per-call overheads vanish, small
#: enough that a chunk's temporaries (4 MB for the thesis lattice) stay in cache.
CHUNK_FRAMES = 2048


def _rfft(v: torch.Tensor) -> torch.Tensor:
    """Real FFT over the last axis (batched); scipy's on the CPU, torch's elsewhere."""
    if v.device.type == "cpu":
        return torch.from_numpy(scipy.fft.rfft(v.numpy(), axis=-1, workers=torch.get_num_threads()))
    return torch.fft.rfft(v, dim=-1)


def _irfft(c: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse real FFT of length ``n`` over the last axis (batched); scipy's on the CPU."""
    if c.device.type == "cpu":
        return torch.from_numpy(scipy.fft.irfft(c.numpy(), n=n, axis=-1, workers=torch.get_num_threads()))
    return torch.fft.irfft(c, n=n, dim=-1)


class Consistency:
    """``P_con`` of a block of frames, time-major, chunk by chunk: the overlap-add of the
    frames' windowed inverse FFTs into the block's own signal (not periodic: the block's
    edge frames see a truncated overlap-add), then the STFT of that signal.

    Both are written as slabs of ``hop`` samples: slab ``j`` of a frame's window buffer
    (``Lg / hop`` of them) is block ``j mod (M / hop)`` of its inverse FFT, and lands on
    signal slab ``frame + j``.
    """

    def __init__(self, geometry: StftGeometry, frames: int, device: torch.device, dtype: torch.dtype) -> None:
        a, m, lg = geometry.hop, geometry.channels, geometry.window_length
        if m % a or lg % m:
            raise ValueError(f"FGLA needs hop | channels | window length; got {a}, {m}, {lg}")
        g, gamma, sign = dsp.windows(geometry, device, dtype)
        self.m, self.per, self.k = m, m // a, lg // a
        self.g, self.gamma = g.view(self.k, a), gamma.view(self.k, a)
        self.sign = sign if bool((sign < 0).any()) else None
        self.frames = frames
        # Signal slabs: frame f's window starts at slab f.
        self.x = torch.zeros(frames + self.k - 1, a, dtype=dtype, device=device)

    def synthesize(self, p: torch.Tensor, f0: int) -> None:
        """Overlap-add frames ``[f0, f0 + len(p))`` (sign-applied coefficients, time-major)."""
        u = _irfft(p, self.m)
        u3 = u.view(u.shape[0], self.per, -1)
        f1 = f0 + u.shape[0]
        for j in range(self.k):
            self.x[f0 + j: f1 + j].addcmul_(u3[:, j % self.per], self.gamma[j])

    def analyse(self, f0: int, f1: int) -> torch.Tensor:
        """Sign-applied coefficients (time-major) of frames ``[f0, f1)`` of the signal."""
        v = torch.empty(f1 - f0, self.m, dtype=self.x.dtype, device=self.x.device)
        v3 = v.view(f1 - f0, self.per, -1)
        for p in range(self.per):
            torch.mul(self.x[f0 + p: f1 + p], self.g[p], out=v3[:, p])
            for j in range(p + self.per, self.k, self.per):
                v3[:, p].addcmul_(self.x[f0 + j: f1 + j], self.g[j])
        return _rfft(v)


def project_magnitude(t: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
    """``mag * t / |t|`` in real arithmetic (a new tensor; |t|^2 is floored at the dtype's
    smallest normal number, so a zero ``t`` gives zero, never NaN)."""
    tr = torch.view_as_real(t)
    power = tr.square().sum(-1)
    ratio = power.clamp_min_(torch.finfo(power.dtype).tiny).rsqrt_().mul_(mag)
    return torch.view_as_complex(tr * ratio.unsqueeze(-1))


def fgla_refine(magnitude: torch.Tensor, init: torch.Tensor, geometry: StftGeometry, *, iterations: int,
                seed: torch.Tensor | None = None, alpha: float = DEFAULT_ALPHA, kernels: bool | None = None
                ) -> torch.Tensor:
    """Run ``iterations`` FGLA steps from complex ``init``; returns magnitude-projected coefficients.

    Args:
        magnitude: (bins, frames) target.
        init: (bins, frames) complex start (its dtype sets the working precision).
        geometry: the lattice.
        iterations: FGLA steps.
        seed: (bins, k) final coefficients of the first ``k`` frames, re-imposed after every
            magnitude projection.
        alpha: the acceleration.
        kernels: run the CPU path (numba kernels, scipy FFTs, the frames split between
            ``torch.get_num_threads()`` threads); default: on CPU tensors. ``False`` runs the
            torch path, which is what a GPU runs (and the tests compare the two on the CPU).

    Returns:
        (bins, frames) complex, a transposed view of time-major storage.
    """
    t = torch.empty(init.shape[::-1], dtype=init.dtype, device=init.device).copy_(init.T)  # never the caller's
    return refine_time_major(magnitude, t, geometry, iterations=iterations, seed=seed, alpha=alpha, kernels=kernels)


def refine_time_major(magnitude: torch.Tensor, t: torch.Tensor, geometry: StftGeometry, *, iterations: int,
                      seed: torch.Tensor | None = None, alpha: float = DEFAULT_ALPHA, kernels: bool | None = None
                      ) -> torch.Tensor:
    """:func:`fgla_refine` from a start the caller hands over: ``t`` is the start transposed,
    (frames, bins) contiguous, and is overwritten (no copy of the start is made)."""
    real = t.real.dtype
    k = 0 if seed is None else seed.shape[-1]
    # Time-major working copies; the centre-origin sign is applied once here and once at the end.
    mag = magnitude.to(device=t.device, dtype=real).T.contiguous()
    seed_t = None if seed is None or k == 0 else seed.T.to(t.dtype).contiguous()
    _, _, sign = dsp.windows(geometry, t.device, real)
    signed = bool((sign < 0).any())
    if signed:
        t.mul_(sign)
        seed_t = None if seed_t is None else seed_t * sign
    use_kernels = t.device.type == "cpu" if kernels is None else kernels
    run = _refine_cpu if use_kernels else _refine_torch
    out = run(mag, t, seed_t, geometry, iterations, alpha)
    if signed:
        out.mul_(sign)
    return out.T


def _refine_torch(mag: torch.Tensor, t: torch.Tensor, seed_t: torch.Tensor | None, geometry: StftGeometry,
                  iterations: int, alpha: float) -> torch.Tensor:
    """The iterations in torch ops, chunk by chunk (any device); ``t`` is overwritten."""
    frames = t.shape[0]
    k = 0 if seed_t is None else seed_t.shape[0]
    con = Consistency(geometry, frames, t.device, t.real.dtype)
    c_prev = t.clone()
    spans = [(f0, min(f0 + CHUNK_FRAMES, frames)) for f0 in range(0, frames, CHUNK_FRAMES)]

    def p_mag(f0: int, f1: int, c: torch.Tensor) -> torch.Tensor:
        out = project_magnitude(c[f0:f1], mag[f0:f1])
        if seed_t is not None and f0 < k:
            out[: k - f0] = seed_t[f0: min(k, f1)]
        return out

    for _ in range(iterations):
        job.check()  # one step is a fraction of a second even on a 32 s block
        con.x.zero_()
        for f0, f1 in spans:
            con.synthesize(p_mag(f0, f1, t), f0)
        for f0, f1 in spans:
            c = con.analyse(f0, f1)
            torch.lerp(c_prev[f0:f1], c, 1.0 + alpha, out=t[f0:f1])
            c_prev[f0:f1] = c
    for f0, f1 in spans:  # the result in place of t: no third (frames, bins) array
        t[f0:f1] = p_mag(f0, f1, c_prev)
    return t


#: Frames per call of the CPU path's kernels and FFTs (a chunk's temporaries fit in L2).
KERNEL_CHUNK_FRAMES = 256


@numba.njit(cache=True, nogil=True, fastmath=True)
def _overlap_add(u, gamma, x, row0, per):  # pragma: no cover - compiled
    """x[row0 + f + j] += gamma[j] * u[f, block j mod per] (slabs of ``hop`` samples).

    The innermost loops run over 1-D views, which is what lets LLVM vectorise them.
    """
    k, a = gamma.shape
    for f in range(u.shape[0]):
        uf = u[f]
        for j in range(k):
            src = (j % per) * a
            us = uf[src: src + a]
            gj = gamma[j]
            out = x[row0 + f + j]
            for i in range(a):
                out[i] += gj[i] * us[i]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _analyse(x, g, v, row0, per):  # pragma: no cover - compiled
    """v[f, block p] = sum over j = p (mod per) of g[j] * x[row0 + f + j]: window, then fold onto M."""
    k, a = g.shape
    for f in range(v.shape[0]):
        vf = v[f]
        for p in range(per):
            out = vf[p * a: (p + 1) * a]
            xs = x[row0 + f + p]
            gp = g[p]
            for i in range(a):
                out[i] = gp[i] * xs[i]
            for j in range(p + per, k, per):
                xs = x[row0 + f + j]
                gj = g[j]
                for i in range(a):
                    out[i] += gj[i] * xs[i]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _project(t, mag, p, tiny):  # pragma: no cover - compiled
    """p = mag * t / |t| (|t|^2 floored at ``tiny``)."""
    for f in range(t.shape[0]):
        for b in range(t.shape[1]):
            z = t[f, b]
            power = max(z.real * z.real + z.imag * z.imag, tiny)
            p[f, b] = z * (mag[f, b] / np.sqrt(power))


@numba.njit(cache=True, nogil=True, fastmath=True)
def _accelerate_project(c, c_prev, mag, p, beta, tiny):  # pragma: no cover - compiled
    """t = c_prev + beta (c - c_prev); c_prev = c; p = mag * t / |t|: the end of one iteration
    and the start of the next in one pass over a chunk.

    ``c``, ``c_prev`` and ``p`` are the complex arrays viewed as real (frames, 2 bins): the
    element-wise loops then vectorise, which complex numbers in numba do not.
    """
    bins = mag.shape[1]
    scale = np.empty(bins, dtype=mag.dtype)
    for f in range(c.shape[0]):
        cf, of, pf, mf = c[f], c_prev[f], p[f], mag[f]
        for i in range(2 * bins):
            old = of[i]
            new = cf[i]
            pf[i] = old + beta * (new - old)
            of[i] = new
        for b in range(bins):
            scale[b] = pf[2 * b] * pf[2 * b] + pf[2 * b + 1] * pf[2 * b + 1]
        for b in range(bins):
            scale[b] = mf[b] / np.sqrt(max(scale[b], tiny))
        for b in range(bins):
            pf[2 * b] *= scale[b]
            pf[2 * b + 1] *= scale[b]


class _Part:
    """One thread's share of the frames ``[f0, f1)`` and its own overlap-add buffer (signal
    slabs ``[f0, f1 + k - 1)``); neighbouring parts share ``k - 1`` slabs, summed between
    the synthesis and the analysis."""

    def __init__(self, f0: int, f1: int, k: int, a: int, dtype: np.dtype) -> None:
        self.f0, self.f1 = f0, f1
        self.x = np.zeros((f1 - f0 + k - 1, a), dtype=dtype)


def _sum_shared_slabs(parts: list[_Part], k: int) -> None:
    """Give each pair of neighbouring parts the sum of the slab (``k - 1`` hops) both synthesised into."""
    for left, right in zip(parts, parts[1:]):
        shared = left.x[right.f0 - left.f0:] + right.x[: k - 1]
        left.x[right.f0 - left.f0:] = shared
        right.x[: k - 1] = shared


def _refine_cpu(mag_t: torch.Tensor, t_t: torch.Tensor, seed_t: torch.Tensor | None, geometry: StftGeometry,
                iterations: int, alpha: float) -> torch.Tensor:
    """The iterations with numba kernels and scipy FFTs, the frames split between threads."""
    a, m, lg = geometry.hop, geometry.channels, geometry.window_length
    if m % a or lg % m:
        raise ValueError(f"FGLA needs hop | channels | window length; got {a}, {m}, {lg}")
    per, k = m // a, lg // a
    mag, p = mag_t.numpy(), t_t.numpy()  # p: the projected coefficients the next synthesis uses
    real = mag.dtype
    g_t, gamma_t, _ = dsp.windows(geometry, "cpu", mag_t.dtype)
    g, gamma = g_t.numpy().reshape(k, a), gamma_t.numpy().reshape(k, a)
    tiny, beta = real.type(np.finfo(real).tiny), real.type(1.0 + alpha)
    seed = None if seed_t is None else seed_t.numpy()
    ks = 0 if seed is None else seed.shape[0]
    frames = p.shape[0]
    c_prev = p.copy()
    n_parts = max(1, min(torch.get_num_threads(), frames // max(KERNEL_CHUNK_FRAMES, k)))
    bounds = [frames * i // n_parts for i in range(n_parts + 1)]
    parts = [_Part(bounds[i], bounds[i + 1], k, a, real) for i in range(n_parts)]

    def reseed(f0: int, f1: int) -> None:
        if seed is not None and f0 < ks:
            p[f0: min(ks, f1)] = seed[f0: min(ks, f1)]

    def chunks(part: _Part) -> list[tuple[int, int]]:
        return [(f0, min(f0 + KERNEL_CHUNK_FRAMES, part.f1)) for f0 in range(part.f0, part.f1, KERNEL_CHUNK_FRAMES)]

    def synthesize(part: _Part) -> None:
        part.x.fill(0)
        for f0, f1 in chunks(part):
            u = scipy.fft.irfft(p[f0:f1], n=m, axis=-1)
            _overlap_add(u, gamma, part.x, f0 - part.f0, per)

    def analyse(part: _Part) -> None:
        v = np.empty((KERNEL_CHUNK_FRAMES, m), dtype=real)
        for f0, f1 in chunks(part):
            _analyse(part.x, g, v[: f1 - f0], f0 - part.f0, per)
            c = scipy.fft.rfft(v[: f1 - f0], axis=-1)
            _accelerate_project(c.view(real), c_prev[f0:f1].view(real), mag[f0:f1], p[f0:f1].view(real), beta, tiny)
            reseed(f0, f1)

    for part in parts:
        for f0, f1 in chunks(part):
            _project(p[f0:f1], mag[f0:f1], p[f0:f1], tiny)
            reseed(f0, f1)
    with ThreadPoolExecutor(max_workers=n_parts, thread_name_prefix="mosapp-fgla") as pool:
        for _ in range(iterations):
            job.check()  # one step is a fraction of a second even on a 32 s block
            list(pool.map(synthesize, parts))
            _sum_shared_slabs(parts, k)
            list(pool.map(analyse, parts))
    for part in parts:  # the result in place of c_prev: no third (frames, bins) array
        for f0, f1 in chunks(part):
            _project(c_prev[f0:f1], mag[f0:f1], c_prev[f0:f1], tiny)
    out_t = torch.from_numpy(c_prev)
    if seed_t is not None:
        out_t[:ks] = seed_t
    return out_t


@register_backend("fgla")
def fgla(magnitude: torch.Tensor, geometry: StftGeometry, *, seed: torch.Tensor | None = None,
         iterations: int = 32, **_: object) -> torch.Tensor:
    """FGLA from zero phase (the common baseline); ``iterations`` steps."""
    init = magnitude.to(torch.complex64 if magnitude.dtype == torch.float32 else torch.complex128)
    if seed is not None and seed.shape[-1] > 0:
        init = init.clone()
        init[:, : seed.shape[-1]] = seed
    return fgla_refine(magnitude, init, geometry, iterations=iterations, seed=seed)


@register_backend("pghi+fgla")
def pghi_fgla(magnitude: torch.Tensor, geometry: StftGeometry, *, seed: torch.Tensor | None = None,
              iterations: int = 32, **options: object) -> torch.Tensor:
    """PGHI's phase as the start, refined by ``iterations`` FGLA steps."""
    start = pghi_time_major(magnitude, geometry, seed=seed, **options)  # type: ignore[arg-type]
    return refine_time_major(magnitude, start, geometry, iterations=iterations, seed=seed)
