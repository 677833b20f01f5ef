"""The Inspect view's "View" panel: how the spectrogram pair is drawn.

::

    ┌ View ─────────────────────────┐
    │ ☐ Low-frequency mode          │  log axis + 0–500 Hz + an analysis of ≥ 4096 samples (the view decides)
    │ ☐ Log frequency axis          │
    │ [0–500 Hz] [Whole clip]       │
    │ analysis  Hann 2048 ▾         │  or the codec lattice
    │ overlap   75 % ▾              │
    │ floor / top  -100 dB 0 dB ☑auto│
    │ difference ±  20 dB ☐hold     │
    │ [Save image…]                 │
    └───────────────────────────────┘

Beside it: :class:`SpectrogramArea` (the panes, or a hint while there is nothing to draw, and
the crosshair read-out) and :func:`side_panel` (the panels in a column that scrolls), and :func:`save_widget_png`.

The axis, the zoom presets, the levels and the difference's scale act on the panes
(:class:`~mosapp.gui.spectrogram_widgets.SpectrogramPanes`) directly; a new analysis, the
low-frequency mode and saving are the view's (:attr:`ViewPanel.analysis_changed`,
:attr:`ViewPanel.low_mode_check`, :attr:`ViewPanel.save_button`).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from mosapp.gui.spectrogram_widgets import SpectrogramPanes
from mosapp.views.inspect_controller import CODEC_LATTICE
from mosapp.views.spectrogram_data import DEFAULT_ANALYSIS, OVERLAPS, WINDOW_LENGTHS, Analysis, SpectrogramPair

#: What the spectrogram area says while there is nothing to draw.
EMPTY_HINT = ("No audio yet. Open… an audio file (or drop one onto the window), or pick a Study clip…; "
              "the codec chosen above runs on it and the original and its reconstruction are drawn here.")
#: The read-out's text before the pointer is over a spectrogram.
READOUT_HINT = "Move the pointer over a spectrogram to read time, frequency and level."


class SpectrogramArea(QWidget):
    """The spectrogram panes (or, until there is something to draw, a hint that says how to get
    there: not empty axes) above the crosshair read-out."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.panes = SpectrogramPanes(self)
        self.panes.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.readout_label = QLabel(READOUT_HINT)
        self.readout_label.setObjectName("inspect_readout")
        self.readout_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A long read-out must not set the window's minimum width (it wraps instead).
        self.readout_label.setWordWrap(True)
        self.readout_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.panes.readout.connect(self.readout_label.setText)
        self.empty_hint = QLabel(EMPTY_HINT)
        self.empty_hint.setObjectName("inspect_empty_hint")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.empty_hint, 1)
        layout.addWidget(self.panes, 1)
        layout.addWidget(self.readout_label)
        self.panes.setVisible(False)

    def show_panes(self, on: bool) -> None:
        """The panes (something to draw) or the hint."""
        self.panes.setVisible(on)
        self.empty_hint.setVisible(not on)

    def clear_readout(self) -> None:
        self.readout_label.setText(READOUT_HINT)


def side_panel(*panels: QWidget) -> QScrollArea:
    """``panels`` in a column that scrolls on a short screen instead of setting the window's minimum height."""
    side = QWidget()
    layout = QVBoxLayout(side)
    layout.setContentsMargins(0, 0, 0, 0)
    for panel in panels:
        layout.addWidget(panel)
    layout.addStretch(1)
    scroll = QScrollArea()
    scroll.setObjectName("inspect_side")
    scroll.setWidget(side)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setMinimumWidth(side.sizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
    return scroll


def save_widget_png(widget: QWidget, path: str | os.PathLike[str]) -> tuple[Path | None, str]:
    """Save ``widget`` as a PNG at ``path`` (``.png`` added where missing): the file (None on
    failure) and the sentence that says what happened."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    if not path.parent.is_dir():
        return None, f"Cannot save {path}: the folder {path.parent} does not exist."
    if not widget.grab().save(str(path), "PNG"):
        return None, f"Cannot save {path}: the image could not be written there."
    return path, f"Saved {path}."


def _spin(lo: float, hi: float, value: float, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(0)
    box.setSingleStep(5.0)
    box.setSuffix(" dB")
    box.setValue(value)
    box.setToolTip(tip)
    return box


class ViewPanel(QGroupBox):
    """The frequency axis, zoom presets, analysis, dB levels and difference scale of the panes.

    Signals:
        analysis_changed(): the analysis menu or the overlap changed.
        level_error(str): the levels typed cannot be drawn (one sentence).
    """

    analysis_changed = Signal()
    level_error = Signal(str)

    def __init__(self, panes: SpectrogramPanes, parent: QWidget | None = None) -> None:
        super().__init__("View", parent)
        self.panes = panes
        layout = QVBoxLayout(self)
        self.log_check = QCheckBox("Log frequency axis")
        self.log_check.toggled.connect(panes.set_log_frequency)
        self.low_button = QPushButton("0–500 Hz")
        self.low_button.setToolTip("Zoom to the low frequencies, where the thesis lattice's 86 Hz bins are coarse")
        self.low_button.clicked.connect(panes.show_low_frequencies)
        self.low_mode_check = QCheckBox("Low-frequency mode")
        self.low_mode_check.setToolTip("Log frequency axis and the 0–500 Hz preset together")
        self.full_button = QPushButton("Whole clip")
        self.full_button.clicked.connect(panes.reset_view)
        self.save_button = QPushButton("Save image…")
        self.save_button.setToolTip("Save this view as a PNG")
        row = QHBoxLayout()
        row.addWidget(self.low_button)
        row.addWidget(self.full_button)
        layout.addWidget(self.low_mode_check)
        layout.addWidget(self.log_check)
        layout.addLayout(row)
        layout.addLayout(self._analysis_form())
        layout.addWidget(self.save_button)

    def _analysis_form(self) -> QFormLayout:
        """Analysis (window, overlap), level range and the difference's scale."""
        form = QFormLayout()
        self.window_combo = QComboBox()
        self.window_combo.setObjectName("analysis_window")
        self.window_combo.setToolTip("The STFT the spectrograms are drawn from (both panes alike): a Hann window of "
                                     "this many samples, or the codec's own lattice (what the codec saw)")
        self.window_combo.addItem(CODEC_LATTICE, 0)
        for n in WINDOW_LENGTHS:
            self.window_combo.addItem(f"Hann {n}", n)
        self.overlap_combo = QComboBox()
        self.overlap_combo.setObjectName("analysis_overlap")
        self.overlap_combo.setToolTip("Overlap of successive windows (hop = window × (1 − overlap))")
        for o in OVERLAPS:
            self.overlap_combo.addItem(f"{100 * o:g} %", o)
        self.analysis_label = QLabel("")
        self.analysis_label.setObjectName("analysis_info")
        self.analysis_label.setWordWrap(True)
        self.show_analysis(DEFAULT_ANALYSIS)
        self.window_combo.currentIndexChanged.connect(lambda _i: self.analysis_changed.emit())
        self.overlap_combo.currentIndexChanged.connect(lambda _i: self.analysis_changed.emit())

        self.floor_spin = _spin(-300.0, 200.0, -100.0, "level drawn black (both spectrograms)")
        self.top_spin = _spin(-300.0, 200.0, 0.0, "level drawn white (both spectrograms)")
        self.auto_levels_check = QCheckBox("auto")
        self.auto_levels_check.setToolTip("the original's peak − 100 dB .. its peak, for every pair")
        self.auto_levels_check.setChecked(True)
        levels = QHBoxLayout()
        levels.addWidget(self.floor_spin)
        levels.addWidget(self.top_spin)
        levels.addWidget(self.auto_levels_check)
        self.floor_spin.valueChanged.connect(lambda _v: self._on_level_spins())
        self.top_spin.valueChanged.connect(lambda _v: self._on_level_spins())
        self.auto_levels_check.toggled.connect(self._on_auto_levels)

        self.difference_spin = _spin(1.0, 120.0, 20.0, "the difference's colour scale: ± this many dB")
        self.hold_difference_check = QCheckBox("hold")
        self.hold_difference_check.setToolTip("keep this ± scale for every later run, so two codecs compare on one scale")
        difference = QHBoxLayout()
        difference.addWidget(self.difference_spin)
        difference.addWidget(self.hold_difference_check)
        self.difference_spin.valueChanged.connect(self._on_difference_spin)
        self.hold_difference_check.toggled.connect(self._on_hold_difference)
        self.panes.difference_bar.sigLevelsChanged.connect(lambda _bar: self.sync_levels())
        self.panes.db_bar.sigLevelsChanged.connect(lambda _bar: self.sync_levels())
        # Set by a new file's original, a growing preview, a run or a new analysis: shown at once.
        self.panes.levels_changed.connect(self.sync_levels)

        form.addRow("analysis", self.window_combo)
        form.addRow("overlap", self.overlap_combo)
        form.addRow(self.analysis_label)
        form.addRow("floor / top", levels)
        form.addRow("difference ±", difference)
        return form

    # ------------------------------------------------------------------ analysis

    def stft_choice(self) -> Analysis | None:
        """The Hann STFT chosen, or None for the codec lattice."""
        n = self.window_combo.currentData()
        if not n:
            return None
        return Analysis.stft(int(n), overlap=float(self.overlap_combo.currentData()))

    def show_analysis(self, analysis: Analysis) -> None:
        """Set the menus to ``analysis`` (without announcing it)."""
        with QSignalBlocker(self.window_combo), QSignalBlocker(self.overlap_combo):
            if analysis.is_lattice:
                self.window_combo.setCurrentIndex(0)
            else:
                i = self.window_combo.findData(analysis.window_length)
                if i < 0:
                    raise ValueError(f"the view offers windows of {', '.join(map(str, WINDOW_LENGTHS))} samples")
                self.window_combo.setCurrentIndex(i)
                j = min(range(len(OVERLAPS)), key=lambda k: abs(OVERLAPS[k] - analysis.overlap))
                self.overlap_combo.setCurrentIndex(j)
            self.overlap_combo.setEnabled(not analysis.is_lattice)

    def enable_overlap(self) -> None:
        """The overlap applies to a Hann STFT only."""
        self.overlap_combo.setEnabled(bool(self.window_combo.currentData()))

    def show_pair(self, pair: SpectrogramPair | None) -> None:
        """Name the analysis of the pair on screen, and show its levels."""
        if pair is not None:
            self.analysis_label.setText(pair.analysis.resolution(pair.sample_rate))
            self.analysis_label.setToolTip(pair.analysis.describe(pair.sample_rate))
        self.sync_levels()

    def show_analysing(self, analysis: Analysis) -> None:
        self.analysis_label.setText(f"analysing… {analysis.resolution()}")

    # ------------------------------------------------------------------ levels

    def enable_level_spins(self) -> None:
        """Automatic floor / top describe the picture on screen: with none (a file just opened, its
        original not drawn yet) they are greyed out rather than show the previous file's levels."""
        on = self.panes.pair is not None or not self.auto_levels_check.isChecked()
        for spin in (self.floor_spin, self.top_spin):
            spin.setEnabled(on)

    def sync_levels(self) -> None:
        """Show the colour bars' levels in the spin boxes (without feeding them back)."""
        floor, top = self.panes.db_bar.levels()
        with QSignalBlocker(self.floor_spin), QSignalBlocker(self.top_spin), QSignalBlocker(self.difference_spin):
            self.floor_spin.setValue(floor)
            self.top_spin.setValue(top)
            self.difference_spin.setValue(self.panes.difference_range_db())

    def set_level_range(self, floor_db: float | None, top_db: float | None = None) -> None:
        """Draw both spectrograms from ``floor_db`` to ``top_db`` dB for every pair; None: auto (peak − 100 .. peak)."""
        auto = floor_db is None or top_db is None
        with QSignalBlocker(self.auto_levels_check):
            self.auto_levels_check.setChecked(auto)
        self.panes.set_level_range(None if auto else floor_db, None if auto else top_db)
        self.sync_levels()
        self.enable_level_spins()

    def _on_level_spins(self) -> None:
        floor, top = self.floor_spin.value(), self.top_spin.value()
        if top <= floor:
            self.level_error.emit(f"The top level ({top:g} dB) must be above the floor ({floor:g} dB).")
            return
        self.set_level_range(floor, top)

    def _on_auto_levels(self, on: bool) -> None:
        self.set_level_range(None) if on else self._on_level_spins()
        self.enable_level_spins()

    def hold_difference_range(self, range_db: float | None) -> None:
        """Hold the difference's scale at ±``range_db`` dB across runs (None: per pair)."""
        with QSignalBlocker(self.hold_difference_check):
            self.hold_difference_check.setChecked(range_db is not None)
        self.panes.hold_difference_range(range_db)
        self.sync_levels()

    def _on_difference_spin(self, value: float) -> None:
        self.panes.difference_bar.setLevels((-value, value))
        if self.hold_difference_check.isChecked():
            self.panes.hold_difference_range(value)

    def _on_hold_difference(self, on: bool) -> None:
        self.hold_difference_range(self.panes.difference_range_db() if on else None)


__all__ = ["EMPTY_HINT", "READOUT_HINT", "SpectrogramArea", "ViewPanel", "save_widget_png", "side_panel"]
