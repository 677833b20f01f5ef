"""The two-band crossover: perfect reconstruction, band limits, decimation without aliasing."""

from __future__ import annotations

import numpy as np

from mosapp.core import bands
from tests.helpers import music_like


def test_split_then_merge_gives_the_signal_back():
    x = music_like(2.0, seed=4)[0]
    low, high = bands.split(x)
    assert low.shape == (bands.low_length(x.shape[0]),) and high.shape == x.shape
    y = bands.merge(low, high)
    inner = slice(2000, -2000)  # the clean-up filter sees the signal's edges as steps
    err = np.linalg.norm(y[inner] - x[inner]) / np.linalg.norm(x)
    assert 20 * np.log10(err) < -80
    assert 20 * np.log10(np.linalg.norm(y - x) / np.linalg.norm(x)) < -50


def _level_db(x: np.ndarray, hz: float) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.shape[0])))
    freqs = np.fft.rfftfreq(x.shape[0], 1 / 44100)
    return 20 * np.log10(spec[np.argmin(np.abs(freqs - hz))] + 1e-20)


def test_each_band_holds_its_side_of_the_crossover():
    t = np.arange(44100) / 44100
    for hz, low_side in ((300.0, True), (800.0, True), (2000.0, False), (6000.0, False)):
        x = np.sin(2 * np.pi * hz * t).astype(np.float32)
        low, high = bands.split(x)
        up = bands.upsample_low(low, x.shape[0])
        ref = _level_db(x, hz)
        kept, other = (up, high) if low_side else (high, up)
        assert abs(_level_db(kept, hz) - ref) < 0.01, hz
        assert _level_db(other, hz) < ref - 80, hz


def test_the_low_band_is_decimated_by_eight():
    t = np.arange(2 * 44100) / 44100
    x = np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
    low, _ = bands.split(x)
    spec = np.abs(np.fft.rfft(low[100:-100] * np.hanning(low.shape[0] - 200)))
    freqs = np.fft.rfftfreq(low.shape[0] - 200, 1 / bands.LOW_SAMPLE_RATE)
    assert abs(freqs[np.argmax(spec)] - 440.0) < 3.0
