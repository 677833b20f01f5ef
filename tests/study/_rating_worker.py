"""A scripted listener in its own process, for the crash and concurrency tests.

    python _rating_worker.py STUDY.toml LISTENER [--delay S] [--tolerate-duplicates] [--wait-for FILE]

Rates every remaining trial of LISTENER (score = 1 + trial index mod 5) and prints
``rated INDEX`` after each committed rating, then ``done N`` with the number it rated.
"""

from __future__ import annotations

import argparse
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("study")
    ap.add_argument("listener")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--tolerate-duplicates", action="store_true")
    ap.add_argument("--wait-for", default=None, help="after start-up, wait until this file exists")
    args = ap.parse_args()

    from mosapp.study import StudyEngine, StudyError

    engine = StudyEngine.open(args.study)
    if args.wait_for:
        from pathlib import Path

        print("ready", flush=True)
        while not Path(args.wait_for).exists():
            time.sleep(0.005)
    session = engine.start_or_resume(args.listener, audio_device="worker")
    print("started", flush=True)
    rated = 0
    while (trial := session.next_trial()) is not None:
        try:
            session.rate(trial, 1 + trial.index % 5, play_counts=(1, 1), listening_time_s=0.5, response_time_s=0.1)
        except StudyError as exc:
            if args.tolerate_duplicates and "already rated" in str(exc):
                continue
            raise
        rated += 1
        print(f"rated {trial.index}", flush=True)
        if args.delay:
            time.sleep(args.delay)
    session.close()
    engine.close()
    print(f"done {rated}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
