"""What MUSHRA and CCR trials share: trial items, one transaction per trial, their tidy ratings.

A MUSHRA screen (:mod:`mosapp.study.mushra`) and a CCR pair (:mod:`mosapp.study.ccr`) are
:class:`~mosapp.study.store.TrialRow` rows with :class:`~mosapp.study.store.TrialItemRow`
items (the stimuli a listener scores) whose scores are
:class:`~mosapp.study.store.ItemRatingRow` rows. A trial counts as rated when its items are;
:meth:`ItemSession._commit` writes every item's score of a trial in one transaction, so a
screen is saved whole or not at all, and a trial is never rated twice.

:func:`item_ratings_frame` is the tidy table of these ratings: the columns of
:data:`mosapp.study.export.RATINGS_COLUMNS` (one row per stimulus rating) plus ``slot``
(MUSHRA: the stimulus's place on the screen, from 0) and ``processed_first`` / ``cmos_value``
(CCR: see :mod:`mosapp.study.ccr`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mosapp.study.errors import StudyError
from mosapp.study.store import (
    ClipRow,
    ConditionRow,
    ItemRatingRow,
    ListenerRow,
    SessionRow,
    StimulusRow,
    Store,
    TrialItemRow,
    TrialRow,
    utcnow,
)

if TYPE_CHECKING:
    from mosapp.study.definition import StudyDefinition
    from mosapp.study.engine import Progress, StudyEngine

#: Columns :func:`item_ratings_frame` adds to :data:`mosapp.study.export.RATINGS_COLUMNS` (column → meaning).
ITEM_COLUMNS: dict[str, str] = {
    "slot": "MUSHRA: the stimulus's place on the screen, from 0 (random per screen and listener); CCR: 0",
    "processed_first": "CCR: TRUE when the processed sample played first (as A); NA otherwise",
    "cmos_value": "CCR: the score turned to processed-vs-reference: value when the processed sample played "
                  "second, -value when it played first; NA otherwise",
}


@dataclass(frozen=True)
class ItemScore:
    """One item's score as :meth:`ItemSession._commit` writes it."""

    token: str
    value: int
    plays: int = 0
    listening_time_s: float = 0.0


def check_whole(value: object, low: int, high: int, what: str) -> int:
    """``value`` as a whole number in ``low..high``, or a one-sentence :class:`StudyError`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise StudyError(f"The {what} {value!r} is not accepted; give a whole number from {low} to {high}.")
    f = float(value)
    if not math.isfinite(f) or f != int(f) or not low <= int(f) <= high:
        raise StudyError(f"The {what} {value!r} is not accepted; give a whole number from {low} to {high}.")
    return int(f)


def check_count(value: object, what: str) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise StudyError(f"The {what} {value!r} is not accepted; give a whole number, 0 or more.") from None
    if v < 0 or v != value:
        raise StudyError(f"The {what} {value!r} is not accepted; give a whole number, 0 or more.")
    return v


def check_seconds(value: object, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise StudyError(f"{what} {value!r} is not accepted; give seconds as a number, 0 or more.") from None
    if not math.isfinite(v) or v < 0:
        raise StudyError(f"{what} {value!r} is not accepted; give seconds as a number, 0 or more.")
    return v


def rated_trials_subquery():
    """``trial_id`` of every trial with item ratings (for progress and next-trial queries)."""
    from sqlalchemy import select

    return (select(TrialItemRow.trial_id.label("trial_id"))
            .join(ItemRatingRow, ItemRatingRow.item_id == TrialItemRow.id).distinct())


class ItemSession:
    """A sitting of one listener in a MUSHRA or CCR study (see :class:`mosapp.study.engine.ListeningSession`).

    Subclasses build the trial (:meth:`_trial`) and check the scores (:meth:`rate`).
    """

    def __init__(self, engine: StudyEngine, code: str, listener_id: int, session_id: int) -> None:
        self._engine = engine
        self.listener_code = code
        self._listener_id = listener_id
        self._session_id = session_id
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    # -- reading ----------------------------------------------------------------------------
    def next_trial(self):
        """The first trial of the plan without ratings (the same one until it is rated), or None when done."""
        from sqlalchemy import func, select

        rated = rated_trials_subquery().subquery()
        with self._engine.store.read() as s:
            total = s.scalar(select(func.count()).select_from(TrialRow).where(TrialRow.listener_id == self._listener_id))
            row = s.execute(
                select(TrialRow).outerjoin(rated, rated.c.trial_id == TrialRow.id)
                .where(TrialRow.listener_id == self._listener_id, rated.c.trial_id.is_(None))
                .order_by(TrialRow.position).limit(1)
            ).scalars().one_or_none()
            if row is None:
                return None
            items = s.execute(select(TrialItemRow.slot, TrialItemRow.token, StimulusRow.audio_file)
                              .join(StimulusRow, TrialItemRow.stimulus_id == StimulusRow.id)
                              .where(TrialItemRow.trial_id == row.id).order_by(TrialItemRow.slot)).all()
            ref_file = s.scalar(select(StimulusRow.audio_file).where(StimulusRow.id == row.reference_stimulus_id))
            info = dict(position=int(row.position), is_training=bool(row.is_training), trial_token=row.trial_token,
                        reference_token=row.reference_token, sample_token=row.sample_token,
                        processed_first=row.processed_first)
        return self._trial(info, [(t, f) for _, t, f in items], ref_file, int(total))

    def _trial(self, info: dict, items: list[tuple[str, str]], reference_file: str, total: int):
        raise NotImplementedError

    @property
    def progress(self) -> Progress:
        """Rated and planned trials (screens or pairs) of this listener, over all sittings."""
        from sqlalchemy import case, func, select

        from mosapp.study.engine import Progress

        rated = rated_trials_subquery().subquery()
        with self._engine.store.read() as s:
            r = s.execute(
                select(
                    func.sum(case((TrialRow.is_training, 0), else_=1)),
                    func.sum(case((TrialRow.is_training, 1), else_=0)),
                    func.sum(case((rated.c.trial_id.is_not(None) & ~TrialRow.is_training, 1), else_=0)),
                    func.sum(case((rated.c.trial_id.is_not(None) & TrialRow.is_training, 1), else_=0)),
                ).select_from(TrialRow).outerjoin(rated, rated.c.trial_id == TrialRow.id)
                .where(TrialRow.listener_id == self._listener_id)
            ).one()
        return Progress(rated=int(r[2] or 0), total=int(r[0] or 0), training_rated=int(r[3] or 0),
                        training_total=int(r[1] or 0))

    # -- writing ----------------------------------------------------------------------------
    def _commit(self, trial_token: str, scores: Sequence[ItemScore], *, plays_reference: int,
                response_time_s: float) -> None:
        """Write every item score of one trial in one transaction (committed before this returns).

        ``scores`` must name each of the trial's items exactly once.
        """
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        if self._closed:
            raise StudyError("This listening session is closed; start or resume a new one to rate.")
        try:
            with self._engine.store.write() as s:
                row = s.execute(select(TrialRow.id, TrialRow.listener_id).where(TrialRow.trial_token == trial_token)
                                ).one_or_none()
                if row is None or row.listener_id != self._listener_id:
                    raise StudyError(f'The trial "{trial_token}" is not one of listener '
                                     f"{self.listener_code}'s trials.")
                items = dict(s.execute(select(TrialItemRow.token, TrialItemRow.id)
                                       .where(TrialItemRow.trial_id == row.id)).all())
                done = s.scalar(select(ItemRatingRow.id).where(ItemRatingRow.item_id.in_(list(items.values())))
                                .limit(1))
                if done is not None:
                    raise StudyError(f'The trial "{trial_token}" is already rated; a trial is rated only once.')
                given = [sc.token for sc in scores]
                if sorted(given) != sorted(items) or len(set(given)) != len(given):
                    missing = len(set(items) - set(given))
                    raise StudyError(f"The scores of trial \"{trial_token}\" must cover each of its {len(items)} "
                                     f"stimuli exactly once ({missing} missing, {len(given)} given).")
                now = utcnow()
                for sc in scores:
                    s.add(ItemRatingRow(item_id=items[sc.token], session_id=self._session_id, value=int(sc.value),
                                        given_at=now, plays_sample=int(sc.plays), plays_reference=int(plays_reference),
                                        listening_time_s=float(sc.listening_time_s),
                                        response_time_s=float(response_time_s)))
        except IntegrityError:
            raise StudyError(f'The trial "{trial_token}" is already rated; a trial is rated only once.') from None

    def close(self) -> None:
        """End the sitting (records its end time). Ratings are already committed."""
        if self._closed:
            return
        self._closed = True
        with self._engine.store.write() as s:
            sitting = s.get(SessionRow, self._session_id)
            if sitting is not None and sitting.ended_at is None:
                sitting.ended_at = utcnow()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def item_ratings_frame(store: Store, definition: StudyDefinition, *, include_training: bool = False) -> pd.DataFrame:
    """Every item rating of a MUSHRA or CCR study: one row per stimulus rating.

    Columns: :data:`mosapp.study.export.RATINGS_COLUMNS` then :data:`ITEM_COLUMNS`; rows by
    listener (enrolment), trial and slot. ``value`` is the score as given (MUSHRA 0..100, CCR
    -3..+3: the second sample against the first); ``plays_reference`` counts the open reference
    (MUSHRA) or the reference of the pair (CCR).
    """
    from sqlalchemy import select

    from mosapp.study.export import METRIC_COLUMNS, RATINGS_COLUMNS, _study_id

    with store.read() as s:
        study_id = _study_id(s, definition.name, store)
        q = (
            select(
                ListenerRow.code.label("listener"), ListenerRow.position.label("listener_position"),
                SessionRow.id.label("session"), SessionRow.started_at.label("session_started_at"),
                SessionRow.app_version, SessionRow.audio_device,
                TrialRow.position.label("trial"), TrialRow.is_training, TrialRow.gold_expected,
                ClipRow.name.label("clip"), ClipRow.source_file.label("clip_file"),
                ClipRow.start_s.label("clip_start_s"), ClipRow.length_s.label("clip_length_s"),
                ConditionRow.name.label("condition"), ConditionRow.is_reference,
                ItemRatingRow.value, ItemRatingRow.given_at.label("rated_at"), ItemRatingRow.response_time_s,
                ItemRatingRow.listening_time_s, ItemRatingRow.plays_sample, ItemRatingRow.plays_reference,
                ConditionRow.nominal_kbps, StimulusRow.bitrate_kbps, StimulusRow.loudness_lufs, StimulusRow.gain_db,
                *(getattr(StimulusRow, m) for m in METRIC_COLUMNS),
                TrialItemRow.slot, TrialRow.processed_first,
            )
            .select_from(ItemRatingRow)
            .join(TrialItemRow, ItemRatingRow.item_id == TrialItemRow.id)
            .join(TrialRow, TrialItemRow.trial_id == TrialRow.id)
            .join(SessionRow, ItemRatingRow.session_id == SessionRow.id)
            .join(ListenerRow, TrialRow.listener_id == ListenerRow.id)
            .join(StimulusRow, TrialItemRow.stimulus_id == StimulusRow.id)
            .join(ClipRow, StimulusRow.clip_id == ClipRow.id)
            .join(ConditionRow, StimulusRow.condition_id == ConditionRow.id)
            .where(ListenerRow.study_id == study_id)
            .order_by(ListenerRow.position, TrialRow.position, TrialItemRow.slot)
        )
        if not include_training:
            q = q.where(TrialRow.is_training.is_(False))
        rows = s.execute(q).all()
    base = [c for c in RATINGS_COLUMNS if c not in ("study", "test_type", "screened_out", "is_gold")]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=[*base, "slot", "processed_first"])
    frame["is_gold"] = False
    frame["gold_expected"] = None
    frame.insert(0, "study", definition.name)
    frame.insert(1, "test_type", definition.test_type)
    frame["clip_file"] = frame["clip_file"].map(lambda p: Path(p).name)
    frame["screened_out"] = False
    for col in ("is_training", "is_gold", "is_reference", "screened_out"):
        frame[col] = frame[col].astype(bool)
    for col in ("listener_position", "session", "trial", "value", "plays_sample", "plays_reference", "slot"):
        frame[col] = frame[col].astype(np.int64)
    for col in ("nominal_kbps", "bitrate_kbps", *METRIC_COLUMNS):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
    if definition.test_type == "ccr":
        first = frame["processed_first"].astype(bool)
        frame["processed_first"] = first
        frame["cmos_value"] = np.where(first, -frame["value"], frame["value"]).astype(np.int64)
    else:
        frame["processed_first"] = pd.Series([pd.NA] * len(frame), dtype="boolean")
        frame["cmos_value"] = pd.Series([pd.NA] * len(frame), dtype="Int64")
    return frame[[*RATINGS_COLUMNS, *ITEM_COLUMNS]]


__all__ = ["ITEM_COLUMNS", "ItemScore", "ItemSession", "check_count", "check_seconds", "check_whole",
           "item_ratings_frame", "rated_trials_subquery"]
