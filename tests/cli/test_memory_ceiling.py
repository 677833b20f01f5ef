"""Every command on huge and hostile inputs under a 3 GB address-space cap: success or one sentence, within 60 s.

The inputs (:mod:`tests.cli.hostile`) cost a few MB: a sparse 6-hour WAV, 1-hour streams that
pass every range check (stereo Opus, AVIF, pghi-only silence, the lowpass anchor at 96 kHz), a
zlib bomb (3 MB inflating to 3 GB) and ``/dev/zero``. Each command runs in a subprocess whose
address space ``resource.setrlimit(RLIMIT_AS)`` caps at 3 GB (Python, numpy and torch take about
1.2 GB of it before any work). The 1-hour Opus stream must decode (streamed block by block).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from tests.cli import hostile

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS as Linux counts it; /dev/zero"),
]

REPO = Path(__file__).resolve().parents[2]
CAP_BYTES = 3 * 1024**3
LIMIT_S = 60


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    files = {
        "six-hour-wav": hostile.sparse_wav(d / "six-hours.wav"),
        "opus-hour": hostile.opus_hour(d / "opus-hour.sgc"),
        "avif-hour": hostile.avif_hour(d / "avif-hour.sgc", REPO / "tests" / "fixtures" / "sgc" / "avif-12.sgc"),
        "pghi-only-hour": hostile.pghi_only_hour(d / "pghi-hour.sgc"),
        "lowpass-96k-hour": hostile.lowpass_hour_96k(d / "lowpass-hour.sgc"),
        "zlib-bomb": hostile.zlib_bomb(d / "bomb.sgc"),
        "dev-zero": Path("/dev/zero"),
    }
    assert (d / "six-hours.wav").stat().st_blocks * 512 < 50 << 20  # sparse: it takes no disk
    return files


def _cap() -> None:  # pragma: no cover - runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (CAP_BYTES, CAP_BYTES))


def run_capped(*argv: str, cwd: Path) -> tuple[int, str, str, float]:
    env = dict(os.environ)
    env.pop("MOSAPP_MAX_MEMORY", None)  # the default ceiling
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "mosapp", *argv], cwd=cwd, preexec_fn=_cap, capture_output=True,
                          text=True, timeout=LIMIT_S + 30, env=env)
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0


def assert_success_or_one_sentence(rc: int, out: str, err: str, seconds: float) -> str:
    assert seconds < LIMIT_S, seconds
    assert "Traceback" not in err and "MemoryError" not in err, err[-3000:]
    if rc == 0:
        return ""
    assert rc == 2, (rc, err[-3000:])
    errors = [line for line in err.splitlines() if line.startswith("mosapp: error: ")]
    assert len(errors) == 1, err[-3000:]
    assert errors[0].endswith("."), errors[0]
    return errors[0]


DECODE = ["six-hour-wav", "opus-hour", "avif-hour", "pghi-only-hour", "lowpass-96k-hour", "zlib-bomb", "dev-zero"]


@pytest.mark.parametrize("name", DECODE)
def test_decode_under_a_3_gb_cap(inputs, tmp_path, name):
    out = tmp_path / "out.wav"
    rc, stdout, err, seconds = run_capped("decode", str(inputs[name]), str(out), "--phase", "pghi", cwd=tmp_path)
    line = assert_success_or_one_sentence(rc, stdout, err, seconds)
    if name == "opus-hour":
        assert rc == 0, line
        info = sf.info(str(out))
        assert (info.channels, info.samplerate, info.frames) == (2, 44_100, hostile.HOUR)
    elif name in ("pghi-only-hour", "lowpass-96k-hour"):
        assert "ceiling of 2.0 GB" in line and "--max-memory" in line  # refused before allocating
    elif name == "zlib-bomb":
        assert "expands to more than" in line
    elif name == "dev-zero":
        assert "is a device" in line
    if rc:
        assert not out.exists()


@pytest.mark.parametrize("command", ["encode", "roundtrip"])
@pytest.mark.parametrize("name", ["six-hour-wav", "dev-zero", "zlib-bomb", "opus-hour"])
def test_encode_and_roundtrip_under_a_3_gb_cap(inputs, tmp_path, command, name):
    out = tmp_path / ("out.sgc" if command == "encode" else "out.wav")
    rc, stdout, err, seconds = run_capped(command, str(inputs[name]), str(out), cwd=tmp_path)
    line = assert_success_or_one_sentence(rc, stdout, err, seconds)
    assert rc == 2  # none of these is audio mosapp codes in an .sgc file or holds under the ceiling
    if name == "six-hour-wav":
        assert ("360.0 minutes long" in line) if command == "encode" else ("ceiling of 2.0 GB" in line)


STUDY = """title = "Deep excerpt"
test_type = "dcr"
conditions = ["reference", "pghi-only"]
seed = 1
database = "s.sqlite"
stimuli_dir = "stimuli"
[training]
trials = 0
[pipeline]
phase = "pghi"
device = "cpu"
metrics = ["mel_distance"]
[[clips]]
path = "{path}"
name = "deep"
start_s = [10800.0]
length_s = 2.0
"""


@pytest.mark.parametrize("name", ["six-hour-wav", "zlib-bomb"])
def test_study_prepare_under_a_3_gb_cap(inputs, tmp_path, name):
    study = tmp_path / "deep.toml"
    study.write_text(STUDY.format(path=inputs[name]), encoding="utf-8")
    # --workers 0: rendered in this process, the one the cap is on (a Dask worker is a process of its own).
    rc, stdout, err, seconds = run_capped("study", "prepare", str(study), "--progress", "off", "--workers", "0",
                                          cwd=tmp_path)
    line = assert_success_or_one_sentence(rc, stdout, err, seconds)
    if name == "six-hour-wav":
        # Three hours into a six-hour file: the excerpt is read by seeking, not by decoding 6 hours.
        assert rc == 0, line
        assert len(list((tmp_path / "stimuli").glob("*.wav"))) == 2
    else:
        assert "cannot be read as audio" in line
