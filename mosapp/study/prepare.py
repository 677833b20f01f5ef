"""Rendering a study's stimuli: every (clip, condition) through its codec, level-matched and measured.

::

    source file ─► excerpt (start, length, raised-cosine fades) ─┬─────────────► reference
                                                                 └─► codec.process ─► align ─► trim
    each stimulus ─► objective metrics vs the excerpt ─► BS.1770 loudness to the target ─► <name>.wav

The cache: every stimulus has a ``cache_key``, the SHA-256 of the excerpt's samples and every
setting that shapes the result (codec and its version, pipeline, loudness target, metrics). A
second run finds every key in the database with its file in place and renders nothing; a
changed setting renders only what it changes.

Blinding on disk (nothing in the stimuli folder maps a file to its condition without the
database):

* the file is named ``HMAC-SHA256(study salt, cache_key)[:32].wav``; the salt is a random
  secret per study kept in the database (``studies.stimulus_salt``), so the names cannot be
  recomputed from the study file and the source audio;
* bitrate, loudness, gain, peak, delay and metrics are written to the database only (no
  sidecar file);
* stimuli are rendered in a random order, every file's access and modification time is set
  to :data:`NORMALISED_MTIME`, and the files (re-touched in a random order) are all the same
  size, so neither times, inode order nor sizes follow the conditions;
* the folder is made ``0700`` and every file ``0600`` (the researcher's account only), as is
  a SQLite database file.

A study prepared before this (files named by the bare cache key, ``<key>.json`` sidecars) is
converted by its next ``prepare``: a salt is drawn, files are renamed, sidecars deleted,
nothing rendered again. :func:`prepare_study` is a generator: it yields
:class:`~mosapp.core.job.Progress` (stage ``"prepare"``, ``done`` of ``total`` stimuli; ``detail``
is ``"clip / condition"`` of the one just finished, with `` (cached)`` when it was not rendered
now) and returns a :class:`PrepareResult`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
import secrets
import time
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn

import numpy as np
import pyloudnorm
from sqlalchemy import delete, func, select

from mosapp.codecs import get_codec
from mosapp.core import dsp, metrics
from mosapp.core.audio import probe_audio, read_audio, read_excerpt, resample
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig
from mosapp.core.errors import MosappError
from mosapp.core.job import Progress, drive
from mosapp.evaluation.engine import Engine
from mosapp.evaluation.evaluate import align_and_trim, estimate_delay, measure_steps
from mosapp.evaluation.results import write_float_wav
from mosapp.study.definition import REFERENCE, ClipSpec, StudyDefinition
from mosapp.study.errors import StudyError
from mosapp.study.store import (
    ClipRow,
    ConditionRow,
    ListenerRow,
    StimulusRow,
    Store,
    StudyRow,
    TrialRow,
    _sqlite_file,
    utcnow,
    write_stimulus_metrics,
)

#: Bumped when rendering changes in a way the key would not otherwise see.
RENDER_VERSION = 1
#: Largest codec delay the alignment looks for.
MAX_DELAY_S = 0.1
#: Peak above which a normalised stimulus would clip on a fixed-point output.
CLIP_WARN_DBFS = -0.1
#: Access and modification time of every stimulus file: 2000-01-01 00:00:00 UTC.
NORMALISED_MTIME = 946684800
#: Permissions of the stimuli folder and its files: the researcher's account only.
DIR_MODE, FILE_MODE = 0o700, 0o600


@dataclass
class PrepareResult:
    """What a prepare run did."""

    total: int = 0
    rendered: int = 0
    reused: int = 0
    seconds: float = 0.0
    device: str = ""
    warnings: list[str] = field(default_factory=list)


# -- signal helpers ------------------------------------------------------------------------


def fade(samples: np.ndarray, fade_ms: float, rate: int = PIPELINE_SAMPLE_RATE) -> np.ndarray:
    """Raised-cosine fade in and out of ``fade_ms`` on a copy of ``(channels, n)`` samples."""
    out = np.array(samples, dtype=np.float32, copy=True)
    n = int(round(fade_ms * rate / 1000.0))
    if n <= 0:
        return out
    n = min(n, out.shape[1] // 2)
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)
    out[:, :n] *= ramp
    out[:, out.shape[1] - n:] *= ramp[::-1]
    return out


def integrated_loudness(samples: np.ndarray, rate: int = PIPELINE_SAMPLE_RATE) -> float:
    """ITU-R BS.1770-4 integrated loudness in LUFS (pyloudnorm; K-weighting, gating)."""
    data = np.asarray(samples, dtype=np.float64)
    data = data[0] if data.shape[0] == 1 else data.T
    return float(pyloudnorm.Meter(rate).integrated_loudness(data))


def stimulus_metrics(reference: np.ndarray, estimate: np.ndarray, names: tuple[str, ...],
                     pipeline: PipelineConfig) -> dict[str, float | None]:
    """The requested :mod:`mosapp.core.metrics` of ``estimate`` against ``reference`` (mono mixes,
    whole-track :func:`mosapp.core.metrics.score`, STFT metrics on the pipeline's lattice); None
    where a value is not finite."""
    ref = np.asarray(reference, dtype=np.float32).mean(axis=0)
    est = np.asarray(estimate, dtype=np.float32).mean(axis=0)
    scores = metrics.score(ref, est, PIPELINE_SAMPLE_RATE, names, geometry=pipeline.geometry)
    return {name: float(v) if v is not None and math.isfinite(v) else None for name, v in scores.items()}


# -- keys and the cache folder --------------------------------------------------------------


def excerpt_of(audio: np.ndarray, clip: ClipSpec, fade_ms: float) -> np.ndarray:
    start = int(round(clip.start_s * PIPELINE_SAMPLE_RATE))
    n = int(round(clip.length_s * PIPELINE_SAMPLE_RATE))
    if start + n > audio.shape[1]:
        have = audio.shape[1] / PIPELINE_SAMPLE_RATE
        raise StudyError(
            f'The clip "{clip.name}" ({clip.start_s:g}-{clip.start_s + clip.length_s:g} s) runs past the end of '
            f"{clip.path} ({have:.3f} s long); shorten length_s or move start_s."
        )
    return fade(audio[:, start: start + n], fade_ms)


#: A source at another rate than the pipeline's, longer than this (seconds), is read by seeking
#: too (a window around the excerpt, resampled); a shorter one is read whole, as it always was,
#: so its excerpts (and their cache keys) stay exactly what they were.
SEEK_RESAMPLED_FROM_S = 600.0
#: Seconds read on each side of an excerpt of such a source, for the resampler's filter.
_SEEK_MARGIN_S = 0.5


def _seek_excerpt(clip: ClipSpec, mono: bool) -> np.ndarray | None:
    """The excerpt at the pipeline rate, read by seeking (never decoding the whole source), or None
    where the source is read whole instead (another rate and short: see :data:`SEEK_RESAMPLED_FROM_S`).

    At the pipeline rate this is exactly the slice of the whole file :func:`excerpt_of` takes.
    """
    info = probe_audio(clip.path)
    rate = info.sample_rate
    if rate != PIPELINE_SAMPLE_RATE and info.frames / max(rate, 1) <= SEEK_RESAMPLED_FROM_S:
        return None
    n = int(round(clip.length_s * PIPELINE_SAMPLE_RATE))
    have = info.frames / rate
    if rate == PIPELINE_SAMPLE_RATE:
        start = int(round(clip.start_s * PIPELINE_SAMPLE_RATE))
        audio = read_excerpt(clip.path, start / rate, n / rate, mono=mono)
        samples = audio.samples
    else:
        begin = max(0.0, clip.start_s - _SEEK_MARGIN_S)
        audio = read_excerpt(clip.path, begin, clip.start_s + clip.length_s + _SEEK_MARGIN_S - begin, mono=mono)
        window = resample(audio.samples, rate, PIPELINE_SAMPLE_RATE)
        offset = int(round((clip.start_s - begin) * PIPELINE_SAMPLE_RATE))
        samples = window[:, offset: offset + n] if offset + n <= window.shape[1] else window[:, :0]
    if samples.shape[1] < n:
        raise StudyError(
            f'The clip "{clip.name}" ({clip.start_s:g}-{clip.start_s + clip.length_s:g} s) runs past the end of '
            f"{clip.path} ({have:.3f} s long); shorten length_s or move start_s."
        )
    return np.ascontiguousarray(samples[:, :n])


def render_key(excerpt: np.ndarray, condition: str, definition: StudyDefinition) -> str:
    """The content hash that names a stimulus: same key, same audio and numbers."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(excerpt, dtype=np.float32).tobytes())
    spec: dict = {
        "render": RENDER_VERSION,
        "shape": list(excerpt.shape),
        "condition": condition,
        "loudness_lufs": definition.loudness_lufs,
        "metrics": sorted(definition.metrics) if condition != REFERENCE else [],
    }
    if condition != REFERENCE:
        p = definition.pipeline
        spec["codec_version"] = get_codec(condition).version
        spec["pipeline"] = [p.geometry, p.phase, p.fgla_iterations, p.mono, p.image.dynamic_range_db,
                            p.image.floor_db, p.block_seconds, p.context_frames]
    h.update(json.dumps(spec, sort_keys=True).encode())
    return h.hexdigest()


def new_salt() -> str:
    """A fresh per-study secret for :func:`stimulus_file_name` (256 random bits, hex)."""
    return secrets.token_hex(32)


def stimulus_file_name(salt: str, key: str) -> str:
    """The file name of the stimulus with ``cache_key`` ``key`` in a study salted with ``salt``."""
    return hmac.new(bytes.fromhex(salt), key.encode("ascii"), hashlib.sha256).hexdigest()[:32] + ".wav"


def _restrict(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except OSError:  # pragma: no cover - a file system without permissions (FAT): nothing to restrict
        pass


def _normalise_times(path: Path) -> None:
    try:
        os.utime(path, (NORMALISED_MTIME, NORMALISED_MTIME))
    except OSError:  # pragma: no cover
        pass


def write_plain_wav(path: Path, samples: np.ndarray, rate: int = PIPELINE_SAMPLE_RATE) -> None:
    """``(channels, n)`` float32 samples as a WAV file holding nothing but the audio, atomically
    (:func:`mosapp.evaluation.results.write_float_wav`: no ``PEAK`` chunk, which would tell conditions
    apart and date the file; every stimulus of one length has the same header and size)."""
    write_float_wav(path, samples, rate, error=StudyError)


def _seal_folder(folder: Path, files: list[Path], ours: bool = True) -> None:
    """Permissions and times of the stimuli: files 0600 with normalised times, touched in a random order;
    the folder too where mosapp made it (``ours``), never a folder the user already had."""
    order = list(files)
    secrets.SystemRandom().shuffle(order)
    for f in order:
        if f.is_file():
            _restrict(f, FILE_MODE)
            _normalise_times(f)
    if ours:
        _restrict(folder, DIR_MODE)
        _normalise_times(folder)


_STIMULUS_ENTRY = re.compile(r"[0-9a-f]{32,64}\.(wav|json)|\..*\.tmp")


def _stimuli_only(folder: Path) -> bool:
    """Whether ``folder`` looks like one mosapp made: a private folder (0700) holding nothing but
    stimulus files (an earlier prepare's), so its mode and times are mosapp's to set."""
    try:
        if not folder.is_dir() or folder.stat().st_mode & 0o777 != DIR_MODE:
            return False
        return all(_STIMULUS_ENTRY.fullmatch(e.name) for e in os.scandir(folder))
    except OSError:
        return False


def _restrict_database(store: Store) -> None:
    path = _sqlite_file(store.url)
    if path is None:
        return
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if p.is_file():
            _restrict(p, FILE_MODE)


@dataclass(frozen=True)
class RenderedStimulus:
    """What rendering one stimulus measured: the facts its database row holds (never a file's).

    Attributes:
        sample_rate, channels, n_samples: the normalised audio's shape.
        loudness_lufs: BS.1770 loudness before normalisation; ``gain_db`` the gain that normalised it.
        peak_dbfs: the normalised audio's peak (None: silent).
        payload_kbps: the codec's payload bitrate (None: the reference).
        delay_samples: the codec delay undone by alignment.
        metrics: every metric the study asks for, by registry name (None: not finite, or the reference).
        render_seconds: how long rendering took.
    """

    sample_rate: int
    channels: int
    n_samples: int
    loudness_lufs: float
    gain_db: float
    peak_dbfs: float | None
    payload_kbps: float | None
    delay_samples: int
    metrics: dict[str, float | None]
    render_seconds: float


def _coded(excerpt: np.ndarray, condition: str, definition: StudyDefinition,
           device: str) -> tuple[np.ndarray, float | None, int, dict[str, float | None]]:
    """The excerpt through ``condition``'s codec in memory, aligned to the excerpt and scored as the
    study asks: (decoded samples, payload kbit/s, delay undone, metrics); the reference as it is."""
    if condition == REFERENCE:
        return excerpt, None, 0, {m: None for m in definition.metrics}
    config = replace(definition.pipeline, device=device)
    stored: dict[str, float | None] = {}

    def scorer(reference: np.ndarray, decoded: np.ndarray) -> Generator[Progress, None, dict[str, float]]:
        yield Progress("metrics", 0, 1, detail=", ".join(definition.metrics))
        stored.update(stimulus_metrics(reference, decoded, definition.metrics, config))
        return {k: math.nan if v is None else v for k, v in stored.items()}

    measured = drive(measure_steps(get_codec(condition), excerpt, config, container_file=False, visqol=False,
                                   scorer=scorer, max_delay_samples=int(MAX_DELAY_S * PIPELINE_SAMPLE_RATE)))
    return measured.decoded, measured.payload_kbps, measured.delay_samples, stored


def render_stimulus(excerpt: np.ndarray, condition: str, definition: StudyDefinition,
                    device: str) -> tuple[np.ndarray, RenderedStimulus]:
    """Render one stimulus: (samples float32 ``(channels, n)`` normalised, what was measured)."""
    t0 = time.perf_counter()
    out, payload_kbps, delay_samples, scores = _coded(excerpt, condition, definition, device)
    loudness = integrated_loudness(out)
    if not math.isfinite(loudness):
        raise StudyError(
            f'The {condition} stimulus of a clip is silent (loudness {loudness} LUFS), so it cannot be '
            f"loudness-normalised; choose an excerpt with sound in it."
        )
    gain_db = definition.loudness_lufs - loudness
    out = (out * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    return out, RenderedStimulus(
        sample_rate=PIPELINE_SAMPLE_RATE, channels=int(out.shape[0]), n_samples=int(out.shape[1]),
        loudness_lufs=loudness, gain_db=gain_db, peak_dbfs=20.0 * math.log10(peak) if peak > 0 else None,
        payload_kbps=payload_kbps, delay_samples=delay_samples, metrics=scores,
        render_seconds=time.perf_counter() - t0)


@dataclass(frozen=True)
class RenderTask:
    """One stimulus to render (what an engine worker is sent)."""

    excerpt: np.ndarray
    condition: str
    definition: StudyDefinition
    device: str
    clip: str


def render_task(task: RenderTask) -> tuple[np.ndarray, RenderedStimulus]:
    """:func:`render_stimulus` of a :class:`RenderTask` (module level, so Dask workers can import it)."""
    return render_stimulus(task.excerpt, task.condition, task.definition, task.device)


# -- the study in the database ----------------------------------------------------------------


def _sync_design(session, definition: StudyDefinition) -> StudyRow:
    """Create or update the study's rows; refuse a design change once listeners exist."""
    study = session.scalars(select(StudyRow).where(StudyRow.name == definition.name)).one_or_none()
    if study is not None:
        definition = definition.with_stored_seed(study.design_json)
    design = definition.design_json()
    now = utcnow()
    if study is None:
        study = StudyRow(name=definition.name, title=definition.title, test_type=definition.test_type,
                         definition_toml=definition.text, design_json=design, created_at=now)
        session.add(study)
        session.flush()
    elif study.design_json != design:
        listeners = session.scalar(select(func.count()).select_from(ListenerRow).where(ListenerRow.study_id == study.id))
        if listeners:
            raise StudyError(
                f'The study "{definition.name}" in {definition.source or "its definition"} changed its design '
                f"(clips, conditions, trials or seed) after {listeners} listener(s) started; restore it, or save "
                f"it under a new name to start a new study."
            )
    if study.design_json != design:
        study.prepared_at = None  # set again when every stimulus is in place
    study.title = definition.title
    study.test_type = definition.test_type
    study.definition_toml = definition.text
    study.design_json = design

    clip_names = [c.name for c in definition.clips]
    cond_names = list(definition.conditions) + ([] if REFERENCE in definition.conditions else [REFERENCE])
    clips = {c.name: c for c in session.scalars(select(ClipRow).where(ClipRow.study_id == study.id))}
    conds = {c.name: c for c in session.scalars(select(ConditionRow).where(ConditionRow.study_id == study.id))}
    stale_clips = [c.id for n, c in clips.items() if n not in clip_names]
    stale_conds = [c.id for n, c in conds.items() if n not in cond_names]
    if stale_clips or stale_conds:
        session.execute(delete(StimulusRow).where(StimulusRow.study_id == study.id,
                                                  (StimulusRow.clip_id.in_(stale_clips))
                                                  | (StimulusRow.condition_id.in_(stale_conds))))
        session.execute(delete(ClipRow).where(ClipRow.id.in_(stale_clips)))
        session.execute(delete(ConditionRow).where(ConditionRow.id.in_(stale_conds)))
    for i, spec in enumerate(definition.clips):
        row = clips.get(spec.name) or ClipRow(study_id=study.id, name=spec.name)
        row.source_file, row.start_s, row.length_s, row.position = str(spec.path), spec.start_s, spec.length_s, i
        session.add(row)
    for i, name in enumerate(cond_names):
        row = conds.get(name) or ConditionRow(study_id=study.id, name=name)
        row.is_reference = name == REFERENCE
        row.in_plan = name in definition.conditions
        row.nominal_kbps = None if name == REFERENCE else get_codec(name).nominal_kbps
        row.position = i if name in definition.conditions else len(cond_names)
        session.add(row)
    session.flush()
    return study


def _check_conditions(definition: StudyDefinition) -> list[str]:
    """The condition names to render, the reference first; refuse one that cannot run here."""
    cond_names = [REFERENCE] + [c for c in definition.conditions if c != REFERENCE]
    for name in cond_names[1:]:
        availability = get_codec(name).availability()
        if not availability.ok:
            raise StudyError(f'The condition "{name}" cannot run on this machine: {availability.reason}')
    return cond_names


def _open_folder(folder: Path) -> bool:
    """Make the stimuli folder (writable); returns whether it is mosapp's to seal (:func:`_seal_folder`).

    Only a folder mosapp made (now, or before: private and holding nothing but stimuli) gets its
    permissions and times set; ``stimuli_dir = "/tmp"`` or "." is used as it is, never chmodded."""
    ours = not folder.exists() or _stimuli_only(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyError(f"The stimuli folder {folder} cannot be created ({exc.strerror or exc}).") from None
    if not os.access(folder, os.W_OK):
        raise StudyError(f"The stimuli folder {folder} is read-only; give mosapp write access to it.")
    return ours


def _excerpts_and_keys(definition: StudyDefinition, cond_names: list[str]
                       ) -> tuple[dict[str, np.ndarray], dict[tuple[str, str], str]]:
    """Every clip's excerpt and every (clip, condition)'s :func:`render_key` (cheap: nothing is
    rendered), so a change that would alter rated audio can be refused up front."""
    sources: dict[Path, np.ndarray] = {}
    excerpts: dict[str, np.ndarray] = {}
    keys: dict[tuple[str, str], str] = {}
    gold_conditions: dict[str, set[str]] = {}
    for g in definition.gold:
        gold_conditions.setdefault(g.clip, set()).add(g.condition)
    for clip in definition.clips:
        try:
            seek = _seek_excerpt(clip, definition.pipeline.mono)
            if seek is None and clip.path not in sources:
                sources[clip.path] = read_audio(clip.path, mono=definition.pipeline.mono).samples
        except MosappError as exc:
            raise StudyError(f'The clip "{clip.name}" cannot be used: {exc}') from None
        excerpts[clip.name] = fade(seek, definition.fade_ms) if seek is not None else \
            excerpt_of(sources[clip.path], clip, definition.fade_ms)
        names = cond_names if not clip.gold_only else [REFERENCE] + sorted(gold_conditions[clip.name] - {REFERENCE})
        for name in names:
            keys[(clip.name, name)] = render_key(excerpts[clip.name], name, definition)
    return excerpts, keys


@dataclass
class _Preparation:
    """One prepare run's state once the design is in the database: the keys to render, the rows they
    go to, and what has been written so far."""

    definition: StudyDefinition
    store: Store
    folder: Path
    keys: dict[tuple[str, str], str]
    result: PrepareResult
    study_id: int = 0
    salt: str = ""
    clip_ids: dict[str, int] = field(default_factory=dict)
    cond_ids: dict[str, int] = field(default_factory=dict)
    #: (clip id, condition id) → (cache key, audio file) as the database held them before this run.
    existing: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    done: int = 0

    def ids(self, clip_name: str, name: str) -> tuple[int, int]:
        return self.clip_ids[clip_name], self.cond_ids[name]

    def wav(self, clip_name: str, name: str) -> Path:
        return self.folder / stimulus_file_name(self.salt, self.keys[(clip_name, name)])

    def sync(self) -> None:
        """The study's rows made or updated (:func:`_sync_design`), its salt drawn, what the database
        holds read; refuses settings that would change the audio of stimuli listeners have planned."""
        definition, keys = self.definition, self.keys
        with self.store.write() as s:
            study = _sync_design(s, definition)
            self.study_id = study_id = study.id
            if study.stimulus_salt is None:
                study.stimulus_salt = new_salt()
            self.salt = study.stimulus_salt
            self.clip_ids = {c.name: c.id for c in s.scalars(select(ClipRow).where(ClipRow.study_id == study_id))}
            self.cond_ids = {c.name: c.id for c in s.scalars(select(ConditionRow).where(ConditionRow.study_id == study_id))}
            self.existing = {(r.clip_id, r.condition_id): (r.cache_key, r.audio_file)
                             for r in s.scalars(select(StimulusRow).where(StimulusRow.study_id == study_id))}
            changed = [ck for ck, key in keys.items()
                       if self.ids(*ck) in self.existing and self.existing[self.ids(*ck)][0] != key]
            missing = [ck for ck in keys if self.ids(*ck) not in self.existing]
            if changed or missing:
                study.prepared_at = None  # listeners wait until every stimulus is in place
            if changed:
                planned = s.scalar(select(func.count()).select_from(TrialRow).join(
                    StimulusRow, TrialRow.stimulus_id == StimulusRow.id).where(StimulusRow.study_id == study_id))
                if planned:
                    changed_clip, changed_cond = changed[0]
                    raise StudyError(
                        f'The study "{definition.name}" already has listeners, and its settings (pipeline, loudness '
                        f'or metrics) now change the audio of {len(changed)} stimuli (e.g. clip "{changed_clip}", '
                        f'condition "{changed_cond}"); restore the settings, or save the study under a new name.'
                    )

    def record(self, clip_name: str, name: str, wav: Path, rendered: RenderedStimulus | None) -> None:
        """Write the stimulus row of (clip, condition): its key and file, and what rendering measured
        (None: a cached stimulus, renamed; its measurements stay)."""
        clip_id, cond_id = self.ids(clip_name, name)
        with self.store.write() as s:
            row = s.scalars(select(StimulusRow).where(StimulusRow.clip_id == clip_id,
                                                      StimulusRow.condition_id == cond_id)).one_or_none()
            if row is None:
                row = StimulusRow(study_id=self.study_id, clip_id=clip_id, condition_id=cond_id)
                s.add(row)
            row.cache_key, row.audio_file = self.keys[(clip_name, name)], wav.name
            if rendered is None:
                return
            row.sample_rate, row.channels, row.n_samples = rendered.sample_rate, rendered.channels, rendered.n_samples
            row.payload_kbps = rendered.payload_kbps
            row.loudness_lufs, row.gain_db = float(rendered.loudness_lufs), float(rendered.gain_db)
            row.peak_dbfs, row.delay_samples = rendered.peak_dbfs, rendered.delay_samples
            row.created_at = utcnow()
            s.flush()
            write_stimulus_metrics(s, row.id, rendered.metrics)

    def reuse_cached(self, work: list[tuple[str, str]], force: bool) -> Generator[Progress, None, list[tuple[str, str]]]:
        """Take what the cache holds (renamed to salted names where it was prepared before them);
        returns the rest, to be rendered."""
        to_render: list[tuple[str, str]] = []
        for clip_name, name in work:
            key, wav = self.keys[(clip_name, name)], self.wav(clip_name, name)
            old_key, old_file = self.existing.get(self.ids(clip_name, name), ("", ""))
            cached = False
            if not force and old_key == key:
                if old_file != wav.name and (self.folder / old_file).is_file():
                    # Prepared before salted names: rename it (nothing is rendered again), drop the sidecar.
                    os.replace(self.folder / old_file, wav)
                    (self.folder / f"{Path(old_file).stem}.json").unlink(missing_ok=True)
                cached = wav.is_file()
            if not cached:
                to_render.append((clip_name, name))
                continue
            self.written.append(wav)
            if old_file != wav.name:
                self.record(clip_name, name, wav, None)
            self.done += 1
            self.result.reused += 1
            yield Progress("prepare", self.done, self.result.total, unit="stimuli", detail=f"{clip_name} / {name} (cached)")
        return to_render

    def render(self, tasks: list[RenderTask], workers: int | None, scheduler: str | None) -> Generator[Progress, None, None]:
        """Render on the engine (this process, every core, or a Dask cluster), each stimulus written and
        recorded the moment it arrives, so a stopped prepare keeps what it rendered."""
        with Engine(workers=workers if len(tasks) > 1 else 0, scheduler=scheduler if tasks else None) as engine:
            if tasks and not engine.in_process:
                yield Progress("prepare", self.done, self.result.total, unit="stimuli",
                               detail=f"rendering on {engine.describe()}")
            for outcome in engine.map_unordered(render_task, tasks, resources=lambda t: {"GPU": 1}
                                                if str(t.device).startswith("cuda") else None):
                clip_name, name = outcome.item.clip, outcome.item.condition
                if outcome.error is not None:
                    _raise_render_failure(outcome.error, clip_name, name)
                assert outcome.result is not None
                samples, rendered = outcome.result
                self.store_rendered(clip_name, name, samples, rendered)
                self.done += 1
                self.result.rendered += 1
                yield Progress("prepare", self.done, self.result.total, unit="stimuli", detail=f"{clip_name} / {name}")

    def store_rendered(self, clip_name: str, name: str, samples: np.ndarray, rendered: RenderedStimulus) -> None:
        """Write a rendered stimulus's file (private, normalised times) and its row; warn of clipping."""
        wav = self.wav(clip_name, name)
        write_plain_wav(wav, samples)
        _restrict(wav, FILE_MODE)
        _normalise_times(wav)
        if rendered.peak_dbfs is not None and rendered.peak_dbfs > CLIP_WARN_DBFS:
            self.result.warnings.append(
                f'clip "{clip_name}" in condition "{name}" peaks at {rendered.peak_dbfs:+.1f} dBFS after '
                f"normalising to {self.definition.loudness_lufs:g} LUFS; lower loudness_lufs to avoid clipping on playback."
            )
        self.written.append(wav)
        self.record(clip_name, name, wav, rendered)

    def finish(self, ours: bool) -> None:
        """Drop stale sidecars, seal the folder and the database file, and mark the study prepared."""
        # Sidecars of a study prepared before salted names that were not renamed (a stale key).
        for clip_name, name in self.keys:
            old = self.existing.get(self.ids(clip_name, name), ("", ""))[1]
            if old and re.fullmatch(r"[0-9a-f]{64}\.wav", old):
                (self.folder / f"{Path(old).stem}.json").unlink(missing_ok=True)
        _seal_folder(self.folder, self.written, ours)
        _restrict_database(self.store)
        with self.store.write() as s:
            prepared = s.get(StudyRow, self.study_id)
            assert prepared is not None  # made above; a study is never deleted
            prepared.prepared_at = utcnow()


def _raise_render_failure(failure: BaseException, clip_name: str, name: str) -> NoReturn:
    """A worker's failure as the one sentence a user reads (a bug's exception as it is)."""
    if isinstance(failure, StudyError):
        raise StudyError(f'Clip "{clip_name}": {failure}') from None
    if isinstance(failure, MosappError):
        raise StudyError(f'Rendering clip "{clip_name}" in condition "{name}" failed: {failure}') from None
    raise failure


def prepare_study(definition: StudyDefinition, store: Store, *, device: str | None = None,
                  force: bool = False, workers: int | None = 0,
                  scheduler: str | None = None) -> Generator[Progress, None, PrepareResult]:
    """Render and record every stimulus of ``definition`` (a generator; see the module docstring).

    Args:
        definition: the study.
        store: its open database.
        device: ``auto`` | ``cpu`` | ``cuda``; default the study's pipeline setting (auto: CUDA
            when present).
        force: render again even what the cache holds.
        workers: render on a local Dask cluster of this many worker processes (None: one per
            core; 0, the default: in this process, one stimulus after the other).
        scheduler: render on the Dask cluster of this scheduler address instead.

    Raises:
        StudyError: a codec is unavailable, a clip is unreadable, too short or silent, the
            stimuli folder cannot be written, or the design changed after listeners started.
    """
    t_start = time.perf_counter()
    device = device or definition.pipeline.device
    result = PrepareResult(device=str(dsp.resolve_device(device)))
    cond_names = _check_conditions(definition)
    ours = _open_folder(definition.stimuli_dir)
    excerpts, keys = _excerpts_and_keys(definition, cond_names)
    result.total = len(keys)
    run = _Preparation(definition, store, definition.stimuli_dir, keys, result)
    run.sync()
    if ours:
        _restrict(run.folder, DIR_MODE)
    yield Progress("prepare", 0, result.total, unit="stimuli")
    # A random order: the order files are created in (inode numbers, change times) carries nothing.
    work = list(keys)
    secrets.SystemRandom().shuffle(work)
    to_render = yield from run.reuse_cached(work, force)
    yield from run.render([RenderTask(excerpts[c], n, definition, device, c) for c, n in to_render], workers, scheduler)
    run.finish(ours)
    result.seconds = time.perf_counter() - t_start
    return result


__all__ = [
    "NORMALISED_MTIME", "PrepareResult", "RenderedStimulus", "align_and_trim", "estimate_delay", "excerpt_of", "fade",
    "integrated_loudness", "new_salt", "prepare_study", "render_key", "render_stimulus", "stimulus_file_name",
    "stimulus_metrics",
]
