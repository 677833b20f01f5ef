"""The Inspect view's "Listen" panel: the original and the reconstruction in one player.

::

    ┌ Listen ──────────────────────┐
    │ [Play]  1.23 s               │  Space: play / pause
    │ ◉ Original (1)               │  1, 2: switch at the same position
    │ ○ Reconstruction (2)         │
    │ ☐ Loop a region              │  the region is dragged on the spectrograms
    │ level  0 dB                  │
    │ output device ▾              │
    │ Output: … / why it is silent │
    └──────────────────────────────┘

Playback uses :class:`mosapp.playback.Player` with both stimuli preloaded, so the switch
between them keeps the position; the playhead and the loop region are drawn on the panes.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from mosapp import playback
from mosapp.gui.spectrogram_widgets import SpectrogramPanes
from mosapp.gui.workers import describe_error

#: Playhead refresh interval.
PLAYHEAD_INTERVAL_MS = 33
#: The two stimuli the player holds.
ORIGINAL, RECONSTRUCTION = 0, 1


class ListenPanel(QGroupBox):
    """Play, switch between original and reconstruction, loop a region, set the level and output.

    Signals:
        error(str): a sentence for the view's status line (no output, a loop that cannot be set).
    """

    error = Signal(str)

    def __init__(self, panes: SpectrogramPanes, parent: QWidget | None = None) -> None:
        super().__init__("Listen", parent)
        self.panes = panes
        self.player: playback.Player | None = None
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
        self._lay_out()
        self.playhead_timer = QTimer(self)
        self.playhead_timer.setInterval(PLAYHEAD_INTERVAL_MS)
        self.playhead_timer.timeout.connect(self._update_playhead)
        panes.region_changed.connect(self._on_region_changed)

    def _lay_out(self) -> None:
        layout = QVBoxLayout(self)
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

    def add_shortcuts(self, widget: QWidget) -> None:
        """Space (play / pause), 1 and 2 (original, reconstruction) anywhere in ``widget``."""
        for key, slot in (("Space", self.toggle_play), ("1", lambda: self.select_stimulus(ORIGINAL)),
                          ("2", lambda: self.select_stimulus(RECONSTRUCTION))):
            shortcut = QShortcut(QKeySequence(key), widget)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    # ------------------------------------------------------------------ the player

    def load(self, reference: np.ndarray, reconstruction: np.ndarray | None, rate: int) -> None:
        """Hold ``reference`` (and ``reconstruction``, when there is one) for listening."""
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
                player = self.player = playback.Player(buffers, rate=rate, names=names)
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
        self.update_controls()
        self.playhead_timer.start()

    def close_player(self) -> None:
        """Stop and forget the player (nothing to hear)."""
        if self.player is not None:
            self.player.pause()
            self.player.close()
            self.player = None
        self.update_controls()

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
            self.update_controls()

    def update_controls(self) -> None:
        """Enable what the player allows, and say where the sound goes (or why there is none)."""
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

    # ------------------------------------------------------------------ actions

    def toggle_play(self) -> None:
        if self.player is None:
            return
        reason = self.player.silent_reason
        if reason and not self.player.playing:
            # Nothing would be heard and the time would stay put: say why instead of "Pause".
            self.player.open(self._chosen_device())  # a device plugged in since is taken
            reason = self.player.silent_reason
            if reason:
                self.error.emit(f"{reason} Choose another output below.")
                self.update_controls()
                return
        self.player.toggle()
        self.update_controls()

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
            self.error.emit(describe_error(exc))

    def _on_level_changed(self, db: float) -> None:
        if self.player is not None:
            self.player.set_level(db)

    def _update_playhead(self) -> None:
        if self.player is None:
            return
        if self.player.keep_margin():
            self.update_controls()  # the block size grew after underruns: say so
        position = self.player.position_s
        self.panes.set_playhead(position)
        self.position_label.setText(f"{position:.2f} s")
        self.play_button.setText("Pause" if self.player.playing and not self.player.silent_reason else "Play")


__all__ = ["ORIGINAL", "PLAYHEAD_INTERVAL_MS", "RECONSTRUCTION", "ListenPanel"]
