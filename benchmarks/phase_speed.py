"""Phase reconstruction speed and quality, today's code against the code before issue 29, side by side.

The code before is pinned in benchmarks/_baseline_phase.py (``old``); both run in this one
process, on the same clips, interleaved, so machine load hits both alike. Every time is
given by the wall clock and by the process's CPU time (all threads): on a machine shared
with other work the CPU-time ratio is the steadier one.

1. **The default phase reconstruction** (``pghi+fgla``, 32 iterations, the pipeline's
   blocks: :func:`mosapp.phase.invert.invert_magnitude`) on held-out clips (configs/sgc3-base.toml
   ``[data] heldout``, never used for training): time, spectral convergence (SC) and mel
   distance, old and new.
2. **Our PGHI against tifresi's**, phase only (the backend call: magnitude → coefficients)
   on one held-out clip, both geometries, old and new: time ratios and SC.
3. **What PGHI's time is made of**: the peak, the records, the heap integration kernel
   (numba) per integrated coefficient on a short excerpt (the records fit in the core's L2)
   and on the whole clip, the polar form; the kernel as it is and as it was before issue 29,
   with the phases compared: the difference between the short and the long excerpt is the
   memory latency of the walk, the short excerpt's cost its bookkeeping.
4. **One FGLA iteration**, old and new, on the whole clip.

Real music comes from Debian's game-music packages (never committed):
``apt-get install hyperrogue-music drascula-music asc-music``.

    .venv/bin/python benchmarks/phase_speed.py                 # 6 clips x 30 s (~3 min on 2 idle cores)
    .venv/bin/python benchmarks/phase_speed.py --clips 2 --seconds 10
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import _baseline_phase as old  # noqa: E402

from mosapp.core import dsp, job, metrics  # noqa: E402
from mosapp.core.config import GEOMETRIES, PIPELINE_SAMPLE_RATE, PipelineConfig  # noqa: E402
from mosapp.evaluation.evaluate import excerpt  # noqa: E402
from mosapp.phase import fgla, get_backend, pghi  # noqa: E402
from mosapp.phase.invert import invert_magnitude  # noqa: E402

HELDOUT_CONFIG = REPO / "configs" / "sgc3-base.toml"


def heldout_files() -> list[str]:
    """The held-out files, the named ones first, then the globs' matches in order."""
    patterns = tomllib.loads(HELDOUT_CONFIG.read_text())["data"]["heldout"]
    named = [p for p in patterns if not glob.has_magic(p) and os.path.exists(p)]
    globbed = [f for p in patterns if glob.has_magic(p) for f in sorted(glob.glob(p))]
    return named + [f for f in globbed if f not in named]


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """(``fn(*args, **kwargs)``, wall s, CPU s of the process)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0, time.process_time() - c0


def magnitude_of(x: np.ndarray, geometry) -> tuple[torch.Tensor, int]:
    xp, offset = dsp.pad_for_lattice(torch.from_numpy(x), geometry)
    return dsp.stft(xp, geometry).abs(), offset


def invert(magnitude: torch.Tensor, geometry, config: PipelineConfig) -> torch.Tensor:
    n = magnitude.shape[-1]
    return job.drive(invert_magnitude(lambda s, e: magnitude[:, s:e], n, n * geometry.hop, geometry, config,
                                      device=torch.device("cpu")))


def sc_db(y: torch.Tensor, target: torch.Tensor, geometry) -> float:
    return metrics.spectral_convergence_db(target.numpy(), dsp.stft(y.float(), geometry).abs().numpy())


def warm_up() -> None:
    """Compile the numba kernels (old, new, tifresi's) outside the timed regions."""
    x = np.random.default_rng(0).standard_normal(16384).astype(np.float32)
    for g in GEOMETRIES.values():
        mag, _ = magnitude_of(x, g)
        invert(mag, g, PipelineConfig(geometry=g.name))
        with old.old_code():
            invert(mag, g, PipelineConfig(geometry=g.name))
        get_backend("tifresi")(mag, g)


def ratio(a: float, b: float) -> str:
    return f"{a / b:5.1f}x" if b > 0 else "  inf"


def section_default(clips: list[tuple[str, np.ndarray]]) -> None:
    config = PipelineConfig(device="cpu")
    g = GEOMETRIES[config.geometry]
    print(f"\n## 1. default phase reconstruction ({config.phase}, {config.fgla_iterations} iterations, "
          f"{config.geometry} lattice, blocks of {config.block_seconds:g} s): old vs new")
    print(f"{'clip':<24} {'old s':>6} {'new s':>6} {'wall':>6} {'old cpu':>8} {'new cpu':>8} {'cpu':>6} "
          f"{'SC old':>7} {'SC new':>7} {'dSC dB':>7} {'mel old':>8} {'mel new':>8} {'dmel %':>7}")
    totals = np.zeros(4)
    worst_sc, worst_mel = 0.0, 0.0
    for name, x in clips:
        mag, offset = magnitude_of(x, g)
        with old.old_code():
            y_old, w_old, c_old = timed(invert, mag, g, config)
        y_new, w_new, c_new = timed(invert, mag, g, config)
        totals += (w_old, w_new, c_old, c_new)
        sc_old, sc_new = sc_db(y_old, mag, g), sc_db(y_new, mag, g)
        mel_old = metrics.mel_distance(x, y_old[offset: offset + x.size].numpy(), PIPELINE_SAMPLE_RATE)
        mel_new = metrics.mel_distance(x, y_new[offset: offset + x.size].numpy(), PIPELINE_SAMPLE_RATE)
        d_mel = 100.0 * (mel_new - mel_old) / mel_old
        worst_sc, worst_mel = max(worst_sc, abs(sc_new - sc_old)), max(worst_mel, abs(d_mel))
        print(f"{name:<24} {w_old:6.2f} {w_new:6.2f} {ratio(w_old, w_new)} {c_old:8.2f} {c_new:8.2f} "
              f"{ratio(c_old, c_new)} {sc_old:7.2f} {sc_new:7.2f} {sc_new - sc_old:+7.3f} {mel_old:8.4f} "
              f"{mel_new:8.4f} {d_mel:+7.2f}")
    seconds = sum(x.size for _, x in clips) / PIPELINE_SAMPLE_RATE
    print(f"{'all ' + str(len(clips)) + ' clips':<24} {totals[0]:6.2f} {totals[1]:6.2f} {ratio(totals[0], totals[1])} "
          f"{totals[2]:8.2f} {totals[3]:8.2f} {ratio(totals[2], totals[3])}   "
          f"largest |dSC| {worst_sc:.3f} dB, largest |dmel| {worst_mel:.2f} %")
    print(f"x real time (wall): old {seconds / totals[0]:.1f}, new {seconds / totals[1]:.1f}; "
          f"target: >= 4x faster, within 0.1 dB SC and 1 % mel -> "
          f"{'MET' if min(totals[0] / totals[1], totals[2] / totals[3]) >= 4 and worst_sc <= 0.1 and worst_mel <= 1 else 'NOT MET'}")


def section_tifresi(name: str, x: np.ndarray, repeats: int) -> None:
    print(f"\n## 2. own pghi vs tifresi, phase only (magnitude -> coefficients), {name}, best of {repeats}")
    print(f"{'geometry':<8} {'tifresi s':>9} {'old s':>6} {'new s':>6} {'new vs tifresi':>15} {'old vs tifresi':>15} "
          f"{'cpu: new vs tifresi':>20} {'SC tifresi':>11} {'SC old':>7} {'SC new':>7}")
    for gname, g in GEOMETRIES.items():
        mag, _ = magnitude_of(x, g)
        runs: dict[str, list[tuple[float, float]]] = {"tifresi": [], "old": [], "new": []}
        out: dict[str, torch.Tensor] = {}
        fns = {"tifresi": get_backend("tifresi"), "old": old.pghi, "new": get_backend("pghi")}
        for _ in range(repeats):  # interleaved
            for key, fn in fns.items():
                out[key], wall, cpu = timed(fn, mag, g)
                runs[key].append((wall, cpu))
        best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in runs.items()}
        sc = {k: sc_db(dsp.istft(c.to(torch.complex64), g), mag, g) for k, c in out.items()}
        print(f"{gname:<8} {best['tifresi'][0]:9.2f} {best['old'][0]:6.2f} {best['new'][0]:6.2f} "
              f"{ratio(best['tifresi'][0], best['new'][0]):>15} {ratio(best['tifresi'][0], best['old'][0]):>15} "
              f"{ratio(best['tifresi'][1], best['new'][1]):>20} {sc['tifresi']:11.2f} {sc['old']:7.2f} {sc['new']:7.2f}")


def best_of(repeats: int, fn: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
    """``fn(*args)`` run ``repeats`` times: (last result, best wall s, best CPU s)."""
    runs = [timed(fn, *args) for _ in range(repeats)]
    return runs[-1][0], min(r[1] for r in runs), min(r[2] for r in runs)


def walk_new(rec3: np.ndarray, first: int, threshold: float, g: Any) -> np.ndarray:
    """Today's heap walk on a copy of its records: the phase, (frames, bins)."""
    r = rec3.copy()
    pghi._heap_integrate(r.reshape(-1, 4), rec3.shape[1], 0, first, np.float32(threshold), pghi.QUEUE_LEVELS,
                         g.hop, g.channels, 0, job.cancel_flag())
    return r[1:-1, 1:-1, pghi._PHASE]


def walk_old(rec: np.ndarray, state: np.ndarray, threshold: float, g: Any) -> np.ndarray:
    """The heap walk before issue 29 on a copy of its records: the phase, (frames, bins)."""
    r = rec.copy()
    old._heap_integrate(r, state.copy(), g.bins, np.float32(threshold), old.QUEUE_LEVELS, g.hop, g.channels, 0,
                        job.cancel_flag())
    return r[:, old._PHASE].reshape(-1, g.bins)


def section_pghi_parts(x: np.ndarray, repeats: int) -> None:
    g = GEOMETRIES["thesis"]
    print("\n## 3. what our PGHI's time is made of (thesis lattice), best of "
          f"{repeats}: the peak; the records (one pass, two threads on long inputs); the heap walk (one "
          "thread), per integrated coefficient, today and as it was before issue 29 (old: its own records, "
          "a state array, bounds checks, a linear scan for the next bucket, no prefetch), with the phases "
          "compared; the polar form")
    for label, samples in (("0.25 s (records fit in L2)", x[:PIPELINE_SAMPLE_RATE // 4]),
                           ("1 s", x[:PIPELINE_SAMPLE_RATE]),
                           (f"{x.size / PIPELINE_SAMPLE_RATE:g} s", x)):
        mag, _ = magnitude_of(samples, g)
        bins, frames = mag.shape
        peak_t, w_peak, _ = best_of(repeats, torch.amax, mag)
        peak = float(peak_t)
        threshold = peak * pghi.DEFAULT_TOL
        (rec3, first), w_rec, _ = best_of(repeats, pghi._lattice_records, mag, g, threshold, 0)
        cells = int((rec3[1:-1, 1:-1, pghi._MAG].view(np.int32) >= 0).sum())

        rec_old = old.phase_records(mag, g, floor=threshold).reshape(frames * bins, 4).numpy()
        state_old = np.where(rec_old[:, old._MAG] < threshold, np.uint8(2), np.uint8(0))
        copy_cpu = min(timed(rec3.copy)[2] for _ in range(repeats))  # the walk's input copy, taken off
        phase_new, _, cpu_new = best_of(repeats, walk_new, rec3, first, threshold, g)
        phase_old, _, cpu_old = best_of(repeats, walk_old, rec_old, state_old, threshold, g)
        cpu_new, cpu_old = max(cpu_new - copy_cpu, 1e-9), max(cpu_old - copy_cpu, 1e-9)
        same = np.array_equal(phase_new, phase_old)
        phase = torch.from_numpy(np.ascontiguousarray(phase_new)).T
        _, w_polar, _ = best_of(repeats, torch.polar, mag, phase)
        _, w_all, _ = best_of(repeats, get_backend("pghi"), mag, g)
        ns_old, ns_new = cpu_old / cells * 1e9, cpu_new / cells * 1e9
        print(f"{label:<27} whole backend {w_all * 1e3:6.1f} ms: peak {w_peak * 1e3:4.1f} ms, records {w_rec * 1e3:5.1f} "
              f"ms, heap walk {cpu_new * 1e3:6.1f} ms CPU = {ns_new:5.1f} ns per integrated coefficient (old "
              f"{ns_old:5.1f} ns: {ns_old / ns_new:4.2f}x; same phase: {same}) ({cells:,} of {bins * frames:,}), "
              f"polar {w_polar * 1e3:5.1f} ms")


def section_fgla_iteration(x: np.ndarray) -> None:
    g = GEOMETRIES["thesis"]
    mag, _ = magnitude_of(x, g)
    init = get_backend("pghi")(mag, g)
    print(f"\n## 4. one FGLA iteration on {mag.shape[1]:,} frames x {mag.shape[0]} bins (thesis), from 8 iterations")
    _, w_old, c_old = timed(old.fgla_refine, mag, init, g, iterations=8)
    _, w_new, c_new = timed(fgla.fgla_refine, mag, init, g, iterations=8)
    _, w_torch, c_torch = timed(fgla.fgla_refine, mag, init, g, iterations=8, kernels=False)
    print(f"old {w_old / 8 * 1e3:7.1f} ms (cpu {c_old / 8 * 1e3:7.1f}); new {w_new / 8 * 1e3:6.1f} ms "
          f"(cpu {c_new / 8 * 1e3:6.1f}): {ratio(w_old, w_new)} wall, {ratio(c_old, c_new)} cpu; "
          f"new, torch path (what a GPU runs) on the CPU {w_torch / 8 * 1e3:6.1f} ms (cpu {c_torch / 8 * 1e3:6.1f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=6, help="held-out clips in section 1")
    ap.add_argument("--start", type=float, default=30.0, help="excerpt start in seconds")
    ap.add_argument("--seconds", type=float, default=30.0, help="excerpt length in seconds")
    ap.add_argument("--repeats", type=int, default=2, help="timed repetitions (best taken) in section 2")
    ap.add_argument("--sections", default="1234", help="which sections to run, e.g. 12")
    ap.add_argument("--tifresi-clips", type=int, default=1, help="clips section 2 runs on (one table each)")
    ap.add_argument("--tifresi-from", type=int, default=0, help="the first of them (0: the first clip)")
    args = ap.parse_args()
    files = heldout_files()
    if not files:
        sys.exit("benchmarks/phase_speed.py needs the held-out music: "
                 "apt-get install hyperrogue-music drascula-music asc-music")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    print(f"# phase reconstruction speed: {os.cpu_count()} CPU cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), CPU; load average at start "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    clips = [(os.path.basename(f), excerpt(f, args.start, args.seconds).samples[0]) for f in files[: args.clips]]
    warm_up()
    if "1" in args.sections:
        section_default(clips)
    if "2" in args.sections:
        for name, x in clips[args.tifresi_from: args.tifresi_from + args.tifresi_clips]:
            section_tifresi(name, x, args.repeats)
    if "3" in args.sections:
        section_pghi_parts(clips[0][1], max(3, args.repeats))
    if "4" in args.sections:
        section_fgla_iteration(clips[0][1])
    print(f"\nload average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
