"""What the command-line tests share: music-like signals, running ``main`` in-process, the one-sentence check."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mosapp.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def notes(seconds: float, rate: int, freqs: list[float], seed: int = 0) -> np.ndarray:
    """A few harmonic notes with attack/decay envelopes plus a little noise: (n,) float32 in [-0.5, 0.5]."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    x = np.zeros(n)
    for k, f0 in enumerate(freqs):
        start = int(k * n / (len(freqs) + 1))
        tt = t[: n - start]
        env = np.exp(-tt / 0.4) * (1 - np.exp(-tt / 0.005))
        x[start:] += env * sum(0.6**h * np.sin(2 * np.pi * f0 * (h + 1) * tt + rng.uniform(0, 6.28)) for h in range(5))
    x += 0.003 * rng.standard_normal(n)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def run_main(capsys, *argv: object) -> tuple[int, str, str]:
    """``mosapp <argv>`` in this process: (exit status, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_sentence(rc: int, out: str, err: str, *must_contain: str) -> str:
    """Exit 2, nothing on stdout, exactly one ``mosapp: error:`` line on stderr containing every needle."""
    assert "Traceback" not in err and "Traceback" not in out, err
    assert rc == 2, (rc, out, err)
    assert out == "", out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("mosapp: error: "), line
    # One sentence: it ends with a full stop and does not run on into a second one.
    body = line[len("mosapp: error: "):]
    assert body.endswith("."), line
    for needle in must_contain:
        assert needle in line, (needle, line)
    return line
