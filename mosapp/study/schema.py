"""What a study file is made of, below the parser: the reference's name, the ceilings of a study
file, the specs of its tables (clips, gold trials, screening, training) and :class:`Reader`, the
typed access to a TOML table whose errors name the file and field.

:mod:`mosapp.study.definition` parses a study file with these; a test type
(:mod:`mosapp.study.types`) checks its own fields with them, so neither imports the other's
parser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mosapp.study.errors import StudyError
from mosapp.study.stats import SCREENING_ANCHOR_MAX_SCORE, SCREENING_MAX_FRACTION, SCREENING_MIN_SCORE

#: The condition name of the original excerpt: the hidden reference (and DCR's known reference).
REFERENCE = "reference"

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

#: The fields of ``[screening]``.
SCREENING_FIELDS = {"rule", "min_score", "max_fraction", "min_reference_trials", "anchor", "anchor_max_score",
                    "gold_max_failures"}
#: Post-screening rules: ``reference`` (hidden reference rated too low too often), ``bs1534``
#: (that, or the mid-range anchor rated too high too often, as ITU-R BS.1534-3 §4.1.2), ``off``.
SCREENING_RULES = ("reference", "bs1534", "off")


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
    min_score: int = SCREENING_MIN_SCORE
    max_fraction: float = SCREENING_MAX_FRACTION
    min_reference_trials: int = 7
    anchor: str | None = None
    anchor_max_score: int = SCREENING_ANCHOR_MAX_SCORE
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




class Reader:
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

    def subtable(self, key: str, known: set[str]) -> Reader:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table, e.g. [" + key + "]")
        return Reader(self.where, value, f"{self.prefix}{key}.", known)


def screening_rule(r: Reader, default: str) -> str:
    """The ``rule`` field of a screening table: one of :data:`SCREENING_RULES`."""
    rule = r.string("rule", default)
    if rule not in SCREENING_RULES:
        raise r.fail("rule", f'is "{rule}"; use "reference", "bs1534" or "off"')
    return rule


def max_fraction(r: Reader, default: float) -> float:
    """The ``max_fraction`` field of a screening table: a fraction from 0 to 1."""
    value = r.number("max_fraction", default, minimum=0.0)
    if value > 1.0:
        raise r.fail("max_fraction", f"is {value:g}; give a fraction from 0 to 1")
    return value


def check_anchor(r: Reader, rule: str, anchor: str | None, conditions: tuple[str, ...], missing: str) -> None:
    """The ``bs1534`` rule's anchor: named (``missing`` says how otherwise) and one of the study's conditions."""
    if rule != "bs1534":
        return
    if anchor is None:
        raise r.fail("anchor", missing)
    if anchor not in conditions or anchor == REFERENCE:
        raise r.fail("anchor", f'is "{anchor}", which is not one of the study\'s conditions (other than '
                               f'"{REFERENCE}")')


__all__ = [
    "MAX_CLIPS", "MAX_CONDITIONS", "MAX_EXCERPT_S", "MAX_FADE_MS", "MAX_RENDERED_S", "MAX_REPETITIONS", "MAX_SEED",
    "MAX_START_S", "MAX_TRAINING_TRIALS", "MAX_TRIALS_PER_LISTENER", "MIN_EXCERPT_S", "REFERENCE", "SCREENING_FIELDS",
    "SCREENING_RULES", "ClipSpec", "GoldSpec", "Reader", "ScreeningSpec", "TrainingSpec", "check_anchor",
    "max_fraction", "screening_rule",
]
