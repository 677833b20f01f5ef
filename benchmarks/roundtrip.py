"""Round-trip benchmark: our PGHI against tifresi's, backends compared, stage times, memory on long input.

Everything is measured side by side in one run on the same clip:

1. own ``pghi`` vs ``tifresi`` (phase reconstruction + synthesis from the same magnitude)
   for both geometries: time ratio and spectral convergence (SC) difference, and the same
   for our PGHI as it was before issue 29 (benchmarks/_baseline_phase.py, same run);
2. every phase backend: SC, mel distance, ViSQOL and time (this chose the default);
3. the whole ``mosapp roundtrip`` on the clip: per-stage times and x real time;
4. peak memory (max RSS of a child process) and speed of ``mosapp roundtrip`` on a 10-minute
   stereo input, mono mix-down and per-channel (targets of issue 29 for the default: at
   least 6x real time, at most 1 GB).

Real music comes from Debian's game-music packages (never committed):
``apt-get install hyperrogue-music drascula-music asc-music``.

    .venv/bin/python benchmarks/roundtrip.py               # everything (~4 min on 2 cores)
    .venv/bin/python benchmarks/roundtrip.py --skip-memory --skip-backends
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import _baseline_phase as old  # noqa: E402

from mosapp.core import dsp, metrics  # noqa: E402
from mosapp.core.audio import read_audio, resample  # noqa: E402
from mosapp.core.config import GEOMETRIES, PIPELINE_SAMPLE_RATE, PipelineConfig  # noqa: E402
from mosapp.phase.invert import invert_magnitude  # noqa: E402
from mosapp.pipeline import roundtrip, run_to_end  # noqa: E402

MUSIC_GLOBS = ["/usr/share/hyperrogue/music/*.ogg", "/usr/share/scummvm/drascula/audio/*.ogg",
               "/usr/share/games/asc/music/*.ogg", "/usr/share/asc/music/*.ogg"]
DEFAULT_CLIP = "/usr/share/hyperrogue/music/hr3-caves.ogg"


def music_files() -> list[str]:
    files: list[str] = []
    for pattern in MUSIC_GLOBS:
        files += sorted(glob.glob(pattern))
    return files


def load_excerpt(path: str, start_s: float, seconds: float) -> np.ndarray:
    audio = read_audio(path)  # mono, 44.1 kHz
    x = audio.samples[0]
    a = int(start_s * PIPELINE_SAMPLE_RATE)
    n = int(seconds * PIPELINE_SAMPLE_RATE)
    if x.size < a + n:
        reps = int(np.ceil((a + n) / x.size))
        x = np.tile(x, reps)
    return np.ascontiguousarray(x[a: a + n])


def sc_of_waveform(y: torch.Tensor, target: torch.Tensor, geometry) -> float:
    return metrics.spectral_convergence_db(target.numpy(), dsp.stft(y.float(), geometry).abs().numpy())


def ours_invert(magnitude: torch.Tensor, geometry, config: PipelineConfig) -> torch.Tensor:
    gen = invert_magnitude(lambda s, e: magnitude[:, s:e], magnitude.shape[-1], magnitude.shape[-1] * geometry.hop,
                           geometry, config, device=torch.device("cpu"))
    return run_to_end(gen)


def tifresi_invert(magnitude: torch.Tensor, geometry) -> np.ndarray:
    from tifresi.stft import GaussTruncTF

    tf = GaussTruncTF(hop_size=geometry.hop, stft_channels=geometry.channels)
    return tf.invert_spectrogram(magnitude.double().numpy())


def warm_up() -> None:
    """Compile numba kernels (ours and tifresi's) outside the timed region."""
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(8192).astype(np.float32))
    for g in GEOMETRIES.values():
        xp, _ = dsp.pad_for_lattice(x, g)
        mag = dsp.stft(xp, g).abs()
        ours_invert(mag, g, PipelineConfig(geometry=g.name))
        with old.old_code():
            ours_invert(mag, g, PipelineConfig(geometry=g.name))
        tifresi_invert(mag, g)


def section_pghi_vs_tifresi(x: np.ndarray, repeats: int) -> None:
    print("\n## 1. own pghi vs tifresi: phase reconstruction + synthesis from the same magnitude")
    print(f"{'geometry':<8} {'tifresi s':>10} {'pghi s':>8} {'speed-up':>9} {'SC tifresi':>11} {'SC pghi':>8} "
          f"{'dSC dB':>7} {'old pghi s':>11} {'old speed-up':>13}  verdict")
    for name, g in GEOMETRIES.items():
        xp, _ = dsp.pad_for_lattice(torch.from_numpy(x), g)
        mag = dsp.stft(xp, g).abs()
        config = PipelineConfig(geometry=name, phase="pghi")
        t_ref, t_ours, t_old = [], [], []
        for _ in range(repeats):  # interleaved, best of N each
            t0 = time.perf_counter()
            y_ref = tifresi_invert(mag, g)
            t_ref.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            y_ours = ours_invert(mag, g, config)
            t_ours.append(time.perf_counter() - t0)
            with old.old_code():
                t0 = time.perf_counter()
                ours_invert(mag, g, config)
                t_old.append(time.perf_counter() - t0)
        sc_ref = sc_of_waveform(torch.from_numpy(y_ref), mag, g)
        sc_ours = sc_of_waveform(y_ours, mag, g)
        ratio = min(t_ref) / min(t_ours)
        ok = ratio >= 6.0 and abs(sc_ours - sc_ref) <= 0.5
        print(f"{name:<8} {min(t_ref):>10.2f} {min(t_ours):>8.2f} {ratio:>8.1f}x {sc_ref:>11.2f} {sc_ours:>8.2f} "
              f"{sc_ours - sc_ref:>+7.2f} {min(t_old):>11.2f} {min(t_ref) / min(t_old):>12.1f}x  "
              f"{'OK (>= 6x, within 0.5 dB)' if ok else 'BELOW TARGET (6x, within 0.5 dB)'}")


#: Clips for the backend comparison: (file, start s); each is cut to --backend-seconds.
BACKEND_CLIPS = [("/usr/share/hyperrogue/music/hr3-caves.ogg", 20.0),
                 ("/usr/share/hyperrogue/music/hr3-jungle.ogg", 10.0),
                 ("/usr/share/scummvm/drascula/audio/track5.ogg", 10.0)]


def section_backends(seconds: float) -> None:
    print(f"\n## 2. phase backends through the whole round trip (mono, CPU, {seconds:g} s per clip); "
          "the means chose the default")
    clips = [(path, start) for path, start in BACKEND_CLIPS if os.path.exists(path)]
    rows: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    for path, start in clips:
        x = load_excerpt(path, start, seconds)
        audio = read_audio(path)
        audio.samples = x[None, :]
        for name in GEOMETRIES:
            g = GEOMETRIES[name]
            xp, _ = dsp.pad_for_lattice(torch.from_numpy(x), g)
            target = dsp.stft(xp, g).abs().numpy()
            for backend in ["pghi", "tifresi", "fgla", "pghi+fgla"]:
                config = PipelineConfig(geometry=name, phase=backend, device="cpu")
                t0 = time.perf_counter()
                result = run_to_end(roundtrip(audio, config, compute_metrics=False))
                elapsed = time.perf_counter() - t0
                rec = result.reconstruction[0]
                yp, _ = dsp.pad_for_lattice(torch.from_numpy(rec), g)
                sc = metrics.spectral_convergence_db(target, dsp.stft(yp, g).abs().numpy())
                mel = metrics.mel_distance(x, rec, PIPELINE_SAMPLE_RATE)
                vq = metrics.visqol(x, rec, PIPELINE_SAMPLE_RATE)
                rows.setdefault((name, backend), []).append((sc, mel, vq, x.size / PIPELINE_SAMPLE_RATE / elapsed))
                print(f"  {os.path.basename(path):<18} {name:<7} {backend:<10} SC {sc:7.2f} dB  mel {mel:6.3f}  "
                      f"ViSQOL {vq:4.2f}  {x.size / PIPELINE_SAMPLE_RATE / elapsed:5.1f}x real time")
    print(f"{'mean over ' + str(len(clips)) + ' clips':<20} {'geometry':<8} {'backend':<10} {'SC dB':>7} "
          f"{'mel dist':>9} {'ViSQOL':>7} {'x realtime':>10}")
    for (name, backend), values in rows.items():
        v = np.mean(np.array(values), axis=0)
        print(f"{'':<20} {name:<8} {backend:<10} {v[0]:>7.2f} {v[1]:>9.3f} {v[2]:>7.2f} {v[3]:>9.1f}x")


def section_stages(path: str, x: np.ndarray) -> None:
    print("\n## 3. whole round trip, default settings (mono, CPU), per stage")
    audio = read_audio(path)
    audio.samples = x[None, :]
    for with_metrics in (False, True):
        t0 = time.perf_counter()
        result = run_to_end(roundtrip(audio, PipelineConfig(device="cpu"), compute_metrics=with_metrics, visqol=True))
        wall = time.perf_counter() - t0
        stages = ", ".join(f"{k} {v:.2f}" for k, v in result.timings_s.items())
        label = "with metrics (incl. ViSQOL)" if with_metrics else "reconstruction only"
        print(f"{label:<28} wall {wall:6.2f} s = {x.size / PIPELINE_SAMPLE_RATE / wall:5.1f}x real time;"
              f" stage seconds (overlapping threads): {stages}")
        if with_metrics:
            m = result.metrics
            print(f"{'':<28} SC {m.spectral_convergence_db:.2f} dB, mel {m.mel_distance:.3f}, "
                  f"ViSQOL {m.visqol:.2f}, target consistency {m.target_consistency:.3f}")


def make_long_stereo(minutes: float, folder: str) -> str:
    files = music_files()
    need = int(minutes * 60 * PIPELINE_SAMPLE_RATE)
    parts, have = [], 0
    i = 0
    while have < need:
        info = sf.info(files[i % len(files)])
        data, rate = sf.read(files[i % len(files)], dtype="float32", always_2d=True)
        data = data[:, :2] if data.shape[1] >= 2 else np.repeat(data, 2, axis=1)
        data = resample(np.ascontiguousarray(data.T), rate, PIPELINE_SAMPLE_RATE)
        parts.append(data)
        have += data.shape[1]
        i += 1
        del info
    long = np.concatenate(parts, axis=1)[:, :need]
    path = os.path.join(folder, "long.wav")
    sf.write(path, long.T, PIPELINE_SAMPLE_RATE, subtype="PCM_16")
    return path


#: Runs the command given after it and prints, as its last line on stderr, the peak RSS (KiB) of
#: that command alone. The benchmark is itself a large process, and a child started from it
#: (vfork, then exec) inherits its high-water mark in ``ru_maxrss``: measured directly, the
#: 10-minute round trip "peaked" at the benchmark's own 1.3 GiB. From this small process it does not.
PEAK_RSS_RUNNER = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                   "print('peak-rss-kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
                   "sys.exit(r.returncode)")


def section_memory(minutes: float, per_channel: bool = True) -> None:
    print(f"\n## 4. peak memory of `mosapp roundtrip` on a {minutes:g}-minute stereo 44.1 kHz input")
    with tempfile.TemporaryDirectory() as folder:
        path = make_long_stereo(minutes, folder)
        modes = [([], "mono mix-down (default)")] + ([(["--per-channel"], "per channel (2 x)")] if per_channel else [])
        for extra, label in modes:
            # The default memory ceiling (2 GiB) admits this file: the peak RSS measured here is the figure.
            cmd = [sys.executable, "-c", PEAK_RSS_RUNNER, sys.executable, "-m", "mosapp", "roundtrip", path,
                   os.path.join(folder, "out.wav"), "--visqol", "off", "--progress", "off", "--device", "cpu", *extra]
            cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            wall = time.perf_counter() - t0
            cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
            if run.returncode != 0:
                print(f"{label}: FAILED: {run.stderr.strip()}")
                continue
            peak_kib = int(run.stderr.strip().splitlines()[-1].split()[-1])
            sc = [line for line in run.stdout.splitlines() if line.startswith("spectral convergence")]
            verdict = ""
            if not extra:
                met = minutes * 60 / wall >= 6.0 and peak_kib <= 1024 * 1024
                verdict = f" [target >= 6x real time, <= 1 GiB: {'MET' if met else 'NOT MET'}]"
            print(f"{label:<26} peak RSS {peak_kib / 1024 / 1024:5.2f} GiB, wall {wall:6.1f} s "
                  f"({minutes * 60 / wall:4.1f}x real time incl. metrics and start-up), CPU {cpu:6.1f} s "
                  f"({minutes * 60 / cpu:4.1f}x real time per core-second), load average {load:.1f} -> "
                  f"{os.getloadavg()[0]:.1f}; {sc[0] if sc else ''}{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default=None, help=f"audio file (default {DEFAULT_CLIP})")
    parser.add_argument("--start", type=float, default=20.0, help="excerpt start in seconds")
    parser.add_argument("--seconds", type=float, default=30.0, help="excerpt length in seconds")
    parser.add_argument("--repeats", type=int, default=2, help="timed repetitions (best taken) in section 1")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the memory test input")
    parser.add_argument("--backend-seconds", type=float, default=20.0, help="clip length in section 2")
    parser.add_argument("--skip-backends", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-per-channel", action="store_true", help="section 4: only the default mono mix-down")
    args = parser.parse_args()

    clip = args.clip or (DEFAULT_CLIP if os.path.exists(DEFAULT_CLIP) else None)
    if clip is None:
        sys.exit("benchmarks/roundtrip.py needs real music: apt-get install hyperrogue-music drascula-music asc-music "
                 "(or pass --clip FILE)")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    print(f"# mosapp round-trip benchmark: {os.cpu_count()} CPU cores, torch {torch.__version__}, "
          f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA'}")
    print(f"clip: {clip}, {args.seconds:g} s from {args.start:g} s, mono, {PIPELINE_SAMPLE_RATE} Hz")
    x = load_excerpt(clip, args.start, args.seconds)
    warm_up()
    section_pghi_vs_tifresi(x, args.repeats)
    if not args.skip_backends:
        section_backends(args.backend_seconds)
    section_stages(clip, x)
    if not args.skip_memory:
        if not music_files():
            print("\n## 4. skipped: no music files installed")
        else:
            section_memory(args.minutes, per_channel=not args.skip_per_channel)


if __name__ == "__main__":
    main()
