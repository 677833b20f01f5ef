"""The Evaluate tab: an output folder of ``mosapp evaluate`` as a rate–distortion plot and its table.

Open a folder (the ``--out`` of ``mosapp evaluate``; ``mosapp gui DIR`` opens it here): the plot
shows one metric against the measured kbps, a line per codec family with the 95 % intervals as
error bars, and codecs without a bitrate of their own (``pghi-only``, anchors) as dashed
reference lines; the table lists every (excerpt, codec) pair. Double-clicking (or Enter on) a
row, or clicking a plotted codec, asks the window to open that excerpt in Inspect with that codec
(:attr:`EvaluationView.inspect_requested`, an :class:`ExcerptLink`). Reading the folder is
:func:`mosapp.evaluation.results.read_evaluation` (Qt-free).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mosapp.core.errors import MosappError
from mosapp.core.metrics import METRICS
from mosapp.evaluation.results import HEADERS, EvaluationFolder, read_evaluation

#: Columns of the table before the metrics.
FIRST_COLUMNS = ("clip", "start_s", "seconds", "codec", "file_kbps")


@dataclass(frozen=True)
class ExcerptLink:
    """An excerpt and the codec to run on it in Inspect."""

    path: str
    start_s: float
    seconds: float
    codec: str

    @property
    def title(self) -> str:
        return f"{Path(self.path).name} {self.start_s:g}–{self.start_s + self.seconds:g} s"


class _NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number."""

    def __init__(self, value: float, text: str) -> None:
        super().__init__(text)
        self.value = value

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, _NumberItem):
            a, b = self.value, other.value
            return (math.isnan(b) and not math.isnan(a)) or (not math.isnan(a) and a < b)
        return super().__lt__(other)


def _text(value: float, metric: str) -> str:
    if math.isnan(value):
        return "—"
    digits = {"file_kbps": 2, "start_s": 3, "seconds": 2, "si_sdr_db": 1, "visqol": 2}.get(metric, 3)
    return f"{value:.{digits}f}"


class EvaluationView(QWidget):
    """Rate–distortion plot and per-pair table of an evaluation folder."""

    #: An :class:`ExcerptLink` to open in Inspect.
    inspect_requested = Signal(object)
    #: A status line for the window.
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.evaluation: EvaluationFolder | None = None
        self._last_dir = str(Path.cwd())
        self.open_button = QPushButton("Open evaluation folder…")
        self.open_button.setObjectName("open_evaluation")
        self.open_button.clicked.connect(self.open_dialog)
        self.folder_label = QLabel("No evaluation open: run `mosapp evaluate … --out DIR`, then open DIR here.")
        self.folder_label.setObjectName("evaluation_folder")
        self.folder_label.setWordWrap(True)
        self.metric_combo = QComboBox()
        self.metric_combo.setObjectName("metric_combo")
        self.metric_combo.setToolTip("the metric the plot shows against the measured bitrate")
        self.metric_combo.currentIndexChanged.connect(lambda _i: self.draw_plot())
        self.metric_label = QLabel("Metric:")
        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.metric_label)
        top.addWidget(self.metric_combo)
        top.addWidget(self.folder_label, 1)

        self.plot = pg.PlotWidget()
        self.plot.setObjectName("rd_plot")
        self.plot.setBackground("w")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("bottom", "measured bitrate (kbit/s, whole .sgc file)")
        self.plot.addLegend(offset=(-10, 10))
        self.plot.getPlotItem().getViewBox().setDefaultPadding(0.08)  # room for the codecs' names at the edges
        self.table = QTableWidget(0, 0)
        self.table.setObjectName("pairs_table")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setSortingEnabled(True)
        self.table.setToolTip("Double-click (or Enter on) a row: that excerpt in Inspect with that codec")
        self.table.cellActivated.connect(lambda row, _col: self.request_row(row))
        self.table.cellDoubleClicked.connect(lambda row, _col: self.request_row(row))
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.plot)
        self.splitter.addWidget(self.table)
        self.splitter.setSizes([380, 320])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.splitter, 1)
        self._points: list[tuple[pg.ScatterPlotItem, list[str]]] = []

    # ------------------------------------------------------------------ opening

    def open_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open an evaluation folder (mosapp evaluate --out)",
                                                  self._last_dir)
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str | os.PathLike[str]) -> bool:
        """Show the evaluation in ``folder``; False (and a message) when it is not one."""
        try:
            evaluation = read_evaluation(Path(folder))
        except MosappError as exc:
            self.folder_label.setText(str(exc))
            self.message.emit(str(exc))
            return False
        self.evaluation = evaluation
        self._last_dir = str(Path(folder).parent)
        codecs = list(evaluation.summary)
        failed = len(evaluation.failures)
        self.folder_label.setText(f"{folder}: {len(evaluation.rows)} pairs, {len(codecs)} codec(s)"
                                  + (f", {failed} failed (failures.csv)" if failed else ""))
        self.folder_label.setToolTip(str(folder))
        current = self.metric_combo.currentData()
        self.metric_combo.blockSignals(True)
        self.metric_combo.clear()
        for m in evaluation.metrics:
            self.metric_combo.addItem(HEADERS.get(m, m), m)
        index = max(0, self.metric_combo.findData(current if current in evaluation.metrics else "mel_distance"))
        self.metric_combo.setCurrentIndex(index)
        self.metric_combo.blockSignals(False)
        self.fill_table()
        self.draw_plot()
        self.message.emit(f"Evaluation {folder}: double-click a row to inspect that excerpt with its codec.")
        return True

    def fill_table(self) -> None:
        ev = self.evaluation
        if ev is None:
            return
        columns = [*FIRST_COLUMNS, *ev.metrics]
        self.table.setSortingEnabled(False)
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels([HEADERS.get(c, c) for c in columns])
        self.table.setRowCount(len(ev.rows))
        for i, row in enumerate(ev.rows):
            for j, c in enumerate(columns):
                if c in ("clip", "codec"):
                    item = QTableWidgetItem(Path(row[c]).name if c == "clip" else row[c])
                    if c == "clip":
                        item.setToolTip(row[c])
                else:
                    item = _NumberItem(row.get(c, math.nan), _text(row.get(c, math.nan), c))
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setData(Qt.ItemDataRole.UserRole, i)
                self.table.setItem(i, j, item)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()

    # ------------------------------------------------------------------ plot

    def current_metric(self) -> str | None:
        return self.metric_combo.currentData()

    def draw_plot(self) -> None:
        ev, metric = self.evaluation, self.current_metric()
        self.plot.clear()
        self._points = []
        if ev is None or metric is None:
            return
        info = METRICS.get(metric)
        label = info.label if info else metric
        if info is not None:
            label += (f" ({info.unit})" if info.unit else "") + (" ↑ better" if info.higher_is_better else " ↓ better")
        self.plot.setLabel("left", label)
        families: dict[str, list[str]] = {}
        for codec in ev.summary:
            families.setdefault(ev.families.get(codec, codec), []).append(codec)
        colours = [pg.intColor(i, hues=max(3, len(families) + 2), values=1, maxValue=200) for i in range(len(families) + 2)]
        ref_i = 0
        for fi, (family, codecs) in enumerate(families.items()):
            colour = colours[fi]
            pts = [(ev.summary[c]["file_kbps"].mean, ev.summary[c][metric], c) for c in codecs
                   if c not in ev.no_bitrate and metric in ev.summary[c]
                   and math.isfinite(ev.summary[c]["file_kbps"].mean) and math.isfinite(ev.summary[c][metric].mean)]
            pts.sort(key=lambda p: p[0])
            if pts:
                xs = [p[0] for p in pts]
                ys = [p[1].mean for p in pts]
                self.plot.plot(xs, ys, pen=pg.mkPen(colour, width=2), name=family)
                lows = [p[1].mean - p[1].low if math.isfinite(p[1].low) else 0.0 for p in pts]
                highs = [p[1].high - p[1].mean if math.isfinite(p[1].high) else 0.0 for p in pts]
                import numpy as np  # noqa: PLC0415 — pyqtgraph's error bars want arrays

                self.plot.addItem(pg.ErrorBarItem(x=np.asarray(xs), y=np.asarray(ys), bottom=np.asarray(lows),
                                                  top=np.asarray(highs), beam=0.3, pen=pg.mkPen(colour, width=1.2)))
                scatter = pg.ScatterPlotItem(xs, ys, size=9, brush=pg.mkBrush(colour), data=[p[2] for p in pts])
                scatter.sigClicked.connect(self._on_point_clicked)
                self.plot.addItem(scatter)
                self._points.append((scatter, [p[2] for p in pts]))
                for x, y, (_, _, name) in zip(xs, ys, pts):
                    text = pg.TextItem(name, color=colour, anchor=(0, 1))
                    text.setPos(x, y)
                    self.plot.addItem(text)
            for c in codecs:
                s = ev.summary[c].get(metric)
                if c in ev.no_bitrate and s is not None and math.isfinite(s.mean):
                    line = pg.InfiniteLine(pos=s.mean, angle=0, pen=pg.mkPen(colours[-1 - (ref_i % 2)], width=1.5,
                                                                             style=Qt.PenStyle.DashLine),
                                           label=f"{c} (no bitrate of its own): {s.mean:.3g}",
                                           # staggered along the line, so two lines close together
                                           # keep their labels apart
                                           labelOpts={"position": 0.02 + 0.3 * (ref_i % 3), "color": (60, 60, 60),
                                                      "anchors": [(0, 1), (0, 1)]})
                    self.plot.addItem(line)
                    ref_i += 1

    def _on_point_clicked(self, scatter: pg.ScatterPlotItem, points: list, *_: object) -> None:
        """A plotted codec: its first excerpt in the table's order, in Inspect."""
        if not points or self.evaluation is None:
            return
        codec = points[0].data()
        for i, row in enumerate(self.evaluation.rows):
            if row["codec"] == codec:
                self.request(i)
                return

    # ------------------------------------------------------------------ to Inspect

    def request_row(self, table_row: int) -> None:
        item = self.table.item(table_row, 0)
        if item is not None:
            self.request(int(item.data(Qt.ItemDataRole.UserRole)))

    def link(self, index: int) -> ExcerptLink:
        """The excerpt and codec of ``clips.csv``'s row ``index``."""
        assert self.evaluation is not None
        row = self.evaluation.rows[index]
        return ExcerptLink(row["clip"], float(row["start_s"]), float(row["seconds"]), row["codec"])

    def request(self, index: int) -> None:
        link = self.link(index)
        if not Path(link.path).is_file():
            self.message.emit(f"{link.path} is not on this machine any more; it cannot be inspected.")
            return
        self.inspect_requested.emit(link)


__all__ = ["EvaluationView", "ExcerptLink"]
