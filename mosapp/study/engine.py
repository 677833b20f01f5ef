"""The listening engine: what a listener (or the desktop app, or a script) drives.

::

    engine = StudyEngine.open("studies/demo.toml")
    with engine.start_or_resume("L07", audio_device="USB DAC") as session:
        while (trial := session.next_trial()) is not None:
            ...play trial.reference, trial.sample...
            session.rate(trial, 4, play_counts=(2, 1), listening_time_s=9.5, response_time_s=3.2)

Blinding: a :class:`Trial` holds opaque tokens (fresh for every trial, so not even the
hidden reference shares an id with the known one) and the audio as float32 arrays, each a
buffer of its own (``trial.sample is not trial.reference`` and no shared memory, even when the
audio is the same) — never a condition name, codec, bitrate or file path. Every rating is committed in its own
transaction before :meth:`ListeningSession.rate` returns; a listener who comes back resumes
at the first unrated trial of the plan they were given, and no trial can be rated twice.
"""

from __future__ import annotations

import os
import re
import secrets
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import cast

import numpy as np
import soundfile as sf
from sqlalchemy import case, func, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mosapp.core.config import PIPELINE_SAMPLE_RATE
from mosapp.core.version import __version__
from mosapp.study import ccr, mushra
from mosapp.study.definition import REFERENCE, StudyDefinition, load_study
from mosapp.study.errors import StudyError
from mosapp.study.plan import insert_gold, listener_plan
from mosapp.study.sitting import Progress, Sitting, check_seconds, check_whole
from mosapp.study.store import (
    ClipRow,
    ConditionRow,
    ItemRatingRow,
    ListenerRow,
    RatingRow,
    SessionRow,
    StimulusRow,
    Store,
    StudyRow,
    TrialItemRow,
    TrialRow,
    open_store,
    utcnow,
)

#: Pseudonymous listener codes: letters, digits, "_" and "-", at most 32 characters.
LISTENER_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
SCORES = (1, 2, 3, 4, 5)


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


@dataclass(frozen=True)
class ListenerProgress:
    """One row of ``mosapp study status``."""

    code: str
    position: int
    rated: int
    total: int
    training_rated: int
    training_total: int
    sessions: int
    started_at: datetime | None
    last_rating_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.rated >= self.total and self.training_rated >= self.training_total


def _check_code(code: str) -> str:
    if not isinstance(code, str) or not LISTENER_CODE_RE.match(code):
        raise StudyError(
            f'The listener code "{code}" is not accepted; use a pseudonymous code of letters, digits, "_" '
            f'or "-" (at most 32 characters, e.g. L07), never a name or an e-mail address.'
        )
    return code


def _token() -> str:
    return secrets.token_hex(16)


def _open_noatime(path: Path) -> int:
    """Open for reading without updating the access time where the system allows it (Linux,
    the file's owner), so playing a trial leaves no trace of which files were played when."""
    flags = os.O_RDONLY | getattr(os, "O_NOATIME", 0)
    try:
        return os.open(path, flags)
    except PermissionError:  # O_NOATIME is for the file's owner only
        return os.open(path, os.O_RDONLY)


def _read_stimulus(path: Path) -> np.ndarray:
    try:
        fd = _open_noatime(path)
        with os.fdopen(fd, "rb") as fh:
            data, rate = sf.read(fh, dtype="float32", always_2d=True)
    except (OSError, RuntimeError, sf.SoundFileError):
        raise StudyError(
            f"A stimulus file of this study is missing or unreadable ({path.name} in {path.parent}); run "
            f"`mosapp study prepare` again."
        ) from None
    if rate != PIPELINE_SAMPLE_RATE:  # pragma: no cover - prepare writes the pipeline rate
        raise StudyError(f"The stimulus file {path} has {rate} Hz; run `mosapp study prepare` again.")
    return np.ascontiguousarray(data.T)


class StudyEngine:
    """A prepared study and its open database: enrolment, sessions, progress.

    Create with :meth:`open`. Thread use: one engine per thread (each call opens its own
    database session, but the audio cache is not locked).
    """

    def __init__(self, definition: StudyDefinition, store: Store) -> None:
        self.definition = definition
        self.store = store
        self._audio: OrderedDict[str, np.ndarray] = OrderedDict()
        with store.read() as s:
            row = s.scalars(select(StudyRow).where(StudyRow.name == definition.name)).one_or_none()
            self._study_id = None if row is None else row.id

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, study: str | Path | StudyDefinition, *, database: str | None = None,
             readonly: bool = False, busy_timeout_s: float | None = None) -> StudyEngine:
        """Open a study: its definition (a file, a name in studies/, or a parsed one) and its database.

        Args:
            study: the study.
            database: a SQLAlchemy URL overriding the study's ``database``.
            readonly: open the database without write access (no enrolment, no rating).
            busy_timeout_s: how long a write waits for another writer.

        Raises:
            StudyError: see :func:`~mosapp.study.definition.load_study` and
                :func:`~mosapp.study.store.open_store`; the database does not exist.
        """
        definition = study if isinstance(study, StudyDefinition) else load_study(study, check_codecs=False)
        kwargs = {} if busy_timeout_s is None else {"busy_timeout_s": busy_timeout_s}
        store = open_store(database or definition.database_url, create=False, readonly=readonly, **kwargs)
        try:
            return cls(definition, store)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> StudyEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what a listener may see -----------------------------------------------------------

    @property
    def title(self) -> str:
        return self.definition.title

    @property
    def test_type(self) -> str:
        return self.definition.test_type

    @property
    def instructions(self) -> str:
        return self.definition.instructions

    @property
    def labels(self) -> dict[int, str]:
        """Score → label, 1..5."""
        return dict(zip(SCORES, self.definition.labels))

    # -- enrolment and sessions ---------------------------------------------------------------

    def _require_prepared(self, s: Session) -> StudyRow:
        name = self.definition.name
        row = s.scalars(select(StudyRow).where(StudyRow.name == name)).one_or_none()
        hint = f"run `mosapp study prepare {self.definition.source or name}`"
        if row is None:
            raise StudyError(f'The study "{name}" is not in {self.store.label}; {hint} first.')
        if row.prepared_at is None:
            raise StudyError(f'The study "{name}" is not fully prepared (an earlier prepare stopped); {hint}.')
        self.definition = self.definition.with_stored_seed(row.design_json)
        if row.design_json != self.definition.design_json():
            raise StudyError(f'The study file of "{name}" changed since it was prepared; {hint} again.')
        self._study_id = row.id
        return row

    def start_or_resume(self, listener_code: str, *, app_version: str | None = None,
                        audio_device: str = "") -> ListeningSession | mushra.MushraSession | ccr.CcrSession:
        """Begin a sitting for ``listener_code``: enrol a new listener (with a fresh plan) or resume one.

        Args:
            listener_code: the pseudonymous code.
            app_version: recorded with the sitting (default: this mosapp's version).
            audio_device: the output device, as the app names it.

        Raises:
            StudyError: a bad code, an unprepared study, a read-only or locked database.
        """
        _check_code(listener_code)
        if app_version is None:
            app_version = __version__
        for attempt in range(5):
            try:
                with self.store.write() as s:
                    study = self._require_prepared(s)
                    listener = self._listener(s, study.id, listener_code) or self._enrol(s, study.id, listener_code)
                    sitting = SessionRow(listener_id=listener.id, app_version=str(app_version)[:64],
                                         audio_device=str(audio_device), started_at=utcnow())
                    s.add(sitting)
                    s.flush()
                    ids = (listener.id, sitting.id)
                break
            except IntegrityError:
                # Another process enrolled someone at the same moment (servers without
                # BEGIN IMMEDIATE): take the next free position.
                if attempt == 4:
                    raise StudyError(f'The listener "{listener_code}" could not be enrolled (the database kept '
                                     f"changing under it); try again.") from None
        if self.definition.test_type == "mushra":
            return mushra.MushraSession(self, listener_code, *ids)
        if self.definition.test_type == "ccr":
            return ccr.CcrSession(self, listener_code, *ids)
        return ListeningSession(self, listener_code, *ids)

    @staticmethod
    def _listener(s: Session, study_id: int, code: str) -> ListenerRow | None:
        return s.scalars(select(ListenerRow).where(ListenerRow.study_id == study_id,
                                                   ListenerRow.code == code)).one_or_none()

    def _enrol(self, s: Session, study_id: int, code: str) -> ListenerRow:
        # The plan's seed: the study file's (a demo, not blind) or the secret drawn at preparation.
        salt = s.scalar(select(StudyRow.stimulus_salt).where(StudyRow.id == study_id))
        d = replace(self.definition, seed=self.definition.plan_seed(salt))
        position = s.execute(select(func.coalesce(func.max(ListenerRow.position) + 1, 0))
                             .where(ListenerRow.study_id == study_id)).scalar_one()
        listener = ListenerRow(study_id=study_id, code=code, position=int(position), created_at=utcnow())
        s.add(listener)
        s.flush()
        stimuli = {
            (clip, cond): sid
            for sid, clip, cond in s.execute(
                select(StimulusRow.id, ClipRow.name, ConditionRow.name)
                .join(ClipRow, StimulusRow.clip_id == ClipRow.id)
                .join(ConditionRow, StimulusRow.condition_id == ConditionRow.id)
                .where(StimulusRow.study_id == study_id))
        }
        if d.test_type in ("mushra", "ccr"):
            (mushra if d.test_type == "mushra" else ccr).enrol(s, d, listener.id, int(position), stimuli, _token)
            return listener
        plan = listener_plan(
            clips=[c.name for c in d.plan_clips], conditions=list(d.conditions), trials=d.trials_per_listener,
            repetitions=d.repetitions, seed=d.seed, listener_index=int(position),
            training_trials=d.training.trials, training_conditions=d.training.conditions,
        )
        plan = insert_gold(plan, [(g.clip, g.condition, g.expected) for g in d.gold], seed=d.seed,
                           listener_index=int(position))
        for i, planned in enumerate(plan):
            try:
                sid = stimuli[(planned.clip, planned.condition)]
                ref = stimuli[(planned.clip, REFERENCE)] if d.test_type == "dcr" else None
            except KeyError:
                raise StudyError(f'The study "{d.name}" lacks stimuli; run `mosapp study prepare` again.') from None
            s.add(TrialRow(listener_id=listener.id, position=i, is_training=planned.is_training, stimulus_id=sid,
                           reference_stimulus_id=ref, trial_token=_token(), sample_token=_token(),
                           reference_token=_token() if ref is not None else None,
                           gold_expected=(",".join(map(str, planned.gold_expected))
                                          if planned.gold_expected is not None else None)))
        s.flush()
        return listener

    # -- progress ---------------------------------------------------------------------------

    def listener_progress(self) -> list[ListenerProgress]:
        """Every listener's progress, in enrolment order."""
        with self.store.read() as s:
            study = s.scalars(select(StudyRow).where(StudyRow.name == self.definition.name)).one_or_none()
            if study is None:
                return []
            trials = select(
                TrialRow.listener_id,
                func.sum(case((TrialRow.is_training, 0), else_=1)).label("total"),
                func.sum(case((TrialRow.is_training, 1), else_=0)).label("training_total"),
            ).group_by(TrialRow.listener_id).subquery()
            # A trial is rated when it has its rating (DCR/ACR) or its item ratings (MUSHRA/CCR).
            given = union_all(
                select(RatingRow.trial_id.label("trial_id"), RatingRow.given_at.label("given_at")),
                select(TrialItemRow.trial_id.label("trial_id"), ItemRatingRow.given_at.label("given_at"))
                .join(ItemRatingRow, ItemRatingRow.item_id == TrialItemRow.id),
            ).subquery()
            done = select(given.c.trial_id, func.max(given.c.given_at).label("given_at")
                          ).group_by(given.c.trial_id).subquery()
            rated = select(
                TrialRow.listener_id,
                func.sum(case((TrialRow.is_training, 0), else_=1)).label("rated"),
                func.sum(case((TrialRow.is_training, 1), else_=0)).label("training_rated"),
                func.max(done.c.given_at).label("last"),
            ).join(done, done.c.trial_id == TrialRow.id).group_by(TrialRow.listener_id).subquery()
            sittings = select(
                SessionRow.listener_id, func.count().label("n"), func.min(SessionRow.started_at).label("first"),
            ).group_by(SessionRow.listener_id).subquery()
            rows = s.execute(
                select(ListenerRow.code, ListenerRow.position, trials.c.total, trials.c.training_total,
                       rated.c.rated, rated.c.training_rated, rated.c.last, sittings.c.n, sittings.c.first)
                .outerjoin(trials, trials.c.listener_id == ListenerRow.id)
                .outerjoin(rated, rated.c.listener_id == ListenerRow.id)
                .outerjoin(sittings, sittings.c.listener_id == ListenerRow.id)
                .where(ListenerRow.study_id == study.id).order_by(ListenerRow.position)
            ).all()
        return [ListenerProgress(code=r.code, position=r.position, rated=int(r.rated or 0), total=int(r.total or 0),
                                 training_rated=int(r.training_rated or 0), training_total=int(r.training_total or 0),
                                 sessions=int(r.n or 0), started_at=r.first, last_rating_at=r.last) for r in rows]

    # -- audio -------------------------------------------------------------------------------

    def _audio_for(self, audio_file: str) -> np.ndarray:
        cached = self._audio.get(audio_file)
        if cached is None:
            cached = _read_stimulus(self.definition.stimuli_dir / audio_file)
            cached.setflags(write=False)
            self._audio[audio_file] = cached
            while len(self._audio) > 16:  # a MUSHRA screen: up to 12 conditions and the open reference
                self._audio.popitem(last=False)
        else:
            self._audio.move_to_end(audio_file)
        # A fresh (read-only) copy every time: two buffers of one trial never are, or share,
        # the same memory, so the hidden reference cannot be told from its known twin by identity.
        out = cached.copy()
        out.setflags(write=False)
        return out


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

    def next_trial(self) -> Trial | None:
        """The first unrated trial of the plan (the same one until it is rated), or None when done."""
        store = self._engine.store
        with store.read() as s:
            total = s.execute(select(func.count()).select_from(TrialRow)
                              .where(TrialRow.listener_id == self._listener_id)).scalar_one()
            row = s.execute(
                select(TrialRow.position, TrialRow.is_training, TrialRow.trial_token, TrialRow.sample_token,
                       TrialRow.reference_token, TrialRow.stimulus_id, TrialRow.reference_stimulus_id)
                .outerjoin(RatingRow, RatingRow.trial_id == TrialRow.id)
                .where(TrialRow.listener_id == self._listener_id, RatingRow.id.is_(None))
                .order_by(TrialRow.position).limit(1)
            ).one_or_none()
            if row is None:
                return None
            files = dict(s.execute(select(StimulusRow.id, StimulusRow.audio_file).where(
                StimulusRow.id.in_([row.stimulus_id, row.reference_stimulus_id or -1]))).all())
        sample = self._engine._audio_for(files[row.stimulus_id])
        reference = self._engine._audio_for(files[row.reference_stimulus_id]) if row.reference_stimulus_id else None
        return Trial(trial_id=row.trial_token, stimulus_id=row.sample_token, reference_id=row.reference_token,
                     sample=sample, reference=reference, sample_rate=PIPELINE_SAMPLE_RATE, index=int(row.position),
                     total=int(total), is_training=bool(row.is_training))

    def rate(self, trial: Trial | str, value: int, *,
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
        score = check_score(value)
        counts = _play_counts(play_counts)
        listening = check_seconds(listening_time_s, "listening_time_s")
        response = check_seconds(response_time_s, "response_time_s")
        if self._closed:
            raise StudyError("This listening session is closed; start or resume a new one to rate.")
        token = trial.trial_id if isinstance(trial, Trial) else str(trial)
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


__all__ = ["ListenerProgress", "ListeningSession", "PlayCounts", "Progress", "SCORES", "StudyEngine", "Trial",
           "check_score"]
