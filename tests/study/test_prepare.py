"""Rendering stimuli: loudness-matched, equal length, measured, cached by content hash, blind file names."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from mosapp.study import load_study, open_store
from mosapp.study.errors import StudyError
from mosapp.study.prepare import align_and_trim, estimate_delay, fade, integrated_loudness
from mosapp.study.store import ConditionRow, StimulusRow, read_stimulus_metrics
from tests.study.conftest import prepare, write_study


def _stimuli(definition):
    with open_store(definition.database_url, create=False) as store, store.read() as s:
        rows = s.execute(select(StimulusRow, ConditionRow.name).join(
            ConditionRow, StimulusRow.condition_id == ConditionRow.id)).all()
        return [(r, name) for r, name in rows]


def _metrics(definition):
    """Every stimulus's stored metrics by stimulus id (store.read_stimulus_metrics)."""
    with open_store(definition.database_url, create=False) as store, store.read() as s:
        return read_stimulus_metrics(s)


def test_every_stimulus_is_rendered_level_matched_and_measured(prepared_template):
    d = load_study(prepared_template["dcr"])
    rows = _stimuli(d)
    stored = _metrics(d)
    assert len(rows) == len(d.clips) * len(d.conditions)
    n = int(round(d.clips[0].length_s * 44100))
    for row, condition in rows:
        m = stored.get(row.id, {})
        assert re.fullmatch(r"[0-9a-f]{32}\.wav", row.audio_file)  # salted names reveal nothing
        data, rate = sf.read(d.stimuli_dir / row.audio_file, dtype="float32", always_2d=True)
        assert rate == 44100 and data.shape == (n, 1) and row.n_samples == n
        assert integrated_loudness(data.T) == pytest.approx(d.loudness_lufs, abs=0.05)
        assert row.gain_db == pytest.approx(d.loudness_lufs - row.loudness_lufs)
        if condition == "reference":
            assert row.payload_kbps is None and m == {}
        else:
            assert row.payload_kbps > 0
            assert set(m) == set(d.metrics)  # every metric asked for, and only those
            assert np.isfinite(m["mel_distance"])
            assert "si_sdr_db" in m and "spectral_convergence_db" in m
            assert "visqol" not in m  # not asked for in this study
            assert m["low_band_distance_db"] >= 0 and -1 <= m["low_band_correlation"] <= 1
            assert "high_band_distance_db" not in m  # not asked for either


def test_a_second_run_renders_nothing(study):
    result = prepare(study)
    assert result.rendered == 0 and result.reused == result.total > 0


def test_the_cache_lives_in_the_database(prepared_template, tmp_path):
    """Facts about a stimulus are in its database only: a new database renders again, under its
    own salted names, and leaves the other study's files alone."""
    folder = prepared_template["stimuli"]
    before = {p.name: p.stat().st_size for p in folder.iterdir()}
    path = write_study(tmp_path, "dcr", database=str(tmp_path / "fresh.sqlite"), stimuli_dir=str(folder))
    result = prepare(path)
    assert result.rendered == result.total == len(_stimuli(load_study(path)))
    after = {p.name: p.stat().st_size for p in folder.iterdir()}
    assert before.items() <= after.items()
    assert prepare(path).rendered == 0


def test_a_changed_setting_renders_again_only_before_listeners(tmp_path):
    path = write_study(tmp_path, "s", conditions=["reference", "pghi-only"], starts=(0.0, 3.0))
    first = prepare(path)
    assert first.rendered == first.total == 4
    path.write_text(path.read_text().replace("loudness_lufs = -23.0", "loudness_lufs = -26.0"))
    again = prepare(path)
    assert again.rendered == 4
    d = load_study(path)
    for row, _ in _stimuli(d):
        data, _ = sf.read(d.stimuli_dir / row.audio_file, dtype="float32", always_2d=True)
        assert integrated_loudness(data.T) == pytest.approx(-26.0, abs=0.05)

    from mosapp.study import StudyEngine

    with StudyEngine.open(path) as engine:
        engine.start_or_resume("L1").close()
    path.write_text(path.read_text().replace("loudness_lufs = -26.0", "loudness_lufs = -20.0"))
    with pytest.raises(StudyError, match="already has listeners"):
        prepare(path)
    path.write_text(path.read_text().replace("start_s = [0.0, 3.0]", "start_s = [0.0, 4.0]"))
    with pytest.raises(StudyError, match="changed its design"):
        prepare(path)


def test_a_silent_clip_is_refused(tmp_path):
    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(44100 * 2, dtype=np.float32), 44100)
    path = write_study(tmp_path, "s", conditions=["reference"], starts=(0.0,))
    path.write_text(path.read_text().replace(path.read_text().split('path = "')[1].split('"')[0], str(silent)))
    with pytest.raises(StudyError) as info:
        prepare(path)
    assert "silent" in str(info.value) and "pluck" in str(info.value)


def test_a_clip_that_cannot_be_read(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + b"\0" * 100)
    path = write_study(tmp_path, "s", conditions=["reference"], starts=(0.0,))
    path.write_text(path.read_text().replace(path.read_text().split('path = "')[1].split('"')[0], str(bad)))
    with pytest.raises(StudyError) as info:
        prepare(path)
    assert 'The clip "pluck" cannot be used' in str(info.value) and "bad.wav" in str(info.value)


def test_delay_is_found_and_undone():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 44100)).astype(np.float32)
    delayed = np.concatenate([np.zeros((1, 300), np.float32), x], axis=1)
    assert estimate_delay(x, delayed, 2000) == 300
    assert np.array_equal(align_and_trim(delayed, 300, x.shape[1]), x)
    assert estimate_delay(x, rng.standard_normal((1, 44100)), 2000) == 0  # unrelated: leave it
    early = align_and_trim(x[:, 50:], -50, x.shape[1])
    assert early.shape == x.shape and np.array_equal(early[:, 50:], x[:, 50:])


def test_fades_are_raised_cosine_and_leave_the_middle():
    x = np.ones((2, 1000), np.float32)
    y = fade(x, 1.0)  # 44 samples at 44.1 kHz
    assert y[0, 0] < 0.01 and y[0, -1] < 0.01 and np.all(y[:, 100:900] == 1.0)
    assert np.all(np.diff(y[0, :44]) > 0)


def test_a_stimulus_is_measured_as_it_was_before_the_registry():
    """render_stimulus (via evaluation.measure_steps and metrics.score) gives exactly what the
    hand-written path gave: codec.process in memory, delay undone, whole-track metrics of the mono
    mixes with spectral convergence on the pipeline's lattice, the payload bitrate."""
    import torch

    from mosapp.codecs import get_codec
    from mosapp.core import dsp, metrics
    from mosapp.core.config import PipelineConfig, get_geometry
    from mosapp.study.definition import METRIC_NAMES
    from mosapp.study.prepare import render_stimulus
    from tests.helpers import music_like

    class Definition:  # the fields render_stimulus reads
        pipeline = PipelineConfig(phase="pghi", geometry="thesis")
        metrics = tuple(m for m in METRIC_NAMES if m != "visqol")
        loudness_lufs = -23.0

    excerpt = music_like(1.5, seed=4)
    out, rendered = render_stimulus(excerpt, "pghi-only", Definition, "cpu")
    decoded, encoded = get_codec("pghi-only").process(excerpt, Definition.pipeline)
    decoded = np.asarray(decoded, dtype=np.float32)
    delay = estimate_delay(excerpt, decoded, int(0.1 * 44100))
    aligned = align_and_trim(decoded, delay, excerpt.shape[1])
    ref, est = excerpt.astype(np.float32).mean(axis=0), aligned.mean(axis=0)
    geometry = get_geometry("thesis")
    mag = lambda a: dsp.stft(dsp.pad_for_lattice(torch.from_numpy(a), geometry)[0], geometry).abs()  # noqa: E731
    want = {"mel_distance": metrics.mel_distance(ref, est, 44100), "si_sdr_db": metrics.si_sdr_db(ref, est),
            "spectral_convergence_db": metrics.spectral_convergence_db(mag(ref), mag(est)),
            **metrics.band_metrics(ref, est, 44100)}
    assert rendered.metrics == {m: want[m] for m in Definition.metrics}
    assert rendered.payload_kbps == encoded.payload_kbps and rendered.delay_samples == delay
    gain = np.float32(10.0 ** ((-23.0 - integrated_loudness(aligned)) / 20.0))
    np.testing.assert_array_equal(out, (aligned * gain).astype(np.float32))


@pytest.mark.slow
def test_a_local_cluster_renders_the_same_stimuli_as_this_process(prepared_template, tmp_path):
    """study prepare on the engine of mosapp evaluate: every core renders, the stimuli are those one process renders."""
    path = write_study(tmp_path, "dcr", database=str(tmp_path / "cluster.sqlite"), stimuli_dir=str(tmp_path / "stim"))
    result = prepare(path, workers=2)
    assert result.rendered == result.total == 9
    ours = load_study(path)
    theirs = load_study(prepared_template["dcr"])
    metrics_ours, metrics_theirs = _metrics(ours), _metrics(theirs)
    by_key_ours = {r.cache_key: (ours.stimuli_dir / r.audio_file, r) for r, _ in _stimuli(ours)}
    by_key_theirs = {r.cache_key: (theirs.stimuli_dir / r.audio_file, r) for r, _ in _stimuli(theirs)}
    assert set(by_key_ours) == set(by_key_theirs)
    for key, (wav, row) in by_key_ours.items():
        other_wav, other = by_key_theirs[key]
        a = sf.read(wav, dtype="float32")[0]
        b = sf.read(other_wav, dtype="float32")[0]
        # Worker processes run torch on one thread: the float summation order may move a few LSBs.
        np.testing.assert_allclose(a, b, atol=1e-5)
        assert row.payload_kbps == other.payload_kbps
        mine, their = metrics_ours.get(row.id, {}), metrics_theirs.get(other.id, {})
        assert set(mine) == set(their)
        if "mel_distance" in mine:
            assert mine["mel_distance"] == pytest.approx(their["mel_distance"], rel=1e-4)
