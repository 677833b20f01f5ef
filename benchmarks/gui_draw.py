"""From a pipeline result to the Inspect view's spectrogram pair on screen, for a 10-minute track.

Side by side in one run, offscreen Qt, the same synthesised track:

* **arrays → drawn** (what ``InspectView.show_arrays`` does on the GUI thread): a quick
  overview (one analysed frame per drawn column, at most 4000 columns), the three images set,
  and Qt's event loop run until every image has been painted. Target < 1 s.
* **exact analysis** (what a run, or a change of analysis, does on a worker thread, not on the
  GUI thread): every frame analysed and max-pooled into the same columns; reported for scale.
* **precomputed → drawn** (what the view does when a run finishes): drawing the exact pair.

Each is measured for the view's analyses side by side: its default (Hann 2048, hop 512), the
low-frequency mode's (Hann 8192, hop 1024; drawn on the log axis as in that mode), the longest
window (Hann 16384, hop 2048) and the codec lattice (thesis).

The reconstruction is the original with a level change, a spectral tilt and noise (as fast as
possible to make), or with ``--pipeline`` the real "PGHI only" round trip (phase ``pghi``;
about a minute on two busy cores). Drawing does not depend on which.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/gui_draw.py [--minutes 10] [--repeats 3] [--pipeline]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np

from mosapp.core.config import PIPELINE_SAMPLE_RATE as RATE

TARGET_S = 1.0


def synthesise(minutes: float, seed: int = 0) -> np.ndarray:
    """A music-like track (plucked harmonic notes every 0.25 s, a vibrato voice, a little noise)."""
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * RATE)
    out = np.zeros(n, dtype=np.float32)
    note_n = int(1.5 * RATE)
    t = np.arange(note_n, dtype=np.float32) / RATE
    env = (np.exp(-t / 0.4) * (1 - np.exp(-t / 0.004))).astype(np.float32)
    notes = []
    for f0 in (110.0, 146.8, 196.0, 220.0, 261.6, 329.6, 392.0):
        note = sum((0.6 ** h) * np.sin(2 * np.pi * f0 * (h + 1) * t) for h in range(6)).astype(np.float32)
        notes.append(env * note)
    for start in range(0, n - note_n, RATE // 4):
        out[start: start + note_n] += notes[rng.integers(len(notes))] * rng.uniform(0.2, 1.0)
    tt = np.arange(n, dtype=np.float32) / RATE
    out += 0.3 * np.sin(2 * np.pi * 440 * tt + 3 * np.sin(2 * np.pi * 5 * tt)).astype(np.float32)
    out += 0.01 * rng.standard_normal(n).astype(np.float32)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def perturbed(x: np.ndarray, seed: int = 1) -> np.ndarray:
    """A stand-in reconstruction: 1 dB quieter, a first-order tilt, and noise 40 dB down."""
    rng = np.random.default_rng(seed)
    y = 0.89 * x
    y[1:] -= 0.3 * x[:-1]
    return (y + 0.005 * rng.standard_normal(x.shape[-1]).astype(np.float32)).astype(np.float32)


def pipeline_reconstruction(x: np.ndarray) -> np.ndarray:
    from mosapp.core.audio import Audio, AudioInfo
    from mosapp.core.config import PipelineConfig
    from mosapp.pipeline import roundtrip, run_to_end

    info = AudioInfo(path=None, sample_rate=RATE, channels=1, frames=x.shape[-1], subtype="PCM_16", format="WAV")
    result = run_to_end(roundtrip(Audio(x[None], RATE, info), PipelineConfig(phase="pghi"), compute_metrics=False))
    return result.reconstruction[0]


def wait_painted(app, panes, before: dict[str, int], timeout_s: float = 30.0) -> None:
    """Run Qt's event loop until every image has been painted since ``before``."""
    end = time.perf_counter() + timeout_s
    while any(panes.paint_counts()[k] <= v for k, v in before.items()):
        if time.perf_counter() > end:
            raise TimeoutError("the images were not painted")
        app.processEvents()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pipeline", action="store_true", help="reconstruct with the real pghi round trip")
    parser.add_argument("--only", choices=["default", "low", "16384", "lattice"], nargs="*", default=None,
                        help="measure only these analyses")
    args = parser.parse_args(argv)

    from PySide6.QtWidgets import QApplication

    from mosapp.gui.inspect_view import InspectView
    from mosapp.views.spectrogram_data import (
        DEFAULT_ANALYSIS,
        LOW_FREQUENCY_ANALYSIS,
        Analysis,
        analyse_pair,
        overview_columns,
    )

    t = time.perf_counter()
    x = synthesise(args.minutes)
    y = pipeline_reconstruction(x) if args.pipeline else perturbed(x)
    print(f"track: {args.minutes:g} min synthesised, reconstruction "
          f"{'pghi round trip' if args.pipeline else 'perturbed copy'} ({time.perf_counter() - t:.1f} s to make)")

    app = QApplication.instance() or QApplication([])
    view = InspectView()
    view.resize(1400, 860)
    view.show()
    app.processEvents()
    # Warm-up on a short clip: first-call costs (torch FFT plans, Qt's first paint) are not drawing.
    view.show_arrays(x[: 5 * RATE], y[: 5 * RATE])
    wait_painted(app, view.panes, {k: v for k, v in view.panes.paint_counts().items()})

    analyses = {"default": DEFAULT_ANALYSIS, "low": LOW_FREQUENCY_ANALYSIS, "16384": Analysis.stft(16384, 2048),
                "lattice": Analysis.lattice("thesis")}
    med = statistics.median
    worst = 0.0
    for key, analysis in analyses.items():
        if args.only and key not in args.only:
            continue
        view.panes.set_log_frequency(key == "low")
        quick_total, quick_analysis, exact_analysis, exact_draw = [], [], [], []
        pair = None
        for _ in range(args.repeats):
            before = view.panes.paint_counts()
            t0 = time.perf_counter()
            pair = analyse_pair(x, y, frames_per_column=1, analysis=analysis, max_columns=overview_columns(analysis))
            t1 = time.perf_counter()
            view.show_pair(pair)
            wait_painted(app, view.panes, before)
            t2 = time.perf_counter()
            quick_analysis.append(t1 - t0)
            quick_total.append(t2 - t0)

            t0 = time.perf_counter()
            pair_exact = analyse_pair(x, y, analysis=analysis)
            exact_analysis.append(time.perf_counter() - t0)
            before = view.panes.paint_counts()
            t0 = time.perf_counter()
            view.show_pair(pair_exact)
            wait_painted(app, view.panes, before)
            exact_draw.append(time.perf_counter() - t0)
        worst = max(worst, med(quick_total))
        print(f"{analysis.name}{' (log axis)' if key == 'low' else ''}: {pair.columns} columns x {pair.bins} bins, "
              f"{pair.frames_per_column} frames per column ({pair.n_frames} frames), {args.repeats} repeats, medians (min)")
        print(f"  arrays -> drawn (quick overview, GUI thread)  {med(quick_total):6.3f} s ({min(quick_total):.3f})"
              f"  of which analysis {med(quick_analysis):.3f} s   target < {TARGET_S:g} s: "
              f"{'met' if med(quick_total) < TARGET_S else 'NOT met'} ({med(quick_total) / TARGET_S:.2f}x the target)")
        print(f"  exact analysis (worker thread)               {med(exact_analysis):6.3f} s ({min(exact_analysis):.3f})"
              f"  = {med(exact_analysis) / med(quick_analysis):.0f}x the quick analysis")
        print(f"  precomputed exact pair -> drawn              {med(exact_draw):6.3f} s ({min(exact_draw):.3f})")
    print(f"slowest arrays -> drawn: {worst:.3f} s, target < {TARGET_S:g} s: {'met' if worst < TARGET_S else 'NOT met'}")
    view.shutdown()
    view.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
