"""A listening lab on a real PostgreSQL server: stations enrolling at the same instant, and no stored password.

The server is started by :mod:`tests.study.postgres` (initdb and pg_ctl in a temporary folder,
127.0.0.1, stopped afterwards); the role and database are made as studies/README.md says.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mosapp.study import StudyEngine
from mosapp.study.errors import StudyError
from mosapp.study.store import ListenerRow, RatingRow, StudyRow, TrialRow, open_store
from tests.study.conftest import REPO, prepare, write_study
from tests.study.postgres import PostgresServer, require_server, start_server

ROLE, DATABASE = "mosapp_lab", "lab"
#: The lab role's password: given in the environment, or (flow B) written literally in a study file.
LAB_PASSWORD = "Lab-Pa55-" + os.urandom(6).hex()
STATIONS = 10

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="the server is started with Debian's programs"),
]


@pytest.fixture(scope="module")
def server():
    require_server()
    srv = start_server()
    try:
        srv.create_lab(ROLE, LAB_PASSWORD, DATABASE)
        yield srv
    finally:
        srv.stop()


def _station(study: str, code: str, barrier, results) -> None:  # pragma: no cover - runs in the child
    try:
        engine = StudyEngine.open(study)
        barrier.wait(timeout=120)  # every station enrols at the same instant
        session = engine.start_or_resume(code, audio_device=f"station {code}")
        rated = []
        while (trial := session.next_trial()) is not None:
            session.rate(trial, 1 + trial.index % 5, play_counts=(1, 1), listening_time_s=0.5, response_time_s=0.1)
            rated.append(trial.index)
        session.close()
        engine.close()
        results.put((code, rated, None))
    except BaseException as exc:  # noqa: BLE001 - reported to the test, not lost in a child's stderr
        results.put((code, [], f"{type(exc).__name__}: {exc}"))


@pytest.fixture(scope="module")
def station_file(server, tmp_path_factory) -> Path:
    """The lab's study, prepared on the server; the stations' copy of its file (names ${MOSAPP_LAB_PASSWORD})."""
    root = tmp_path_factory.mktemp("lab")
    # Flow B: the administrator wrote the password into the study file. It is used to connect,
    # but never reaches the database (definition_toml keeps "***").
    literal = server.url(ROLE, DATABASE, password=LAB_PASSWORD)
    admin = write_study(root / "admin", "lab", database=literal, stimuli_dir=str(root / "stimuli"))
    prepare(admin)
    # Flow A (what studies/README.md recommends): the stations' file names the variable.
    url = server.url(ROLE, DATABASE, password="${MOSAPP_LAB_PASSWORD}")
    return write_study(root / "station", "lab", database=url, stimuli_dir=str(root / "stimuli"))


def test_ten_stations_enrol_at_the_same_instant_and_no_rating_is_lost_or_duplicated(server, station_file,
                                                                                     monkeypatch):
    monkeypatch.setenv("MOSAPP_LAB_PASSWORD", LAB_PASSWORD)

    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(STATIONS)
    results = ctx.Queue()
    codes = [f"S{i:02d}" for i in range(STATIONS)]
    procs = [ctx.Process(target=_station, args=(str(station_file), code, barrier, results)) for code in codes]
    for p in procs:
        p.start()
    try:
        reports = {}
        for _ in procs:
            code, rated, error = results.get(timeout=180)
            reports[code] = (rated, error)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    errors = {c: e for c, (_, e) in reports.items() if e}
    assert errors == {}, errors
    assert all(p.exitcode == 0 for p in procs)

    with StudyEngine.open(station_file) as engine, engine.store.read() as s:
        positions = sorted(s.scalars(select(ListenerRow.position)))
        assert positions == list(range(STATIONS))  # all 10 enrolled, each at a position of its own
        for code in codes:
            trials = s.scalar(select(func.count()).select_from(TrialRow).join(ListenerRow)
                              .where(ListenerRow.code == code))
            in_db = sorted(s.scalars(select(TrialRow.position).join(RatingRow, RatingRow.trial_id == TrialRow.id)
                                     .join(ListenerRow).where(ListenerRow.code == code)))
            assert trials and in_db == list(range(trials))  # every trial rated
            assert sorted(reports[code][0]) == in_db  # every confirmed rating is there, no other
        per_trial = Counter(s.scalars(select(RatingRow.trial_id)))
        assert per_trial and max(per_trial.values()) == 1  # none duplicated
        stored = s.scalars(select(StudyRow.definition_toml)).one()
    assert LAB_PASSWORD not in stored and ":***@" in stored

    dump = server.dump(DATABASE)
    assert "definition_toml" in dump and "S09" in dump  # the dump holds the study and its listeners
    assert LAB_PASSWORD not in dump

    # status shows every station's listener, read live from the server
    out = subprocess.run([sys.executable, "-m", "mosapp", "study", "status", str(station_file), "--json"], cwd=REPO,
                         capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.count(f'"listener": "{c}"') for c in codes) == [1] * STATIONS
    assert LAB_PASSWORD not in out.stdout + out.stderr


def test_status_watch_shows_a_station_that_enrols_meanwhile(station_file, monkeypatch):
    monkeypatch.setenv("MOSAPP_LAB_PASSWORD", LAB_PASSWORD)
    proc = subprocess.Popen([sys.executable, "-m", "mosapp", "study", "status", str(station_file), "--json",
                             "--watch", "0.5"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # A suite started in the background hands its children SIGINT ignored; Ctrl+C needs it.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = json.loads(proc.stdout.readline())
        assert "W1" not in {p["listener"] for p in first["progress"]}
        with StudyEngine.open(station_file) as engine:
            engine.start_or_resume("W1", audio_device="station W1").close()
        for _ in range(20):
            later = json.loads(proc.stdout.readline())
            if "W1" in {p["listener"] for p in later["progress"]}:
                break
        else:
            pytest.fail("status --watch never showed the listener enrolled meanwhile")
        assert later["listeners"] == first["listeners"] + 1
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read()


def test_a_wrong_or_missing_password_is_one_sentence_without_the_password(server, tmp_path, monkeypatch):
    monkeypatch.delenv("MOSAPP_LAB_PASSWORD", raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "absent-pgpass"))
    with pytest.raises(StudyError) as info:
        open_store(server.url(ROLE, DATABASE, password="${MOSAPP_LAB_PASSWORD}"))
    assert "MOSAPP_LAB_PASSWORD is not set" in str(info.value)
    with pytest.raises(StudyError) as info:
        open_store(server.url(ROLE, DATABASE, password="not-" + LAB_PASSWORD))
    msg = str(info.value)
    assert "refused the password" in msg and "PGPASSWORD" in msg and LAB_PASSWORD not in msg
    assert "\n" not in msg


def test_pgpassword_and_pgpass_are_read_by_the_driver(server, tmp_path, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{server.port}:{DATABASE}:{ROLE}:{LAB_PASSWORD}\n", encoding="utf-8")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    with open_store(server.url(ROLE, DATABASE)) as store, store.read() as s:
        assert s.scalar(select(func.count()).select_from(StudyRow)) is not None
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "absent"))
    monkeypatch.setenv("PGPASSWORD", LAB_PASSWORD)
    with open_store(server.url(ROLE, DATABASE)) as store, store.read() as s:
        assert s.scalar(select(func.count()).select_from(StudyRow)) is not None


def test_a_server_that_is_not_running_is_one_sentence(server):
    stopped = PostgresServer(bin=server.bin, folder=Path("/nonexistent"), port=1, password="x",
                             as_postgres_user=False)
    with pytest.raises(StudyError, match="cannot be reached") as info:
        open_store(stopped.url(ROLE, DATABASE, password="secret-123"))
    assert "secret-123" not in str(info.value)

