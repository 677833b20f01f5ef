"""The spectrogram pair on screen: original | reconstructed above difference | per-band error.

::

    ┌ Original ───────────┬ Reconstructed ──────┬ dB ┐    time (s) across, frequency (Hz) up;
    │ ImageItem           │ ImageItem           │ ▓▓ │    the four panes share one frequency axis
    ├ Difference ─────────┼ Error per band ─────┼ ±dB┤    and the three images one time axis
    │ ImageItem (rec−orig)│ mean |dB diff| ◄ Hz │ ▓▓ │    (setXLink / setYLink), so zoom and pan
    └─────────────────────┴─────────────────────┴────┘    move them together.

Images are placed in physical units with ``ImageItem.setRect`` (row-major: rows are
frequency bins of the pair's :class:`~mosapp.views.spectrogram_data.Analysis`, named in the
titles). One :class:`pyqtgraph.ColorBarItem` sets the dB levels of both spectrograms (the
original's peak − 100 dB .. peak, or a floor/top the user sets with :meth:`set_level_range`);
a second, diverging one is kept symmetric about 0 dB for the difference, and can be held at
one ± range across runs (:meth:`hold_difference_range`) so two codecs compare on one scale.
In log-frequency mode the images are redrawn with rows spaced evenly in log10(Hz) (each row
shows its nearest analysis bin, so a coarse lattice's low bins stay visible as such) and the
frequency axis labels log10 coordinates in Hz.

Long tracks arrive max-pooled to a few thousand columns. Zoomed in far enough, the view asks
(:attr:`SpectrogramPanes.detail_wanted`) for the visible stretch at full resolution and draws
it over the overview (:meth:`SpectrogramPanes.set_detail`) until the view zooms out again.

Pane titles stay short (the analysis' short name; :meth:`Analysis.describe` is the view's
label), and no title's width may widen a column: a long title once pushed the colour bars out
of the window. A two-band codec lattice draws its crossover on every pane and names each
region's lattice in the band error pane.

Everything the window wants to follow (the crosshair read-out, the loop region, a click to
seek, detail) leaves this widget as a signal.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal

from mosapp.gui.spectrogram_overlays import CrosshairReadout, PlayheadAndLoop
from mosapp.views.spectrogram_data import SpectrogramPair

#: The low-frequency preset, where the thesis lattice's 86 Hz bins make the seed's codec fail.
LOW_FREQUENCY_RANGE_HZ = (0.0, 500.0)
#: Lowest frequency of the log-frequency axis.
LOG_MIN_HZ = 20.0
#: Rows of an image redrawn for the log-frequency axis.
LOG_ROWS = 1024
#: Zoomed in to at most this many lattice frames, a pooled overview asks for full-resolution detail.
DETAIL_MAX_FRAMES = 4000
#: How long the view must rest before detail is asked for (ms).
DETAIL_DELAY_MS = 200
#: The dB colour map and the difference's diverging one (blue = reconstruction quieter).
DB_COLORMAP = "inferno"
DIFFERENCE_COLORMAP = "CET-D1"

_CROSSOVER_PEN = pg.mkPen((255, 255, 255, 160), width=1, style=Qt.PenStyle.DotLine)


def set_title(plot: pg.PlotItem, text: str) -> None:
    """Set ``plot``'s title without letting its width set the column's minimum width (titles are
    kept short enough to fit; a long one is cut at the pane's edge rather than widen the layout)."""
    label = plot.titleLabel
    if not getattr(label, "_width_relaxed", False):
        measure = label.updateMin

        def relaxed() -> None:  # LabelItem.updateMin, less the minimum width
            measure()
            label.setMinimumWidth(0)
            label._sizeHint[Qt.SizeHint.MinimumSize] = (0, label._sizeHint[Qt.SizeHint.MinimumSize][1])
            label.updateGeometry()

        label.updateMin = relaxed
        label._width_relaxed = True
    plot.setTitle(text)


def hz_text(hz: float) -> str:
    """Frequency tick text: ``500``, ``2.5k``, ``20k``."""
    if abs(hz) >= 1000:
        return f"{hz / 1000:g}k"
    return f"{hz:g}"


class FrequencyAxis(pg.AxisItem):
    """A frequency axis in Hz, linear or (:attr:`log_frequency`) over log10(Hz) coordinates.

    The log mode is our own flag, not ``AxisItem.setLogMode``: the images themselves are
    resampled onto log10(Hz) rows, and the ticks are the round frequencies researchers read
    (20, 50, 100, 200, 500 Hz …) rather than powers of ten.
    """

    def __init__(self, orientation: str = "left", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.log_frequency = False

    def set_log_frequency(self, on: bool) -> None:
        self.log_frequency = bool(on)
        self.picture = None
        self.update()

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 — pyqtgraph's name
        if not self.log_frequency:
            return super().tickValues(minVal, maxVal, size)
        lo, hi = 10.0 ** minVal, 10.0 ** maxVal
        decades = maxVal - minVal
        # Labelled: 1-2-5 per decade on a wide span, 1-2-3-5 on a narrower one, every step when
        # zoomed in further; the rest are unlabelled minor ticks.
        labelled = (1, 2, 5) if decades > 1.6 else (1, 2, 3, 5) if decades > 0.8 else tuple(range(1, 10))
        major: list[float] = []
        minor: list[float] = []
        for decade in range(int(math.floor(minVal)) - 1, int(math.ceil(maxVal)) + 1):
            for m in range(1, 10):
                hz = m * 10.0 ** decade
                if lo <= hz <= hi:
                    (major if m in labelled else minor).append(math.log10(hz))
        return [(1.0, major), (0.1, minor)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 — pyqtgraph's name
        if self.log_frequency:
            if spacing < 1.0:  # unlabelled minor ticks (2, 3, 4 … × 10^k between the labelled ones)
                return [""] * len(values)
            return [hz_text(round(10.0 ** v, 6)) for v in values]
        return [hz_text(v) for v in values]


class _Image(pg.ImageItem):
    """An ImageItem that counts its paints (the benchmark waits for the pair to be drawn)."""

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self.paint_count = 0

    def paint(self, painter, *args):
        super().paint(painter, *args)
        self.paint_count += 1


class SpectrogramPanes(CrosshairReadout, PlayheadAndLoop, pg.GraphicsLayoutWidget):
    """Original, reconstructed and difference spectrograms with the per-band error curve.

    Signals:
        readout(str): the crosshair's time, frequency and dB values (both panes and their difference).
        region_changed(float, float): the loop region's (start_s, end_s) after the user moved it.
        seek_requested(float): a double click on a spectrogram asked to move the playhead there (s).
        detail_wanted(float, float): (start_s, end_s) should be drawn at full resolution
            (answer with :meth:`set_detail`).
        levels_changed(): a colour bar's levels were set (pyqtgraph signals only a drag).
    """

    readout = Signal(str)
    region_changed = Signal(float, float)
    seek_requested = Signal(float)
    detail_wanted = Signal(float, float)
    levels_changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.pair: SpectrogramPair | None = None
        #: True while only the original is shown (a file just opened, its run not finished).
        self.original_only = False
        self.log_frequency = False
        #: (floor, top) dB the user set for both spectrograms; None: the pair's own range.
        self.level_range: tuple[float, float] | None = None
        #: The difference's ± dB held across pairs; None: chosen per pair from its spread.
        self.held_difference_db: float | None = None
        #: The band error axis' top (dB) held with the difference's scale; None: fitted per pair.
        self.held_band_error_db: float | None = None
        self.last_readout = ""
        self._log_rows: np.ndarray | None = None

        self.original = self._spectrogram_plot(0, 0, "Original")
        self.reconstructed = self._spectrogram_plot(0, 1, "Reconstructed")
        self.difference = self._spectrogram_plot(1, 0, "Difference (reconstructed − original)")
        self.band_error = self.addPlot(row=1, col=1, axisItems={"left": FrequencyAxis("left")})
        set_title(self.band_error, "Mean |difference| per band")
        self.band_error.setLabel("bottom", "mean |difference| (dB)")
        self.band_error.setLabel("left", "frequency (Hz)")
        self.band_error.showGrid(x=True, y=True, alpha=0.25)
        self.band_error.setMenuEnabled(False)
        self.band_error.hideButtons()
        self.band_curve = self.band_error.plot(pen=pg.mkPen((255, 170, 0), width=2))
        self.spectrogram_plots = (self.original, self.reconstructed, self.difference)
        self.plots = (*self.spectrogram_plots, self.band_error)
        for plot in self.plots:
            for side in ("left", "bottom"):
                # Seconds and Hz as they are: an empty or very short plot would otherwise read
                # "time (s) (x0.001)".
                plot.getAxis(side).enableAutoSIPrefix(False)

        self.images = {name: _Image() for name in ("original", "reconstructed", "difference")}
        self.detail_images = {name: _Image() for name in self.images}
        self.detail: SpectrogramPair | None = None
        for plot, name in zip(self.spectrogram_plots, self.images):
            plot.addItem(self.images[name])
            self.images[name].setZValue(-10)
            plot.addItem(self.detail_images[name])
            self.detail_images[name].setZValue(-5)
            self.detail_images[name].setVisible(False)
        self._detail_timer = QTimer(self)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(DETAIL_DELAY_MS)
        self._detail_timer.timeout.connect(self._check_detail)
        self.original.getViewBox().sigXRangeChanged.connect(lambda *_: self._detail_timer.start())

        for plot in self.spectrogram_plots[1:]:
            plot.setXLink(self.original)
        for plot in self.plots[1:]:
            plot.setYLink(self.original)

        self.db_bar = pg.ColorBarItem(values=(-100.0, 0.0), colorMap=DB_COLORMAP, label="level (dB)",
                                      rounding=1, width=18)
        self.db_bar.setImageItem([self.images["original"], self.images["reconstructed"],
                                  self.detail_images["original"], self.detail_images["reconstructed"]])
        self.addItem(self.db_bar, row=0, col=2)
        self.difference_bar = pg.ColorBarItem(values=(-20.0, 20.0), colorMap=DIFFERENCE_COLORMAP,
                                              label="difference (dB)", rounding=1, width=18)
        self.difference_bar.setImageItem([self.images["difference"], self.detail_images["difference"]])
        self.difference_bar.sigLevelsChanged.connect(self._keep_difference_symmetric)
        self.addItem(self.difference_bar, row=1, col=2)

        self._add_crosshairs()
        self._add_playheads_and_regions()
        # A two-band lattice's crossover on every pane, and each region's lattice named.
        self.crossover_lines = []
        for plot in self.plots:
            line = pg.InfiniteLine(angle=0, movable=False, pen=_CROSSOVER_PEN)
            line.setVisible(False)
            plot.addItem(line, ignoreBounds=True)
            self.crossover_lines.append(line)
        # Fixed in the pane's top left corner (not in data coordinates: on a linear axis the band
        # below 1 kHz is a few pixels high).
        self.region_label = pg.TextItem("", color=(230, 230, 230), fill=pg.mkBrush(0, 0, 0, 170), anchor=(0, 0))
        self.region_label.setParentItem(self.band_error.getViewBox())
        self.region_label.setPos(4, 4)
        self.region_label.setVisible(False)
        self._add_band_crosshair()

        # The layout grows past the widget while a longer title or tick label is laid out, and
        # pyqtgraph fits it to the widget again only when the widget is resized: fit it each time.
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(0)
        self._fit_timer.timeout.connect(self.fit_layout)
        self.ci.geometryChanged.connect(self._fit_timer.start)

        self.scene().sigMouseMoved.connect(self.on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)

    def fit_layout(self) -> None:
        """Lay the panes and colour bars out in the widget's area again (they may have grown past it)."""
        if self.closed:
            return
        target = QRectF(0, 0, self.width(), self.height())
        if self.ci.geometry() != target:
            self.ci.setGeometry(target)

    def _spectrogram_plot(self, row: int, col: int, title: str) -> pg.PlotItem:
        plot = self.addPlot(row=row, col=col, axisItems={"left": FrequencyAxis("left")})
        set_title(plot, title)
        plot.setLabel("bottom", "time (s)")
        plot.setLabel("left", "frequency (Hz)")
        plot.setMenuEnabled(False)
        plot.hideButtons()  # "Whole clip" does what the autoscale button would
        return plot

    # ------------------------------------------------------------------ data

    def set_pair(self, pair: SpectrogramPair, *, keep_view: bool = False) -> None:
        """Show ``pair``: images, colour levels (peak − 100 dB .. peak unless :attr:`level_range`
        is set), the difference's scale (unless held), band error, and the full view (or, with
        ``keep_view``, the visible time and frequency range of the pair shown before)."""
        previous = self.pair
        view = (self.visible_time_range(), self.visible_frequency_range()) if keep_view and previous else None
        playhead = self.playhead_s()
        self.pair = pair
        self.original_only = False
        self._log_rows = None
        self.clear_detail()
        self.set_db_levels(self.level_range or self.auto_level_range())
        if self.held_difference_db is not None:
            r = self.held_difference_db
        else:
            spread = float(np.percentile(np.abs(pair.difference_db), 99.5)) if pair.difference_db.size else 0.0
            r = min(60.0, max(6.0, 5.0 * math.ceil(spread / 5.0)))
        self._set_difference_levels((-r, r))
        name = pair.analysis.short_name
        set_title(self.original, f"Original — {name}")
        set_title(self.reconstructed, f"Reconstructed — {name}")
        regions = pair.analysis.regions(pair.sample_rate)
        bands = (f"{pair.sample_rate / pair.analysis.low_band.channels:.1f} | "
                 f"{pair.sample_rate / pair.analysis.geometry.channels:.1f} Hz"
                 if regions and pair.analysis.low_band is not None and pair.analysis.geometry is not None
                 else f"{pair.hz_per_bin:.1f} Hz")
        set_title(self.band_error, f"Mean |difference| per band ({bands} bands)")
        self.region_label.setVisible(bool(regions))
        if regions:
            (_, crossover, low), (_, _, high) = regions
            self.region_label.setText(f"above the dotted line ({crossover:g} Hz): {high}\nbelow it: {low}")
        self._draw_images()
        self._fit_timer.start()
        self.hide_crosshairs()
        self.reset_view()
        if view is not None:
            self._apply_limits()
            (t0, t1), (f0, f1) = view
            self.show_time_range(t0, t1)
            self.show_frequency_range(max(f0, 0.0), min(f1, pair.max_hz))
        self.set_playhead(playhead if keep_view and playhead is not None else 0.0)

    # ------------------------------------------------------------------ levels

    def set_db_levels(self, levels: tuple[float, float]) -> None:
        """Draw both spectrograms from ``levels`` (floor, top) dB now (a new pair sets them again)."""
        self.db_bar.setLevels(levels)
        self.levels_changed.emit()

    def _set_difference_levels(self, levels: tuple[float, float]) -> None:
        self.difference_bar.setLevels(levels)
        self.levels_changed.emit()

    def auto_level_range(self) -> tuple[float, float]:
        """(floor, top) dB the pair is drawn with by default: the original's peak − 100 dB .. peak."""
        pair = self.pair
        if pair is None:
            return self.db_bar.levels()
        return float(math.floor(pair.floor_db)), float(math.ceil(pair.top_db))

    def set_level_range(self, floor_db: float | None, top_db: float | None = None) -> None:
        """Draw both spectrograms from ``floor_db`` (black) to ``top_db`` (white); None: the pair's own."""
        if floor_db is None or top_db is None:
            self.level_range = None
            levels = self.auto_level_range()
        else:
            if not top_db > floor_db:
                raise ValueError(f"the top level ({top_db:g} dB) must be above the floor ({floor_db:g} dB)")
            self.level_range = (float(floor_db), float(top_db))
            levels = self.level_range
        self.set_db_levels(levels)

    def hold_difference_range(self, range_db: float | None) -> None:
        """Hold the difference's colour scale at ±``range_db`` for this and every later pair (None: free)."""
        self.held_difference_db = None if range_db is None else max(1.0, float(range_db))
        # The per-band error axis is held with it (else it rescaled on every run).
        if self.held_difference_db is None:
            self.held_band_error_db = None
        elif self.held_band_error_db is None and self.pair is not None:
            self.held_band_error_db = float(self.band_error.viewRange()[0][1])
        if self.held_difference_db is not None:
            self._set_difference_levels((-self.held_difference_db, self.held_difference_db))

    def difference_range_db(self) -> float:
        """The ± dB the difference is drawn with now."""
        return float(max(abs(v) for v in self.difference_bar.levels()))

    def set_original(self, pair: SpectrogramPair, *, keep_view: bool = False) -> None:
        """Show only ``pair``'s original (its run is still going): the reconstructed and
        difference panes and the band error stay empty, the read-out names the original only.
        ``keep_view``: a newer picture of the same original (a file still being read) keeps the zoom."""
        if keep_view and self.original_only and self.pair is not None:
            self.pair = pair
            self._log_rows = None
            self.set_db_levels(self.level_range or self.auto_level_range())
            bottom, top = self._frequency_span()
            rows = self._rows_for_log() if self.log_frequency else slice(None)
            image = self.images["original"]
            image.setImage(pair.original_db[rows], autoLevels=False, levels=self.db_bar.levels())
            image.setRect(pair.left_s, bottom, pair.columns * pair.seconds_per_column, top - bottom)
            self._apply_limits()
            return
        self.set_pair(pair)
        self.original_only = True
        for name in ("reconstructed", "difference"):
            self.images[name].clear()
        self.band_curve.setData([], [])

    def clear_images(self) -> None:
        """Remove the images and the crosshair read-out (a new file is on its way).

        Not ``clear``: pyqtgraph's GraphicsLayoutWidget puts its layout's ``clear`` (which removes
        every plot) on each instance, so a method of that name here would never be called."""
        self.pair = None
        self.original_only = False
        self.clear_detail()
        for item in (*self.crossover_lines, self.region_label):
            item.setVisible(False)
        for image in self.images.values():
            image.clear()
        self.band_curve.setData([], [])
        for item in (*self.playheads, *self.regions, self.band_crosshair):
            item.setVisible(False)
        self.hide_crosshairs()
        self.last_readout = ""
        self.readout.emit("")

    def _shown(self) -> SpectrogramPair:
        """The pair on screen (what draws and measures runs only once there is one)."""
        assert self.pair is not None
        return self.pair

    def _rows_for_log(self) -> np.ndarray:
        """For each log-frequency row, the lattice bin drawn there (nearest bin)."""
        if self._log_rows is None:
            pair = self._shown()
            lo, hi = math.log10(LOG_MIN_HZ), math.log10(pair.max_hz)
            centres = 10.0 ** (lo + (np.arange(LOG_ROWS) + 0.5) * (hi - lo) / LOG_ROWS)
            self._log_rows = np.clip(np.rint(centres / pair.hz_per_bin), 0, pair.bins - 1).astype(np.intp)
        return self._log_rows

    def _frequency_span(self) -> tuple[float, float]:
        """(bottom, top) of the images in the frequency axis' coordinates."""
        pair = self._shown()
        if self.log_frequency:
            return math.log10(LOG_MIN_HZ), math.log10(pair.max_hz)
        return -0.5 * pair.hz_per_bin, pair.max_hz

    def _draw_into(self, images: dict[str, _Image], pair: SpectrogramPair) -> None:
        bottom, top = self._frequency_span()
        rows = self._rows_for_log() if self.log_frequency else slice(None)
        width = pair.columns * pair.seconds_per_column
        levels = {"original": self.db_bar.levels(), "reconstructed": self.db_bar.levels(),
                  "difference": self.difference_bar.levels()}
        for name, data in (("original", pair.original_db), ("reconstructed", pair.reconstructed_db),
                           ("difference", pair.difference_db)):
            image = images[name]
            image.setImage(data[rows], autoLevels=False, levels=levels[name])
            image.setRect(pair.left_s, bottom, width, top - bottom)

    def _draw_images(self) -> None:
        pair = self._shown()
        self._draw_into(self.images, pair)
        if self.detail is not None:
            self._draw_into(self.detail_images, self.detail)
        # Each bin is a band [f - df/2, f + df/2]: draw the curve as steps, so the coarse low
        # bins read as the blocks they are (and not as a slope between two bin centres).
        edges_lo = np.maximum(pair.frequencies_hz - 0.5 * pair.hz_per_bin, 0.0)
        edges_hi = pair.frequencies_hz + 0.5 * pair.hz_per_bin
        hz = np.stack([edges_lo, edges_hi], axis=1).reshape(-1)
        error = np.repeat(pair.band_error_db, 2)
        if self.log_frequency:
            hz = np.log10(np.maximum(hz, LOG_MIN_HZ))
        self.band_curve.setData(error, hz)
        self._place_crossover()

    def _place_crossover(self) -> None:
        """The crossover line on every pane and the two region labels either side of it (two-band only)."""
        pair = self.pair
        crossover = pair.analysis.crossover_hz if pair is not None and pair.analysis.regions() else None
        for line in self.crossover_lines:
            line.setVisible(crossover is not None)
            if crossover is not None:
                line.setPos(self.frequency_to_axis(crossover))

    # ------------------------------------------------------------------ view

    def frequency_to_axis(self, hz: float) -> float:
        """A frequency in Hz as a coordinate of the frequency axis (log10 in log mode)."""
        return math.log10(max(hz, LOG_MIN_HZ)) if self.log_frequency else hz

    def axis_to_frequency(self, y: float) -> float:
        return 10.0 ** y if self.log_frequency else y

    def set_log_frequency(self, on: bool) -> None:
        """Switch the frequency axis between linear and log (keeps the visible band)."""
        on = bool(on)
        if on == self.log_frequency:
            return
        lo_hz, hi_hz = (self.axis_to_frequency(v) for v in self.original.viewRange()[1])
        self.log_frequency = on
        for plot in self.plots:
            plot.getAxis("left").set_log_frequency(on)
        if self.pair is not None:
            self._draw_images()
            self._apply_limits()
            self.show_frequency_range(max(lo_hz, 0.0), hi_hz)

    def show_frequency_range(self, lo_hz: float, hi_hz: float) -> None:
        """Zoom the frequency axis of every pane to [lo_hz, hi_hz]."""
        if self.log_frequency:
            lo_hz = max(lo_hz, LOG_MIN_HZ)
        self.original.setYRange(self.frequency_to_axis(lo_hz), self.frequency_to_axis(hi_hz), padding=0)

    def show_low_frequencies(self) -> None:
        """The 0–500 Hz preset (from 20 Hz on the log axis)."""
        self.show_frequency_range(*LOW_FREQUENCY_RANGE_HZ)

    def show_time_range(self, start_s: float, end_s: float) -> None:
        self.original.setXRange(start_s, end_s, padding=0)

    def visible_frequency_range(self) -> tuple[float, float]:
        """(low, high) Hz currently shown."""
        lo, hi = self.original.viewRange()[1]
        return self.axis_to_frequency(lo), self.axis_to_frequency(hi)

    def visible_time_range(self) -> tuple[float, float]:
        lo, hi = self.original.viewRange()[0]
        return lo, hi

    def _apply_limits(self) -> None:
        pair = self._shown()
        bottom, top = self._frequency_span()
        right = pair.left_s + pair.columns * pair.seconds_per_column
        for plot in self.spectrogram_plots:
            plot.getViewBox().setLimits(xMin=pair.left_s, xMax=right, yMin=bottom, yMax=top)
        self.band_error.getViewBox().setLimits(yMin=bottom, yMax=top, xMin=0.0)

    def reset_view(self) -> None:
        """The whole clip and every frequency."""
        if self.pair is None:
            return
        self._apply_limits()
        pair = self.pair
        bottom, top = self._frequency_span()
        self.original.setXRange(pair.left_s, pair.left_s + pair.columns * pair.seconds_per_column, padding=0)
        self.original.setYRange(bottom, top, padding=0)
        peak = float(np.max(pair.band_error_db)) if pair.band_error_db.size else 1.0
        top = max(1.0, peak * 1.05)
        if self.held_difference_db is not None:
            if self.held_band_error_db is None:
                self.held_band_error_db = top
            top = self.held_band_error_db
        self.band_error.setXRange(0.0, top, padding=0)

    # ------------------------------------------------------------------ detail

    def set_detail(self, detail: SpectrogramPair) -> None:
        """Draw ``detail`` (a full-resolution stretch of the shown track) over the overview."""
        if self.pair is None:
            return
        self.detail = detail
        self._draw_into(self.detail_images, detail)
        for image in self.detail_images.values():
            image.setVisible(True)

    def clear_detail(self) -> None:
        self.detail = None
        for image in self.detail_images.values():
            image.setVisible(False)
            image.clear()

    def detail_span(self) -> tuple[float, float] | None:
        """(start_s, end_s) drawn at full resolution, or None."""
        if self.detail is None:
            return None
        d = self.detail
        return d.left_s, d.left_s + d.columns * d.seconds_per_column

    def _check_detail(self) -> None:
        """After zooming or panning: ask for detail, keep it, or drop it (zoomed out)."""
        pair = self.pair
        if pair is None or pair.frames_per_column == 1:
            return
        lo, hi = self.visible_time_range()
        lo, hi = max(lo, 0.0), min(hi, pair.duration_s)
        if hi <= lo:
            return
        if (hi - lo) / pair.seconds_per_frame > DETAIL_MAX_FRAMES:
            self.clear_detail()
            return
        span = self.detail_span()
        if span is not None and span[0] <= lo and hi <= span[1]:
            return
        # A margin of one view width either side, so small pans need nothing new.
        width = hi - lo
        self.detail_wanted.emit(max(0.0, lo - width), min(pair.duration_s, hi + width))

    # ------------------------------------------------------------------ colour

    def _keep_difference_symmetric(self, bar: pg.ColorBarItem) -> None:
        lo, hi = bar.levels()
        r = max(abs(lo), abs(hi), 1.0)
        if (lo, hi) != (-r, r):
            bar.setLevels((-r, r))
        if self.held_difference_db is not None:  # dragged while held: hold the new scale
            self.held_difference_db = r

    # ------------------------------------------------------------------ benchmark support

    def paint_counts(self) -> dict[str, int]:
        """How often each image has been painted (the benchmark waits for all to grow)."""
        return {name: image.paint_count for name, image in self.images.items()}


__all__ = ["DB_COLORMAP", "DETAIL_MAX_FRAMES", "DIFFERENCE_COLORMAP", "FrequencyAxis", "LOG_MIN_HZ", "LOW_FREQUENCY_RANGE_HZ",
           "SpectrogramPanes", "hz_text"]
