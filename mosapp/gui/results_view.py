"""The Results view: a study's scores for the researcher, and the command line's files.

::

    [Open study…] [Reload] [x] post-screening   title · ratings · listeners   [Export CSV…] [Write report…]
    message (errors in one sentence)
    ┌ Scores ────────────────────────────────────────────────────────────────────────────┐
    │ condition | kbps | n | listeners | MOS | 95 % CI (listeners) | bootstrap | mixed | per-rating | SD │ plot │
    │ …                                                                        │ against kbps (log)  │
    └ Listeners (progress + screening) · Metrics vs score · Paired comparisons · Per clip · Agreement · Report ┘

Everything is computed by :func:`mosapp.study.report.build_report` (the ``mosapp study report``
numbers) on a :class:`~mosapp.gui.workers.GeneratorWorker`, with its own database connection;
the view only shows what comes back. "Export CSV…" writes exactly what ``mosapp study export``
writes (:func:`mosapp.study.export.export_study`), "Write report…" what ``mosapp study report``
writes (:func:`mosapp.study.report.write_report`). Both take a folder from a dialog, or from
the ``folder`` argument (tests, scripts).

A malformed study file, a missing or locked database: one sentence in the view; nothing is
written to the database from here.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import select
from sqlalchemy.engine import make_url

from mosapp.gui.workers import GeneratorWorker
from mosapp.study.definition import REFERENCE, STUDIES_DIR, StudyDefinition, load_study
from mosapp.study.engine import ListenerProgress, StudyEngine
from mosapp.study.errors import StudyError
from mosapp.study.export import export_study
from mosapp.study.report import (
    CcrReport,
    Report,
    build_report,
    condition_family,
    kbps_ticks,
    line_label,
    score_ticks,
    write_report,
)
from mosapp.study.store import ClipRow, ConditionRow, StimulusRow, Store, StudyRow, open_store

#: The study the view opens when given none.
DEFAULT_STUDY = STUDIES_DIR / "demo.toml"
#: Bootstrap resamples (as ``mosapp study report``).
DEFAULT_BOOTSTRAP = 2000
#: Showing the view reads the ratings again when the last read is older than this.
RELOAD_ON_SHOW_AFTER_S = 5.0
#: Line colours of the plot (matplotlib's tab10, as the report's PNG).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")

_NA = "–"
_T = TypeVar("_T")


def _num(value: Any, fmt: str = "{:.2f}") -> str:
    try:
        if value is None or pd.isna(value):
            return _NA
    except (TypeError, ValueError):
        return str(value)
    return fmt.format(value)


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return _NA
    return f"[{low:.2f}, {high:.2f}]"


#: How a study without a database yet begins its message: a first step, not an error (shown as a hint).
NO_RATINGS_YET = "No ratings yet."


def _open_existing(url: str) -> Store:
    """Open a study database for reading (read-only when the file or its folder cannot be written)."""
    u = make_url(url)
    readonly = False
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        p = Path(u.database)
        if not p.exists():
            raise StudyError(f"{NO_RATINGS_YET} The study database {p} does not exist yet: prepare the study "
                             f"(Listen tab, or `mosapp study prepare` with --db at that path) and rate some trials "
                             f"first.")
        readonly = not (os.access(p, os.W_OK) and os.access(p.parent, os.W_OK))
    return open_store(url, create=False, readonly=readonly)


def load_results(study: str | os.PathLike[str] | StudyDefinition, database: str | None, *, screening: bool,
                 bootstrap: int, min_score: int | None = None
                 ) -> Generator[str, None, tuple[StudyDefinition, Report | CcrReport, list[ListenerProgress]]]:
    """The job the worker runs: (definition, Report, listener progress). A generator (one step).

    ``min_score`` overrides the study's screening threshold, in its units (ignored where out of them)."""
    yield "reading"
    definition = study if isinstance(study, StudyDefinition) else load_study(study, check_codecs=False)
    low, high = definition.score_range
    if min_score is not None and (definition.test_type == "ccr" or not low <= min_score <= high
                                  or (definition.test_type == "mushra" and min_score <= 5)):
        min_score = None  # another study's threshold: the study's own
    store = _open_existing(database or definition.database_url)
    try:
        report = build_report(store, definition, screening=screening, bootstrap=bootstrap, min_score=min_score)
        progress = StudyEngine(definition, store).listener_progress()
    finally:
        store.close()
    return definition, report, progress


@dataclass(frozen=True)
class StimulusLink:
    """A (clip, condition) cell of Results as Inspect opens it: the rendered stimulus, its reference, its ratings."""

    clip: str
    condition: str
    stimulus: Path
    reference: Path
    ratings: tuple[str, ...]

    @property
    def title(self) -> str:
        return f"{self.condition} · {self.clip}"


def stimulus_link(store: Store, definition: StudyDefinition, ratings: pd.DataFrame, clip: str,
                  condition: str) -> StimulusLink:
    """The files listeners heard for ``(clip, condition)`` and for the clip's reference, and the cell's ratings
    (``ratings``: the report's table; one line per rating, screened-out listeners marked)."""
    with store.read() as s:
        rows = dict(s.execute(
            select(ConditionRow.name, StimulusRow.audio_file)
            .join(ClipRow, StimulusRow.clip_id == ClipRow.id)
            .join(ConditionRow, StimulusRow.condition_id == ConditionRow.id)
            .join(StudyRow, StimulusRow.study_id == StudyRow.id)
            .where(StudyRow.name == definition.name, ClipRow.name == clip,
                   ConditionRow.name.in_([condition, REFERENCE]))).all())
    if condition not in rows or REFERENCE not in rows:
        missing = condition if condition not in rows else REFERENCE
        raise StudyError(f'The study "{definition.name}" has no rendered stimulus of {missing} for the clip {clip}; '
                         f"run `mosapp study prepare`.")
    cell = ratings[(ratings["clip"] == clip) & (ratings["condition"] == condition)] if len(ratings) else ratings
    if "is_gold" in cell:
        cell = cell[~cell["is_gold"].astype(bool)]
    lines = tuple(
        f"{r.listener}: {r.value:g} (trial {r.trial})" + (" — screened out" if getattr(r, "screened_out", False) else "")
        for r in cell.itertuples())
    folder = definition.stimuli_dir
    return StimulusLink(clip, condition, folder / rows[condition], folder / rows[REFERENCE], lines)


def _cell(row: pd.Series | None, column: str, fmt: str = "{:.0f}") -> str:
    """``row[column]`` formatted, or the "not available" mark."""
    return _NA if row is None or column not in row.index else _num(row[column], fmt)


class _Table(QTableWidget):
    """A read-only table filled from rows of strings."""

    def __init__(self, headers: list[str], tooltips: dict[int, str] | None = None) -> None:
        super().__init__(0, len(headers))
        self.setHorizontalHeaderLabels(headers)
        for col, tip in (tooltips or {}).items():
            header = self.horizontalHeaderItem(col)
            if header is not None:
                header.setToolTip(tip)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)

    def fill(self, rows: list[list[str]], *, left: tuple[int, ...] = (0,), bold_col: int | None = None,
             colors: list[QColor | None] | None = None) -> None:
        """Fill with ``rows`` of strings; columns in ``left`` are left-aligned (text), the others
        right-aligned (numbers). Long cells are elided; their tooltip holds the whole text."""
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                item = QTableWidgetItem(text)
                item.setTextAlignment((Qt.AlignmentFlag.AlignLeft if c in left else Qt.AlignmentFlag.AlignRight)
                                      | Qt.AlignmentFlag.AlignVCenter)
                if len(text) > 24:
                    item.setToolTip(text)
                if bold_col is not None and c == bold_col:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                color = None if colors is None or c != 0 else colors[r]
                if color is not None:
                    item.setForeground(color)
                self.setItem(r, c, item)
        self.resizeRowsToContents()

    def cell(self, row: int, col: int) -> str:
        item = self.item(row, col)
        return "" if item is None else item.text()


class ResultsView(QWidget):
    """MOS/DMOS per condition with 95 % CIs as a table and a plot, listeners, metric correlations, exports.

    Args:
        study: a study file, a name in ``studies/``, or a parsed definition (default: the demo).
        parent: the parent widget.
        database: a SQLAlchemy URL overriding the study's database.
        bootstrap: bootstrap resamples for the listener-clustered intervals.
        auto_load: compute the results as soon as the view is built.

    Signals:
        loaded(object): the :class:`mosapp.study.report.Report` now shown.
        failed(str): loading failed; the sentence is also shown in the view.
    """

    loaded = Signal(object)
    failed = Signal(str)
    #: A (clip, condition) cell (or a plotted point) asked to be shown in Inspect: a :class:`StimulusLink`.
    inspect_requested = Signal(object)

    def __init__(self, study: str | os.PathLike[str] | StudyDefinition | None = None, parent: QWidget | None = None,
                 *, database: str | None = None, bootstrap: int = DEFAULT_BOOTSTRAP, auto_load: bool = True) -> None:
        if isinstance(study, QWidget) and parent is None:  # ResultsView(parent)
            study, parent = None, study
        super().__init__(parent)
        self.setObjectName("resultsView")
        self.database = database
        self.bootstrap = int(bootstrap)
        self.study = study if study is not None else DEFAULT_STUDY
        self.definition: StudyDefinition | None = None
        self.report: Report | CcrReport | None = None
        self.progress: list[ListenerProgress] = []
        self.plotted: dict[str, object] = {}
        self._worker: GeneratorWorker | None = None
        self._generation = 0
        self._loaded_at: float | None = None
        self._build()
        if auto_load:
            self.reload()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.open_button = QPushButton("Open study…")
        self.open_button.clicked.connect(self._choose_study)
        bar.addWidget(self.open_button)
        self.reload_button = QPushButton("Reload")
        self.reload_button.setToolTip("Read the ratings again (listeners may be rating right now).")
        self.reload_button.clicked.connect(self.reload)
        bar.addWidget(self.reload_button)
        self.screening_box = QCheckBox("Post-screening")
        self.screening_box.setChecked(True)
        self.screening_box.setToolTip("The study's post-screening rule (default: drop listeners who rate the hidden "
                                      "reference below 4 in more than 15 % of at least 7 trials), as `mosapp study "
                                      "report`; off: --no-screening.")
        self.screening_box.toggled.connect(self.reload)
        bar.addWidget(self.screening_box)
        # The screening threshold in the study's own units: 1-5 (DCR/ACR), 0-100 (MUSHRA); CCR has none.
        self.min_score_spin = QSpinBox()
        self.min_score_spin.setPrefix("reference below ")
        self.min_score_spin.setRange(1, 5)
        self.min_score_spin.setValue(4)
        self.min_score_spin.setEnabled(False)
        self.min_score_spin.setToolTip("Post-screening counts a hidden-reference score below this against a listener, "
                                       "in the study's units (1-5, MUSHRA 0-100); as --min-score.")
        self.min_score_spin.editingFinished.connect(self._min_score_changed)
        self._min_score: int | None = None  # an override of the study's [screening] min_score
        bar.addWidget(self.min_score_spin)
        self.title_label = QLabel("")
        self.title_label.setTextFormat(Qt.TextFormat.PlainText)
        font = QFont(self.title_label.font())
        font.setBold(True)
        self.title_label.setFont(font)
        bar.addWidget(self.title_label, 1)
        self.training_box = QCheckBox("Include training trials")
        self.training_box.setToolTip("Add the training trials to the ratings CSV (--include-training).")
        bar.addWidget(self.training_box)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("<study>-ratings.csv, -export-summary.csv and -export-screening.csv, as `mosapp study export`.")
        self.export_button.clicked.connect(lambda: self.export_csv())
        bar.addWidget(self.export_button)
        self.report_button = QPushButton("Write report…")
        self.report_button.setToolTip("Summary, comparisons, correlations, listeners CSV, the plot (PNG) and the "
                                      "report text, as `mosapp study report`.")
        self.report_button.clicked.connect(lambda: self.write_report_files())
        bar.addWidget(self.report_button)
        layout.addLayout(bar)

        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.message_label)

        self.tabs = QTabWidget()
        self.summary_table = _Table(
            ["condition", "kbps", "n", "listeners", "MOS", "95% CI (listeners, t)", "95% bootstrap", "95% bootstrap-t",
             "mixed model [95%]", "per-rating t", "SD"],
            {1: "measured payload bitrate, mean over the clips (none for the reference, anchors and pghi-only)",
             2: "ratings", 3: "listeners with ratings",
             5: "95 % t interval over the listeners' means (the listener is the unit); * clipped to the scale",
             6: "95 % listener-clustered bootstrap interval (percentile)",
             7: "95 % listener-clustered bootstrap-t interval (studentised: about 94 % coverage with 7 listeners, "
                "where the percentile one covers 85-88 %)",
             8: "mixed model (random listener and clip intercepts): estimate [95 % t interval, Satterthwaite df]",
             9: "95 % t interval over single ratings, as if they were independent (too narrow)",
             10: "standard deviation of the ratings"},
        )
        self.listeners_table = _Table(
            ["listener", "rated", "training", "sittings", "ratings", "mean", "ref. trials", "below",
             "fraction below", "screening"],
            {1: "rated trials / planned (training excluded)", 4: "ratings in the statistics",
             6: "ratings of the hidden reference", 7: "hidden-reference ratings below the threshold"},
        )
        self.correlations_table = _Table(
            ["metric", "n", "Pearson r", "p", "Spearman ρ", "p", "note"],
            {1: "conditions with both a score and the metric"},
        )
        # The columns fit their contents; a stretched last section would be at least 100 px wide.
        self.summary_table.horizontalHeader().setStretchLastSection(False)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        for title, table, stretch in (("Per condition", self.summary_table, 0),
                                      ("Listeners and post-screening", self.listeners_table, 1),
                                      ("Objective metrics against the score (per condition)",
                                       self.correlations_table, 0)):
            heading = QLabel(title)
            font = QFont(heading.font())
            font.setBold(True)
            heading.setFont(font)
            column.addWidget(heading)
            if not stretch:
                table.setSizeAdjustPolicy(QAbstractItemView.SizeAdjustPolicy.AdjustToContents)
                table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
            column.addWidget(table, stretch)

        self.plot = pg.PlotWidget()
        self.plot.setMinimumWidth(360)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.legend = self.plot.addLegend(offset=(-10, -10), labelTextSize="8pt")
        self._labels: list[pg.TextItem] = []  # the point labels, placed by _place_labels
        box = self.plot.getPlotItem().getViewBox()
        box.sigResized.connect(self._place_labels)
        box.sigTransformChanged.connect(self._place_labels)  # the axes' widths settle after the ticks are set
        self.split = split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.plot)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.splitterMoved.connect(self._split_moved)
        self._split_user = False
        self.tabs.addTab(split, "Scores")

        self.comparisons_table = _Table(
            ["a", "b", "mean diff [95% CI]", "dz", "pairs", "t Holm p", "significant", "sign-flip Holm p",
             "Wilcoxon Holm p", "listeners needed", "note"],
            {0: "paired tests on per-listener means, each Holm-corrected over the pairs",
             5: "paired t-test (the decision), Holm-corrected",
             7: "sign-flip permutation test (exact up to 16 listeners), Holm-corrected",
             8: "Wilcoxon signed-rank (exact, mid-ranks for ties), Holm-corrected",
             9: "listeners a paired t-test would need to find this difference (power 80 %)"},
        )
        self.tabs.addTab(self.comparisons_table, "Paired comparisons")
        self.clips_table = _Table(
            ["clip", "condition", "n", "listeners", "mean", "95% CI (listeners, t)", "SD (listeners)"],
            {5: "95 % t interval over the listeners' means in this clip x condition cell",
             6: "standard deviation of the listeners' means in this cell"},
        )
        self.clips_table.setToolTip("Double-click a row (or press Enter) to open that stimulus in Inspect, against "
                                    "its reference, with its ratings.")
        self.clips_table.cellDoubleClicked.connect(lambda row, _col: self.inspect_row(row))
        self.clips_table.itemActivated.connect(lambda item: self.inspect_row(item.row()))
        self.tabs.addTab(self.clips_table, "Per clip")
        self.agreement_table = _Table(
            ["listener", "conditions", "r with the rest", "note"],
            {2: "Pearson r of the listener's condition means with the panel mean without them"},
        )
        self.tabs.addTab(self.agreement_table, "Agreement")
        self.report_text = QPlainTextEdit()
        self.report_text.setReadOnly(True)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.report_text.setFont(mono)
        self.tabs.addTab(self.report_text, "Report text")
        layout.addWidget(self.tabs, 1)
        self._set_actions(False)

    def _min_score_changed(self) -> None:
        value = self.min_score_spin.value()
        if self.report is not None and value != self.report.screening.spec.min_score:
            self._min_score = value
            self.reload()

    def _split_moved(self, *_: object) -> None:
        self._split_user = True

    def _fit_split(self) -> None:
        """Give the tables the width the summary's columns need (at most 60 %); the plot the rest."""
        if self._split_user:
            return
        table = self.summary_table
        table.resizeColumnsToContents()
        header = table.horizontalHeader()
        need = (sum(max(table.sizeHintForColumn(c), header.sectionSizeHint(c)) for c in range(table.columnCount()))
                + 2 * table.frameWidth() + table.verticalScrollBar().sizeHint().width() + 24)
        total = max(self.split.width(), self.width() - 24, 400)
        width = min(need, int(0.6 * total))
        self.split.setSizes([width, max(1, total - width)])

    def showEvent(self, event) -> None:  # noqa: N802 — Qt's name
        # Brought to the front (its tab chosen): listeners may have rated since; read again.
        super().showEvent(event)
        if (not self.loading and self._loaded_at is not None
                and time.monotonic() - self._loaded_at > RELOAD_ON_SHOW_AFTER_S):
            self.reload()

    def resizeEvent(self, event) -> None:  # noqa: N802 — Qt's name
        super().resizeEvent(event)
        self._fit_split()

    def _set_actions(self, ok: bool) -> None:
        self.export_button.setEnabled(ok)
        self.report_button.setEnabled(ok)

    def _message(self, text: str, *, error: bool = False) -> None:
        self.message_label.setStyleSheet("color: #b00020;" if error else "")
        self.message_label.setText(text)
        self.message_label.setProperty("error", error)

    # ------------------------------------------------------------------ loading
    @property
    def loading(self) -> bool:
        return self._worker is not None and self._worker.is_running

    def open_study(self, study: str | os.PathLike[str] | StudyDefinition) -> None:
        """Show the results of ``study`` (computed in the background)."""
        self.study = study
        self.reload()

    def open_path(self, path: str | os.PathLike[str]) -> None:
        """A file dropped on the window while this view is current: a study file is opened."""
        if Path(path).suffix.lower() == ".toml":
            self.open_study(path)
        else:
            self._message(f"{Path(path).name} is not a study file; drop a .toml study file here.", error=True)

    def _choose_study(self) -> None:
        start = str(STUDIES_DIR if STUDIES_DIR.is_dir() else Path.cwd())
        path, _ = QFileDialog.getOpenFileName(self, "Open a study", start, "Study files (*.toml)")
        if path:
            self.open_study(path)

    def reload(self) -> None:
        """Compute the results again (the previous run, if any, is dropped)."""
        if self._worker is not None and self._worker.is_running:
            self._worker.cancel()
        self._generation += 1
        generation = self._generation
        study, database = self.study, self.database
        screening, bootstrap, min_score = self.screening_box.isChecked(), self.bootstrap, self._min_score
        self._message("Reading the ratings…")
        self.reload_button.setEnabled(True)
        worker = GeneratorWorker(lambda: load_results(study, database, screening=screening, bootstrap=bootstrap,
                                                      min_score=min_score), self)
        worker.setProperty("generation", generation)
        # Bound methods of this view (not lambdas): the slots then run on the GUI thread.
        worker.finished.connect(self._worker_finished)
        worker.failed.connect(self._worker_failed)
        self._worker = worker
        worker.start()

    def _sender_generation(self) -> int:
        sender = self.sender()
        generation = None if sender is None else sender.property("generation")
        return -1 if generation is None else int(generation)

    def _worker_finished(self, result: tuple[StudyDefinition, Report | CcrReport, list[ListenerProgress]]) -> None:
        self._loaded(self._sender_generation(), result)

    def _worker_failed(self, message: str) -> None:
        self._failed(self._sender_generation(), message)

    def _failed(self, generation: int, message: str) -> None:
        if generation != self._generation:
            return
        self._loaded_at = time.monotonic()
        self.report = None
        self._set_actions(False)
        self._clear()
        self._message(message, error=not message.startswith(NO_RATINGS_YET))
        self.failed.emit(message)

    def _clear(self) -> None:
        for table in (self.summary_table, self.listeners_table, self.correlations_table, self.comparisons_table,
                      self.clips_table, self.agreement_table):
            table.setRowCount(0)
        self.report_text.setPlainText("")
        self.plot.clear()
        self.legend.clear()
        self.plotted = {}

    def _loaded(self, generation: int,
                result: tuple[StudyDefinition, Report | CcrReport, list[ListenerProgress]]) -> None:
        if generation != self._generation:
            return
        definition, report, progress = result
        self._loaded_at = time.monotonic()
        if self.definition is not None and definition.name != self.definition.name:
            self._min_score = None  # another study: its own threshold
        blocker = QSignalBlocker(self.min_score_spin)
        low, high = definition.score_range
        self.min_score_spin.setRange(6 if definition.test_type == "mushra" else max(low, 1), high)
        self.min_score_spin.setValue(int(report.screening.spec.min_score))
        self.min_score_spin.setEnabled(definition.test_type != "ccr" and report.screening.spec.rule != "off")
        del blocker
        self.definition, self.report, self.progress = definition, report, progress
        self._show(report, progress)
        self._set_actions(True)
        self.loaded.emit(report)

    # ------------------------------------------------------------------ showing
    def _show(self, report: Report | CcrReport, progress: list[ListenerProgress]) -> None:
        d = report.definition
        self._clear()
        scale = d.scale
        ratings = report.ratings
        n_listeners = ratings["listener"].nunique() if len(ratings) else 0
        finished = sum(p.finished for p in progress)
        self.title_label.setText(f"{d.title}  ({d.name}, {d.test_type.upper()})")
        self._message(f"{len(ratings)} rating(s) from {n_listeners} listener(s); {len(progress)} enrolled, "
                      f"{finished} finished. Screening: {report.screening.describe()}."
                      + ("" if len(ratings) else " No ratings yet: listeners rate in the Listen tab."))
        header = self.summary_table.horizontalHeaderItem(4)
        if header is not None:
            header.setText(scale)
        self._fill_summary(report.summary)
        self._fit_split()
        self._fill_listeners(report, progress)
        self._fill_correlations(report.correlations)
        self._fill_comparisons(report.comparisons)
        self._fill_clips(report.clips)
        self._fill_agreement(report)
        self.report_text.setPlainText(report.text())
        self._draw(report.summary, d)

    def _colors(self, summary: pd.DataFrame) -> dict[str, str]:
        """A colour per plotted family (conditions with a bitrate) or condition (without)."""
        colors: dict[str, str] = {}
        i = 0
        data = summary.dropna(subset=["mean"])
        for family in dict.fromkeys(data.dropna(subset=["bitrate_kbps"])["condition"].map(condition_family)):
            colors[family] = PALETTE[i % len(PALETTE)]
            i += 1
        for cond in data[data["bitrate_kbps"].isna()]["condition"]:
            colors[cond] = PALETTE[i % len(PALETTE)]
            i += 1
        return colors

    def _fill_summary(self, summary: pd.DataFrame) -> None:
        colors = self._colors(summary)
        rows: list[list[str]] = []
        row_colors: list[QColor | None] = []
        for r in summary.itertuples():
            marks = set(str(r.clipped).split(";")) if isinstance(r.clipped, str) and r.clipped else set()

            def iv(name: str, low: float, high: float, marks: set[str] = marks) -> str:
                text = _interval(low, high)
                return text + ("*" if name in marks and text != _NA else "")

            rows.append([
                str(r.condition) + ("  (hidden reference)" if r.is_reference else ""),
                _num(r.bitrate_kbps, "{:.1f}"), str(int(r.n)), str(int(r.n_listeners)), _num(r.mean),
                iv("ci", r.ci_low, r.ci_high), iv("boot", r.boot_low, r.boot_high), iv("boot_t", r.boot_t_low, r.boot_t_high),
                _NA if pd.isna(r.mixed_estimate) else
                f"{r.mixed_estimate:.2f} {iv('mixed_t', r.mixed_t_low, r.mixed_t_high)}",
                iv("rating_ci", r.rating_ci_low, r.rating_ci_high), _num(r.sd),
            ])
            key = r.condition if pd.isna(r.bitrate_kbps) else condition_family(r.condition)
            row_colors.append(QColor(colors[key]) if key in colors else None)
        self.summary_table.fill(rows, bold_col=4, colors=row_colors)

    def _fill_listeners(self, report: Report | CcrReport, progress: list[ListenerProgress]) -> None:
        screening = report.listeners.set_index("listener") if len(report.listeners) else pd.DataFrame()
        by_code = {p.code: p for p in progress}
        codes = list(by_code) + [c for c in screening.index if c not in by_code]
        rows = []
        for code in codes:
            p = by_code.get(code)
            s = screening.loc[code] if code in screening.index else None
            if s is None:
                outcome = "no ratings yet"
            elif not report.screening.applied:
                outcome = "kept (no screening)"
            elif bool(s.get("dropped", False)):
                outcome = f"dropped: {s.get('reason', '')}"
            elif bool(s.get("flagged", False)):
                outcome = f"kept, flagged: {s.get('reason', '')}"
            else:
                outcome = "kept"
            rows.append([
                str(code),
                _NA if p is None else f"{p.rated}/{p.total}" + (" ✓" if p.finished else ""),
                _NA if p is None else f"{p.training_rated}/{p.training_total}",
                _NA if p is None else str(p.sessions),
                _cell(s, "ratings"), _cell(s, "mean", "{:.2f}"), _cell(s, "n_reference_trials"),
                _cell(s, "n_below"), _cell(s, "fraction_below", "{:.0%}"), outcome,
            ])
        self.listeners_table.fill(rows, left=(0, 9))

    def _fill_clips(self, clips: pd.DataFrame | None) -> None:
        rows = [] if clips is None else [
            [str(r.clip), str(r.condition), str(int(r.n)), str(int(r.n_listeners)), _num(r.mean),
             _interval(r.ci_low, r.ci_high), _num(r.listener_sd)] for r in clips.itertuples()]
        self.clips_table.fill(rows, left=(0, 1))

    def _fill_agreement(self, report: Report | CcrReport) -> None:
        frame = report.agreement_frame()
        rows = [[str(r.listener), str(int(r.n_points)) if pd.notna(r.n_points) else _NA,
                 _num(r.r_rest, "{:+.2f}"), str(r.note or "")] for r in frame.itertuples()]
        for r in report.icc_frame().itertuples():  # the panel's ICC, below the listeners
            rows.append(["ICC(2,1)", str(int(r.n_conditions)), _num(r.icc_single, "{:+.2f}"),
                         f"{r.n_listeners} listeners x {r.n_conditions} conditions" + (f"; {r.note}" if r.note else "")])
            rows.append(["ICC(2,k)", str(int(r.n_conditions)), _num(r.icc_average, "{:+.2f}"),
                         "average of the listeners"])
        self.agreement_table.fill(rows, left=(0, 3))

    def _fill_correlations(self, correlations: pd.DataFrame) -> None:
        rows = [[str(r.metric), str(int(r.n)), _num(r.pearson_r, "{:+.2f}"), _num(r.pearson_p, "{:.3g}"),
                 _num(r.spearman_rho, "{:+.2f}"), _num(r.spearman_p, "{:.3g}"), str(r.note or "")]
                for r in correlations.itertuples()]
        self.correlations_table.fill(rows, left=(0, 6))

    def _fill_comparisons(self, comparisons: pd.DataFrame) -> None:
        rows: list[list[str]] = []
        for r in comparisons.itertuples():
            sig = _NA if pd.isna(r.p_t) else ("yes" if r.significant_t else "no")
            diff = _num(r.mean_diff, "{:+.2f}") + ("" if pd.isna(r.diff_ci_low) else
                                                   f" [{r.diff_ci_low:+.2f}, {r.diff_ci_high:+.2f}]")
            rows.append([str(r.a), str(r.b), diff, _num(r.dz, "{:+.2f}"), str(int(r.n_pairs)),
                         _num(r.p_t_holm, "{:.3g}"), sig, _num(r.p_perm_holm, "{:.3g}"),
                         _num(r.p_wilcoxon_holm, "{:.3g}"), _num(r.listeners_needed, "{:.0f}"),
                         str(getattr(r, "note", "") or "")])
        self.comparisons_table.fill(rows, left=(0, 1, 6, 10))

    def _draw(self, summary: pd.DataFrame, definition: StudyDefinition) -> None:
        """Score with its 95 % t CI over listener means against the measured bitrate (log axis), one line per codec family;
        conditions without a bitrate (the reference) as dashed horizontal lines with their CI band."""
        plot = self.plot
        item = plot.getPlotItem()
        item.setTitle(definition.title, size="10pt")
        item.setLabel("left", f"{definition.scale} (95% t CI over listener means)")
        item.setLabel("bottom", "measured bitrate (kbit/s, log scale)")
        colors = self._colors(summary)
        data = summary.dropna(subset=["mean"])
        with_rate = data.dropna(subset=["bitrate_kbps"])
        with_rate = with_rate[with_rate["bitrate_kbps"] > 0]
        self.plotted = {}
        self._labels = []  # the point labels, placed by _place_labels
        if len(with_rate):
            lo = float(np.log10(with_rate["bitrate_kbps"].min() / 1.5))
            hi = float(np.log10(with_rate["bitrate_kbps"].max() * 1.5))
        else:
            lo, hi = 0.0, 2.0
        for family, group in with_rate.groupby(with_rate["condition"].map(condition_family), sort=False):
            group = group.sort_values("bitrate_kbps")
            color = pg.mkColor(colors[family])
            x = np.log10(group["bitrate_kbps"].to_numpy(dtype=float))
            y = group["mean"].to_numpy(dtype=float)
            low = np.clip((group["mean"] - group["ci_low"]).to_numpy(dtype=float), 0.0, None)
            high = np.clip((group["ci_high"] - group["mean"]).to_numpy(dtype=float), 0.0, None)
            low, high = np.where(np.isfinite(low), low, 0.0), np.where(np.isfinite(high), high, 0.0)
            bars = pg.ErrorBarItem(x=x, y=y, bottom=low, top=high, beam=0.03, pen=pg.mkPen(color, width=1.5))
            plot.addItem(bars)
            curve = plot.plot(x, y, pen=pg.mkPen(color, width=2) if len(group) > 1 else None, symbol="o",
                              symbolSize=8, symbolBrush=color, symbolPen=pg.mkPen(color), name=family)
            names = [str(c) for c in group["condition"]]
            curve.sigPointsClicked.connect(lambda _item, points, _ev=None, names=names: self._point_clicked(names, points))
            for xi, yi, cond in zip(x, y, group["condition"]):
                label = pg.TextItem(str(cond), color=color, anchor=(0, 1))
                label.setPos(xi, yi)
                plot.addItem(label)
                self._labels.append(label)
                self.plotted[str(cond)] = (curve, bars)
        for r in data[data["bitrate_kbps"].isna() | (data["bitrate_kbps"] <= 0)].itertuples():
            color = pg.mkColor(colors.get(r.condition, PALETTE[0]))
            if not (pd.isna(r.ci_low) or pd.isna(r.ci_high)):
                band_color = QColor(color)
                band_color.setAlpha(40)
                band = pg.LinearRegionItem(values=(r.ci_low, r.ci_high), orientation="horizontal", movable=False,
                                           brush=pg.mkBrush(band_color), pen=pg.mkPen(None))
                plot.addItem(band)
            line = pg.InfiniteLine(pos=r.mean, angle=0, movable=False,
                                   pen=pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine))
            plot.addItem(line)
            # A legend entry for the dashed line (an empty curve with the same pen).
            self.legend.addItem(pg.PlotDataItem([], [], pen=pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine)),
                                line_label(str(r.condition)))
            self.plotted[str(r.condition)] = (line,)
        item.setXRange(lo, hi, padding=0)
        lows = pd.concat([data["ci_low"], data["mean"]]).dropna()
        highs = pd.concat([data["ci_high"], data["mean"]]).dropna()
        low, high = definition.score_range  # 1..5; MUSHRA 0..100; CCR -3..+3
        pad = (high - low) * 0.05  # room for the end grades' labels (pyqtgraph hides a label at the very edge)
        bottom = min(float(low), float(lows.min()) if len(lows) else float(low)) - pad
        top = max(float(high), float(highs.max()) if len(highs) else float(high)) + pad
        item.setYRange(bottom, top, padding=0)
        # Thinned so that labels never run together ("7681024 1536"), on a plot 360 px wide or more.
        ticks = [(math.log10(v), f"{v:g}") for v in kbps_ticks(10 ** lo, 10 ** hi)]
        if len(ticks) < 2:
            ticks = [(v, f"{10 ** v:.3g}") for v in np.linspace(lo, hi, 4)[1:-1]]
        item.getAxis("bottom").setTicks([ticks, []])
        if not len(with_rate):
            item.getAxis("bottom").setTicks([[], []])
            item.setLabel("bottom", "no condition with a bitrate: each drawn as a line")
        # Every grade labelled: 1..5, CCR's -3..+3 (zero and the negatives), MUSHRA's 0, 20 … 100.
        item.getAxis("left").setTicks([[(v, f"{v:g}") for v in score_ticks(definition)], []])
        self._place_labels()

    #: Where a point's label may go, in turn: (anchor x, anchor y) of pyqtgraph's TextItem.
    LABEL_ANCHORS = ((-0.05, 1.0), (-0.05, 0.0), (1.05, 1.0), (1.05, 0.0), (0.5, 1.4), (0.5, -0.4), (-0.05, 1.8),
                     (-0.05, -0.8), (1.05, 1.8), (1.05, -0.8))

    def _place_labels(self) -> None:
        """Give each point label the first anchor around its point where it stays inside the axes and overlaps
        neither a label placed before it nor the legend (run again when the plot is resized)."""
        labels = [t for t in getattr(self, "_labels", []) if t.scene() is not None]
        if not labels:
            return
        vb = self.plot.getPlotItem().getViewBox()
        box = vb.mapRectToScene(vb.boundingRect())
        placed = []
        legend = self.legend.mapRectToScene(self.legend.boundingRect()) if self.legend.isVisible() else None
        if legend is not None:
            placed.append(legend)
        for text in labels:
            text.updateTransform(force=True)  # pyqtgraph sets a label's scale at paint time: measure it as drawn
            first_inside = None
            for anchor in self.LABEL_ANCHORS:
                text.setAnchor(anchor)
                rect = text.mapRectToScene(text.boundingRect())
                if not box.contains(rect):
                    continue
                first_inside = first_inside or anchor
                if not any(rect.intersects(p) for p in placed):
                    placed.append(rect)
                    break
            else:
                text.setAnchor(first_inside or self.LABEL_ANCHORS[0])
                placed.append(text.mapRectToScene(text.boundingRect()))

    # ------------------------------------------------------------------ to Inspect
    def inspect_row(self, row: int) -> StimulusLink | None:
        """Open the Per-clip table's row ``row`` (a clip x condition cell) in Inspect."""
        clip, condition = self.clips_table.cell(row, 0), self.clips_table.cell(row, 1)
        return self.inspect_cell(clip, condition) if clip and condition else None

    def inspect_cell(self, clip: str, condition: str) -> StimulusLink | None:
        """Emit :attr:`inspect_requested` for ``(clip, condition)``; returns the link (None: a message in the view)."""
        if self.definition is None or self.report is None:
            self._message("Open a study with ratings first.", error=True)
            return None
        try:
            with _open_existing(self.database or self.definition.database_url) as store:
                link = stimulus_link(store, self.definition, self.report.ratings, clip, condition)
        except StudyError as exc:
            self._message(str(exc), error=True)
            return None
        self.inspect_requested.emit(link)
        return link

    def _point_clicked(self, conditions: list[str], points: list) -> None:
        """A plotted point: its condition's first clip in the Per-clip table (the cell Inspect then shows)."""
        if not points or self.report is None or self.report.clips is None:
            return
        index = int(points[0].index())
        condition = conditions[index] if 0 <= index < len(conditions) else None
        clips = self.report.clips
        match = clips[clips["condition"] == condition]
        if condition is not None and len(match):
            self.inspect_cell(str(match["clip"].iloc[0]), condition)

    # ------------------------------------------------------------------ exports
    def _default_folder(self) -> str:
        if self.definition is not None:
            return str(self.definition.stimuli_dir.parent / "results")
        return str(Path.cwd())

    def _folder(self, folder: str | os.PathLike[str] | None, title: str) -> Path | None:
        if folder is None:
            # The dialog proposes the study's results/ folder: it is made first, so that
            # accepting the proposal works (a folder dialog cannot pick a folder that is not there).
            default = Path(self._default_folder())
            try:
                default.mkdir(parents=True, exist_ok=True)
            except OSError:
                default = next((p for p in default.parents if p.is_dir()), Path.cwd())
            chosen = QFileDialog.getExistingDirectory(self, title, str(default))
            return Path(chosen) if chosen else None
        return Path(folder)

    def _write_files(self, shown: object | None, folder: str | os.PathLike[str] | None, title: str,
                     write: Callable[[Any, Path], _T]) -> tuple[Path, _T] | None:
        """``write(shown, folder)`` into ``folder`` (asked for when None): (the folder, what it returned), or
        None (nothing shown, cancelled, or the sentence of a :class:`StudyError` in the view)."""
        if shown is None:
            self._message("Open a study with ratings first.", error=True)
            return None
        out = self._folder(folder, title)
        if out is None:
            return None
        try:
            return out, write(shown, out)
        except StudyError as exc:
            self._message(str(exc), error=True)
            return None

    def _export_into(self, definition: StudyDefinition, out: Path) -> tuple[Path, Path]:
        with _open_existing(self.database or definition.database_url) as store:
            return export_study(store, definition, out, include_training=self.training_box.isChecked(),
                                screening=self.screening_box.isChecked())

    @staticmethod
    def _report_into(report: Report | CcrReport, out: Path) -> dict[str, Path]:
        return write_report(report, out)

    def export_csv(self, folder: str | os.PathLike[str] | None = None) -> tuple[Path, Path] | None:
        """Write ``<study>-ratings.csv`` and ``<study>-export-summary.csv`` (as ``mosapp study export``) into
        ``folder`` (asked for when None); returns both paths, or None (cancelled, or a message in the view)."""
        written = self._write_files(self.definition, folder, "Export CSV into…", self._export_into)
        if written is None:
            return None
        out, paths = written
        screening = paths[1].with_name(paths[1].name.replace("-export-summary.csv", "-export-screening.csv"))
        names = [p.name for p in (*paths, screening) if p.is_file()]
        self._message(f"Wrote {', '.join(names[:-1])} and {names[-1]} to {out}.")
        return paths

    def write_report_files(self, folder: str | os.PathLike[str] | None = None) -> dict[str, Path] | None:
        """Write the report's files (as ``mosapp study report``) into ``folder`` (asked for when None);
        returns them by kind, or None (cancelled, or a message in the view)."""
        written = self._write_files(self.report, folder, "Write the report into…", self._report_into)
        if written is None:
            return None
        out, files = written
        self._message(f"Wrote {len(files)} files ({', '.join(p.name for p in files.values())}) to {out}.")
        return files

    def shutdown(self) -> None:
        """Stop a computation still running (the app calls this on exit)."""
        if self._worker is not None and self._worker.is_running:
            self._worker.cancel()
            self._worker.wait(10.0)


__all__ = ["DEFAULT_STUDY", "ResultsView", "StimulusLink", "load_results", "stimulus_link"]
