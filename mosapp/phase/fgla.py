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

import scipy.fft
import torch

from mosapp.core import dsp, job
from mosapp.core.config import StftGeometry
from mosapp.phase import register_backend
from mosapp.phase.pghi import pghi

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
                seed: torch.Tensor | None = None, alpha: float = DEFAULT_ALPHA) -> torch.Tensor:
    """Run ``iterations`` FGLA steps from complex ``init``; returns magnitude-projected coefficients.

    Args:
        magnitude: (bins, frames) target.
        init: (bins, frames) complex start (its dtype sets the working precision).
        geometry: the lattice.
        iterations: FGLA steps.
        seed: (bins, k) final coefficients of the first ``k`` frames, re-imposed after every
            magnitude projection.
        alpha: the acceleration.

    Returns:
        (bins, frames) complex, a transposed view of time-major storage.
    """
    real = init.real.dtype
    frames = init.shape[-1]
    con = Consistency(geometry, frames, init.device, real)
    # Time-major working copies; the centre-origin sign is applied once here and once at the end.
    mag = magnitude.to(device=init.device, dtype=real).T.contiguous()
    t = torch.empty(frames, init.shape[0], dtype=init.dtype, device=init.device).copy_(init.T)  # never the caller's
    k = 0 if seed is None else seed.shape[-1]
    seed_t = None if seed is None or k == 0 else seed.T.to(init.dtype).contiguous()
    if con.sign is not None:
        t.mul_(con.sign)
        seed_t = None if seed_t is None else seed_t * con.sign
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
    out = torch.cat([p_mag(f0, f1, c_prev) for f0, f1 in spans]) if spans else c_prev
    if con.sign is not None:
        out.mul_(con.sign)
    return out.T


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
    init = pghi(magnitude, geometry, seed=seed, **options)
    return fgla_refine(magnitude, init, geometry, iterations=iterations, seed=seed)
