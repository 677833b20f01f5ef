"""Real processes against a real SQLite file: SIGKILL mid-session, and concurrent writers."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from mosapp.study import StudyEngine, load_study
from mosapp.study.store import ListenerRow, RatingRow, SessionRow, TrialRow
from tests.study.conftest import REPO

WORKER = Path(__file__).with_name("_rating_worker.py")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")


def _worker(study: Path, listener: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), str(study), listener, *extra], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rated_positions(engine: StudyEngine, code: str) -> list[int]:
    with engine.store.read() as s:
        return sorted(s.scalars(
            select(TrialRow.position).join(RatingRow, RatingRow.trial_id == TrialRow.id)
            .join(ListenerRow, TrialRow.listener_id == ListenerRow.id).where(ListenerRow.code == code)))


def test_sigkill_mid_session_keeps_every_committed_rating_and_resumes(study):
    proc = _worker(study, "K1")
    confirmed: list[int] = []
    try:
        for line in proc.stdout:
            if line.startswith("rated "):
                confirmed.append(int(line.split()[1]))
                if len(confirmed) == 4:
                    proc.send_signal(signal.SIGKILL)  # mid-session, while it keeps rating
                    break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()

    path = Path(load_study(study).database_url.removeprefix("sqlite:///"))
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()

    with StudyEngine.open(study) as engine:
        rated = _rated_positions(engine, "K1")
        # every rating the process reported as committed is there, and they are the plan's first ones
        assert set(confirmed) <= set(rated)
        assert rated == list(range(len(rated)))
        with engine.start_or_resume("K1") as session:
            trial = session.next_trial()
            assert trial.index == len(rated)
            while trial is not None:
                session.rate(trial, 3)
                trial = session.next_trial()
            total = session.progress.total + session.progress.training_total
        assert _rated_positions(engine, "K1") == list(range(total))
        with engine.store.read() as s:
            ended = [r.ended_at for r in s.scalars(select(SessionRow).order_by(SessionRow.id))]
        assert ended[0] is None and ended[1] is not None  # the killed sitting never ended


def _together(study: Path, tmp_path: Path, *workers: tuple[str, ...]) -> list[subprocess.Popen]:
    """Start workers, wait until each has imported everything, then let them all go at once."""
    go = tmp_path / "go"
    procs = [_worker(study, *w, "--delay", "0.002", "--wait-for", str(go)) for w in workers]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    go.touch()
    return procs


def _finish(procs: list[subprocess.Popen]) -> list[str]:
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append(out)
    return outs


def test_two_processes_rating_at_once_lose_nothing(study, tmp_path):
    outs = _finish(_together(study, tmp_path, ("P1",), ("P2",)))
    with StudyEngine.open(study) as engine:
        progress = {p.code: p for p in engine.listener_progress()}
        assert set(progress) == {"P1", "P2"} and all(p.finished for p in progress.values())
        assert sorted(p.position for p in progress.values()) == [0, 1]
        for code, out in zip(("P1", "P2"), outs):
            n = progress[code].total + progress[code].training_total
            assert f"done {n}" in out
            assert _rated_positions(engine, code) == list(range(n))


def test_two_processes_as_the_same_listener_rate_each_trial_once(study, tmp_path):
    outs = _finish(_together(study, tmp_path, ("S1", "--tolerate-duplicates"), ("S1", "--tolerate-duplicates")))
    done = sum(int(out.strip().splitlines()[-1].split()[1]) for out in outs)
    with StudyEngine.open(study) as engine:
        [p] = engine.listener_progress()
        n = p.total + p.training_total
        assert p.finished and done == n and p.sessions == 2
        with engine.store.read() as s:
            assert set(Counter(s.scalars(select(RatingRow.trial_id))).values()) == {1}
        assert _rated_positions(engine, "S1") == list(range(n))
