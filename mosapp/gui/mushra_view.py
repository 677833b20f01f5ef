"""The MUSHRA screen of the Listen view (ITU-R BS.1534): the open reference, every condition blinded, 0-100.

::

    MushraTrial ─► Player([reference, 1, 2, …, N]) (one stream, one position, 5 ms crossfades)
        ─► every sample played, every slider set ─► Enter ─► session.rate(trial, scores, …)
           (one transaction for the whole screen) ─► next screen

Keys (also shown on the screen):

* **Space** play / pause; **R** the reference; **1–9**, **0** sample 1–10; **←/→** the previous /
  next sample (switching keeps the position, click-free);
* **↑/↓** the selected sample's score ±1, **PgUp/PgDn** ±10 (an unrated sample starts at 50);
* **L** loop: the first press marks the loop's start at the current position, the second its
  end (playback then loops there), the third clears it; **Home** back to the loop's start (or 0);
* **Enter** save the screen and go on.

A screen can be saved once every sample was played (at least ``MIN_PLAYED_S`` of it, or all of
a shorter one) and has a score. The sliders carry BS.1534's five labelled bands (the study's
``labels``). Nothing on the screen names a condition: samples are numbered in the screen's
random order.
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from mosapp.gui.trial_widgets import add_position_row, add_trial_header
from mosapp.gui.trial_widgets import button as _button
from mosapp.gui.trial_widgets import label as _label
from mosapp.study.errors import StudyError

#: A sample counts as played after this many seconds of it (or all of a shorter one).
MIN_PLAYED_S = 1.0
#: Where the first arrow key puts an unrated slider.
START_SCORE = 50
_DIGITS = {getattr(Qt, f"Key_{d}"): (d - 1 if d else 9) for d in range(10)}
_ENTER_KEYS = (Qt.Key_Return, Qt.Key_Enter)


class MushraPanel(QWidget):
    """One MUSHRA screen; the :class:`~mosapp.gui.listen_view.ListenView` shows it and drives the session."""

    SLIDER_HEIGHT = 300

    def __init__(self, view) -> None:
        super().__init__()
        self.view = view
        self.setObjectName("mushraPanel")
        self.setFocusPolicy(Qt.NoFocus)
        self.trial = None
        self.scores: list[int | None] = []
        self.current = 0  # the selected sample (0-based), what the arrows change
        self._loop_start: float | None = None
        self._build()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        box = QVBoxLayout(self)
        box.setSpacing(10)
        add_trial_header(self, box, "Practice screen: get used to the sounds and the scale. It counts for nothing.")

        row = QHBoxLayout()
        self.reference_button = _button("Reference  (R)", "stimulusButton")
        self.reference_button.setCheckable(True)
        self.reference_button.clicked.connect(self.select_reference)
        row.addWidget(self.reference_button)
        self.play_button = _button("▶  Play  (Space)", "playButton")
        self.play_button.clicked.connect(self.toggle_play)
        row.addWidget(self.play_button)
        self.loop_button = _button("Loop  (L)")
        self.loop_button.clicked.connect(self.loop_key)
        row.addWidget(self.loop_button)
        row.addStretch(1)
        box.addLayout(row)

        add_position_row(self, box, self._seek_released)
        self.loop_label = _label("", "listenHint")
        box.addWidget(self.loop_label)

        self.grid_frame = QFrame()
        self.grid = QGridLayout(self.grid_frame)
        self.grid.setHorizontalSpacing(14)
        self.grid.setVerticalSpacing(4)
        self.grid_frame.setMinimumHeight(self.SLIDER_HEIGHT + 120)
        box.addWidget(self.grid_frame)
        self.sliders: list[QSlider] = []
        self.value_labels: list[QLabel] = []
        self.sample_buttons = []
        self.played_labels: list[QLabel] = []
        self.band_labels: list[QLabel] = []

        self.hint = _label("")
        box.addWidget(self.hint)
        self.message = _label("", "listenError")
        self.message.hide()
        box.addWidget(self.message)
        row = QHBoxLayout()
        row.addStretch(1)
        self.next_button = _button("Save and next  (Enter)", "primaryButton")
        self.next_button.clicked.connect(self.submit)
        row.addWidget(self.next_button)
        box.addLayout(row)
        self.keys_label = _label(self.keys_text(), "listenHint")
        box.addWidget(self.keys_label)
        box.addStretch(1)

    @staticmethod
    def keys_text() -> str:
        return ("Keys — Space: play / pause · R: reference · 1–9, 0: sample 1–10 · ←/→: previous / next sample · "
                "↑/↓: score ±1 · PgUp/PgDn: ±10 · L: loop start / end / off · Home: to the start · "
                "Enter: save and go on.")

    def _rebuild_grid(self, n: int, labels) -> None:
        while self.grid.count():
            w = self.grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.sliders, self.value_labels, self.sample_buttons, self.played_labels = [], [], [], []
        # The scale: BS.1534's five bands, 80-100 at the top.
        scale = QVBoxLayout()
        scale_widget = QWidget()
        scale_widget.setLayout(scale)
        scale.setContentsMargins(0, 0, 0, 0)
        scale.setSpacing(0)
        self.band_labels = []
        for k in range(4, -1, -1):
            lab = _label(f"{labels[k]}\n{20 * k}–{20 * (k + 1)}", wrap=False)
            lab.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
            lab.setFrameShape(QFrame.StyledPanel if k % 2 == 0 else QFrame.NoFrame)
            lab.setMinimumHeight(self.SLIDER_HEIGHT // 5)
            scale.addWidget(lab, 1)
            self.band_labels.append(lab)
        scale_widget.setFixedHeight(self.SLIDER_HEIGHT)
        self.grid.addWidget(scale_widget, 1, 0)
        for i in range(n):
            value = _label("—", wrap=False)
            value.setAlignment(Qt.AlignCenter)
            self.grid.addWidget(value, 0, i + 1)
            slider = QSlider(Qt.Vertical)
            slider.setRange(0, 100)
            slider.setValue(START_SCORE)
            slider.setFocusPolicy(Qt.NoFocus)
            slider.setFixedHeight(self.SLIDER_HEIGHT)
            slider.setTickPosition(QSlider.TicksBothSides)
            slider.setTickInterval(20)
            slider.valueChanged.connect(lambda v, i=i: self._slider_moved(i, v))
            self.grid.addWidget(slider, 1, i + 1, alignment=Qt.AlignHCenter)
            button = _button(f"{i + 1 if i < 9 else 0}", "stimulusButton")
            button.setCheckable(True)
            button.setMinimumWidth(64)
            button.setStyleSheet("min-width: 56px; padding: 10px 8px;")
            button.clicked.connect(lambda _=False, i=i: self.select(i))
            self.grid.addWidget(button, 2, i + 1)
            played = _label("not played", "listenHint", wrap=False)
            played.setAlignment(Qt.AlignCenter)
            self.grid.addWidget(played, 3, i + 1)
            self.sliders.append(slider)
            self.value_labels.append(value)
            self.sample_buttons.append(button)
            self.played_labels.append(played)

    # ------------------------------------------------------------------ a screen
    def show_trial(self, trial) -> None:
        """Load ``trial`` (a MushraTrial) into the player and the screen."""
        view = self.view
        self.trial = trial
        n = len(trial.items)
        self.scores = [None] * n
        self.current = 0
        self._loop_start = None
        self._rebuild_grid(n, view.definition.labels)
        buffers = [trial.reference] + [item.audio for item in trial.items]
        view.player.load(buffers, names=["reference"] + [str(i + 1) for i in range(n)])
        view.player.select(0)
        self._started = time.monotonic()
        if trial.is_training:
            self.trial_label.setText(f"Practice screen {trial.index + 1} of {view.session.progress.training_total}")
        else:
            p = view.session.progress
            self.trial_label.setText(f"Screen {p.rated + 1} of {p.total}")
        self.progress_label.setText(f"{trial.index} of {trial.total} done")
        self.progress_bar.setRange(0, trial.total)
        self.progress_bar.setValue(trial.index)
        self.practice_label.setVisible(trial.is_training)
        self._message("")
        self.grid.activate()
        self.layout().activate()

    def _message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    @property
    def played(self) -> list[bool]:
        """Per sample: played for at least MIN_PLAYED_S (or to its end)."""
        player = self.view.player
        if self.trial is None or player is None:
            return []
        listened, ends, durations = player.listened_s, player.heard_to_end, player.durations_s
        return [listened[i + 1] >= min(MIN_PLAYED_S, durations[i + 1] - 0.05) or ends[i + 1]
                for i in range(len(self.trial.items))]

    @property
    def can_save(self) -> bool:
        return self.trial is not None and all(self.played) and all(s is not None for s in self.scores)

    def tick(self) -> None:
        player = self.view.player
        if player is None or self.trial is None:
            return
        pos, total = player.position_s, player.duration_s
        if not self.position_slider.isSliderDown():
            self.position_slider.setValue(int(round(1000 * pos / total)) if total > 0 else 0)
        self.time_label.setText(f"{pos:.1f} / {total:.1f} s")
        self.play_button.setText("❚❚  Pause  (Space)" if player.playing else "▶  Play  (Space)")
        sel = player.selected
        self.reference_button.setChecked(sel == 0)
        played = self.played
        for i, b in enumerate(self.sample_buttons):
            b.setChecked(sel == i + 1)
            b.setStyleSheet("min-width: 56px; padding: 10px 8px;" + (" border: 2px solid #2e6bd1;"
                                                                      if i == self.current else ""))
            self.played_labels[i].setText("played" if played[i] else "not played")
            self.played_labels[i].setStyleSheet("color: #1b6e20;" if played[i] else "color: #8a5300;")
        loop = player.loop
        self.loop_label.setText(f"Loop {loop[0]:.1f}–{loop[1]:.1f} s (L: off)" if loop else
                                f"Loop start marked at {self._loop_start:.1f} s (L again: end)"
                                if self._loop_start is not None else "")
        left_play = played.count(False)
        left_rate = sum(s is None for s in self.scores)
        if self.can_save:
            self.hint.setText("Every sample is played and rated. Press Enter to save this screen and go on.")
        else:
            parts = []
            if left_play:
                parts.append(f"play {left_play} more sample(s)")
            if left_rate:
                parts.append(f"rate {left_rate} more sample(s)")
            self.hint.setText("Before saving: " + " and ".join(parts) + ".")
        self.hint.setStyleSheet("color: #1b6e20;" if self.can_save else "color: #555;")
        self.next_button.setEnabled(self.can_save)
        view = self.view
        reason = player.silent_reason if view.open_audio else None
        if reason:
            self._message(f"{reason} Tell the researcher: the sounds cannot be heard on this computer.")

    # ------------------------------------------------------------------ actions
    def select(self, i: int) -> None:
        """Switch to sample ``i`` (0-based) at the same position and make it the one the arrows change."""
        if self.trial is None or not 0 <= i < len(self.trial.items):
            return
        self.current = i
        self.view.player.select(i + 1)
        self.tick()

    def select_reference(self) -> None:
        if self.trial is not None:
            self.view.player.select(0)
        self.tick()

    def toggle_play(self) -> None:
        if self.trial is not None:
            self.view.player.toggle()
        self.tick()

    def set_score(self, i: int, value: int) -> None:
        """Give sample ``i`` the score ``value`` (clipped to 0..100)."""
        value = max(0, min(100, int(value)))
        self.scores[i] = value
        slider = self.sliders[i]
        slider.blockSignals(True)
        slider.setValue(value)
        slider.blockSignals(False)
        self._show_value(i)
        self.tick()

    def _show_value(self, i: int) -> None:
        from mosapp.study.mushra import band_label

        v = self.scores[i]
        self.value_labels[i].setText("—" if v is None else f"{v}\n{band_label(v, self.view.definition.labels)}")

    def _slider_moved(self, i: int, value: int) -> None:
        self.scores[i] = int(value)
        self.current = i
        self._show_value(i)
        self.tick()

    def step(self, delta: int) -> None:
        if self.trial is None:
            return
        now = self.scores[self.current]
        self.set_score(self.current, (START_SCORE if now is None else now) + delta)

    def loop_key(self) -> None:
        """L: mark the loop's start, then its end (looping), then clear it."""
        player = self.view.player
        if self.trial is None:
            return
        if player.loop is not None:
            player.clear_loop()
            self._loop_start = None
        elif self._loop_start is None:
            self._loop_start = player.position_s
        else:
            a, b = sorted((self._loop_start, player.position_s))
            if b - a < 0.2:  # too short to hear: start over
                self._loop_start = player.position_s
            else:
                try:
                    player.set_loop(a, b)
                except Exception:  # noqa: BLE001 - a ConfigError: keep the mark, say nothing alarming
                    pass
                self._loop_start = None
        self.tick()

    def rewind(self) -> None:
        player = self.view.player
        if self.trial is not None:
            player.seek(player.loop[0] if player.loop else 0.0)
        self.tick()

    def _seek_released(self) -> None:
        player = self.view.player
        if self.trial is not None:
            player.seek(self.position_slider.value() / 1000 * player.duration_s)
        self.tick()

    def submit(self) -> bool:
        """Save the whole screen (one transaction) and go on; False when it cannot be saved yet."""
        view = self.view
        if not self.can_save:
            self.tick()
            return False
        player = view.player
        counts, listened = player.play_counts, player.listened_s
        n = len(self.trial.items)
        trial = self.trial
        try:
            view.session.rate(trial, list(self.scores), plays=[counts[i + 1] for i in range(n)],
                              reference_plays=counts[0],
                              listening_time_s=[x if math.isfinite(x) else 0.0 for x in listened[1:]],
                              response_time_s=max(0.0, time.monotonic() - self._started))
        except StudyError as exc:
            self._message(f"This screen was not saved: {exc} Press Enter to try again.")
            return False
        self.trial = None
        view._saved(trial, n)
        return True

    # ------------------------------------------------------------------ keys
    def handle_key(self, event: QKeyEvent) -> bool:
        key = event.key()
        repeat = event.isAutoRepeat()
        n = len(self.trial.items) if self.trial is not None else 0
        if key == Qt.Key_Space:
            if not repeat:
                self.toggle_play()
        elif key == Qt.Key_R:
            self.select_reference()
        elif key in _DIGITS:
            if _DIGITS[key] < n:
                self.select(_DIGITS[key])
        elif key == Qt.Key_Left and n:
            self.select((self.current - 1) % n)
        elif key == Qt.Key_Right and n:
            self.select((self.current + 1) % n)
        elif key in (Qt.Key_Up, Qt.Key_Down, Qt.Key_PageUp, Qt.Key_PageDown):
            self.step({Qt.Key_Up: 1, Qt.Key_Down: -1, Qt.Key_PageUp: 10, Qt.Key_PageDown: -10}[key])
        elif key == Qt.Key_L:
            if not repeat:
                self.loop_key()
        elif key == Qt.Key_Home:
            self.rewind()
        elif key in _ENTER_KEYS:
            if not repeat:
                self.submit()
        else:
            return False
        return True


__all__ = ["MIN_PLAYED_S", "MushraPanel", "START_SCORE"]
