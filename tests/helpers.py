"""Helpers the tests share, imported explicitly (``from tests.helpers import music_like``).

Music-like test signals, and what a test needs that may be missing here:

A test that needs an optional codec, library or program calls :func:`require_codec`,
:func:`require_module` or :func:`unavailable`, or is marked ``@requires(available, reason)``.
Where the thing is missing the test is skipped, except under CI (the variable ``CI`` set, as
``.ci/run`` and every CI service set it), where it fails: CI's set-up (``scripts/setup``) installs
everything, so a missing codec there is a broken set-up, not a reason to pass silently. What is
missing for a reason no set-up can change (no CUDA device, another OS, running as root) stays a
plain ``pytest.skip``.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import numpy as np
import pytest

from mosapp.codecs import get_codec
from mosapp.codecs.base import Codec

RATE = 44_100


def ci() -> bool:
    """Whether this run is CI's: the variable ``CI`` set to anything but empty, 0, false or no."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def unavailable(reason: str) -> NoReturn:
    """Skip this test because ``reason`` (something it needs is missing), or fail it under CI."""
    if ci():
        pytest.fail(f"CI is set, so this test must run (scripts/setup installs what it needs), but: {reason}",
                    pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_codec(name: str) -> Codec:
    """The codec ``name``, where it can run here (see :func:`unavailable` otherwise)."""
    codec = get_codec(name)
    availability = codec.availability()
    if not availability.ok:
        unavailable(f"{name} is not available here: {availability.reason}")
    return codec


def require_module(name: str, why: str) -> ModuleType:
    """Import ``name`` (at module level too), or :func:`unavailable` saying ``why`` it should be there."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        unavailable(f"{name} cannot be imported ({error}); {why}")


def requires(available: bool, reason: str) -> pytest.MarkDecorator:
    """A mark: the test runs where ``available``; otherwise :func:`unavailable` with ``reason``."""
    return pytest.mark.requires(available=available, reason=reason)


def music_like(seconds: float = 2.0, rate: int = RATE, seed: int = 0, channels: int = 1) -> np.ndarray:
    """Plucked harmonic notes with envelopes, a vibrato voice and a little noise: (channels, n) float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    out = np.zeros((channels, n))
    for ch in range(channels):
        x = np.zeros(n)
        for f0 in rng.choice([110.0, 146.8, 196.0, 220.0, 261.6, 329.6, 392.0], 6):
            start = int(rng.uniform(0, 0.6) * n)
            tt = t[: n - start]
            env = np.exp(-tt / rng.uniform(0.2, 0.8)) * (1 - np.exp(-tt / 0.004))
            note = sum((0.6**h) * np.sin(2 * np.pi * f0 * (h + 1) * tt + rng.uniform(0, 6.28)) for h in range(6))
            x[start:] += env * note
        x += 0.3 * np.sin(2 * np.pi * 440 * t + 3 * np.sin(2 * np.pi * 5 * t)) * (t > 0.2)
        x += 0.01 * rng.standard_normal(n)
        out[ch] = x
    return (0.5 * out / np.abs(out).max()).astype(np.float32)
