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

Blinding: nothing here names a condition; trials carry opaque tokens and audio only
(:class:`~mosapp.study.engine.Trial`, :class:`~mosapp.study.mushra.MushraTrial`,
:class:`~mosapp.study.ccr.CcrTrial`).
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import make_url

from mosapp.study.ccr import CcrSession, CcrTrial
from mosapp.study.definition import StudyDefinition
from mosapp.study.engine import ListeningSession, Progress, StudyEngine, Trial
from mosapp.study.errors import StudyError
from mosapp.study.mushra import MushraSession, MushraTrial
from mosapp.study.store import StudyRow

#: A break is suggested after this many trials …
DEFAULT_BREAK_TRIALS = 12
#: … or after this many minutes, whichever comes first.
DEFAULT_BREAK_MINUTES = 15.0
#: How long a save waits for another program holding the database.
DEFAULT_BUSY_TIMEOUT_S = 5.0
#: A MUSHRA sample counts as played after this many seconds of it (or all of a shorter one).
MIN_PLAYED_S = 1.0

NOT_PREPARED = "The stimuli of this study have not been prepared yet."
ALL_RATED = "All trials are rated and your answers are saved. You can tell the researcher you are done."
ALREADY_RATED = "You have already rated every trial of this study. Your answers are saved."

AnyTrial = Trial | MushraTrial | CcrTrial
AnySession = ListeningSession | MushraSession | CcrSession


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
    """What the player measured on a trial's streams, in the order of :func:`streams`."""

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


def streams(trial: AnyTrial) -> Streams:
    """The player's streams of ``trial``: DCR reference, sample; ACR sample; MUSHRA reference, 1..N; CCR A, B."""
    if isinstance(trial, MushraTrial):
        n = len(trial.items)
        return Streams((trial.reference, *(item.audio for item in trial.items)),
                       ("reference", *(str(i + 1) for i in range(n))), 0, tuple(range(1, n + 1)))
    if isinstance(trial, CcrTrial):
        return Streams((trial.first, trial.second), ("A", "B"), None, (0, 1))
    if trial.reference is not None:
        return Streams((trial.reference, trial.sample), ("reference", "sample"), 0, (1,))
    return Streams((trial.sample,), ("sample",), None, (0,))


def mushra_played(trial: MushraTrial, playback: Playback) -> list[bool]:
    """Per MUSHRA stimulus: played for at least :data:`MIN_PLAYED_S` (or to its end)."""
    listened, ends, durations = playback.listened_s, playback.heard_to_end, playback.durations_s
    return [listened[i + 1] >= min(MIN_PLAYED_S, durations[i + 1] - 0.05) or ends[i + 1]
            for i in range(len(trial.items))]


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


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


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
        return Step(Screen.TRIAL, progress, trial, saved=saved)

    # ------------------------------------------------------------------ rating
    def reference_first(self, trial: AnyTrial) -> bool:
        """P.800 order: this DCR trial's reference must be heard to its end before the sample."""
        return (self.definition is not None and self.definition.reference_first and isinstance(trial, Trial)
                and trial.reference is not None)

    def needs_reference(self, playback: Playback) -> bool:
        """The shown trial is a reference-first DCR trial whose reference was not yet heard to its end."""
        trial = self.trial
        return trial is not None and self.reference_first(trial) and not playback.heard_to_end[0]

    def ready(self, playback: Playback) -> bool:
        """The shown trial may be rated now: what it requires was heard (the scores are the caller's)."""
        trial = self.trial
        if trial is None:
            return False
        if isinstance(trial, MushraTrial):
            return all(mushra_played(trial, playback))
        if isinstance(trial, CcrTrial):
            return not self.require_full_listen or all(playback.heard_to_end[:2])
        if self.needs_reference(playback):
            return False
        return not self.require_full_listen or playback.heard_to_end[streams(trial).samples[0]]

    def rate(self, score: int | Sequence[int], playback: Playback) -> Step:
        """Commit the shown trial's rating (the score(s) and what ``playback`` measured) and go on.

        ``score``: 1..5 (DCR/ACR), -3..+3 (CCR, B against A), or one 0..100 per stimulus (MUSHRA).

        Raises:
            StudyError: nothing is shown, the trial is not ready (:meth:`ready`), the score is
                not accepted, or the database is locked or read-only; nothing changed.
        """
        trial, session = self.trial, self.session
        if trial is None or session is None:
            raise StudyError("No trial is shown; there is nothing to rate.")
        if not self.ready(playback):
            raise StudyError("This trial cannot be rated yet; listen to it first.")
        counts, listened = playback.play_counts, playback.listened_s
        response = max(0.0, self.clock() - self._shown_at)
        if isinstance(trial, MushraTrial):
            if isinstance(score, int) or not isinstance(session, MushraSession):
                raise StudyError(f"This screen has {len(trial.items)} stimuli; give one score (0-100) for each.")
            scores = list(score)
            samples = streams(trial).samples
            session.rate(trial, scores, plays=[counts[i] for i in samples], reference_plays=counts[0],
                         listening_time_s=[_finite(listened[i]) for i in samples], response_time_s=response)
            shown = len(trial.items)
        else:
            if not isinstance(score, int):
                raise StudyError(f"The rating {score!r} is not accepted; give one whole number.")
            total = _finite(float(sum(listened)))
            if isinstance(trial, CcrTrial):
                if not isinstance(session, CcrSession):
                    raise StudyError("CcrSession.rate takes the CcrTrial that next_trial returned.")
                session.rate(trial, score, play_counts=(counts[0], counts[1]), listening_time_s=total,
                             response_time_s=response)
            else:
                if not isinstance(session, ListeningSession):
                    raise StudyError("ListeningSession.rate takes the Trial that next_trial returned.")
                s = streams(trial)
                plays_reference = counts[s.reference] if s.reference is not None else 0
                session.rate(trial, score, play_counts=(counts[s.samples[0]], plays_reference),
                             listening_time_s=total, response_time_s=response)
            shown = score
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
    "MIN_PLAYED_S", "NOT_PREPARED", "ListenController", "Playback", "Screen", "Step", "Streams", "break_text",
    "heading", "mushra_played", "plan_text", "practice_over_text", "prepared_state", "sqlite_missing", "streams",
    "welcome_text",
]
