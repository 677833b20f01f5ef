"""The command line end to end: real files on disk, the real `python -m mosapp`, no mocks.

Bad inputs must end in exit status 2 and ONE line on stderr, ``mosapp: error: <sentence>``,
naming the file (or the bad name and what is accepted), never a traceback. Most cases run
``mosapp.cli.main.main`` in-process (fast); a few go through a subprocess to pin the real entry
point, exit status and stream handling.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.cli.common import REPO, assert_one_sentence, notes, run_main

# --------------------------------------------------------------------------- helpers


def write(path: Path, data: np.ndarray, rate: int, **kw) -> Path:
    sf.write(str(path), data, rate, **kw)
    return path


@pytest.fixture
def clip(tmp_path) -> Path:
    """1 s of mono 48 kHz music-like audio."""
    return write(tmp_path / "clip.wav", notes(1.0, 48_000, [220.0, 330.0, 440.0]), 48_000)


def run_cli(*argv: str, cwd: Path | str = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mosapp", *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=os.environ.copy())


# --------------------------------------------------------------------------- bad inputs


def _corrupt(p: Path, seed: int = 0) -> None:
    """Random bytes. Seed 0 is refused by every probe; seed 1 holds an MPEG sync word, so libsndfile
    hands it to libmpg123, which prints its own warning to fd 2 and fails with a misleading reason."""
    p.write_bytes(np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def _nan(p: Path) -> None:
    x = notes(0.5, 44_100, [220.0])
    x[1000] = np.nan
    write(p, x, 44_100, subtype="FLOAT")


def _inf(p: Path) -> None:
    x = notes(0.5, 44_100, [220.0])
    x[2000] = np.inf
    write(p, x, 44_100, subtype="FLOAT")


BAD_FILES = {
    # case id: (file name, writer or None for "do not create", words the message must hold)
    "corrupt": ("x.wav", _corrupt, ["cannot be read as audio"]),
    "corrupt-mpeg-sync": ("y.wav", lambda p: _corrupt(p, seed=1), ["cannot be read as audio", "not recognised"]),
    "missing": ("missing.wav", None, ["does not exist"]),
    "zero-bytes": ("empty.wav", lambda p: p.write_bytes(b""), ["empty"]),
    "zero-frames": ("noframes.wav", lambda p: write(p, np.zeros((0, 1), np.float32), 44_100), ["no audio samples"]),
    "silent": ("silent.wav", lambda p: write(p, np.zeros(44_100, np.float32), 44_100), ["silent"]),
    "nan": ("nan.wav", _nan, ["NaN"]),
    "inf": ("inf.wav", _inf, ["infinite"]),
    "too-short": ("short.wav", lambda p: write(p, notes(200 / 48_000, 48_000, [440.0]), 48_000),
                  ["shorter than one analysis window"]),
    "8kHz": ("r8k.wav", lambda p: write(p, notes(0.5, 8_000, [220.0]), 8_000), ["8000 Hz", "16000-96000 Hz"]),
    "192kHz": ("r192k.wav", lambda p: write(p, notes(0.1, 192_000, [220.0]), 192_000),
               ["192000 Hz", "16000-96000 Hz"]),
    "3-channels": ("three.wav", lambda p: write(p, np.zeros((4800, 3), np.float32) + 0.1, 48_000), ["3 channels"]),
    "6-channels": ("six.wav", lambda p: write(p, np.zeros((4800, 6), np.float32) + 0.1, 48_000), ["6 channels"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_input_file_gives_one_sentence(tmp_path, capsys, case):
    name, make, words = BAD_FILES[case]
    path = tmp_path / name
    if make is not None:
        make(path)
    out_path = tmp_path / "out.wav"
    rc, out, err = run_main(capsys, "roundtrip", path, out_path, "--no-metrics")
    assert_one_sentence(rc, out, err, str(path), *words)
    assert not out_path.exists()


def test_unknown_geometry_lists_the_known_ones(clip, tmp_path, capsys):
    rc, out, err = run_main(capsys, "roundtrip", clip, tmp_path / "o.wav", "--geometry", "huge")
    assert_one_sentence(rc, out, err, '"huge"', "thesis", "wide")


def test_unknown_backend_lists_the_known_ones(clip, tmp_path, capsys):
    rc, out, err = run_main(capsys, "roundtrip", clip, tmp_path / "o.wav", "--phase", "magic")
    assert_one_sentence(rc, out, err, '"magic"', "pghi", "tifresi", "fgla", "pghi+fgla")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu(clip, tmp_path, capsys):
    rc, out, err = run_main(capsys, "roundtrip", clip, tmp_path / "o.wav", "--device", "cuda")
    assert_one_sentence(rc, out, err, '"cuda"', "--device cpu")


def test_output_folder_that_does_not_exist(clip, tmp_path, capsys):
    out_path = tmp_path / "no" / "such" / "folder" / "o.wav"
    rc, out, err = run_main(capsys, "roundtrip", clip, out_path, "--no-metrics")
    assert_one_sentence(rc, out, err, str(out_path), "does not exist")
    assert not out_path.parent.exists()


@pytest.mark.parametrize("case", ["corrupt", "unknown-backend", "missing-folder"])
def test_errors_through_the_real_command_line(tmp_path, case):
    """The same contract through `python -m mosapp`: status 2, one line, no traceback."""
    write(tmp_path / "ok.wav", notes(0.5, 48_000, [220.0]), 48_000)
    if case == "corrupt":
        _corrupt(tmp_path / "x.wav", seed=1)  # the case where libmpg123 used to add its own stderr line
        args, needles = ["x.wav", "o.wav"], ["x.wav", "cannot be read as audio"]
    elif case == "unknown-backend":
        args, needles = ["ok.wav", "o.wav", "--phase", "nope"], ["pghi", "tifresi", "fgla", "pghi+fgla"]
    else:
        args, needles = ["ok.wav", "gone/o.wav"], ["gone/o.wav", "does not exist"]
    proc = run_cli("roundtrip", *args, "--no-metrics", cwd=tmp_path)
    assert_one_sentence(proc.returncode, proc.stdout, proc.stderr, *needles)


# --------------------------------------------------------------------------- working runs


def test_help():
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    assert "roundtrip" in proc.stdout and "Traceback" not in proc.stderr


def test_stereo_pcm24_roundtrip_keeps_the_format(tmp_path):
    """The issue's main case, through the real command line."""
    rate = 48_000
    left = notes(2.0, rate, [196.0, 261.6, 329.6], seed=1)
    right = notes(2.0, rate, [220.0, 293.7, 392.0], seed=2)
    in_path = write(tmp_path / "in.wav", np.stack([left, right], axis=1), rate, subtype="PCM_24")
    out_path = tmp_path / "out.wav"
    proc = run_cli("roundtrip", in_path, out_path, "--visqol", "off", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "spectral convergence" in proc.stdout
    info_in, info_out = sf.info(str(in_path)), sf.info(str(out_path))
    assert info_out.frames == info_in.frames == 2 * rate
    assert info_out.samplerate == 48_000
    assert info_out.channels == 2
    assert info_out.subtype == "PCM_24"
    y, _ = sf.read(str(out_path), always_2d=True)
    assert np.isfinite(y).all() and np.abs(y).max() > 0.05
    # Default is the mono mix-down, written back to both channels.
    np.testing.assert_array_equal(y[:, 0], y[:, 1])


def _long_term_spectrum(x: np.ndarray) -> np.ndarray:
    spec = np.abs(np.fft.rfft(x))
    k = 64  # smooth over ~15 Hz bins so the comparison ignores fine phase detail
    return np.convolve(spec, np.ones(k) / k, mode="same")


def test_per_channel_keeps_the_channels_apart(tmp_path, capsys):
    rate = 48_000
    left = notes(1.0, rate, [110.0, 165.0], seed=3)
    right = notes(1.0, rate, [1200.0, 1800.0], seed=4)
    in_path = write(tmp_path / "lr.wav", np.stack([left, right], axis=1), rate, subtype="PCM_16")
    out_path = tmp_path / "lr-out.wav"
    rc, out, err = run_main(capsys, "roundtrip", in_path, out_path, "--per-channel", "--no-metrics")
    assert rc == 0, err
    y, sr = sf.read(str(out_path), always_2d=True, dtype="float32")
    assert sr == rate and y.shape == (rate, 2)
    assert np.abs(y[:, 0] - y[:, 1]).max() > 0.05
    for ch, (own, other) in enumerate([(left, right), (right, left)]):
        got = _long_term_spectrum(y[:, ch])
        assert np.corrcoef(got, _long_term_spectrum(own))[0, 1] > np.corrcoef(got, _long_term_spectrum(other))[0, 1]


def test_json_output(clip, tmp_path, capsys):
    rc, out, err = run_main(capsys, "roundtrip", clip, tmp_path / "o.wav", "--visqol", "off", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert isinstance(doc, dict)
    assert {"metrics", "timings_s", "realtime_factor"} <= doc.keys()
    assert doc["metrics"]["spectral_convergence_db"] is not None
    assert doc["metrics"]["visqol"] is None
    assert doc["realtime_factor"] > 0


@pytest.mark.parametrize("extra", [["--phase", "tifresi"], ["--phase", "fgla"], ["--phase", "pghi+fgla"],
                                   ["--geometry", "thesis"]], ids=lambda e: e[1])
def test_every_backend_and_geometry_runs(clip, tmp_path, capsys, extra):
    out_path = tmp_path / "o.wav"
    rc, out, err = run_main(capsys, "roundtrip", clip, out_path, "--no-metrics", *extra)
    assert rc == 0, err
    assert extra[1] in out
    assert sf.info(str(out_path)).frames == sf.info(str(clip)).frames


def test_progress_bar_on_stderr(clip, tmp_path, capsys):
    rc, out, err = run_main(capsys, "roundtrip", clip, tmp_path / "o.wav", "--no-metrics", "--progress", "on")
    assert rc == 0, err
    assert "reconstructing" in err or "%|" in err
    assert "reconstructing" not in out


def test_no_progress_bar_by_default_on_a_short_clip(clip, tmp_path, capsys):
    rc, out, err = run_main(capsys, "roundtrip", clip, tmp_path / "o.wav", "--no-metrics")
    assert rc == 0 and err == ""


FORMATS = [("ogg", "OGG", "VORBIS"), ("flac", "FLAC", "PCM_16")]
if "MP3" in sf.available_formats():
    FORMATS.append(("mp3", "MP3", "MPEG_LAYER_III"))


@pytest.mark.parametrize("ext,fmt,subtype", FORMATS, ids=[f[0] for f in FORMATS])
def test_compressed_mono_22k_inputs(tmp_path, capsys, ext, fmt, subtype):
    rate = 22_050
    in_path = write(tmp_path / f"in.{ext}", notes(1.0, rate, [220.0, 330.0]), rate, format=fmt, subtype=subtype)
    decoded, _ = sf.read(str(in_path), always_2d=True)
    out_path = tmp_path / "out.wav"
    rc, out, err = run_main(capsys, "roundtrip", in_path, out_path, "--no-metrics")
    assert rc == 0, err
    info = sf.info(str(out_path))
    assert (info.samplerate, info.channels, info.frames) == (rate, 1, decoded.shape[0])


def test_flac_output_keeps_pcm16(tmp_path, capsys):
    rate = 22_050
    in_path = write(tmp_path / "in.flac", notes(1.0, rate, [220.0]), rate, subtype="PCM_16")
    out_path = tmp_path / "out.flac"
    rc, out, err = run_main(capsys, "roundtrip", in_path, out_path, "--no-metrics")
    assert rc == 0, err
    info = sf.info(str(out_path))
    assert (info.format, info.subtype, info.samplerate, info.frames) == ("FLAC", "PCM_16", rate, rate)
