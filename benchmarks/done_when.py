"""Issue 28's "Done when" comparisons 1-3, read from ``mosapp evaluate`` summaries, one per kind of music.

    .venv/bin/python benchmarks/done_when.py benchmarks/results/heldout3_sgc5_{orchestral,rock,electronic}
    .venv/bin/python benchmarks/done_when.py NEW_{orchestral,rock,electronic} \
        --others benchmarks/results/heldout3_sgc5_{orchestral,rock,electronic}   # new sgc, old baselines

prints, per kind and comparison, each of the four metrics (mel distance, low-band distance,
low-band correlation, high-band distance) as ``sgc value / other value`` and whether ``sgc`` is
at least as good (``≤`` for the distances, ``≥`` for the correlation), and a last column saying
whether the comparison holds on all four. Comparison 3 is ``sgc-N`` against ``avif-N``, both at
their measured kbps (the table prints them). Mean over the run's excerpts, as in its
``summary.csv``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

#: (metric, label, True where lower is better)
METRICS = (("mel_distance", "mel", True), ("low_band_distance_db", "low-band dist. dB", True),
           ("low_band_correlation", "low-band corr.", False), ("high_band_distance_db", "high-band dist. dB", True))
#: (comparison, sgc codec, the codec it must match or beat)
COMPARISONS = (("1", "sgc-12", "opus-24"), ("2", "sgc-6", "opus-12"),
               ("3", "sgc-6", "avif-6"), ("3", "sgc-12", "avif-12"), ("3", "sgc-24", "avif-24"))


def read_means(folder: Path) -> dict[tuple[str, str], float]:
    """``(codec, metric) → mean`` from ``folder/summary.csv``."""
    with open(folder / "summary.csv", newline="") as f:
        return {(row["codec"], row["metric"]): float(row["mean"]) for row in csv.DictReader(f)}


def table(folders: list[Path], others: list[Path] | None = None) -> str:
    """The markdown table of every kind (folder) and comparison; a codec a folder lacks is read
    from the matching folder of ``others`` (same position), e.g. the baselines of an earlier run."""
    head = "| kind | # | sgc (kbps) | against (kbps) | " + " | ".join(label for _, label, _ in METRICS) + " | holds |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for i, folder in enumerate(folders):
        means = read_means(folder)
        if others:
            means = {**read_means(others[i]), **means}
        kind = folder.name.rsplit("_", 1)[-1]
        for number, ours, other in COMPARISONS:
            if (ours, "mel_distance") not in means or (other, "mel_distance") not in means:
                continue
            cells, holds = [], True
            for metric, _, lower in METRICS:
                a, b = means[(ours, metric)], means[(other, metric)]
                ok = a <= b if lower else a >= b
                holds &= ok
                fmt = "{:.3f}" if "distance_db" not in metric else "{:.2f}"
                cells.append(f"{fmt.format(a)} / {fmt.format(b)} {'✓' if ok else '✗'}")
            lines.append(f"| {kind} | {number} | `{ours}` ({means[(ours, 'file_kbps')]:.1f}) | "
                         f"`{other}` ({means[(other, 'file_kbps')]:.1f}) | " + " | ".join(cells)
                         + f" | {'**yes**' if holds else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("folders", nargs="+", type=Path, help="mosapp evaluate --out folders (one per kind)")
    parser.add_argument("--others", nargs="+", type=Path, default=None,
                        help="folders (one per kind, in the same order) to read the codecs the first lack from: "
                             "e.g. new sgc weights measured alone against an earlier run's opus and avif, on the "
                             "same excerpts")
    args = parser.parse_args(argv)
    missing = [str(f) for f in args.folders + (args.others or []) if not (f / "summary.csv").is_file()]
    if missing:
        print(f"done_when: no summary.csv in {', '.join(missing)} (run mosapp evaluate there first).", file=sys.stderr)
        return 2
    if args.others is not None and len(args.others) != len(args.folders):
        print("done_when: give as many --others folders as folders, one per kind, in the same order.", file=sys.stderr)
        return 2
    print(table(args.folders, args.others))
    return 0


if __name__ == "__main__":
    sys.exit(main())
