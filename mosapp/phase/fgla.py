"""Fast Griffin–Lim (Perraudin, Balazs, Søndergaard, WASPAA 2013) on the device, alone or refining PGHI.

Iteration, with ``P_mag(c) = |S| c / |c|`` and ``P_con(c) = stft(istft(c))``::

    c_k = P_con(P_mag(t_{k-1}));   t_k = c_k + alpha (c_k - c_{k-1}),   alpha = 0.99

The result is ``P_mag(c_N)``. Inside a block, the ``seed`` frames are re-imposed after
every projection so the block joins the previous one seamlessly; the block's own edge
frames see a truncated overlap-add, which is why the pipeline gives every block context
frames on both sides and keeps only its core.
"""

from __future__ import annotations

import torch

from mosapp.core import dsp, job
from mosapp.core.config import StftGeometry
from mosapp.phase import register_backend
from mosapp.phase.pghi import pghi

DEFAULT_ALPHA = 0.99


def _project_consistent(c: torch.Tensor, geometry: StftGeometry) -> torch.Tensor:
    """STFT of the overlap-added signal of the frames in ``c`` (a block, not periodic)."""
    frames = c.shape[-1]
    a, lg = geometry.hop, geometry.window_length
    # A buffer wide enough that the block's windows never wrap onto each other.
    span = (frames - 1) * a + lg
    length = ((span + geometry.channels - 1) // geometry.channels + 1) * geometry.channels
    real_dtype = torch.float64 if c.dtype == torch.complex128 else torch.float32
    buf = torch.zeros(length, dtype=real_dtype, device=c.device)
    dsp.synthesize(c, geometry, buf, frame_start=lg // (2 * a))
    return dsp.stft(buf, geometry, lg // (2 * a), lg // (2 * a) + frames)


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
