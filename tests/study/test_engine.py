"""The listener-facing engine: a scripted listener, blinding, resuming, and refusing bad ratings."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter

import numpy as np
import pytest
from sqlalchemy import func, select

from mosapp.study import PlayCounts, StudyEngine, Trial, load_study
from mosapp.study.errors import StudyError
from mosapp.study.store import RatingRow, SessionRow, StimulusRow, TrialRow


def _run(session, values=lambda t: 4, stop_after=None):
    rated = []
    while (trial := session.next_trial()) is not None:
        if stop_after is not None and len(rated) == stop_after:
            break
        session.rate(trial, values(trial), play_counts=(2, 1), listening_time_s=3.5, response_time_s=1.25)
        rated.append(trial)
    return rated


def test_a_scripted_listener_completes_the_study(study):
    d = load_study(study)
    with StudyEngine.open(study) as engine:
        assert engine.labels[1] == d.labels[0] and engine.labels[5] == d.labels[4]
        with engine.start_or_resume("L01", app_version="test", audio_device="none") as session:
            assert session.progress.next_index == 0 and not session.progress.finished
            rated = _run(session, values=lambda t: 1 + t.index % 5)
            assert session.next_trial() is None
            p = session.progress
            assert p.finished and p.rated == d.trials_per_listener and p.training_rated == d.training.trials
        assert [t.index for t in rated] == list(range(len(rated)))
        assert all(t.total == len(rated) for t in rated)
        assert [t.is_training for t in rated] == [True] * d.training.trials + [False] * d.trials_per_listener
        with engine.store.read() as s:
            ratings = s.execute(select(RatingRow)).scalars().all()
            assert len(ratings) == len(rated)
            r = ratings[0]
            assert (r.plays_sample, r.plays_reference, r.listening_time_s, r.response_time_s) == (2, 1, 3.5, 1.25)
            sitting = s.execute(select(SessionRow)).scalar_one()
            assert sitting.app_version == "test" and sitting.audio_device == "none" and sitting.ended_at is not None
        [row] = engine.listener_progress()
        assert row.code == "L01" and row.finished and row.sessions == 1


def _trial_strings(trial: Trial) -> list[str]:
    out = []
    for f in dataclasses.fields(trial):
        value = getattr(trial, f.name)
        if isinstance(value, str):
            out.append(value)
    return out


def test_trials_are_blind(study):
    d = load_study(study)
    with StudyEngine.open(study) as engine, engine.store.read() as s:
        files = {r.audio_file for r in s.scalars(select(StimulusRow))}
    secrets = set(d.conditions) | {"pghi", "lowpass", "kbps", "codec", "condition", ".wav", str(d.stimuli_dir)}
    secrets |= {f[:16] for f in files}
    with StudyEngine.open(study) as engine, engine.start_or_resume("L02") as session:
        ids = []
        while (trial := session.next_trial()) is not None:
            assert {f.name for f in dataclasses.fields(trial)} == {
                "trial_id", "stimulus_id", "reference_id", "sample", "reference", "sample_rate", "index", "total",
                "is_training"}
            for text in _trial_strings(trial):
                for secret in secrets:
                    assert secret not in text, (secret, text)
            assert re.fullmatch(r"[0-9a-f]{32}", trial.stimulus_id)
            assert trial.reference_id != trial.stimulus_id  # not even for the hidden reference
            assert trial.sample.dtype == np.float32 and trial.sample.ndim == 2 and trial.sample_rate == 44100
            assert trial.reference is not None and trial.reference.shape == trial.sample.shape
            assert not trial.sample.flags.writeable
            ids += [trial.trial_id, trial.stimulus_id, trial.reference_id]
            session.rate(trial, 5)
        assert len(set(ids)) == len(ids)  # fresh tokens for every trial


def test_the_hidden_reference_sounds_like_the_known_one(study):
    with StudyEngine.open(study) as engine, engine.start_or_resume("L03") as session:
        same = 0
        while (trial := session.next_trial()) is not None:
            same += bool(np.array_equal(trial.sample, trial.reference))
            session.rate(trial, 4)
    d = load_study(study)
    # one per clip in the rated trials, plus any training trial on the reference
    assert same >= len(d.clips)


def test_acr_trials_have_no_reference(acr_study):
    with StudyEngine.open(acr_study) as engine, engine.start_or_resume("L1") as session:
        trial = session.next_trial()
        assert trial.reference is None and trial.reference_id is None
        assert engine.test_type == "acr" and engine.labels[5] == "Excellent"


def test_resuming_continues_at_the_first_unrated_trial(study):
    with StudyEngine.open(study) as engine:
        with engine.start_or_resume("L04") as first:
            done = _run(first, stop_after=3)
            pending = first.next_trial()
        assert pending.index == 3
        with engine.start_or_resume("L04") as second:
            again = second.next_trial()
            assert again.index == 3 and again.trial_id == pending.trial_id
            assert second.progress.next_index == 3
            rest = _run(second)
        assert [t.index for t in done + rest] == list(range(len(done) + len(rest)))
        [row] = engine.listener_progress()
        assert row.sessions == 2 and row.finished
        with engine.store.read() as s:
            per_trial = Counter(s.scalars(select(RatingRow.trial_id)))
            assert set(per_trial.values()) == {1}
            assert len(set(s.scalars(select(RatingRow.session_id)))) == 2


def test_listeners_get_different_balanced_plans(study):
    d = load_study(study)
    with StudyEngine.open(study) as engine:
        for code in ("A", "B", "C"):
            with engine.start_or_resume(code) as s:
                _run(s)
        with engine.store.read() as s:
            rows = s.execute(select(TrialRow.listener_id, TrialRow.position, TrialRow.stimulus_id)
                             .where(TrialRow.is_training.is_(False)).order_by(TrialRow.listener_id, TrialRow.position)
                             ).all()
    orders = {}
    for listener, _, stim in rows:
        orders.setdefault(listener, []).append(stim)
    assert len({tuple(v) for v in orders.values()}) == 3
    assert all(len(v) == d.trials_per_listener == len(set(v)) for v in orders.values())


@pytest.mark.parametrize("value", [0, 6, -1, 3.5, True, "4", None, float("nan")])
def test_a_rating_outside_one_to_five_is_refused(study, value):
    with StudyEngine.open(study) as engine, engine.start_or_resume("L05") as session:
        trial = session.next_trial()
        with pytest.raises(StudyError) as info:
            session.rate(trial, value)
        assert "give a whole number from 1 to 5" in str(info.value) and "\n" not in str(info.value)
        assert session.next_trial().trial_id == trial.trial_id  # nothing was stored
        session.rate(trial, 5.0)  # an integral float is fine


def test_nothing_is_rated_twice(study):
    with StudyEngine.open(study) as engine:
        with engine.start_or_resume("L06") as session:
            trial = session.next_trial()
            session.rate(trial, 3)
            with pytest.raises(StudyError, match="already rated"):
                session.rate(trial, 4)
        with engine.start_or_resume("L07") as other, pytest.raises(StudyError, match="not one of listener L07"):
            other.rate(trial, 4)
        with engine.store.read() as s:
            assert s.scalar(select(func.count()).select_from(RatingRow)) == 1


def test_bad_session_inputs(study):
    with StudyEngine.open(study) as engine:
        for code in ("", "jane.doe@example.org", "has space", "x" * 40):
            with pytest.raises(StudyError, match="listener code"):
                engine.start_or_resume(code)
        session = engine.start_or_resume("L08")
        trial = session.next_trial()
        with pytest.raises(StudyError, match="play counts are 0 or more"):
            session.rate(trial, 3, play_counts=-1)
        with pytest.raises(StudyError, match="response_time_s"):
            session.rate(trial, 3, response_time_s=-2)
        session.rate(trial, 3, play_counts=PlayCounts(sample=1, reference=2))
        session.close()
        with pytest.raises(StudyError, match="session is closed"):
            session.rate(session.next_trial(), 3)


def test_an_unprepared_or_changed_study_is_refused(study, tmp_path):
    text = study.read_text()
    changed = tmp_path / "dcr.toml"
    changed.write_text(text.replace("seed = 11", "seed = 12"))
    with StudyEngine.open(changed) as engine, pytest.raises(StudyError, match="changed since it was prepared"):
        engine.start_or_resume("L1")
    renamed = tmp_path / "other.toml"
    renamed.write_text(text)
    with StudyEngine.open(renamed) as engine, pytest.raises(StudyError, match='"other" is not in'):
        engine.start_or_resume("L1")


def test_a_missing_stimulus_file_is_reported(study, tmp_path):
    import shutil

    d = load_study(study)
    copy = tmp_path / "stim"
    shutil.copytree(d.stimuli_dir, copy)
    (tmp_path / "moved").mkdir()
    moved = tmp_path / "moved" / "dcr.toml"
    moved.write_text(study.read_text().replace(str(d.stimuli_dir), str(copy)))
    for f in copy.glob("*.wav"):
        f.unlink()
    with StudyEngine.open(moved) as engine, engine.start_or_resume("L1") as session:
        with pytest.raises(StudyError, match="missing or unreadable"):
            session.next_trial()


def test_rating_into_a_locked_database_says_so_and_loses_nothing(study):
    import sqlite3

    d = load_study(study)
    with StudyEngine.open(study, busy_timeout_s=0.3) as engine, engine.start_or_resume("L09") as session:
        trial = session.next_trial()
        holder = sqlite3.connect(d.database_url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StudyError) as info:
                session.rate(trial, 4)
            assert "is locked by another program" in str(info.value)
            assert session.next_trial().trial_id == trial.trial_id  # reading still works
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        session.rate(trial, 4)
        assert session.progress.next_index == 1


def test_a_read_only_engine_plays_but_does_not_rate(study):
    with StudyEngine.open(study) as engine:
        with engine.start_or_resume("L10") as session:
            session.rate(session.next_trial(), 5)
    with StudyEngine.open(study, readonly=True) as engine:
        with pytest.raises(StudyError, match="read-only"):
            engine.start_or_resume("L10")
        assert engine.listener_progress()[0].rated + engine.listener_progress()[0].training_rated == 1


def test_a_study_prepared_before_secret_seeds_keeps_its_plans_and_opens(study, tmp_path):
    """A study whose file names no seed was planned from seed 0 before plan seeds became secret; its database
    says so, and its listeners keep their plans (the study is not refused as "changed")."""
    import shutil

    from mosapp.study import open_store
    from mosapp.study.store import StudyRow

    d = load_study(study)
    firsts = []
    for name, text in (("legacy", study.read_text().replace("seed = 11\n", "")),
                       ("explicit", study.read_text().replace("seed = 11\n", "seed = 0\n"))):
        folder = tmp_path / name
        folder.mkdir()
        db = folder / "dcr.sqlite"
        shutil.copy(d.database_url.removeprefix("sqlite:///"), db)
        path = folder / "dcr.toml"
        path.write_text(text.replace(d.database_url.removeprefix("sqlite:///"), str(db)))
        mine = load_study(path)
        with open_store(mine.database_url) as store, store.write() as s:
            row = s.scalars(select(StudyRow).where(StudyRow.name == mine.name)).one()
            # What such a study recorded when it was prepared: its plans' seed, 0.
            row.design_json = dataclasses.replace(mine, seed=0, seed_in_file=True).design_json()
        with StudyEngine.open(path) as engine, engine.start_or_resume("L9") as session:
            firsts.append(session.next_trial().sample)
            assert engine.definition.seed == 0 and engine.definition.seed_in_file  # reproducible: said not blind
    np.testing.assert_array_equal(firsts[0], firsts[1])  # the legacy study plans as seed 0 always did
