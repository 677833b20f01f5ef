"""Atomic writes (mosapp/core/files.py): names at the file-system limit, no temporary left behind, stale ones removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mosapp.core.errors import AudioError, MosappError
from mosapp.core.files import atomic_write, existing_file, temporary_name

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, data: bytes = b"data") -> None:
    atomic_write(path, lambda fh: fh.write(data), suffix=".wav")


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def test_a_name_at_the_limit_is_written(tmp_path):
    # 254 and 255 bytes are legal file names; the temporary name must fit too.
    for length in (254, _name_max(tmp_path)):
        path = tmp_path / ("a" * (length - 4) + ".wav")
        _write(path)
        assert path.read_bytes() == b"data"
        assert os.listdir(tmp_path) == [path.name]
        path.unlink()
    assert os.listdir(tmp_path) == []


def test_temporary_names_fit_the_limit(tmp_path):
    for length in (1, 100, 200, 250, 254, 255):
        name = "é" * (length // 2) + "x" * (length % 2)  # two bytes a character in UTF-8
        tmp = temporary_name(tmp_path / name)
        assert len(os.fsencode(tmp.name)) <= 255
        assert tmp.parent == tmp_path and tmp.name.startswith(".")


def test_a_name_over_the_limit_is_one_sentence(tmp_path):
    path = tmp_path / ("b" * 296 + ".wav")
    with pytest.raises(MosappError) as info:
        _write(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.endswith(".")
    assert "300 bytes" in msg and "255" in msg and "shorter name" in msg
    assert os.listdir(tmp_path) == []


def test_an_exception_in_the_writer_leaves_nothing(tmp_path):
    def boom(fh):
        fh.write(b"x" * 100_000)
        raise RuntimeError("the encoder failed")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "out.wav", boom, suffix=".wav")
    assert os.listdir(tmp_path) == []


_WRITER = textwrap.dedent("""
    import os, sys, time
    from mosapp.core.files import atomic_write

    def slow(fh):
        fh.write(b"x" * 5_000_000)
        fh.flush()
        print("writing", flush=True)
        time.sleep(60)

    atomic_write(sys.argv[1], slow, suffix=".wav")
""")


def _start_writer(out: Path, *, handle_sigterm: bool = False) -> subprocess.Popen:
    code = _WRITER
    if handle_sigterm:
        code = "from mosapp.cli.main import install_signal_handlers\ninstall_signal_handlers()\n" + code
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout.readline().strip() == "writing"
    return proc


def test_a_killed_write_leaves_a_temporary_that_the_next_run_removes(tmp_path):
    out = tmp_path / "out.wav"
    proc = _start_writer(out)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = os.listdir(tmp_path)
    assert len(left) == 1 and left[0].startswith(".") and not out.exists()  # SIGKILL cannot be caught
    _write(tmp_path / "other.wav")  # the next write in that folder clears the dead run's file
    assert os.listdir(tmp_path) == ["other.wav"]


def test_a_live_writers_temporary_is_kept(tmp_path):
    proc = _start_writer(tmp_path / "out.wav")
    try:
        _write(tmp_path / "other.wav")
        assert len([n for n in os.listdir(tmp_path) if n.startswith(".")]) == 1
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_sigterm_during_a_write_removes_the_temporary(tmp_path):
    out = tmp_path / "out.wav"
    proc = _start_writer(out, handle_sigterm=True)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) != 0
    assert os.listdir(tmp_path) == []


def test_a_temporary_of_the_old_naming_for_the_same_file_is_removed(tmp_path):
    # What mosapp 0.1.0 left after a kill: ".<name>.<8 hex>.tmp".
    (tmp_path / ".out.wav.0123abcd.tmp").write_bytes(b"x" * 1000)
    (tmp_path / ".unrelated.tmp").write_bytes(b"keep")
    _write(tmp_path / "out.wav")
    assert sorted(os.listdir(tmp_path)) == [".unrelated.tmp", "out.wav"]


def test_existing_file_names_what_is_wrong_in_one_sentence(tmp_path):
    (tmp_path / "a.sgc").write_bytes(b"x")
    assert existing_file(tmp_path / "a.sgc", "an .sgc file") == tmp_path / "a.sgc"
    with pytest.raises(MosappError, match=r"gone\.sgc does not exist\.$"):
        existing_file(tmp_path / "gone.sgc", "an .sgc file")
    with pytest.raises(AudioError, match=r"is a folder, not an audio file\.$"):
        existing_file(tmp_path, "an audio file", AudioError)
