"""The README's codec results table, made by ``mosapp evaluate``.

The held-out music (``benchmarks/heldout.csv``: 20 s from 30 s of each held-out file, never
trained on; ``apt-get install hyperrogue-music drascula-music asc-music``) goes through
``mosapp evaluate`` with every codec of the table; this script only runs that command (or reads
a folder it wrote) and turns its ``summary.csv`` into the README's table, the pairs that the
low-band metrics rank the other way round from mel distance, and each sgc model card's
``measured`` section::

    .venv/bin/mosapp evaluate benchmarks/heldout.csv --codecs CODEC ... --out out/codec-table
    .venv/bin/python benchmarks/codec_table.py --from out/codec-table --update-readme --update-cards

or both in one (``--run``: the command above with the default codecs, printed first)::

    .venv/bin/python benchmarks/codec_table.py --run --update-readme --update-cards

``mosapp evaluate`` resumes: a rerun after new weights for one codec measures that codec only.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mosapp.codecs import codec_names  # noqa: E402
from mosapp.core.metrics import METRICS, SIGNAL_METRIC_NAMES  # noqa: E402
from mosapp.evaluation.evaluate import LEGACY_NAMES  # noqa: E402
from mosapp.evaluation.results import HEADERS  # noqa: E402

MANIFEST = ROOT / "benchmarks" / "heldout.csv"
TABLE_METRICS = ("file_kbps", *SIGNAL_METRIC_NAMES)
#: Direction of each metric (the registry's): +1 higher is better, -1 lower is better.
BETTER = {k: 1 if METRICS[k].higher_is_better else -1 for k in SIGNAL_METRIC_NAMES}
#: A model card's "measured" keys keep the names cards were written with ("kbps", "consistency").
CARD_NAMES = {new: old for old, new in LEGACY_NAMES.items()}


def default_codecs() -> list[str]:
    from mosapp.codecs.sgc import name_kbps

    names = codec_names()
    sgc = [n for n in names if n.startswith("sgc-") and not n.startswith("sgc-thesis-")]
    sgc_rates = sorted({round(name_kbps(n)) for n in sgc if name_kbps(n)})
    rates = sorted(set(sgc_rates) | {6, 12, 16, 24})
    out = sgc + [n for n in ("sgc-thesis-12",) if n in names] + ["pghi-only", "pghi-only-two-band"]
    out += [f"opus-{r}" for r in rates if f"opus-{r}" in names]
    out += [n for n in names if n.startswith("mp3-") and float(n.split("-")[1]) <= max(rates)]
    out += [f"avif-{r}" for r in sgc_rates] + ["webp-12", "jpeg-12"]
    return out


def fmt(v: float | None, key: str) -> str:
    if v is None or math.isnan(v):
        return "–"
    special = {"file_kbps": ".1f", "si_sdr_db": ".1f", "visqol": ".2f"}
    return format(v, special.get(key, ".2f" if key.endswith("_db") else ".3f"))


def read_summary(folder: Path) -> tuple[list[str], dict[str, dict[str, dict[str, float]]]]:
    """(codecs in table order, codec → metric → {n, mean, ci95_low, ci95_high}) from summary.csv."""
    order: list[str] = []
    out: dict[str, dict[str, dict[str, float]]] = {}
    with open(folder / "summary.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            c = row["codec"]
            if c not in out:
                order.append(c)
                out[c] = {}
            out[c][row["metric"]] = {k: float(row[k]) if row[k] else math.nan
                                     for k in ("n", "mean", "ci95_low", "ci95_high")}
    return order, out


def render(order: list[str], summary: dict, run: dict) -> str:
    metrics = [k for k in TABLE_METRICS if any(k in summary[c] for c in order)]
    head = "| codec | " + " | ".join(HEADERS.get(k, k) for k in metrics) + " |\n"
    head += "|---|" + "---:|" * len(metrics) + "\n"
    body = "".join(f"| `{c}` | " + " | ".join(fmt(summary[c].get(k, {}).get("mean"), k) for k in metrics) + " |\n"
                   for c in order)
    n = max(int(summary[c]["file_kbps"]["n"]) for c in order)
    seconds = run.get("excerpt_seconds") or 20
    text = head + body + (
        f"\nMean over {n} held-out clips of {seconds:g} s (mono, 44.1 kHz), made by `mosapp evaluate` "
        f"(95 % intervals per codec in its `summary.csv`/`summary.md`); kbps counts the whole .sgc file. Low band: "
        f"20–1000 Hz, high band: above 1 kHz (4096-point Hann STFT, floor at the original's peak − 80 dB; "
        f"`mosapp/core/metrics.py`).\n")
    means = [(c, {k: v["mean"] for k, v in summary[c].items()}) for c in order]
    flips = rank_flips(means)
    return text + ("\n" + flips + "\n" if flips else "")


def better(a: float, b: float, key: str) -> bool | None:
    """Whether ``a`` is better than ``b`` on ``key`` (None for a tie or a missing value)."""
    if a is None or b is None or math.isnan(a) or math.isnan(b) or a == b:
        return None
    return (a - b) * BETTER[key] > 0


def rank_flips(rows, reference: str = "mel_distance",
               others: tuple[str, ...] = ("low_band_distance_db", "low_band_correlation")) -> str:
    """The pairs of conditions that ``others`` order the other way round from ``reference``, as text."""
    lines = []
    for key in others:
        flips = []
        for i, (a, ma) in enumerate(rows):
            for b, mb in rows[i + 1:]:
                by_ref = better(ma.get(reference, math.nan), mb.get(reference, math.nan), reference)
                by_key = better(ma.get(key, math.nan), mb.get(key, math.nan), key)
                if by_ref is None or by_key is None or by_ref == by_key:
                    continue
                win, lose = (a, b) if by_key else (b, a)
                flips.append(f"`{win}` over `{lose}`")
        if flips:
            lines.append(f"Ranked the other way round from mel distance by {HEADERS[key].rstrip(' ↑↓')}: "
                         + ", ".join(flips) + ".")
    return "\n".join(lines)


def update_card(name: str, folder: Path, means: dict[str, float], run: dict) -> None:
    from mosapp.codecs.sgc import read_card

    card = read_card(name)
    if card is None or card.path is None:
        return
    with open(folder / "clips.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["codec"] == name]
    kbps = [float(r["file_kbps"]) for r in rows]
    measured = {
        "kbps": round(means["file_kbps"], 2),
        "kbps_range": [round(min(kbps), 2), round(max(kbps), 2)],
        **{CARD_NAMES.get(k, k): (None if math.isnan(means.get(k, math.nan)) else round(means[k], 4))
           for k in TABLE_METRICS if k != "file_kbps"},
        "clips": [f"{Path(r['clip']).name} ({float(r['seconds']):g} s from {float(r['start_s']):g} s)" for r in rows],
        "phase_backend": run.get("pipeline", {}).get("phase"),
        "command": "mosapp evaluate benchmarks/heldout.csv …; benchmarks/codec_table.py --update-cards",
    }
    card.path.write_text(replace(card, measured=measured).dumps())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="folder", default=str(ROOT / "out" / "codec-table"),
                    help="the output folder of a `mosapp evaluate` run (default out/codec-table)")
    ap.add_argument("--run", action="store_true", help="run `mosapp evaluate` on the held-out manifest first")
    ap.add_argument("--codecs", nargs="*", default=None, help="with --run: the conditions (default: the table's)")
    ap.add_argument("--no-visqol", action="store_true", help="with --run: leave ViSQOL out")
    ap.add_argument("--update-readme", action="store_true")
    ap.add_argument("--update-cards", action="store_true")
    args = ap.parse_args()
    folder = Path(args.folder)
    if args.run:
        cmd = [sys.executable, "-m", "mosapp", "evaluate", str(MANIFEST.relative_to(ROOT)), "--codecs",
               *(args.codecs or default_codecs()), "--out", str(folder)] + (["--no-visqol"] if args.no_visqol else [])
        print("$ mosapp " + " ".join(cmd[3:]), file=sys.stderr, flush=True)
        status = subprocess.run(cmd, cwd=ROOT).returncode
        if status not in (0, 1):
            sys.exit(status)
    order, summary = read_summary(folder)
    run = json.loads((folder / "run.json").read_text())
    table = render(order, summary, run)
    print(table)
    if args.update_readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        readme.write_text(re.sub(r"(<!-- RESULTS-TABLE -->\n).*?(<!-- /RESULTS-TABLE -->)",
                                 lambda mm: mm.group(1) + table + mm.group(2), text, flags=re.S))
    if args.update_cards:
        for c in order:
            if c.startswith("sgc-") and not c.startswith("sgc-thesis-"):
                update_card(c, folder, {k: v["mean"] for k, v in summary[c].items()}, run)


if __name__ == "__main__":
    main()
