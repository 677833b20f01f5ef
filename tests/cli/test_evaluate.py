"""``mosapp evaluate`` end to end: the same numbers as encode + decode, kills, a real Dask cluster, bad input."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from mosapp.core import metrics
from mosapp.evaluation.clips import Excerpt
from mosapp.evaluation.run import keep_audio_path
from tests.cli.common import REPO, run_main
from tests.helpers import RATE, music_like, unavailable

MOSAPP = [sys.executable, "-m", "mosapp"]
FAST = ["mel_distance", "spectral_convergence_db", "si_sdr_db", "low_band_distance_db", "low_band_correlation",
        "high_band_distance_db", "high_band_correlation", "decoded_consistency"]
#: Learned codecs may move a few LSBs of their output with float32 summation order (thread count):
#: their metrics agree with encode + decode to this relative tolerance (the fixtures' SNR floor's spirit).
LEARNED_RTOL = 2e-3


def _music(folder: Path, n: int, seconds: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sf.write(str(folder / f"song{i:02d}.flac"), music_like(seconds, seed=10 + i, channels=2).T, RATE)
    return folder


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _cli(*args: object, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*MOSAPP, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_each_pair_equals_mosapp_encode_and_decode_followed_by_the_registry_metrics(tmp_path):
    music = _music(tmp_path / "music", 1, 4.0)
    out = tmp_path / "out"
    codecs = ["opus-16", "avif-12", "sgc-12"]
    r = _cli("evaluate", music, "--codecs", *codecs, "--out", out, "--excerpt-seconds", "2.5",
             "--metrics", *FAST, "--keep-audio", "--workers", "2")
    assert r.returncode == 0, r.stderr
    rows = _rows(out / "clips.csv")
    assert len(rows) == 3
    for row in rows:
        e = Excerpt(row["clip"], float(row["start_s"]), float(row["seconds"]), row["clip"])
        wav = keep_audio_path(str(out / "audio"), e, None)
        sgc, dec = tmp_path / f"{row['codec']}.sgc", tmp_path / f"{row['codec']}.wav"
        assert _cli("encode", wav, sgc, "--codec", row["codec"]).returncode == 0
        assert _cli("decode", sgc, dec).returncode == 0
        reference = sf.read(str(wav), dtype="float32", always_2d=True)[0].T
        decoded = sf.read(str(dec), dtype="float32", always_2d=True)[0].T
        assert sf.info(str(dec)).subtype == "FLOAT"  # nothing lost to a 16-bit file
        expected = metrics.score(reference, decoded, RATE, FAST)
        assert float(row["file_kbps"]) == pytest.approx(metrics.kbps(sgc.stat().st_size, e.seconds), rel=1e-12)
        learned = row["codec"].startswith("sgc")
        for name in FAST:
            assert float(row[name]) == pytest.approx(expected[name], rel=LEARNED_RTOL if learned else 1e-6,
                                                     abs=1e-9), (row["codec"], name)


def _uninterrupted_and_killed(tmp_path: Path, args: list[object]) -> tuple[list[dict], list[dict]]:
    whole = tmp_path / "whole"
    r = _cli("evaluate", *args, "--out", whole)
    assert r.returncode == 0, r.stderr
    killed = tmp_path / "killed"
    rng = random.Random(1234)
    kills = 0
    for _ in range(30):
        proc = subprocess.Popen([*MOSAPP, "evaluate", *map(str, args), "--out", str(killed)], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.5, 4.0))
        if proc.poll() is not None:
            break  # it finished before this kill
        os.killpg(proc.pid, signal.SIGKILL)  # the whole run: the command and its cluster's worker processes
        proc.wait()
        kills += 1
        if kills >= 10:
            break
    assert kills >= 10
    r = _cli("evaluate", *args, "--out", killed)
    assert r.returncode == 0, r.stderr
    return _rows(whole / "clips.csv"), _rows(killed / "clips.csv")


@pytest.mark.slow
def test_sigkill_at_random_moments_ten_times_then_resume_gives_the_uninterrupted_rows(tmp_path):
    # Enough pairs (108) that ten kills, each 0.5-4 s after a start (of which the cluster's start takes about 2),
    # land before the end even on an idle machine.
    music = _music(tmp_path / "music", 6, 6.0)
    args = [music, "--codecs", "opus-12", "mp3-16", "aac-24", "--excerpt-seconds", "1.5", "--excerpts-per-file", "6",
            "--metrics", "mel_distance", "low_band_distance_db", "--workers", "2"]
    whole, resumed = _uninterrupted_and_killed(tmp_path, args)
    assert len(whole) == 6 * 6 * 3
    keys = [(r["clip"], r["start_s"], r["codec"]) for r in resumed]
    assert len(keys) == len(set(keys))  # no pair twice
    assert resumed == whole


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_real_dask_scheduler_and_two_workers_give_the_local_runs_numbers(tmp_path):
    music = _music(tmp_path / "music", 2, 2.0)
    args = [music, "--codecs", "opus-12", "avif-12", "--excerpt-seconds", "1.5", "--metrics", *FAST]
    bindir = Path(sys.executable).parent
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([str(bindir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    try:
        for i in range(2):
            procs.append(subprocess.Popen([str(bindir / "dask"), "worker", address, "--nthreads", "1",
                                           "--name", f"w{i}", "--no-dashboard", "--host", "127.0.0.1"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                                          start_new_session=True))
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            assert len(client.scheduler_info()["workers"]) == 2
        r = _cli("evaluate", *args, "--out", tmp_path / "cluster", "--scheduler", address)
        assert r.returncode == 0, r.stderr
        assert address in r.stdout
        # The local cluster's workers, like the cluster's, run one thread each: the same float summation
        # order, so the same numbers to the last bit.
        local = _cli("evaluate", *args, "--out", tmp_path / "local", "--workers", "2")
        assert local.returncode == 0, local.stderr
        timings = _rows(tmp_path / "cluster" / "timings.csv")
        assert len({t["worker"] for t in timings}) == 2  # both workers took pairs
        assert _rows(tmp_path / "cluster" / "clips.csv") == _rows(tmp_path / "local" / "clips.csv")
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def test_bad_inputs_are_one_sentence_each_and_the_rest_of_the_run_goes_on(tmp_path, capsys, monkeypatch):
    music = _music(tmp_path / "music", 1, 3.0)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF" + os.urandom(400))
    short = tmp_path / "short.wav"
    sf.write(str(short), music_like(0.5).T, RATE)
    monkeypatch.setenv("MOSAPP_MSILLM_CHECKPOINT_DIR", str(tmp_path / "no-checkpoints"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    rc, out, err = run_main(capsys, "evaluate", music, broken, short, "--codecs", "opus-12", "msillm-q2", "nope-9",
                            "--out", tmp_path / "out", "--excerpt-seconds", "1", "--metrics", "mel_distance",
                            "--workers", "0")
    assert "Traceback" not in err and rc == 1
    problems = [line for line in err.splitlines() if line.startswith("mosapp evaluate: ") and "pairs (" not in line]
    text = "\n".join(problems)
    assert str(broken) in text and "cannot be read as audio" in text
    assert "shorter than the 1 s excerpt" in text
    assert 'Unknown codec "nope-9"' in text
    assert '"msillm-q2" cannot run here' in text
    assert all(line.rstrip().endswith(".") for line in problems), problems
    rows = _rows(tmp_path / "out" / "clips.csv")
    assert [r["codec"] for r in rows] == ["opus-12"]  # the rest of the run went on
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "## Failed (4)" in summary and "msillm-q2" in summary and str(short) in summary


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system needs root (CI runs as root)")
def test_a_full_output_disk_is_one_sentence_and_what_was_measured_is_kept(tmp_path, capsys):
    music = _music(tmp_path / "music", 2, 3.0)
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        rc, out, err = run_main(capsys, "evaluate", music, "--codecs", "opus-12", "--out", disk / "out",
                                "--excerpt-seconds", "1", "--excerpts-per-file", "3", "--metrics", "mel_distance",
                                "--workers", "0", "--keep-audio")
        assert "Traceback" not in err
        assert rc in (1, 2)
        assert "full" in err and "No space left on device" in err
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_usage_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_main(capsys, "evaluate", tmp_path, "--codecs", "opus-12", "--out", tmp_path / "o", "--excerpts-per-file", "0")
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "out of range" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    rc, out, err = run_main(capsys, "evaluate", tmp_path / "empty", "--codecs", "opus-12", "--out", tmp_path / "o")
    assert rc == 2 and "holds no audio files" in err and "Traceback" not in err and out == ""


@pytest.mark.slow
def test_ctrl_c_stops_within_a_second_and_keeps_what_finished(tmp_path):
    music = _music(tmp_path / "music", 2, 6.0)
    out = tmp_path / "out"
    proc = subprocess.Popen([*MOSAPP, "evaluate", str(music), "--codecs", "opus-12", "mp3-16", "--out", str(out),
                             "--excerpt-seconds", "1", "--excerpts-per-file", "20", "--metrics", "mel_distance",
                             "--workers", "2", "--progress", "off"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            # A run started in the background inherits SIGINT ignored; a terminal's command does not.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    db = out / "pairs.sqlite"
    import sqlite3

    def saved() -> int:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                return int(con.execute("SELECT count(*) FROM pairs").fetchone()[0])
        except sqlite3.Error:
            return 0

    while saved() < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert saved() >= 4
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl+C sends: the whole foreground group
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=30)
    stopped_in = time.monotonic() - t0
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert stopped_in < 1.5, stopped_in  # a second, plus slack for a loaded test machine
    kept = saved()
    assert 4 <= kept < 80
    assert len(_rows(out / "clips.csv")) == kept  # the tables of what finished are written
    assert "stopped early" in (out / "summary.md").read_text()
