"""Listening studies without a GUI: definitions, rendered stimuli, a crash-safe store, blinded
balanced trial plans, statistics, CSV export and a report.

::

    studies/<name>.toml ─► definition ─► prepare (codecs, loudness, metrics) ─► stimuli + store
                                                                                     │
    listener ◄─ Trial (opaque ids, float32 audio) ◄─ engine.start_or_resume ◄─ plan ─┘
        └─► session.rate(...) ─► one committed transaction ─► export / report (stats)

Modules: :mod:`~mosapp.study.definition` (TOML schema), :mod:`~mosapp.study.store`
(SQLAlchemy models, SQLite WAL, Alembic migrations), :mod:`~mosapp.study.plan` (balanced
orders), :mod:`~mosapp.study.prepare` (rendering), :mod:`~mosapp.study.engine` (what a
listener drives), :mod:`~mosapp.study.types` (the test types: DCR, ACR, MUSHRA, CCR, as
plug-ins), :mod:`~mosapp.study.listening` (a listener's way through a study, without a window),
:mod:`~mosapp.study.stats` (statistics), :mod:`~mosapp.study.export` (CSV),
:mod:`~mosapp.study.report` (text and plot). Nothing here imports Qt.
"""

from mosapp.study.definition import REFERENCE, StudyDefinition, load_study, parse_study
from mosapp.study.engine import StudyEngine
from mosapp.study.errors import StudyError
from mosapp.study.prepare import PrepareResult, prepare_study
from mosapp.study.sitting import Progress
from mosapp.study.store import Store, open_store
from mosapp.study.types.five_grade import ListeningSession, PlayCounts, Trial

__all__ = [
    "REFERENCE", "ListeningSession", "PlayCounts", "PrepareResult", "Progress", "Store",
    "StudyDefinition", "StudyEngine", "StudyError", "Trial", "load_study", "open_store", "parse_study",
    "prepare_study",
]
