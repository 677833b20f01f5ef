"""mosapp.evaluation.evaluate: what the codec results table and the model cards are computed with."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mosapp.core import metrics
from mosapp.evaluation import evaluate
from tests.conftest import RATE, music_like


def test_score_has_every_table_metric_and_the_band_metrics_see_a_low_band_loss():
    x = music_like(2.0, seed=4)
    # Remove everything below 1 kHz (an FFT brick wall): the low band is destroyed, the high band kept.
    spectrum = np.fft.rfft(x[0])
    spectrum[np.fft.rfftfreq(x.shape[1], 1 / RATE) < 1000.0] = 0.0
    y = np.fft.irfft(spectrum, n=x.shape[1]).astype(np.float32)[None]
    scores = evaluate.score(x, y, visqol=False)
    assert set(scores) == set(evaluate.METRIC_NAMES) - {"kbps"}
    assert scores["low_band_distance_db"] > 30 and scores["low_band_correlation"] < 0.3
    assert scores["high_band_distance_db"] < 1 and scores["high_band_correlation"] > 0.95
    same = evaluate.score(x, x.copy(), visqol=False)
    assert same["low_band_distance_db"] == 0 and same["low_band_correlation"] == pytest.approx(1.0)


def test_mean_of_skips_missing_and_nan_values():
    rows = [{"kbps": 6.0, "mel_distance": 1.0, "low_band_distance_db": float("nan")},
            {"kbps": 8.0, "mel_distance": 3.0}]  # saved before the band metrics existed
    means = evaluate.mean_of(rows)
    assert means["kbps"] == 7.0 and means["mel_distance"] == 2.0
    assert math.isnan(means["low_band_distance_db"]) and math.isnan(means["visqol"])
    assert set(metrics.BAND_METRIC_NAMES) <= set(means)
