"""``mosapp evaluate``: its arguments, and the command (progress bars, the closing lines).

The work is :func:`mosapp.evaluation.run.run_evaluation`; this module only parses, shows
progress (overall and per codec, with an ETA) and prints where the results are.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import replace
from typing import Any

from mosapp.cli.arguments import bounded_float, bounded_int
from mosapp.core.config import PipelineConfig

#: ``--excerpts-per-file`` at most.
MAX_EXCERPTS_PER_FILE = 10_000
#: ``--workers`` at most.
MAX_WORKERS = 512


def add_evaluate_parser(subparsers: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    """Add ``evaluate`` to the ``mosapp`` subparsers; returns its parser."""
    defaults = PipelineConfig()
    p = subparsers.add_parser(
        "evaluate", help="measure codecs on clips (files, folders, a CSV manifest) into tables and plots",
        description="Encode, decode and measure every (excerpt, codec) pair on every core (or a Dask cluster), "
                    "commit each pair as it finishes (the same command resumes a stopped run), and write "
                    "clips.csv, summary.csv, summary.md, rate-distortion plots and run.json into --out.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="audio files, folders (searched recursively) or CSV manifests (path[,start_s,length_s])")
    p.add_argument("--codecs", nargs="+", required=True, metavar="CODEC",
                   help="codec names from `mosapp codecs`, e.g. sgc-12 opus-16 avif-12")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (made if missing; a rerun resumes)")
    p.add_argument("--metrics", nargs="+", default=None, metavar="METRIC",
                   help="registry metric names (default: every metric of decoded audio, ViSQOL included)")
    p.add_argument("--no-visqol", action="store_true", help="leave ViSQOL out (it is the slowest metric)")
    p.add_argument("--excerpt-seconds", type=bounded_float(0.1, 86_400.0), default=None, metavar="S",
                   help="cut excerpts of S seconds (default: whole files, or the manifest's lengths)")
    p.add_argument("--excerpts-per-file", type=bounded_int(1, MAX_EXCERPTS_PER_FILE), default=1, metavar="K",
                   help="excerpts per file, at seeded positions, one per K-th of the file (default 1)")
    p.add_argument("--seed", type=bounded_int(0, 2**31 - 1), default=0, help="seed of the excerpt positions")
    p.add_argument("--workers", type=bounded_int(0, MAX_WORKERS), default=None, metavar="N",
                   help="worker processes on this machine (default: one per core; 0: this process only)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a Dask scheduler to run on, e.g. tcp://10.0.0.5:8786 (started with `dask scheduler` and "
                        "`dask worker ADDRESS`; workers must see the input files)")
    p.add_argument("--device", default=defaults.device, help="auto | cpu | cuda (default auto)")
    p.add_argument("--phase", default=defaults.phase, help=f"phase reconstruction (default {defaults.phase})")
    p.add_argument("--keep-audio", action="store_true",
                   help="also write each excerpt and its decodings as float WAV files under DIR/audio/")
    p.add_argument("--no-plots", action="store_true", help="skip the rate-distortion plots")
    p.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                   help="progress bars on stderr (auto: when stderr is a terminal)")
    return p


def run_evaluate(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    from tqdm import tqdm  # noqa: PLC0415 — with the rest of the command

    from mosapp.core.dsp import resolve_device  # noqa: PLC0415
    from mosapp.evaluation.run import check_metrics, run_evaluation  # noqa: PLC0415 — dask and the metrics load only here
    from mosapp.phase import get_backend  # noqa: PLC0415

    get_backend(args.phase)
    resolve_device(args.device)
    names = list(check_metrics(args.metrics))
    if args.no_visqol and "visqol" in names:
        names.remove("visqol")
    config = replace(PipelineConfig(), device=args.device, phase=args.phase)
    gen = run_evaluation(args.inputs, args.codecs, args.out, metric_names=names,
                         excerpt_seconds=args.excerpt_seconds, excerpts_per_file=args.excerpts_per_file,
                         seed=args.seed, config=config, workers=args.workers, scheduler=args.scheduler,
                         keep_audio=args.keep_audio, plots=not args.no_plots, argv=argv)
    show = args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty())
    bars: dict[str, Any] = {}
    overall = None
    last_line = 0.0
    try:
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            except KeyboardInterrupt:
                # Every finished pair is committed and the tables of what finished are written; skip
                # the interpreter's teardown of torch, numba and dask (0.6 s or more) so that Ctrl+C
                # ends the command within a second.
                for bar in [*bars.values(), *([overall] if overall is not None else [])]:
                    bar.close()
                print("mosapp: interrupted; what finished is saved, and the same command goes on from there",
                      file=sys.stderr, flush=True)
                sys.stdout.flush()
                os._exit(130)
            if p.stage != "evaluate":
                continue
            if show:
                if overall is None:
                    overall = tqdm(total=p.total, initial=p.done, unit="pair", desc="all codecs", file=sys.stderr,
                                   dynamic_ncols=True)
                overall.n = p.done
                overall.refresh()
                per_codec = re.fullmatch(r"(\S+) (\d+)/(\d+)", p.detail or "")
                if per_codec:
                    codec, n, total = per_codec[1], int(per_codec[2]), int(per_codec[3])
                    bar = bars.get(codec)
                    if bar is None:
                        bar = bars[codec] = tqdm(total=total, initial=n, unit="pair", desc=codec, file=sys.stderr,
                                                 dynamic_ncols=True, position=len(bars) + 1, leave=False)
                    bar.n = n
                    bar.refresh()
            elif time.monotonic() - last_line > 10.0 or p.done == p.total:
                last_line = time.monotonic()
                print(f"mosapp evaluate: {p.done}/{p.total} pairs ({p.detail})", file=sys.stderr, flush=True)
    finally:
        for bar in bars.values():
            bar.close()
        if overall is not None:
            overall.close()
    for problem in [*result.problems, *result.failures]:
        print(f"mosapp evaluate: {problem}", file=sys.stderr)
    print(f"mosapp evaluate: {result.pairs} pairs ({result.reused} from an earlier run, {result.measured} measured "
          f"now, {result.failed} failed) in {result.seconds:.1f} s on {result.where}; results in {result.out_dir}/ "
          f"(clips.csv, summary.csv, summary.md, rd-*.png, run.json)")
    return 0 if result.failed == 0 and not result.problems else 1


__all__ = ["add_evaluate_parser", "run_evaluate"]
