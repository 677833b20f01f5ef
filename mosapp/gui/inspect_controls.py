"""The Inspect view's run controls and metrics panel.

::

    RunControls:   [Open…] [Study clip…] source   codec ▾ geometry ▾ phase ▾ device ▾ ViSQOL ▾  [Run] [Cancel]
                   message (errors in one sentence)                                   stage · units · ETA ▓▓▓░░
    RatingsPanel:  a study stimulus's ratings (opened from Results)
    MetricsPanel:  ┌ Metrics ─────────┐
                   │ kbit/s, mel …    │  one row per figure of the codec table
                   │ run info         │
                   └──────────────────┘

The view connects the buttons; these panels only hold and show the widgets. What the
controls describe becomes a request in :class:`mosapp.views.inspect_controller.InspectController`.
"""

from __future__ import annotations

import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mosapp.codecs import codec_names, get_codec
from mosapp.core.config import GEOMETRIES, PipelineConfig
from mosapp.gui.workers import describe_error
from mosapp.phase import backend_names
from mosapp.views.inspect_controller import (
    DEFAULT_INSPECT_CODEC,
    FALLBACK_INSPECT_CODEC,
    METRIC_ROWS,
    VISQOL_CHOICES,
    is_spectrogram_codec,
    metric_texts,
)
from mosapp.views.jobs import AudioSource, InspectResult


def disable_item(combo: QComboBox, index: int) -> None:
    """Grey out entry ``index`` of a combo box (its model is Qt's default, a QStandardItemModel)."""
    model = combo.model()
    item = model.item(index) if isinstance(model, QStandardItemModel) else None
    if item is not None:
        item.setEnabled(False)


def set_combo(combo: QComboBox, text: str) -> bool:
    """Select the entry ``text``; False when it is missing or disabled."""
    i = combo.findText(text)
    if i < 0:
        return False
    model = combo.model()
    item = model.item(i) if isinstance(model, QStandardItemModel) else None
    if item is not None and not item.isEnabled():
        return False
    combo.setCurrentIndex(i)
    return True


class RunControls(QWidget):
    """The clip, what runs on it, Run / Cancel, and the status line with the run's progress."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        defaults = PipelineConfig()
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Open an audio file (or drop one onto the window)")
        self.study_button = QPushButton("Study clip…")
        self.study_button.setToolTip("Inspect one clip of a listening study (studies/*.toml)")
        self.source_label = QLabel("no audio — open a file or drop one here")
        self.source_label.setObjectName("inspect_source")
        self.source_label.setMinimumWidth(160)
        self.codec_combo = self._codec_combo()
        self.codec_combo.currentTextChanged.connect(self.update_codec_controls)

        self.geometry_combo = QComboBox()
        self.geometry_combo.addItems(list(GEOMETRIES))
        self.geometry_combo.setToolTip("STFT lattice of spectrogram codecs: thesis (512 channels, hop 64) "
                                       "or wide (1024, hop 128)")
        set_combo(self.geometry_combo, defaults.geometry)
        self.phase_combo = QComboBox()
        self.phase_combo.addItems(backend_names())
        self.phase_combo.setToolTip("phase reconstruction of spectrogram codecs")
        set_combo(self.phase_combo, defaults.phase)
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu", "cuda"])
        if not torch.cuda.is_available():
            i = self.device_combo.findText("cuda")
            disable_item(self.device_combo, i)
            self.device_combo.setItemData(i, "not available: torch sees no CUDA GPU on this machine",
                                          Qt.ItemDataRole.ToolTipRole)
        self.visqol_combo = QComboBox()
        self.visqol_combo.addItems(list(VISQOL_CHOICES))
        self.visqol_combo.setToolTip("ViSQOL is slow (~0.2 s per second of audio); auto runs it up to 120 s")

        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("run_button")
        self.cancel_button = QPushButton("Cancel")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setMinimumWidth(220)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("inspect_progress")
        self.update_codec_controls(self.codec_combo.currentText())
        self.message_label = QLabel("")
        self.message_label.setObjectName("inspect_message")
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._lay_out()

    def _codec_combo(self) -> QComboBox:
        """Every registered codec; one that cannot run here is greyed out, its tooltip saying why."""
        combo = QComboBox()
        combo.setObjectName("codec_combo")
        for name in codec_names():
            combo.addItem(name)
            i = combo.count() - 1
            try:
                codec = get_codec(name)
                availability = codec.availability()
                tooltip = codec.description
            except Exception as exc:  # noqa: BLE001 — one broken codec must not stop the window
                availability, tooltip = None, describe_error(exc)
            if availability is None or not availability.ok:
                disable_item(combo, i)
                tooltip = f"not available: {availability.reason if availability else tooltip}"
            combo.setItemData(i, tooltip, Qt.ItemDataRole.ToolTipRole)
        if not set_combo(combo, DEFAULT_INSPECT_CODEC):
            set_combo(combo, FALLBACK_INSPECT_CODEC)
        return combo

    def _lay_out(self) -> None:
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.study_button)
        row.addWidget(self.source_label, 1)
        for label, combo in (("codec", self.codec_combo), ("geometry", self.geometry_combo),
                             ("phase", self.phase_combo), ("device", self.device_combo),
                             ("ViSQOL", self.visqol_combo)):
            row.addWidget(QLabel(label))
            row.addWidget(combo)
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        status_row = QHBoxLayout()
        status_row.addWidget(self.message_label, 1)
        status_row.addWidget(self.progress_label)
        status_row.addWidget(self.progress)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addLayout(status_row)

    def config(self) -> PipelineConfig:
        """The geometry, phase backend and device chosen."""
        return PipelineConfig(geometry=self.geometry_combo.currentText(), phase=self.phase_combo.currentText(),
                              device=self.device_combo.currentText())

    def update_codec_controls(self, name: str) -> None:
        """Geometry and phase apply to spectrogram codecs only."""
        spectrogram = is_spectrogram_codec(name)
        for combo in (self.geometry_combo, self.phase_combo):
            combo.setEnabled(spectrogram)
        if not spectrogram:
            self.phase_combo.setToolTip(f"{name} codes the waveform: no phase to reconstruct")
        else:
            self.phase_combo.setToolTip("phase reconstruction of spectrogram codecs")

    def show_source(self, source: AudioSource) -> None:
        self.source_label.setText(source.name)
        self.source_label.setToolTip(source.path)

    def show_message(self, text: str, *, error: bool = False) -> None:
        """The status line (errors in red)."""
        self.message_label.setText(text)
        self.message_label.setStyleSheet("color: #c62828; font-weight: bold;" if error else "")
        self.message_label.setProperty("error", error)

    def set_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)
        self.progress_label.setVisible(busy)

    def start_progress(self) -> None:
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.progress_label.setText("starting")

    def show_progress(self, text: str, bar: int) -> None:
        self.progress_label.setText(text)
        self.progress.setValue(bar)


class MetricsPanel(QGroupBox):
    """The run's figures, one row per column of the codec table, and what ran."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Metrics", parent)
        form = QFormLayout(self)
        self.metric_labels: dict[str, QLabel] = {}
        for key, label, tooltip in METRIC_ROWS:
            value = QLabel("—")
            value.setObjectName(f"metric_{key}")
            value.setWordWrap(True)  # "12.34 kbit/s (45,678 bytes)" wraps in a narrow panel instead of being cut
            value.setToolTip(tooltip)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            name = QLabel(label)
            name.setToolTip(tooltip)
            form.addRow(name, value)
            self.metric_labels[key] = value
        self.run_info_label = QLabel("")
        self.run_info_label.setWordWrap(True)
        self.run_info_label.setObjectName("inspect_run_info")
        form.addRow(self.run_info_label)

    def clear(self) -> None:
        for label in self.metric_labels.values():
            label.setText("—")
        self.run_info_label.setText("")

    def show_result(self, result: InspectResult) -> None:
        for key, (text, tooltip) in metric_texts(result).items():
            self.metric_labels[key].setText(text)
            self.metric_labels[key].setToolTip(tooltip)

    def text(self) -> str:
        """The panel as ``label: value`` lines."""
        return "\n".join(f"{label}: {self.metric_labels[key].text()}" for key, label, _ in METRIC_ROWS)


class RatingsPanel(QGroupBox):
    """A study stimulus opened from Results: its ratings, one line each (hidden otherwise)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Ratings", parent)
        self.ratings_list = QListWidget()
        QVBoxLayout(self).addWidget(self.ratings_list)
        self.setVisible(False)

    def show_ratings(self, title: str, ratings: list[str]) -> None:
        self.setTitle(f"Ratings: {title}" if title else "Ratings")
        self.ratings_list.clear()
        self.ratings_list.addItems(ratings or ["no ratings"])
        self.setVisible(True)


__all__ = ["MetricsPanel", "RatingsPanel", "RunControls", "disable_item", "set_combo"]
