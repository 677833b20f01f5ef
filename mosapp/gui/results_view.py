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
written to the database from here. The loading and the tables' rows are Qt-free
(:mod:`mosapp.views.results`); the plot is :class:`~mosapp.gui.results_plot.ScoresPlot`, the
tables :mod:`mosapp.gui.results_tables`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mosapp.gui import results_tables
from mosapp.gui.results_plot import ScoresPlot
from mosapp.gui.workers import GeneratorWorker
from mosapp.study.definition import STUDIES_DIR, StudyDefinition
from mosapp.study.engine import ListenerProgress
from mosapp.study.errors import StudyError
from mosapp.study.export import export_study
from mosapp.study.report import Report, write_report
from mosapp.study.types.ccr import CcrReport
from mosapp.views.results import (
    NO_RATINGS_YET,
    StimulusLink,
    agreement_rows,
    clip_rows,
    comparison_rows,
    correlation_rows,
    listener_rows,
    load_results,
    open_existing,
    stimulus_link,
    summary_rows,
)

#: The study the view opens when given none.
DEFAULT_STUDY = STUDIES_DIR / "demo.toml"
#: Bootstrap resamples (as ``mosapp study report``).
DEFAULT_BOOTSTRAP = 2000
#: Showing the view reads the ratings again when the last read is older than this.
RELOAD_ON_SHOW_AFTER_S = 5.0

_T = TypeVar("_T")


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
        self._worker: GeneratorWorker | None = None
        self._generation = 0
        self._loaded_at: float | None = None
        self._build()
        if auto_load:
            self.reload()

    # ------------------------------------------------------------------ building
    def _build_bar(self) -> QHBoxLayout:
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
        return bar

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_bar())
        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.message_label)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_scores(), "Scores")
        self.comparisons_table = results_tables.comparisons_table()
        self.tabs.addTab(self.comparisons_table, "Paired comparisons")
        self.clips_table = results_tables.clips_table()
        self.clips_table.setToolTip("Double-click a row (or press Enter) to open that stimulus in Inspect, against "
                                    "its reference, with its ratings.")
        self.clips_table.cellDoubleClicked.connect(lambda row, _col: self.inspect_row(row))
        self.clips_table.itemActivated.connect(lambda item: self.inspect_row(item.row()))
        self.tabs.addTab(self.clips_table, "Per clip")
        self.agreement_table = results_tables.agreement_table()
        self.tabs.addTab(self.agreement_table, "Agreement")
        self.report_text = QPlainTextEdit()
        self.report_text.setReadOnly(True)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.report_text.setFont(mono)
        self.tabs.addTab(self.report_text, "Report text")
        layout.addWidget(self.tabs, 1)
        self._set_actions(False)

    def _build_scores(self) -> QSplitter:
        """The Scores tab: the per-condition, listener and correlation tables beside the plot."""
        self.summary_table = results_tables.summary_table()
        self.listeners_table = results_tables.listeners_table()
        self.correlations_table = results_tables.correlations_table()
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
        self.plot = ScoresPlot()
        self.plot.condition_clicked.connect(self._point_clicked)
        self.split = split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.plot)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.splitterMoved.connect(self._split_moved)
        self._split_user = False
        return split

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
        self.plot.clear_all()

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
        self.min_score_spin.setEnabled(definition.kind.has_screening and report.screening.spec.rule != "off")
        del blocker
        self.definition, self.report, self.progress = definition, report, progress
        self._show(report, progress)
        self._set_actions(True)
        self.loaded.emit(report)

    # ------------------------------------------------------------------ showing
    @property
    def plotted(self) -> dict[str, object]:
        """The items drawn for each condition, by its name."""
        return self.plot.plotted

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
        rows, colors = summary_rows(report.summary)
        self.summary_table.fill(rows, bold_col=4, colors=[None if c is None else QColor(c) for c in colors])
        self._fit_split()
        self.listeners_table.fill(listener_rows(report, progress), left=(0, 9))
        self.correlations_table.fill(correlation_rows(report.correlations), left=(0, 6))
        self.comparisons_table.fill(comparison_rows(report.comparisons), left=(0, 1, 6, 10))
        self.clips_table.fill(clip_rows(report.clips), left=(0, 1))
        self.agreement_table.fill(agreement_rows(report), left=(0, 3))
        self.report_text.setPlainText(report.text())
        self.plot.draw(report.summary, d)

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
            with open_existing(self.database or self.definition.database_url) as store:
                link = stimulus_link(store, self.definition, self.report.ratings, clip, condition)
        except StudyError as exc:
            self._message(str(exc), error=True)
            return None
        self.inspect_requested.emit(link)
        return link

    def _point_clicked(self, condition: str) -> None:
        """A plotted point: its condition's first clip in the Per-clip table (the cell Inspect then shows)."""
        if self.report is None or self.report.clips is None:
            return
        clips = self.report.clips
        match = clips[clips["condition"] == condition]
        if len(match):
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
        with open_existing(self.database or definition.database_url) as store:
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


__all__ = ["DEFAULT_STUDY", "ResultsView"]
