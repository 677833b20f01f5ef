"""The codec results table: every sgc operating point, the first generation's sgc-thesis-12
(the "seed-like" baseline), the two pghi-only upper bounds, Opus/MP3 and the classic image codecs
(AVIF at every sgc rate, WebP and JPEG at 12 kbit/s, on the same two-band images) at matched
bitrates, measured on held-out music (files the sgc models never trained on, listed in
configs/sgc3-base.toml ``[data] heldout``).

For every (codec, clip) the excerpt is encoded, packed into a real .sgc container, decoded
and scored (mosapp.evaluation.evaluate): kbps of the file, mel distance, spectral convergence, SI-SDR,
ViSQOL, consistency, and the band metrics (log-spectral distance and spectral correlation of a
4096-point STFT over 20-1000 Hz and above 1 kHz). The table gives the mean over clips, and
below it the pairs of conditions the low-band metrics rank the other way round from mel distance.

    .venv/bin/python benchmarks/codec_table.py                      # prints the Markdown table
    .venv/bin/python benchmarks/codec_table.py --update-readme --update-cards --json benchmarks/results/codec_table_clips.json
    # a new codec only, the others taken from the saved per-clip results:
    .venv/bin/python benchmarks/codec_table.py --codecs sgc-12 NEW-CODEC opus-12 --reuse benchmarks/results/codec_table_clips.json
    # keep the decoded audio for benchmarks/lowband_panel.py (out/decoded/<codec>/<clip>.wav):
    .venv/bin/python benchmarks/codec_table.py --save-decoded out/decoded

``--codecs`` accepts any registry name (``mosapp codecs``); with ``--reuse``, codecs that are in
the saved results and not named in ``--measure`` are reused, the rest measured; per-clip rows
saved before a metric existed show ``–`` for it, or, with ``--fill-missing``, are decoded again
and get the missing metrics added (the saved ones are kept).

``--update-readme`` replaces the table between the RESULTS-TABLE markers in README.md;
``--update-cards`` writes each sgc model card's ``measured`` section (kbps and quality on
the same held-out clips). Needs ``apt-get install hyperrogue-music drascula-music asc-music``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mosapp.codecs import codec_names  # noqa: E402
from mosapp.core.config import PipelineConfig  # noqa: E402
from mosapp.core.metrics import METRICS  # noqa: E402
from mosapp.evaluation.evaluate import (  # noqa: E402
    LEGACY_NAMES,
    METRIC_NAMES,
    evaluate_codec,
    excerpt,
    mean_of,
    mean_scores,
    renamed,
)
from mosapp.training.config import TrainConfig, expand  # noqa: E402

HEADERS = {"file_kbps": "kbps", "mel_distance": "mel dist. ↓", "spectral_convergence_db": "SC dB ↓",
           "si_sdr_db": "SI-SDR dB ↑", "visqol": "ViSQOL ↑", "decoded_consistency": "consistency ↑",
           "low_band_distance_db": "low-band dist. dB ↓", "low_band_correlation": "low-band corr. ↑",
           "high_band_distance_db": "high-band dist. dB ↓", "high_band_correlation": "high-band corr. ↑"}
#: Direction of each metric (the registry's): +1 higher is better, -1 lower is better (the bitrate has none).
BETTER = {k: 1 if METRICS[k].higher_is_better else -1 for k in METRIC_NAMES if k != "file_kbps"}
#: A model card's "measured" keys keep the names cards were written with ("kbps", "consistency").
CARD_NAMES = {new: old for old, new in LEGACY_NAMES.items()}


def default_codecs() -> list[str]:
    from mosapp.codecs.sgc import name_kbps

    names = codec_names()
    sgc = [n for n in names if n.startswith("sgc-") and not n.startswith("sgc-thesis-")]
    sgc_rates = sorted({round(name_kbps(n)) for n in sgc if name_kbps(n)})
    rates = sorted(set(sgc_rates) | {6, 12, 16, 24})
    out = sgc + [n for n in ("sgc-thesis-12",) if n in names] + ["pghi-only", "pghi-only-two-band"]
    for fam, ok in (("opus", lambda r: r >= 6), ("mp3", lambda r: r >= 8)):
        out += [f"{fam}-{r}" for r in rates if ok(r)]
    out += [f"avif-{r}" for r in sgc_rates] + ["webp-12", "jpeg-12"]
    return out


def fmt(v: float, key: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    special = {"file_kbps": ".1f", "si_sdr_db": ".1f", "visqol": ".2f"}
    return format(v, special.get(key, ".2f" if key.endswith("_db") else ".3f"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codecs", nargs="*", default=None, help="conditions, in table order (default: every sgc "
                    "model, pghi-only, Opus and MP3 at matched rates)")
    ap.add_argument("--measure", nargs="*", default=None,
                    help="with --reuse: measure these again even if the saved results have them")
    ap.add_argument("--fill-missing", action="store_true",
                    help="with --reuse: for a reused codec whose saved rows lack some metric (e.g. rows saved before "
                         "the band metrics existed), decode its clips again and add the missing metrics only "
                         "(ViSQOL is not rerun where it is saved)")
    ap.add_argument("--save-decoded", default=None, metavar="DIR",
                    help="write each decoded clip to DIR/<codec>/<clip>.wav (for benchmarks/lowband_panel.py)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "sgc3-base.toml"), help="where the held-out list is")
    ap.add_argument("--max-clips", type=int, default=0, help="only the first N held-out files (0: all)")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--start", type=float, default=30.0)
    ap.add_argument("--no-visqol", action="store_true")
    ap.add_argument("--update-readme", action="store_true")
    ap.add_argument("--update-cards", action="store_true")
    ap.add_argument("--json", default=None, help="also write per-clip results here")
    ap.add_argument("--reuse", default=None,
                    help="per-clip results (--json of an earlier run on the same clips) for codecs not measured now")
    args = ap.parse_args()
    heldout = expand(TrainConfig.load(args.config).heldout)[: args.max_clips or None]
    clips = [excerpt(f, args.start, args.seconds) for f in heldout]
    codecs = args.codecs or default_codecs()
    config = PipelineConfig(device="auto")
    print(f"# {len(clips)} held-out clips x {args.seconds:.0f} s, phase backend {config.phase}: "
          f"{', '.join(Path(f).name for f in heldout)}", file=sys.stderr)
    rows, per_clip = [], {}
    reused = json.loads(Path(args.reuse).read_text()) if args.reuse else {}
    reused = {name: [renamed(row) for row in rows_] for name, rows_ in reused.items()}  # rows saved before the registry
    measure = set(args.measure or [])
    for name in codecs:
        if name in reused and name not in measure:
            missing = {k for k in METRIC_NAMES for r in reused[name] if k not in r}
            if args.fill_missing and missing:
                t = time.perf_counter()
                res = evaluate_codec(name, clips, config, visqol="visqol" in missing and not args.no_visqol,
                                     keep_decoded=bool(args.save_decoded))
                if args.save_decoded:
                    save_decoded(Path(args.save_decoded), name, res)
                fresh = {Path(r.clip).name: r.scores for r in res}
                reused[name] = [{**{k: fresh[row["clip"]][k] for k in missing if k in fresh[row["clip"]]}, **row}
                                for row in reused[name]]
                print(f"{name:<12} reused from {args.reuse}, measured {', '.join(sorted(missing))} "
                      f"({time.perf_counter() - t:.0f} s)", file=sys.stderr)
            per_clip[name] = reused[name]
            if args.json:
                Path(args.json).write_text(json.dumps({**reused, **per_clip}, indent=1))
            rows.append((name, mean_of(reused[name])))
            if not (args.fill_missing and missing):
                print(f"{name:<12} reused from {args.reuse}", file=sys.stderr)
            if args.update_cards and name.startswith("sgc-"):
                update_card(name, [r["file_kbps"] for r in reused[name]], rows[-1][1], heldout, args)
            continue
        t = time.perf_counter()
        res = evaluate_codec(name, clips, config, visqol=not args.no_visqol, keep_decoded=bool(args.save_decoded))
        if args.save_decoded:
            save_decoded(Path(args.save_decoded), name, res)
        m = mean_scores(res)
        rows.append((name, m))
        per_clip[name] = [{"clip": Path(r.clip).name, **r.scores} for r in res]
        print(f"{name:<12} " + "  ".join(f"{k} {fmt(m[k], k)}" for k in METRIC_NAMES)
              + f"   ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
        if args.json:  # after every codec, so an interrupted run keeps what it measured
            Path(args.json).write_text(json.dumps({**reused, **per_clip}, indent=1))
        if args.update_cards and name.startswith("sgc-"):
            update_card(name, [r.scores["file_kbps"] for r in res], m, heldout, args)
    table = render(rows, clips, args)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({**reused, **per_clip}, indent=1))
    if args.update_readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        new = re.sub(r"(<!-- RESULTS-TABLE -->\n).*?(<!-- /RESULTS-TABLE -->)", lambda mm: mm.group(1) + table + mm.group(2),
                     text, flags=re.S)
        readme.write_text(new)


def render(rows, clips, args) -> str:
    head = "| codec | " + " | ".join(HEADERS.get(k, k) for k in METRIC_NAMES) + " |\n"
    head += "|---|" + "---:|" * len(METRIC_NAMES) + "\n"
    body = "".join(f"| `{name}` | " + " | ".join(fmt(m.get(k), k) for k in METRIC_NAMES) + " |\n" for name, m in rows)
    text = head + body + (f"\nMean over {len(clips)} held-out clips of {args.seconds:.0f} s (mono, 44.1 kHz); "
                          f"kbps counts the whole .sgc file. Low band: 20–1000 Hz, high band: above 1 kHz "
                          f"(4096-point Hann STFT, floor at the original's peak − 80 dB; `mosapp/core/metrics.py`).\n")
    flips = rank_flips(rows)
    if flips:
        text += "\n" + flips + "\n"
    return text


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


def save_decoded(folder: Path, name: str, results) -> None:
    """Each clip's decoded audio as ``folder/<codec>/<clip stem>.wav`` (32-bit float: exact, the pipeline rate)."""
    from mosapp.core.audio import write_audio
    from mosapp.core.config import PIPELINE_SAMPLE_RATE

    out = folder / name
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        write_audio(out / f"{Path(r.clip).stem}.wav", r.decoded, PIPELINE_SAMPLE_RATE, subtype="FLOAT")
        r.decoded = None


def update_card(name: str, kbps: list[float], means: dict, heldout: list[str], args) -> None:
    from mosapp.codecs.sgc import read_card

    found = read_card(name)
    if not found:
        return
    path, card = found
    card["measured"] = {
        "kbps": round(means["file_kbps"], 2),
        "kbps_range": [round(min(kbps), 2), round(max(kbps), 2)],
        **{CARD_NAMES.get(k, k): (None if math.isnan(means[k]) else round(means[k], 4))
           for k in METRIC_NAMES if k != "file_kbps"},
        "clips": [f"{Path(f).name} ({args.seconds:.0f} s from {args.start:.0f} s)" for f in heldout],
        "phase_backend": PipelineConfig().phase,
        "command": "benchmarks/codec_table.py --update-cards",
    }
    path.write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()
