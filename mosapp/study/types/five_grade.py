"""DCR and ACR (ITU-T P.800 Annexes B and D): one sample per trial, scored 1..5.

::

    engine = StudyEngine.open("studies/demo.toml")
    with engine.start_or_resume("L07") as session:          # a ListeningSession
        while (trial := session.next_trial()) is not None:  # a Trial
            ...play trial.reference (DCR), trial.sample...
            session.rate(trial, 4, play_counts=(2, 1), listening_time_s=9.5, response_time_s=3.2)

**DCR** (degradation category rating, DMOS) plays the known reference and then the blinded
sample, which is rated on the degradation scale; with the study's ``reference_first`` the
reference must be heard to its end before the sample (P.800 Annex D's order). **ACR**
(absolute category rating, MOS) plays the sample alone. Either plan is
:func:`mosapp.study.plan.listener_plan` (balanced over listeners) with the study's gold trials
put in (:func:`mosapp.study.plan.insert_gold`); a trial is one ``trials`` row, its score one
``ratings`` row.

**Screening** (``[screening]``): ``reference`` (the default with a hidden reference) drops a
listener who rates the hidden reference below ``min_score`` in more than ``max_fraction`` of
their reference trials, once they have ``min_reference_trials`` of them; gold trials missed
more than ``gold_max_failures`` times drop them too. The defaults are :data:`SCREENING_DEFAULTS`.

Blinding: a :class:`Trial` holds opaque tokens (fresh for every trial, so not even the hidden
reference shares an id with the known one) and the audio as float32 arrays, each a buffer of
its own — never a condition name, codec, bitrate or file path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mosapp.core.config import PIPELINE_SAMPLE_RATE
from mosapp.study.errors import StudyError
from mosapp.study.plan import insert_gold, listener_plan
from mosapp.study.schema import (
    MAX_TRIALS_PER_LISTENER,
    REFERENCE,
    SCREENING_FIELDS,
    Reader,
    ScreeningSpec,
    check_anchor,
    max_fraction,
    screening_rule,
)
from mosapp.study.sitting import Progress, Sitting, check_seconds, check_whole
from mosapp.study.store import RatingRow, StimulusRow, TrialRow, utcnow
from mosapp.study.types import register_test_type
from mosapp.study.types.base import Playback, Streams, TestType

if TYPE_CHECKING:
    from mosapp.study.definition import StudyDefinition

SCORES = (1, 2, 3, 4, 5)
#: The screening a DCR or ACR study gets for what its ``[screening]`` leaves out (the one home of these numbers).
SCREENING_DEFAULTS = ScreeningSpec()


@dataclass(frozen=True)
class Trial:
    """One trial as a listener gets it.

    Attributes:
        trial_id: opaque token of this trial (pass the Trial back to ``rate``).
        stimulus_id: opaque token of the sample to rate.
        reference_id: opaque token of the known reference (DCR), None for ACR.
        sample: the sample, float32 ``(channels, n)`` at ``sample_rate``.
        reference: the known reference (DCR) in the same layout, or None.
        sample_rate: Hz (44100).
        index: position in the listener's plan, from 0 (training trials first).
        total: trials in the plan, training included.
        is_training: a training trial (rated, stored, left out of the statistics).
    """

    trial_id: str
    stimulus_id: str
    reference_id: str | None
    sample: np.ndarray = field(repr=False, compare=False)
    reference: np.ndarray | None = field(repr=False, compare=False)
    sample_rate: int
    index: int
    total: int
    is_training: bool


@dataclass(frozen=True)
class PlayCounts:
    """How often the listener played the sample and the reference before rating."""

    sample: int = 0
    reference: int = 0


def _play_counts(play_counts: int | Sequence[int] | Mapping[str, int] | PlayCounts | None) -> PlayCounts:
    if play_counts is None:
        counts = PlayCounts()
    elif isinstance(play_counts, PlayCounts):
        counts = play_counts
    elif isinstance(play_counts, Mapping):
        counts = PlayCounts(int(play_counts.get("sample", 0)), int(play_counts.get("reference", 0)))
    elif isinstance(play_counts, (int, np.integer)) and not isinstance(play_counts, bool):
        counts = PlayCounts(int(play_counts), 0)
    else:
        values = list(cast("Sequence[int]", play_counts))  # a bool ends here too: list() refuses it
        if len(values) != 2:
            raise StudyError(f"play_counts {play_counts!r} is not accepted; give (sample plays, reference plays).")
        counts = PlayCounts(int(values[0]), int(values[1]))
    if counts.sample < 0 or counts.reference < 0:
        raise StudyError(f"play_counts {play_counts!r} is not accepted; play counts are 0 or more.")
    return counts


def check_score(value: object) -> int:
    """``value`` as an integer score 1..5, or a :class:`StudyError`."""
    return check_whole(value, SCORES[0], SCORES[-1], "rating")


class ListeningSession(Sitting):
    """One sitting of one listener in a DCR or ACR study. Obtain from :meth:`StudyEngine.start_or_resume`."""

    #: The scores ``rate`` accepts (a type built on this session may have another scale).
    score_range: tuple[int, int] = SCORES[0], SCORES[-1]

    def next_trial(self) -> Any:
        """The first unrated trial of the plan (the same one until it is rated), or None when done."""
        store = self._engine.store
        with store.read() as s:
            total = s.execute(select(func.count()).select_from(TrialRow)
                              .where(TrialRow.listener_id == self._listener_id)).scalar_one()
            row = s.execute(
                select(TrialRow.position, TrialRow.is_training, TrialRow.trial_token, TrialRow.sample_token,
                       TrialRow.reference_token, TrialRow.stimulus_id, TrialRow.reference_stimulus_id,
                       TrialRow.processed_first)
                .outerjoin(RatingRow, RatingRow.trial_id == TrialRow.id)
                .where(TrialRow.listener_id == self._listener_id, RatingRow.id.is_(None))
                .order_by(TrialRow.position).limit(1)
            ).one_or_none()
            if row is None:
                return None
            files = dict(s.execute(select(StimulusRow.id, StimulusRow.audio_file).where(
                StimulusRow.id.in_([row.stimulus_id, row.reference_stimulus_id or -1]))).all())
        return self._trial(row, files, int(total))

    def _trial(self, row: Any, files: Mapping[int, str], total: int) -> Any:
        """The listener's trial of ``row`` (a ``trials`` row; ``files``: stimulus id → audio file)."""
        sample = self._engine.audio_for(files[row.stimulus_id])
        reference = self._engine.audio_for(files[row.reference_stimulus_id]) if row.reference_stimulus_id else None
        return Trial(trial_id=row.trial_token, stimulus_id=row.sample_token, reference_id=row.reference_token,
                     sample=sample, reference=reference, sample_rate=PIPELINE_SAMPLE_RATE, index=int(row.position),
                     total=total, is_training=bool(row.is_training))

    def rate(self, trial: Any, value: int, *,
             play_counts: int | Sequence[int] | Mapping[str, int] | PlayCounts | None = None,
             listening_time_s: float = 0.0,
             response_time_s: float = 0.0) -> None:
        """Record a rating and commit it before returning.

        Args:
            trial: the :class:`Trial` (or its ``trial_id``).
            value: the score, a whole number 1..5.
            play_counts: plays of the sample and the reference: ``(sample, reference)``, a
                :class:`PlayCounts`, ``{"sample": n, "reference": m}`` or an int (sample only).
            listening_time_s: seconds of audio the listener played in this trial.
            response_time_s: seconds from the trial's start to the rating.

        Raises:
            StudyError: the score is outside 1..5, the trial is not this listener's or was
                already rated, the session is closed, the database is read-only or locked.
        """
        score = check_whole(value, *self.score_range, "rating")
        counts = _play_counts(play_counts)
        listening = check_seconds(listening_time_s, "listening_time_s")
        response = check_seconds(response_time_s, "response_time_s")
        if self._closed:
            raise StudyError("This listening session is closed; start or resume a new one to rate.")
        token = trial if isinstance(trial, str) else str(trial.trial_id)
        try:
            with self._engine.store.write() as s:
                row = s.execute(select(TrialRow.id, TrialRow.listener_id).where(TrialRow.trial_token == token)
                                ).one_or_none()
                if row is None or row.listener_id != self._listener_id:
                    raise StudyError(f'The trial "{token}" is not one of listener {self.listener_code}\'s trials.')
                if s.scalar(select(RatingRow.id).where(RatingRow.trial_id == row.id)) is not None:
                    raise StudyError(f'The trial "{token}" is already rated; a trial is rated only once.')
                s.add(RatingRow(trial_id=row.id, session_id=self._session_id, value=score, given_at=utcnow(),
                                plays_sample=counts.sample, plays_reference=counts.reference,
                                listening_time_s=listening, response_time_s=response))
        except IntegrityError:
            raise StudyError(f'The trial "{token}" is already rated; a trial is rated only once.') from None

    @property
    def progress(self) -> Progress:
        """Rated and planned trials of this listener (over all sittings)."""
        with self._engine.store.read() as s:
            r = s.execute(
                select(
                    func.sum(case((TrialRow.is_training, 0), else_=1)),
                    func.sum(case((TrialRow.is_training, 1), else_=0)),
                    func.sum(case((RatingRow.id.is_not(None) & ~TrialRow.is_training, 1), else_=0)),
                    func.sum(case((RatingRow.id.is_not(None) & TrialRow.is_training, 1), else_=0)),
                ).select_from(TrialRow).outerjoin(RatingRow, RatingRow.trial_id == TrialRow.id)
                .where(TrialRow.listener_id == self._listener_id)
            ).one()
        return Progress(rated=int(r[2] or 0), total=int(r[0] or 0), training_rated=int(r[3] or 0),
                        training_total=int(r[1] or 0))




def enrol_plan(s: Session, definition: StudyDefinition, listener_id: int, listener_index: int,
               stimuli: Mapping[tuple[str, str], int], token: Callable[[], str], *, with_reference: bool) -> None:
    """Write a new listener's balanced plan (gold trials put in), one ``trials`` row per trial."""
    d = definition
    plan = listener_plan(
        clips=[c.name for c in d.plan_clips], conditions=list(d.conditions), trials=d.trials_per_listener,
        repetitions=d.repetitions, seed=d.seed, listener_index=int(listener_index),
        training_trials=d.training.trials, training_conditions=d.training.conditions,
    )
    plan = insert_gold(plan, [(g.clip, g.condition, g.expected) for g in d.gold], seed=d.seed,
                       listener_index=int(listener_index))
    for i, planned in enumerate(plan):
        try:
            sid = stimuli[(planned.clip, planned.condition)]
            ref = stimuli[(planned.clip, REFERENCE)] if with_reference else None
        except KeyError:
            raise StudyError(f'The study "{d.name}" lacks stimuli; run `mosapp study prepare` again.') from None
        s.add(TrialRow(listener_id=listener_id, position=i, is_training=planned.is_training, stimulus_id=sid,
                       reference_stimulus_id=ref, trial_token=token(), sample_token=token(),
                       reference_token=token() if ref is not None else None,
                       gold_expected=(",".join(map(str, planned.gold_expected))
                                      if planned.gold_expected is not None else None)))
    s.flush()


def parse_screening(top: Reader, test_type: str, conditions: tuple[str, ...]) -> ScreeningSpec:
    """A DCR or ACR study's ``screening``: "off", "reference", "bs1534" or a ``[screening]`` table."""
    has_reference = REFERENCE in conditions
    value = top.table.get("screening")
    if value is None:
        if test_type == "dcr" and not has_reference:
            raise StudyError(
                f'{top.where}: this DCR study has no hidden reference ("{REFERENCE}" is not in conditions), so its '
                f'listeners cannot be screened; add "{REFERENCE}" to conditions, or set screening = "off" to run '
                f"without post-screening."
            )
        return replace(SCREENING_DEFAULTS, rule="reference" if has_reference else "off")
    if isinstance(value, str):
        value = {"rule": value}
    if not isinstance(value, dict):
        raise top.fail("screening", 'must be "reference", "bs1534", "off" or a [screening] table')
    r = top.subtable("screening", SCREENING_FIELDS) if isinstance(top.table["screening"], dict) else \
        Reader(top.where, value, "screening.", SCREENING_FIELDS)
    rule = screening_rule(r, "reference" if has_reference else "off")
    if rule != "off" and not has_reference:
        raise r.fail("rule", f'is "{rule}", which needs the hidden reference: add "{REFERENCE}" to conditions '
                             f'or use "off"')
    d = SCREENING_DEFAULTS
    min_score = _grade(r, "min_score", d.min_score)
    fraction = max_fraction(r, d.max_fraction)
    anchor = r.string("anchor")
    check_anchor(r, rule, anchor, conditions, "is missing; the bs1534 rule needs the anchor condition it scores "
                                              "(BS.1534-3: the mid-range anchor, lowpass-7k)")
    anchor_max = _grade(r, "anchor_max_score", d.anchor_max_score)
    return ScreeningSpec(
        rule=rule, min_score=min_score, max_fraction=fraction,
        min_reference_trials=r.integer("min_reference_trials", d.min_reference_trials, minimum=1,
                                       maximum=MAX_TRIALS_PER_LISTENER),
        anchor=anchor, anchor_max_score=anchor_max,
        gold_max_failures=r.integer("gold_max_failures", d.gold_max_failures, minimum=0,
                                    maximum=MAX_TRIALS_PER_LISTENER),
        explicit=True,
    )


def _grade(r: Reader, key: str, default: int) -> int:
    value = r.integer(key, default, minimum=1)
    if value > 5:
        raise r.fail(key, f"is {value}; give a score from 1 to 5")
    return value


class FiveGradeType(TestType):
    """What DCR and ACR share: the 1..5 scale, the balanced plan with gold trials, the reference screening."""

    score_range = (1, 5)
    trial_class = Trial
    session_class = ListeningSession
    allows_gold = True
    has_screening = True
    #: DCR plays the known reference with every sample.
    with_reference: ClassVar[bool] = False

    def parse_screening(self, top: Reader, conditions: tuple[str, ...]) -> ScreeningSpec:
        return parse_screening(top, self.name, conditions)

    def enrol(self, s: Session, definition: StudyDefinition, listener_id: int, listener_index: int,
              stimuli: Mapping[tuple[str, str], int], token: Callable[[], str]) -> None:
        enrol_plan(s, definition, listener_id, listener_index, stimuli, token, with_reference=self.with_reference)

    def streams(self, trial: Trial) -> Streams:
        if trial.reference is not None:
            return Streams((trial.reference, trial.sample), ("reference", "sample"), 0, (1,))
        return Streams((trial.sample,), ("sample",), None, (0,))

    def reference_first(self, definition: StudyDefinition, trial: Trial) -> bool:
        return definition.reference_first and trial.reference is not None

    def ready(self, trial: Trial, playback: Playback, *, require_full_listen: bool, reference_first: bool) -> bool:
        if reference_first and not playback.heard_to_end[0]:
            return False
        return not require_full_listen or playback.heard_to_end[self.streams(trial).samples[0]]

    def rate(self, session: Any, trial: Trial, score: Any, playback: Playback, response_time_s: float) -> int:
        if not isinstance(score, int):
            raise StudyError(f"The rating {score!r} is not accepted; give one whole number.")
        if not isinstance(session, ListeningSession):
            raise StudyError("ListeningSession.rate takes the Trial that next_trial returned.")
        s = self.streams(trial)
        counts = playback.play_counts
        plays_reference = counts[s.reference] if s.reference is not None else 0
        session.rate(trial, score, play_counts=(counts[s.samples[0]], plays_reference),
                     listening_time_s=finite(float(sum(playback.listened_s))), response_time_s=response_time_s)
        return score


def finite(x: float) -> float:
    """``x``, or 0 where it is not finite (a player's measurement that went wrong)."""
    return x if math.isfinite(x) else 0.0


class DcrType(FiveGradeType):
    """DCR: the known reference, then the blinded sample, on the degradation scale (DMOS)."""

    name = "dcr"
    scale = "DMOS"
    labels = (
        "Degradation is very annoying",
        "Degradation is annoying",
        "Degradation is slightly annoying",
        "Degradation is audible but not annoying",
        "Degradation is inaudible",
    )
    instructions = ("You will hear the reference, then a sample. Rate how much the sample is degraded "
                    "compared with the reference.")
    allows_reference_first = True
    with_reference = True


class AcrType(FiveGradeType):
    """ACR: the blinded sample alone, on the absolute category scale (MOS)."""

    name = "acr"
    scale = "MOS"
    labels = ("Bad", "Poor", "Fair", "Good", "Excellent")
    instructions = "Listen to each sample and rate its overall quality."


DCR = register_test_type(DcrType())
ACR = register_test_type(AcrType())

__all__ = ["ACR", "DCR", "SCORES", "SCREENING_DEFAULTS", "AcrType", "DcrType", "FiveGradeType", "ListeningSession",
           "PlayCounts", "Trial", "check_score", "enrol_plan", "finite", "parse_screening"]
