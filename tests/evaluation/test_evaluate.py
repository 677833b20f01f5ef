"""mosapp.evaluation.evaluate: what the codec results table and the model cards are computed with."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mosapp.core import metrics
from mosapp.evaluation import evaluate
from tests.helpers import RATE, music_like


def test_score_has_every_table_metric_and_the_band_metrics_see_a_low_band_loss():
    x = music_like(2.0, seed=4)
    # Remove everything below 1 kHz (an FFT brick wall): the low band is destroyed, the high band kept.
    spectrum = np.fft.rfft(x[0])
    spectrum[np.fft.rfftfreq(x.shape[1], 1 / RATE) < 1000.0] = 0.0
    y = np.fft.irfft(spectrum, n=x.shape[1]).astype(np.float32)[None]
    scores = evaluate.score(x, y, visqol=False)
    assert set(scores) == set(evaluate.METRIC_NAMES) - {"file_kbps"}
    assert scores["low_band_distance_db"] > 30 and scores["low_band_correlation"] < 0.3
    assert scores["high_band_distance_db"] < 1 and scores["high_band_correlation"] > 0.95
    same = evaluate.score(x, x.copy(), visqol=False)
    assert same["low_band_distance_db"] == 0 and same["low_band_correlation"] == pytest.approx(1.0)


def test_mean_of_skips_missing_and_nan_values():
    rows = [{"file_kbps": 6.0, "mel_distance": 1.0, "low_band_distance_db": float("nan")},
            {"file_kbps": 8.0, "mel_distance": 3.0}]  # saved before the band metrics existed
    means = evaluate.mean_of(rows)
    assert means["file_kbps"] == 7.0 and means["mel_distance"] == 2.0
    assert math.isnan(means["low_band_distance_db"]) and math.isnan(means["visqol"])
    assert set(metrics.BAND_METRIC_NAMES) <= set(means)


def _info(samples):
    from mosapp.core.audio import AudioInfo

    return AudioInfo(path="x.wav", sample_rate=RATE, channels=samples.shape[0], frames=samples.shape[1],
                     subtype="PCM_16", format="WAV")


def test_measuring_decodes_block_by_block_what_the_codec_decodes():
    from mosapp.codecs import container, get_codec
    from mosapp.core.config import PipelineConfig
    from mosapp.core.job import drive

    samples = music_like(1.5)
    codec = get_codec("pghi-only")
    config = PipelineConfig(phase="pghi", block_seconds=0.5)  # several blocks
    progress: list = []
    m = drive(evaluate.measure_steps(codec, samples, config, info=_info(samples), visqol=False), progress.append)
    stream, _ = container.unpack(container.pack(codec.encode(samples, config), _info(samples)))
    np.testing.assert_array_equal(m.decoded, codec.decode(stream, config))
    assert len([p for p in progress if p.stage == "decode" and p.unit == "frames"]) >= 3
    assert [p.stage for p in progress][:2] == ["encode", "encode"] and progress[-1].stage == "metrics"
    assert m.file_bytes == len(container.pack(codec.encode(samples, config), _info(samples)))
    assert m.file_kbps == 8 * m.file_bytes / 1.5 / 1000 and m.payload_kbps < m.file_kbps
    assert math.isnan(m.scores["visqol"]) and "not run" in m.notes["visqol"]
    assert m.scores == {**evaluate.score(samples, m.decoded, visqol=False), "visqol": m.scores["visqol"]}


def test_the_codec_table_is_what_measuring_gives_and_reads_old_results():
    from mosapp.core.audio import Audio
    from mosapp.core.config import PipelineConfig

    samples = music_like(1.2)
    clip = Audio(samples=samples, sample_rate=RATE, info=_info(samples))
    (row,) = evaluate.evaluate_codec("lowpass-3.5k", [clip], PipelineConfig(phase="pghi"), visqol=False)
    assert set(row.scores) == set(evaluate.METRIC_NAMES)
    assert "kbps" not in row.scores and "consistency" not in row.scores
    # Rows saved before the registry ("kbps", "consistency") count under the new names.
    old = {"kbps": 3.0, "consistency": 0.5, "mel_distance": 1.0}
    new = {"file_kbps": 5.0, "decoded_consistency": 0.7, "mel_distance": 2.0}
    means = evaluate.mean_of([old, new])
    assert means["file_kbps"] == 4.0 and means["decoded_consistency"] == pytest.approx(0.6)
    assert evaluate.renamed({"kbps": 1.0, "file_kbps": 2.0}) == {"file_kbps": 2.0}  # the new name wins
