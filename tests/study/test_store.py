"""The store: SQLite settings, schema migrations, and one sentence for every database problem."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select, text

from mosapp.study.errors import StudyError
from mosapp.study.store import (
    Base,
    ListenerRow,
    StimulusRow,
    StudyRow,
    head_revision,
    open_store,
    schema_revision,
    utcnow,
)
from tests.helpers import require_module


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def test_a_new_database_is_at_head_in_wal_with_full_sync(tmp_path):
    with open_store(_url(tmp_path / "sub" / "s.sqlite")) as store:
        assert schema_revision(store) == head_revision()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_the_models_match_the_migrations(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with open_store(_url(tmp_path / "s.sqlite")) as store, store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def _at_revision(path: Path, revision: str) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from mosapp.study.store import _alembic_config

    engine = create_engine(_url(path))
    with engine.begin() as conn:
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def test_an_older_database_is_upgraded_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    _at_revision(path, "0001")
    con = sqlite3.connect(path)
    con.execute("INSERT INTO studies (name, title, test_type, definition_toml, design_json, created_at) "
                "VALUES ('old', 'Old', 'dcr', '', '{}', '2025-01-01 00:00:00')")
    con.commit()
    assert "visqol" not in {r[1] for r in con.execute("PRAGMA table_info(stimuli)")}
    con.close()
    with open_store(_url(path)) as store:
        assert schema_revision(store) == head_revision()
        with store.read() as s:
            assert s.scalars(select(StudyRow.title)).all() == ["Old"]
    con = sqlite3.connect(path)
    # Revision 0002 added a column per metric; 0007 moved them into the long table stimulus_metrics.
    assert "visqol" not in {r[1] for r in con.execute("PRAGMA table_info(stimuli)")}
    assert {r[1] for r in con.execute("PRAGMA table_info(stimulus_metrics)")} == {"stimulus_id", "metric", "value"}
    con.close()


def test_revision_0006_renames_the_bitrate_column_and_keeps_its_values(tmp_path):
    path = tmp_path / "r5.sqlite"
    _at_revision(path, "0005")
    con = sqlite3.connect(path)
    con.executescript(
        "INSERT INTO studies (id, name, title, test_type, definition_toml, design_json, created_at) "
        "VALUES (1, 'old', 'Old', 'acr', '', '{}', '2025-01-01 00:00:00');"
        "INSERT INTO clips (id, study_id, name, source_file, start_s, length_s, position) "
        "VALUES (1, 1, 'c', 'c.wav', 0, 1, 0);"
        "INSERT INTO conditions (id, study_id, name, is_reference, in_plan, nominal_kbps, position) "
        "VALUES (1, 1, 'opus-12', 0, 1, 12, 0), (2, 1, 'reference', 1, 1, NULL, 1);"
        "INSERT INTO stimuli (study_id, clip_id, condition_id, cache_key, audio_file, sample_rate, channels, "
        "n_samples, bitrate_kbps, loudness_lufs, gain_db, created_at) VALUES "
        "(1, 1, 1, 'k1', 'a.wav', 44100, 1, 44100, 12.375, -20, -3, '2025-01-01 00:00:00'), "
        "(1, 1, 2, 'k2', 'b.wav', 44100, 1, 44100, NULL, -20, -3, '2025-01-01 00:00:00');")
    con.commit()
    con.close()
    with open_store(_url(path)) as store:
        assert schema_revision(store) == head_revision()
        with store.read() as s:
            assert [r.payload_kbps for r in s.scalars(select(StimulusRow).order_by(StimulusRow.id))] == [12.375, None]
    con = sqlite3.connect(path)
    columns = {r[1] for r in con.execute("PRAGMA table_info(stimuli)")}
    assert "payload_kbps" in columns and "bitrate_kbps" not in columns
    assert con.execute("SELECT COUNT(*) FROM stimuli").fetchone() == (2,)
    con.close()


_R6_METRICS = (
    "INSERT INTO studies (id, name, title, test_type, definition_toml, design_json, created_at) "
    "VALUES (1, 'old', 'Old', 'acr', '', '{}', '2025-01-01 00:00:00');"
    "INSERT INTO clips (id, study_id, name, source_file, start_s, length_s, position) "
    "VALUES (1, 1, 'c', 'c.wav', 0, 1, 0);"
    "INSERT INTO conditions (id, study_id, name, is_reference, in_plan, nominal_kbps, position) "
    "VALUES (1, 1, 'opus-12', 0, 1, 12, 0), (2, 1, 'reference', 1, 1, NULL, 1);"
    "INSERT INTO stimuli (id, study_id, clip_id, condition_id, cache_key, audio_file, sample_rate, channels, "
    "n_samples, payload_kbps, loudness_lufs, gain_db, created_at, mel_distance, si_sdr_db, visqol, "
    "high_band_correlation) VALUES "
    "(1, 1, 1, 1, 'k1', 'a.wav', 44100, 1, 44100, 12.375, -20, -3, '2025-01-01 00:00:00', 1.25, -7.5, NULL, 0.875), "
    "(2, 1, 1, 2, 'k2', 'b.wav', 44100, 1, 44100, NULL, -20, -3, '2025-01-01 00:00:00', NULL, NULL, NULL, NULL);"
)


def test_revision_0007_moves_the_metric_columns_into_the_long_table(tmp_path):
    from mosapp.study.store import read_stimulus_metrics

    path = tmp_path / "r6.sqlite"
    _at_revision(path, "0006")
    con = sqlite3.connect(path)
    con.executescript(_R6_METRICS)
    con.commit()
    con.close()
    with open_store(_url(path)) as store, store.read() as s:
        assert schema_revision(store) == head_revision()
        # Only the values that were there: a NULL is no row.
        assert read_stimulus_metrics(s) == {1: {"mel_distance": 1.25, "si_sdr_db": -7.5, "high_band_correlation": 0.875}}
        assert [r.payload_kbps for r in s.scalars(select(StimulusRow).order_by(StimulusRow.id))] == [12.375, None]
    con = sqlite3.connect(path)
    columns = {r[1] for r in con.execute("PRAGMA table_info(stimuli)")}
    assert not columns & {"mel_distance", "si_sdr_db", "visqol", "low_band_distance_db", "high_band_correlation"}
    con.close()


def test_revision_0007_downgrades_back_to_the_columns(tmp_path):
    from alembic import command
    from sqlalchemy import create_engine

    from mosapp.study.store import _alembic_config

    path = tmp_path / "r6.sqlite"
    _at_revision(path, "0006")
    con = sqlite3.connect(path)
    con.executescript(_R6_METRICS)
    con.commit()
    before = con.execute("SELECT id, mel_distance, si_sdr_db, visqol, high_band_correlation FROM stimuli").fetchall()
    con.close()
    _at_revision(path, "head")
    engine = create_engine(_url(path))
    with engine.begin() as conn:
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    engine.dispose()
    con = sqlite3.connect(path)
    assert con.execute("SELECT id, mel_distance, si_sdr_db, visqol, high_band_correlation FROM stimuli").fetchall() \
        == before
    assert "stimulus_metrics" not in {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()


def test_a_stimulus_takes_its_metrics_with_it(tmp_path):
    from sqlalchemy import delete

    from mosapp.study.store import StimulusMetricRow, read_stimulus_metrics, write_stimulus_metrics

    path = tmp_path / "r6.sqlite"
    _at_revision(path, "0006")
    con = sqlite3.connect(path)
    con.executescript(_R6_METRICS)
    con.commit()
    con.close()
    with open_store(_url(path)) as store:
        with store.write() as s:
            write_stimulus_metrics(s, 2, {"mel_distance": 0.5, "visqol": None, "a_new_metric": 3.0})
        with store.read() as s:
            assert read_stimulus_metrics(s, [2]) == {2: {"a_new_metric": 3.0, "mel_distance": 0.5}}
        with store.write() as s:
            s.execute(delete(StimulusRow).where(StimulusRow.id == 2))
        with store.read() as s:
            assert set(read_stimulus_metrics(s)) == {1}
            assert s.scalar(select(StimulusMetricRow.value).where(StimulusMetricRow.stimulus_id == 2)) is None


def test_an_older_database_opened_read_only_is_read_upgraded_and_left_as_it_is(tmp_path):
    path = tmp_path / "r5.sqlite"
    _at_revision(path, "0005")
    con = sqlite3.connect(path)
    con.execute("INSERT INTO studies (name, title, test_type, definition_toml, design_json, created_at) "
                "VALUES ('old', 'Old', 'acr', '', '{}', '2025-01-01 00:00:00')")
    con.commit()
    con.close()
    before = path.read_bytes()
    with open_store(_url(path), readonly=True) as store:
        assert schema_revision(store) == head_revision()
        with store.read() as s:
            assert s.scalars(select(StudyRow.title)).all() == ["Old"]
            assert s.scalars(select(StimulusRow.payload_kbps)).all() == []
        with pytest.raises(StudyError, match="read-only"):
            with store.write():
                pass
    assert path.read_bytes() == before
    con = sqlite3.connect(path)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone() == ("0005",)
    con.close()


def test_a_newer_database_is_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    open_store(_url(path)).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = '9001'")
    con.commit()
    con.close()
    with pytest.raises(StudyError) as info:
        open_store(_url(path))
    msg = str(info.value)
    assert "newer mosapp" in msg and "9001" in msg and str(path) in msg and "update mosapp" in msg


def test_a_foreign_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE things (x)")
    con.commit()
    con.close()
    with pytest.raises(StudyError, match="not a mosapp study database"):
        open_store(_url(path))


def test_not_a_database_at_all(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StudyError, match="not a usable SQLite database"):
        open_store(_url(path))


def test_missing_database_without_create(tmp_path):
    with pytest.raises(StudyError, match="does not exist; run `mosapp study prepare` first"):
        open_store(_url(tmp_path / "absent.sqlite"), create=False)


def test_bad_urls(tmp_path):
    with pytest.raises(StudyError, match="not a valid SQLAlchemy URL"):
        open_store("nonsense://::")
    # A driver no install of mosapp declares (the lab extra brings psycopg, so PostgreSQL's is no example).
    with pytest.raises(StudyError, match="driver that is not installed") as info:
        open_store("mssql+pymssql://user:secret@localhost/studies")
    assert "secret" not in str(info.value)


def test_a_postgresql_url_without_a_driver_name_uses_psycopg_where_only_it_is_installed():
    require_module("psycopg", "the lab extra (scripts/setup installs it)")
    from sqlalchemy.engine import make_url

    from mosapp.study.store import _postgres_url

    try:
        import psycopg2  # noqa: F401
    except ImportError:
        assert _postgres_url(make_url("postgresql://u@h/d")).drivername == "postgresql+psycopg"
    assert _postgres_url(make_url("postgresql+psycopg://u@h/d")).drivername == "postgresql+psycopg"


def test_passwords_in_database_urls_are_redacted():
    from mosapp.study.store import redact_passwords

    text = ('title = "x"\ndatabase = "postgresql+psycopg://lab:S3cr%40t@db.example:5432/lab"\n'
            "other = 'postgresql://u@h/d?sslmode=require&password=hunter2'\n"
            'env = "postgresql://lab:${LAB_PW}@h/d"\nplain = "a:b@c"\n')
    out = redact_passwords(text)
    assert "S3cr" not in out and "hunter2" not in out
    assert 'database = "postgresql+psycopg://lab:***@db.example:5432/lab"' in out
    assert "&password=***'" in out
    assert "lab:${LAB_PW}@h" in out and 'plain = "a:b@c"' in out  # a reference names no secret


def test_the_stored_definition_never_holds_a_password(tmp_path):
    with open_store(_url(tmp_path / "s.sqlite")) as store:
        with store.write() as s:
            s.add(StudyRow(name="x", title="x", test_type="dcr", design_json="{}", created_at=utcnow(),
                           definition_toml='database = "postgresql://lab:topsecret@h/d"\n'))
        with store.write() as s:
            row = s.scalars(select(StudyRow)).one()
            assert "topsecret" not in row.definition_toml
            row.definition_toml = 'database = "postgresql://lab:othersecret@h/d"\n'
    assert b"topsecret" not in (tmp_path / "s.sqlite").read_bytes()
    assert b"othersecret" not in (tmp_path / "s.sqlite").read_bytes()


def test_a_url_takes_variables_from_the_environment(monkeypatch):
    from mosapp.study.store import expand_url

    monkeypatch.setenv("MOSAPP_TEST_PW", "p@ss/word")
    assert expand_url("postgresql://lab:${MOSAPP_TEST_PW}@h/d") == "postgresql://lab:p%40ss%2Fword@h/d"
    monkeypatch.delenv("MOSAPP_TEST_PW")
    with pytest.raises(StudyError, match=r"takes \$\{MOSAPP_TEST_PW\} from the environment, but MOSAPP_TEST_PW is not set"):
        expand_url("postgresql://lab:${MOSAPP_TEST_PW}@h/d")


def _add_study(store) -> None:
    with store.write() as s:
        s.add(StudyRow(name="x", title="x", test_type="dcr", definition_toml="", design_json="{}",
                       created_at=utcnow()))


def test_a_locked_database_is_reported(tmp_path):
    path = tmp_path / "s.sqlite"
    with open_store(_url(path), busy_timeout_s=0.3) as store:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with store.read() as s:  # readers are never blocked (WAL)
                assert s.scalars(select(StudyRow)).all() == []
            with pytest.raises(StudyError) as info:
                _add_study(store)
            assert "is locked by another program" in str(info.value) and "0.3 s" in str(info.value)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        _add_study(store)  # and works once the other writer is gone


def test_a_read_only_database_is_reported(tmp_path):
    path = tmp_path / "s.sqlite"
    open_store(_url(path)).close()
    # SQLite's own read-only mode, whoever runs the test (root ignores file permissions).
    with open_store(f"sqlite:///file:{path}?mode=ro&uri=true") as store:
        with pytest.raises(StudyError) as info:
            _add_study(store)
    assert "is read-only" in str(info.value)
    with open_store(_url(path), readonly=True) as store:
        with store.read() as s:
            assert s.scalars(select(StudyRow)).all() == []
        with pytest.raises(StudyError, match="open read-only"):
            _add_study(store)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_file_is_refused_for_writing(tmp_path):
    path = tmp_path / "s.sqlite"
    open_store(_url(path)).close()
    path.chmod(0o444)
    try:
        with pytest.raises(StudyError, match="is read-only"):
            open_store(_url(path))
        with open_store(_url(path), readonly=True) as store, store.read() as s:
            assert s.scalars(select(ListenerRow)).all() == []
    finally:
        path.chmod(0o644)


def test_any_sqlalchemy_url_in_memory():
    with open_store("sqlite://") as store:
        _add_study(store)
        with store.read() as s:
            assert s.scalar(text("SELECT count(*) FROM studies")) == 1
