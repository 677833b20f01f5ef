"""Where a codec's high-band distance comes from: by frequency region, before and after the phase.

The high-band distance (:func:`mosapp.core.metrics.band_spectral_distance_db`) is the mean
absolute dB difference over the 4096-point STFT's bins from 1 kHz to Nyquist, both spectrograms
floored at the reference's peak minus 80 dB: linear bins, so 16-22 kHz holds 29 % of them and
1-4 kHz 14 %. This script splits it into regions (1-4, 4-8, 8-12, 12-16, 16-22 kHz), with the
signed mean (negative: the decoded audio is quieter there), and for the image codecs on the
two-band image (``sgc-*``, ``avif-*``) also gives the decoded high image's own error in the same
regions *before* the phase is rebuilt (mean |dB| against the analysed image, all cells). Issue 28's
comparison 3 found `sgc` behind `avif-N` on the high band of electronic music; this shows which
regions and whether the image or the phase reconstruction loses it.

    .venv/bin/python benchmarks/high_band_regions.py benchmarks/dev-electronic.csv --excerpts 2 \\
        --codecs sgc-12 avif-12
    MOSAPP_MODELS_DIR=assets/models/candidates .venv/bin/python benchmarks/high_band_regions.py ...   # candidate weights
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
from mosapp.codecs.twoband import TwoBandCodec, band_images  # noqa: E402
from mosapp.core import metrics  # noqa: E402
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig  # noqa: E402
from mosapp.evaluation.clips import read_excerpt  # noqa: E402

#: Region edges in Hz.
EDGES = (1000.0, 4000.0, 8000.0, 12000.0, 16000.0, PIPELINE_SAMPLE_RATE / 2 + 1)


def regions(freqs: np.ndarray) -> list[np.ndarray]:
    return [(freqs >= lo) & (freqs < hi) for lo, hi in zip(EDGES[:-1], EDGES[1:])]


def image_error(codec: TwoBandCodec, encoded, high: torch.Tensor) -> list[float]:
    """Mean |dB| of the decoded high image against the analysed one (``high``), per region (before any phase)."""
    _, decoded = next(codec.decode_band_images(encoded, torch.device("cpu")))
    drange = decoded.high_scale.dynamic_range_db
    err = (decoded.high[:, : high.shape[1]] - high).abs().numpy() * drange
    freqs = np.arange(high.shape[0]) * PIPELINE_SAMPLE_RATE / (2 * (high.shape[0] - 1))
    return [float(err[sel].mean()) for sel in regions(freqs)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifest", help="CSV of path,start_s,length_s (e.g. benchmarks/dev-electronic.csv)")
    ap.add_argument("--codecs", nargs="+", default=["sgc-12", "avif-12"])
    ap.add_argument("--excerpts", type=int, default=0, help="use the first N excerpts (0: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    excerpts = manifest_excerpts(args.manifest, args.excerpts)
    config = PipelineConfig(device="cpu")
    freqs = np.arange(metrics.BAND_WINDOW_LENGTH // 2 + 1) * PIPELINE_SAMPLE_RATE / metrics.BAND_WINDOW_LENGTH
    masks = regions(freqs)
    high = freqs >= metrics.HIGH_BAND_HZ[0]
    after: dict[str, list[np.ndarray]] = {c: [] for c in args.codecs}
    before: dict[str, list[list[float]]] = {c: [] for c in args.codecs}
    for e in excerpts:
        x = read_excerpt(e).samples[0]
        ref = metrics.band_db(x[None], PIPELINE_SAMPLE_RATE)
        floor = ref.max() - metrics.BAND_FLOOR_DB
        ref = np.maximum(ref, floor)
        analysed = band_images(x, torch.device("cpu"))[2]  # the high image, once per excerpt
        for name in args.codecs:
            codec = get_codec(name)
            encoded = codec.encode(x[None], config)
            y = codec.decode(encoded, config)
            est = np.maximum(metrics.band_db(y, PIPELINE_SAMPLE_RATE)[: ref.shape[0]], floor)
            diff = est - ref[: est.shape[0]]
            after[name].append(np.array([np.abs(diff[:, high]).mean()]
                                        + [v for m in masks for v in (np.abs(diff[:, m]).mean(), diff[:, m].mean())]))
            if isinstance(codec, TwoBandCodec):
                before[name].append(image_error(codec, encoded, analysed))
    labels = [f"{lo / 1000:g}-{min(hi, PIPELINE_SAMPLE_RATE / 2) / 1000:.0f}k" for lo, hi in zip(EDGES[:-1], EDGES[1:])]
    share = " ".join(f"{label} {m[high].sum() / high.sum():.0%}" for label, m in zip(labels, masks))
    print(f"# high-band distance by region: {args.manifest}, {len(excerpts)} excerpts (mean over excerpts); bins: {share}")
    print(f"{'codec':<20} {'total':>6}  " + "  ".join(f"{label:>14}" for label in labels) + "   |d| (signed)")
    for name in args.codecs:
        d = np.mean(after[name], axis=0)
        cells = "  ".join(f"{d[1 + 2 * i]:6.2f} ({d[2 + 2 * i]:+5.2f})" for i in range(len(labels)))
        print(f"{name:<20} {d[0]:6.3f}  {cells}")
    print("\n# the decoded high image before the phase: mean |dB| against the analysed image, by region")
    for name in args.codecs:
        if before[name]:
            d = np.mean(before[name], axis=0)
            print(f"{name:<20}         " + "  ".join(f"{v:14.2f}" for v in d))


if __name__ == "__main__":
    main()
