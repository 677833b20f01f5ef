"""``mosapp study …``: prepare, status, export and report of listening studies (the work is in mosapp.study).

Hooked into :mod:`mosapp.cli.main` by :func:`add_study_parser` and :func:`run_study`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mosapp.cli.study_parser import add_study_parser
from mosapp.core.job import Progress, drive
from mosapp.study.definition import StudyDefinition, database_url_for, load_study
from mosapp.study.engine import StudyEngine
from mosapp.study.errors import StudyError
from mosapp.study.export import check_screening_units, export_study
from mosapp.study.prepare import prepare_study
from mosapp.study.report import build_report, write_report
from mosapp.study.store import Store, describe_url, open_store


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
        gen = prepare_study(definition, store, device=args.device, force=args.force, workers=args.workers,
                            scheduler=args.scheduler)
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
        if getattr(args, "watch", None) is None:
            return _show_status(args, definition, engine.listener_progress())
        try:
            while True:  # every station writes to the same database: each refresh reads it afresh
                if not args.json and sys.stdout.isatty():
                    print("\033[2J\033[H", end="")
                if not args.json:
                    print(f"{datetime.now().strftime('%H:%M:%S')}  (every {args.watch:g} s; Ctrl-C stops)")
                _show_status(args, definition, engine.listener_progress())
                sys.stdout.flush()
                time.sleep(args.watch)
        except KeyboardInterrupt:
            return 0


def _show_status(args: argparse.Namespace, definition: StudyDefinition, rows: list[Any]) -> int:
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
    if args.min_reference_trials is not None and args.min_reference_trials < 1:
        raise StudyError(f"--min-reference-trials {args.min_reference_trials} is not accepted; give 1 or more.")
    if args.bootstrap < 0:
        raise StudyError(f"--bootstrap {args.bootstrap} is not accepted; give 0 or more resamples.")


def _screening_kwargs(args: argparse.Namespace, definition: StudyDefinition) -> dict[str, Any]:
    """The screening options, each checked in the study's own units (MUSHRA 0-100, DCR/ACR 1-5)."""
    check_screening_units(definition, min_score=args.min_score, anchor_max_score=args.anchor_max_score)
    return {"screening": not args.no_screening, "min_score": args.min_score, "max_fraction": args.max_fraction,
            "min_reference_trials": args.min_reference_trials, "anchor_max_score": args.anchor_max_score,
            "bootstrap": args.bootstrap}


def _export(args: argparse.Namespace) -> int:
    _check_screening_args(args)
    definition, url = _definition(args, check_codecs=False)
    out = Path(args.out) if args.out else _default_out(definition)
    with _open_existing(url) as store:
        ratings, summary = export_study(store, definition, out, include_training=args.include_training,
                                        **_screening_kwargs(args, definition))
    print(f"ratings: {ratings}")
    print(f"summary: {summary}")
    print(f"screening: {summary.with_name(f'{definition.name}-export-screening.csv')}")
    return 0


def _report(args: argparse.Namespace) -> int:
    _check_screening_args(args)
    definition, url = _definition(args, check_codecs=False)
    out = Path(args.out) if args.out else _default_out(definition)
    with _open_existing(url) as store:
        report = build_report(store, definition, residual=args.residual, **_screening_kwargs(args, definition))
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
