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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from mosapp.core.config import PIPELINE_SAMPLE_RATE
from mosapp.study.definition import REFERENCE, StudyDefinition
from mosapp.study.errors import StudyError
from mosapp.study.items import ItemScore, ItemSession
from mosapp.study.sitting import check_count, check_seconds, check_whole
from mosapp.study.store import TrialItemRow, TrialRow

#: The scale.
MIN_SCORE, MAX_SCORE = 0, 100
#: The band edges of BS.1534's quality scale: band i covers [BANDS[i], BANDS[i+1]].
BANDS = (0, 20, 40, 60, 80, 100)


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
        sample_rate, index, total, is_training: as :class:`mosapp.study.engine.Trial`.
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
        audio = self._engine._audio_for
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


__all__ = ["BANDS", "MAX_SCORE", "MIN_SCORE", "MushraItem", "MushraSession", "MushraTrial", "band_label", "enrol",
           "screen_plan"]
