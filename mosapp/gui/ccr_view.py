"""The CCR pair of the Listen view (ITU-T P.800 Annex E): samples A and B, B rated against A, -3..+3.

Keys (also shown on the screen): **A** the first sample, **B** the second (switching keeps the
position, click-free), **Space** play / pause, **Home** back to the start, **1–7** the score
(1 = -3 Much worse … 4 = 0 About the same … 7 = +3 Much better), **↑/↓** a better / worse score,
**Enter** save and go on. Both samples must be heard to their end once before the pair can be
rated (``require_full_listen`` of the view). Nothing on the screen says which sample is the
reference: the order is random and balanced (:mod:`mosapp.study.ccr`).
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QSizePolicy, QVBoxLayout, QWidget

from mosapp.gui.trial_widgets import add_position_row, add_trial_header
from mosapp.gui.trial_widgets import button as _button
from mosapp.gui.trial_widgets import label as _label
from mosapp.study.errors import StudyError

_SCORE_KEYS = {getattr(Qt, f"Key_{k}"): k - 4 for k in range(1, 8)}  # 1..7 -> -3..+3
_ENTER_KEYS = (Qt.Key_Return, Qt.Key_Enter)


class CcrPanel(QWidget):
    """One CCR pair; the :class:`~mosapp.gui.listen_view.ListenView` shows it and drives the session."""

    def __init__(self, view) -> None:
        super().__init__()
        self.view = view
        self.setObjectName("ccrPanel")
        self.setFocusPolicy(Qt.NoFocus)
        self.trial = None
        self.score: int | None = None
        self._build()

    def _build(self) -> None:
        box = QVBoxLayout(self)
        box.setSpacing(12)
        add_trial_header(self, box, "Practice pair: get used to the sounds and the scale. It counts for nothing.")

        row = QHBoxLayout()
        row.addStretch(1)
        self.first_button = _button("A  (first)", "stimulusButton")
        self.first_button.setCheckable(True)
        self.first_button.clicked.connect(lambda: self.select(0))
        row.addWidget(self.first_button)
        self.second_button = _button("B  (second)", "stimulusButton")
        self.second_button.setCheckable(True)
        self.second_button.clicked.connect(lambda: self.select(1))
        row.addWidget(self.second_button)
        self.play_button = _button("▶  Play  (Space)", "playButton")
        self.play_button.clicked.connect(self.toggle_play)
        row.addWidget(self.play_button)
        row.addStretch(1)
        box.addLayout(row)

        add_position_row(self, box, self._seek_released)
        self.hint = _label("")
        box.addWidget(self.hint)

        self.question_label = _label("The quality of B compared with the quality of A is:", "listenHeading")
        box.addWidget(self.question_label)
        self.score_group = QButtonGroup(self)
        self.score_group.setExclusive(True)
        self.score_buttons = {}
        scores = QVBoxLayout()
        scores.setSpacing(4)
        for value in (3, 2, 1, 0, -1, -2, -3):
            b = _button("", "scoreButton")
            b.setCheckable(True)
            b.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
            b.clicked.connect(lambda _=False, v=value: self.choose(v))
            self.score_group.addButton(b, value + 3)
            self.score_buttons[value] = b
            scores.addWidget(b)
        box.addLayout(scores)
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
        return ("Keys — Space: play / pause · A: first sample · B: second sample · Home: to the start · "
                "1–7: your rating (1 = much worse … 4 = about the same … 7 = much better) · ↑/↓: better / worse · "
                "Enter: save and go on.")

    # ------------------------------------------------------------------ a pair
    def show_trial(self, trial) -> None:
        view = self.view
        self.trial = trial
        self.score = None
        view.player.load([trial.first, trial.second], names=["A", "B"])
        view.player.select(0)
        self._started = time.monotonic()
        if trial.is_training:
            self.trial_label.setText(f"Practice pair {trial.index + 1} of {view.session.progress.training_total}")
        else:
            p = view.session.progress
            self.trial_label.setText(f"Pair {p.rated + 1} of {p.total}")
        self.progress_label.setText(f"{trial.index} of {trial.total} done")
        self.progress_bar.setRange(0, trial.total)
        self.progress_bar.setValue(trial.index)
        self.practice_label.setVisible(trial.is_training)
        labels = view.definition.labels
        for value, b in self.score_buttons.items():
            b.setText((f"{value:+d}    {labels[value + 3]}" if value else f" 0    {labels[3]}")
                      + f"    (key {value + 4})")
        self.score_group.setExclusive(False)
        for b in self.score_buttons.values():
            b.setChecked(False)
        self.score_group.setExclusive(True)
        self._message("")

    def _message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    @property
    def can_rate(self) -> bool:
        player = self.view.player
        if self.trial is None or player is None:
            return False
        return not self.view.require_full_listen or all(player.heard_to_end[:2])

    def tick(self) -> None:
        player = self.view.player
        if player is None or self.trial is None:
            return
        pos, total = player.position_s, player.duration_s
        if not self.position_slider.isSliderDown():
            self.position_slider.setValue(int(round(1000 * pos / total)) if total > 0 else 0)
        self.time_label.setText(f"{pos:.1f} / {total:.1f} s")
        self.play_button.setText("❚❚  Pause  (Space)" if player.playing else "▶  Play  (Space)")
        self.first_button.setChecked(player.selected == 0)
        self.second_button.setChecked(player.selected == 1)
        ready = self.can_rate
        for b in self.score_buttons.values():
            b.setEnabled(ready)
        self.next_button.setEnabled(ready and self.score is not None)
        if ready:
            self.hint.setText("Choose your rating (1–7), then press Enter." if self.score is None else
                              f"Your rating: {self.score:+d} ({self.view.definition.labels[self.score + 3]}). "
                              f"Press Enter to save it and go on, or choose another.")
        else:
            ends = player.heard_to_end
            left = [n for n, done in zip(("A", "B"), ends[:2]) if not done]
            self.hint.setText(f"Listen to {' and '.join(left)} to the end (A / B, then Space) before you rate.")
        self.hint.setStyleSheet("color: #1b6e20;" if ready else "color: #555;")
        reason = player.silent_reason if self.view.open_audio else None
        if reason:
            self._message(f"{reason} Tell the researcher: the sounds cannot be heard on this computer.")

    # ------------------------------------------------------------------ actions
    def select(self, i: int) -> None:
        if self.trial is not None:
            self.view.player.select(i)
        self.tick()

    def toggle_play(self) -> None:
        if self.trial is not None:
            self.view.player.toggle()
        self.tick()

    def rewind(self) -> None:
        if self.trial is not None:
            self.view.player.seek(0.0)
        self.tick()

    def _seek_released(self) -> None:
        player = self.view.player
        if self.trial is not None:
            player.seek(self.position_slider.value() / 1000 * player.duration_s)
        self.tick()

    def choose(self, value: int) -> bool:
        """Select the score ``value`` (-3..+3); False before both samples were heard."""
        if not self.can_rate or value not in self.score_buttons:
            self.tick()
            return False
        self.score = value
        self.score_buttons[value].setChecked(True)
        self.tick()
        return True

    def submit(self) -> bool:
        view = self.view
        if self.trial is None or self.score is None or not self.can_rate:
            return False
        player = view.player
        counts, listened = player.play_counts, float(sum(player.listened_s))
        trial, score = self.trial, self.score
        try:
            view.session.rate(trial, score, play_counts=(counts[0], counts[1]),
                              listening_time_s=listened if math.isfinite(listened) else 0.0,
                              response_time_s=max(0.0, time.monotonic() - self._started))
        except StudyError as exc:
            self._message(f"Your rating was not saved: {exc} Press Enter to try again.")
            return False
        self.trial = None
        view._saved(trial, score)
        return True

    def handle_key(self, event: QKeyEvent) -> bool:
        key = event.key()
        repeat = event.isAutoRepeat()
        if key == Qt.Key_Space:
            if not repeat:
                self.toggle_play()
        elif key == Qt.Key_A:
            self.select(0)
        elif key == Qt.Key_B:
            self.select(1)
        elif key == Qt.Key_Home:
            self.rewind()
        elif key in _SCORE_KEYS:
            self.choose(_SCORE_KEYS[key])
        elif key in (Qt.Key_Up, Qt.Key_Down):
            base = 0 if self.score is None else self.score + (1 if key == Qt.Key_Up else -1)
            self.choose(max(-3, min(3, base)))
        elif key in _ENTER_KEYS:
            if not repeat:
                self.submit()
        else:
            return False
        return True


__all__ = ["CcrPanel"]
