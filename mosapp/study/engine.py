"""The listening engine: what a listener (or the desktop app, or a script) drives.

::

    engine = StudyEngine.open("studies/demo.toml")
    with engine.start_or_resume("L07", audio_device="USB DAC") as session:
        while (trial := session.next_trial()) is not None:
            ...play trial.reference, trial.sample...
            session.rate(trial, 4, play_counts=(2, 1), listening_time_s=9.5, response_time_s=3.2)

The engine names no test type: the study's type (:mod:`mosapp.study.types`) writes a new
listener's plan and makes the sitting (DCR/ACR's :class:`~mosapp.study.types.five_grade.ListeningSession`,
MUSHRA's and CCR's sessions), whose trials it serves from :meth:`StudyEngine.audio_for`.

Blinding: a trial holds opaque tokens (fresh for every trial, so not even the
hidden reference shares an id with the known one) and the audio as float32 arrays, each a
buffer of its own (``trial.sample is not trial.reference`` and no shared memory, even when the
audio is the same) — never a condition name, codec, bitrate or file path. Every rating is committed in its own
transaction before the session's ``rate`` returns; a listener who comes back resumes
at the first unrated trial of the plan they were given, and no trial can be rated twice.
"""

from __future__ import annotations

import os
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from sqlalchemy import case, func, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mosapp.core.config import PIPELINE_SAMPLE_RATE
from mosapp.core.version import __version__
from mosapp.study.definition import StudyDefinition, load_study
from mosapp.study.errors import StudyError
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
from mosapp.study.types import get_test_type

#: Pseudonymous listener codes: letters, digits, "_" and "-", at most 32 characters.
LISTENER_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


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
        """Score → label: 1..5 for DCR and ACR, -3..+3 for CCR; MUSHRA's five bands numbered 1..5."""
        labels = self.definition.labels
        low, high = self.definition.score_range
        first = low if high - low + 1 == len(labels) else 1
        return {first + i: label for i, label in enumerate(labels)}

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
                        audio_device: str = "") -> Any:
        """Begin a sitting for ``listener_code``: enrol a new listener (with a fresh plan) or resume one.

        Returns the test type's session (:attr:`mosapp.study.types.base.TestType.session_class`):
        a :class:`~mosapp.study.types.five_grade.ListeningSession` for DCR and ACR, a
        :class:`~mosapp.study.types.mushra.MushraSession`, a :class:`~mosapp.study.types.ccr.CcrSession` …

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
        return get_test_type(self.definition.test_type).session(self, listener_code, *ids)

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
        get_test_type(d.test_type).enrol(s, d, listener.id, int(position), stimuli, _token)
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

    def audio_for(self, audio_file: str) -> np.ndarray:
        """A stimulus's audio, float32 ``(channels, n)``: a read-only buffer of its own (sixteen files cached)."""
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


__all__ = ["LISTENER_CODE_RE", "ListenerProgress", "StudyEngine"]
