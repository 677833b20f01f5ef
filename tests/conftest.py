"""Shared fixtures: devices to run every case on, music-like test signals, and the ``requires`` mark.

Helpers that test modules import live in :mod:`tests.helpers` (this file is pytest's, not a module
to import from).
"""

from __future__ import annotations

import os

# MKL (torch's CPU FFT) takes another code path on each CPU family (AVX-512 on recent Intel, an SSE
# path on others), and its sums then round differently: the .sgc fixtures' decodes
# (tests/codecs/test_fixtures.py), recorded on such a path, would move by one LSB on another
# machine. Conditional Numerical Reproducibility's COMPATIBLE mode gives every x86 CPU the same
# results, so "bit for bit" holds wherever the suite runs. Set before torch loads MKL; children
# (the CLI tests' subprocesses) inherit it.
os.environ.setdefault("MKL_CBWR", "COMPATIBLE")

import pytest
import torch  # after MKL_CBWR: MKL reads it when torch loads it

from tests.helpers import RATE, music_like, unavailable


def pytest_configure(config):
    config.addinivalue_line("markers", "requires(available, reason): skip where the thing is missing, "
                                       "fail under CI (tests.helpers.requires)")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("requires"):
        if not mark.kwargs["available"]:
            unavailable(mark.kwargs["reason"])


@pytest.fixture(params=["cpu", "cuda"])
def device(request) -> str:
    """Every test using this runs on CPU and, when present, on CUDA (skipped cleanly otherwise)."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    return request.param


@pytest.fixture
def music():
    """2 s of mono music-like audio at 44.1 kHz, shape (1, n)."""
    return music_like(seconds=2.0, rate=RATE)
