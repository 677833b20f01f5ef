"""The study store: SQLAlchemy 2.0 models, opening a database crash-safely, and schema migrations.

::

    studies ─┬─ clips ──────┐
             ├─ conditions ─┴─ stimuli ─┬─ stimulus_metrics (metric, value)
             │                          │
             └─ listeners ─┬─ trials ───┴─(stimulus, reference)
                           └─ sessions ─── ratings ── (trial: one rating at most)

SQLite is the default (one file per study, WAL journal, ``synchronous=FULL``, every write
transaction ``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout instead of
failing); any SQLAlchemy URL works. On PostgreSQL (a listening lab: many stations, one
server) every write transaction first takes one transaction-scoped advisory lock, so writers
queue exactly as they do on SQLite: stations enrolling at the same instant each take the next
position in turn, none is refused. The schema is versioned by Alembic
(:mod:`mosapp.study.migrations`): :func:`open_store` upgrades an older database and refuses
one written by a newer mosapp. Times are stored in UTC.

A database password is never stored: a URL may name it as ``${VARIABLE}`` (read from the
environment when the database is opened), the driver reads ``PGPASSWORD`` or ``~/.pgpass``,
and a password written literally in a study file is replaced by ``***`` in the copy of the
file kept in ``studies.definition_toml`` (:func:`redact_passwords`).
"""

from __future__ import annotations

import importlib.util
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    inspect,
    select,
)
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.elements import Label

from mosapp.study.errors import StudyError

#: Seconds a writer waits for another one's transaction before the database counts as locked.
DEFAULT_BUSY_TIMEOUT_S = 30.0
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def utcnow() -> datetime:
    """Now in UTC, naive (SQLite keeps no zone; every stored time is UTC)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


class StudyRow(Base):
    """A study as last prepared: its design and the definition file's text."""

    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(Text)
    test_type: Mapped[str] = mapped_column(String(8))
    definition_toml: Mapped[str] = mapped_column(Text)
    design_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    prepared_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Added by revision 0003: the secret that names the stimulus files (NULL: not renamed yet).
    stimulus_salt: Mapped[str | None] = mapped_column(String(64))

    clips: Mapped[list[ClipRow]] = relationship(back_populates="study", order_by="ClipRow.position")
    conditions: Mapped[list[ConditionRow]] = relationship(back_populates="study", order_by="ConditionRow.position")


#: A URL's ``user:PASSWORD@`` and its query's ``password=PASSWORD``; ``${VARIABLE}`` names no secret.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@\"'?#]*):(?P<pw>[^\s@\"']*)@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<pw>[^\s&\"'#]*)", re.IGNORECASE)
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def redact_passwords(text: str) -> str:
    """``text`` with every password written in a database URL replaced by ``***`` (a ``${VARIABLE}``
    reference is kept: it names where the password comes from, not the password)."""

    def hide(m: re.Match[str], sep: str) -> str:
        pw = m.group("pw")
        if not pw or _ENV_REFERENCE.fullmatch(pw):
            return m.group(0)
        return m.group("head") + ("***" if sep == "" else f":***{sep}")

    text = _URL_PASSWORD.sub(lambda m: hide(m, "@"), text)
    return _QUERY_PASSWORD.sub(lambda m: hide(m, ""), text)


@event.listens_for(StudyRow.definition_toml, "set", retval=True)
def _definition_without_password(_target: StudyRow, value: object, _old: object, _initiator: object) -> object:
    # Any role that can read the study can read this column: a password must never reach it.
    return redact_passwords(value) if isinstance(value, str) else value


class ClipRow(Base):
    """One excerpt of one source file."""

    __tablename__ = "clips"
    __table_args__ = (UniqueConstraint("study_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    source_file: Mapped[str] = mapped_column(Text)
    start_s: Mapped[float] = mapped_column(Float)
    length_s: Mapped[float] = mapped_column(Float)
    position: Mapped[int] = mapped_column(Integer)

    study: Mapped[StudyRow] = relationship(back_populates="clips")


class ConditionRow(Base):
    """A codec name (or ``reference``); ``in_plan`` is false for a DCR reference only used as the known one."""

    __tablename__ = "conditions"
    __table_args__ = (UniqueConstraint("study_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    is_reference: Mapped[bool] = mapped_column(Boolean)
    in_plan: Mapped[bool] = mapped_column(Boolean)
    nominal_kbps: Mapped[float | None] = mapped_column(Float)
    position: Mapped[int] = mapped_column(Integer)

    study: Mapped[StudyRow] = relationship(back_populates="conditions")


class StimulusRow(Base):
    """One rendered (clip, condition): an audio file, its bitrate and metrics.

    ``cache_key`` is the render's content hash (what decides whether it must be rendered again);
    ``audio_file`` is an HMAC of that key under the study's secret ``stimulus_salt``, so the
    file's name reveals nothing of the condition without the database. Everything else about
    the stimulus (bitrate, loudness, gain, metrics) lives only here, never in a file beside it.
    """

    __tablename__ = "stimuli"
    __table_args__ = (UniqueConstraint("clip_id", "condition_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id"), index=True)
    condition_id: Mapped[int] = mapped_column(ForeignKey("conditions.id"), index=True)
    cache_key: Mapped[str] = mapped_column(String(64))
    audio_file: Mapped[str] = mapped_column(String(255))
    sample_rate: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    n_samples: Mapped[int] = mapped_column(Integer)
    # The codec's payload bitrate, kbit/s (mosapp.core.metrics: payload_kbps); "bitrate_kbps" before revision 0006.
    payload_kbps: Mapped[float | None] = mapped_column(Float)
    loudness_lufs: Mapped[float] = mapped_column(Float)  # before normalisation
    gain_db: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Added by revision 0002.
    peak_dbfs: Mapped[float | None] = mapped_column(Float)
    delay_samples: Mapped[int | None] = mapped_column(Integer)
    # Its objective metrics: StimulusMetricRow (one column each from revisions 0002/0004 to 0007).

    clip: Mapped[ClipRow] = relationship()
    condition: Mapped[ConditionRow] = relationship()


class StimulusMetricRow(Base):
    """One objective metric of one stimulus (added by revision 0007): a long table, so a new study
    metric is a registry entry (:data:`mosapp.core.metrics.STUDY_METRIC_NAMES`), not a column.

    A metric not asked for, or not finite, has no row (it reads as NULL/NaN). Rows go with their
    stimulus (``ON DELETE CASCADE``).
    """

    __tablename__ = "stimulus_metrics"
    stimulus_id: Mapped[int] = mapped_column(ForeignKey("stimuli.id", ondelete="CASCADE"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


def metric_value(name: str, stimulus_id: Any = None) -> Label[float]:
    """The column expression "metric ``name`` of the stimulus ``stimulus_id``" (default
    ``StimulusRow.id``) for a ``select()`` over stimuli, labelled ``name``: NULL where it has none."""
    of = StimulusRow.id if stimulus_id is None else stimulus_id
    return (select(StimulusMetricRow.value)
            .where(StimulusMetricRow.stimulus_id == of, StimulusMetricRow.metric == name)
            .scalar_subquery().label(name))


def read_stimulus_metrics(session: Session, stimulus_ids: Iterable[int] | None = None) -> dict[int, dict[str, float]]:
    """Every stored metric per stimulus id (of ``stimulus_ids``, or all): ``{id: {metric: value}}``;
    a stimulus without metrics is absent."""
    q = select(StimulusMetricRow.stimulus_id, StimulusMetricRow.metric, StimulusMetricRow.value)
    if stimulus_ids is not None:
        q = q.where(StimulusMetricRow.stimulus_id.in_(list(stimulus_ids)))
    out: dict[int, dict[str, float]] = {}
    for stimulus_id, metric, value in session.execute(q.order_by(StimulusMetricRow.stimulus_id,
                                                                 StimulusMetricRow.metric)):
        out.setdefault(stimulus_id, {})[metric] = value
    return out


def write_stimulus_metrics(session: Session, stimulus_id: int, values: Mapping[str, float | None]) -> None:
    """Replace the stored metrics of one stimulus with ``values`` (a None value: no row)."""
    session.execute(delete(StimulusMetricRow).where(StimulusMetricRow.stimulus_id == stimulus_id))
    session.add_all(StimulusMetricRow(stimulus_id=stimulus_id, metric=name, value=float(value))
                    for name, value in values.items() if value is not None)


class ListenerRow(Base):
    """A pseudonymous listener; ``position`` is the enrolment order that picks the plan's row."""

    __tablename__ = "listeners"
    __table_args__ = (
        UniqueConstraint("study_id", "code"),
        UniqueConstraint("study_id", "position"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class SessionRow(Base):
    """One sitting of a listener (a resumed study is a new sitting)."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    listener_id: Mapped[int] = mapped_column(ForeignKey("listeners.id"), index=True)
    app_version: Mapped[str] = mapped_column(String(64))
    audio_device: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)


class TrialRow(Base):
    """One planned trial of a listener; ``sample_token``/``reference_token`` are what a listener sees."""

    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("listener_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    listener_id: Mapped[int] = mapped_column(ForeignKey("listeners.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    is_training: Mapped[bool] = mapped_column(Boolean)
    stimulus_id: Mapped[int] = mapped_column(ForeignKey("stimuli.id"))
    reference_stimulus_id: Mapped[int | None] = mapped_column(ForeignKey("stimuli.id"))
    trial_token: Mapped[str] = mapped_column(String(32), unique=True)
    sample_token: Mapped[str] = mapped_column(String(32), unique=True)
    reference_token: Mapped[str | None] = mapped_column(String(32), unique=True)
    # Added by revision 0003: a gold (known-answer) trial's accepted scores, "4,5"; NULL otherwise.
    gold_expected: Mapped[str | None] = mapped_column(String(32))

    # Added by revision 0005: CCR only, whether the processed sample plays first (as A).
    processed_first: Mapped[bool | None] = mapped_column(Boolean)

    stimulus: Mapped[StimulusRow] = relationship(foreign_keys=[stimulus_id])
    reference_stimulus: Mapped[StimulusRow | None] = relationship(foreign_keys=[reference_stimulus_id])


class _ScoreColumns:
    """A score and how the listener got there: the columns ``ratings`` and ``item_ratings`` share."""

    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    value: Mapped[int] = mapped_column(Integer)
    given_at: Mapped[datetime] = mapped_column(DateTime)
    plays_sample: Mapped[int] = mapped_column(Integer)
    plays_reference: Mapped[int] = mapped_column(Integer)
    listening_time_s: Mapped[float] = mapped_column(Float)
    response_time_s: Mapped[float] = mapped_column(Float)


class RatingRow(_ScoreColumns, Base):
    """The score given in one trial (at most one per trial), with how the listener got there."""

    __tablename__ = "ratings"
    __table_args__ = (CheckConstraint("value >= 1 AND value <= 5", name="value_1_to_5"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"), unique=True)


class TrialItemRow(Base):
    """A rated stimulus of a MUSHRA screen or a CCR pair (added by revision 0005).

    A MUSHRA trial has one item per condition, ``slot`` being its place on the screen (a random
    order per trial and listener); its :class:`TrialRow` holds the open reference as both
    ``stimulus_id`` and ``reference_stimulus_id``. A CCR trial has one item: the processed sample
    (its TrialRow: ``stimulus_id`` the processed one, ``reference_stimulus_id`` the reference).
    ``token`` is what a listener's program sees, fresh per item.
    """

    __tablename__ = "trial_items"
    __table_args__ = (UniqueConstraint("trial_id", "slot"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"), index=True)
    slot: Mapped[int] = mapped_column(Integer)
    stimulus_id: Mapped[int] = mapped_column(ForeignKey("stimuli.id"))
    token: Mapped[str] = mapped_column(String(32), unique=True)


class ItemRatingRow(_ScoreColumns, Base):
    """The score of one item (added by revision 0005): MUSHRA 0..100, CCR -3..+3.

    All items of one trial are written in one transaction (a MUSHRA screen is saved whole or
    not at all). ``plays_reference`` and ``response_time_s`` are the trial's; ``plays_sample``
    and ``listening_time_s`` the item's own (CCR: the processed sample's plays; listening time
    of both samples).
    """

    __tablename__ = "item_ratings"
    __table_args__ = (CheckConstraint("value >= -3 AND value <= 100", name="value_range"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("trial_items.id"), unique=True)


# -- opening a database -------------------------------------------------------------------


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The newest schema revision this mosapp knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the migrations ship with mosapp
        raise RuntimeError(f"The study migrations in {MIGRATIONS_DIR} have no head revision.")
    return head


def known_revisions() -> set[str]:
    return {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


@dataclass
class Store:
    """An open study database: an engine and a session factory.

    Use :meth:`write` / :meth:`read` for transactions; each commits (or rolls back) on exit and
    turns a locked, read-only or vanished database into a :class:`StudyError`.
    """

    engine: Engine
    url: str
    readonly: bool = False
    busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S

    def __post_init__(self) -> None:
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Reads begin DEFERRED (WAL readers never wait); writes begin IMMEDIATE (see _make_engine).
        self._read_sessions = sessionmaker(self.engine.execution_options(mosapp_read=True), expire_on_commit=False)

    @property
    def label(self) -> str:
        """The database as named in messages: its file for SQLite, the URL without password otherwise."""
        return describe_url(self.url)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on exit."""
        if self.readonly:
            raise StudyError(f"The study database {self.label} is open read-only; it cannot be changed.")
        with self._translate():
            with self._sessions() as session, session.begin():
                yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading (one transaction; nothing is written)."""
        with self._translate():
            with self._read_sessions() as session, session.begin():
                yield session

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except (StudyError, IntegrityError):
            raise  # IntegrityError: the caller knows what a duplicate means
        except DBAPIError as exc:
            raise database_error(exc, self.url, self.busy_timeout_s) from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe_url(url: str) -> str:
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        return u.database
    return u.render_as_string(hide_password=True)


def database_error(exc: BaseException, url: str, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> StudyError:
    """The one sentence for a database error a user can meet."""
    where = describe_url(url)
    full = str(getattr(exc, "orig", exc) or exc)
    # A server's message may run over several lines (hints, context): the first says what failed.
    msg = (full.strip().splitlines() or [""])[0].lower()
    password = make_url(url).password if "://" in url else None
    if password:
        msg = msg.replace(str(password).lower(), "***")
    if "password authentication failed" in msg or "no password supplied" in msg:
        return StudyError(
            f"The database server of {where} refused the password ({msg.strip()}); set PGPASSWORD, or the "
            f"variable the URL names as ${{...}}, or add the password to ~/.pgpass."
        )
    if "could not connect" in msg or "connection refused" in msg or "connection failed" in msg \
            or "timeout expired" in msg or "could not translate host name" in msg:
        return StudyError(f"The database server of {where} cannot be reached ({msg.strip()}); check that it runs "
                          f"and the URL's host and port.")
    if "lock timeout" in msg:
        return StudyError(
            f"The study database {where} is locked by another program (it waited "
            f"{busy_timeout_s:g} s); close the other program or try again."
        )
    if "locked" in msg or "busy" in msg:
        return StudyError(
            f"The study database {where} is locked by another program (it waited "
            f"{busy_timeout_s:g} s); close the other program or try again."
        )
    if "readonly" in msg or "read-only" in msg or "read only" in msg:
        return StudyError(f"The study database {where} is read-only; give mosapp write access to it (and its folder).")
    if "unable to open" in msg or "disk i/o" in msg:
        return StudyError(f"The study database {where} cannot be opened ({msg.strip()}); check the file and its folder.")
    if "not a database" in msg or "malformed" in msg:
        return StudyError(f"{where} is not a usable SQLite database ({msg.strip()}).")
    return StudyError(f"The study database {where} failed ({msg.strip()}).")


def _sqlite_file(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:" or u.database.startswith("file:"):
        return None
    return Path(u.database)


def expand_url(url: str) -> str:
    """``url`` with each ``${VARIABLE}`` replaced by that environment variable (URL-quoted), so a
    study file can name where a password comes from without holding it.

    Raises:
        StudyError: a variable the URL names is not set.
    """

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise StudyError(f"The database URL {describe_url(url)} takes ${{{name}}} from the environment, but "
                             f"{name} is not set; set it (e.g. export {name}=...) and run this again.")
        return quote(os.environ[name], safe="")

    return _ENV_REFERENCE.sub(value, url)


#: The PostgreSQL advisory lock every write transaction takes (its key: a CRC-32 of a fixed phrase).
PG_WRITE_LOCK = zlib.crc32(b"mosapp study writes")


def _postgres_url(u: URL) -> URL:
    """``postgresql://`` means psycopg2 to SQLAlchemy; where only psycopg (3) is installed, use it."""
    if u.drivername != "postgresql" or importlib.util.find_spec("psycopg2") is not None:
        return u
    return u.set(drivername="postgresql+psycopg") if importlib.util.find_spec("psycopg") is not None else u


def _make_engine(url: str, *, readonly: bool, busy_timeout_s: float) -> Engine:
    u = make_url(expand_url(url))
    if u.get_backend_name() != "sqlite":
        if u.get_backend_name() != "postgresql":
            return create_engine(u, pool_pre_ping=True)
        u = _postgres_url(u)
        connect_args = {"connect_timeout": 10} if u.get_driver_name() in ("psycopg", "psycopg2") else {}
        pg = create_engine(u, pool_pre_ping=True, connect_args=connect_args)

        @event.listens_for(pg, "begin")
        def _on_pg_begin(conn) -> None:  # pragma: no cover - exercised by the PostgreSQL tests
            # Writers queue on one advisory lock (as BEGIN IMMEDIATE makes them on SQLite), waiting at
            # most the busy timeout: two stations enrolling at once take the next positions in turn.
            if readonly or conn.get_execution_options().get("mosapp_read", False):
                return
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(busy_timeout_s * 1000)}")
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")

        return pg
    path = _sqlite_file(url)
    if readonly and path is not None:
        # A URI so SQLite opens the file without write access (and never creates it). In WAL
        # mode a reader needs the -shm file; where the folder is read-only and no -wal file
        # exists, no writer can be active (it could not create one), so the file is opened
        # immutable, which needs neither.
        resolved = path.resolve()
        immutable = not os.access(resolved.parent, os.W_OK) and not Path(str(resolved) + "-wal").exists()
        engine = create_engine(
            "sqlite:///file:" + str(resolved) + ("?immutable=1" if immutable else "?mode=ro") + "&uri=true",
            connect_args={"timeout": busy_timeout_s},
        )
    else:
        engine = create_engine(url, connect_args={"timeout": busy_timeout_s})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # pragma: no cover - exercised through every test
        # pysqlite's own transaction handling is off; SQLAlchemy's "begin" event emits BEGIN below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            # FULL: a commit survives power loss, not just a crash. (WAL is switched on once the file
            # is known to be a study database: _use_wal; a foreign file is refused unchanged.)
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # pragma: no cover - exercised through every test
        # IMMEDIATE takes the write lock up front: two writers queue on busy_timeout instead of
        # one failing at once with SQLITE_BUSY when it upgrades a read transaction.
        deferred = readonly or conn.get_execution_options().get("mosapp_read", False)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

    return engine


def open_store(url: str, *, create: bool = True, readonly: bool = False,
               busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> Store:
    """Open (and create or upgrade) a study database.

    Args:
        url: a SQLAlchemy URL (``sqlite:///path/study.sqlite`` by default for studies).
        create: make the file and its folder if missing; otherwise a missing database fails.
        readonly: open without write access (status, export and report of a read-only file).
        busy_timeout_s: how long to wait for another writer before reporting a locked database.

    Raises:
        StudyError: the URL is invalid or its driver missing; the file is missing (``create``
            false), read-only, locked, not a database, or from a newer mosapp.
    """
    try:
        make_url(url)
    except (ArgumentError, ValueError):
        raise StudyError(f'The database URL "{url}" is not a valid SQLAlchemy URL.') from None
    where = describe_url(url)
    path = _sqlite_file(url)
    if path is not None:
        _check_sqlite_path(path, create=create, readonly=readonly)
    try:
        engine = _make_engine(url, readonly=readonly, busy_timeout_s=busy_timeout_s)
    except (NoSuchModuleError, ImportError) as exc:
        raise StudyError(f'The database URL "{where}" needs a driver that is not installed ({exc}); install it '
                         f"or use a SQLite file.") from None
    store = Store(engine=engine, url=url, readonly=readonly, busy_timeout_s=busy_timeout_s)
    try:
        upgraded = _migrate(store)
        if upgraded is not None:  # a read-only SQLite file at an older revision: read an upgraded copy
            engine.dispose()
            engine = upgraded
            store = Store(engine=engine, url=url, readonly=True, busy_timeout_s=busy_timeout_s)
    except StudyError:
        engine.dispose()
        raise
    except (OperationalError, DBAPIError) as exc:
        engine.dispose()
        raise database_error(exc, url, busy_timeout_s) from None
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StudyError(f"The study database {where} cannot be opened ({exc}).") from None
    if not store.readonly and path is not None:
        try:
            _use_wal(store.engine)
        except (OperationalError, DBAPIError) as exc:
            store.close()
            raise database_error(exc, url, busy_timeout_s) from None
    return store


def _check_sqlite_path(path: Path, *, create: bool, readonly: bool) -> None:
    """Refuse a SQLite path that cannot be a study database (a folder, an empty file read-only, a
    missing one not to be created, one or its folder not writable for writing); make its folder."""
    if path.is_dir():
        raise StudyError(f"The study database {path} is a folder; give a file name.")
    if path.exists() and readonly and path.stat().st_size == 0:
        raise StudyError(f"The study database {path} is an empty file, not a prepared study; run "
                         f"`mosapp study prepare` first.")
    if not path.exists():
        if not create or readonly:
            raise StudyError(f"The study database {path} does not exist; run `mosapp study prepare` first.")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StudyError(f"The folder {path.parent} for the study database cannot be created "
                             f"({exc.strerror or exc}).") from None
    if not readonly:
        if path.exists() and not os.access(path, os.W_OK):
            raise StudyError(f"The study database {path} is read-only; give mosapp write access to it.")
        if not os.access(path.parent, os.W_OK):
            raise StudyError(f"The folder {path.parent} of the study database is read-only; SQLite needs to "
                             f"write its journal there, so give mosapp write access to it.")


def _use_wal(engine: Engine) -> None:
    """Switch a study's SQLite file to WAL (readers never block the writer; the mode stays with
    the file), once :func:`_migrate` has found it is one: a foreign file is never changed."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()
    finally:
        raw.close()


def _upgraded_copy(store: Store) -> Engine:
    """An in-memory copy of the read-only SQLite database ``store`` upgraded to the head revision,
    for reading an older file (status, export, report) without changing it."""
    memory = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    with store.engine.connect() as src, memory.connect() as dst:
        src.connection.driver_connection.backup(dst.connection.driver_connection)  # type: ignore[union-attr]
    with memory.begin() as conn:
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return memory


def _migrate(store: Store) -> Engine | None:
    """Upgrade ``store`` to the head revision; a read-only SQLite file at an older revision is left
    as it is and an upgraded in-memory copy of it returned (to be read instead)."""
    head = head_revision()
    where = store.label
    with store.engine.begin() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return None
        tables = set(inspect(conn).get_table_names())
        if current is None and tables - {"alembic_version"}:
            raise StudyError(f"{where} is a database but not a mosapp study database (it has no schema version).")
        if current is not None and current not in known_revisions():
            raise StudyError(
                f"The study database {where} has schema revision {current}, written by a newer mosapp; this "
                f"mosapp reads up to revision {head}: update mosapp to open it."
            )
        if store.readonly and current is None:
            raise StudyError(f"The study database {where} holds no study yet; run `mosapp study prepare` first.")
        if store.readonly and _sqlite_file(store.url) is None:
            raise StudyError(
                f"The study database {where} has an older schema (revision {current}) and is open read-only; "
                f"open it once with write access to upgrade it."
            )
        if not store.readonly:
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            return None
    return _upgraded_copy(store)


def schema_revision(store: Store) -> str | None:
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


__all__ = [
    "Base", "ClipRow", "ConditionRow", "DEFAULT_BUSY_TIMEOUT_S", "ItemRatingRow", "ListenerRow", "RatingRow", "SessionRow", "Store",
    "StimulusMetricRow", "StimulusRow", "StudyRow", "TrialItemRow", "TrialRow", "database_error", "describe_url",
    "expand_url", "head_revision", "metric_value", "open_store", "read_stimulus_metrics", "redact_passwords",
    "schema_revision", "utcnow", "write_stimulus_metrics",
]
