"""What the spectrogram panes draw over the images, as two mixins of
:class:`~mosapp.gui.spectrogram_widgets.SpectrogramPanes`:

* :class:`CrosshairReadout`: the crosshair on every pane following the pointer, and the read-out
  of time, frequency and both panes' dB there (:attr:`SpectrogramPanes.readout`); a double click
  asks to move the playhead (:attr:`SpectrogramPanes.seek_requested`).
* :class:`PlayheadAndLoop`: the playhead on every spectrogram and the loop region, one region
  per pane kept in step (:attr:`SpectrogramPanes.region_changed` once the user lets go).
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt

from mosapp.views.spectrogram_data import SpectrogramPair

# Green reads on the dark inferno images and on the mostly white difference image alike.
CROSSHAIR_PEN = pg.mkPen((60, 220, 60, 200), width=1, style=Qt.PenStyle.DashLine)
PLAYHEAD_PEN = pg.mkPen((0, 229, 255), width=2)
REGION_BRUSH = pg.mkBrush(0, 229, 255, 40)


class CrosshairReadout:
    """The crosshair and its read-out (a mixin of SpectrogramPanes, whose attributes it uses)."""

    pair: SpectrogramPair | None
    detail: SpectrogramPair | None
    original_only: bool
    last_readout: str
    plots: tuple[pg.PlotItem, ...]
    spectrogram_plots: tuple[pg.PlotItem, ...]
    band_error: pg.PlotItem
    readout: Any
    seek_requested: Any

    def axis_to_frequency(self, y: float) -> float:
        raise NotImplementedError

    def _add_crosshairs(self) -> None:
        self.crosshairs: list[tuple[pg.InfiniteLine, pg.InfiniteLine]] = []
        for plot in self.spectrogram_plots:
            v = pg.InfiniteLine(angle=90, movable=False, pen=CROSSHAIR_PEN)
            h = pg.InfiniteLine(angle=0, movable=False, pen=CROSSHAIR_PEN)
            for item in (v, h):
                item.setVisible(False)
                plot.addItem(item, ignoreBounds=True)
            self.crosshairs.append((v, h))

    def _add_band_crosshair(self) -> None:
        self.band_crosshair = pg.InfiniteLine(angle=0, movable=False, pen=CROSSHAIR_PEN)
        self.band_crosshair.setVisible(False)
        self.band_error.addItem(self.band_crosshair, ignoreBounds=True)

    def hide_crosshairs(self) -> None:
        for v, h in self.crosshairs:
            v.setVisible(False)
            h.setVisible(False)

    def values_at(self, time_s: float, hz: float) -> tuple[float, float, float] | None:
        """(original, reconstructed, difference) dB drawn at a point: the detail's where there is one."""
        if self.pair is None:
            return None
        if self.detail is not None:
            values = self.detail.values_at(time_s, hz)
            if values is not None:
                return values
        return self.pair.values_at(time_s, hz)

    def readout_at(self, time_s: float, hz: float) -> str:
        """The read-out text at (``time_s``, ``hz``): both panes' dB and their difference."""
        if self.pair is None:
            return ""
        pair = self.pair
        text = f"{time_s:.3f} s   {hz:,.0f} Hz"
        values = self.values_at(time_s, hz)
        if values is None:
            return text
        original, reconstructed, difference = values
        if self.original_only:
            return f"{text}   original {original:.1f} dB"
        b = pair.bin_at(hz)
        assert b is not None  # values_at found the point, so it lies inside the bins
        band = f"   band {b * pair.hz_per_bin:,.0f} Hz: mean |difference| {pair.band_error_db[b]:.1f} dB"
        return (f"{text}   original {original:.1f} dB   reconstructed {reconstructed:.1f} dB   "
                f"difference {difference:+.1f} dB{band}")

    def on_mouse_moved(self, scene_pos: QPointF) -> None:
        """Move the crosshair to the pointer and publish the read-out (scene coordinates)."""
        if self.pair is None:
            return
        for plot in self.plots:
            vb = plot.getViewBox()
            if vb.sceneBoundingRect().contains(scene_pos):
                point = vb.mapSceneToView(scene_pos)
                break
        else:
            return
        y = point.y()
        hz = self.axis_to_frequency(y)
        in_image = plot is not self.band_error
        for v, h in self.crosshairs:
            v.setVisible(in_image)
            if in_image:
                v.setPos(point.x())
            h.setVisible(True)
            h.setPos(y)
        self.band_crosshair.setVisible(True)
        self.band_crosshair.setPos(y)
        if in_image:
            text = self.readout_at(point.x(), hz)
        elif self.original_only:
            text = ""
        else:
            b = self.pair.bin_at(hz)
            text = "" if b is None else (f"{hz:,.0f} Hz   band {b * self.pair.hz_per_bin:,.0f} Hz: "
                                         f"mean |difference| {self.pair.band_error_db[b]:.1f} dB")
        self.last_readout = text
        self.readout.emit(text)

    def _on_mouse_clicked(self, event) -> None:
        if self.pair is None or event.button() != Qt.MouseButton.LeftButton or event.double() is False:
            return
        for plot in self.spectrogram_plots:
            vb = plot.getViewBox()
            if vb.sceneBoundingRect().contains(event.scenePos()):
                self.seek_requested.emit(max(0.0, vb.mapSceneToView(event.scenePos()).x()))
                event.accept()
                return


class PlayheadAndLoop:
    """The playhead and the loop region (a mixin of SpectrogramPanes, whose attributes it uses)."""

    pair: SpectrogramPair | None
    spectrogram_plots: tuple[pg.PlotItem, ...]
    region_changed: Any

    def visible_time_range(self) -> tuple[float, float]:
        raise NotImplementedError

    def _add_playheads_and_regions(self) -> None:
        self._syncing_region = False
        self.playheads: list[pg.InfiniteLine] = []
        self.regions: list[pg.LinearRegionItem] = []
        for plot in self.spectrogram_plots:
            head = pg.InfiniteLine(angle=90, movable=False, pen=PLAYHEAD_PEN)
            region = pg.LinearRegionItem(values=(0.0, 1.0), orientation="vertical", brush=REGION_BRUSH,
                                         swapMode="sort")
            for item in (head, region):
                item.setVisible(False)
                plot.addItem(item, ignoreBounds=True)
            region.sigRegionChanged.connect(self._sync_regions)
            region.sigRegionChangeFinished.connect(self._region_finished)
            self.playheads.append(head)
            self.regions.append(region)

    def set_playhead(self, time_s: float | None) -> None:
        """Put the playhead at ``time_s`` on every spectrogram (None hides it)."""
        for head in self.playheads:
            head.setVisible(time_s is not None and self.pair is not None)
            if time_s is not None:
                head.setPos(time_s)

    def playhead_s(self) -> float | None:
        head = self.playheads[0]
        return head.value() if head.isVisible() else None

    def show_loop_region(self, visible: bool, start_s: float | None = None, end_s: float | None = None) -> None:
        """Show or hide the loop region; a new one covers the middle third of the visible time."""
        if visible and (start_s is None or end_s is None):
            lo, hi = self.visible_time_range()
            if self.pair is not None:
                lo, hi = max(lo, 0.0), min(hi, self.pair.duration_s)
            start_s, end_s = lo + (hi - lo) / 3.0, lo + 2.0 * (hi - lo) / 3.0
        for region in self.regions:
            region.setVisible(visible)
        if visible and start_s is not None and end_s is not None:
            self.set_loop_region(start_s, end_s)

    def set_loop_region(self, start_s: float, end_s: float) -> None:
        """Move the loop region (emits :attr:`region_changed`)."""
        self.regions[0].setRegion((start_s, end_s))

    def loop_region(self) -> tuple[float, float] | None:
        """(start_s, end_s) of the visible loop region, or None."""
        region = self.regions[0]
        if not region.isVisible():
            return None
        lo, hi = region.getRegion()
        return float(lo), float(hi)

    def _sync_regions(self, source: pg.LinearRegionItem) -> None:
        if self._syncing_region:
            return
        self._syncing_region = True
        try:
            values = source.getRegion()
            for region in self.regions:
                if region is not source:
                    region.setRegion(values)
        finally:
            self._syncing_region = False

    def _region_finished(self, source: pg.LinearRegionItem) -> None:
        if self._syncing_region or not source.isVisible():
            return
        self._sync_regions(source)
        lo, hi = source.getRegion()
        if self.pair is not None:
            lo, hi = max(0.0, lo), min(self.pair.duration_s, hi)
        if hi > lo:
            self.region_changed.emit(float(lo), float(hi))


__all__ = ["CrosshairReadout", "PlayheadAndLoop"]
