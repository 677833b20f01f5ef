"""mosapp.core.fad: the Fréchet Audio Distance against its closed form and the frechet-audio-distance package."""

from __future__ import annotations

import ast
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import linalg

from mosapp.core import fad


def test_two_gaussians_with_known_means_and_covariances():
    # Diagonal covariances commute: tr((S1 S2)^(1/2)) = sum(sqrt(s1 * s2)), so the distance has a closed form.
    rng = np.random.default_rng(0)
    d = 16
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = rng.uniform(0.5, 2.0, d), rng.uniform(0.5, 2.0, d)
    closed = float(np.sum((mu1 - mu2) ** 2) + np.sum(s1) + np.sum(s2) - 2 * np.sum(np.sqrt(s1 * s2)))
    assert fad.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(closed, rel=1e-12)
    # Full covariances: d = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^(1/2) S2 S1^(1/2))^(1/2)), another way round.
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    c1, c2 = a @ a.T / d + np.eye(d) * 0.1, b @ b.T / d + np.eye(d) * 0.1
    r1 = linalg.sqrtm(c1).real
    other = float(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(linalg.sqrtm(r1 @ c2 @ r1).real))
    assert fad.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(other, rel=1e-9)
    # Samples of those Gaussians: FAD converges to the distance (and is 0 for a set against itself).
    x = rng.multivariate_normal(mu1, np.diag(s1), size=40_000)
    y = rng.multivariate_normal(mu2, np.diag(s2), size=40_000)
    assert fad.fad(x, y) == pytest.approx(closed, rel=0.02)
    assert abs(fad.fad(x, x)) < 1e-6


def _package_frechet_distance():
    """The frechet-audio-distance package's own ``calculate_frechet_distance``, run as written.

    Importing the package loads laion_clap, encodec and torchaudio (none installable next to torch 2.13), so the
    method's source is taken from the installed file and compiled alone, with the numpy and scipy.linalg it uses.
    """
    spec = importlib.util.find_spec("frechet_audio_distance")
    if spec is None or spec.submodule_search_locations is None:
        pytest.fail("frechet-audio-distance is not installed (scripts/setup installs it without its dependencies)")
    source = (Path(spec.submodule_search_locations[0]) / "fad.py").read_text()
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "FrechetAudioDistance")
    method = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "calculate_frechet_distance")
    namespace = {"np": np, "linalg": linalg, "print": lambda *a, **k: None}
    exec(compile(ast.Module(body=[method], type_ignores=[]), "frechet_audio_distance/fad.py", "exec"), namespace)
    return lambda *args: namespace["calculate_frechet_distance"](None, *args)


def test_the_same_embeddings_give_the_packages_fad():
    theirs = _package_frechet_distance()
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(300, 64)) @ rng.normal(size=(64, 64)) * 0.1
    test = reference[:200] + rng.normal(scale=0.05, size=(200, 64)) + 0.02
    # The package's statistics: np.mean and np.cov(rowvar=False) of the embedding list (its get_embeddings path).
    mu_r, sigma_r = np.mean(reference, axis=0), np.cov(reference, rowvar=False)
    mu_t, sigma_t = np.mean(test, axis=0), np.cov(test, rowvar=False)
    expected = float(theirs(mu_r, sigma_r, mu_t, sigma_t))
    assert fad.fad(reference, test) == pytest.approx(expected, rel=1e-8)


def test_fad_infinity_removes_the_small_sample_bias():
    rng = np.random.default_rng(2)
    d = 8
    reference = rng.normal(size=(20_000, d))
    test = rng.normal(loc=0.3, size=(400, d))
    true = 0.3**2 * d  # same covariance: only the means differ
    biased = fad.fad(reference, test[:60])
    assert fad.fad_infinity(reference, test) == pytest.approx(true, abs=0.1)
    assert abs(fad.fad_infinity(reference, test) - true) < abs(biased - true)
    assert math.isnan(fad.fad_infinity(reference, test[: fad.MIN_FAD_INF - 1]))
