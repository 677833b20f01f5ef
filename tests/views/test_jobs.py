"""The Inspect view's job without Qt: names checked first, the run's numbers, block-wise decoding, cancel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from mosapp.core.config import PipelineConfig
from mosapp.core.errors import AudioError, ConfigError, MosappError
from mosapp.core.job import Progress
from mosapp.evaluation import evaluate
from mosapp.pipeline import run_to_end
from mosapp.views.jobs import (
    AudioSource,
    InspectRequest,
    OriginalPreview,
    inspect,
    job_fraction,
    read_source,
)
from tests.helpers import RATE, music_like

FAST = PipelineConfig(phase="pghi")


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "music.wav"
    sf.write(path, music_like(2.0).T, RATE)
    return path


def test_a_run_measures_what_evaluate_measures(wav):
    values: list = []
    result = run_to_end(inspect(InspectRequest(AudioSource(str(wav)), "pghi-only", FAST, visqol=False)), values.append)
    previews = [v for v in values if isinstance(v, OriginalPreview)]
    events: list[Progress] = [v for v in values if isinstance(v, Progress)]
    # The original is handed over right after reading, before the codec runs.
    first_encode = next(i for i, v in enumerate(values) if isinstance(v, Progress) and v.stage == "encode")
    assert len(previews) == 1 and values.index(previews[0]) < first_encode
    assert previews[0].display.original_db.shape[0] == 1025  # the default analysis: Hann 2048
    stages = [e.stage for e in events]
    assert stages[0] == "read" and stages[-1] == "display"
    assert {"encode", "decode", "metrics"} <= set(stages)
    fractions = [job_fraction(e) for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert result.reference.shape == result.decoded.shape == (1, 2 * RATE)
    assert result.file_kbps == pytest.approx(8 * result.file_bytes / 2.0 / 1000)
    want = evaluate.score(result.reference, result.decoded, visqol=False)
    for key, value in want.items():
        if not math.isnan(value):
            assert result.scores[key] == pytest.approx(value)
    assert math.isnan(result.scores["visqol"]) and "visqol" in result.notes
    # Drawn from the view's default analysis (Hann 2048: 1025 bins), unless the request names another.
    assert result.display.original_db.shape[0] == 1025 and result.display.analysis.window_length == 2048
    from mosapp.views.spectrogram_data import Analysis

    lattice = run_to_end(inspect(InspectRequest(AudioSource(str(wav)), "pghi-only", FAST, visqol=False,
                                                analysis=Analysis.lattice("thesis"))))
    assert lattice.display.original_db.shape[0] == 257


def test_names_are_checked_before_the_file_is_read(tmp_path):
    missing = AudioSource(str(tmp_path / "nowhere.wav"))
    with pytest.raises(ConfigError, match="Unknown codec"):
        next(inspect(InspectRequest(missing, "no-such-codec")))
    with pytest.raises(ConfigError, match="phase backend"):
        next(inspect(InspectRequest(missing, "pghi-only", PipelineConfig(phase="nope"))))
    with pytest.raises(AudioError, match="does not exist"):
        run_to_end(inspect(InspectRequest(missing, "pghi-only", FAST)))


def test_unavailable_codec_says_why(tmp_path, wav):
    from mosapp.codecs import all_codecs

    unavailable = [c for c in all_codecs() if not c.availability().ok]
    if not unavailable:
        pytest.skip("every codec is available on this machine")
    codec = unavailable[0]
    with pytest.raises(MosappError) as info:
        next(inspect(InspectRequest(AudioSource(str(wav)), codec.name, FAST)))
    assert str(info.value) == codec.availability().reason


def test_excerpts(wav):
    audio = read_source(AudioSource(str(wav), start_s=0.5, length_s=1.0))
    assert audio.samples.shape == (1, RATE)
    whole = read_source(AudioSource(str(wav)))
    np.testing.assert_array_equal(audio.samples, whole.samples[:, RATE // 2: RATE // 2 + RATE])
    with pytest.raises(AudioError, match="does not fit"):
        read_source(AudioSource(str(wav), start_s=1.5, length_s=1.0))


def test_closing_the_generator_stops_the_run(wav):
    gen = inspect(InspectRequest(AudioSource(str(wav)), "pghi-only", FAST, visqol=False))
    first = next(gen)
    assert first.stage == "read"
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)


def test_a_long_file_is_shown_while_it_is_read(tmp_path):
    """Opening a long file draws its original from the first block on (the whole track's time
    axis, filled from the left), not only after the last block is read."""
    from mosapp.core import job
    from mosapp.views.jobs import FIRST_PREVIEW_COLUMNS, preview

    path = tmp_path / "long.wav"
    sf.write(path, music_like(40.0, seed=6).T, RATE, subtype="PCM_16")
    published = []
    control = job.JobControl(on_progress=published.append)
    with control.active():
        final = run_to_end(preview(AudioSource(str(path))))
    growing = [p for p in published if isinstance(p, OriginalPreview)]
    assert growing and not growing[0].complete and final.complete
    first = growing[0]
    assert first.display.columns <= FIRST_PREVIEW_COLUMNS
    assert first.display.duration_s == pytest.approx(40.0, abs=0.1)  # the whole track's axis already
    assert first.reference.shape == final.reference.shape
    # Drawn so far: the start has sound, the rest is still at the floor (silence, not yet read).
    image = first.display.original_db
    k = image.shape[1] // 10
    assert image[:, :k].max() > image.min() + 30 and image[:, -k:].max() == image.min()
