"""A listener's way through a study, without a window: :class:`ListenController`.

::

    controller.open(definition)                  ─► None (ready) or why it is not prepared
    controller.start("L07", audio_device=…)      ─► Step(INSTRUCTIONS | DONE)
    controller.begin()                           ─► Step(TRIAL | DONE)
        streams(step.trial) ─► a player ─► Playback ─► controller.rate(score, playback)
                                                   ─► Step(TRIAL | PRACTICE_OVER | BREAK | DONE)
    controller.end_practice() / end_break()      ─► Step(TRIAL | DONE)

The controller owns the trial state machine of every test type (DCR, ACR, MUSHRA, CCR):
the session, the trial shown, when a break is due, when the practice is over, what a trial
needs before it can be rated (:meth:`ListenController.ready`) and how the player's
measurements become the rating's play counts and listening times. Every method that touches
the database (``open``, ``start``, ``begin``, ``end_practice``, ``end_break``, ``rate``,
``end_session``, ``close``) runs where its caller runs: the Listen view calls them on a worker
thread, one at a time, so a locked database never freezes the window. The controller is not
thread-safe; one caller at a time.

A :class:`Step` says which screen comes next and carries what it shows (the trial, the
listener's progress); a rating that was committed is reported in ``Step.saved``. A rating
that could not be saved raises :class:`~mosapp.study.errors.StudyError` and changes nothing:
the same trial stays current, and rating again saves it.

The controller names no test type: what a trial plays (:func:`streams`), when it may be rated
and how a score and the player's measurements are committed are the study's test type's
(:class:`~mosapp.study.types.base.TestType`), so a new type works here unchanged.

Blinding: nothing here names a condition; trials carry opaque tokens and audio only
(:class:`~mosapp.study.types.five_grade.Trial`, :class:`~mosapp.study.types.mushra.MushraTrial`,
:class:`~mosapp.study.types.ccr.CcrTrial`).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url

from mosapp.study.definition import StudyDefinition
from mosapp.study.engine import StudyEngine
from mosapp.study.errors import StudyError
from mosapp.study.sitting import Progress
from mosapp.study.store import StudyRow
from mosapp.study.types import type_of_trial
from mosapp.study.types.base import AnyTrial, Playback, Streams

#: A break is suggested after this many trials …
DEFAULT_BREAK_TRIALS = 12
#: … or after this many minutes, whichever comes first.
DEFAULT_BREAK_MINUTES = 15.0
#: How long a save waits for another program holding the database.
DEFAULT_BUSY_TIMEOUT_S = 5.0

NOT_PREPARED = "The stimuli of this study have not been prepared yet."
ALL_RATED = "All trials are rated and your answers are saved. You can tell the researcher you are done."
ALREADY_RATED = "You have already rated every trial of this study. Your answers are saved."

#: A test type's session (its ``session_class``): what :meth:`StudyEngine.start_or_resume` returns.
AnySession = Any


class Screen(enum.Enum):
    """What the listener sees next."""

    START = "start"
    INSTRUCTIONS = "instructions"
    TRIAL = "trial"
    PRACTICE_OVER = "practice_over"
    BREAK = "break"
    DONE = "done"


@dataclass(frozen=True)
class Step:
    """The screen that follows an action.

    Attributes:
        screen: the screen.
        progress: the listener's progress (INSTRUCTIONS, TRIAL, PRACTICE_OVER, BREAK).
        trial: the trial to show (TRIAL).
        message: DONE: the closing sentence; START: why the session cannot go on.
        saved: ``(plan index, score)`` of the rating this action committed (a MUSHRA screen
            reports its number of stimuli as the score), else None.
    """

    screen: Screen
    progress: Progress | None = None
    trial: AnyTrial | None = None
    message: str = ""
    saved: tuple[int, int] | None = None


def streams(trial: AnyTrial) -> Streams:
    """The player's streams of ``trial`` (its test type's): DCR reference, sample; ACR sample; MUSHRA
    reference, 1..N; CCR A, B."""
    return type_of_trial(trial).streams(trial)


def sqlite_missing(url: str) -> bool:
    """True when ``url`` is a SQLite file that does not exist yet (a study never prepared)."""
    try:
        u = make_url(url)
    except Exception:  # noqa: BLE001 — the engine reports a bad URL itself
        return False
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return False
    return not Path(u.database).exists()


def prepared_state(engine: StudyEngine) -> str | None:
    """None when ``engine``'s study is prepared and matches its file, else a sentence saying why not."""
    d = engine.definition
    with engine.store.read() as s:
        row = s.scalars(select(StudyRow).where(StudyRow.name == d.name)).one_or_none()
        if row is None:
            return NOT_PREPARED
        if row.prepared_at is None:
            return "The stimuli of this study are only partly prepared (an earlier run stopped)."
        if row.design_json != d.with_stored_seed(row.design_json).design_json():
            return "The study file changed since its stimuli were prepared."
    return None


class ListenController:
    """One listener at a time on one study: the session, the trial shown, breaks, ratings.

    Args:
        database: a SQLAlchemy URL overriding the study's database.
        busy_timeout_s: how long a write waits for another program holding the database.
        require_full_listen: a sample must be heard to its end once before it can be rated
            (DCR, ACR, both samples of a CCR pair).
        break_every_trials / break_every_minutes: suggest a break after this many trials or
            minutes since the last one (0 turns either off).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, *, database: str | None = None, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
                 require_full_listen: bool = True, break_every_trials: int = DEFAULT_BREAK_TRIALS,
                 break_every_minutes: float = DEFAULT_BREAK_MINUTES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.database = database
        self.busy_timeout_s = float(busy_timeout_s)
        self.require_full_listen = bool(require_full_listen)
        self.break_every_trials = int(break_every_trials)
        self.break_every_minutes = float(break_every_minutes)
        self.clock = clock
        self.definition: StudyDefinition | None = None
        self.engine: StudyEngine | None = None
        self.session: AnySession | None = None
        self.trial: AnyTrial | None = None
        #: Trials rated since the last break, and when it ended (``clock`` seconds).
        self.since_break = 0
        self.break_clock = clock()
        self._shown_at = clock()
        self._followed = False  # the shown trial's sample already followed its reference

    # ------------------------------------------------------------------ the study
    def open(self, definition: StudyDefinition) -> str | None:
        """Open ``definition``'s database (ending any session): None when listeners can start,
        else a sentence saying why not (its stimuli are not prepared, or not for this file).

        Raises:
            StudyError: the database cannot be opened.
        """
        self.close()
        self.definition = definition
        if sqlite_missing(self.database or definition.database_url):
            return NOT_PREPARED
        try:
            self.engine = StudyEngine.open(definition, database=self.database, busy_timeout_s=self.busy_timeout_s)
            return prepared_state(self.engine)
        except StudyError:
            self.close_engine()
            raise

    @property
    def is_open(self) -> bool:
        """A study's database is open."""
        return self.engine is not None

    def close_engine(self) -> None:
        """Close the database (a session, if any, is left as it is)."""
        if self.engine is not None:
            engine, self.engine = self.engine, None
            try:
                engine.close()
            except Exception:  # noqa: BLE001 — closing must never fail the caller
                pass

    def close(self) -> None:
        """End the session and close the database."""
        self.end_session()
        self.close_engine()

    # ------------------------------------------------------------------ a session
    def start_problem(self, code: str) -> str | None:
        """Why ``code`` cannot start now, without asking the database (None: try it)."""
        if self.engine is None:
            return "No prepared study is open."
        if not code:
            return "Enter your listener code first."
        return None

    def start(self, code: str, *, audio_device: str = "") -> Step:
        """Start or resume listener ``code``'s session: INSTRUCTIONS, or DONE when nothing is left to rate.

        Raises:
            StudyError: a bad code, no prepared study, a read-only or locked database.
        """
        problem = self.start_problem(code)
        if problem is not None or self.engine is None:
            raise StudyError(problem or "No prepared study is open.")
        session = self.engine.start_or_resume(code, audio_device=audio_device)
        progress = session.progress
        self.session = session
        self.trial = None
        self.since_break = 0
        self.break_clock = self.clock()
        if progress.finished:
            self.end_session()
            return Step(Screen.DONE, progress, message=ALREADY_RATED)
        return Step(Screen.INSTRUCTIONS, progress)

    def begin(self) -> Step | None:
        """Leave the instructions: the first unrated trial (None without a session)."""
        return self._next() if self.session is not None else None

    def end_practice(self) -> Step | None:
        """Leave "practice is over": the first trial that counts (None without a session)."""
        return self._next() if self.session is not None else None

    def end_break(self) -> Step | None:
        """Leave the break (its clock starts again): the next trial (None without a session)."""
        self.since_break = 0
        self.break_clock = self.clock()
        return self._next() if self.session is not None else None

    def end_session(self) -> None:
        """End the sitting (its end time is recorded; every rating is already committed)."""
        self.trial = None
        if self.session is not None:
            session, self.session = self.session, None
            try:
                session.close()
            except StudyError:
                pass  # the end time of the sitting is bookkeeping; every rating is already committed

    def _next(self, saved: tuple[int, int] | None = None) -> Step:
        session = self.session
        if session is None:
            return Step(Screen.START, message="No listening session is open; enter your listener code.", saved=saved)
        try:
            trial = session.next_trial()
            if trial is None:
                self.end_session()
                return Step(Screen.DONE, message=ALL_RATED, saved=saved)
            progress = session.progress
        except StudyError as exc:
            return Step(Screen.START, message=str(exc), saved=saved)
        self.trial = trial
        self._shown_at = self.clock()
        self._followed = False
        return Step(Screen.TRIAL, progress, trial, saved=saved)

    # ------------------------------------------------------------------ rating
    def reference_first(self, trial: AnyTrial) -> bool:
        """P.800 order: this (DCR) trial's reference must be heard to its end before the sample."""
        d = self.definition
        return d is not None and type_of_trial(trial).reference_first(d, trial)

    def needs_reference(self, playback: Playback) -> bool:
        """The shown trial is a reference-first DCR trial whose reference was not yet heard to its end."""
        trial = self.trial
        return trial is not None and self.reference_first(trial) and not playback.heard_to_end[0]

    def follow_on(self, playback: Playback, *, playing: bool) -> int | None:
        """P.800's order: the stream to play by itself now (the sample), once per trial, when the shown trial is
        reference-first and its reference has just played to its end (nothing ``playing``); else None."""
        trial = self.trial
        if trial is None or self._followed or playing or not self.reference_first(trial):
            return None
        s = streams(trial)
        if s.reference is None or not playback.heard_to_end[s.reference]:
            return None
        self._followed = True
        return s.samples[0]

    def ready(self, playback: Playback) -> bool:
        """The shown trial may be rated now: what it requires was heard (the scores are the caller's)."""
        trial = self.trial
        if trial is None:
            return False
        return type_of_trial(trial).ready(trial, playback, require_full_listen=self.require_full_listen,
                                          reference_first=self.reference_first(trial))

    def rate(self, score: int | Sequence[int], playback: Playback) -> Step:
        """Commit the shown trial's rating (the score(s) and what ``playback`` measured) and go on.

        ``score``: 1..5 (DCR/ACR), -3..+3 (CCR, B against A), or one 0..100 per stimulus (MUSHRA):
        what the study's test type takes (:meth:`mosapp.study.types.base.TestType.rate`).

        Raises:
            StudyError: nothing is shown, the trial is not ready (:meth:`ready`), the score is
                not accepted, or the database is locked or read-only; nothing changed.
        """
        trial, session = self.trial, self.session
        if trial is None or session is None:
            raise StudyError("No trial is shown; there is nothing to rate.")
        if not self.ready(playback):
            raise StudyError("This trial cannot be rated yet; listen to it first.")
        response = max(0.0, self.clock() - self._shown_at)
        shown = type_of_trial(trial).rate(session, trial, score, playback, response)
        self.trial = None
        self.since_break += 1
        return self._after(trial, (trial.index, shown))

    def break_due(self) -> bool:
        """A break is due: enough trials or minutes since the last one."""
        minutes = (self.clock() - self.break_clock) / 60.0
        return ((self.break_every_trials > 0 and self.since_break >= self.break_every_trials)
                or (self.break_every_minutes > 0 and minutes >= self.break_every_minutes))

    def _after(self, trial: AnyTrial, saved: tuple[int, int]) -> Step:
        """After a committed rating: the end, "practice is over", a break, or the next trial."""
        session = self.session
        if trial.index + 1 >= trial.total or session is None:
            return self._next(saved)  # the end
        try:
            if trial.is_training:
                p = session.progress
                if p.training_rated >= p.training_total:
                    return Step(Screen.PRACTICE_OVER, p, saved=saved)
            if self.break_due():
                return Step(Screen.BREAK, session.progress, saved=saved)
        except StudyError as exc:
            return Step(Screen.START, message=str(exc), saved=saved)
        return self._next(saved)


# ---------------------------------------------------------------------------------- what the screens say
def welcome_text(code: str, progress: Progress) -> str:
    """The instructions page's greeting: a returning listener is told where they resume."""
    done = progress.next_index
    total = progress.total + progress.training_total
    return (f"Welcome back, {code}. Resuming at trial {done + 1} of {total}: the {done} trial(s) you rated before "
            f"are saved." if done else f"Welcome, {code}.")


def plan_text(progress: Progress) -> str:
    """The instructions page's line on what is left: practice first, then the trials that count."""
    left_training = progress.training_total - progress.training_rated
    if left_training > 0:
        first = "The first trial is" if left_training == 1 else f"The first {left_training} trials are"
        return (f"{first} practice, to get used to the sounds and the scale; then {progress.total - progress.rated} "
                f"trials follow.")
    return f"{progress.total - progress.rated} trials to go."


def practice_over_text(progress: Progress) -> str:
    return (f"The practice trials are over. The {progress.total - progress.rated} trials that count start now; they "
            f"work the same way. Press Enter or Start when you are ready.")


def break_text(progress: Progress) -> str:
    return (f"You have done {progress.next_index} of {progress.total + progress.training_total} trials. Rest your "
            f"ears for a few minutes; your answers are saved. Press Enter or Continue when you are ready.")


def heading(trial: AnyTrial, progress: Progress, noun: str) -> str:
    """A trial's heading, e.g. "Practice trial 1 of 2" or "Trial 3 of 12" (``noun``: trial, screen, pair)."""
    if trial.is_training:
        return f"Practice {noun} {trial.index + 1} of {progress.training_total}"
    return f"{noun.capitalize()} {progress.rated + 1} of {progress.total}"


__all__ = [
    "ALL_RATED", "ALREADY_RATED", "DEFAULT_BREAK_MINUTES", "DEFAULT_BREAK_TRIALS", "DEFAULT_BUSY_TIMEOUT_S",
    "NOT_PREPARED", "AnyTrial", "ListenController", "Playback", "Screen", "Step", "Streams", "break_text",
    "heading", "plan_text", "practice_over_text", "prepared_state", "sqlite_missing", "streams", "welcome_text",
]
