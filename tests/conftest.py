"""Shared fixtures: devices to run every case on, music-like test signals, and the ``requires`` mark.

Helpers that test modules import live in :mod:`tests.helpers` (this file is pytest's, not a module
to import from).
"""

from __future__ import annotations

import pytest
import torch

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
