"""How fast ``mosapp evaluate`` measures (excerpt, codec) pairs, side by side in one run.

Three figures, on 6 s excerpts of held-out music (files no sgc network trained on):

1. **2 workers against 1** (local Dask cluster, one thread per worker): pairs per second once the
   workers are up, for the same job (``--codecs``, default opus-12 mp3-16 on 36 excerpts, every
   metric but ViSQOL). Target: at least 1.7x on a 2-core machine. A codec that already uses both
   cores inside one worker (AVIF's encoder and decoder run libavif's threads; the phase
   reconstruction overlaps two blocks) gains less from a second worker: ``--codecs opus-12 avif-12``
   shows how much.
2. **``mosapp evaluate`` against the command line**, ``opus-12``: one ``mosapp encode`` and one
   ``mosapp decode`` process per excerpt, the registry's metric functions on the result in this
   (already warm) process, against one ``mosapp evaluate`` run of the same excerpts and metrics
   (cluster start included). Target: at least 5x the throughput.
3. **The per-pair overhead inside a worker**: a pair's time in the worker beyond its encode,
   decode and metrics (reading the excerpt by seeking, looking up the codec, the result's
   transfer), and the scheduling cost per pair seen from the client.

    .venv/bin/python benchmarks/evaluate_speed.py [--excerpts 36] [--codecs opus-12 mp3-16]

Needs ``apt-get install hyperrogue-music drascula-music asc-music``. The load average is printed:
on a machine shared with other work the 2-worker figure is capped by the cores the others take.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import soundfile as sf  # noqa: E402

from mosapp.core import metrics  # noqa: E402
from mosapp.core.config import PIPELINE_SAMPLE_RATE  # noqa: E402
from mosapp.core.job import Progress  # noqa: E402
from mosapp.evaluation.clips import plan_excerpts, read_excerpt  # noqa: E402
from mosapp.evaluation.results import write_float_wav  # noqa: E402
from mosapp.evaluation.run import run_evaluation  # noqa: E402

HELD_OUT = ["/usr/share/hyperrogue/music/hr3-caves.ogg", "/usr/share/hyperrogue/music/hr-domina-mountain.ogg",
            "/usr/share/scummvm/drascula/audio/track5.ogg", "/usr/share/games/asc/music/frontiers.mp3",
            "/usr/share/games/asc/music/machine_wars.mp3", "/usr/share/games/asc/music/time_to_strike.mp3"]
METRICS = [m for m in metrics.SIGNAL_METRIC_NAMES if m != "visqol"]


def timed_run(inputs: list[str], codecs: list[str], out: Path, workers: int, per_file: int) -> dict[str, float]:
    """Wall seconds of a run, and of its pairs once the workers were up."""
    t0 = time.perf_counter()
    ready = None
    gen = run_evaluation(inputs, codecs, out, metric_names=METRICS, excerpt_seconds=6.0,
                         excerpts_per_file=per_file, workers=workers, plots=False)
    while True:
        try:
            p: Progress = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        if p.stage == "evaluate" and (p.detail or "").startswith("workers ready"):
            ready = time.perf_counter()
    end = time.perf_counter()
    assert result.failed == 0, result.failures
    with open(out / "timings.csv", newline="") as fh:
        timings = list(csv.DictReader(fh))
    return {"wall": end - t0, "pairs_wall": end - (ready or t0), "pairs": result.measured, "timings": timings}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--excerpts", type=int, default=36, help="6 s excerpts (spread over the held-out files)")
    ap.add_argument("--codecs", nargs="+", default=["opus-12", "mp3-16"])
    ap.add_argument("--cli-excerpts", type=int, default=18, help="excerpts for the command-line comparison")
    args = ap.parse_args()
    files = [f for f in HELD_OUT if Path(f).is_file()]
    if not files:
        sys.exit("benchmarks/evaluate_speed.py needs the held-out music: apt-get install hyperrogue-music "
                 "drascula-music asc-music")
    per_file = max(1, -(-args.excerpts // len(files)))
    print(f"# mosapp evaluate speed: {os.cpu_count()} CPUs; {len(files)} held-out files, {per_file} x 6 s each; "
          f"metrics: {', '.join(METRICS)}\n")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        runs = {}
        for workers in (1, 2):
            runs[workers] = timed_run(files, args.codecs, tmp_path / f"w{workers}", workers, per_file)
            r = runs[workers]
            print(f"{workers} worker(s): {r['pairs']} pairs of {' '.join(args.codecs)} in {r['wall']:.1f} s "
                  f"({r['pairs_wall']:.1f} s once the workers were up): {r['pairs'] / r['pairs_wall']:.2f} pairs/s")
        speedup = (runs[2]["pairs"] / runs[2]["pairs_wall"]) / (runs[1]["pairs"] / runs[1]["pairs_wall"])
        print(f"2 workers / 1 worker throughput: {speedup:.2f}x (target >= 1.7x)\n")

        # Overhead inside a worker, and per pair seen from the client (1-worker run: no contention).
        t = runs[1]["timings"]
        inside = [float(x["total_s"]) - float(x["encode_s"]) - float(x["decode_s"]) - float(x["metrics_s"]) for x in t]
        work = sum(float(x["total_s"]) for x in t)
        sched = (runs[1]["pairs_wall"] - work) / max(1, len(t))
        print(f"per-pair overhead inside a worker (read excerpt by seeking, codec lookup): median "
              f"{1000 * statistics.median(inside):.1f} ms, max {1000 * max(inside):.1f} ms; scheduling and transfer "
              f"per pair seen from the client: {1000 * sched:.1f} ms (of {work / max(1, len(t)):.2f} s per pair)\n")

        # mosapp evaluate against one CLI encode + decode per excerpt, opus-12.
        excerpts, _ = plan_excerpts(files, excerpt_seconds=6.0, excerpts_per_file=per_file)
        excerpts = excerpts[: args.cli_excerpts]
        wav_dir = tmp_path / "excerpts"
        wav_dir.mkdir()
        wavs = []
        for i, e in enumerate(excerpts):
            wav = wav_dir / f"x{i}.wav"
            write_float_wav(wav, read_excerpt(e).samples, PIPELINE_SAMPLE_RATE)
            wavs.append(wav)
        py = [sys.executable, "-m", "mosapp"]
        t0 = time.perf_counter()
        for wav in wavs:
            sgc, dec = wav.with_suffix(".sgc"), wav.with_name(wav.stem + "-dec.wav")
            subprocess.run([*py, "encode", str(wav), str(sgc), "--codec", "opus-12"], check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL)
            subprocess.run([*py, "decode", str(sgc), str(dec)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
            ref = sf.read(str(wav), dtype="float32", always_2d=True)[0].T
            out = sf.read(str(dec), dtype="float32", always_2d=True)[0].T
            metrics.score(ref, out, PIPELINE_SAMPLE_RATE, METRICS)
        cli_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        r = subprocess.run([*py, "evaluate", *map(str, wavs), "--codecs", "opus-12", "--out", str(tmp_path / "cli-ev"),
                            "--metrics", *METRICS, "--no-plots"], cwd=ROOT, capture_output=True, text=True)
        ev_s = time.perf_counter() - t0
        assert r.returncode == 0, r.stderr
        print(f"opus-12 on {len(wavs)} x 6 s: CLI encode + decode per excerpt {cli_s:.1f} s "
              f"({len(wavs) / cli_s:.2f} pairs/s), `mosapp evaluate` (process and cluster start included) "
              f"{ev_s:.1f} s ({len(wavs) / ev_s:.2f} pairs/s): {cli_s / ev_s:.1f}x the throughput (target >= 5x)")
    print(f"\nload average: {' '.join(f'{v:.1f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
