"""The Inspect view: one clip through one codec, seen, measured and heard.

::

    [Open…] [Study clip…] source   codec ▾ geometry ▾ phase ▾ device ▾ ViSQOL ▾  [Run] [Cancel] ▓▓▓░░ progress
    message (errors in one sentence)
    ┌ SpectrogramPanes ───────────────────────────────┐ ┌ Metrics ────────┐
    │ original | reconstructed                        │ │ kbit/s, mel …   │
    │ difference | per-band error                     │ ├ View ───────────┤
    └─────────────────────────────────────────────────┘ │ log / 0–500 Hz  │
                                                        │ analysis, levels│
    crosshair read-out                                  ├ Listen ─────────┤
                                                        │ play, A/B, loop │

The run itself is :func:`mosapp.views.jobs.inspect` on a :class:`GeneratorWorker`; the view
only starts it, follows its progress and shows what it returns. Playback uses
:class:`mosapp.playback.Player` with the original and the reconstruction preloaded, so the
switch between them keeps the position.

The spectrograms come from an analysis chosen in the View panel, independent of the codec:
a Hann STFT (window 1024 … 16384, overlap 50 … 93.75 %) or the codec lattice. Changing it
re-analyses the shown pair in the background and keeps the zoom; the low-frequency mode
switches to :data:`LOW_FREQUENCY_ANALYSIS` (8192 samples) when the analysis is coarser than
4096 samples, and back when it is turned off.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QStandardItemModel
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from mosapp import playback
from mosapp.codecs import codec_names, get_codec
from mosapp.codecs.spectrogram import SpectrogramCodec
from mosapp.codecs.twoband import TwoBandCodec
from mosapp.core.config import GEOMETRIES, PipelineConfig
from mosapp.core.job import STEP, Progress
from mosapp.core.metrics import METRICS
from mosapp.evaluation.evaluate import METRIC_NAMES
from mosapp.gui.spectrogram_widgets import SpectrogramPanes
from mosapp.gui.workers import GeneratorWorker, describe_error
from mosapp.phase import backend_names
from mosapp.study.definition import STUDIES_DIR, load_study
from mosapp.views.jobs import (
    STAGE_WEIGHTS,
    AudioSource,
    InspectRequest,
    InspectResult,
    OriginalPreview,
    inspect,
    job_fraction,
    preview,
    stage_text,
)
from mosapp.views.spectrogram_data import (
    DEFAULT_ANALYSIS,
    LOW_FREQUENCY_ANALYSIS,
    MAX_COLUMNS,
    OVERLAPS,
    WINDOW_LENGTHS,
    Analysis,
    SpectrogramPair,
    analyse_excerpt_steps,
    analyse_pair,
    analyse_pair_steps,
    overview_columns,
)

#: What the Inspect view runs first: the README's default codec, or the seed's upper bound
#: (no weights needed) where that one cannot run.
DEFAULT_INSPECT_CODEC = "sgc-12"
FALLBACK_INSPECT_CODEC = "pghi-only"
#: An ETA is shown once a step has run this long (its rate is known by then).
ETA_AFTER_S = 1.0
#: Audio files the open dialog offers.
AUDIO_FILTER = "Audio files (*.wav *.flac *.ogg *.oga *.mp3 *.aif *.aiff);;All files (*)"
#: Playhead refresh interval.
PLAYHEAD_INTERVAL_MS = 33
#: The two stimuli the player holds.
ORIGINAL, RECONSTRUCTION = 0, 1
#: What the spectrogram area says while there is nothing to draw.
EMPTY_HINT = ("No audio yet. Open… an audio file (or drop one onto the window), or pick a Study clip…; "
              "the codec chosen above runs on it and the original and its reconstruction are drawn here.")
#: The analysis menu's entry for the codec's own lattice.
CODEC_LATTICE = "codec lattice"
#: Shortest window the low-frequency mode keeps (a shorter one is switched to LOW_FREQUENCY_ANALYSIS).
LOW_FREQUENCY_MIN_WINDOW = 4096

#: The metrics panel's words for each figure of the codec table (:data:`mosapp.evaluation.evaluate.METRIC_NAMES`,
#: names of the registry :data:`mosapp.core.metrics.METRICS`): (label, tooltip). The two words that name two
#: quantities (bitrate, consistency) take the registry's label, which says which one.
_METRIC_TEXT = {
    "file_kbps": (METRICS["file_kbps"].label, "8 × .sgc file bytes / seconds / 1000 (header included)"),
    "mel_distance": ("mel distance", "DAC multi-scale mel distance; lower is better"),
    "spectral_convergence_db": ("spectral convergence", "thesis-lattice STFT magnitude; lower is better"),
    "si_sdr_db": ("SI-SDR", "scale-invariant SDR; phase-sensitive, so low for every rebuilt phase"),
    "visqol": ("ViSQOL MOS-LQO", "ViSQOL v3 audio mode at 48 kHz, 1–5; higher is better"),
    "decoded_consistency": (METRICS["decoded_consistency"].label, "of the decoded audio's log spectrogram; higher is more consistent"),
    "low_band_distance_db": (
        "low band 20–1000 Hz: distance",
        "mean |dB difference| over 20–1000 Hz of a 4096-point Hann STFT, floored at the original's peak − 80 dB; "
        "lower is better"),
    "low_band_correlation": (
        "low band: correlation",
        "per-frame Pearson correlation of the two dB spectra over 20–1000 Hz (do the harmonics survive?); 1 is best"),
    "high_band_distance_db": ("high band > 1 kHz: distance", "the same distance above 1 kHz; lower is better"),
    "high_band_correlation": ("high band: correlation", "the same correlation above 1 kHz; 1 is best"),
}
#: Metrics panel rows: (registry name, label, tooltip), in the codec table's order.
METRIC_ROWS = tuple((name, *_METRIC_TEXT[name]) for name in METRIC_NAMES)


def _mono(frames: np.ndarray) -> np.ndarray:
    """(n, channels) samples as one float32 channel (the mean of the channels)."""
    return np.ascontiguousarray(frames.mean(axis=1), dtype=np.float32)


def _format_metric(key: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if key == "file_kbps":
        return f"{value:.2f} kbit/s"
    if key.endswith("_db"):
        return f"{value:.2f} dB"
    return f"{value:.3f}"


def _eta_text(seconds: float) -> str:
    """``about 40 s left`` / ``about 3 min 10 s left``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"about {seconds} s left"
    return f"about {seconds // 60} min {seconds % 60:02d} s left"


def is_spectrogram_codec(name: str) -> bool:
    """Whether the codec codes the spectrogram image (so geometry and phase apply to it)."""
    try:
        return isinstance(get_codec(name), SpectrogramCodec)
    except Exception:  # noqa: BLE001 — an unknown name is refused when the run starts
        return True


def is_two_band_codec(name: str) -> bool:
    """Whether the codec codes the two-band representation (its lattice is two lattices joined at the crossover)."""
    try:
        return isinstance(get_codec(name), TwoBandCodec)
    except Exception:  # noqa: BLE001 — an unknown name is refused when the run starts
        return False


def _disable(combo: QComboBox, index: int) -> None:
    """Grey out entry ``index`` of a combo box (its model is Qt's default, a QStandardItemModel)."""
    model = combo.model()
    item = model.item(index) if isinstance(model, QStandardItemModel) else None
    if item is not None:
        item.setEnabled(False)


def _set_combo(combo: QComboBox, text: str) -> bool:
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


class InspectView(QWidget):
    """Open a clip, run a codec on it in the background, and compare original and reconstruction.

    Signals:
        result_ready(object): an :class:`InspectResult` is shown.
        run_failed(str): a run ended with this message.
        message(str): a status line for the main window.
        busy_changed(bool): a run started (True) or ended.
    """

    result_ready = Signal(object)
    run_failed = Signal(str)
    message = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inspect_view")
        self.source: AudioSource | None = None
        self.result: InspectResult | None = None
        self.player: playback.Player | None = None
        self._worker: GeneratorWorker | None = None
        self._detail_worker: GeneratorWorker | None = None
        self._workers: set[GeneratorWorker] = set()
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None  # what the spectrograms show
        self._shown_source: AudioSource | None = None  # whose spectrograms are on screen
        self._original_source: AudioSource | None = None  # whose original alone is on screen
        self.original_complete = False
        self._preview_worker: GeneratorWorker | None = None
        self._stage: Progress | None = None  # the job's stage
        self._step: Progress | None = None  # a library call's units inside it (stage STEP)
        self._rate_key: tuple | None = None  # (stage, unit) whose rate the ETA uses
        self._rate_start: tuple[float, int] = (0.0, 0)
        self._bar = 0
        self.cancel_requested_at: float | None = None
        self._analysis_worker: GeneratorWorker | None = None
        self._analysis_before_low: Analysis | None = None  # restored when the low-frequency mode ends
        self._last_dir = os.getcwd()
        self._original_audio: np.ndarray | None = None  # the original on screen, read to its end

        self._build_controls()
        self.panes = SpectrogramPanes(self)
        self.panes.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.readout_label = QLabel("Move the pointer over a spectrogram to read time, frequency and level.")
        self.readout_label.setObjectName("inspect_readout")
        self.readout_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A long read-out must not set the window's minimum width (it wraps instead).
        self.readout_label.setWordWrap(True)
        self.readout_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.panes.readout.connect(self.readout_label.setText)
        self.panes.region_changed.connect(self._on_region_changed)
        self.panes.seek_requested.connect(self.seek)
        self.panes.detail_wanted.connect(self._compute_detail)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        # Until there is something to draw, a hint takes the panes' place (not empty axes).
        self.empty_hint = QLabel(EMPTY_HINT)
        self.empty_hint.setObjectName("inspect_empty_hint")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        left_layout.addWidget(self.empty_hint, 1)
        left_layout.addWidget(self.panes, 1)
        left_layout.addWidget(self.readout_label)
        self.panes.setVisible(False)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self._build_metrics())
        side_layout.addWidget(self._build_view_controls())
        side_layout.addWidget(self._build_playback())
        # A study stimulus opened from Results lists its ratings here (show_stimulus).
        self.stimulus_files: tuple[Path, Path] | None = None
        self.ratings_box = QGroupBox("Ratings")
        self.ratings_list = QListWidget()
        QVBoxLayout(self.ratings_box).addWidget(self.ratings_list)
        self.ratings_box.setVisible(False)
        side_layout.addWidget(self.ratings_box)
        side_layout.addStretch(1)
        # The side panel scrolls on a short screen instead of setting the window's minimum height.
        side_scroll = QScrollArea()
        side_scroll.setObjectName("inspect_side")
        side_scroll.setWidget(side)
        side_scroll.setWidgetResizable(True)
        side_scroll.setFrameShape(QFrame.Shape.NoFrame)
        side_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        side_scroll.setMinimumWidth(side.sizeHint().width() + side_scroll.verticalScrollBar().sizeHint().width())
        self.side_scroll = side_scroll
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(side_scroll)
        splitter.setCollapsible(0, False)
        splitter.setCollapsible(1, False)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([1000, 280])

        layout = QVBoxLayout(self)
        layout.addLayout(self._controls_row)
        status_row = QHBoxLayout()
        status_row.addWidget(self.message_label, 1)
        status_row.addWidget(self.progress_label)
        status_row.addWidget(self.progress)
        layout.addLayout(status_row)
        layout.addWidget(splitter, 1)

        self._playhead_timer = QTimer(self)
        self._playhead_timer.setInterval(PLAYHEAD_INTERVAL_MS)
        self._playhead_timer.timeout.connect(self._update_playhead)
        for key, slot in (("Space", self.toggle_play), ("1", lambda: self.select_stimulus(ORIGINAL)),
                          ("2", lambda: self.select_stimulus(RECONSTRUCTION))):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
        self._set_busy(False)
        self._update_playback_controls()
        self._enable_level_spins()

    # ------------------------------------------------------------------ building

    def _build_controls(self) -> None:
        defaults = PipelineConfig()
        row = QHBoxLayout()
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Open an audio file (or drop one onto the window)")
        self.open_button.clicked.connect(self.open_dialog)
        self.study_button = QPushButton("Study clip…")
        self.study_button.setToolTip("Inspect one clip of a listening study (studies/*.toml)")
        self.study_button.clicked.connect(self.study_clip_dialog)
        self.source_label = QLabel("no audio — open a file or drop one here")
        self.source_label.setObjectName("inspect_source")
        self.source_label.setMinimumWidth(160)

        self.codec_combo = QComboBox()
        self.codec_combo.setObjectName("codec_combo")
        for name in codec_names():
            self.codec_combo.addItem(name)
            i = self.codec_combo.count() - 1
            try:
                codec = get_codec(name)
                availability = codec.availability()
                tooltip = codec.description
            except Exception as exc:  # noqa: BLE001 — one broken codec must not stop the window
                availability, tooltip = None, describe_error(exc)
            if availability is None or not availability.ok:
                _disable(self.codec_combo, i)
                tooltip = f"not available: {availability.reason if availability else tooltip}"
            self.codec_combo.setItemData(i, tooltip, Qt.ItemDataRole.ToolTipRole)
        if not _set_combo(self.codec_combo, DEFAULT_INSPECT_CODEC):
            _set_combo(self.codec_combo, FALLBACK_INSPECT_CODEC)
        self.codec_combo.currentTextChanged.connect(self._update_codec_controls)
        # "codec lattice" follows the codec chosen while only the original is on screen.
        self.codec_combo.currentTextChanged.connect(
            lambda _name: self._on_analysis_controls() if hasattr(self, "panes") else None)

        self.geometry_combo = QComboBox()
        self.geometry_combo.addItems(list(GEOMETRIES))
        self.geometry_combo.setToolTip("STFT lattice of spectrogram codecs: thesis (512 channels, hop 64) "
                                       "or wide (1024, hop 128)")
        _set_combo(self.geometry_combo, defaults.geometry)
        self.phase_combo = QComboBox()
        self.phase_combo.addItems(backend_names())
        self.phase_combo.setToolTip("phase reconstruction of spectrogram codecs")
        _set_combo(self.phase_combo, defaults.phase)
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu", "cuda"])
        if not torch.cuda.is_available():
            i = self.device_combo.findText("cuda")
            _disable(self.device_combo, i)
            self.device_combo.setItemData(i, "not available: torch sees no CUDA GPU on this machine",
                                          Qt.ItemDataRole.ToolTipRole)
        self.visqol_combo = QComboBox()
        self.visqol_combo.addItems(["auto", "on", "off"])
        self.visqol_combo.setToolTip("ViSQOL is slow (~0.2 s per second of audio); auto runs it up to 120 s")

        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("run_button")
        self.run_button.clicked.connect(lambda: self.run())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setMinimumWidth(220)

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
        self._controls_row = row
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("inspect_progress")
        self._update_codec_controls(self.codec_combo.currentText())

        self.message_label = QLabel("")
        self.message_label.setObjectName("inspect_message")
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def _build_metrics(self) -> QGroupBox:
        box = QGroupBox("Metrics")
        form = QFormLayout(box)
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
        return box

    def _build_view_controls(self) -> QGroupBox:
        box = QGroupBox("View")
        layout = QVBoxLayout(box)
        self.log_check = QCheckBox("Log frequency axis")
        self.log_check.toggled.connect(self.panes.set_log_frequency)
        self.low_button = QPushButton("0–500 Hz")
        self.low_button.setToolTip("Zoom to the low frequencies, where the thesis lattice's 86 Hz bins are coarse")
        self.low_button.clicked.connect(self.panes.show_low_frequencies)
        self.low_mode_check = QCheckBox("Low-frequency mode")
        self.low_mode_check.setToolTip("Log frequency axis and the 0–500 Hz preset together")
        self.low_mode_check.toggled.connect(self.set_low_frequency_mode)
        self.full_button = QPushButton("Whole clip")
        self.full_button.clicked.connect(self.panes.reset_view)
        self.save_button = QPushButton("Save image…")
        self.save_button.setToolTip("Save this view as a PNG")
        self.save_button.clicked.connect(self.save_dialog)
        row = QHBoxLayout()
        row.addWidget(self.low_button)
        row.addWidget(self.full_button)
        layout.addWidget(self.low_mode_check)
        layout.addWidget(self.log_check)
        layout.addLayout(row)
        layout.addLayout(self._build_analysis_controls())
        layout.addWidget(self.save_button)
        return box

    def _build_analysis_controls(self) -> QFormLayout:
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
        self._show_analysis_in_controls(DEFAULT_ANALYSIS)
        self.window_combo.currentIndexChanged.connect(lambda _i: self._on_analysis_controls())
        self.overlap_combo.currentIndexChanged.connect(lambda _i: self._on_analysis_controls())

        def spin(lo: float, hi: float, value: float, tip: str) -> QDoubleSpinBox:
            box = QDoubleSpinBox()
            box.setRange(lo, hi)
            box.setDecimals(0)
            box.setSingleStep(5.0)
            box.setSuffix(" dB")
            box.setValue(value)
            box.setToolTip(tip)
            return box

        self.floor_spin = spin(-300.0, 200.0, -100.0, "level drawn black (both spectrograms)")
        self.top_spin = spin(-300.0, 200.0, 0.0, "level drawn white (both spectrograms)")
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

        self.difference_spin = spin(1.0, 120.0, 20.0, "the difference's colour scale: ± this many dB")
        self.hold_difference_check = QCheckBox("hold")
        self.hold_difference_check.setToolTip("keep this ± scale for every later run, so two codecs compare on one scale")
        difference = QHBoxLayout()
        difference.addWidget(self.difference_spin)
        difference.addWidget(self.hold_difference_check)
        self.difference_spin.valueChanged.connect(self._on_difference_spin)
        self.hold_difference_check.toggled.connect(self._on_hold_difference)
        self.panes.difference_bar.sigLevelsChanged.connect(lambda _bar: self._sync_level_controls())
        self.panes.db_bar.sigLevelsChanged.connect(lambda _bar: self._sync_level_controls())
        # Set by a new file's original, a growing preview, a run or a new analysis: shown at once.
        self.panes.levels_changed.connect(self._sync_level_controls)

        form.addRow("analysis", self.window_combo)
        form.addRow("overlap", self.overlap_combo)
        form.addRow(self.analysis_label)
        form.addRow("floor / top", levels)
        form.addRow("difference ±", difference)
        return form

    def _build_playback(self) -> QGroupBox:
        box = QGroupBox("Listen")
        layout = QVBoxLayout(box)
        self.play_button = QPushButton("Play")
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.clicked.connect(self.toggle_play)
        self.original_radio = QRadioButton("Original (1)")
        self.reconstruction_radio = QRadioButton("Reconstruction (2)")
        self.original_radio.setChecked(True)
        self.stimulus_group = QButtonGroup(self)
        self.stimulus_group.addButton(self.original_radio, ORIGINAL)
        self.stimulus_group.addButton(self.reconstruction_radio, RECONSTRUCTION)
        self.stimulus_group.idClicked.connect(self.select_stimulus)
        self.loop_check = QCheckBox("Loop a region")
        self.loop_check.setToolTip("Drag the region's edges on the spectrogram to choose what loops")
        self.loop_check.toggled.connect(self.set_looping)
        self.level_spin = QDoubleSpinBox()
        self.level_spin.setRange(-60.0, 12.0)
        self.level_spin.setSingleStep(1.0)
        self.level_spin.setSuffix(" dB")
        self.level_spin.setValue(0.0)
        self.level_spin.valueChanged.connect(self._on_level_changed)
        self.output_combo = QComboBox()
        self.output_combo.setToolTip("audio output device")
        self.output_combo.activated.connect(self._on_output_chosen)
        self.position_label = QLabel("0.00 s")
        self.playback_status = QLabel("")
        self.playback_status.setObjectName("playback_status")
        self.playback_status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.play_button)
        buttons.addWidget(self.position_label)
        layout.addLayout(buttons)
        layout.addWidget(self.original_radio)
        layout.addWidget(self.reconstruction_radio)
        layout.addWidget(self.loop_check)
        level = QHBoxLayout()
        level.addWidget(QLabel("level"))
        level.addWidget(self.level_spin)
        layout.addLayout(level)
        layout.addWidget(self.output_combo)
        layout.addWidget(self.playback_status)
        return box

    # ------------------------------------------------------------------ opening

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open audio", self._last_dir, AUDIO_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | os.PathLike[str], *, run: bool = True) -> None:
        """Inspect the file at ``path`` (runs the current settings unless ``run`` is False)."""
        path = os.fspath(path)
        self._last_dir = str(Path(path).parent)
        self.open_source(AudioSource(path), run=run)

    def open_source(self, source: AudioSource, *, run: bool = True) -> None:
        """Make ``source`` the clip: the previous clip's result goes at once, the original is
        drawn as soon as it is read (in the background), then the run follows (``run``)."""
        self._stop_preview()
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
            self._set_busy(False)
        self.source = source
        self.source_label.setText(source.name)
        self.source_label.setToolTip(source.path)
        self.clear_result()
        if run:
            self.run()
        else:
            self._start_preview(source)

    def clear_result(self) -> None:
        """Forget what is shown (spectrograms, read-out, metrics, the pair in the player)."""
        self.result = None
        self.stimulus_files = None
        self.ratings_box.setVisible(False)
        self._shown_source = None
        self._original_source = None
        if self._detail_worker is not None:
            self._detail_worker.cancel()
            self._detail_worker = None
        self._arrays = None
        self._original_audio = None
        self.panes.clear_images()
        self._show_panes(False)
        self.readout_label.setText("Move the pointer over a spectrogram to read time, frequency and level.")
        for label in self.metric_labels.values():
            label.setText("—")
        self.run_info_label.setText("")
        if self.player is not None:
            self.player.pause()
            self.player.close()
            self.player = None
        self._update_playback_controls()

    def show_stimulus(self, stimulus: str | os.PathLike[str], reference: str | os.PathLike[str], *,
                      title: str = "", ratings: Sequence[str] = ()) -> None:
        """Show a study's rendered stimulus (as listeners heard it) against its rendered reference, with its ratings.

        The Results view calls this for a (clip, condition) cell: ``stimulus`` and ``reference``
        are the two files of the study's stimuli folder, ``ratings`` one line per rating. The pair
        is drawn and loaded for listening like a run's (original = reference); nothing is coded.
        """
        try:
            ref, stim = (_mono(sf.read(str(p), dtype="float32", always_2d=True)[0]) for p in (reference, stimulus))
        except (OSError, RuntimeError, sf.LibsndfileError) as exc:
            self.show_message(f"The stimulus cannot be read ({describe_error(exc)}).", error=True)
            return
        self.cancel()
        self.clear_result()
        self.stimulus_files = (Path(stimulus), Path(reference))
        self.show_arrays(ref, stim)
        self.ratings_box.setTitle(f"Ratings: {title}" if title else "Ratings")
        self.ratings_list.clear()
        self.ratings_list.addItems(list(ratings) or ["no ratings"])
        self.ratings_box.setVisible(True)
        self.run_info_label.setText(f"{title} · {Path(stimulus).name} against {Path(reference).name}")
        self._load_player(ref, stim)
        self.show_message(f"{title}: the rendered stimulus against its reference, with {len(ratings)} rating(s).")

    def _start_preview(self, source: AudioSource) -> None:
        analysis = self.analysis()
        worker = GeneratorWorker(lambda: preview(source, analysis), self)
        worker.progress.connect(
            lambda p, w=worker: self.show_original(p) if w is self._preview_worker and isinstance(p, OriginalPreview)
            else None)
        worker.finished.connect(lambda p, w=worker: self._on_preview(w, p))
        worker.failed.connect(lambda m, w=worker: self._on_preview_failed(w, m))
        worker.done.connect(lambda w=worker: self._forget(w))
        self._preview_worker = worker
        self._workers.add(worker)
        self.show_message(f"Reading {source.name}…")
        worker.start()

    def _stop_preview(self) -> None:
        if self._preview_worker is not None:
            self._preview_worker.cancel()
            self._preview_worker = None

    def _on_preview(self, worker: GeneratorWorker, p: OriginalPreview) -> None:
        if worker is not self._preview_worker:
            return
        self._preview_worker = None
        self.show_original(p)
        self._offer_original()
        self.show_message(f"{p.source.name}: {p.reference.shape[-1] / p.display.sample_rate:.1f} s. Press Run.")

    def _on_preview_failed(self, worker: GeneratorWorker, message: str) -> None:
        if worker is not self._preview_worker:
            return
        self._preview_worker = None
        self.show_message(message, error=True)

    def show_original(self, p: OriginalPreview) -> None:
        """Draw the original alone (its run has not finished): the other panes stay empty."""
        if p.source != self.source:
            return
        again = self.panes.original_only and self._original_source == p.source
        self.panes.set_original(p.display, keep_view=again)
        self._show_panes(True)
        self._original_source = p.source
        #: False while the original shown is still growing (a long file being read).
        self.original_complete = p.complete
        self._original_audio = p.reference if p.complete else None
        self._shown_source = None  # no result of this clip on screen yet
        if self.low_mode_check.isChecked() and not again:
            self.panes.show_low_frequencies()

    def study_clip_dialog(self) -> None:
        """Choose one clip of a study in ``studies/``."""
        clips = self._study_clips()
        if not clips:
            self.show_message("No study clips found: put a study file in studies/ (see studies/README.md).",
                              error=True)
            return
        labels = list(clips)
        label, ok = QInputDialog.getItem(self, "Study clip", "Clip:", labels, 0, False)
        if ok and label:
            self.open_source(clips[label])

    def _study_clips(self) -> dict[str, AudioSource]:
        clips: dict[str, AudioSource] = {}
        folders = {Path("studies").resolve(), STUDIES_DIR.resolve()}
        for folder in sorted(folders):
            for path in sorted(folder.glob("*.toml")):
                try:
                    study = load_study(path, check_codecs=False)
                except Exception as exc:  # noqa: BLE001 — one broken study must not hide the others
                    self.show_message(describe_error(exc), error=True)
                    continue
                for clip in study.clips:
                    end = clip.start_s + clip.length_s
                    label = f"{study.name}: {clip.name} ({clip.start_s:g}–{end:g} s)"
                    clips[label] = AudioSource(str(clip.path), clip.start_s, clip.length_s,
                                               label=f"{study.name} / {clip.name}")
        return clips

    # ------------------------------------------------------------------ running

    def request(self) -> InspectRequest | None:
        """The request the controls describe, or None without a source."""
        if self.source is None:
            return None
        config = PipelineConfig(geometry=self.geometry_combo.currentText(), phase=self.phase_combo.currentText(),
                                device=self.device_combo.currentText())
        visqol = {"auto": None, "on": True, "off": False}[self.visqol_combo.currentText()]
        return InspectRequest(self.source, self.codec_combo.currentText(), config, visqol, self.analysis())

    def run(self, request: InspectRequest | None = None) -> GeneratorWorker | None:
        """Start a run in the background (cancelling one in progress); returns its worker.

        A request for another clip than the current one makes that clip current (as opening it does)."""
        request = request or self.request()
        if request is None:
            self.show_message("Open an audio file first (Open…, or drop one onto the window).", error=True)
            return None
        if request.source != self.source:
            self.open_source(request.source, run=False)
            self._stop_preview()
        if self._worker is not None:
            self._worker.cancel()
        self._stop_preview()
        if self.result is not None:
            self.run_info_label.setText(f"Previous run: {self._run_info(self.result)}")
        worker = GeneratorWorker(lambda: inspect(request), self)
        worker.progress.connect(lambda p, w=worker: self._on_progress(w, p))
        worker.finished.connect(lambda r, w=worker: self._on_finished(w, r))
        worker.failed.connect(lambda m, w=worker: self._on_failed(w, m))
        worker.cancelled.connect(lambda w=worker: self._on_cancelled(w))
        worker.done.connect(lambda w=worker: self._forget(w))
        self._worker = worker
        self._workers.add(worker)
        self.show_message(f"Running {request.codec} on {request.source.name}…")
        self._stage = self._step = None
        self._rate_key = None
        self._bar = 0
        self.cancel_requested_at = None
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.progress_label.setText("starting")
        self._set_busy(True)
        worker.start()
        return worker

    def _forget(self, worker: GeneratorWorker) -> None:
        self._workers.discard(worker)
        worker.deleteLater()

    def cancel(self) -> None:
        """Stop the run in progress at its next step."""
        if self._worker is not None:
            self._worker.cancel()
            self.cancel_requested_at = time.perf_counter()
            self.progress_label.setText("cancelling…")

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def _set_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)
        self.progress_label.setVisible(busy)
        self.busy_changed.emit(busy)

    def _on_progress(self, worker: GeneratorWorker, p) -> None:
        if worker is not self._worker:
            return
        if isinstance(p, OriginalPreview):
            if self.result is None or self.result.request.source != p.source:
                self.show_original(p)
            return
        if p.stage == STEP:
            self._step = p
        else:
            self._step = None  # a library call's units belong to the step they came from
            self._stage = p
        if self._stage is None:
            return
        self.progress_label.setText(self.progress_text())
        self._bar = max(self._bar, int(1000 * self._fraction()))
        self.progress.setValue(self._bar)

    def _fraction(self) -> float:
        stage, step = self._stage, self._step
        if stage is None:
            return 0.0
        done = job_fraction(stage)
        if (step is not None and step.total > 0 and stage.done < stage.total and stage.total <= 1
                and stage.stage in ("read", "encode")):
            # A stage that is one library call (reading, encoding): that call's units. (Decoding
            # reports lattice frames itself; its tile decoding before them is shown, not counted.)
            done += STAGE_WEIGHTS.get(stage.stage, 0.0) * min(1.0, step.done / step.total)
        return min(1.0, done)

    def progress_text(self) -> str:
        """What the run is doing, in its own units, and an ETA for that step once it is known:
        ``Encoding — sgc-12 · tiles analysed 120 of 290 · about 40 s left``."""
        stage, step = self._stage, self._step
        if stage is None:
            return ""
        text = stage_text(stage)
        if stage.total > 1:
            key, done, total = (stage.stage, stage.unit), stage.done, stage.total
        elif step is not None:
            key, done, total = (stage.stage, step.unit), step.done, step.total
        else:
            key = None
        if step is not None:
            text += f" · {step.unit} {step.done:,} of {step.total:,}"
        if key is None:
            return text
        now = time.perf_counter()
        if key != self._rate_key:
            self._rate_key, self._rate_start = key, (now, done)
            return text
        t0, done0 = self._rate_start
        if done > done0 and now - t0 >= ETA_AFTER_S and total > done:
            text += f" · {_eta_text((now - t0) / (done - done0) * (total - done))}"
        return text

    def _on_finished(self, worker: GeneratorWorker, result: InspectResult) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        self._set_busy(False)
        self.show_result(result)
        seconds = sum(result.timings_s.values())
        self.show_message(f"{result.request.codec} on {result.request.source.name}: done in {seconds:.1f} s.")
        self.result_ready.emit(result)

    def _on_failed(self, worker: GeneratorWorker, message: str) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        self._set_busy(False)
        self.show_message(message, error=True)
        self._offer_original()
        self.run_failed.emit(message)

    def _on_cancelled(self, worker: GeneratorWorker) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        self._set_busy(False)
        if self.result is not None and self.result.request.source == self.source:
            self.show_message("Cancelled; the spectrograms and metrics are still those of the previous run.")
        else:
            self.show_message("Cancelled; no result for this clip (the original is shown, and can be played).")
            self._offer_original()

    def show_message(self, text: str, *, error: bool = False) -> None:
        """A status line above the spectrograms (errors in red) and on the main window."""
        self.message_label.setText(text)
        self.message_label.setStyleSheet("color: #c62828; font-weight: bold;" if error else "")
        self.message_label.setProperty("error", error)
        self.message.emit(text)

    def message_text(self) -> str:
        return self.message_label.text()

    # ------------------------------------------------------------------ showing

    def show_result(self, result: InspectResult) -> None:
        """Show a finished run: spectrograms, metrics, and the pair loaded for listening."""
        self.result = result
        self.show_pair(result.display, result.reference, result.decoded, source=result.request.source)
        values = {"file_kbps": result.file_kbps, **result.scores}
        for key, label in self.metric_labels.items():
            label.setText(_format_metric(key, values.get(key, math.nan)))
            note = result.notes.get(key)
            tooltip = next(t for k, _, t in METRIC_ROWS if k == key)
            label.setToolTip(f"{tooltip}\n{note}" if note else tooltip)
        self.metric_labels["file_kbps"].setText(f"{result.file_kbps:.2f} kbit/s ({result.file_bytes:,} bytes)")
        self.run_info_label.setText(self._run_info(result))
        self._load_player(result.reference, result.decoded)

    @staticmethod
    def _run_info(result: InspectResult) -> str:
        """``sgc-12 · thesis · phase pghi+fgla · cpu · …``; a waveform codec (Opus, MP3, AAC, a
        low-pass anchor) has no spectrogram geometry or phase backend, so none is named."""
        r = result.request
        exact = "" if result.display.exact else " (overview)"
        if is_spectrogram_codec(r.codec):
            geometry = getattr(get_codec(r.codec), "geometry", None) or r.config.geometry
            what = f"{r.codec} · {geometry} · phase {r.config.phase} · {result.device}"
        else:
            what = r.codec
        return f"{what} · {result.seconds:.2f} s of audio in {sum(result.timings_s.values()):.1f} s{exact}"

    def _update_codec_controls(self, name: str) -> None:
        """Geometry and phase apply to spectrogram codecs only."""
        spectrogram = is_spectrogram_codec(name)
        for combo in (self.geometry_combo, self.phase_combo):
            combo.setEnabled(spectrogram)
        if not spectrogram:
            self.phase_combo.setToolTip(f"{name} codes the waveform: no phase to reconstruct")
        else:
            self.phase_combo.setToolTip("phase reconstruction of spectrogram codecs")

    def show_pair(self, pair: SpectrogramPair, reference: np.ndarray | None = None,
                  reconstruction: np.ndarray | None = None, *, source: AudioSource | None = None) -> None:
        """Draw a spectrogram pair (keeps the loop region's state); with the waveforms it was
        made from, a zoom into a pooled overview is redrawn at full resolution. A rerun on the
        clip already on screen (``source``) keeps the zoom, the frequency range and the dB levels."""
        if self._detail_worker is not None:
            self._detail_worker.cancel()
            self._detail_worker = None
        if self._analysis_worker is not None:
            self._analysis_worker.cancel()
            self._analysis_worker = None
        self._arrays = ((reference, reconstruction) if reference is not None and reconstruction is not None
                        else None)
        rerun = source is not None and source == self._shown_source and self.panes.pair is not None
        if rerun:
            # A rerun of the clip on screen: keep where the researcher was looking.
            time_range = self.panes.visible_time_range()
            frequency_range = self.panes.visible_frequency_range()
            levels = self.panes.db_bar.levels()
        self.panes.set_pair(pair)
        self._show_panes(True)
        self._shown_source = source
        if rerun:
            self.panes.set_db_levels(levels)
            self.panes.show_time_range(*time_range)
            self.panes.show_frequency_range(*frequency_range)
        elif self.low_mode_check.isChecked():
            self.panes.show_low_frequencies()
        self._after_pair()
        if self.loop_check.isChecked():
            self.panes.show_loop_region(True)
        if reference is not None and pair.analysis != self.analysis():
            self._reanalyse()  # made with another analysis (e.g. chosen while the run went on)

    def _show_panes(self, on: bool) -> None:
        """The spectrogram panes (something to draw) or the hint that says how to get there."""
        self.panes.setVisible(on)
        self.empty_hint.setVisible(not on)
        self._enable_level_spins()

    def _enable_level_spins(self) -> None:
        """Automatic floor / top describe the picture on screen: with none (a file just opened, its
        original not drawn yet) they are greyed out rather than show the previous file's levels."""
        on = self.panes.pair is not None or not self.auto_levels_check.isChecked()
        for spin in (self.floor_spin, self.top_spin):
            spin.setEnabled(on)
    def _after_pair(self) -> None:
        pair = self.panes.pair
        if pair is not None:
            self.analysis_label.setText(pair.analysis.resolution(pair.sample_rate))
            self.analysis_label.setToolTip(pair.analysis.describe(pair.sample_rate))
        self._sync_level_controls()

    def show_arrays(self, reference: np.ndarray, reconstruction: np.ndarray, *, frames_per_column: int = 1) -> SpectrogramPair:
        """Draw the pair of two waveforms (float32 (n,) or (1, n) at 44.1 kHz) without a run.

        Long tracks get a quick overview (``frames_per_column`` lattice frames analysed per
        drawn column); short ones are drawn exactly.
        """
        analysis = self.analysis()
        columns = overview_columns(analysis) if frames_per_column is not None else MAX_COLUMNS
        pair = analyse_pair(reference, reconstruction, frames_per_column=frames_per_column, analysis=analysis,
                            max_columns=columns)
        self.show_pair(pair, reference, reconstruction)
        return pair

    # ------------------------------------------------------------------ analysis and levels

    def analysis(self) -> Analysis:
        """The analysis the View panel describes (what the next pair is drawn from)."""
        n = self.window_combo.currentData()
        if not n:
            # What the codec of the pair on screen coded (before a run: the chosen codec's).
            codec = self.result.request.codec if self.result is not None else self.codec_combo.currentText()
            try:
                geometry = getattr(get_codec(codec), "geometry", None)
            except Exception:  # noqa: BLE001 — an unknown or broken codec is refused when the run starts
                geometry = None
            geometry = geometry if geometry in GEOMETRIES else self.geometry_combo.currentText()
            if is_two_band_codec(codec):
                return Analysis.two_band(geometry)
            return Analysis.lattice(geometry)
        return Analysis.stft(int(n), overlap=float(self.overlap_combo.currentData()))

    def _show_analysis_in_controls(self, analysis: Analysis) -> None:
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

    def set_analysis(self, analysis: Analysis) -> None:
        """Draw from ``analysis`` (a Hann STFT the menu offers, or a lattice): the shown pair is
        re-analysed in the background, keeping the zoom."""
        self._show_analysis_in_controls(analysis)
        self._on_analysis_controls()

    def _on_analysis_controls(self) -> None:
        self.overlap_combo.setEnabled(bool(self.window_combo.currentData()))
        pair = self.panes.pair
        if pair is not None and pair.analysis != self.analysis():
            self._reanalyse()

    @property
    def analysing(self) -> bool:
        """Whether a re-analysis for a new analysis is in progress."""
        return self._analysis_worker is not None

    def _reanalyse(self) -> None:
        """Analyse the shown waveforms with :meth:`analysis` in the background, then draw (keeping the view)."""
        if self._arrays is None:
            # Only the original's preview is on screen (or a pair without its waveforms): a run
            # in progress draws with the new analysis when it ends; a preview is read again.
            if getattr(self.panes, "original_only", False) and self.source is not None and not self.busy:
                self._start_preview(self.source)
            return
        if self._analysis_worker is not None:
            self._analysis_worker.cancel()
        reference, reconstruction = self._arrays
        analysis = self.analysis()
        worker = GeneratorWorker(lambda: analyse_pair_steps(reference, reconstruction, analysis=analysis), self)

        def finished(pair: SpectrogramPair, w=worker) -> None:
            if w is not self._analysis_worker:
                return
            self._analysis_worker = None
            if self._detail_worker is not None:
                self._detail_worker.cancel()
                self._detail_worker = None
            self.panes.set_pair(pair, keep_view=True)
            if self.result is not None and self.result.reference is reference:
                self.result.display = pair
            self._after_pair()
            if self.loop_check.isChecked():
                self.panes.show_loop_region(True)

        def failed(message: str, w=worker) -> None:
            if w is self._analysis_worker:
                self._analysis_worker = None
            self.show_message(message, error=True)

        worker.finished.connect(finished)
        worker.failed.connect(failed)
        worker.cancelled.connect(lambda w=worker: setattr(self, "_analysis_worker", None)
                                 if w is self._analysis_worker else None)
        worker.done.connect(lambda w=worker: self._forget(w))
        self._analysis_worker = worker
        self._workers.add(worker)
        self.analysis_label.setText(f"analysing… {analysis.resolution()}")
        worker.start()

    def _sync_level_controls(self) -> None:
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
        self._sync_level_controls()
        self._enable_level_spins()

    def _on_level_spins(self) -> None:
        floor, top = self.floor_spin.value(), self.top_spin.value()
        if top <= floor:
            self.show_message(f"The top level ({top:g} dB) must be above the floor ({floor:g} dB).", error=True)
            return
        self.set_level_range(floor, top)

    def _on_auto_levels(self, on: bool) -> None:
        self.set_level_range(None) if on else self._on_level_spins()
        self._enable_level_spins()

    def hold_difference_range(self, range_db: float | None) -> None:
        """Hold the difference's scale at ±``range_db`` dB across runs (None: per pair)."""
        with QSignalBlocker(self.hold_difference_check):
            self.hold_difference_check.setChecked(range_db is not None)
        self.panes.hold_difference_range(range_db)
        self._sync_level_controls()

    def _on_difference_spin(self, value: float) -> None:
        bar = self.panes.difference_bar
        bar.setLevels((-value, value))
        if self.hold_difference_check.isChecked():
            self.panes.hold_difference_range(value)

    def _on_hold_difference(self, on: bool) -> None:
        self.hold_difference_range(self.panes.difference_range_db() if on else None)

    def _compute_detail(self, start_s: float, end_s: float) -> None:
        """Analyse [start_s, end_s) at full resolution in the background, then draw it."""
        pair = self.panes.pair
        if self._arrays is None or pair is None:
            return
        if self._detail_worker is not None:
            self._detail_worker.cancel()
        reference, reconstruction = self._arrays
        worker = GeneratorWorker(lambda: analyse_excerpt_steps(reference, reconstruction, start_s, end_s,
                                                               top_db=pair.top_db, analysis=pair.analysis), self)

        def finished(detail: SpectrogramPair, w=worker) -> None:
            if w is self._detail_worker and self.panes.pair is pair:
                self._detail_worker = None
                self.panes.set_detail(detail)

        worker.finished.connect(finished)
        worker.failed.connect(lambda message: self.show_message(message, error=True))
        worker.done.connect(lambda w=worker: self._forget(w))
        self._detail_worker = worker
        self._workers.add(worker)
        worker.start()

    def metrics_text(self) -> str:
        """The metrics panel as ``label: value`` lines."""
        return "\n".join(f"{label}: {self.metric_labels[key].text()}" for key, label, _ in METRIC_ROWS)

    def set_low_frequency_mode(self, on: bool) -> None:
        """Log frequency axis, the 0–500 Hz preset and an analysis of at least 4096 samples
        (:data:`LOW_FREQUENCY_ANALYSIS` replaces a shorter one or the lattice); off: linear axis,
        every frequency, and the analysis from before."""
        with QSignalBlocker(self.low_mode_check):
            self.low_mode_check.setChecked(on)
        current = self.analysis()
        if on and (current.is_lattice or current.window_length < LOW_FREQUENCY_MIN_WINDOW):
            self._analysis_before_low = current
            self.set_analysis(LOW_FREQUENCY_ANALYSIS)
        elif not on and self._analysis_before_low is not None:
            before, self._analysis_before_low = self._analysis_before_low, None
            self.set_analysis(before)
        self.log_check.setChecked(on)
        if on:
            self.panes.show_low_frequencies()
        elif self.panes.pair is not None:
            pair = self.panes.pair
            self.panes.show_frequency_range(0.0, pair.max_hz)

    # ------------------------------------------------------------------ saving

    def default_image_name(self) -> str:
        """What "Save image…" proposes: the clip, the codec and the analysis on screen
        (``music-sgc-12-hann-2048.png``), not always ``inspect.png``."""
        parts = []
        if self.stimulus_files is not None:
            parts.append(self.stimulus_files[0].stem)
        elif self.source is not None:
            parts.append(Path(self.source.name).stem)
            parts.append(self.result.request.codec if self.result is not None else "original")
        pair = self.panes.pair
        if pair is not None:
            parts.append(pair.analysis.short_name)
        if self.panes.log_frequency:
            parts.append("log")
        text = "-".join(parts) or "inspect"
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in text.lower())
        return "-".join(filter(None, safe.split("-"))) + ".png"

    def save_dialog(self) -> None:
        default = str(Path(self._last_dir) / self.default_image_name())
        path, _ = QFileDialog.getSaveFileName(self, "Save view as PNG", default, "PNG image (*.png)")
        if path:
            self.save_png(path)

    def save_png(self, path: str | os.PathLike[str]) -> Path | None:
        """Save this view (spectrograms, read-out and panels) as a PNG; None (and a message) on failure."""
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        if not path.parent.is_dir():
            self.show_message(f"Cannot save {path}: the folder {path.parent} does not exist.", error=True)
            return None
        if not self.grab().save(str(path), "PNG"):
            self.show_message(f"Cannot save {path}: the image could not be written there.", error=True)
            return None
        self.show_message(f"Saved {path}.")
        return path

    # ------------------------------------------------------------------ listening

    def _offer_original(self) -> None:
        """With no result of this clip on screen (a preview, a cancelled or failed run), the original
        alone can still be heard."""
        if self.result is None and self.panes.original_only and self._original_audio is not None:
            self._load_player(self._original_audio, None)

    def _load_player(self, reference: np.ndarray, reconstruction: np.ndarray | None) -> None:
        buffers = [np.ascontiguousarray(reference, dtype=np.float32)]
        names = ["original"]
        if reconstruction is not None:
            buffers.append(np.ascontiguousarray(reconstruction, dtype=np.float32))
            names.append("reconstruction")
        else:
            self.original_radio.setChecked(True)
        try:
            player = self.player
            if player is None:
                player = self.player = playback.Player(
                    buffers, rate=self.result.sample_rate if self.result else 44_100, names=names)
                self._fill_output_devices()
                player.open(self._chosen_device())
            else:
                player.load(buffers, names)
            player.set_level(self.level_spin.value())
            player.select(self.stimulus_group.checkedId())
            region = self.panes.loop_region()
            if self.loop_check.isChecked() and region is not None:
                player.set_loop(*region)
        except Exception as exc:  # noqa: BLE001 — listening is optional; inspecting goes on
            self.player = None
            self.playback_status.setText(f"Playback unavailable: {describe_error(exc)}")
        self._update_playback_controls()
        self._playhead_timer.start()

    def _fill_output_devices(self) -> None:
        self.output_combo.clear()
        self.output_combo.addItem("default output", None)
        for device in playback.output_devices():
            self.output_combo.addItem(f"{device.name} ({device.hostapi})", device.index)

    def _chosen_device(self):
        return self.output_combo.currentData()

    def _on_output_chosen(self, _index: int) -> None:
        if self.player is not None:
            self.player.open(self._chosen_device())
            self._update_playback_controls()

    def _update_playback_controls(self) -> None:
        has = self.player is not None
        for w in (self.play_button, self.original_radio, self.reconstruction_radio, self.loop_check,
                  self.level_spin, self.output_combo):
            w.setEnabled(has)
        if self.player is not None:
            self.reconstruction_radio.setEnabled(self.player.count > 1)
            reason = self.player.silent_reason
            device = self.player.device
            margin = (f" Block {self.player.blocksize} frames, {1000 * self.player.output_latency_s:.0f} ms; "
                      f"{self.player.underruns} underrun(s).") if device else ""
            self.playback_status.setText(reason or (f"Output: {device.name}.{margin}" if device else ""))
            # Silent (no device): nothing advances, so the button never claims it is playing.
            self.play_button.setText("Pause" if self.player.playing and not reason else "Play")
        else:
            self.playback_status.setText("Run a clip to listen to it.")

    def toggle_play(self) -> None:
        if self.player is None:
            return
        reason = self.player.silent_reason
        if reason and not self.player.playing:
            # Nothing would be heard and the time would stay put: say why instead of "Pause".
            self.player.open(self._chosen_device())  # a device plugged in since is taken
            reason = self.player.silent_reason
            if reason:
                self.show_message(f"{reason} Choose another output below.", error=True)
                self._update_playback_controls()
                return
        self.player.toggle()
        self._update_playback_controls()

    def select_stimulus(self, index: int) -> None:
        """Hear the original (0) or the reconstruction (1) from the same position."""
        button = self.stimulus_group.button(index)
        if button is not None and not button.isChecked():
            button.setChecked(True)
        if self.player is not None and index < self.player.count:
            self.player.select(index)

    def seek(self, seconds: float) -> None:
        if self.player is not None:
            self.player.seek(seconds)
        self.panes.set_playhead(seconds)

    def set_looping(self, on: bool) -> None:
        """Show the loop region (and loop it) or hide it (and play on)."""
        with QSignalBlocker(self.loop_check):
            self.loop_check.setChecked(on)
        if self.panes.pair is None:
            return
        self.panes.show_loop_region(on)
        if not on and self.player is not None:
            self.player.clear_loop()

    def _on_region_changed(self, start_s: float, end_s: float) -> None:
        if self.player is None or not self.loop_check.isChecked():
            return
        try:
            self.player.set_loop(start_s, end_s)
        except Exception as exc:  # noqa: BLE001 — a ConfigError's sentence
            self.show_message(describe_error(exc), error=True)

    def _on_level_changed(self, db: float) -> None:
        if self.player is not None:
            self.player.set_level(db)

    def _update_playhead(self) -> None:
        if self.player is None:
            return
        if self.player.keep_margin():
            self._update_playback_controls()  # the block size grew after underruns: say so
        position = self.player.position_s
        self.panes.set_playhead(position)
        self.position_label.setText(f"{position:.2f} s")
        self.play_button.setText("Pause" if self.player.playing and not self.player.silent_reason else "Play")

    # ------------------------------------------------------------------ closing

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Cancel runs, wait for their threads (up to ``timeout_s``) and close the audio output."""
        self._playhead_timer.stop()
        for worker in list(self._workers):
            worker.cancel()
        for worker in list(self._workers):
            worker.wait(timeout_s)
        if self.player is not None:
            self.player.close()


__all__ = ["CODEC_LATTICE", "DEFAULT_INSPECT_CODEC", "InspectView", "LOW_FREQUENCY_MIN_WINDOW", "METRIC_ROWS"]
