"""Two ``mosapp evaluate`` runs on the same excerpts, compared pair by pair: new weights against old.

    .venv/bin/python benchmarks/paired_delta.py OLD_DIR NEW_DIR [OLD_DIR2 NEW_DIR2 ...]

For every codec both runs measured (e.g. ``sgc-12`` of the shipped cards in OLD, of candidate
weights through ``MOSAPP_MODELS_DIR`` in NEW) and each metric, the mean over the excerpts both
runs have of ``new - old`` with the half-width of its 95 % t interval, as a markdown table (one
row per folder pair and codec; "–" where a run did not measure the metric, e.g. ViSQOL). The excerpts are the same, so the difference is paired and far
tighter than the two runs' own intervals.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

from scipy import stats

METRICS = (("file_kbps", "kbps"), ("mel_distance", "mel ↓"), ("low_band_distance_db", "low-band dist. dB ↓"),
           ("low_band_correlation", "low-band corr. ↑"), ("high_band_distance_db", "high-band dist. dB ↓"),
           ("high_band_correlation", "high-band corr. ↑"), ("spectral_convergence_db", "SC dB ↓"), ("visqol", "ViSQOL ↑"))

Clip = tuple[str, str, str, str]


def read_clips(folder: Path) -> dict[Clip, dict[str, str]]:
    """``(clip, start_s, seconds, codec) → row`` of ``folder/clips.csv``."""
    with open(folder / "clips.csv", newline="") as f:
        return {(r["clip"], r["start_s"], r["seconds"], r["codec"]): r for r in csv.DictReader(f)}


def delta(values: list[float]) -> str:
    """Mean ± half-width of the 95 % t interval."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return f"{mean:+.3f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:+.3f} ± {stats.t.ppf(0.975, len(values) - 1) * sd / math.sqrt(len(values)):.3f}"


def table(pairs: list[tuple[Path, Path]]) -> str:
    head = "| new − old | codec | n | " + " | ".join(label for _, label in METRICS) + " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for old_dir, new_dir in pairs:
        old, new = read_clips(old_dir), read_clips(new_dir)
        shared = [k for k in new if k in old]
        for codec in sorted({k[3] for k in shared}, key=lambda c: (len(c), c)):
            keys = [k for k in shared if k[3] == codec]
            cells = [delta([float(new[k][m]) - float(old[k][m]) for k in keys])
                     if all(new[k].get(m) and old[k].get(m) for k in keys) else "–" for m, _ in METRICS]
            lines.append(f"| `{new_dir.name}` vs `{old_dir.name}` | `{codec}` | {len(keys)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("folders", nargs="+", type=Path, help="OLD NEW pairs of mosapp evaluate --out folders")
    args = parser.parse_args(argv)
    if len(args.folders) % 2:
        print("paired_delta: give the folders in OLD NEW pairs (an even number of them).", file=sys.stderr)
        return 2
    missing = [str(f) for f in args.folders if not (f / "clips.csv").is_file()]
    if missing:
        print(f"paired_delta: no clips.csv in {', '.join(missing)} (run mosapp evaluate there first).", file=sys.stderr)
        return 2
    print(table(list(zip(args.folders[::2], args.folders[1::2]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
