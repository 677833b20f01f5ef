"""How fast the Inspect view answers on a 10-minute track: the original on screen, and Cancel.

In one run, on the real window (``MainWindow``; offscreen Qt unless ``QT_QPA_PLATFORM`` /
``DISPLAY`` say otherwise), on a 10-minute file made by concatenating Debian's hyperrogue music
(``/usr/share/hyperrogue/music/*.ogg``) into a temporary FLAC (never kept):

* **time to the first original view**: from ``open_path`` (what Open… and a drop do) until
  the original's spectrogram has been painted, while the run it starts goes on: a long file is
  drawn while it is read (the whole track's time axis, filled from the left as blocks arrive),
  so this is the first block's picture. Target < 2 s. The time until the whole original is
  drawn (the file read to its end) is printed beside it.
* **cancel latency** at every stage of a run: Cancel is pressed one second into the stage,
  and the time until the view is idle again (the worker has stopped and said so) is taken.
  Stages are reached with the codec that gets there soonest: reading and encoding with the
  default ``sgc-12``, decoding (phase reconstruction, ``pghi+fgla`` on 32 s blocks) with
  ``pghi-only``, measuring and drawing with ``lowpass-3.5k``. Target < 1 s at every stage.
* with ``--full``: the whole run (default codec and phase backend, ViSQOL auto) to its end,
  its stage times, and whether the window is still alive.

    .venv/bin/python benchmarks/gui_responsiveness.py [--minutes 10] [--file F] [--full] [--repeats 1]
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen" if not os.environ.get("DISPLAY") else "xcb")

import numpy as np
import soundfile as sf

MUSIC = "/usr/share/hyperrogue/music/*.ogg"
FIRST_VIEW_TARGET_S = 2.0
CANCEL_TARGET_S = 1.0
#: (stage, codec, phase backend) whose cancel is timed.
CANCEL_CASES = (("read", "sgc-12", "pghi+fgla"), ("encode", "sgc-12", "pghi+fgla"),
                ("decode", "pghi-only", "pghi+fgla"), ("metrics", "lowpass-3.5k", "pghi+fgla"),
                ("display", "lowpass-3.5k", "pghi+fgla"))


def make_track(minutes: float, folder: Path) -> Path:
    """Debian's hyperrogue tracks end to end, cut to ``minutes``, as a stereo 44.1 kHz FLAC."""
    want = int(minutes * 60 * 44_100)
    parts, n = [], 0
    for path in sorted(glob.glob(MUSIC)):
        x, rate = sf.read(path, dtype="float32", always_2d=True)
        if rate != 44_100:
            continue
        parts.append(x)
        n += len(x)
        if n >= want:
            break
    if n < want:
        raise SystemExit(f"not enough music in {MUSIC} for {minutes} minutes (apt-get install hyperrogue-music)")
    out = folder / f"hyperrogue-{minutes:g}min.flac"
    sf.write(out, np.concatenate(parts)[:want], 44_100)
    return out


class Harness:
    def __init__(self) -> None:
        from PySide6.QtWidgets import QApplication

        from mosapp.gui.app import MainWindow
        from mosapp.gui.inspect_controls import set_combo

        self.app = QApplication.instance() or QApplication(["mosapp"])
        self.window = MainWindow()
        self.window.resize(1400, 860)
        self.window.show()
        self.view = self.window.inspect
        self.set_combo = set_combo
        self.idle_at: float | None = None
        self.view.busy_changed.connect(lambda busy: None if busy else setattr(self, "idle_at", time.perf_counter()))
        self.pump(0.5)

    def pump(self, seconds: float, until=lambda: False) -> bool:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            if until():
                return True
            self.app.processEvents()
            time.sleep(0.002)
        return until()

    def settings(self, codec: str, phase: str, visqol: str = "off") -> None:
        for combo, text in ((self.view.controls.codec_combo, codec), (self.view.controls.phase_combo, phase),
                            (self.view.controls.visqol_combo, visqol)):
            if not self.set_combo(combo, text):
                raise SystemExit(f"{text} cannot be chosen here")

    def wait_idle(self, timeout_s: float) -> None:
        if not self.pump(timeout_s, lambda: not self.view.busy):
            raise SystemExit("the run did not end in time")

    def first_original_view(self, path: Path) -> tuple[float, float]:
        """Seconds from open_path to the original painted first, and painted whole (the run it
        started is then cancelled)."""
        panes = self.view.panes
        before = panes.paint_counts()["original"]
        start = time.perf_counter()
        self.view.open_path(path)
        ok = self.pump(60, lambda: panes.original_only and panes.paint_counts()["original"] > before)
        first = time.perf_counter() - start
        if not ok:
            raise SystemExit("the original was not drawn within 60 s")
        ok = self.pump(300, lambda: panes.original_only and self.view.original_complete)
        self.pump(0.05)
        whole = time.perf_counter() - start
        if not ok:
            raise SystemExit("the whole original was not drawn within 300 s")
        self.view.cancel()
        self.wait_idle(60)
        return first, whole

    def cancel_latency(self, path: Path, stage: str, into_s: float = 1.0, timeout_s: float = 900) -> float:
        """Start a run, press Cancel ``into_s`` into ``stage``; seconds until the view is idle."""
        self.view.open_path(path)
        entered = None

        def in_stage() -> bool:
            nonlocal entered
            current = self.view.controller.stage.stage if self.view.controller.stage is not None else None
            if current == stage and entered is None:
                entered = time.perf_counter()
            return entered is not None and time.perf_counter() - entered >= into_s

        if not self.pump(timeout_s, lambda: in_stage() or not self.view.busy):
            raise SystemExit(f"the run did not reach {stage} in {timeout_s:.0f} s")
        if not self.view.busy:
            raise SystemExit(f"the run ended before {stage} could be cancelled: {self.view.message_text()}")
        self.idle_at = None
        pressed = time.perf_counter()
        self.view.controls.cancel_button.click()
        self.wait_idle(600)
        if not self.view.message_text().startswith("Cancelled"):
            raise SystemExit(f"not cancelled: {self.view.message_text()}")
        return self.idle_at - pressed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--file", help="use this audio file instead of the concatenated music")
    parser.add_argument("--repeats", type=int, default=1, help="timings per case (the worst is reported)")
    parser.add_argument("--full", action="store_true", help="also run the default job to its end")
    parser.add_argument("--stages", default=",".join(s for s, _, _ in CANCEL_CASES))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        path = Path(args.file) if args.file else make_track(args.minutes, Path(tmp))
        info = sf.info(str(path))
        print(f"track: {path.name}, {info.duration / 60:.1f} min, {info.samplerate} Hz, {info.channels} ch "
              f"(made in {time.perf_counter() - t:.1f} s)")
        h = Harness()
        print(f"Qt platform: {h.app.platformName()}; default codec in Inspect: {h.view.controls.codec_combo.currentText()}")
        failed = False

        h.settings("sgc-12", "pghi+fgla")
        views = [h.first_original_view(path) for _ in range(args.repeats)]
        worst = max(v[0] for v in views)
        failed |= worst >= FIRST_VIEW_TARGET_S
        print(f"time to first original view: {worst:.2f} s (median {statistics.median(v[0] for v in views):.2f} s; "
              f"target < {FIRST_VIEW_TARGET_S:.0f} s) {'OK' if worst < FIRST_VIEW_TARGET_S else 'MISSED'}; "
              f"whole original drawn after {max(v[1] for v in views):.2f} s")

        wanted = args.stages.split(",")
        for stage, codec, phase in CANCEL_CASES:
            if stage not in wanted:
                continue
            h.settings(codec, phase)
            latencies = [h.cancel_latency(path, stage, into_s=0.3 if stage == "read" else 1.0)
                         for _ in range(args.repeats)]
            worst = max(latencies)
            failed |= worst >= CANCEL_TARGET_S
            print(f"cancel during {stage:<8} ({codec}, {phase}): {worst * 1000:.0f} ms "
                  f"(target < {CANCEL_TARGET_S * 1000:.0f} ms) {'OK' if worst < CANCEL_TARGET_S else 'MISSED'}",
                  flush=True)

        if args.full:
            h.settings("sgc-12", "pghi+fgla", visqol="auto")
            results = []
            h.view.result_ready.connect(results.append)
            start = time.perf_counter()
            h.view.open_path(path)
            h.wait_idle(3 * 3600)
            elapsed = time.perf_counter() - start
            if not results:
                print(f"full run FAILED after {elapsed:.0f} s: {h.view.message_text()}")
                return 1
            r = results[0]
            stages = ", ".join(f"{k} {v:.0f} s" for k, v in r.timings_s.items())
            print(f"full run ({r.request.codec}, {r.request.config.phase}): {elapsed:.0f} s for "
                  f"{r.seconds / 60:.1f} min of audio ({stages}); {r.file_kbps:.2f} kbit/s, mel distance "
                  f"{r.scores['mel_distance']:.3f}; window alive: {h.window.isVisible()}")
        h.window.close()
        return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
