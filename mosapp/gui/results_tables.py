"""The Results view's tables: read-only rows of text, with the column headers' tooltips saying
what each number is. The rows come from :mod:`mosapp.views.results`."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem


class ResultsTable(QTableWidget):
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


def summary_table() -> ResultsTable:
    """Per condition: the score and its intervals."""
    return ResultsTable(
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


def listeners_table() -> ResultsTable:
    """Listeners: progress and post-screening."""
    return ResultsTable(
        ["listener", "rated", "training", "sittings", "ratings", "mean", "ref. trials", "below",
         "fraction below", "screening"],
        {1: "rated trials / planned (training excluded)", 4: "ratings in the statistics",
         6: "ratings of the hidden reference", 7: "hidden-reference ratings below the threshold"},
    )


def correlations_table() -> ResultsTable:
    """Objective metrics against the score, per condition."""
    return ResultsTable(
        ["metric", "n", "Pearson r", "p", "Spearman ρ", "p", "note"],
        {1: "conditions with both a score and the metric"},
    )


def comparisons_table() -> ResultsTable:
    """Paired comparisons of the conditions."""
    return ResultsTable(
        ["a", "b", "mean diff [95% CI]", "dz", "pairs", "t Holm p", "significant", "sign-flip Holm p",
         "Wilcoxon Holm p", "listeners needed", "note"],
        {0: "paired tests on per-listener means, each Holm-corrected over the pairs",
         5: "paired t-test (the decision), Holm-corrected",
         7: "sign-flip permutation test (exact up to 16 listeners), Holm-corrected",
         8: "Wilcoxon signed-rank (exact, mid-ranks for ties), Holm-corrected",
         9: "listeners a paired t-test would need to find this difference (power 80 %)"},
    )


def clips_table() -> ResultsTable:
    """Per clip: each (clip, condition) cell."""
    return ResultsTable(
        ["clip", "condition", "n", "listeners", "mean", "95% CI (listeners, t)", "SD (listeners)"],
        {5: "95 % t interval over the listeners' means in this clip x condition cell",
         6: "standard deviation of the listeners' means in this cell"},
    )


def agreement_table() -> ResultsTable:
    """Agreement: each listener against the rest, and the ICCs."""
    return ResultsTable(
        ["listener", "conditions", "r with the rest", "note"],
        {2: "Pearson r of the listener's condition means with the panel mean without them"},
    )


__all__ = [
    "ResultsTable",
    "agreement_table",
    "clips_table",
    "comparisons_table",
    "correlations_table",
    "listeners_table",
    "summary_table",
]
