"""MUSHRA (ITU-R BS.1534-3): every condition of one clip on one screen, rated 0..100 against the open reference.

::

    engine = StudyEngine.open("studies/demo-mushra.toml")
    with engine.start_or_resume("L07") as session:          # a MushraSession
        while (trial := session.next_trial()) is not None:  # a MushraTrial: one screen
            trial.reference                       # the open reference, float32 (channels, n)
            [item.audio for item in trial.items]  # every condition, the hidden reference and anchors
                                                  # included, in a random order per screen and listener
            session.rate(trial, [80, 100, 35, ...], plays=[2, 1, 1, ...], reference_plays=3,
                         listening_time_s=[...], response_time_s=41.0)   # one transaction per screen

**Plan.** A listener's plan has ``trials_per_listener`` screens (default: clips x repetitions),
preceded by ``[training] trials`` practice screens. Screens are the (clip, repetition) pairs in a
random order per listener (seeded by the study's seed and the enrolment number); with fewer
screens than pairs, listener ``p`` starts at pair ``p * trials mod pairs``, so the clips are used
equally often across listeners. On every screen the conditions are shuffled afresh
(``numpy.random.default_rng([seed, 1534, p, screen]).permutation``): the order is random per
trial and per listener. Each item gets a fresh token; the hidden reference is a buffer of its own.

**Scale.** 0..100 in whole numbers, with BS.1534's five labelled bands (0-20 Bad, 20-40 Poor,
40-60 Fair, 60-80 Good, 80-100 Excellent; the study's ``labels`` rename them).

**Screening** (:func:`mosapp.study.export.screen` with the study's ``[screening]``; MUSHRA
defaults): a listener is dropped who rates the hidden reference below ``min_score`` (90) in
more than ``max_fraction`` (15 %) of their screens, or the mid anchor ``anchor``
(``lowpass-7k``) above ``anchor_max_score`` (90) in more than 15 % of them, each part applied
once the listener has ``min_reference_trials`` (3) screens. Ratings of dropped listeners stay in
the CSV (``screened_out``) and out of the statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from mosapp.core.config import PIPELINE_SAMPLE_RATE
from mosapp.study.errors import StudyError
from mosapp.study.items import ITEM_COLUMNS, ItemScore, ItemSession
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
from mosapp.study.sitting import check_count, check_seconds, check_whole
from mosapp.study.stats import SCREENING_MAX_FRACTION
from mosapp.study.store import TrialItemRow, TrialRow
from mosapp.study.types import register_test_type
from mosapp.study.types.base import Playback, Streams, TestType

if TYPE_CHECKING:
    from mosapp.study.definition import StudyDefinition

#: The scale.
MIN_SCORE, MAX_SCORE = 0, 100
#: The band edges of BS.1534's quality scale: band i covers [BANDS[i], BANDS[i+1]].
BANDS = (0, 20, 40, 60, 80, 100)
#: The BS.1534 mid anchor (3.5 kHz is the low anchor): the default anchor of MUSHRA's screening.
MUSHRA_MID_ANCHOR = "lowpass-7k"
#: BS.1534-3's two anchors.
MUSHRA_ANCHORS = {"lowpass-3.5k": "low anchor (3.5 kHz)", MUSHRA_MID_ANCHOR: "mid-range anchor (7 kHz)"}
#: BS.1534-3 recommends no more than 12 signals on one screen (reference and anchors included).
MUSHRA_MAX_CONDITIONS = 12
#: A MUSHRA sample counts as played after this many seconds of it (or all of a shorter one).
MIN_PLAYED_S = 1.0
#: MUSHRA's screening for what its ``[screening]`` leaves out (the one home of these numbers):
#: ``bs1534`` when the study has the mid anchor (else ``reference``), 90 on 0..100, 3 screens.
SCREENING_DEFAULTS = ScreeningSpec(rule="bs1534", min_score=90, max_fraction=SCREENING_MAX_FRACTION,
                                   min_reference_trials=3, anchor=MUSHRA_MID_ANCHOR, anchor_max_score=90,
                                   gold_max_failures=0)


@dataclass(frozen=True)
class MushraItem:
    """One blinded stimulus of a screen: an opaque token and its audio (never a condition)."""

    item_id: str
    audio: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class MushraTrial:
    """One MUSHRA screen as a listener gets it.

    Attributes:
        trial_id: opaque token of the screen (pass the trial back to ``rate``).
        reference_id: opaque token of the open reference.
        reference: the open reference, float32 ``(channels, n)``.
        items: the stimuli to rate, in screen order (random per screen and listener).
        sample_rate, index, total, is_training: as :class:`mosapp.study.types.five_grade.Trial`.
    """

    trial_id: str
    reference_id: str
    reference: np.ndarray = field(repr=False, compare=False)
    items: tuple[MushraItem, ...] = field(repr=False, compare=False)
    sample_rate: int = PIPELINE_SAMPLE_RATE
    index: int = 0
    total: int = 0
    is_training: bool = False


def band_label(score: float, labels: Sequence[str]) -> str:
    """The label of the band ``score`` falls in (80-100 is the top band; 20 belongs to 20-40)."""
    i = min(4, max(0, int(score // 20)))
    return labels[i]


def screen_plan(definition: StudyDefinition, listener_index: int) -> list[tuple[str, bool, list[str]]]:
    """The listener's screens: ``(clip, is_training, conditions in screen order)``, training first."""
    d = definition
    clips = [c.name for c in d.plan_clips]
    pairs = [(clip, rep) for rep in range(d.repetitions) for clip in clips]
    n = d.trials_per_listener
    start = (listener_index * n) % len(pairs)
    chosen = [pairs[(start + i) % len(pairs)] for i in range(n)]
    rng = np.random.default_rng([int(d.seed), 1534, int(listener_index)])
    order = [chosen[i] for i in rng.permutation(len(chosen))]
    # Avoid the same clip twice in a row where a swap can (repetitions > 1).
    for i in range(1, len(order)):
        if order[i][0] == order[i - 1][0]:
            for j in range(i + 1, len(order)):
                if order[j][0] != order[i - 1][0] and (j + 1 >= len(order) or order[i][0] != order[j + 1][0]):
                    order[i], order[j] = order[j], order[i]
                    break
    training = [clips[(listener_index + k) % len(clips)] for k in range(d.training.trials)]
    screens = [(c, True) for c in training] + [(c, False) for c, _ in order]
    out = []
    for k, (clip, is_training) in enumerate(screens):
        perm = np.random.default_rng([int(d.seed), 1534, int(listener_index), k]).permutation(len(d.conditions))
        out.append((clip, is_training, [d.conditions[i] for i in perm]))
    return out


def enrol(s: Session, definition: StudyDefinition, listener_id: int, listener_index: int,
          stimuli: Mapping[tuple[str, str], int], token: Callable[[], str]) -> None:
    """Write a new listener's MUSHRA screens and their items."""
    for i, (clip, is_training, conditions) in enumerate(screen_plan(definition, listener_index)):
        try:
            ref = stimuli[(clip, REFERENCE)]
            sids = [stimuli[(clip, c)] for c in conditions]
        except KeyError:
            raise StudyError(f'The study "{definition.name}" lacks stimuli; run `mosapp study prepare` again.') from None
        trial = TrialRow(listener_id=listener_id, position=i, is_training=is_training, stimulus_id=ref,
                         reference_stimulus_id=ref, trial_token=token(), sample_token=token(),
                         reference_token=token())
        s.add(trial)
        s.flush()
        for slot, sid in enumerate(sids):
            s.add(TrialItemRow(trial_id=trial.id, slot=slot, stimulus_id=sid, token=token()))
    s.flush()


class MushraSession(ItemSession):
    """A listener's sitting in a MUSHRA study: one screen per trial, all of it saved at once."""

    def _trial(self, info: dict[str, Any], items: list[tuple[str, str]], reference_file: str,
               total: int) -> MushraTrial:
        audio = self._engine.audio_for
        return MushraTrial(
            trial_id=info["trial_token"], reference_id=info["reference_token"], reference=audio(reference_file),
            items=tuple(MushraItem(token, audio(f)) for token, f in items), sample_rate=PIPELINE_SAMPLE_RATE,
            index=info["position"], total=total, is_training=info["is_training"],
        )

    def rate(self, trial: MushraTrial, scores: Sequence[int] | Mapping[str, int], *,
             plays: Sequence[int] | None = None, reference_plays: int = 0,
             listening_time_s: Sequence[float] | None = None, response_time_s: float = 0.0) -> None:
        """Record the whole screen, committed in one transaction before this returns.

        Args:
            trial: the :class:`MushraTrial`.
            scores: one whole number 0..100 per item, in ``trial.items`` order (or item_id → score).
            plays: per item, how often it was played (default 0 each).
            reference_plays: how often the open reference was played.
            listening_time_s: per item, seconds of it played.
            response_time_s: seconds from the screen's start to saving.

        Raises:
            StudyError: a score outside 0..100 or missing, a screen of another listener or one
                already rated, a closed session, a read-only or locked database.
        """
        if not isinstance(trial, MushraTrial):
            raise StudyError("MushraSession.rate takes the MushraTrial that next_trial returned.")
        tokens = [it.item_id for it in trial.items]
        given: list[int | None] = ([scores.get(t) for t in tokens] if isinstance(scores, Mapping)
                                   else list(scores))
        if len(given) != len(tokens) or any(v is None for v in given):
            raise StudyError(f"This screen has {len(tokens)} stimuli; give one score (0-100) for each of them.")
        values = [check_whole(v, MIN_SCORE, MAX_SCORE, "MUSHRA score") for v in given]
        counts = [0] * len(tokens) if plays is None else [check_count(p, "play count") for p in plays]
        listened = ([0.0] * len(tokens) if listening_time_s is None
                    else [check_seconds(x, "listening_time_s") for x in listening_time_s])
        if len(counts) != len(tokens) or len(listened) != len(tokens):
            raise StudyError(f"This screen has {len(tokens)} stimuli; give plays and listening times for each.")
        self._commit(trial.trial_id, [ItemScore(t, v, p, x) for t, v, p, x in zip(tokens, values, counts, listened)],
                     plays_reference=check_count(reference_plays, "reference play count"),
                     response_time_s=check_seconds(response_time_s, "response_time_s"))


def needed_s(duration_s: float) -> float:
    """How much of a stimulus must be heard for it to count as played: :data:`MIN_PLAYED_S`, or all of a
    shorter one (less 50 ms)."""
    return min(MIN_PLAYED_S, max(0.0, duration_s - 0.05))


def mushra_played(trial: MushraTrial, playback: Playback) -> list[bool]:
    """Per MUSHRA stimulus: played for at least :func:`needed_s` of it (or to its end)."""
    listened, ends, durations = playback.listened_s, playback.heard_to_end, playback.durations_s
    return [listened[i + 1] >= needed_s(durations[i + 1]) or ends[i + 1] for i in range(len(trial.items))]


def parse_screening(top: Reader, conditions: tuple[str, ...]) -> ScreeningSpec:
    """MUSHRA's post-screening (ITU-R BS.1534-3 §4.1.2) on the 0..100 scale.

    Default: ``bs1534`` with the hidden reference below 90 or the mid anchor (``lowpass-7k``)
    above 90 in more than 15 % of a listener's items; ``reference`` alone when the study has no
    mid anchor. ``min_reference_trials`` defaults to 3 screens (:data:`SCREENING_DEFAULTS`).
    """
    d = SCREENING_DEFAULTS
    anchor_default = d.anchor if d.anchor in conditions else None
    value = top.table.get("screening")
    if value is None:
        value = {}
    if isinstance(value, str):
        value = {"rule": value}
    if not isinstance(value, dict):
        raise top.fail("screening", 'must be "reference", "bs1534", "off" or a [screening] table')
    r = Reader(top.where, value, "screening.", SCREENING_FIELDS)
    rule = screening_rule(r, d.rule if anchor_default else "reference")
    min_score = _score(r, "min_score", d.min_score)
    anchor_max = _score(r, "anchor_max_score", d.anchor_max_score)
    fraction = max_fraction(r, d.max_fraction)
    anchor = r.string("anchor", anchor_default)
    check_anchor(r, rule, anchor, conditions, f'is missing; the bs1534 rule needs the mid anchor (add '
                                              f'"{MUSHRA_MID_ANCHOR}" to conditions, or name the anchor)')
    return replace(
        d, rule=rule, min_score=min_score, max_fraction=fraction,
        min_reference_trials=r.integer("min_reference_trials", d.min_reference_trials, minimum=1,
                                       maximum=MAX_TRIALS_PER_LISTENER),
        anchor=anchor, anchor_max_score=anchor_max, explicit=bool(value),
    )


def _score(r: Reader, key: str, default: int) -> int:
    value = r.integer(key, default, minimum=MIN_SCORE)
    if value > MAX_SCORE:
        raise r.fail(key, f"is {value}; give a MUSHRA score from 0 to 100")
    return value


class MushraType(TestType):
    """MUSHRA as a test type (see the module)."""

    name = "mushra"
    scale = "MUSHRA"
    score_range = (MIN_SCORE, MAX_SCORE)
    # BS.1534's continuous quality scale: five bands of 20 points, 0-20 Bad … 80-100 Excellent.
    labels = ("Bad", "Poor", "Fair", "Good", "Excellent")
    labels_what = "for the bands 0-20 … 80-100"
    instructions = ("Each screen has the reference and several samples, one of which may be the reference itself. "
                    "Listen to every sample, compare it with the reference, and rate its quality from 0 to 100.")
    noun = "screen"
    trial_class = MushraTrial
    session_class = MushraSession
    item_ratings = True
    has_screening = True
    value_description = "the score as given, 0..100 (BS.1534's quality scale)"
    rating_columns = ITEM_COLUMNS
    tick_step = 20
    plot_name = "mushra"
    plot_right = 0.74
    legend_x = 1.11

    # ------------------------------------------------------------------ the study file
    def check_conditions(self, top: Reader, conditions: tuple[str, ...]) -> None:
        if REFERENCE not in conditions:
            raise top.fail("conditions", f'has no "{REFERENCE}"; a MUSHRA screen always has the hidden reference')
        if len(conditions) > MUSHRA_MAX_CONDITIONS:
            raise top.fail("conditions", f"has {len(conditions)} conditions; a MUSHRA screen has at most "
                                         f"{MUSHRA_MAX_CONDITIONS} (ITU-R BS.1534), split the study")
        if len(conditions) < 2:
            raise top.fail("conditions", "has only the reference; a MUSHRA screen compares at least one condition")

    def full_trials(self, clips: int, conditions: int, repetitions: int) -> int:
        return clips * repetitions  # a trial is one screen: a clip with every condition

    def check_trials(self, top: Reader, trials: int, *, clips: int, conditions: int, repetitions: int) -> None:
        full = self.full_trials(clips, conditions, repetitions)
        if trials > full:
            raise top.fail("trials_per_listener", f"is {trials}; at most {full} screens (clips x repetitions = "
                                                  f"{clips} x {repetitions}); raise repetitions for more")

    def check_training(self, training: Reader, conditions: tuple[str, ...]) -> None:
        if conditions:
            raise training.fail("conditions", "is set, but every MUSHRA screen (training ones too) has all the "
                                              "conditions; remove it")

    def parse_screening(self, top: Reader, conditions: tuple[str, ...]) -> ScreeningSpec:
        return parse_screening(top, conditions)

    def check_screening_threshold(self, flag: str, value: float) -> None:
        low, high = self.score_range
        if not low <= value <= high:
            raise StudyError(f"{flag} {value:g} is not accepted for a MUSHRA study; give a score from {low} to {high}.")
        if value <= 5:
            raise StudyError(f"{flag} {value:g} looks like a five-grade score; MUSHRA scores run from 0 to 100 "
                             f"(BS.1534-3 screens with 90).")

    # ------------------------------------------------------------------ a sitting
    def enrol(self, s: Session, definition: StudyDefinition, listener_id: int, listener_index: int,
              stimuli: Mapping[tuple[str, str], int], token: Callable[[], str]) -> None:
        enrol(s, definition, listener_id, listener_index, stimuli, token)

    def streams(self, trial: MushraTrial) -> Streams:
        n = len(trial.items)
        return Streams((trial.reference, *(item.audio for item in trial.items)),
                       ("reference", *(str(i + 1) for i in range(n))), 0, tuple(range(1, n + 1)))

    def ready(self, trial: MushraTrial, playback: Playback, *, require_full_listen: bool,
              reference_first: bool) -> bool:
        return all(mushra_played(trial, playback))

    def rate(self, session: Any, trial: MushraTrial, score: Any, playback: Playback, response_time_s: float) -> int:
        if isinstance(score, int) or not isinstance(session, MushraSession):
            raise StudyError(f"This screen has {len(trial.items)} stimuli; give one score (0-100) for each.")
        counts, listened = playback.play_counts, playback.listened_s
        samples = self.streams(trial).samples
        session.rate(trial, list(score), plays=[counts[i] for i in samples], reference_plays=counts[0],
                     listening_time_s=[_finite(listened[i]) for i in samples], response_time_s=response_time_s)
        return len(trial.items)

    # ------------------------------------------------------------------ results
    def finish_ratings(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame["processed_first"] = pd.Series([pd.NA] * len(frame), dtype="boolean")
        frame["cmos_value"] = pd.Series([pd.NA] * len(frame), dtype="Int64")
        return frame

    def warnings(self, definition: StudyDefinition) -> list[str]:
        missing = [f"{label} {name!r}" for name, label in MUSHRA_ANCHORS.items() if name not in definition.conditions]
        if not missing:
            return []
        return [f"warning: this MUSHRA study lacks the {' and the '.join(missing)}; BS.1534-3 needs both, so its "
                f"scores are not on the standard's anchored scale and its bs1534 screening has no mid-range anchor to "
                f"use"]

    def decorate_plot(self, ax: Any, definition: StudyDefinition) -> None:
        for k, label in enumerate(definition.labels):  # BS.1534's labelled bands
            ax.axhline(20 * (k + 1), color="0.8", linewidth=0.6)
            ax.text(1.01, 20 * k + 10, label, transform=ax.get_yaxis_transform(), fontsize=7, va="center",
                    color="0.4")


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


MUSHRA = register_test_type(MushraType())

__all__ = ["BANDS", "MAX_SCORE", "MIN_PLAYED_S", "MIN_SCORE", "MUSHRA", "MUSHRA_ANCHORS", "MUSHRA_MAX_CONDITIONS",
           "MUSHRA_MID_ANCHOR", "SCREENING_DEFAULTS", "MushraItem", "MushraSession", "MushraTrial", "MushraType",
           "band_label", "enrol", "mushra_played", "needed_s", "parse_screening", "screen_plan"]
