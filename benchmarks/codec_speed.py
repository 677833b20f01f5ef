"""Encode and decode speed (x real time) of the default sgc codec and of MS-ILLM, side by side.

One run, same 30 s clip, same machine, CPU:

* ``sgc-12`` (the default codec, shipped weights, two-band): encode = crossover + both
  bands' STFTs + analysis transforms + rate control + entropy coding; decode = entropy
  decoding + synthesis transforms + phase reconstruction of both bands with the default
  backend (pghi+fgla) + iSTFTs + the crossover's merge.
* ``msillm-q2`` (about the same nominal rate): MS-ILLM's real 181M-parameter
  ``HiFiCAutoencoder`` via neuralcompression. Its published weights cannot be downloaded on
  this offline machine, so unless ``MOSAPP_MSILLM_CHECKPOINT_DIR`` holds them the script
  writes a randomly initialised checkpoint of the same architecture: the network's cost is
  the same, the bitrate and quality are meaningless (so they are not printed).
* the decode of each is also shown without phase reconstruction (image codec alone);
* the level maps of ``sgc-12``'s weights (issue 28's decoder calibration), timed alone on the
  decoded images, as a share of the decode with phase (they are part of both decode timings);
* ``sgc-12`` is decoded a second time with the phase reconstruction and transforms as they
  were before issue 29 (the pinned copy in benchmarks/_baseline_phase.py), in the same
  run, so the speed-up of decoding is measured side by side.

Besides wall-clock ratios the script prints the same ratios by the process's CPU time
(all its threads): on a machine shared with other work the wall clock measures the
other work too, while CPU time is what the codec itself costs (on an idle machine the
wall-clock ratios are at least as high, since the decoder runs two threads).

    .venv/bin/python benchmarks/codec_speed.py [--clip FILE] [--seconds 30] [--skip-msillm] [--skip-old]
        [--compare-models DIR]   # e.g. a folder with sgc-12.json naming sgc6.pt: the decode without level maps
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _baseline_phase as old
import torch

from mosapp.codecs import get_codec
from mosapp.core import dsp
from mosapp.core.config import PipelineConfig
from mosapp.evaluation.evaluate import excerpt

DEFAULT_CLIP = "/usr/share/games/asc/music/frontiers.mp3"


def time_codec(name: str, clip, config: PipelineConfig, with_old: bool = False) -> dict[str, float]:
    codec = get_codec(name)
    device = dsp.resolve_device(config.device)
    codec.prepare(device)  # load weights outside the timing
    t0, c0 = time.perf_counter(), time.process_time()
    encoded = codec.encode(clip.samples, config)
    t1, c1 = time.perf_counter(), time.process_time()
    images = list(codec.decode_images(encoded, device))
    t2, c2 = time.perf_counter(), time.process_time()
    codec.decode(encoded, config)
    t3, c3 = time.perf_counter(), time.process_time()
    out = {"encode": t1 - t0, "decode_image": t2 - t1, "decode": t3 - t2, "kbps": encoded.payload_kbps,
           "images": len(images), "cpu_encode": c1 - c0, "cpu_decode_image": c2 - c1, "cpu_decode": c3 - c2}
    if hasattr(codec, "decode_band_images"):
        # The decoder's level maps (issue 28's calibrated weights): their cost alone, on this clip's images.
        bands = [im for _, im in codec.decode_band_images(encoded, device)]
        t5 = time.perf_counter()
        for im in bands:
            codec.adjust_band("low", im.low, im.low_scale.dynamic_range_db)
            codec.adjust_band("high", im.high, im.high_scale.dynamic_range_db)
        out["level_maps"] = time.perf_counter() - t5
        out["has_level_maps"] = bool(getattr(codec.network, "level_maps", None))
    if with_old:
        with old.old_code():
            t4, c4 = time.perf_counter(), time.process_time()
            codec.decode(encoded, config)
            out["decode_old"], out["cpu_decode_old"] = time.perf_counter() - t4, time.process_time() - c4
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default=DEFAULT_CLIP)
    ap.add_argument("--start", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--sgc", default="sgc-12")
    ap.add_argument("--msillm", default="msillm-q2")
    ap.add_argument("--skip-msillm", action="store_true")
    ap.add_argument("--skip-old", action="store_true", help="skip the decode with the pre-issue-29 phase code")
    ap.add_argument("--compare-models", metavar="DIR", default=None,
                    help="also time --sgc with the cards and weights in DIR (MOSAPP_MODELS_DIR), in this run: "
                         "e.g. the same networks without level maps")
    args = ap.parse_args()
    clip = excerpt(args.clip, args.start, args.seconds)
    config = PipelineConfig(device="cpu")
    print(f"# codec speed: {torch.get_num_threads()} CPU threads, torch {torch.__version__}, CPU")
    print(f"clip: {args.clip}, {clip.duration_s:.0f} s from {args.start:.0f} s, mono; phase backend {config.phase}\n")
    # Compile (or load) the numba kernels, today's and the old ones, outside the timing.
    warm = get_codec(args.sgc).encode(clip.samples[:, :44100], config)
    get_codec(args.sgc).decode(warm, config)
    if not args.skip_old:
        with old.old_code():
            get_codec(args.sgc).decode(warm, config)
    rows = [(args.sgc, time_codec(args.sgc, clip, config, with_old=not args.skip_old), "")]
    if args.compare_models:
        shipped = os.environ.get("MOSAPP_MODELS_DIR")
        os.environ["MOSAPP_MODELS_DIR"] = args.compare_models
        get_codec(args.sgc).decode(get_codec(args.sgc).encode(clip.samples[:, :44100], config), config)  # warm
        rows.append((f"{args.sgc}*", time_codec(args.sgc, clip, config), f"weights of {args.compare_models}"))
        if shipped is None:
            del os.environ["MOSAPP_MODELS_DIR"]
        else:
            os.environ["MOSAPP_MODELS_DIR"] = shipped
    if not args.skip_msillm:
        from mosapp.codecs import msillm

        quality = args.msillm.split("-", 1)[1]
        note = "published weights"
        tmp = None
        if msillm.find_checkpoint(quality) is None:
            from neuralcompression.models import HiFiCAutoencoder

            tmp = tempfile.TemporaryDirectory()
            torch.save(HiFiCAutoencoder().state_dict(), Path(tmp.name) / msillm.checkpoint_file_name(quality))
            os.environ[msillm.ENV_CHECKPOINT_DIR] = tmp.name
            note = "random weights of the real architecture (published ones not on this machine)"
        rows.append((args.msillm, time_codec(args.msillm, clip, config), note))
        if tmp:
            tmp.cleanup()
    print(f"{'codec':<11} {'encode s':>9} {'x RT':>6} {'image decode s':>15} {'x RT':>6} "
          f"{'decode+phase s':>15} {'x RT':>6}  note")
    for name, r, note in rows:
        sec = clip.duration_s
        print(f"{name:<11} {r['encode']:9.2f} {sec / r['encode']:6.1f} {r['decode_image']:15.2f} "
              f"{sec / r['decode_image']:6.1f} {r['decode']:15.2f} {sec / r['decode']:6.1f}  {note}")
    print(f"\nby CPU time of the process (all threads):\n{'codec':<11} {'encode s':>9} {'x RT':>6} "
          f"{'image decode s':>15} {'x RT':>6} {'decode+phase s':>15} {'x RT':>6}")
    for name, r, _ in rows:
        sec = clip.duration_s
        print(f"{name:<11} {r['cpu_encode']:9.2f} {sec / r['cpu_encode']:6.1f} {r['cpu_decode_image']:15.2f} "
              f"{sec / r['cpu_decode_image']:6.1f} {r['cpu_decode']:15.2f} {sec / r['cpu_decode']:6.1f}")
    first = rows[0][1]
    if "decode_old" in first:
        sec = clip.duration_s
        print(f"\n{args.sgc} decode with phase, today's code against the phase code before issue 29 (same run):\n"
              f"  wall: {first['decode_old']:.2f} s ({sec / first['decode_old']:.1f}x real time) -> {first['decode']:.2f} s "
              f"({sec / first['decode']:.1f}x real time), {first['decode_old'] / first['decode']:.1f}x faster\n"
              f"  CPU:  {first['cpu_decode_old']:.2f} s ({sec / first['cpu_decode_old']:.1f}x real time) -> "
              f"{first['cpu_decode']:.2f} s ({sec / first['cpu_decode']:.1f}x real time), "
              f"{first['cpu_decode_old'] / first['cpu_decode']:.1f}x less CPU; target >= 8x real time")
    if "level_maps" in first:
        what = "the weights' level maps" if first["has_level_maps"] else "no level maps in these weights"
        print(f"\n{args.sgc} level maps ({what}): {1000 * first['level_maps']:.0f} ms, "
              f"{100 * first['level_maps'] / first['decode']:.1f} % of the decode with phase")
    import os as _os

    print(f"\nload average while measuring: {' '.join(f'{v:.1f}' for v in _os.getloadavg())} "
          f"({_os.cpu_count()} CPUs)")
    if args.compare_models:
        a, b = rows[0][1], rows[1][1]
        print(f"\n{args.sgc} decode with phase, these weights against {args.compare_models}'s (same run): "
              f"wall {a['decode']:.2f} s vs {b['decode']:.2f} s ({b['decode'] / a['decode']:.3f}x), "
              f"CPU {a['cpu_decode']:.2f} s vs {b['cpu_decode']:.2f} s ({b['cpu_decode'] / a['cpu_decode']:.3f}x); "
              f"encode wall {a['encode']:.2f} s vs {b['encode']:.2f} s")
    if len(rows) == 2 and not args.compare_models:
        a, b = rows[0][1], rows[1][1]
        print(f"\nsgc / MS-ILLM speed: encode {b['encode'] / a['encode']:.1f}x faster, "
              f"image decode {b['decode_image'] / a['decode_image']:.1f}x faster")


if __name__ == "__main__":
    main()
