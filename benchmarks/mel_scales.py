"""Where a codec's mel distance comes from: each of the seven scales, and each third of the mel bands.

The mel distance (:func:`mosapp.core.metrics.mel_distance`, DAC's multi-scale definition) is a
sum over seven STFT scales (windows of 32 to 2048 samples) of the mean absolute log10 difference
of mel magnitudes. This script splits it: per scale, and for two scales (64 and 512 samples) per
third of the mel bands (low, middle, high) with the signed mean (negative: the decoded audio is
quieter there) and per level of the reference (decades below its loudest cell). Issue 28's
comparison 1 asks `sgc-12` to match `opus-24` on mel distance; this shows which scales and
bands the gap sits in, and what the lossless two-band representation with rebuilt phase
(`pghi-only-two-band`) already costs.

    .venv/bin/python benchmarks/mel_scales.py benchmarks/heldout-rock.csv --excerpts 2 \\
        --codecs sgc-12 avif-12 opus-24 pghi-only-two-band
    MOSAPP_MODELS_DIR=assets/models/candidates .venv/bin/python benchmarks/mel_scales.py ...   # candidate weights
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _manifest import manifest_excerpts  # noqa: E402

from mosapp.codecs import get_codec  # noqa: E402
from mosapp.core import metrics  # noqa: E402
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig  # noqa: E402
from mosapp.evaluation.clips import read_excerpt  # noqa: E402

#: Scales (window length) split by band third and level.
DETAIL_WINDOWS = (64, 512)


def log_mel(x: np.ndarray, window: int, bands: int) -> np.ndarray:
    """log10 of the mel magnitudes at one scale, as :func:`mosapp.core.metrics.mel_distance` makes them."""
    return metrics.log_mel(torch.from_numpy(x).float()[None], PIPELINE_SAMPLE_RATE, window, bands)[0].numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifest", help="CSV of path,start_s,length_s (e.g. benchmarks/heldout-rock.csv)")
    ap.add_argument("--codecs", nargs="+", default=["sgc-12", "avif-12", "opus-24", "pghi-only-two-band"])
    ap.add_argument("--excerpts", type=int, default=0, help="use the first N excerpts (0: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    excerpts = manifest_excerpts(args.manifest, args.excerpts)
    config = PipelineConfig(device="cpu")
    scales = list(zip(metrics.MEL_WINDOW_LENGTHS, metrics.MEL_N_MELS))
    per_scale: dict[str, list[list[float]]] = {c: [] for c in args.codecs}
    detail: dict[tuple[str, int], list[np.ndarray]] = {}
    for e in excerpts:
        x = read_excerpt(e).samples[0]
        for name in args.codecs:
            codec = get_codec(name)
            y = codec.decode(codec.encode(x[None], config), config)[0]
            y = y[: x.size] if y.size >= x.size else np.pad(y, (0, x.size - y.size))
            dists = []
            for window, bands in scales:
                ref, est = log_mel(x, window, bands), log_mel(y, window, bands)
                dists.append(float(np.abs(est - ref).mean()))
                if window in DETAIL_WINDOWS:
                    detail.setdefault((name, window), []).append(np.stack([ref - ref.max(), est - ref]))
            per_scale[name].append(dists)
    print(f"# mel distance by scale: {args.manifest}, {len(excerpts)} excerpts (mean over excerpts)")
    print(f"{'codec':<20} {'total':>6} " + " ".join(f"{'w=' + str(w):>6}" for w, _ in scales))
    for name in args.codecs:
        d = np.mean(per_scale[name], axis=0)
        print(f"{name:<20} {d.sum():6.3f} " + " ".join(f"{v:6.3f}" for v in d))
    print("\n# |difference| (signed mean) by third of the mel bands, and by the reference's level "
          "(decades below its loudest cell)")
    levels = ((-1.0, 0.1), (-2.0, -1.0), (-3.0, -2.0), (-9.0, -3.0))
    for (name, window), parts in detail.items():
        thirds = []
        for i in range(3):
            cut = [p[1][i * p.shape[1] // 3: (i + 1) * p.shape[1] // 3] for p in parts]
            diff = np.concatenate([c.ravel() for c in cut])
            thirds.append(f"{np.abs(diff).mean():.3f} ({diff.mean():+.3f})")
        level = np.concatenate([p[0].ravel() for p in parts])
        diff = np.concatenate([p[1].ravel() for p in parts])
        by_level = []
        for lo, hi in levels:
            sel = (level > lo) & (level <= hi)
            if sel.any():
                by_level.append(f"[{lo:g},{min(hi, 0):g}] {sel.mean():.2f} of cells: "
                                f"{np.abs(diff[sel]).mean():.2f} ({diff[sel].mean():+.2f})")
        print(f"{name:<20} w={window:<5} bands low/mid/high {' / '.join(thirds)}; " + "; ".join(by_level))


if __name__ == "__main__":
    main()
