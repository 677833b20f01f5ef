"""``mosapp study …``: prepare, status, export and report of listening studies (the work is in mosapp.study).

Hooked into :mod:`mosapp.cli.main` by :func:`add_study_parser` and :func:`run_study`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mosapp.cli.arguments import bounded_float, bounded_int
from mosapp.core.job import Progress, drive
from mosapp.study.definition import StudyDefinition, database_url_for, load_study
from mosapp.study.engine import StudyEngine
from mosapp.study.errors import StudyError
from mosapp.study.export import export_study
from mosapp.study.prepare import prepare_study
from mosapp.study.report import build_report, write_report
from mosapp.study.store import Store, describe_url, open_store

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

    prep = sub.add_parser("prepare", help="render every (clip, condition) stimulus; cached, so a rerun is quick",
                          description="Render every stimulus through its codec, loudness-normalise, align, measure, "
                                      "and record it in the database. Stimuli are cached by content hash.")
    common(prep)
    prep.add_argument("--device", default=None, help="auto | cpu | cuda (default: the study's pipeline.device)")
    prep.add_argument("--force", action="store_true", help="render again what the cache already holds")
    prep.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                      help="progress bar on stderr (auto: when stderr is a terminal)")

    status = sub.add_parser("status", help="progress per listener")
    common(status)
    status.add_argument("--json", action="store_true", help="print one JSON object")

    def screening_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--no-screening", action="store_true", help="keep every listener (no post-screening)")
        p.add_argument("--min-score", type=bounded_int(1, 5), default=None, metavar="SCORE",
                       help="screening: a hidden-reference score below this (1 to 5) counts against a listener "
                            "(default: the study's [screening], else 4)")
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


def _definition(args: argparse.Namespace, *, check_codecs: bool) -> tuple[StudyDefinition, str]:
    definition = load_study(args.study, check_codecs=check_codecs)
    url = database_url_for(args.db) if args.db else definition.database_url
    return definition, url


def _open_existing(url: str) -> Store:
    """Open for reading only (status, export, report): read-only, never created, never upgraded."""
    return open_store(url, create=False, readonly=True)


def _default_out(definition: StudyDefinition) -> Path:
    return definition.stimuli_dir.parent / "results"


def _prepare(args: argparse.Namespace) -> int:
    definition, url = _definition(args, check_codecs=True)
    show = args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty())
    with open_store(url) as store:
        gen = prepare_study(definition, store, device=args.device, force=args.force)
        bar: tqdm | None = None

        def on_progress(p: Progress) -> None:
            nonlocal bar
            if show and bar is None:
                bar = tqdm(total=p.total, unit="stimulus", desc="preparing", file=sys.stderr,
                           dynamic_ncols=True, leave=False)
            if bar is not None and p.done:
                bar.set_postfix_str(p.detail)
                bar.update(p.done - bar.n)

        try:
            result = drive(gen, on_progress)
        finally:
            if bar is not None:
                bar.close()
    print(f"study {definition.name}: {result.total} stimuli ({result.rendered} rendered, {result.reused} from the "
          f"cache) in {result.seconds:.1f} s on {result.device}")
    print(f"stimuli: {definition.stimuli_dir}")
    print(f"database: {describe_url(url)}")
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def _fmt_time(t: datetime | None) -> str:
    return "" if t is None else t.strftime("%Y-%m-%d %H:%M")


def _status(args: argparse.Namespace) -> int:
    definition, url = _definition(args, check_codecs=False)
    with StudyEngine(definition, _open_existing(url)) as engine:
        rows = engine.listener_progress()
    finished = sum(r.finished for r in rows)
    if args.json:
        print(json.dumps({
            "study": definition.name, "listeners": len(rows), "finished": finished,
            "progress": [{
                "listener": r.code, "rated": r.rated, "total": r.total, "training_rated": r.training_rated,
                "training_total": r.training_total, "sessions": r.sessions, "finished": r.finished,
                "started_at": None if r.started_at is None else r.started_at.isoformat() + "Z",
                "last_rating_at": None if r.last_rating_at is None else r.last_rating_at.isoformat() + "Z",
            } for r in rows],
        }))
        return 0
    print(f"{definition.title} ({definition.name}): {len(rows)} listener(s), {finished} finished")
    if not rows:
        print("no listener has started yet")
        return 0
    header = f"{'listener':<12} {'rated':>9} {'training':>9} {'sittings':>8}  {'started (UTC)':<16}  {'last rating':<16}  state"
    print(header)
    print("-" * len(header))
    for r in rows:
        state = "finished" if r.finished else ("in progress" if r.rated or r.training_rated else "not started")
        print(f"{r.code:<12} {f'{r.rated}/{r.total}':>9} {f'{r.training_rated}/{r.training_total}':>9} "
              f"{r.sessions:>8}  {_fmt_time(r.started_at):<16}  {_fmt_time(r.last_rating_at):<16}  {state}")
    return 0


def _check_screening_args(args: argparse.Namespace) -> None:
    if args.max_fraction is not None and not 0.0 <= args.max_fraction <= 1.0:
        raise StudyError(f"--max-fraction {args.max_fraction:g} is not accepted; give a fraction from 0 to 1.")
    if args.min_score is not None and not 1 <= args.min_score <= 5:
        raise StudyError(f"--min-score {args.min_score} is not accepted; give a score from 1 to 5.")
    if args.min_reference_trials is not None and args.min_reference_trials < 1:
        raise StudyError(f"--min-reference-trials {args.min_reference_trials} is not accepted; give 1 or more.")
    if args.bootstrap < 0:
        raise StudyError(f"--bootstrap {args.bootstrap} is not accepted; give 0 or more resamples.")


def _screening_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"screening": not args.no_screening, "min_score": args.min_score, "max_fraction": args.max_fraction,
            "min_reference_trials": args.min_reference_trials, "bootstrap": args.bootstrap}


def _export(args: argparse.Namespace) -> int:
    _check_screening_args(args)
    definition, url = _definition(args, check_codecs=False)
    out = Path(args.out) if args.out else _default_out(definition)
    with _open_existing(url) as store:
        ratings, summary = export_study(store, definition, out, include_training=args.include_training,
                                        **_screening_kwargs(args))
    print(f"ratings: {ratings}")
    print(f"summary: {summary}")
    print(f"screening: {summary.with_name(f'{definition.name}-export-screening.csv')}")
    return 0


def _report(args: argparse.Namespace) -> int:
    _check_screening_args(args)
    definition, url = _definition(args, check_codecs=False)
    out = Path(args.out) if args.out else _default_out(definition)
    with _open_existing(url) as store:
        report = build_report(store, definition, **_screening_kwargs(args))
    files = write_report(report, out)
    print(report.text())
    print()
    for kind, path in files.items():
        print(f"{kind}: {path}")
    return 0


def run_study(args: argparse.Namespace) -> int:
    """Run ``mosapp study SUBCOMMAND``; returns the exit status. Raises MosappError for the caller to print."""
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "prepare": _prepare, "status": _status, "export": _export, "report": _report}
    handler = handlers.get(getattr(args, "study_command", None) or "")
    if handler is None:
        args.study_parser.print_help()
        return 2
    return handler(args)


__all__ = ["add_study_parser", "run_study"]
