"""The reference: tifresi's PGHI (ltfat phase gradients + tifresi's numba heap), adapted to our signature.

tifresi works on a whole signal at once (no seed frames), so the pipeline never splits
its input into blocks; use it on clips, as the yardstick for ``pghi``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mosapp.core.config import StftGeometry
from mosapp.core.errors import MosappError
from mosapp.phase import register_backend


def tifresi_phase_freqinv(magnitude: np.ndarray, geometry: StftGeometry) -> np.ndarray:
    """tifresi's phase for a (bins, frames) magnitude, in ltfat's frequency-invariant convention."""
    try:
        from tifresi.phase.modGabPhaseGrad import modgabphasegrad  # noqa: PLC0415 — tifresi/ltfatpy: heavy, and may fail to build
        from tifresi.phase.pghi import pghi  # noqa: PLC0415 — tifresi/ltfatpy: heavy, and may fail to build
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise MosappError(f"The tifresi backend needs the tifresi and ltfatpy packages, which failed to import ({exc}); run the README's set-up command.") from None
    a, m = geometry.hop, geometry.channels
    length = a * magnitude.shape[1]
    g_analysis = {"name": "gauss", "tfr": a * m / length}
    tgrad, fgrad = modgabphasegrad("abs", magnitude, g_analysis, a, m)
    return pghi(magnitude, tgrad, fgrad, a, m, length)


@register_backend("tifresi", blocks=False)
def tifresi(magnitude: torch.Tensor, geometry: StftGeometry, *, seed: torch.Tensor | None = None,
            **_: object) -> torch.Tensor:
    """tifresi's PGHI; returns coefficients in our (time-invariant) convention."""
    if seed is not None and seed.shape[-1] > 0:
        raise ValueError("the tifresi backend cannot continue from seed frames")
    mag = magnitude.detach().to("cpu", torch.float64).numpy()
    if not np.any(mag > 1e-10):
        return torch.zeros_like(magnitude, dtype=torch.complex128)
    phase = tifresi_phase_freqinv(np.ascontiguousarray(mag), geometry)
    # ltfat's coefficient at (m, n) carries exp(-2 i pi m n a / M) relative to ours.
    bins, frames = mag.shape
    shift = 2.0 * math.pi * np.remainder(np.outer(np.arange(bins), np.arange(frames)) * geometry.hop,
                                         geometry.channels) / geometry.channels
    coeffs = torch.polar(torch.from_numpy(mag), torch.from_numpy(phase + shift))
    return coeffs.to(magnitude.device)
