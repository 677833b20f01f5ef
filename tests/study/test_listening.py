"""The listening controller without Qt: a study file and its SQLite database, real sessions and
ratings; the clock is the test's, the player's measurements are given as a Playback."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from pathlib import Path

import pytest

from mosapp.study import load_study, open_store
from mosapp.study.errors import StudyError
from mosapp.study.export import ratings_frame
from mosapp.study.listening import (
    ALL_RATED,
    ALREADY_RATED,
    NOT_PREPARED,
    ListenController,
    Playback,
    Screen,
    break_text,
    heading,
    plan_text,
    practice_over_text,
    streams,
    welcome_text,
)
from mosapp.study.types.ccr import CcrTrial
from mosapp.study.types.five_grade import Trial
from mosapp.study.types.mushra import MushraTrial
from tests.study.conftest import TRAP_CLIP, prepare, study_toml, write_study


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def heard(n: int, *, plays: int = 1, listened_s: float = 1.0, ends: bool = True) -> Playback:
    """What a player reports after each of its ``n`` streams was played once to its end."""
    return Playback((plays,) * n, (listened_s,) * n, (ends,) * n, (1.0,) * n)


def controller_on(path: Path, clock: Clock | None = None, **kwargs) -> ListenController:
    c = ListenController(clock=clock or Clock(), **kwargs)
    assert c.open(load_study(path, check_codecs=False)) is None
    return c


def ratings(path: Path, code: str, **kwargs):
    d = load_study(path, check_codecs=False)
    with open_store(d.database_url, create=False) as store:
        frame = ratings_frame(store, d, include_training=True, **kwargs)
    return frame[frame["listener"] == code].sort_values("trial").reset_index(drop=True)


def run_through(c: ListenController, step, score=3, playback_of=None):
    """Rate every trial; returns the screens passed on the way and the last step."""
    seen = []
    while step.screen is not Screen.DONE:
        seen.append(step.screen)
        if step.screen is Screen.PRACTICE_OVER:
            step = c.end_practice()
        elif step.screen is Screen.BREAK:
            step = c.end_break()
        else:
            assert step.screen is Screen.TRIAL, step
            s = streams(step.trial)
            step = c.rate(score(step.trial) if callable(score) else score,
                          playback_of(step.trial) if playback_of else heard(len(s.buffers)))
    return seen, step


# ---------------------------------------------------------------------------------- DCR / ACR
def test_a_dcr_listener_goes_through_practice_breaks_and_the_end(study):
    clock = Clock()
    c = controller_on(study, clock, break_every_trials=2, break_every_minutes=0)
    step = c.start("L01", audio_device="none (silent)")
    assert step.screen is Screen.INSTRUCTIONS and step.progress.training_total == 1
    assert welcome_text("L01", step.progress) == "Welcome, L01."
    assert plan_text(step.progress).startswith("The first trial is practice")
    step = c.begin()
    assert step.screen is Screen.TRIAL and step.trial.is_training and step.saved is None
    assert heading(step.trial, step.progress, "trial") == "Practice trial 1 of 1"
    s = streams(step.trial)
    assert s.names == ("reference", "sample") and s.reference == 0 and s.samples == (1,)

    # Not heard: refused, nothing stored, the same trial stays current.
    with pytest.raises(StudyError, match="cannot be rated yet"):
        c.rate(4, Playback((1, 1), (1.0, 0.5), (True, False), (1.0, 1.0)))
    assert c.trial is step.trial and len(ratings(study, "L01")) == 0
    clock.now += 7.5
    after = c.rate(4, Playback((2, 1), (0.3, 0.9), (True, True), (1.0, 1.0)))
    assert after.saved == (0, 4) and after.screen is Screen.PRACTICE_OVER
    assert "practice trials are over" in practice_over_text(after.progress)
    stored = ratings(study, "L01")
    assert stored["value"].tolist() == [4]
    assert stored[["plays_sample", "plays_reference"]].values.tolist() == [[1, 2]]  # (sample, reference)
    assert stored["listening_time_s"].tolist() == pytest.approx([1.2])
    assert stored["response_time_s"].tolist() == pytest.approx([7.5])

    step = c.end_practice()
    assert step.screen is Screen.TRIAL and heading(step.trial, step.progress, "trial") == "Trial 1 of 9"
    seen, last = run_through(c, step, score=lambda t: 1 + t.index % 5)
    # The practice trial counts towards the first break: breaks after trials 1, 3, 5 and 7; none before the end.
    assert seen.count(Screen.BREAK) == 4
    assert last.message == ALL_RATED and last.saved == (9, 5) and c.session is None
    values = ratings(study, "L01")["value"].tolist()
    assert values == [4] + [1 + i % 5 for i in range(1, 10)]
    assert ratings(study, "L01")["is_training"].tolist() == [True] + [False] * 9
    c.close()


def test_a_break_is_due_after_some_minutes_and_its_clock_starts_again(study):
    clock = Clock()
    c = controller_on(study, clock, break_every_trials=0, break_every_minutes=1.0, require_full_listen=False)
    c.start("L02")
    c.begin()
    step = c.rate(5, heard(2, ends=False))
    assert step.screen is Screen.PRACTICE_OVER
    step = c.end_practice()
    clock.now += 61
    step = c.rate(4, heard(2, ends=False))
    assert step.screen is Screen.BREAK and "2 of 10 trials" in break_text(step.progress)
    step = c.end_break()
    assert step.screen is Screen.TRIAL and step.trial.index == 2
    assert c.rate(4, heard(2)).screen is Screen.TRIAL  # the clock started again
    c.close()


def test_a_returning_listener_resumes_and_a_finished_one_is_told(study):
    c = controller_on(study)
    c.start("L03")
    c.begin()
    c.rate(5, heard(2))
    c.end_session()
    step = c.start("L03")
    assert welcome_text("L03", step.progress).startswith("Welcome back, L03. Resuming at trial 2 of 10")
    step = c.begin()
    assert step.trial.index == 1
    _, last = run_through(c, step)
    assert last.screen is Screen.DONE
    again = c.start("L03")
    assert again.screen is Screen.DONE and again.message == ALREADY_RATED and c.session is None
    with pytest.raises(StudyError, match="not accepted"):
        c.start("Jane Doe <jane@example.org>")
    assert c.start_problem("") == "Enter your listener code first."
    c.close()
    assert not c.is_open and c.start_problem("L03") == "No prepared study is open."


def test_reference_first_keeps_the_sample_until_the_reference_was_heard(study):
    c = controller_on(study, require_full_listen=False)
    # The same plan with P.800's order rule (a study file saying reference_first = true, prepared as such).
    c.definition = dataclasses.replace(c.definition, reference_first=True)
    c.start("L04")
    c.begin()
    not_yet = Playback((0, 1), (0.0, 1.0), (False, True), (1.0, 1.0))
    assert c.needs_reference(not_yet) and not c.ready(not_yet)
    with pytest.raises(StudyError):
        c.rate(3, not_yet)
    reference_heard = Playback((1, 0), (1.0, 0.0), (True, False), (1.0, 1.0))
    assert not c.needs_reference(reference_heard) and c.ready(reference_heard)
    # The sample follows the reference by itself: once, and only when nothing plays.
    assert c.follow_on(not_yet, playing=False) is None
    assert c.follow_on(reference_heard, playing=True) is None
    assert c.follow_on(reference_heard, playing=False) == 1
    assert c.follow_on(reference_heard, playing=False) is None
    assert c.rate(3, reference_heard).saved == (0, 3)
    c.close()


def test_without_reference_first_nothing_plays_by_itself(study):
    c = controller_on(study, require_full_listen=False)
    c.start("L05")
    c.begin()
    assert c.follow_on(Playback((1, 0), (1.0, 0.0), (True, False), (1.0, 1.0)), playing=False) is None
    c.close()


def test_acr_rates_the_sample_alone(acr_study):
    c = controller_on(acr_study)
    c.start("L05")
    step = c.begin()
    assert isinstance(step.trial, Trial) and step.trial.reference is None
    s = streams(step.trial)
    assert s.names == ("sample",) and s.reference is None and s.samples == (0,)
    with pytest.raises(StudyError, match="not accepted"):
        c.rate(6, heard(1))
    assert c.trial is step.trial
    c.rate(3, heard(1, plays=2))
    stored = ratings(acr_study, "L05")
    assert stored["value"].tolist() == [3] and stored["plays_reference"].tolist() == [0]
    assert stored["plays_sample"].tolist() == [2]
    c.close()


def test_a_locked_database_keeps_the_rating_to_try_again(study):
    c = controller_on(study, busy_timeout_s=0.2)
    c.start("L06")
    trial = c.begin().trial
    db = load_study(study, check_codecs=False).database_url.removeprefix("sqlite:///")
    other = sqlite3.connect(db, isolation_level=None, timeout=0.1)
    other.execute("BEGIN EXCLUSIVE")  # another program holds the database
    try:
        with pytest.raises(StudyError, match="locked"):
            c.rate(4, heard(2))
        assert c.trial is trial and c.since_break == 0
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert c.rate(4, heard(2)).saved == (0, 4)
    assert ratings(study, "L06")["value"].tolist() == [4]
    c.close()


def test_an_unprepared_or_changed_study_says_why(tmp_path, study):
    fresh = write_study(tmp_path / "fresh", "f", database=str(tmp_path / "fresh" / "f.sqlite"))
    c = ListenController()
    assert c.open(load_study(fresh, check_codecs=False)) == NOT_PREPARED and not c.is_open
    changed = tmp_path / "changed" / study.name
    changed.parent.mkdir()
    changed.write_text(study.read_text().replace("seed = 11", "seed = 12"))
    assert c.open(load_study(changed, check_codecs=False)) == "The study file changed since its stimuli were prepared."
    c.close()


def test_gold_trials_come_in_the_plan_and_are_rated_like_any_other(tmp_path):
    gold = '[[gold]]\nclip = "trap"\nexpected = 2\n'
    text = study_toml(starts=(0.0,), training=0, conditions=["reference", "pghi-only"])
    path = tmp_path / "gold.toml"
    path.write_text(text.replace("[training]", gold + "\n[training]") + TRAP_CLIP, encoding="utf-8")
    prepare(path)
    c = controller_on(path)
    c.start("G1")
    seen, last = run_through(c, c.begin(), score=2)
    assert last.screen is Screen.DONE and seen == [Screen.TRIAL] * 3
    stored = ratings(path, "G1")
    assert stored["is_gold"].tolist().count(True) == 1 and stored["value"].eq(2).all()
    c.close()


# ---------------------------------------------------------------------------------- MUSHRA / CCR
def _copy(template: Path, tmp_path: Path) -> Path:
    db_name = template.stem + ".sqlite"
    shutil.copy(template.parent / db_name, tmp_path / db_name)
    path = tmp_path / template.name
    path.write_text(template.read_text().replace(str(template.parent / db_name), str(tmp_path / db_name)))
    return path


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("listening-templates")
    out = {}
    for kind in ("mushra", "ccr"):
        out[kind] = write_study(root, kind, test_type=kind, conditions=["reference", "pghi-only"],
                                database=str(root / f"{kind}.sqlite"), stimuli_dir=str(root / "stimuli"),
                                metrics=["mel_distance"], starts=(0.0, 3.0))
        prepare(out[kind])
    return out


def test_a_mushra_screen_needs_every_sample_played_and_saves_in_one_go(templates, tmp_path):
    path = _copy(templates["mushra"], tmp_path)
    c = controller_on(path, break_every_trials=0, break_every_minutes=0)
    c.start("MU1")
    step = c.begin()
    trial = step.trial
    assert isinstance(trial, MushraTrial) and heading(trial, step.progress, "screen").startswith("Practice screen 1")
    s = streams(trial)
    n = len(trial.items)
    assert s.names == ("reference", *(str(i + 1) for i in range(n))) and s.samples == tuple(range(1, n + 1))
    short = Playback((1,) * (n + 1), (0.0,) + (0.5,) * n, (False,) * (n + 1), (1.0,) * (n + 1))
    assert not c.ready(short)
    with pytest.raises(StudyError):
        c.rate([50] * n, short)
    played = Playback((1,) + (2,) * n, (0.0,) + (1.0,) * n, (False,) * (n + 1), (2.0,) * (n + 1))
    assert c.ready(played)
    with pytest.raises(StudyError, match="one score"):
        c.rate(50, played)
    after = c.rate([100] + [40] * (n - 1), played)
    assert after.saved == (0, n)
    _, last = run_through(c, after, score=lambda t: [60] * len(t.items))
    assert last.screen is Screen.DONE
    c.close()


def test_a_ccr_pair_needs_both_samples_heard(templates, tmp_path):
    path = _copy(templates["ccr"], tmp_path)
    c = controller_on(path, break_every_trials=0, break_every_minutes=0)
    c.start("CC1")
    step = c.begin()
    assert isinstance(step.trial, CcrTrial) and heading(step.trial, step.progress, "pair").startswith("Practice pair")
    assert streams(step.trial).names == ("A", "B")
    half = Playback((1, 1), (1.0, 0.4), (True, False), (1.0, 1.0))
    assert not c.ready(half)
    with pytest.raises(StudyError, match="not accepted"):
        c.rate(4, heard(2))  # -3..+3
    after = c.rate(-2, heard(2))
    assert after.saved == (0, -2)
    _, last = run_through(c, after, score=1)
    assert last.screen is Screen.DONE
    c.close()


def test_a_real_player_measures_what_the_rating_stores(study):
    from mosapp.playback import Player

    c = controller_on(study)
    c.start("P1")
    trial = c.begin().trial
    s = streams(trial)
    with Player(list(s.buffers), rate=trial.sample_rate, names=list(s.names)) as player:  # no device: silent
        player.select(s.samples[0])
        player.play()
        assert not c.ready(Playback.of(player))
        player.render(int((player.duration_s + 0.1) * player.rate))  # what the audio callback would write
        playback = Playback.of(player)
        assert c.ready(playback) and playback.heard_to_end[s.samples[0]]
        c.rate(5, playback)
    stored = ratings(study, "P1")
    assert stored[["value", "plays_sample", "plays_reference"]].values.tolist() == [[5, 1, 0]]
    assert stored["listening_time_s"].tolist() == pytest.approx([player.duration_s], abs=0.02)
    c.close()
