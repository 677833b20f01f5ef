"""`study status`, `export` and `report` only read: never a schema written, never a file created,
and they work where the database (and its folder) cannot be written; `prepare | head -1` ends quietly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.study.conftest import REPO, cli, listen_through, scripted_scores


def _one_line_error(capsys) -> str:
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mosapp: error: ") and lines[0].endswith("."), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("command", ["status", "export", "report"])
def test_an_empty_database_file_is_refused_and_left_untouched(study, tmp_path, capsys, command):
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    argv = ["study", command, str(study), "--db", str(empty)]
    if command != "status":
        argv += ["--out", str(tmp_path / "out")]
    assert cli(argv) == 2
    line = _one_line_error(capsys)
    assert str(empty) in line and "prepare" in line
    assert empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dcr.sqlite", "dcr.toml", "empty.sqlite"]


def test_a_database_without_a_study_schema_is_not_upgraded_by_status(study, tmp_path, capsys):
    import sqlite3

    bare = tmp_path / "bare.sqlite"
    sqlite3.connect(bare).close()  # a zero-byte file, as sqlite3 leaves it
    con = sqlite3.connect(bare)
    con.execute("PRAGMA user_version = 0")
    con.close()
    before = bare.read_bytes()
    assert cli(["study", "status", str(study), "--db", str(bare)]) == 2
    assert "prepare" in _one_line_error(capsys)
    assert bare.read_bytes() == before


def _make_read_only(folder: Path) -> callable:
    """Make ``folder`` unwritable for whoever runs the test; returns the undo.

    chmod for a normal user; root ignores permissions, so for root the folder is made
    immutable (``chattr +i``), which root's writes respect too.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
            pytest.skip("running as root without chattr: a read-only folder cannot be made here")
        return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o555)
    return lambda: folder.chmod(0o755)


@pytest.mark.parametrize("command", ["status", "export", "report"])
def test_a_read_only_database_folder_is_read(study, tmp_path, capsys, command):
    listen_through(study, scripted_scores(study))
    db_dir = tmp_path / "db"
    db_dir.mkdir()
    db = db_dir / "study.sqlite"
    shutil.copy(tmp_path / "dcr.sqlite", db)
    before = db.read_bytes()
    undo = _make_read_only(db_dir)
    try:
        assert not os.access(db_dir, os.W_OK)
        argv = ["study", command, str(study), "--db", str(db)]
        if command != "status":
            argv += ["--out", str(tmp_path / "out")]
        if command == "report":
            argv += ["--bootstrap", "50"]
        rc = cli(argv)
        out, err = capsys.readouterr()
        assert rc == 0, err
        if command == "status":
            assert "4 listener(s), 4 finished" in out
        else:
            assert any((tmp_path / "out").glob("*.csv" if command == "export" else "*.png"))
        assert sorted(os.listdir(db_dir)) == ["study.sqlite"]  # no -wal, -shm or journal left
        assert db.read_bytes() == before
    finally:
        undo()


def test_prepare_into_a_closed_pipe_ends_without_a_traceback(study):
    """`mosapp study prepare … | head -1`: the reader is gone before the summary is printed."""
    proc = subprocess.Popen([sys.executable, "-m", "mosapp", "study", "prepare", str(study), "--progress", "off"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(REPO)))
    proc.stdout.close()
    err = proc.stderr.read().decode()
    rc = proc.wait(timeout=300)
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert rc == 141, (rc, err)
