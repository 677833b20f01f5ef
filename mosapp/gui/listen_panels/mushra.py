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
a shorter one) and has a score. Under each sample the screen says how much of it was heard and
how much counts ("0.7 of 1 s heard"), and an unrated slider shows no handle (only a dashed
outline at the middle) until the listener sets it. The sliders carry BS.1534's five labelled bands (the study's
``labels``). Nothing on the screen names a condition: samples are numbered in the screen's
random order.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from mosapp.core.errors import ConfigError
from mosapp.gui.listen_panels import register_panel
from mosapp.gui.trial_widgets import (
    TrialPanel,
    add_transport,
    dispatch_key,
    show_transport,
    silent_text,
)
from mosapp.gui.trial_widgets import button as _button
from mosapp.gui.trial_widgets import label as _label
from mosapp.study.listening import Playback
from mosapp.study.sitting import Progress
from mosapp.study.types.mushra import MIN_PLAYED_S, MushraTrial, band_label, mushra_played, needed_s

#: Where the first arrow key puts an unrated slider.
START_SCORE = 50
#: A slider without a score: a dashed, empty handle (it sits at START_SCORE but means nothing yet).
UNRATED_STYLE = ("QSlider::groove:vertical { background: #d9d9d9; width: 6px; border-radius: 3px; }"
                 "QSlider::handle:vertical { background: transparent; border: 1px dashed #9a9a9a; height: 12px;"
                 " margin: 0 -9px; border-radius: 3px; }")
#: A slider with a score: a solid handle.
RATED_STYLE = ("QSlider::groove:vertical { background: #d9d9d9; width: 6px; border-radius: 3px; }"
               "QSlider::handle:vertical { background: #2e6bd1; border: 1px solid #1d4a94; height: 12px;"
               " margin: 0 -9px; border-radius: 3px; }")


def played_text(listened_s: float, needed_s: float, played: bool) -> str:
    """Under a sample: "played", "not played (1 s needed)", or "0.7 of 1 s heard" (why it does not count yet)."""
    if played:
        return "played"
    if listened_s < 0.05:
        return f"not played ({needed_s:g} s needed)"
    return f"{listened_s:.1f} of {needed_s:g} s heard"
_DIGITS = {Qt.Key(Qt.Key.Key_0 + d): (d - 1 if d else 9) for d in range(10)}


class MushraPanel(TrialPanel):
    """One MUSHRA screen; the :class:`~mosapp.gui.listen_view.ListenView` shows it and drives the session."""

    SLIDER_HEIGHT = 300
    WHAT = "This screen"
    PRACTICE_TEXT = "Practice screen: get used to the sounds and the scale. It counts for nothing."

    def __init__(self, view: Any) -> None:
        super().__init__(view, "mushraPanel", spacing=10)
        self.trial: MushraTrial | None = None
        self.scores: list[int | None] = []
        self.current = 0  # the selected sample (0-based), what the arrows change
        self._loop_start: float | None = None
        self._build()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        box = self.box

        self.loop_button = _button("Loop  (L)")
        self.loop_button.clicked.connect(self.loop_key)
        self.reference_button, = add_transport(self, box, [("Reference  (R)", self.select_reference)], centred=False,
                                               extra=[self.loop_button])
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
        self.sample_buttons: list[QPushButton] = []
        self.played_labels: list[QLabel] = []
        self.band_labels: list[QLabel] = []

        self._add_hint()
        self._add_save_row()

    def keys_text(self) -> str:
        return ("Keys — Space: play / pause · R: reference · 1–9, 0: sample 1–10 · ←/→: previous / next sample · "
                "↑/↓: score ±1 · PgUp/PgDn: ±10 · L: loop start / end / off · Home: to the start · "
                "Enter: save and go on.")

    def _rebuild_grid(self, n: int, labels: tuple[str, ...]) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            w = item.widget() if item is not None else None
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
            lab.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            lab.setFrameShape(QFrame.Shape.StyledPanel if k % 2 == 0 else QFrame.Shape.NoFrame)
            lab.setMinimumHeight(self.SLIDER_HEIGHT // 5)
            scale.addWidget(lab, 1)
            self.band_labels.append(lab)
        scale_widget.setFixedHeight(self.SLIDER_HEIGHT)
        self.grid.addWidget(scale_widget, 1, 0)
        for i in range(n):
            value = _label("—", wrap=False)
            value.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.grid.addWidget(value, 0, i + 1)
            slider = QSlider(Qt.Orientation.Vertical)
            slider.setRange(0, 100)
            slider.setValue(START_SCORE)
            slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            slider.setFixedHeight(self.SLIDER_HEIGHT)
            slider.setTickPosition(QSlider.TickPosition.TicksBothSides)
            slider.setTickInterval(20)
            slider.setProperty("rated", False)
            slider.setStyleSheet(UNRATED_STYLE)
            slider.valueChanged.connect(lambda v, i=i: self._slider_moved(i, v))
            self.grid.addWidget(slider, 1, i + 1, alignment=Qt.AlignmentFlag.AlignHCenter)
            button = _button(f"{i + 1 if i < 9 else 0}", "stimulusButton")
            button.setCheckable(True)
            button.setMinimumWidth(64)
            button.setStyleSheet("min-width: 56px; padding: 10px 8px;")
            button.clicked.connect(lambda _=False, i=i: self.select(i))
            self.grid.addWidget(button, 2, i + 1)
            played = _label("not played", "listenHint", wrap=False)
            played.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.grid.addWidget(played, 3, i + 1)
            self.sliders.append(slider)
            self.value_labels.append(value)
            self.sample_buttons.append(button)
            self.played_labels.append(played)

    # ------------------------------------------------------------------ a screen
    def show_trial(self, trial: MushraTrial, progress: Progress) -> None:
        """Show ``trial`` (the view has loaded its streams into the player)."""
        self.trial = trial
        n = len(trial.items)
        self.scores = [None] * n
        self.current = 0
        self._loop_start = None
        self._rebuild_grid(n, self.view.definition.labels)
        self.show_header(trial, progress)
        self.grid.activate()
        layout = self.layout()
        if layout is not None:
            layout.activate()

    @property
    def played(self) -> list[bool]:
        """Per sample: played for at least MIN_PLAYED_S (or to its end)."""
        player = self.view.player
        if self.trial is None or player is None:
            return []
        return mushra_played(self.trial, Playback.of(player))

    @property
    def can_save(self) -> bool:
        return (self.trial is not None and not self.view.busy and all(self.played)
                and all(s is not None for s in self.scores))

    @property
    def can_rate(self) -> bool:
        """The screen can be saved: every sample played, and scored."""
        return self.can_save

    def tick(self) -> None:
        player = self.view.player
        if player is None or self.trial is None:
            return
        show_transport(self, player)
        sel = player.selected
        self.reference_button.setChecked(sel == 0)
        played = self.played
        listened = player.listened_s
        needed = [needed_s(d) for d in player.durations_s[1:]]
        for i, b in enumerate(self.sample_buttons):
            b.setChecked(sel == i + 1)
            b.setStyleSheet("min-width: 56px; padding: 10px 8px;" + (" border: 2px solid #2e6bd1;"
                                                                      if i == self.current else ""))
            self.played_labels[i].setText(played_text(listened[i + 1], needed[i], played[i]))
            self.played_labels[i].setStyleSheet("color: #1b6e20;" if played[i] else "color: #8a5300;")
        loop = player.loop
        self.loop_label.setText(f"Loop {loop[0]:.1f}–{loop[1]:.1f} s (L: off)" if loop else
                                f"Loop start marked at {self._loop_start:.1f} s (L again: end)"
                                if self._loop_start is not None else "")
        left_play = played.count(False)
        left_rate = sum(s is None for s in self.scores)
        if self.view.busy:
            self.hint.setText("Saving this screen…")
        elif self.can_save:
            self.hint.setText("Every sample is played and rated. Press Enter to save this screen and go on.")
        else:
            parts = []
            if left_play:
                parts.append(f"play {left_play} more sample(s) for at least {MIN_PLAYED_S:g} s each")
            if left_rate:
                parts.append(f"rate {left_rate} more sample(s)")
            self.hint.setText("Before saving: " + " and ".join(parts) + ".")
        self.hint.setStyleSheet("color: #1b6e20;" if self.can_save else "color: #555;")
        self.next_button.setEnabled(self.can_save)
        reason = player.silent_reason if self.view.open_audio else None
        if reason:
            self._message(silent_text(reason))

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
        v = self.scores[i]
        self.value_labels[i].setText("—" if v is None else f"{v}\n{band_label(v, self.view.definition.labels)}")
        slider = self.sliders[i]
        if slider.property("rated") != (v is not None):
            slider.setProperty("rated", v is not None)
            slider.setStyleSheet(UNRATED_STYLE if v is None else RATED_STYLE)

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
                except ConfigError:  # keep the mark, say nothing alarming
                    pass
                self._loop_start = None
        self.tick()

    def rewind(self) -> None:
        player = self.view.player
        if self.trial is not None:
            player.seek(player.loop[0] if player.loop else 0.0)
        self.tick()

    def submit(self) -> bool:
        """Save the whole screen (one transaction, in the background) and go on; False when it cannot be saved yet."""
        if not self.can_save:
            self.tick()
            return False
        return bool(self.view.rate([int(s) for s in self.scores if s is not None]))

    # ------------------------------------------------------------------ keys
    def handle_key(self, event: QKeyEvent) -> bool:
        n = len(self.trial.items) if self.trial is not None else 0
        actions: dict[Qt.Key, Callable[[], object]] = {
            Qt.Key.Key_Space: self.toggle_play, Qt.Key.Key_R: self.select_reference, Qt.Key.Key_L: self.loop_key,
            Qt.Key.Key_Home: self.rewind, Qt.Key.Key_Return: self.submit, Qt.Key.Key_Enter: self.submit,
            Qt.Key.Key_Up: lambda: self.step(1), Qt.Key.Key_Down: lambda: self.step(-1),
            Qt.Key.Key_PageUp: lambda: self.step(10), Qt.Key.Key_PageDown: lambda: self.step(-10),
        }
        # 1-9, 0: samples 1-10 (select ignores a digit beyond this screen's samples).
        actions.update({k: partial(self.select, i) for k, i in _DIGITS.items()})
        if n:
            actions[Qt.Key.Key_Left] = lambda: self.select((self.current - 1) % n)
            actions[Qt.Key.Key_Right] = lambda: self.select((self.current + 1) % n)
        return dispatch_key(event, actions)


register_panel("mushra", MushraPanel)

__all__ = ["MIN_PLAYED_S", "MushraPanel", "RATED_STYLE", "START_SCORE", "UNRATED_STYLE", "played_text"]
