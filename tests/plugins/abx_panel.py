"""ABX's panel for the Listen view: the worked example of docs/architecture.md ("Adding a test type").

Keys: **A**, **B**, **X** the three sounds, **Space** play / pause, **Home** back to the start,
**1** X is A, **2** X is B, **Enter** save and go on. The answers wait until A, B and X were
each heard to the end once. In the repository this module would be
``mosapp/gui/listen_panels/abx.py``, found and registered there like the type's module.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent

from mosapp.gui.listen_panels import register_panel
from mosapp.gui.trial_widgets import (
    ENTER_KEYS,
    TrialPanel,
    add_score_buttons,
    add_transport,
    choose_score,
    clear_choice,
    dispatch_key,
    show_transport,
    submit_score,
)
from mosapp.gui.trial_widgets import label as _label
from mosapp.study.listening import Playback
from mosapp.study.sitting import Progress
from tests.plugins.abx import AbxTrial

NAMES = ("A", "B", "X")


class AbxPanel(TrialPanel):
    PRACTICE_TEXT = "Practice: get used to the sounds. It counts for nothing."

    def __init__(self, view: Any) -> None:
        super().__init__(view, "abxPanel", spacing=12)
        self.trial: AbxTrial | None = None
        self.score: int | None = None
        self.sound_buttons = add_transport(self, self.box, [(f"{n}  ({n})", partial(self.select, i))
                                                             for i, n in enumerate(NAMES)])
        self.hint = _label("")
        self.box.addWidget(self.hint)
        self.score_group, self.score_buttons = add_score_buttons(self, self.box, (1, 2), self.choose)
        self._add_save_row()

    def keys_text(self) -> str:
        return "Keys — A, B, X: the sounds · Space: play / pause · 1: X is A · 2: X is B · Enter: save and go on."

    def show_trial(self, trial: AbxTrial, progress: Progress) -> None:
        self.trial, self.score = trial, None
        self.show_header(trial, progress)
        for value, b in self.score_buttons.items():
            b.setText(f"{value}    {self.view.definition.labels[value - 1]}")
        clear_choice(self.score_group, self.score_buttons)

    @property
    def can_rate(self) -> bool:
        player = self.view.player
        return (self.trial is not None and player is not None and not self.view.busy
                and self.view.controller.ready(Playback.of(player)))

    def tick(self) -> None:
        player = self.view.player
        if player is None or self.trial is None:
            return
        show_transport(self, player)
        for i, b in enumerate(self.sound_buttons):
            b.setChecked(player.selected == i)
        ready = self.can_rate
        for b in self.score_buttons.values():
            b.setEnabled(ready)
        self.next_button.setEnabled(ready and self.score is not None)
        left = [n for n, heard in zip(NAMES, player.heard_to_end) if not heard]
        self.hint.setText("Is X A (1) or B (2)? Then press Enter." if ready else
                          f"Listen to {', '.join(left)} to the end first." if left else "Saving your answer…")

    def select(self, i: int) -> None:
        if self.trial is not None:
            self.view.player.select(i)
        self.tick()

    def choose(self, value: int) -> bool:
        return choose_score(self, value)

    def submit(self) -> bool:
        return submit_score(self, self.view.rate)

    def handle_key(self, event: QKeyEvent) -> bool:
        actions: dict[Qt.Key, Callable[[], object]] = {
            Qt.Key.Key_A: partial(self.select, 0), Qt.Key.Key_B: partial(self.select, 1),
            Qt.Key.Key_X: partial(self.select, 2), Qt.Key.Key_Space: self.toggle_play, Qt.Key.Key_Home: self.rewind,
            Qt.Key.Key_1: partial(self.choose, 1), Qt.Key.Key_2: partial(self.choose, 2),
        }
        actions.update(dict.fromkeys(ENTER_KEYS, self.submit))
        return dispatch_key(event, actions)


register_panel("abx", AbxPanel)
