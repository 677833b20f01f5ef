"""The ``mosapp study`` arguments: the parser alone, without the study library.

:mod:`mosapp.cli.main` builds every command's parser at start; the study commands'
implementation (:mod:`mosapp.cli.study`) loads the study stack (SQLAlchemy, pandas,
matplotlib, statsmodels), so it is imported only when a study command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from mosapp.cli.arguments import add_max_memory, bounded_float, bounded_int

#: ``--bootstrap`` resamples at most: 100 000 already give CI ends to the third decimal.
MAX_BOOTSTRAP = 100_000
#: ``--min-reference-trials`` at most: a plan has at most 1000 rated trials.
MAX_SCREENING_TRIALS = 1000


def add_study_parser(subparsers: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    """Add ``study`` with its subcommands to the ``mosapp`` subparsers; returns its parser."""
    study = subparsers.add_parser(
        "study", help="listening studies: prepare stimuli, show progress, export CSV, report MOS",
        description="Listening studies described by studies/<name>.toml. STUDY is the file or a name in studies/.",
    )
    sub = study.add_subparsers(dest="study_command", metavar="SUBCOMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("study", metavar="STUDY", help="study file (.toml) or the name of one in studies/")
        p.add_argument("--db", metavar="URL", default=None,
                       help="database: a SQLite file or any SQLAlchemy URL (default: the study's `database`)")
        add_max_memory(p)

    prep = sub.add_parser("prepare", help="render every (clip, condition) stimulus; cached, so a rerun is quick",
                          description="Render every stimulus through its codec, loudness-normalise, align, measure, "
                                      "and record it in the database. Stimuli are cached by content hash.")
    common(prep)
    prep.add_argument("--device", default=None, help="auto | cpu | cuda (default: the study's pipeline.device)")
    prep.add_argument("--force", action="store_true", help="render again what the cache already holds")
    prep.add_argument("--workers", type=bounded_int(0, 512), default=None, metavar="N",
                      help="render on N worker processes of a local Dask cluster (default: one per core; 0: this "
                           "process only)")
    prep.add_argument("--scheduler", default=None, metavar="ADDRESS",
                      help="render on the Dask cluster of this scheduler, e.g. tcp://10.0.0.5:8786 (its workers "
                           "must see the clips and the stimuli folder)")
    prep.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                      help="progress bar on stderr (auto: when stderr is a terminal)")

    status = sub.add_parser("status", help="progress per listener")
    common(status)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument("--watch", type=bounded_float(0.5, 3600.0), default=None, metavar="SECONDS",
                        help="show it again every SECONDS (0.5 to 3600) until Ctrl-C: every station's listeners, live")

    def screening_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--no-screening", action="store_true", help="keep every listener (no post-screening)")
        p.add_argument("--min-score", type=bounded_int(-3, 100), default=None, metavar="SCORE",
                       help="screening: a hidden-reference score below this counts against a listener, in the "
                            "study's units: 1 to 5 for DCR/ACR (default 4), 0 to 100 for MUSHRA (default 90) "
                            "(default: the study's [screening])")
        p.add_argument("--anchor-max-score", type=bounded_int(-3, 100), default=None, metavar="SCORE",
                       help="screening (MUSHRA, bs1534 rule): a mid-anchor score above this counts against a "
                            "listener, 0 to 100 (default: the study's, else 90)")
        p.add_argument("--residual", choices=["common", "per-condition"], default="common",
                       help="mixed model: one residual variance, or one per condition (default common)")
        p.add_argument("--max-fraction", type=bounded_float(0.0, 1.0), default=None, metavar="FRACTION",
                       help="screening: drop a listener above this fraction (0 to 1) of counted trials (default: "
                            "the study's, else 0.15)")
        p.add_argument("--min-reference-trials", type=bounded_int(1, MAX_SCREENING_TRIALS), default=None, metavar="N",
                       help=f"screening: judge a listener by the reference only with at least this many (1 to "
                            f"{MAX_SCREENING_TRIALS}) reference trials; fewer: kept and flagged (default: the "
                            f"study's, else 7)")
        p.add_argument("--bootstrap", type=bounded_int(0, MAX_BOOTSTRAP), default=2000, metavar="N",
                       help=f"bootstrap resamples, 0 to {MAX_BOOTSTRAP} (default 2000)")

    export = sub.add_parser("export", help="write <study>-ratings.csv, -export-summary.csv, -export-screening.csv")
    common(export)
    export.add_argument("--out", metavar="DIR", default=None,
                        help="output folder (default: results/ next to the study's stimuli folder)")
    export.add_argument("--include-training", action="store_true", help="also export training trials")
    screening_options(export)

    report = sub.add_parser("report", help="MOS/DMOS per condition with listener-level 95%% CIs, mixed model, "
                                           "agreement, tests, metric correlations, plot (<study>-report-* files)")
    common(report)
    report.add_argument("--out", metavar="DIR", default=None,
                        help="output folder (default: results/ next to the study's stimuli folder)")
    screening_options(report)
    study.set_defaults(study_parser=study)
    return study
