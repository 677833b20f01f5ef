"""No writes outside what the user named: foreign databases refused unchanged, folders mosapp did not
make left as they are, and results written 0600 like the database."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from mosapp.study import StudyEngine, load_study
from mosapp.study.errors import StudyError
from mosapp.study.export import export_study
from mosapp.study.report import build_report, write_report
from mosapp.study.store import open_store
from tests.study.conftest import prepare, write_study


def test_a_foreign_sqlite_file_is_refused_unchanged(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE things (x)")
    con.execute("INSERT INTO things VALUES (1)")
    con.commit()
    con.close()
    before = path.read_bytes()
    with pytest.raises(StudyError, match="not a mosapp study database"):
        open_store(f"sqlite:///{path}")
    assert path.read_bytes() == before  # still journal_mode=delete: no WAL switch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]  # no -wal, -shm or -journal left
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    con.close()


def test_a_study_database_is_still_wal(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 's.sqlite'}") as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_prepare_leaves_a_folder_it_did_not_make_as_it_was(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "notes.txt").write_text("mine", encoding="utf-8")
    shared.chmod(0o755)
    os.utime(shared, (1_700_000_000, 1_700_000_000))
    study = write_study(tmp_path, "s", database=str(tmp_path / "s.sqlite"), stimuli_dir=str(shared),
                        conditions=["reference", "pghi-only"], starts=(0.0,))
    prepare(study)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # not chmodded to 0700
    wavs = [p for p in shared.iterdir() if p.suffix == ".wav"]
    assert wavs and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in wavs)  # its own files are private


def test_prepare_still_seals_the_folder_it_makes(tmp_path):
    study = write_study(tmp_path, "s", database=str(tmp_path / "s.sqlite"), stimuli_dir=str(tmp_path / "new" / "st"),
                        conditions=["reference", "pghi-only"], starts=(0.0,))
    prepare(study)
    prepare(study)  # a rerun: still recognised as mosapp's
    assert stat.S_IMODE((tmp_path / "new" / "st").stat().st_mode) == 0o700


def test_exports_and_reports_are_written_0600(study, tmp_path):
    with StudyEngine.open(study) as engine:
        for code in ("A", "B"):
            with engine.start_or_resume(code) as session:
                while (trial := session.next_trial()) is not None:
                    session.rate(trial, 4, play_counts=(1, 1), listening_time_s=1.0, response_time_s=0.5)
        d = load_study(study)
        old = os.umask(0o022)
        try:
            export_study(engine.store, d, tmp_path / "out", screening=False, bootstrap=0)
            files = write_report(build_report(engine.store, d, screening=False, bootstrap=0), tmp_path / "out")
        finally:
            os.umask(old)
    written = list((tmp_path / "out").iterdir())
    assert len(written) >= 5 and files
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in written} == {p.name: 0o600 for p in written}
