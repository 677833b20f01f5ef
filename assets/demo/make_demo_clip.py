"""Synthesises the shipped demo clip (assets/demo/pluck-demo.flac) from nothing but numbers.

Karplus-Strong plucked-string chords (C - Am - F - G), a sine bass with a soft attack and
a noise hi-hat, panned into stereo. Everything is generated here, so the clip is ours to
ship (CC0, see assets/LICENSES.md). Run it again to regenerate the identical file:

    .venv/bin/python assets/demo/make_demo_clip.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 44_100
BPM = 100
SECONDS = 14.4  # 6 bars of 4/4 at 100 BPM


def pluck(freq: float, seconds: float, rng: np.random.Generator, brightness: float = 0.5) -> np.ndarray:
    n = int(seconds * RATE)
    period = int(round(RATE / freq))
    buf = rng.uniform(-1, 1, period)
    out = np.empty(n)
    for i in range(n):
        out[i] = buf[i % period]
        # Two-point average with a touch of brightness: the Karplus-Strong low-pass.
        buf[i % period] = 0.996 * (brightness * buf[i % period] + (1 - brightness) * buf[(i + 1) % period])
    return out


def note(name: str) -> float:
    names = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
    pitch, octave = name[:-1], int(name[-1])
    semis = names[pitch[0]] + (1 if pitch.endswith("#") else 0) + 12 * (octave - 4) - 9
    return 440.0 * 2 ** (semis / 12)


def main() -> None:
    rng = np.random.default_rng(20261124)
    n = int(SECONDS * RATE)
    left, right = np.zeros(n), np.zeros(n)
    beat = 60.0 / BPM
    chords = [["C3", "E3", "G3", "C4", "E4"], ["A2", "E3", "A3", "C4", "E4"],
              ["F2", "C3", "F3", "A3", "C4"], ["G2", "D3", "G3", "B3", "D4"],
              ["C3", "E3", "G3", "C4", "E4"], ["G2", "D3", "G3", "B3", "G4"]]
    bass = ["C2", "A1", "F1", "G1", "C2", "G1"]
    for bar, chord in enumerate(chords):
        for half in range(2):
            start = int((bar * 4 + half * 2) * beat * RATE)
            for k, name in enumerate(chord):
                s = start + int(k * 0.018 * RATE)  # a strum, low to high
                tone = pluck(note(name), 2.2 * beat, rng, brightness=0.45 + 0.02 * k)
                e = min(n, s + tone.size)
                pan = 0.3 + 0.1 * k
                left[s:e] += (1 - pan) * 0.16 * tone[: e - s]
                right[s:e] += pan * 0.16 * tone[: e - s]
        f = note(bass[bar])
        for b in range(4):
            s = int((bar * 4 + b) * beat * RATE)
            t = np.arange(int(0.9 * beat * RATE)) / RATE
            env = (1 - np.exp(-t / 0.01)) * np.exp(-t / 0.35)
            tone = 0.22 * env * (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t))
            e = min(n, s + tone.size)
            left[s:e] += tone[: e - s]
            right[s:e] += tone[: e - s]
    for eighth in range(int(SECONDS / (beat / 2))):
        s = int(eighth * beat / 2 * RATE)
        t = np.arange(int(0.06 * RATE)) / RATE
        hat = rng.standard_normal(t.size) * np.exp(-t / 0.012)
        hat = np.diff(hat, prepend=0.0)  # crude high-pass
        level = 0.05 if eighth % 2 else 0.08
        e = min(n, s + hat.size)
        left[s:e] += 0.7 * level * hat[: e - s]
        right[s:e] += 1.0 * level * hat[: e - s]
    stereo = np.stack([left, right], axis=1)
    fade = int(0.5 * RATE)
    stereo[-fade:] *= np.linspace(1, 0, fade)[:, None]
    stereo *= 0.8 / np.abs(stereo).max()
    sf.write(Path(__file__).with_name("pluck-demo.flac"), stereo, RATE, subtype="PCM_16")


if __name__ == "__main__":
    main()
