"""Shared signals and helpers of the playback tests: sines, the largest sample step (a click
detector), a player driven block by block, and a fresh interpreter for PortAudio runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mosapp.playback import Player

RATE = 44_100
PEAK = 0.5
REPO = Path(__file__).resolve().parents[2]


def sine(freq: float, seconds: float = 1.0, phase: float = 0.0, amp: float = PEAK) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def max_jump(x: np.ndarray) -> float:
    """Largest sample-to-sample step of a (n,) or (n, channels) signal."""
    return float(np.abs(np.diff(x, axis=0)).max())


def play_blocks(player: Player, total: int, block: int = 256) -> np.ndarray:
    out = [player.render(min(block, total - done)) for done in range(0, total, block)]
    return np.concatenate(out)


@pytest.fixture
def ab() -> tuple[np.ndarray, np.ndarray]:
    """440 Hz and 1 kHz sines with different phases: the two stimuli a switch goes between."""
    return sine(440.0, phase=0.0), sine(1000.0, phase=1.3)


def playing_player(buffers: list[np.ndarray], **kw: Any) -> Player:
    """A player already past its play fade-in (so the output is the stimulus times 1)."""
    p = Player(buffers, RATE, **kw)
    p.play()
    p.render(p._fade)
    return p


def run_isolated(code: str, home: Path | None, timeout: float = 120) -> dict:
    """Run ``code`` in a fresh interpreter with ``HOME=home`` (PortAudio reads ~/.asoundrc when
    it initialises); returns the JSON its last line prints."""
    env = dict(os.environ)
    if home is not None:
        env["HOME"] = str(home)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=timeout, env=env, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
