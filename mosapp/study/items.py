"""What MUSHRA and CCR trials share: trial items and one transaction per trial.

A MUSHRA screen (:mod:`mosapp.study.types.mushra`) and a CCR pair (:mod:`mosapp.study.types.ccr`) are
:class:`~mosapp.study.store.TrialRow` rows with :class:`~mosapp.study.store.TrialItemRow`
items (the stimuli a listener scores) whose scores are
:class:`~mosapp.study.store.ItemRatingRow` rows. A trial counts as rated when its items are;
:meth:`ItemSession._commit` writes every item's score of a trial in one transaction, so a
screen is saved whole or not at all, and a trial is never rated twice.

:func:`mosapp.study.export.ratings_frame` is the tidy table of these ratings: the columns of
:data:`mosapp.study.export.RATINGS_COLUMNS` (one row per stimulus rating) plus
:data:`ITEM_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.exc import IntegrityError

from mosapp.study.errors import StudyError
from mosapp.study.sitting import Progress, Sitting
from mosapp.study.store import ItemRatingRow, StimulusRow, TrialItemRow, TrialRow, utcnow

#: Columns :func:`mosapp.study.export.ratings_frame` adds to :data:`mosapp.study.export.RATINGS_COLUMNS` (column → meaning).
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


def rated_trials_subquery() -> Select[Any]:
    """``trial_id`` of every trial with item ratings (for progress and next-trial queries)."""
    return (select(TrialItemRow.trial_id.label("trial_id"))
            .join(ItemRatingRow, ItemRatingRow.item_id == TrialItemRow.id).distinct())


class ItemSession(Sitting):
    """A sitting of one listener in a MUSHRA or CCR study (see :class:`mosapp.study.types.five_grade.ListeningSession`).

    Subclasses build the trial (:meth:`_trial`) and check the scores (:meth:`rate`).
    """

    # -- reading ----------------------------------------------------------------------------
    def next_trial(self) -> Any:
        """The first trial of the plan without ratings (the same one until it is rated), or None when done."""
        rated = rated_trials_subquery().subquery()
        with self._engine.store.read() as s:
            total = s.execute(select(func.count()).select_from(TrialRow)
                              .where(TrialRow.listener_id == self._listener_id)).scalar_one()
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
            ref_file = s.execute(select(StimulusRow.audio_file)
                                 .where(StimulusRow.id == row.reference_stimulus_id)).scalar_one()
            info = dict(position=int(row.position), is_training=bool(row.is_training), trial_token=row.trial_token,
                        reference_token=row.reference_token, sample_token=row.sample_token,
                        processed_first=row.processed_first)
        return self._trial(info, [(t, f) for _, t, f in items], ref_file, int(total))

    def _trial(self, info: dict[str, Any], items: list[tuple[str, str]], reference_file: str, total: int) -> Any:
        raise NotImplementedError

    @property
    def progress(self) -> Progress:
        """Rated and planned trials (screens or pairs) of this listener, over all sittings."""
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


__all__ = ["ITEM_COLUMNS", "ItemScore", "ItemSession", "rated_trials_subquery"]
