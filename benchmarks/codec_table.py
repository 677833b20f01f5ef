"""The codec results table: every sgc operating point, pghi-only and Opus/MP3 at matched bitrates,
measured on held-out music (files the sgc models never trained on, listed in
configs/sgc-12.toml ``[data] heldout``).

For every (codec, clip) the excerpt is encoded, packed into a real .sgc container, decoded
and scored (mosapp.evaluate): kbps of the file, mel distance, spectral convergence, SI-SDR,
ViSQOL, consistency. The table gives the mean over clips.

    .venv/bin/python benchmarks/codec_table.py                      # prints the Markdown table
    .venv/bin/python benchmarks/codec_table.py --update-readme --update-cards

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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mosapp.codecs import codec_names  # noqa: E402
from mosapp.config import PipelineConfig  # noqa: E402
from mosapp.evaluate import METRIC_NAMES, evaluate_codec, excerpt, mean_scores  # noqa: E402
from mosapp.train import TrainConfig, expand  # noqa: E402

HEADERS = {"kbps": "kbps", "mel_distance": "mel dist. ↓", "spectral_convergence_db": "SC dB ↓",
           "si_sdr_db": "SI-SDR dB ↑", "visqol": "ViSQOL ↑", "consistency": "consistency ↑"}


def default_codecs() -> list[str]:
    names = codec_names()
    sgc = [n for n in names if n.startswith("sgc-")]
    rates = sorted({round(float(n.split("-")[1])) for n in sgc} | {6, 12, 16, 24})
    out = sgc + ["pghi-only"]
    for fam, ok in (("opus", lambda r: r >= 6), ("mp3", lambda r: r >= 8)):
        out += [f"{fam}-{r}" for r in rates if ok(r)]
    return out


def fmt(v: float, key: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return {"kbps": f"{v:.1f}", "mel_distance": f"{v:.3f}", "spectral_convergence_db": f"{v:.2f}",
            "si_sdr_db": f"{v:.1f}", "visqol": f"{v:.2f}", "consistency": f"{v:.3f}"}[key]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codecs", nargs="*", default=None)
    ap.add_argument("--config", default=str(ROOT / "configs" / "sgc-12.toml"), help="where the held-out list is")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--start", type=float, default=30.0)
    ap.add_argument("--no-visqol", action="store_true")
    ap.add_argument("--update-readme", action="store_true")
    ap.add_argument("--update-cards", action="store_true")
    ap.add_argument("--json", default=None, help="also write per-clip results here")
    ap.add_argument("--reuse", default=None,
                    help="per-clip results (--json of an earlier run on the same clips) for codecs not measured now")
    args = ap.parse_args()
    heldout = expand(TrainConfig.load(args.config).heldout)
    clips = [excerpt(f, args.start, args.seconds) for f in heldout]
    codecs = args.codecs or default_codecs()
    config = PipelineConfig(device="auto")
    print(f"# {len(clips)} held-out clips x {args.seconds:.0f} s, phase backend {config.phase}: "
          f"{', '.join(Path(f).name for f in heldout)}", file=sys.stderr)
    rows, per_clip = [], {}
    reused = json.loads(Path(args.reuse).read_text()) if args.reuse else {}
    for name in codecs:
        if name in reused:
            per_clip[name] = reused[name]
            rows.append((name, {k: float(np.nanmean([r[k] for r in reused[name]])) for k in METRIC_NAMES}))
            print(f"{name:<12} reused from {args.reuse}", file=sys.stderr)
            if args.update_cards and name.startswith("sgc-"):
                update_card(name, [r["kbps"] for r in reused[name]], rows[-1][1], heldout, args)
            continue
        t = time.perf_counter()
        res = evaluate_codec(name, clips, config, visqol=not args.no_visqol)
        m = mean_scores(res)
        rows.append((name, m))
        per_clip[name] = [{"clip": Path(r.clip).name, **r.scores} for r in res]
        print(f"{name:<12} " + "  ".join(f"{k} {fmt(m[k], k)}" for k in METRIC_NAMES)
              + f"   ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
        if args.update_cards and name.startswith("sgc-"):
            update_card(name, [r.scores["kbps"] for r in res], m, heldout, args)
    table = render(rows, clips, args)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(per_clip, indent=1))
    if args.update_readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        new = re.sub(r"(<!-- RESULTS-TABLE -->\n).*?(<!-- /RESULTS-TABLE -->)", lambda mm: mm.group(1) + table + mm.group(2),
                     text, flags=re.S)
        readme.write_text(new)


def render(rows, clips, args) -> str:
    head = "| codec | " + " | ".join(HEADERS[k] for k in METRIC_NAMES) + " |\n"
    head += "|---|" + "---:|" * len(METRIC_NAMES) + "\n"
    body = "".join(f"| `{name}` | " + " | ".join(fmt(m[k], k) for k in METRIC_NAMES) + " |\n" for name, m in rows)
    return head + body + (f"\nMean over {len(clips)} held-out clips of {args.seconds:.0f} s (mono, 44.1 kHz); "
                          f"kbps counts the whole .sgc file.\n")


def update_card(name: str, kbps: list[float], means: dict, heldout: list[str], args) -> None:
    from mosapp.codecs.sgc import read_card

    found = read_card(name)
    if not found:
        return
    path, card = found
    card["measured"] = {
        "kbps": round(means["kbps"], 2),
        "kbps_range": [round(min(kbps), 2), round(max(kbps), 2)],
        **{k: (None if math.isnan(means[k]) else round(means[k], 4)) for k in METRIC_NAMES if k != "kbps"},
        "clips": [f"{Path(f).name} ({args.seconds:.0f} s from {args.start:.0f} s)" for f in heldout],
        "phase_backend": PipelineConfig().phase,
        "command": "benchmarks/codec_table.py --update-cards",
    }
    path.write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()
