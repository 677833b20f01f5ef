"""Shared fixtures: devices to run every case on, and music-like test signals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

RATE = 44_100

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=["cpu", "cuda"])
def device(request) -> str:
    """Every test using this runs on CPU and, when present, on CUDA (skipped cleanly otherwise)."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    return request.param


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


@pytest.fixture
def music() -> np.ndarray:
    """2 s of mono music-like audio at 44.1 kHz, shape (1, n)."""
    return music_like()
