"""The protocol of a test type: what the study file, the engine, the controller, the export and the report ask.

A test type is an instance of a :class:`TestType` subclass, registered by its module
(:func:`mosapp.study.types.register_test_type`). The class attributes say what a type *is*
(its scale, labels, trial and session classes); the methods are the hooks, each with the
behaviour most types share as its default, so a new type overrides only what it does
differently. Nothing here imports a type module or the parser (not even for the type
checker): a type module imports this, :mod:`mosapp.study.schema`, the sitting and store it
writes to, and the export or report helpers it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from mosapp.study.errors import StudyError
from mosapp.study.schema import Reader, ScreeningSpec
from mosapp.study.sitting import Sitting

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.orm import Session

    from mosapp.study.sitting import StudyHost
    from mosapp.study.store import Store


#: A study's :class:`~mosapp.study.definition.StudyDefinition`. Named loosely here, and not imported even for
#: the type checker: the definition module asks this registry for its types, so importing it back would
#: make a cycle. A type's own module annotates it as ``StudyDefinition``.
Definition = Any


class AnyTrial(Protocol):
    """What every test type's trial has (besides its opaque tokens and audio)."""

    @property
    def index(self) -> int:
        """Position in the listener's plan, from 0 (training trials first)."""
        ...

    @property
    def total(self) -> int:
        """Trials in the plan, training included."""
        ...

    @property
    def is_training(self) -> bool:
        """A training (practice) trial: rated, stored, left out of the statistics."""
        ...


class _Measured(Protocol):
    @property
    def play_counts(self) -> Sequence[int]: ...
    @property
    def listened_s(self) -> Sequence[float]: ...
    @property
    def heard_to_end(self) -> Sequence[bool]: ...
    @property
    def durations_s(self) -> Sequence[float]: ...


@dataclass(frozen=True)
class Playback:
    """What the player measured on a trial's streams, in the order of :meth:`TestType.streams`."""

    play_counts: tuple[int, ...]
    listened_s: tuple[float, ...]
    heard_to_end: tuple[bool, ...]
    durations_s: tuple[float, ...]

    @classmethod
    def of(cls, player: _Measured) -> Playback:
        """A snapshot of ``player`` (a :class:`mosapp.playback.player.Player`, or anything with its counters)."""
        return cls(tuple(int(n) for n in player.play_counts), tuple(float(x) for x in player.listened_s),
                   tuple(bool(b) for b in player.heard_to_end), tuple(float(x) for x in player.durations_s))


@dataclass(frozen=True)
class Streams:
    """A trial's audio as the player gets it: buffers and their (never displayed) names.

    ``reference`` is the index of the known reference (DCR, MUSHRA's open reference) or None;
    ``samples`` the indices of what is rated. The player starts on stream 0.
    """

    buffers: tuple[np.ndarray, ...]
    names: tuple[str, ...]
    reference: int | None
    samples: tuple[int, ...]


class TestType:
    """One kind of listening test. Subclass it, set the attributes, override the hooks that differ.

    Attributes:
        name: the study file's ``test_type`` (lower case).
        scale: what the report calls the scores (MOS, DMOS, MUSHRA, CMOS).
        score_range: the lowest and highest score, whole numbers.
        labels: the default labels (study file ``labels``; their number is fixed).
        labels_what: what the labels label, for the sentence that refuses a wrong number of them.
        instructions: the default instructions shown before the first trial.
        noun: what a heading calls one trial (trial, screen, pair).
        trial_class: what ``next_trial`` returns.
        session_class: what :meth:`mosapp.study.engine.StudyEngine.start_or_resume` returns.
        item_ratings: the scores are stored per trial item (``item_ratings``), not per trial (``ratings``).
        allows_gold: the study file may have ``[[gold]]`` trials (scored on this type's scale).
        allows_reference_first: the study file may set ``reference_first``.
        value_description: the ``value`` column of the ratings CSV.
        rating_columns: columns the ratings CSV has after the common ones (column → meaning).
        summary_columns: the columns of the type's own summary (:meth:`export_summary`), empty for the MOS summary.
        tick_step: the step between labelled scores on a plot's score axis.
        plot_name: the report plot's file is ``<study>-report-<plot_name>-vs-kbps.png``.
    """

    __test__ = False  # not a pytest test class, whatever module imports it

    name: ClassVar[str] = ""
    scale: ClassVar[str] = ""
    score_range: ClassVar[tuple[int, int]] = (1, 5)
    labels: ClassVar[tuple[str, ...]] = ()
    labels_what: ClassVar[str] = "for the scores 1 to 5"
    instructions: ClassVar[str] = ""
    noun: ClassVar[str] = "trial"
    trial_class: ClassVar[type] = object
    session_class: ClassVar[type[Sitting]] = Sitting
    item_ratings: ClassVar[bool] = False
    allows_gold: ClassVar[bool] = False
    allows_reference_first: ClassVar[bool] = False
    #: Listeners of this type can be post-screened (its :meth:`parse_screening` has a rule; ``--min-score`` means
    #: something). The default :meth:`parse_screening` has none.
    has_screening: ClassVar[bool] = False
    value_description: ClassVar[str] = "the score, 1..5"
    rating_columns: ClassVar[Mapping[str, str]] = {}
    summary_columns: ClassVar[Mapping[str, str]] = {}
    tick_step: ClassVar[int] = 1
    plot_name: ClassVar[str] = "mos"

    # ------------------------------------------------------------------ the study file
    def check_conditions(self, top: Reader, conditions: tuple[str, ...]) -> None:
        """Refuse conditions this type cannot test (MUSHRA: no hidden reference, too many for a screen)."""

    def full_trials(self, clips: int, conditions: int, repetitions: int) -> int:
        """Trials per listener when the study file gives none: every (clip, condition) ``repetitions`` times."""
        return clips * conditions * repetitions

    def check_trials(self, top: Reader, trials: int, *, clips: int, conditions: int, repetitions: int) -> None:
        """Refuse a ``trials_per_listener`` the plan cannot balance (default: a multiple of the conditions,
        at most :meth:`full_trials`)."""
        if trials % conditions:
            raise top.fail("trials_per_listener", f"is {trials}; give a multiple of the {conditions} conditions so "
                                                  f"each appears equally often")
        full = self.full_trials(clips, conditions, repetitions)
        if trials > full:
            raise top.fail("trials_per_listener", f"is {trials}; at most {full} (clips x conditions x repetitions = "
                                                  f"{clips} x {conditions} x {repetitions}); raise repetitions for more")

    def check_training(self, training: Reader, conditions: tuple[str, ...]) -> None:
        """Refuse ``[training] conditions`` this type cannot use (MUSHRA: every screen has them all)."""

    def parse_screening(self, top: Reader, conditions: tuple[str, ...]) -> ScreeningSpec:
        """The study file's ``screening`` (default: this type has no post-screening rule; only "off" is accepted)."""
        value = top.table.get("screening")
        rule = value if isinstance(value, str) else (value or {}).get("rule", "off") if isinstance(value, dict) else value
        if value is not None and (rule != "off" or (isinstance(value, dict) and set(value) - {"rule"})):
            raise top.fail("screening", f'is set, but a {self.name.upper()} study has no post-screening rule here; use '
                                        f'screening = "off" or leave it out')
        return ScreeningSpec(rule="off", explicit=value is not None)

    def check_screening_threshold(self, flag: str, value: float) -> None:
        """Refuse a command-line screening threshold (``--min-score`` …) outside this type's scale or units."""
        kind = self.name.upper()
        if not self.has_screening:
            raise StudyError(f"{flag} is not accepted for a {kind} study: {kind} has no post-screening rule.")
        if flag == "--anchor-max-score":
            raise StudyError(f"{flag} is not accepted for a {kind} study: only MUSHRA's bs1534 rule scores an anchor.")
        low, high = self.score_range
        if not low <= value <= high:
            raise StudyError(f"{flag} {value:g} is not accepted for a {kind} study; give a score from {low} to {high}.")

    # ------------------------------------------------------------------ a listener's plan and sitting
    def enrol(self, s: Session, definition: Definition, listener_id: int, listener_index: int,
              stimuli: Mapping[tuple[str, str], int], token: Callable[[], str]) -> None:
        """Write a new listener's trials (``stimuli``: (clip, condition) → stimulus id; ``token``: a fresh one)."""
        raise NotImplementedError

    def session(self, host: StudyHost, code: str, listener_id: int, session_id: int) -> Sitting:
        """A sitting of this type (``host``: the engine)."""
        return self.session_class(host, code, listener_id, session_id)

    # ------------------------------------------------------------------ the listener's screen
    def streams(self, trial: Any) -> Streams:
        """The player's streams of ``trial`` (:class:`Streams`)."""
        raise NotImplementedError

    def reference_first(self, definition: Definition, trial: Any) -> bool:
        """The trial's reference must be heard to its end before its sample (DCR with ``reference_first``)."""
        return False

    def ready(self, trial: Any, playback: Playback, *, require_full_listen: bool, reference_first: bool) -> bool:
        """The trial may be rated: what it requires was heard (default: every sample to its end, when required)."""
        s = self.streams(trial)
        return not require_full_listen or all(playback.heard_to_end[i] for i in s.samples)

    def rate(self, session: Any, trial: Any, score: Any, playback: Playback, response_time_s: float) -> int:
        """Commit ``score`` with what ``playback`` measured; returns what :class:`~mosapp.study.listening.Step`
        reports as saved (the score, or a screen's number of stimuli)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ results
    def finish_ratings(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add this type's :attr:`rating_columns` to the ratings frame (default: none)."""
        return frame

    def export_summary(self, store: Store, definition: Definition,
                       ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """The export's (summary, per-listener screening) tables when this type has its own, else None
        (the MOS summary and the screening of :mod:`mosapp.study.export`)."""
        return None

    def build_report(self, store: Store, definition: Definition, **options: Any) -> Any | None:
        """This type's own report (see :func:`mosapp.study.report.build_report`), or None for the MOS report."""
        return None

    def warnings(self, definition: Definition) -> list[str]:
        """Sentences the report prints before its numbers (MUSHRA without its anchors)."""
        return []

    def decorate_plot(self, ax: Any, definition: Definition) -> None:
        """Draw this type's marks on the score-against-bitrate plot (MUSHRA's bands, CCR's zero line)."""

    #: Where the plot's axes end (figure fraction) and its legend starts (axes fraction).
    plot_right: ClassVar[float] = 0.76
    legend_x: ClassVar[float] = 1.02


__all__ = ["AnyTrial", "Playback", "Streams", "TestType"]
