"""Switch latency of the playback engine: from ``Player.select()`` (what the key handler calls)
to the first audio block that carries the switch, side by side with the block duration.

Each trial waits a random fraction of a few blocks (so the key press falls anywhere in the
callback's cycle), switches between two stimuli (440 Hz / 1 kHz sines; ``--stimuli N`` preloads N,
as a MUSHRA screen does with its reference and samples, and switches to a random other one) and waits until the
callback reports that it applied the switch; the latency is the time from the call to the end
of that callback (the block is then handed to PortAudio). The sound reaches the DAC about the
stream's output latency later, which is printed next to it.

On a machine without an output device (or with ``--virtual on``) the measurement runs in a
subprocess whose HOME holds the paced ALSA null device of
``benchmarks/virtual_alsa.py``: the ALSA ``null`` device behind a pipe read at
44.1 kHz, which paces the callback like a sound card.

    .venv/bin/python benchmarks/playback_latency.py [--trials 300] [--blocksize 256] [--device N] [--stimuli 2]
                                                     [--virtual auto|on|off] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks.virtual_alsa import write_virtual_alsa_config
from mosapp.playback import Player, output_devices

RATE = 44_100
TARGET_MS = 20.0


def measure(trials: int, blocksize: int, device, stimuli: int = 2) -> dict:
    t = np.arange(RATE) / RATE
    freqs = [440.0, 1000.0] + [440.0 * 1.3 ** k for k in range(2, stimuli)]
    buffers = [np.tile((0.5 * np.sin(2 * np.pi * f * t + 1.3 * k)).astype(np.float32), 10)
               for k, f in enumerate(freqs[:stimuli])]
    player = Player(buffers, RATE)
    if not player.open(device, blocksize=blocksize, latency="low"):
        return {"error": player.silent_reason}
    block_s = blocksize / RATE
    player.set_loop(0.0, player.duration_s)
    player.play()
    time.sleep(0.3)
    to_block, to_dac = [], []
    rng = random.Random(0)
    for _ in range(trials):
        time.sleep(0.01 + rng.uniform(0, 3 * block_s))
        t0 = time.perf_counter()
        player.select(rng.choice([i for i in range(stimuli) if i != player.selected]))
        seq = player.command_seq
        while player.applied[0] < seq:
            if time.perf_counter() - t0 > 2.0:
                return {"error": "the callback stopped applying commands (no block in 2 s)"}
            time.sleep(0.0002)
        _, ready, dac = player.applied
        to_block.append(ready - t0)
        to_dac.append(ready - t0 + max(dac, 0.0))
    device = player.device
    assert device is not None, "open() returned True"
    result = {
        "device": device.name, "hostapi": device.hostapi,
        "virtual": os.environ.get("MOSAPP_BENCH_VIRTUAL") == "1",
        "stimuli": stimuli, "blocksize": blocksize, "block_ms": 1000 * block_s, "output_latency_ms": 1000 * player.output_latency_s,
        "crossfade_ms": player.crossfade_ms, "trials": trials, "xruns": player.xruns,
        "switches_counted": sum(player.play_counts),
        "select_to_block_ms": _summary(to_block),
        "select_to_dac_ms": _summary(to_dac),
    }
    player.close()
    return result


def _summary(values: list[float]) -> dict:
    ms = sorted(1000 * v for v in values)
    return {"median": statistics.median(ms), "p95": ms[int(0.95 * (len(ms) - 1))], "max": ms[-1], "min": ms[0]}


def report(r: dict) -> None:
    if "error" in r:
        print(f"no measurement: {r['error']}")
        return
    where = "paced ALSA null device (virtual, no sound card)" if r["virtual"] else f"{r['device']} ({r['hostapi']})"
    print(f"device: {where}")
    print(f"block: {r['blocksize']} frames at {RATE} Hz = {r['block_ms']:.2f} ms; "
          f"stream output latency (PortAudio) {r['output_latency_ms']:.2f} ms; crossfade {r['crossfade_ms']:.2f} ms")
    print(f"{r['trials']} switches among {r['stimuli']} preloaded stimuli, {r['xruns']} underflows\n")
    print(f"{'':34}{'median':>9}{'p95':>9}{'max':>9}")
    for label, key in (("select() -> block with the switch", "select_to_block_ms"),
                       ("  + that block's delay to the DAC", "select_to_dac_ms")):
        s = r[key]
        print(f"{label:34}{s['median']:8.2f} {s['p95']:8.2f} {s['max']:8.2f}   ms")
    print(f"{'block duration':34}{r['block_ms']:8.2f}")
    worst = r["select_to_block_ms"]["max"] + r["output_latency_ms"]
    verdict = "meets" if worst < TARGET_MS else "misses"
    print(f"\nworst select -> block + output latency = {worst:.2f} ms: {verdict} the < {TARGET_MS:.0f} ms target")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--blocksize", type=int, default=256)
    ap.add_argument("--device", default=None, help="output device index or name (default: the default output)")
    ap.add_argument("--virtual", choices=["auto", "on", "off"], default="auto",
                    help="use the paced ALSA null device (auto: when there is no output device)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--stimuli", type=int, default=2, help="preloaded stimuli (a MUSHRA screen: 1 + conditions)")
    args = ap.parse_args()
    device = int(args.device) if args.device is not None and args.device.isdigit() else args.device

    if args.virtual == "on" or (args.virtual == "auto" and not output_devices()):
        # PortAudio reads ~/.asoundrc when it starts: measure in a child with its own HOME.
        with tempfile.TemporaryDirectory(prefix="mosapp-alsa-") as home:
            write_virtual_alsa_config(home, rate=RATE, paced=True)
            env = dict(os.environ, HOME=home, MOSAPP_BENCH_VIRTUAL="1")
            cmd = [sys.executable, __file__, "--virtual", "off", "--trials", str(args.trials),
                   "--blocksize", str(args.blocksize), "--stimuli", str(args.stimuli)] + (["--json"] if args.json else [])
            sys.exit(subprocess.run(cmd, env=env).returncode)

    if args.stimuli < 2:
        ap.error(f"--stimuli {args.stimuli}: give at least 2 (switching needs two)")
    result = measure(args.trials, args.blocksize, device, args.stimuli)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    sys.exit(1 if "error" in result else 0)


if __name__ == "__main__":
    main()
