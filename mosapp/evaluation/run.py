"""``mosapp evaluate``: codecs × excerpts × metrics on every core or a Dask cluster, resumable.

:func:`run_evaluation` (a generator of :class:`~mosapp.core.job.Progress`, returning an
:class:`EvaluationResult`) plans the excerpts (:mod:`.clips`), checks every codec once (unknown
or unavailable: one sentence, its pairs listed as failed), skips the pairs the output folder
already holds for the same codec fingerprints and settings (:mod:`.results`), hands the rest to
the :class:`~mosapp.evaluation.engine.Engine` one (excerpt, codec) pair per task, commits each
result the moment it arrives, and writes the tables, plots and ``run.json``.

A task (:func:`measure_pair`, run on a worker) reads its excerpt by seeking, measures the codec
on it with :func:`mosapp.evaluation.evaluate.measure_steps` (encode → a real ``.sgc``
container → decode) and scores the decoded audio with the registry's metric functions
(:func:`mosapp.core.metrics.score`, whole excerpt), so a pair's numbers are those of
``mosapp encode`` + ``mosapp decode`` followed by those functions. A worker keeps codecs (and
their loaded weights) and its last few excerpts for the next task.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import socket
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mosapp.codecs import get_codec
from mosapp.codecs.base import Codec
from mosapp.core import metrics
from mosapp.core.audio import Audio
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig
from mosapp.core.errors import ConfigError, MosappError
from mosapp.core.job import Progress, drive
from mosapp.evaluation.clips import Excerpt, plan_excerpts, read_excerpt
from mosapp.evaluation.engine import Engine, Outcome
from mosapp.evaluation.evaluate import measure_steps
from mosapp.evaluation.results import (
    NO_BITRATE_FAMILIES,
    OutputError,
    PairRow,
    PairStore,
    Stat,
    _write_text,
    clips_table,
    failures_csv,
    markdown_table,
    rd_plot,
    summarise,
    summary_csv,
    timings_csv,
    write_float_wav,
)
from mosapp.models import clap

#: The metrics ``mosapp evaluate`` computes when none are named: every metric of a decoded signal.
DEFAULT_METRICS: tuple[str, ...] = metrics.SIGNAL_METRIC_NAMES
#: Excerpts a worker keeps in memory for the next codec of the same excerpt.
EXCERPT_CACHE = 4


class EvaluationError(MosappError):
    """The evaluation cannot run as asked."""


@dataclass(frozen=True)
class PairTask:
    """One (excerpt, codec) pair and how to measure it (what a worker is sent)."""

    excerpt: Excerpt
    codec: str
    config: PipelineConfig
    metric_names: tuple[str, ...]
    keep_audio: str | None = None


@dataclass
class EvaluationResult:
    """What a run did and where it wrote."""

    out_dir: Path
    pairs: int = 0
    measured: int = 0
    reused: int = 0
    failed: int = 0
    seconds: float = 0.0
    stopped: bool = False
    where: str = ""
    problems: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


# -- on the worker ----------------------------------------------------------------------------------

_CODECS: dict[str, Codec] = {}
_EXCERPTS: OrderedDict[Excerpt, Audio] = OrderedDict()


def _excerpt_audio(e: Excerpt) -> Audio:
    audio = _EXCERPTS.get(e)
    if audio is None:
        audio = read_excerpt(e)
        _EXCERPTS[e] = audio
        while len(_EXCERPTS) > EXCERPT_CACHE:
            _EXCERPTS.popitem(last=False)
    else:
        _EXCERPTS.move_to_end(e)
    return audio


_REFERENCE_EMBEDDINGS: OrderedDict[Excerpt, np.ndarray] = OrderedDict()


def _device(config: PipelineConfig) -> str:
    from mosapp.core.dsp import resolve_device  # noqa: PLC0415

    return str(resolve_device(config.device))


def _reference_embedding(e: Excerpt, audio: Audio, config: PipelineConfig) -> np.ndarray:
    """The excerpt's CLAP embeddings (kept for the worker's next codec on it)."""
    found = _REFERENCE_EMBEDDINGS.get(e)
    if found is None:
        found = _REFERENCE_EMBEDDINGS[e] = clap.embed(audio.samples, PIPELINE_SAMPLE_RATE, _device(config))
        while len(_REFERENCE_EMBEDDINGS) > EXCERPT_CACHE:
            _REFERENCE_EMBEDDINGS.popitem(last=False)
    return found


def _codec(name: str) -> Codec:
    codec = _CODECS.get(name)
    if codec is None:
        codec = _CODECS[name] = get_codec(name)
    return codec


def keep_audio_path(folder: str, e: Excerpt, codec: str | None) -> Path:
    """Where ``--keep-audio`` writes an excerpt (``codec`` None) or its decoding: ``FOLDER/<codec>/<name>.wav``."""
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in Path(e.clip).stem)
    digest = hashlib.sha256(e.clip.encode()).hexdigest()[:8]
    name = f"{stem}-{digest}-{e.start_s:.3f}-{e.seconds:g}.wav"
    return Path(folder) / (codec or "excerpts") / name


def measure_pair(task: PairTask) -> PairRow:
    """Measure ``task.codec`` on ``task.excerpt`` (on a worker): a failure is the row's one-sentence ``error``."""
    t_start = time.perf_counter()
    e = task.excerpt
    try:
        audio = _excerpt_audio(e)
        codec = _codec(task.codec)
        wanted = tuple(m for m in task.metric_names if m != "visqol" and m not in SET_METRICS)

        def scorer(reference: np.ndarray, decoded: np.ndarray) -> Generator[Progress, None, dict[str, float]]:
            yield Progress("metrics", 0, 1, detail=", ".join(wanted))
            return metrics.score(reference, decoded, PIPELINE_SAMPLE_RATE, wanted)

        m = drive(measure_steps(codec, audio.samples, task.config, info=audio.info, container_file=True,
                                visqol="visqol" in task.metric_names, scorer=scorer))
    except MosappError as exc:
        return PairRow(e, task.codec, error=str(exc))
    values = {"file_kbps": m.file_kbps, "payload_kbps": m.payload_kbps}
    values.update({k: float(v) for k, v in m.scores.items() if k in task.metric_names})
    notes = {k: v for k, v in m.notes.items() if k in task.metric_names}
    row = PairRow(e, task.codec, values=values, notes=notes)
    if "fad" in task.metric_names:
        try:
            row.embeddings = {"reference": _reference_embedding(e, audio, task.config).tolist(),
                              "decoded": clap.embed(m.decoded, PIPELINE_SAMPLE_RATE, _device(task.config)).tolist()}
        except MosappError as exc:
            row.notes["fad"] = str(exc)
    if task.keep_audio:
        try:
            for who, samples in ((None, audio.samples), (task.codec, m.decoded)):
                path = keep_audio_path(task.keep_audio, e, who)
                if who is None and path.exists():
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                write_float_wav(path, samples, PIPELINE_SAMPLE_RATE)
        except OSError as exc:
            return PairRow(e, task.codec, error=f"The audio could not be kept ({exc.strerror or exc}).")
        except MosappError as exc:
            return PairRow(e, task.codec, error=str(exc))
    total = time.perf_counter() - t_start
    row.timings = {"encode_s": m.timings_s.get("encode"), "decode_s": m.timings_s.get("decode"),
                   "metrics_s": m.timings_s.get("metrics"), "total_s": total,
                   "worker": f"{socket.gethostname()}:{os.getpid()}"}
    return row


# -- on the client ------------------------------------------------------------------------------------


def codec_fingerprint(codec: Codec) -> dict[str, Any]:
    """What identifies a codec's results: name, payload version, model id, and its card's SHA-256."""
    card_path = getattr(codec, "card_path", None)
    card_sha = None
    if card_path is not None and Path(card_path).is_file():
        card_sha = hashlib.sha256(Path(card_path).read_bytes()).hexdigest()
    try:
        model = codec.model_id()
    except (MosappError, OSError):
        model = None
    return {"name": codec.name, "family": codec.family, "version": codec.version, "model_id": model,
            "card": str(card_path) if card_path else None, "card_sha256": card_sha}


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def settings_digest(config: PipelineConfig, metric_names: Sequence[str]) -> str:
    """The settings a row was measured with (pipeline and metrics; not the device's name, only its kind)."""
    c = asdict(config)
    c["device"] = "cuda" if str(config.device).startswith("cuda") else str(config.device)
    return _digest({"pipeline": c, "metrics": list(metric_names)})


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {"host": socket.gethostname(), "platform": platform.platform(),
                            "python": sys.version.split()[0], "cpus": os.cpu_count()}
    try:
        import psutil  # noqa: PLC0415 — optional detail of the record

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch  # noqa: PLC0415 — loaded by the codecs anyway

        info["torch"] = torch.__version__
        info["cuda"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
            if torch.cuda.is_available() else []
    except Exception:  # noqa: BLE001 — a record field, never a reason to fail the run
        info["cuda"] = []
    return info


def _versions() -> dict[str, str]:
    from importlib import metadata  # noqa: PLC0415

    out = {}
    for pkg in ("mosapp", "numpy", "scipy", "dask", "distributed", "av", "pillow", "compressai", "visqol-python"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


#: Metrics of a set of clips (one figure per codec over all its excerpts), computed from per-pair embeddings.
SET_METRICS: tuple[str, ...] = tuple(m.name for m in metrics.METRICS.values() if m.inputs == "sets")


def default_metrics() -> tuple[str, ...]:
    """Every metric that can run here: those of decoded audio, and FAD when its embedding model is present."""
    from mosapp.models import clap  # noqa: PLC0415 — only looks for files

    return DEFAULT_METRICS + (("fad",) if clap.unavailable() is None else ())


def check_metrics(names: Sequence[str] | None) -> tuple[str, ...]:
    """The metric names to compute (registry names of decoded-signal metrics, and ``fad``)."""
    if not names:
        return default_metrics()
    out = []
    for n in names:
        m = metrics.metric(n)
        if m.inputs not in ("signals", "sets"):
            if n in ("file_kbps", "payload_kbps"):
                continue  # always in the table
            raise EvaluationError(f'The metric "{n}" is not one of decoded audio against its excerpt; choose from '
                                  f'{", ".join((*metrics.SIGNAL_METRIC_NAMES, *SET_METRICS))}.')
        if n not in out:
            out.append(n)
    return tuple(out)


def run_evaluation(inputs: Sequence[str], codecs: Sequence[str], out_dir: str | os.PathLike[str], *,
                   metric_names: Sequence[str] | None = None, excerpt_seconds: float | None = None,
                   excerpts_per_file: int = 1, seed: int = 0, config: PipelineConfig = PipelineConfig(),
                   workers: int | None = None, scheduler: str | None = None, keep_audio: bool = False,
                   plots: bool = True, argv: Sequence[str] | None = None
                   ) -> Generator[Progress, None, EvaluationResult]:
    """Measure ``codecs`` on the excerpts of ``inputs`` into ``out_dir`` (see the module docstring).

    Yields ``Progress("evaluate", done, total, "pairs", detail)`` after every pair (detail: the
    codec and its own count), and ``Progress("plan"/"write", ...)`` around the rest.

    Raises:
        EvaluationError, InputError, OutputError, EngineError: nothing can run (no input, no
            codec named, an output folder that cannot be written, an unreachable scheduler).
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file; give a folder (it is made if missing).")
    names = check_metrics(metric_names)
    fad_problem = clap.unavailable() if "fad" in names else None
    if fad_problem is not None:
        names = tuple(n for n in names if n != "fad")
    if not codecs:
        raise EvaluationError("No codec was named; give --codecs, e.g. --codecs sgc-12 opus-16 (see `mosapp codecs`).")
    codec_list = list(dict.fromkeys(codecs))
    yield Progress("plan", 0, 1, detail="finding excerpts")
    excerpts, plan_problems = plan_excerpts(list(inputs), excerpt_seconds=excerpt_seconds,
                                            excerpts_per_file=excerpts_per_file, seed=seed)
    if not excerpts:
        why = " ".join(p.reason for p in plan_problems[:3])
        raise EvaluationError(f"No excerpt to measure: {why}" if why else "No excerpt to measure.")
    result = EvaluationResult(out_dir=out)
    result.problems += [p.reason for p in plan_problems] + ([fad_problem] if fad_problem else [])

    runnable, refused = check_codecs(codec_list)
    result.problems += list(refused.values())
    fingerprints_full = {n: codec_fingerprint(c) for n, c in runnable.items()}
    fingerprints = {n: _digest(fp) for n, fp in fingerprints_full.items()}
    fingerprints.update({n: "refused" for n in refused})
    settings = settings_digest(config, names)
    families = {n: c.family for n, c in runnable.items()}

    store = PairStore(out)
    try:
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        for name, reason in refused.items():
            for e in excerpts:
                store.save(PairRow(e, name, error=reason), "refused", settings)
        done_keys = store.done(fingerprints, settings)
        todo = [PairTask(e, c, config, names, str(out / "audio") if keep_audio else None)
                for e in excerpts for c in runnable if (e.clip, e.start_s, e.seconds, c) not in done_keys]
        result.pairs = len(excerpts) * len(codec_list)
        result.reused = len(excerpts) * len(runnable) - len(todo)
        per_codec_total = {c: len(excerpts) for c in runnable}
        per_codec_done = {c: sum(1 for e in excerpts if (e.clip, e.start_s, e.seconds, c) in done_keys) for c in runnable}
        total = len(excerpts) * len(runnable)
        done = result.reused
        yield Progress("evaluate", done, max(total, 1), "pairs", detail="starting workers")
        with Engine(workers=workers if len(todo) > 1 else 0, scheduler=scheduler if todo else None) as engine:
            result.where = engine.describe()
            yield Progress("evaluate", done, max(total, 1), "pairs", detail=f"workers ready: {result.where}")
            try:
                for outcome in engine.map_unordered(measure_pair, todo, resources=gpu_resources(config, families)):
                    task = outcome.item
                    row = _row_of(outcome)
                    store.save(row, fingerprints[task.codec], settings)
                    done += 1
                    result.measured += row.ok
                    result.failed += not row.ok
                    per_codec_done[task.codec] += 1
                    yield Progress("evaluate", done, max(total, 1), "pairs",
                                   detail=f"{task.codec} {per_codec_done[task.codec]}/{per_codec_total[task.codec]}")
            except KeyboardInterrupt:
                result.stopped = True
        rows = store.rows(excerpts, codec_list, fingerprints, settings)
        result.failed = sum(1 for r in rows if not r.ok)
        result.failures = [f"{codec} on {which}: {reason}" for (codec, reason), which in failure_groups(rows)
                           if codec not in refused]
        yield Progress("write", 0, 1, detail="tables and plots")
        result.files = write_outputs(out, rows, codec_list, names, families, plan_problems=[
            (p.clip, p.reason) for p in plan_problems], plots=plots and not result.stopped, complete=not result.stopped,
            pairs_total=result.pairs)
        result.seconds = time.perf_counter() - t0
        record = {
            "argv": list(argv) if argv is not None else sys.argv, "started": started,
            "inputs": list(inputs), "excerpt_seconds": excerpt_seconds, "excerpts_per_file": excerpts_per_file,
            "seed": seed, "excerpts": len(excerpts), "metrics": list(names), "pipeline": asdict(config),
            "codecs": {n: fingerprints_full.get(n, {"refused": refused.get(n)}) for n in codec_list},
        }
        _write_text(out / "run.json", json.dumps(run_record(record, result), indent=2, default=str) + "\n")
        result.files.append(out / "run.json")
    finally:
        store.close()
    if result.stopped:
        raise KeyboardInterrupt
    return result


#: Families whose pairs need the Dask resource ``GPU`` when the run's device is CUDA.
GPU_FAMILIES = ("sgc", "msillm", "pghi-only", "encodec", "dac")


def gpu_resources(config: PipelineConfig, families: dict[str, str]) -> Callable[[PairTask], dict[str, float] | None]:
    """What a pair asks of a worker: the resource ``GPU`` for a learned codec's pair on a CUDA run."""
    gpu = str(config.device).startswith("cuda")
    return lambda task: {"GPU": 1} if gpu and families.get(task.codec, "") in GPU_FAMILIES else None


def _row_of(outcome: Outcome[PairTask, PairRow]) -> PairRow:
    if outcome.error is None and outcome.result is not None:
        return outcome.result
    err = outcome.error
    return PairRow(outcome.item.excerpt, outcome.item.codec,
                   error=f"The worker failed on this pair ({type(err).__name__}: {err}).")


def check_codecs(names: Sequence[str]) -> tuple[dict[str, Codec], dict[str, str]]:
    """(the codecs that can run here, one sentence per name that cannot: unknown or unavailable)."""
    runnable: dict[str, Codec] = {}
    refused: dict[str, str] = {}
    for name in names:
        try:
            codec = get_codec(name)
        except ConfigError:
            refused[name] = f'Unknown codec "{name}"; `mosapp codecs` lists the names this mosapp has.'
            continue
        availability = codec.availability()
        if availability.ok:
            runnable[name] = codec
        else:
            refused[name] = f'The codec "{name}" cannot run here: {availability.reason}'
    return runnable, refused


def run_record(record: dict[str, Any], result: EvaluationResult) -> dict[str, Any]:
    """``run.json``: what was asked (``record``), how it went, the versions and the machine."""
    return {**record, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "complete": not result.stopped,
            "where": result.where,
            "pairs": {"total": result.pairs, "measured_now": result.measured, "reused": result.reused,
                      "failed": result.failed},
            "seconds": round(result.seconds, 3), "versions": _versions(), "machine": _machine()}


def set_metrics(rows: Sequence[PairRow], summary: dict) -> str:
    """FAD (and FAD∞) per codec from the pairs' CLAP embeddings, into ``summary``; returns the table's note."""
    from mosapp.core.fad import MIN_FAD_INF, fad, fad_infinity  # noqa: PLC0415

    sizes = []
    for codec, per in summary.items():
        mine = [r for r in rows if r.codec == codec and r.ok and r.embeddings]
        per["fad"] = per["fad_inf"] = Stat(0, math.nan, math.nan, math.nan, math.nan)
        if len(mine) < 2:
            continue
        reference = np.concatenate([np.asarray(r.embeddings["reference"], np.float64) for r in mine])
        decoded = np.concatenate([np.asarray(r.embeddings["decoded"], np.float64) for r in mine])
        try:
            value, inf = fad(reference, decoded), fad_infinity(reference, decoded)
        except MosappError:
            continue
        per["fad"] = Stat(decoded.shape[0], value, math.nan, math.nan, math.nan)
        per["fad_inf"] = Stat(decoded.shape[0], inf, math.nan, math.nan, math.nan)
        sizes.append(decoded.shape[0])
    if not sizes:
        return "FAD: too few embeddings (at least 2 excerpts per codec)."
    return (f"FAD (CLAP {clap.REPO}, float64) of each codec's decoded excerpts against the excerpts, over "
            f"{min(sizes)}–{max(sizes)} embeddings (one per 10 s window); FAD falls with more clips, so compare it at "
            f"equal counts. FAD∞ (summary.csv, metric fad_inf) from {MIN_FAD_INF} embeddings on.")


def failure_groups(rows: Sequence[PairRow]) -> list[tuple[tuple[str, str | None], str]]:
    """((codec, reason), which excerpts) of the failed rows, one entry per codec and reason."""
    groups: dict[tuple[str, str | None], list[PairRow]] = {}
    for r in rows:
        if not r.ok:
            groups.setdefault((r.codec, r.error), []).append(r)
    return [(key, group[0].excerpt.label if len(group) == 1 else f"{len(group)} excerpts")
            for key, group in groups.items()]


def write_outputs(out: Path, rows: list[PairRow], codecs: Sequence[str], names: Sequence[str],
                  families: dict[str, str], *, plan_problems: Sequence[tuple[str, str]] = (), plots: bool = True,
                  complete: bool = True, pairs_total: int = 0) -> list[Path]:
    """Write clips.csv, timings.csv, failures.csv, summary.csv, summary.md and the rd plots from ``rows``."""
    files = []
    measured = [c for c in codecs if any(r.codec == c and r.ok for r in rows)]
    per_clip = [n for n in names if n not in SET_METRICS]
    summary = summarise(rows, measured, per_clip)
    fad_note = ""
    if "fad" in names:
        fad_note = set_metrics(rows, summary)
    for name, text in (("clips.csv", clips_table(rows, per_clip)), ("timings.csv", timings_csv(rows)),
                       ("failures.csv", failures_csv(rows, plan_problems)),
                       ("summary.csv", summary_csv(summary, families))):
        _write_text(out / name, text)
        files.append(out / name)
    ok = sum(1 for r in rows if r.ok)
    failed = [r for r in rows if not r.ok]
    lines = [f"# Evaluation: {len(measured)} codec(s), {ok} pair(s) measured"
             + ("" if complete else f" (stopped early: {ok} of {pairs_total})"), "",
             "Mean over excerpts ± the half-width of its 95 % t interval; kbps counts the whole .sgc file.", "",
             markdown_table(summary, names) if measured else "No pair was measured.", ""]
    if fad_note:
        lines += [fad_note, ""]
    if failed or plan_problems:
        lines += [f"## Failed ({len(failed) + len(plan_problems)})", ""]
        lines += [f"- `{clip}`: {reason}" for clip, reason in plan_problems]
        lines += [f"- `{codec}` on {which}: {reason}" for (codec, reason), which in failure_groups(rows)]
        lines.append("")
    _write_text(out / "summary.md", "\n".join(lines))
    files.append(out / "summary.md")
    if plots and measured:

        def has_bitrate(c: str) -> bool:
            return families.get(c) not in NO_BITRATE_FAMILIES

        for metric in names:
            files += rd_plot(out / f"rd-{metric}", metric, summary, families, has_bitrate)
    return files


def run_to_end(gen: Generator[Progress, None, EvaluationResult]) -> EvaluationResult:
    """Drive :func:`run_evaluation` without progress (tests, scripts)."""
    return drive(gen)


__all__ = ["DEFAULT_METRICS", "EvaluationError", "EvaluationResult", "PairTask", "check_metrics", "codec_fingerprint",
           "keep_audio_path", "measure_pair", "run_evaluation", "run_to_end", "settings_digest", "write_outputs"]
