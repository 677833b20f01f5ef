"""The Results view's plot: each condition's score with its 95 % CI against the measured bitrate.

One line per codec family on a log bitrate axis; conditions without a bitrate (the hidden
reference) as dashed horizontal lines with their CI band. Each point is labelled, the labels
placed where they overlap neither each other nor the legend (:meth:`ScoresPlot.place_labels`,
run again on every resize). A click on a point names its condition
(:attr:`ScoresPlot.condition_clicked`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor

from mosapp.study.definition import StudyDefinition
from mosapp.study.report import condition_family, kbps_ticks, line_label, score_ticks
from mosapp.views.results import PALETTE, family_colors


class ScoresPlot(pg.PlotWidget):
    """Score against bitrate, one line per codec family.

    Attributes:
        legend: the families, and the conditions drawn as lines.
        plotted: the items drawn for each condition, by its name.

    Signals:
        condition_clicked(str): a plotted point was clicked: its condition.
    """

    condition_clicked = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(360)
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.legend = self.addLegend(offset=(-10, -10), labelTextSize="8pt")
        self.plotted: dict[str, object] = {}
        self._labels: list[pg.TextItem] = []  # the point labels, placed by place_labels
        box = self.getPlotItem().getViewBox()
        box.sigResized.connect(self.place_labels)
        box.sigTransformChanged.connect(self.place_labels)  # the axes' widths settle after the ticks are set

    def clear_all(self) -> None:
        """Nothing drawn, no legend."""
        self.clear()
        self.legend.clear()
        self.plotted = {}

    def _clicked(self, conditions: list[str], points: list) -> None:
        if not points:
            return
        index = int(points[0].index())
        if 0 <= index < len(conditions):
            self.condition_clicked.emit(conditions[index])

    def draw(self, summary: pd.DataFrame, definition: StudyDefinition) -> None:
        """Score with its 95 % t CI over listener means against the measured bitrate (log axis), one line per codec family;
        conditions without a bitrate (the reference) as dashed horizontal lines with their CI band."""
        plot = self
        item = plot.getPlotItem()
        item.setTitle(definition.title, size="10pt")
        item.setLabel("left", f"{definition.scale} (95% t CI over listener means)")
        item.setLabel("bottom", "measured bitrate (kbit/s, log scale)")
        colors = family_colors(summary)
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
            curve.sigPointsClicked.connect(lambda _item, points, _ev=None, names=names: self._clicked(names, points))
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
        self.place_labels()

    #: Where a point's label may go, in turn: (anchor x, anchor y) of pyqtgraph's TextItem.
    LABEL_ANCHORS = ((-0.05, 1.0), (-0.05, 0.0), (1.05, 1.0), (1.05, 0.0), (0.5, 1.4), (0.5, -0.4), (-0.05, 1.8),
                     (-0.05, -0.8), (1.05, 1.8), (1.05, -0.8))

    def place_labels(self) -> None:
        """Give each point label the first anchor around its point where it stays inside the axes and overlaps
        neither a label placed before it nor the legend (run again when the plot is resized)."""
        labels = [t for t in self._labels if t.scene() is not None]
        if not labels:
            return
        vb = self.getPlotItem().getViewBox()
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



__all__ = ["ScoresPlot"]
