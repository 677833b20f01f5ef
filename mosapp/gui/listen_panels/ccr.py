"""The CCR pair of the Listen view (ITU-T P.800 Annex E): samples A and B, B rated against A, -3..+3.

Keys (also shown on the screen): **A** the first sample, **B** the second (switching keeps the
position, click-free), **Space** play / pause, **Home** back to the start, **1–7** the score
(1 = -3 Much worse … 4 = 0 About the same … 7 = +3 Much better), **↑/↓** a better / worse score,
**Enter** save and go on. Both samples must be heard to their end once before the pair can be
rated (``require_full_listen`` of the view). Nothing on the screen says which sample is the
reference: the order is random and balanced (:mod:`mosapp.study.types.ccr`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent

from mosapp.gui.listen_panels import register_panel
from mosapp.gui.trial_widgets import (
    TrialPanel,
    add_score_buttons,
    add_transport,
    choose_score,
    clear_choice,
    dispatch_key,
    show_transport,
    silent_text,
    submit_score,
)
from mosapp.gui.trial_widgets import label as _label
from mosapp.study.listening import Playback
from mosapp.study.sitting import Progress
from mosapp.study.types.ccr import CcrTrial

_SCORE_KEYS = {Qt.Key(Qt.Key.Key_0 + k): k - 4 for k in range(1, 8)}  # 1..7 -> -3..+3


class CcrPanel(TrialPanel):
    """One CCR pair; the :class:`~mosapp.gui.listen_view.ListenView` shows it and drives the session."""

    PRACTICE_TEXT = "Practice pair: get used to the sounds and the scale. It counts for nothing."

    def __init__(self, view: Any) -> None:
        super().__init__(view, "ccrPanel", spacing=12)
        self.trial: CcrTrial | None = None
        self.score: int | None = None
        self._build()

    def _build(self) -> None:
        box = self.box

        self.first_button, self.second_button = add_transport(
            self, box, [("A  (first)", lambda: self.select(0)), ("B  (second)", lambda: self.select(1))])
        self._add_hint()
        self.question_label = _label("The quality of B compared with the quality of A is:", "listenHeading")
        box.addWidget(self.question_label)
        self.score_group, self.score_buttons = add_score_buttons(self, box, (3, 2, 1, 0, -1, -2, -3), self.choose)
        self._add_save_row()

    def keys_text(self) -> str:
        return ("Keys — Space: play / pause · A: first sample · B: second sample · Home: to the start · "
                "1–7: your rating (1 = much worse … 4 = about the same … 7 = much better) · ↑/↓: better / worse · "
                "Enter: save and go on.")

    # ------------------------------------------------------------------ a pair
    def show_trial(self, trial: CcrTrial, progress: Progress) -> None:
        """Show ``trial`` (the view has loaded A and B into the player)."""
        self.trial = trial
        self.score = None
        self.show_header(trial, progress)
        labels = self.view.definition.labels
        for value, b in self.score_buttons.items():
            b.setText((f"{value:+d}    {labels[value + 3]}" if value else f" 0    {labels[3]}")
                      + f"    (key {value + 4})")
        clear_choice(self.score_group, self.score_buttons)

    @property
    def can_rate(self) -> bool:
        player = self.view.player
        if self.trial is None or player is None or self.view.busy:
            return False
        return bool(self.view.controller.ready(Playback.of(player)))

    def tick(self) -> None:
        player = self.view.player
        if player is None or self.trial is None:
            return
        show_transport(self, player)
        self.first_button.setChecked(player.selected == 0)
        self.second_button.setChecked(player.selected == 1)
        ready = self.can_rate
        for b in self.score_buttons.values():
            b.setEnabled(ready)
        self.next_button.setEnabled(ready and self.score is not None)
        if self.view.busy:
            self.hint.setText("Saving your rating…")
        elif ready:
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
            self._message(silent_text(reason))

    # ------------------------------------------------------------------ actions
    def select(self, i: int) -> None:
        if self.trial is not None:
            self.view.player.select(i)
        self.tick()

    def choose(self, value: int) -> bool:
        """Select the score ``value`` (-3..+3); False before both samples were heard."""
        return choose_score(self, value)

    def submit(self) -> bool:
        """Save the pair's score (in the background) and go on; False when nothing is being saved."""
        return submit_score(self, self.view.rate)

    def handle_key(self, event: QKeyEvent) -> bool:
        actions: dict[Qt.Key, Callable[[], object]] = {
            Qt.Key.Key_Space: self.toggle_play, Qt.Key.Key_A: lambda: self.select(0),
            Qt.Key.Key_B: lambda: self.select(1), Qt.Key.Key_Home: self.rewind,
            Qt.Key.Key_Up: lambda: self._step(1), Qt.Key.Key_Down: lambda: self._step(-1),
            Qt.Key.Key_Return: self.submit, Qt.Key.Key_Enter: self.submit,
        }
        actions.update({k: partial(self.choose, v) for k, v in _SCORE_KEYS.items()})
        return dispatch_key(event, actions)

    def _step(self, delta: int) -> None:
        """↑/↓: a better / worse score (the first press picks 0, about the same)."""
        base = 0 if self.score is None else self.score + delta
        self.choose(max(-3, min(3, base)))


register_panel("ccr", CcrPanel)

__all__ = ["CcrPanel"]
