"""Study definitions: the TOML schema of ``studies/<name>.toml``, validated into frozen dataclasses.

A study file is flat TOML; every path in it is relative to the file itself::

    title = "Spectrogram codecs at low bitrates"
    test_type = "dcr"                 # dcr (DMOS, P.800 Annex D) | acr (MOS, P.800 Annex B) | mushra | ccr
    instructions = "Rate how much the second sample is degraded compared with the first."
    labels = ["…1…", "…2…", "…3…", "…4…", "…5…"]   # optional; P.800 wording by default
    conditions = ["reference", "pghi-only", "opus-12", "lowpass-3.5k"]
    trials_per_listener = 12          # optional; default clips x conditions x repetitions
    repetitions = 1
    seed = 2024                       # optional, for reproducible demos only: the plan is then NOT blind
    loudness_lufs = -23.0             # ITU-R BS.1770 integrated loudness of every stimulus
    fade_ms = 20.0
    database = "data/demo/study.sqlite"   # optional; a path, or any SQLAlchemy URL
    stimuli_dir = "data/demo/stimuli"     # optional

    [training]
    trials = 2
    conditions = ["reference", "lowpass-3.5k"]   # optional; default: all, in turn

    [pipeline]
    geometry = "thesis"
    phase = "pghi+fgla"
    device = "auto"
    metrics = ["mel_distance", "si_sdr_db", "spectral_convergence_db", "visqol", "low_band_distance_db"]

    [[clips]]
    path = "../assets/demo/pluck-demo.flac"   # a file or a glob
    start_s = [0.0, 4.0, 8.0]                 # one excerpt per start
    length_s = 4.0
    name = "pluck"                            # optional; default: the file's stem
    # gold_only = true                        # used only by gold trials

    reference_first = false           # optional, DCR: the reference is heard before the sample (P.800)
    [screening]                       # or screening = "off" | "reference" | "bs1534"
    rule = "reference"                # default with a hidden reference; DCR without one must say "off"
    min_reference_trials = 7          # fewer: the listener is kept and flagged, not judged
    [[gold]]                          # known-answer trials (P.808), scored by the screening
    clip = "pluck@0s"
    condition = "reference"
    expected = [4, 5]

Every condition is a codec name (:func:`mosapp.codecs.get_codec`) or ``reference``, the
original excerpt (loudness-normalised like every stimulus), which is the hidden reference.

``test_type`` names a registered test type (:mod:`mosapp.study.types`); what depends on it
(default labels and instructions, which conditions, trials and training it accepts, its
screening, gold trials, ``reference_first``) the type answers, so :func:`parse_study` names
none. The tables' specs and :class:`~mosapp.study.schema.Reader` are in :mod:`mosapp.study.schema`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import soundfile as sf
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mosapp.codecs import get_codec
from mosapp.core import toml
from mosapp.core.config import FGLA_ITERATIONS_RANGE, GEOMETRIES, PipelineConfig
from mosapp.core.errors import MosappError
from mosapp.core.files import bounded_glob
from mosapp.core.metrics import STUDY_METRIC_NAMES
from mosapp.phase import backend_names
from mosapp.study.errors import StudyError
from mosapp.study.schema import (
    MAX_CLIPS,
    MAX_CONDITIONS,
    MAX_EXCERPT_S,
    MAX_FADE_MS,
    MAX_RENDERED_S,
    MAX_REPETITIONS,
    MAX_SEED,
    MAX_START_S,
    MAX_TRAINING_TRIALS,
    MAX_TRIALS_PER_LISTENER,
    MIN_EXCERPT_S,
    REFERENCE,
    SCREENING_RULES,
    ClipSpec,
    GoldSpec,
    Reader,
    ScreeningSpec,
    TrainingSpec,
)
from mosapp.study.types import TestType, get_test_type, known_names, type_names

#: Objective metrics a stimulus can carry (the registry's :data:`mosapp.core.metrics.STUDY_METRIC_NAMES`).
METRIC_NAMES = STUDY_METRIC_NAMES

_TOP_FIELDS = {
    "name", "title", "test_type", "instructions", "labels", "conditions", "trials_per_listener",
    "repetitions", "seed", "loudness_lufs", "fade_ms", "database", "stimuli_dir",
    "training", "pipeline", "clips", "screening", "reference_first", "gold",
}
_GOLD_FIELDS = {"clip", "condition", "expected"}
_TRAINING_FIELDS = {"trials", "conditions"}
_PIPELINE_FIELDS = {"geometry", "phase", "device", "fgla_iterations", "mono", "metrics"}
_CLIP_FIELDS = {"path", "start_s", "length_s", "name", "gold_only"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class StudyDefinition:
    """A validated study file.

    Attributes:
        name: the study's name (the file's stem unless ``name`` is set); its key in the database.
        title: shown to listeners.
        test_type: the test type's name (``dcr``, ``acr``, ``mushra``, ``ccr``: :mod:`mosapp.study.types`).
        instructions: shown to listeners before the first trial.
        labels: the labels of the scale (five for 1..5 and MUSHRA's bands, seven for CCR).
        clips: the excerpts.
        conditions: condition names in file order (codec names and ``reference``).
        training: training trials.
        trials_per_listener: rated (non-training) trials per listener.
        repetitions: how often each (clip, condition) pair can recur in one listener's plan.
        seed: randomisation seed of every plan, when the study file sets one (``seed_in_file``);
            0 otherwise, and the plans use the secret seed drawn at preparation instead
            (:meth:`plan_seed`).
        loudness_lufs: integrated loudness (ITU-R BS.1770) every stimulus is normalised to.
        fade_ms: raised-cosine fade in and out of every excerpt.
        pipeline: codec settings for spectrogram codecs.
        metrics: objective metrics stored per stimulus.
        database_url: SQLAlchemy URL of the store.
        stimuli_dir: folder of the rendered stimuli (content-addressed files).
        screening: the post-screening rule.
        reference_first: DCR only: the reference must be played (to its end) before the sample
            on every trial, as ITU-T P.800 Annex D presents the pair.
        gold: gold trials added to every listener's plan.
        source: the TOML file, or None.
    """

    name: str
    title: str
    test_type: str
    instructions: str
    labels: tuple[str, ...]
    clips: tuple[ClipSpec, ...]
    conditions: tuple[str, ...]
    training: TrainingSpec
    trials_per_listener: int
    repetitions: int
    seed: int
    loudness_lufs: float
    fade_ms: float
    pipeline: PipelineConfig
    metrics: tuple[str, ...]
    database_url: str
    stimuli_dir: Path
    source: Path | None = None
    text: str = field(default="", repr=False)
    screening: ScreeningSpec = field(default_factory=ScreeningSpec)
    reference_first: bool = False
    gold: tuple[GoldSpec, ...] = ()
    #: The study file sets ``seed``: plans are reproducible from the file (demos), hence not blind.
    seed_in_file: bool = True

    def plan_seed(self, salt: str | None) -> int:
        """The seed every listener's plan is drawn from.

        With ``seed`` in the study file: that seed (anyone with the file and a listener's
        enrolment number can rebuild that listener's plan: fine for a demo, **not blind**).
        Without it: a secret derived from the study's ``stimulus_salt``, the random secret drawn
        by ``mosapp study prepare`` and kept only in the database:
        ``int(HMAC-SHA256(salt, "mosapp plan seed")[:8]) >> 1`` (63 bits). ``salt`` None (not
        prepared): :class:`StudyError`.
        """
        if self.seed_in_file:
            return int(self.seed)
        if not salt:
            raise StudyError(f'The study "{self.name}" has no plan seed yet; run `mosapp study prepare` first.')
        digest = hmac.new(bytes.fromhex(salt), b"mosapp plan seed", hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") >> 1

    def blind_note(self) -> str:
        """How the plan was seeded, in one line (the report prints it)."""
        if self.seed_in_file:
            return (f"plan: seed {self.seed} from the study file (reproducible demo; anyone with the file can rebuild "
                    f"every listener's order: not blind)")
        return "plan: secret seed drawn at preparation and kept in the database (blind)"

    @property
    def kind(self) -> TestType:
        """The study's test type (:mod:`mosapp.study.types`): its scale, labels, sessions, export and report."""
        return get_test_type(self.test_type)

    @property
    def scale(self) -> str:
        """``DMOS`` for DCR, ``MOS`` for ACR, ``MUSHRA``, ``CMOS`` for CCR (the test type's)."""
        return self.kind.scale

    @property
    def score_range(self) -> tuple[int, int]:
        """The lowest and highest score of this test type: (1, 5), MUSHRA (0, 100), CCR (-3, 3)."""
        return self.kind.score_range

    @property
    def has_hidden_reference(self) -> bool:
        return REFERENCE in self.conditions

    @property
    def plan_clips(self) -> tuple[ClipSpec, ...]:
        """The clips of the ordinary trials (every clip but the ``gold_only`` ones)."""
        return tuple(c for c in self.clips if not c.gold_only)

    def design(self) -> dict[str, Any]:
        """Everything a listener's plan depends on, as plain JSON-able data."""
        out = {
            "test_type": self.test_type,
            "clips": [[c.name, c.path.name, c.start_s, c.length_s] for c in self.plan_clips],
            "conditions": list(self.conditions),
            "training": [self.training.trials, list(self.training.conditions)],
            "trials_per_listener": self.trials_per_listener,
            "repetitions": self.repetitions,
            "seed": self.seed if self.seed_in_file else "secret",
        }
        if self.gold:  # only then, so a study from before gold trials keeps its design hash
            gold_clips = {c.name: c for c in self.clips if c.gold_only}
            out["gold"] = [[g.clip, g.condition, list(g.expected)] for g in self.gold]
            out["gold_clips"] = [[c.name, c.path.name, c.start_s, c.length_s] for c in gold_clips.values()]
        return out

    def design_json(self) -> str:
        return json.dumps(self.design(), sort_keys=True, separators=(",", ":"))

    def with_stored_seed(self, stored_design: str | None) -> StudyDefinition:
        """This study as prepared before plan seeds were secret, when its database says so.

        A study prepared then recorded the seed its plans were drawn from (0 when its file named
        none). When the file still names none, the recorded seed is kept, so the listeners already
        enrolled keep their plans and the study still opens; it stays as blind as it was then (not:
        the seed is known), and the report says so. Any other study is returned unchanged.
        """
        if self.seed_in_file or not stored_design:
            return self
        try:
            seed = json.loads(stored_design).get("seed")
        except (ValueError, AttributeError):
            return self
        if isinstance(seed, int) and not isinstance(seed, bool):
            return replace(self, seed=seed, seed_in_file=True)
        return self

    def design_hash(self) -> str:
        return hashlib.sha256(self.design_json().encode()).hexdigest()


def _database_url(value: str, base: Path) -> str:
    if "://" in value:
        try:
            make_url(value)
        except (ArgumentError, ValueError):
            raise StudyError(f'The database URL "{value}" is not a valid SQLAlchemy URL.') from None
        return value
    return "sqlite:///" + str((base / value).resolve())


def database_url_for(value: str | os.PathLike[str], base: Path | None = None) -> str:
    """A SQLAlchemy URL for ``value``: a URL is kept, a path (relative to ``base``) becomes SQLite."""
    return _database_url(os.fspath(value), base or Path.cwd())


def _table_readers(where: str, name: str, tables: list[Any], known: set[str],
                   fields: str) -> Iterator[tuple[dict[str, Any], Reader]]:
    """Each table of the array of tables ``name`` with its reader; an entry that is no table is refused."""
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            raise StudyError(f"{where}: field {name}[{i}] must be a table ([[{name}]] with {fields}).")
        yield table, Reader(where, table, f"{name}[{i}].", known)


def _clip_specs(where: str, base: Path, clips: Any) -> tuple[ClipSpec, ...]:
    """``[[clips]]``: each table's files (a path or a glob) times its starts, each excerpt named once."""
    if not isinstance(clips, list) or not clips:
        raise StudyError(f"{where}: field clips is missing or empty; add at least one [[clips]] table with a path.")
    specs: list[ClipSpec] = []
    for table, r in _table_readers(where, "clips", clips, _CLIP_FIELDS, "path, start_s, length_s"):
        pattern = r.string("path", required=True)
        length = r.number("length_s", required=True, minimum=MIN_EXCERPT_S, maximum=MAX_EXCERPT_S)
        starts = _clip_starts(r, table.get("start_s", 0.0))
        paths = _clip_paths(r, pattern, base)
        explicit = r.string("name")
        gold_only = r.boolean("gold_only", False)
        if explicit is not None and len(paths) > 1:
            raise r.fail("name", f'is set but the glob "{pattern}" matches {len(paths)} files; remove name')
        for path in paths:
            specs += _excerpts(r, path, explicit or path.stem, starts, length, gold_only)
    _check_clip_names(where, specs)
    return tuple(specs)


def _clip_starts(r: Reader, value: Any) -> list[float]:
    """``start_s``: one start or a list of them, each in 0..MAX_START_S, none twice."""
    starts_list = value if isinstance(value, list) else [value]
    if not starts_list:
        raise r.fail("start_s", "is an empty list; give a start in seconds or a list of starts")
    starts: list[float] = []
    for s in starts_list:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or not 0 <= s <= MAX_START_S:
            raise r.fail("start_s", f"has {s!r}; give starts in seconds, from 0 to {MAX_START_S:g}")
        starts.append(float(s))
    if len(set(starts)) != len(starts):
        raise r.fail("start_s", "lists the same start twice")
    return starts


def _clip_paths(r: Reader, pattern: str, base: Path) -> list[Path]:
    """``path``: the file, or the files a glob matches (relative to ``base``; the walk is bounded)."""
    full = pattern if os.path.isabs(pattern) else str(base / pattern)
    if not _GLOB_CHARS & set(pattern):
        p = Path(full)
        if not p.is_file():
            state = "is a folder, not an audio file" if p.is_dir() else "does not exist"
            raise r.fail("path", f'"{pattern}": {p} {state}')
        return [p]
    try:  # bounded: "/**/*.wav" is refused after a bounded walk, not after walking the disk
        paths = bounded_glob(full, max_matches=MAX_CLIPS)
    except MosappError as exc:
        raise r.fail("path", f'"{pattern}" {str(exc).rstrip(".")}') from None
    if not paths:
        raise r.fail("path", f'"{pattern}" matches no file (relative to {base})')
    return list(paths)


def _excerpts(r: Reader, path: Path, stem: str, starts: list[float], length: float,
              gold_only: bool) -> list[ClipSpec]:
    """The excerpts of one file: ``stem``, or ``stem@<start>s`` with several starts; each inside the file."""
    duration = _duration_s(path)
    out = []
    for start in starts:
        if duration is not None and start + length > duration + 1e-6:
            raise r.fail("start_s", f"puts the excerpt {start:g}-{start + length:g} s past the end of {path} "
                                    f"({duration:.3f} s long)")
        name = stem if len(starts) == 1 else f"{stem}@{start:g}s"
        out.append(ClipSpec(name=name, path=path.resolve(), start_s=start, length_s=length, gold_only=gold_only))
    return out


def _check_clip_names(where: str, specs: list[ClipSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise StudyError(
                f'{where}: two clips are named "{spec.name}"; give them different name fields or files.'
            )
        if not _NAME_RE.match(spec.name.replace("@", "-")):
            raise StudyError(f'{where}: the clip name "{spec.name}" must be letters, digits, ".", "_" or "-".')
        seen.add(spec.name)


def _duration_s(path: Path) -> float | None:
    """The file's duration from its header, or None where the header cannot tell (read later)."""
    try:
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 — an unreadable file is reported when it is read
        return None
    return info.frames / info.samplerate if info.samplerate > 0 and info.frames > 0 else None


def _check_conditions(where: str, conditions: tuple[str, ...], field_name: str = "conditions") -> None:
    if not conditions:
        raise StudyError(f'{where}: field {field_name} is empty; list codec names and "{REFERENCE}".')
    seen: set[str] = set()
    for i, name in enumerate(conditions):
        if name in seen:
            raise StudyError(f'{where}: field {field_name} lists "{name}" twice; every condition name must be unique.')
        seen.add(name)
        if name == REFERENCE:
            continue
        try:
            get_codec(name)
        except MosappError as exc:
            raise StudyError(f"{where}: field {field_name}[{i}]: {exc}") from None


def parse_study(text: str, *, source: Path | None = None, name: str | None = None,
                check_codecs: bool = True) -> StudyDefinition:
    """Validate the TOML text of a study.

    The fields are read in a fixed order (so the first mistake of a file is the one named); what
    depends on the test type (its conditions, trials, training, screening, gold trials) is asked
    of the type (:mod:`mosapp.study.types`).

    Args:
        text: the file's content.
        source: the file (names it in messages; relative paths are relative to its folder).
        name: the study's name when the file does not set one (default: the file's stem).
        check_codecs: resolve every condition in the codec registry (unknown names fail).

    Raises:
        StudyError: malformed TOML, a field of the wrong type or value, a missing clip file,
            an unknown codec, a duplicate condition or clip name.
    """
    where = str(source) if source is not None else "<study>"
    base = source.resolve().parent if source is not None else Path.cwd()
    try:
        data = toml.loads(text)
    except toml.TOMLDecodeError as exc:
        raise StudyError(f"{where} is not valid TOML ({exc}).") from None
    top = Reader(where, data, "", _TOP_FIELDS)
    study_name = top.string("name", name or (source.stem if source is not None else "study"))
    if not _NAME_RE.match(study_name):
        raise top.fail("name", f'is "{study_name}"; use letters, digits, ".", "_" or "-" (at most 64)')
    kind = _test_type(top)
    title = top.string("title", study_name)
    instructions = top.string("instructions", kind.instructions)
    labels = _labels(top, kind)
    conditions = _conditions(top, check_codecs)
    clips = _clips(top, base, conditions)
    repetitions = top.integer("repetitions", 1, minimum=1, maximum=MAX_REPETITIONS)
    kind.check_conditions(top, conditions)
    trials = _trials(top, kind, sum(not c.gold_only for c in clips), len(conditions), repetitions)
    seed_in_file = top.has("seed")
    seed = top.integer("seed", 0, minimum=0, maximum=MAX_SEED)
    loudness, fade_ms = _levels(top, clips)
    training = _training(top, kind, conditions)
    pipeline, metrics = _pipeline(top, clips)
    database = _database_url(top.string("database", f"data/{study_name}/study.sqlite"), base)
    stimuli_dir = (base / top.string("stimuli_dir", f"data/{study_name}/stimuli")).resolve()
    screening = kind.parse_screening(top, conditions)
    reference_first = top.boolean("reference_first", False)
    if reference_first and not kind.allows_reference_first:
        raise top.fail("reference_first", "is true, but only a DCR study plays a reference; remove it")
    gold = _gold_trials(top, kind, clips, conditions)
    return StudyDefinition(
        name=study_name, title=title, test_type=kind.name, instructions=instructions, labels=labels,
        clips=clips, conditions=conditions, training=training, trials_per_listener=trials,
        repetitions=repetitions, seed=seed, seed_in_file=seed_in_file, loudness_lufs=loudness, fade_ms=fade_ms,
        pipeline=pipeline, metrics=tuple(dict.fromkeys(metrics)), database_url=database, stimuli_dir=stimuli_dir,
        source=source, text=text, screening=screening, reference_first=reference_first, gold=gold,
    )


def _test_type(top: Reader) -> TestType:
    """``test_type`` (default ``dcr``), any registered type's name."""
    name = top.string("test_type", "dcr").lower()
    if name not in type_names():
        raise top.fail("test_type", f'is "{name}"; use {known_names()}')
    return get_test_type(name)


def _labels(top: Reader, kind: TestType) -> tuple[str, ...]:
    """``labels``: exactly as many as the type's scale has (its own by default)."""
    labels = top.strings("labels", kind.labels)
    if len(labels) != len(kind.labels):
        raise top.fail("labels", f"has {len(labels)} labels; give exactly {len(kind.labels)}, {kind.labels_what}")
    return labels


def _conditions(top: Reader, check_codecs: bool) -> tuple[str, ...]:
    """``conditions``: unique names, each a codec (when ``check_codecs``) or the reference."""
    conditions = top.strings("conditions", required=True)
    if check_codecs:
        _check_conditions(top.where, conditions)
        return conditions
    dup = [c for i, c in enumerate(conditions) if c in conditions[:i]]
    if dup:
        raise StudyError(f'{top.where}: field conditions lists "{dup[0]}" twice; every condition name must be unique.')
    if not conditions:
        raise StudyError(f'{top.where}: field conditions is empty; list codec names and "{REFERENCE}".')
    return conditions


def _clips(top: Reader, base: Path, conditions: tuple[str, ...]) -> tuple[ClipSpec, ...]:
    """``[[clips]]``, and the ceilings on clips, conditions and the audio they make."""
    where = top.where
    clips = _clip_specs(where, base, top.table.get("clips"))
    if all(c.gold_only for c in clips):
        raise StudyError(f"{where}: every clip is gold_only; at least one clip must be in the ordinary trials.")
    if len(clips) > MAX_CLIPS:
        raise StudyError(f"{where}: field clips gives {len(clips)} excerpts (after globs and start lists); a study "
                         f"has at most {MAX_CLIPS}.")
    if len(conditions) > MAX_CONDITIONS:
        raise top.fail("conditions", f"lists {len(conditions)} conditions; a study has at most {MAX_CONDITIONS}")
    rendered = sum(c.length_s for c in clips) * len(conditions)
    if rendered > MAX_RENDERED_S:
        raise StudyError(
            f"{where}: fields clips and conditions ask for {rendered / 3600:.1f} h of rendered audio "
            f"({len(clips)} excerpts x {len(conditions)} conditions); a study renders at most "
            f"{MAX_RENDERED_S / 3600:g} h, so use fewer or shorter excerpts."
        )
    return clips


def _trials(top: Reader, kind: TestType, clips: int, conditions: int, repetitions: int) -> int:
    """``trials_per_listener`` (default: the type's full design), checked by the type."""
    full = kind.full_trials(clips, conditions, repetitions)
    if full > MAX_TRIALS_PER_LISTENER and not top.has("trials_per_listener"):
        raise top.fail(
            "repetitions",
            f"is {repetitions}, which with {clips} clips x {conditions} conditions makes {full} trials "
            f"per listener, more than {MAX_TRIALS_PER_LISTENER}; lower it or set trials_per_listener",
        )
    trials = top.integer("trials_per_listener", full, minimum=1, maximum=MAX_TRIALS_PER_LISTENER)
    kind.check_trials(top, trials, clips=clips, conditions=conditions, repetitions=repetitions)
    return trials


def _levels(top: Reader, clips: tuple[ClipSpec, ...]) -> tuple[float, float]:
    """``loudness_lufs`` and ``fade_ms`` (the fades must fit in the shortest excerpt)."""
    loudness = top.number("loudness_lufs", -23.0)
    if not -70.0 <= loudness <= 0.0:
        raise top.fail("loudness_lufs", f"is {loudness:g}; give an integrated loudness between -70 and 0 LUFS")
    fade_ms = top.number("fade_ms", 20.0, minimum=0.0, maximum=MAX_FADE_MS)
    if any(2 * fade_ms / 1000.0 > c.length_s for c in clips):
        raise top.fail("fade_ms", f"is {fade_ms:g}; the fades in and out must fit in the shortest excerpt")
    return loudness, fade_ms


def _training(top: Reader, kind: TestType, conditions: tuple[str, ...]) -> TrainingSpec:
    """``[training]``: how many trials, and which of the study's conditions they use."""
    tr = top.subtable("training", _TRAINING_FIELDS)
    training_conditions = tr.strings("conditions", ())
    for cond in training_conditions:
        if cond not in conditions:
            raise tr.fail("conditions", f'has "{cond}", which is not one of the study\'s conditions')
    kind.check_training(tr, training_conditions)
    return TrainingSpec(trials=tr.integer("trials", 0, minimum=0, maximum=MAX_TRAINING_TRIALS),
                        conditions=training_conditions)


def _pipeline(top: Reader, clips: tuple[ClipSpec, ...]) -> tuple[PipelineConfig, tuple[str, ...]]:
    """``[pipeline]``: the spectrogram codecs' settings and the metrics stored per stimulus."""
    pr = top.subtable("pipeline", _PIPELINE_FIELDS)
    defaults = PipelineConfig()
    geometry = pr.string("geometry", defaults.geometry)
    if geometry not in GEOMETRIES:
        raise pr.fail("geometry", f'is "{geometry}"; known geometries: {", ".join(GEOMETRIES)}')
    phase = pr.string("phase", defaults.phase)
    if phase not in backend_names():
        raise pr.fail("phase", f'is "{phase}"; known backends: {", ".join(backend_names())}')
    device = pr.string("device", defaults.device)
    if device not in ("auto", "cpu", "cuda"):
        raise pr.fail("device", f'is "{device}"; use auto, cpu or cuda')
    pipeline = PipelineConfig(
        geometry=geometry, phase=phase, device=device,
        fgla_iterations=pr.integer("fgla_iterations", defaults.fgla_iterations, minimum=FGLA_ITERATIONS_RANGE[0],
                                   maximum=FGLA_ITERATIONS_RANGE[1]),
        mono=pr.boolean("mono", True),
    )
    metrics = pr.strings("metrics", METRIC_NAMES)
    for m in metrics:
        if m not in METRIC_NAMES:
            raise pr.fail("metrics", f'has "{m}"; known metrics: {", ".join(METRIC_NAMES)}')
    if "visqol" in metrics and min(c.length_s for c in clips) < 1.0:
        raise pr.fail("metrics", "has visqol, which needs excerpts of at least 1 s; lengthen them or drop visqol")
    return pipeline, metrics


def _gold_trials(top: Reader, kind: TestType, clips: tuple[ClipSpec, ...],
                 conditions: tuple[str, ...]) -> tuple[GoldSpec, ...]:
    """``[[gold]]``: at most :data:`MAX_TRAINING_TRIALS`, for the types that score them."""
    where = top.where
    gold = _gold(where, top.table.get("gold", []), clips, conditions,
                 kind.score_range if kind.allows_gold else (1, 5))
    if len(gold) > MAX_TRAINING_TRIALS:
        raise StudyError(f"{where}: field gold lists {len(gold)} gold trials; a study has at most {MAX_TRAINING_TRIALS}.")
    if gold and not kind.allows_gold:
        scoring = " and ".join(n.upper() for n in type_names() if get_test_type(n).allows_gold)
        raise StudyError(f"{where}: [[gold]] trials are for {scoring} studies (scores 1-5); a {kind.name.upper()} "
                         f"study screens by its hidden reference and anchors instead, so remove them.")
    return gold


def _gold(where: str, value: Any, clips: tuple[ClipSpec, ...], conditions: tuple[str, ...],
          scores: tuple[int, int]) -> tuple[GoldSpec, ...]:
    if not isinstance(value, list):
        raise StudyError(f"{where}: field gold must be a list of [[gold]] tables (clip, condition, expected).")
    names = {c.name for c in clips}
    low, high = scores
    out: list[GoldSpec] = []
    for table, r in _table_readers(where, "gold", value, _GOLD_FIELDS, "clip, condition, expected"):
        clip = r.string("clip", required=True)
        if clip not in names:
            raise r.fail("clip", f'is "{clip}", which is not one of the study\'s clips ({", ".join(sorted(names))})')
        condition = r.string("condition", REFERENCE)
        if condition not in conditions and condition != REFERENCE:
            raise r.fail("condition", f'is "{condition}", which is not one of the study\'s conditions')
        expected = table.get("expected")
        if isinstance(expected, int) and not isinstance(expected, bool):
            expected = [expected]
        if (not isinstance(expected, list) or not expected
                or not all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in expected)):
            raise r.fail("expected", f"is {expected!r}; give the accepted scores, e.g. [4, 5] (whole numbers "
                                     f"{low}-{high})")
        out.append(GoldSpec(clip=clip, condition=condition, expected=tuple(sorted(set(expected)))))
    used = {g.clip for g in out}
    for c in clips:
        if c.gold_only and c.name not in used:
            raise StudyError(f'{where}: the clip "{c.name}" is gold_only but no [[gold]] trial uses it.')
    return tuple(out)


def load_study(path: str | os.PathLike[str], *, check_codecs: bool = True) -> StudyDefinition:
    """Read and validate a study file.

    ``path`` may also be a bare study name (``demo``), looked up as ``studies/<name>.toml``
    in the current folder and then in the repository's ``studies/``.

    Raises:
        StudyError: the file is missing or unreadable, or see :func:`parse_study`.
    """
    p = resolve_study_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise StudyError(f"{p} is not a UTF-8 text file; a study file is TOML text.") from None
    except OSError as exc:
        raise StudyError(f"{p} cannot be read ({exc.strerror or exc}).") from None
    return parse_study(text, source=p, check_codecs=check_codecs)


#: The repository's study folder (``studies/`` next to the package).
STUDIES_DIR = Path(__file__).resolve().parent.parent.parent / "studies"


def resolve_study_path(path: str | os.PathLike[str]) -> Path:
    """The study file for ``path``: the file itself, or ``studies/<path>.toml`` for a bare name."""
    p = Path(path)
    if p.is_file():
        return p
    if p.is_dir():
        raise StudyError(f"{p} is a folder; give a study file (.toml) or a study name.")
    name = os.fspath(path)
    if os.sep not in name and not name.endswith(".toml"):
        for folder in (Path("studies"), STUDIES_DIR):
            candidate = folder / f"{name}.toml"
            if candidate.is_file():
                return candidate
    raise StudyError(f"The study file {p} does not exist; give a .toml file or the name of one in studies/.")


__all__ = [
    "METRIC_NAMES", "REFERENCE", "SCREENING_RULES", "STUDIES_DIR", "ClipSpec", "GoldSpec", "Reader", "ScreeningSpec",
    "StudyDefinition", "TrainingSpec", "database_url_for", "load_study", "parse_study", "resolve_study_path",
]
