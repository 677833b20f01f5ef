"""A write that fails half-way (a full disk, a file-size limit) is one sentence and leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import resource, signal, sys
import numpy as np
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
from mosapp.core.audio import write_audio, write_audio_blocks
from mosapp.core.errors import AudioError
x = np.zeros((2, 441_000), np.float32)
for write in (lambda: write_audio(sys.argv[1] + "/a.wav", x, 44_100, subtype="FLOAT"),
              lambda: write_audio_blocks(sys.argv[1] + "/b.wav", [x, x], 44_100, 2, subtype="FLOAT"),
              lambda: write_audio(sys.argv[1] + "/c.flac", 0.1 * np.random.default_rng(0).standard_normal(x.shape), 44_100)):
    try:
        write()
    except AudioError as exc:
        print(exc)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE")
def test_a_float_wav_write_that_runs_out_of_space_is_one_sentence(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and all("cannot be written (File too large)." in line for line in lines), proc.stdout
    assert list(tmp_path.iterdir()) == []  # no output, no temporary
