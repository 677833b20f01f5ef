"""The Fréchet Audio Distance between two sets of embeddings (Kilgour et al., Interspeech 2019).

Each set is summarised by the mean ``mu`` and covariance ``sigma`` of its embeddings (float64
throughout), and the distance is that of two Gaussians::

    FAD = |mu_r - mu_t|^2 + tr(sigma_r + sigma_t - 2 (sigma_r sigma_t)^(1/2))

computed as the reference implementations do (``scipy.linalg.sqrtm``; a singular product gets
``eps`` on the diagonals, a tiny imaginary part from rounding is dropped, a large one is an error).

**Sample size.** FAD is biased upward for small sets, and the bias falls as 1/N. With enough
clips, :func:`fad_infinity` gives FAD∞ (Chong & Forsyth, CVPR 2020; adopted for audio by Gui et
al., ICASSP 2024): FAD on random subsets of the test set at sizes spread evenly in 1/N, a line
fitted against 1/N, its intercept. Tables give the number of embeddings next to every FAD, and
FAD∞ only from :data:`MIN_FAD_INF` embeddings on.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg

from mosapp.core.errors import MosappError

#: FAD∞ needs at least this many test embeddings (fewer: the fit is noise).
MIN_FAD_INF = 50


def gaussian(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of ``embeddings`` (n, d) in float64 (covariance with n - 1)."""
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] < 2:
        raise MosappError(f"FAD needs at least 2 embeddings per set, not {e.shape[0] if e.ndim == 2 else 0}.")
    return e.mean(axis=0), np.cov(e, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """The Fréchet distance of two Gaussians (float64)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise MosappError(f"FAD's matrix square root has an imaginary part of "
                              f"{np.max(np.abs(covmean.imag)):.3g}: the embeddings are degenerate.")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fad(reference: np.ndarray, test: np.ndarray) -> float:
    """FAD between the embeddings ``reference`` (n, d) and ``test`` (m, d)."""
    return frechet_distance(*gaussian(reference), *gaussian(test))


def fad_infinity(reference: np.ndarray, test: np.ndarray, *, points: int = 15, seed: int = 0) -> float:
    """FAD∞: the intercept of FAD against 1/N over subsets of ``test`` (NaN below :data:`MIN_FAD_INF`)."""
    test = np.asarray(test, dtype=np.float64)
    n = test.shape[0]
    if n < MIN_FAD_INF:
        return math.nan
    mu_r, sigma_r = gaussian(reference)
    rng = np.random.default_rng(seed)
    sizes = np.unique(np.round(1.0 / np.linspace(1.0 / max(10, n // 5), 1.0 / n, points)).astype(int))
    inv, values = [], []
    for size in sizes:
        pick = rng.choice(n, size=int(size), replace=False)
        values.append(frechet_distance(mu_r, sigma_r, *gaussian(test[pick])))
        inv.append(1.0 / size)
    slope, intercept = np.polyfit(np.asarray(inv), np.asarray(values), 1)
    del slope
    return float(intercept)


__all__ = ["MIN_FAD_INF", "fad", "fad_infinity", "frechet_distance", "gaussian"]
