"""Study definitions: the TOML schema of ``studies/<name>.toml``, validated into frozen dataclasses.

A study file is flat TOML; every path in it is relative to the file itself::

    title = "Spectrogram codecs at low bitrates"
    test_type = "dcr"                 # dcr (DMOS, P.800 Annex D) | acr (MOS, P.800 Annex B)
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

#: The condition name of the original excerpt: the hidden reference (and DCR's known reference).
REFERENCE = "reference"
#: Test types: ``dcr`` rates a blinded sample against the known reference on the degradation
#: scale (DMOS); ``acr`` rates a sample alone on the absolute category scale (MOS).
#: ``mushra`` (ITU-R BS.1534) rates every condition of a clip on one screen, 0..100, against the
#: open reference; ``ccr`` (ITU-T P.800 Annex E) rates the second of a (reference, processed)
#: pair against the first, -3..+3, giving CMOS.
TEST_TYPES = ("dcr", "acr", "mushra", "ccr")
#: The scores each test type accepts, (lowest, highest), whole numbers.
SCORE_RANGES: dict[str, tuple[int, int]] = {"dcr": (1, 5), "acr": (1, 5), "mushra": (0, 100), "ccr": (-3, 3)}
#: The BS.1534 mid anchor (3.5 kHz is the low anchor): the default anchor of MUSHRA's screening.
MUSHRA_MID_ANCHOR = "lowpass-7k"
#: BS.1534-3 recommends no more than 12 signals on one screen (reference and anchors included).
MUSHRA_MAX_CONDITIONS = 12
#: ITU-T P.800 labels for the scores 1..5 (index 0 is score 1).
DEFAULT_LABELS: dict[str, tuple[str, ...]] = {
    "dcr": (
        "Degradation is very annoying",
        "Degradation is annoying",
        "Degradation is slightly annoying",
        "Degradation is audible but not annoying",
        "Degradation is inaudible",
    ),
    "acr": ("Bad", "Poor", "Fair", "Good", "Excellent"),
    # BS.1534's continuous quality scale: five bands of 20 points, 0-20 Bad … 80-100 Excellent.
    "mushra": ("Bad", "Poor", "Fair", "Good", "Excellent"),
    # P.800 Annex E (CCR), the scores -3..+3: the quality of the second compared with the first.
    "ccr": ("Much worse", "Worse", "Slightly worse", "About the same", "Slightly better", "Better", "Much better"),
}
DEFAULT_INSTRUCTIONS: dict[str, str] = {
    "dcr": "You will hear the reference, then a sample. Rate how much the sample is degraded "
           "compared with the reference.",
    "acr": "Listen to each sample and rate its overall quality.",
    "mushra": "Each screen has the reference and several samples, one of which may be the reference itself. "
              "Listen to every sample, compare it with the reference, and rate its quality from 0 to 100.",
    "ccr": "You will hear two samples, A then B. Rate the quality of the second (B) compared with the first (A).",
}
#: Shortest excerpt: BS.1770 loudness is measured over 400 ms blocks.
MIN_EXCERPT_S = 0.5
#: Ceilings of a study file (studies/README.md lists them with every field): each is far
#: beyond a real listening test and keeps plans, renders and the database small enough.
MAX_EXCERPT_S = 60.0             # clips[].length_s (BS.1534 asks for 10-12 s)
MAX_START_S = 24 * 3600.0        # clips[].start_s
MAX_CLIPS = 500                  # excerpts after globs and start lists are expanded
MAX_CONDITIONS = 50              # conditions
MAX_REPETITIONS = 20             # repetitions
MAX_TRIALS_PER_LISTENER = 1000   # trials_per_listener (and its default), training.trials + gold
MAX_TRAINING_TRIALS = 100        # training.trials
MAX_SEED = 2**63 - 1             # seed
MAX_FADE_MS = 1000.0             # fade_ms
#: Audio ``mosapp study prepare`` may render: excerpts x conditions x length, seconds (10 h).
MAX_RENDERED_S = 36_000.0
#: Objective metrics a stimulus can carry (the registry's :data:`mosapp.core.metrics.STUDY_METRIC_NAMES`).
METRIC_NAMES = STUDY_METRIC_NAMES
#: The scale of a test's scores, as named in reports.
SCALES = {"dcr": "DMOS", "acr": "MOS", "mushra": "MUSHRA", "ccr": "CMOS"}

_TOP_FIELDS = {
    "name", "title", "test_type", "instructions", "labels", "conditions", "trials_per_listener",
    "repetitions", "seed", "loudness_lufs", "fade_ms", "database", "stimuli_dir",
    "training", "pipeline", "clips", "screening", "reference_first", "gold",
}
_SCREENING_FIELDS = {"rule", "min_score", "max_fraction", "min_reference_trials", "anchor", "anchor_max_score",
                     "gold_max_failures"}
_GOLD_FIELDS = {"clip", "condition", "expected"}
#: Post-screening rules: ``reference`` (hidden reference rated too low too often), ``bs1534``
#: (that, or the mid-range anchor rated too high too often, as ITU-R BS.1534-3 §4.1.2), ``off``.
SCREENING_RULES = ("reference", "bs1534", "off")
_TRAINING_FIELDS = {"trials", "conditions"}
_PIPELINE_FIELDS = {"geometry", "phase", "device", "fgla_iterations", "mono", "metrics"}
_CLIP_FIELDS = {"path", "start_s", "length_s", "name", "gold_only"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class ClipSpec:
    """One excerpt of one file.

    Attributes:
        name: unique within the study (default ``<stem>`` or ``<stem>@<start>s``).
        path: the audio file, absolute.
        start_s: excerpt start in seconds.
        length_s: excerpt length in seconds.
        gold_only: used only by gold trials (e.g. a P.808 trapping stimulus), never in the plan.
    """

    name: str
    path: Path
    start_s: float
    length_s: float
    gold_only: bool = False


@dataclass(frozen=True)
class GoldSpec:
    """A gold (known-answer) trial, put once into every listener's plan and scored, not averaged.

    Attributes:
        clip: the clip (any of the study's, ``gold_only`` ones included).
        condition: the condition it is played in (one of the study's, or ``reference``).
        expected: the scores that count as right.
    """

    clip: str
    condition: str
    expected: tuple[int, ...]


@dataclass(frozen=True)
class ScreeningSpec:
    """How listeners are post-screened (``[screening]`` or ``screening = "off"``).

    Attributes:
        rule: ``reference``, ``bs1534`` or ``off``.
        min_score: a hidden-reference score below this counts against a listener.
        max_fraction: a listener is dropped above this fraction of counted trials (strictly).
        min_reference_trials: fewer hidden-reference (or anchor) trials than this: that part of
            the rule is not applied to the listener, who is kept and flagged.
        anchor: the anchor condition the ``bs1534`` rule scores (BS.1534-3: the mid-range anchor, 7 kHz).
        anchor_max_score: an anchor score above this counts against a listener (``bs1534``).
        gold_max_failures: a listener who misses more gold trials than this is dropped.
        explicit: the study file set the rule.
    """

    rule: str = "reference"
    min_score: int = 4
    max_fraction: float = 0.15
    min_reference_trials: int = 7
    anchor: str | None = None
    anchor_max_score: int = 4
    gold_max_failures: int = 0
    explicit: bool = False

    def describe(self) -> str:
        """The settings in one line (recorded in every summary file)."""
        if self.rule == "off":
            return "rule off"
        parts = [f"rule {self.rule}", f"min_score {self.min_score}", f"max_fraction {self.max_fraction:g}",
                 f"min_reference_trials {self.min_reference_trials}"]
        if self.rule == "bs1534":
            parts += [f"anchor {self.anchor}", f"anchor_max_score {self.anchor_max_score}"]
        parts.append(f"gold_max_failures {self.gold_max_failures}")
        return "; ".join(parts)

@dataclass(frozen=True)
class TrainingSpec:
    """Training trials shown first in every listener's plan; rated, stored, left out of statistics.

    Attributes:
        trials: how many (0 = none).
        conditions: the conditions they cycle through (default: all conditions of the plan).
    """

    trials: int = 0
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True)
class StudyDefinition:
    """A validated study file.

    Attributes:
        name: the study's name (the file's stem unless ``name`` is set); its key in the database.
        title: shown to listeners.
        test_type: ``dcr`` or ``acr``.
        instructions: shown to listeners before the first trial.
        labels: the five labels of scores 1..5.
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
    def scale(self) -> str:
        """``DMOS`` for DCR, ``MOS`` for ACR."""
        return SCALES[self.test_type]

    @property
    def score_range(self) -> tuple[int, int]:
        """The lowest and highest score of this test type: (1, 5), MUSHRA (0, 100), CCR (-3, 3)."""
        return SCORE_RANGES[self.test_type]

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


class _Reader:
    """Typed access to a TOML table with error messages that name the file and field."""

    def __init__(self, where: str, table: dict[str, Any], prefix: str, known: set[str]) -> None:
        self.where, self.table, self.prefix = where, table, prefix
        unknown = sorted(set(table) - known)
        if unknown:
            raise StudyError(
                f"{where}: unknown field {self.field(unknown[0])}; known fields here: {', '.join(sorted(known))}."
            )

    def field(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str, what: str) -> StudyError:
        return StudyError(f"{self.where}: field {self.field(key)} {what}.")

    def has(self, key: str) -> bool:
        return key in self.table

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        if key not in self.table:
            if required:
                raise self.fail(key, "is missing; give a string")
            return default  # type: ignore[return-value]
        value = self.table[key]
        if not isinstance(value, str):
            raise self.fail(key, f"is {value!r}; give a string")
        return value

    def number(self, key: str, default: float | None = None, *, required: bool = False,
               minimum: float | None = None, exclusive_minimum: float | None = None,
               maximum: float | None = None) -> float:
        if key not in self.table:
            if required:
                raise self.fail(key, "is missing; give a number")
            return default  # type: ignore[return-value]
        value = self.table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(key, f"is {value!r}; give a finite number")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"is {value!r}; give a number of at least {minimum:g}")
        if exclusive_minimum is not None and value <= exclusive_minimum:
            raise self.fail(key, f"is {value!r}; give a number above {exclusive_minimum:g}")
        if maximum is not None and value > maximum:
            raise self.fail(key, f"is {value!r}; give a number of at most {maximum:g}")
        return float(value)

    def integer(self, key: str, default: int | None = None, *, minimum: int | None = None,
                maximum: int | None = None) -> int:
        if key not in self.table:
            return default  # type: ignore[return-value]
        value = self.table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"is {value!r}; give a whole number")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"is {value}; give a whole number of at least {minimum}")
        if maximum is not None and value > maximum:
            raise self.fail(key, f"is {value}; give a whole number of at most {maximum}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        if key not in self.table:
            return default
        value = self.table[key]
        if not isinstance(value, bool):
            raise self.fail(key, f"is {value!r}; give true or false")
        return value

    def strings(self, key: str, default: tuple[str, ...] | None = None, *, required: bool = False) -> tuple[str, ...]:
        if key not in self.table:
            if required:
                raise self.fail(key, "is missing; give a list of strings")
            return default  # type: ignore[return-value]
        value = self.table[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"is {value!r}; give a list of strings")
        return tuple(value)

    def subtable(self, key: str, known: set[str]) -> _Reader:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table, e.g. [" + key + "]")
        return _Reader(self.where, value, f"{self.prefix}{key}.", known)


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
                   fields: str) -> Iterator[tuple[dict[str, Any], _Reader]]:
    """Each table of the array of tables ``name`` with its reader; an entry that is no table is refused."""
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            raise StudyError(f"{where}: field {name}[{i}] must be a table ([[{name}]] with {fields}).")
        yield table, _Reader(where, table, f"{name}[{i}].", known)


def _clip_specs(where: str, base: Path, clips: Any) -> tuple[ClipSpec, ...]:
    if not isinstance(clips, list) or not clips:
        raise StudyError(f"{where}: field clips is missing or empty; add at least one [[clips]] table with a path.")
    specs: list[ClipSpec] = []
    for table, r in _table_readers(where, "clips", clips, _CLIP_FIELDS, "path, start_s, length_s"):
        pattern = r.string("path", required=True)
        length = r.number("length_s", required=True, minimum=MIN_EXCERPT_S, maximum=MAX_EXCERPT_S)
        starts_value = table.get("start_s", 0.0)
        starts_list = starts_value if isinstance(starts_value, list) else [starts_value]
        if not starts_list:
            raise r.fail("start_s", "is an empty list; give a start in seconds or a list of starts")
        starts: list[float] = []
        for s in starts_list:
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or not 0 <= s <= MAX_START_S:
                raise r.fail("start_s", f"has {s!r}; give starts in seconds, from 0 to {MAX_START_S:g}")
            starts.append(float(s))
        if len(set(starts)) != len(starts):
            raise r.fail("start_s", "lists the same start twice")
        full = pattern if os.path.isabs(pattern) else str(base / pattern)
        if _GLOB_CHARS & set(pattern):
            try:  # bounded: "/**/*.wav" is refused after a bounded walk, not after walking the disk
                paths = bounded_glob(full, max_matches=MAX_CLIPS)
            except MosappError as exc:
                raise r.fail("path", f'"{pattern}" {str(exc).rstrip(".")}') from None
            if not paths:
                raise r.fail("path", f'"{pattern}" matches no file (relative to {base})')
        else:
            p = Path(full)
            if not p.is_file():
                state = "is a folder, not an audio file" if p.is_dir() else "does not exist"
                raise r.fail("path", f'"{pattern}": {p} {state}')
            paths = [p]
        explicit = r.string("name")
        gold_only = r.boolean("gold_only", False)
        if explicit is not None and len(paths) > 1:
            raise r.fail("name", f'is set but the glob "{pattern}" matches {len(paths)} files; remove name')
        for path in paths:
            duration = _duration_s(path)
            stem = explicit or path.stem
            for start in starts:
                if duration is not None and start + length > duration + 1e-6:
                    raise r.fail(
                        "start_s",
                        f"puts the excerpt {start:g}-{start + length:g} s past the end of {path} ({duration:.3f} s long)",
                    )
                name = stem if len(starts) == 1 else f"{stem}@{start:g}s"
                specs.append(ClipSpec(name=name, path=path.resolve(), start_s=start, length_s=length,
                                      gold_only=gold_only))
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise StudyError(
                f'{where}: two clips are named "{spec.name}"; give them different name fields or files.'
            )
        if not _NAME_RE.match(spec.name.replace("@", "-")):
            raise StudyError(f'{where}: the clip name "{spec.name}" must be letters, digits, ".", "_" or "-".')
        seen.add(spec.name)
    return tuple(specs)


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
    top = _Reader(where, data, "", _TOP_FIELDS)

    study_name = top.string("name", name or (source.stem if source is not None else "study"))
    if not _NAME_RE.match(study_name):
        raise top.fail("name", f'is "{study_name}"; use letters, digits, ".", "_" or "-" (at most 64)')
    test_type = top.string("test_type", "dcr").lower()
    if test_type not in TEST_TYPES:
        raise top.fail("test_type", f'is "{test_type}"; use "dcr", "acr", "mushra" or "ccr"')
    title = top.string("title", study_name)
    instructions = top.string("instructions", DEFAULT_INSTRUCTIONS[test_type])
    labels = top.strings("labels", DEFAULT_LABELS[test_type])
    n_labels = len(DEFAULT_LABELS[test_type])
    if len(labels) != n_labels:
        what = {"mushra": "for the bands 0-20 … 80-100", "ccr": "for the scores -3 to +3"}.get(
            test_type, "for the scores 1 to 5")
        raise top.fail("labels", f"has {len(labels)} labels; give exactly {n_labels}, {what}")

    conditions = top.strings("conditions", required=True)
    if check_codecs:
        _check_conditions(where, conditions)
    else:
        dup = [c for i, c in enumerate(conditions) if c in conditions[:i]]
        if dup:
            raise StudyError(f'{where}: field conditions lists "{dup[0]}" twice; every condition name must be unique.')
        if not conditions:
            raise StudyError(f'{where}: field conditions is empty; list codec names and "{REFERENCE}".')

    clips = _clip_specs(where, base, data.get("clips"))
    if all(c.gold_only for c in clips):
        raise StudyError(f"{where}: every clip is gold_only; at least one clip must be in the ordinary trials.")
    plan_clips = [c for c in clips if not c.gold_only]
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
    repetitions = top.integer("repetitions", 1, minimum=1, maximum=MAX_REPETITIONS)
    if test_type == "mushra":
        if REFERENCE not in conditions:
            raise top.fail("conditions", f'has no "{REFERENCE}"; a MUSHRA screen always has the hidden reference')
        if len(conditions) > MUSHRA_MAX_CONDITIONS:
            raise top.fail("conditions", f"has {len(conditions)} conditions; a MUSHRA screen has at most "
                                         f"{MUSHRA_MAX_CONDITIONS} (ITU-R BS.1534), split the study")
        if len(conditions) < 2:
            raise top.fail("conditions", "has only the reference; a MUSHRA screen compares at least one condition")
    # MUSHRA: a trial is one screen (a clip with every condition); DCR/ACR/CCR: one (clip, condition).
    per_trial = 1 if test_type == "mushra" else len(conditions)
    full = len(plan_clips) * per_trial * repetitions
    if full > MAX_TRIALS_PER_LISTENER and not top.has("trials_per_listener"):
        raise top.fail(
            "repetitions",
            f"is {repetitions}, which with {len(plan_clips)} clips x {len(conditions)} conditions makes {full} trials "
            f"per listener, more than {MAX_TRIALS_PER_LISTENER}; lower it or set trials_per_listener",
        )
    trials = top.integer("trials_per_listener", full, minimum=1, maximum=MAX_TRIALS_PER_LISTENER)
    if test_type == "mushra" and trials > full:
        raise top.fail("trials_per_listener", f"is {trials}; at most {full} screens (clips x repetitions = "
                                              f"{len(plan_clips)} x {repetitions}); raise repetitions for more")
    if test_type != "mushra" and trials % len(conditions):
        raise top.fail(
            "trials_per_listener",
            f"is {trials}; give a multiple of the {len(conditions)} conditions so each appears equally often",
        )
    if trials > full:
        raise top.fail(
            "trials_per_listener",
            f"is {trials}; at most {full} (clips x conditions x repetitions = {len(plan_clips)} x {len(conditions)} x "
            f"{repetitions}); raise repetitions for more",
        )
    seed_in_file = top.has("seed")
    seed = top.integer("seed", 0, minimum=0, maximum=MAX_SEED)
    loudness = top.number("loudness_lufs", -23.0)
    if not -70.0 <= loudness <= 0.0:
        raise top.fail("loudness_lufs", f"is {loudness:g}; give an integrated loudness between -70 and 0 LUFS")
    fade_ms = top.number("fade_ms", 20.0, minimum=0.0, maximum=MAX_FADE_MS)
    if any(2 * fade_ms / 1000.0 > c.length_s for c in clips):
        raise top.fail("fade_ms", f"is {fade_ms:g}; the fades in and out must fit in the shortest excerpt")

    tr = top.subtable("training", _TRAINING_FIELDS)
    training_conditions = tr.strings("conditions", ())
    for cond in training_conditions:
        if cond not in conditions:
            raise tr.fail("conditions", f'has "{cond}", which is not one of the study\'s conditions')
    if training_conditions and test_type == "mushra":
        raise tr.fail("conditions", "is set, but every MUSHRA screen (training ones too) has all the conditions; "
                                    "remove it")
    training = TrainingSpec(trials=tr.integer("trials", 0, minimum=0, maximum=MAX_TRAINING_TRIALS),
                            conditions=training_conditions)

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

    database = _database_url(top.string("database", f"data/{study_name}/study.sqlite"), base)
    stimuli_dir = (base / top.string("stimuli_dir", f"data/{study_name}/stimuli")).resolve()

    screening = _screening(top, test_type, conditions)
    reference_first = top.boolean("reference_first", False)
    if reference_first and test_type != "dcr":
        raise top.fail("reference_first", "is true, but only a DCR study plays a reference; remove it")
    gold = _gold(where, data.get("gold", []), clips, conditions)
    if len(gold) > MAX_TRAINING_TRIALS:
        raise StudyError(f"{where}: field gold lists {len(gold)} gold trials; a study has at most {MAX_TRAINING_TRIALS}.")
    if gold and test_type in ("mushra", "ccr"):
        raise StudyError(f"{where}: [[gold]] trials are for DCR and ACR studies (scores 1-5); a {test_type.upper()} "
                         f"study screens by its hidden reference and anchors instead, so remove them.")

    return StudyDefinition(
        name=study_name, title=title, test_type=test_type, instructions=instructions, labels=labels,
        clips=clips, conditions=conditions, training=training, trials_per_listener=trials,
        repetitions=repetitions, seed=seed, seed_in_file=seed_in_file, loudness_lufs=loudness, fade_ms=fade_ms, pipeline=pipeline,
        metrics=tuple(dict.fromkeys(metrics)), database_url=database, stimuli_dir=stimuli_dir,
        source=source, text=text, screening=screening, reference_first=reference_first, gold=gold,
    )


def _screening_rule(r: _Reader, default: str) -> str:
    rule = r.string("rule", default)
    if rule not in SCREENING_RULES:
        raise r.fail("rule", f'is "{rule}"; use "reference", "bs1534" or "off"')
    return rule


def _max_fraction(r: _Reader) -> float:
    max_fraction = r.number("max_fraction", 0.15, minimum=0.0)
    if max_fraction > 1.0:
        raise r.fail("max_fraction", f"is {max_fraction:g}; give a fraction from 0 to 1")
    return max_fraction


def _screening(top: _Reader, test_type: str, conditions: tuple[str, ...]) -> ScreeningSpec:
    has_reference = REFERENCE in conditions
    value = top.table.get("screening")
    if test_type == "mushra":
        return _mushra_screening(top, conditions, value)
    if test_type == "ccr":
        rule = value if isinstance(value, str) else (value or {}).get("rule", "off") if isinstance(value, dict) else value
        if value is not None and (rule != "off" or (isinstance(value, dict) and set(value) - {"rule"})):
            raise top.fail("screening", 'is set, but a CCR study has no post-screening rule here; use screening = "off" '
                                        "or leave it out")
        return ScreeningSpec(rule="off", explicit=value is not None)
    if value is None:
        if test_type == "dcr" and not has_reference:
            raise StudyError(
                f'{top.where}: this DCR study has no hidden reference ("{REFERENCE}" is not in conditions), so its '
                f'listeners cannot be screened; add "{REFERENCE}" to conditions, or set screening = "off" to run '
                f"without post-screening."
            )
        return ScreeningSpec(rule="reference" if has_reference else "off")
    if isinstance(value, str):
        value = {"rule": value}
    if not isinstance(value, dict):
        raise top.fail("screening", 'must be "reference", "bs1534", "off" or a [screening] table')
    r = top.subtable("screening", _SCREENING_FIELDS) if isinstance(top.table["screening"], dict) else \
        _Reader(top.where, value, "screening.", _SCREENING_FIELDS)
    rule = _screening_rule(r, "reference" if has_reference else "off")
    if rule != "off" and not has_reference:
        raise r.fail("rule", f'is "{rule}", which needs the hidden reference: add "{REFERENCE}" to conditions '
                             f'or use "off"')
    min_score = r.integer("min_score", 4, minimum=1)
    if min_score > 5:
        raise r.fail("min_score", f"is {min_score}; give a score from 1 to 5")
    max_fraction = _max_fraction(r)
    anchor = r.string("anchor")
    if rule == "bs1534":
        if anchor is None:
            raise r.fail("anchor", "is missing; the bs1534 rule needs the anchor condition it scores (BS.1534-3: the mid-range anchor, lowpass-7k)")
        if anchor not in conditions or anchor == REFERENCE:
            raise r.fail("anchor", f'is "{anchor}", which is not one of the study\'s conditions (other than '
                                   f'"{REFERENCE}")')
    anchor_max = r.integer("anchor_max_score", 4, minimum=1)
    if anchor_max > 5:
        raise r.fail("anchor_max_score", f"is {anchor_max}; give a score from 1 to 5")
    return ScreeningSpec(
        rule=rule, min_score=min_score, max_fraction=max_fraction,
        min_reference_trials=r.integer("min_reference_trials", 7, minimum=1, maximum=MAX_TRIALS_PER_LISTENER),
        anchor=anchor,
        anchor_max_score=anchor_max, gold_max_failures=r.integer("gold_max_failures", 0, minimum=0,
                                                                maximum=MAX_TRIALS_PER_LISTENER), explicit=True,
    )


def _mushra_screening(top: _Reader, conditions: tuple[str, ...], value: Any) -> ScreeningSpec:
    """MUSHRA's post-screening (ITU-R BS.1534-3 §4.1.2) on the 0..100 scale.

    Default: ``bs1534`` with the hidden reference below 90 or the mid anchor (``lowpass-7k``)
    above 90 in more than 15 % of a listener's items; ``reference`` alone when the study has no
    mid anchor. ``min_reference_trials`` defaults to 3 screens.
    """
    anchor_default = MUSHRA_MID_ANCHOR if MUSHRA_MID_ANCHOR in conditions else None
    if value is None:
        value = {}
    if isinstance(value, str):
        value = {"rule": value}
    if not isinstance(value, dict):
        raise top.fail("screening", 'must be "reference", "bs1534", "off" or a [screening] table')
    r = _Reader(top.where, value, "screening.", _SCREENING_FIELDS)
    rule = _screening_rule(r, "bs1534" if anchor_default else "reference")
    min_score = r.integer("min_score", 90, minimum=0)
    if min_score > 100:
        raise r.fail("min_score", f"is {min_score}; give a MUSHRA score from 0 to 100")
    anchor_max = r.integer("anchor_max_score", 90, minimum=0)
    if anchor_max > 100:
        raise r.fail("anchor_max_score", f"is {anchor_max}; give a MUSHRA score from 0 to 100")
    max_fraction = _max_fraction(r)
    anchor = r.string("anchor", anchor_default)
    if rule == "bs1534":
        if anchor is None:
            raise r.fail("anchor", f'is missing; the bs1534 rule needs the mid anchor (add "{MUSHRA_MID_ANCHOR}" to '
                                   f"conditions, or name the anchor)")
        if anchor not in conditions or anchor == REFERENCE:
            raise r.fail("anchor", f'is "{anchor}", which is not one of the study\'s conditions (other than '
                                   f'"{REFERENCE}")')
    return ScreeningSpec(
        rule=rule, min_score=min_score, max_fraction=max_fraction,
        min_reference_trials=r.integer("min_reference_trials", 3, minimum=1, maximum=MAX_TRIALS_PER_LISTENER),
        anchor=anchor,
        anchor_max_score=anchor_max, gold_max_failures=0, explicit=bool(value),
    )


def _gold(where: str, value: Any, clips: tuple[ClipSpec, ...], conditions: tuple[str, ...]) -> tuple[GoldSpec, ...]:
    if not isinstance(value, list):
        raise StudyError(f"{where}: field gold must be a list of [[gold]] tables (clip, condition, expected).")
    names = {c.name for c in clips}
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
                or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5 for v in expected)):
            raise r.fail("expected", f"is {expected!r}; give the accepted scores, e.g. [4, 5] (whole numbers 1-5)")
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
    "ClipSpec", "DEFAULT_LABELS", "GoldSpec", "SCREENING_RULES", "ScreeningSpec", "METRIC_NAMES", "REFERENCE", "SCALES", "STUDIES_DIR", "StudyDefinition",
    "TEST_TYPES", "TrainingSpec", "database_url_for", "load_study", "parse_study", "resolve_study_path",
]
