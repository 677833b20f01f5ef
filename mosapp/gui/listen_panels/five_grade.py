"""The DCR / ACR trial of the Listen view (ITU-T P.800): the reference (DCR) and the sample, scored 1..5.

Keys (also shown on the screen): **Space** play / pause, **R** the reference (DCR), **A** the
sample, **1–5** the score, **Enter** save and go on, **Home** back to the start. The score buttons
stay disabled until the sample has been heard to its end once (the view's
``require_full_listen``). With the study's ``reference_first`` (P.800's order) the sample is
offered only once the reference has played to its end, and then plays by itself.
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
    silent_text,
    submit_score,
)
from mosapp.gui.trial_widgets import label as _label
from mosapp.study.listening import Playback, streams
from mosapp.study.sitting import Progress
from mosapp.study.types.five_grade import FiveGradeType, Trial

_SCORE_KEYS = {Qt.Key.Key_1: 1, Qt.Key.Key_2: 2, Qt.Key.Key_3: 3, Qt.Key.Key_4: 4, Qt.Key.Key_5: 5}


class FiveGradePanel(TrialPanel):
    """One DCR or ACR trial; the :class:`~mosapp.gui.listen_view.ListenView` shows it and drives the session."""

    PRACTICE_TEXT = "Practice trial: get used to the sounds and the scale. It counts for nothing."

    def __init__(self, view: Any) -> None:
        super().__init__(view, "fiveGradePanel", spacing=12)
        self.trial: Trial | None = None
        self.score: int | None = None
        self._sample_index = 0
        self._reference_index: int | None = None
        self._build()

    def _build(self) -> None:
        box = self.box
        self.reference_button, self.sample_button = add_transport(
            self, box, [("Reference  (R)", self.select_reference), ("Sample  (A)", self.select_sample)])
        self.listen_hint = _label("")
        box.addWidget(self.listen_hint)
        self.silent_label = _label("", "listenWarning")
        self.silent_label.hide()
        box.addWidget(self.silent_label)
        self.question_label = _label("", "listenHeading")
        box.addWidget(self.question_label)
        self.score_group, self.score_buttons = add_score_buttons(self, box, (5, 4, 3, 2, 1), self.choose_score)
        self._add_save_row()

    def keys_text(self) -> str:
        d = self.view.definition
        dcr = d is not None and isinstance(d.kind, FiveGradeType) and d.kind.with_reference
        parts = ["Space: play / pause"]
        if dcr:
            parts.append("R: reference")
        if dcr and d is not None and d.reference_first:
            parts.append("(the reference plays first, then the sample)")
        parts += ["A: sample", "1–5: your rating", "Enter: save and go on"]
        return "Keys — " + " · ".join(parts) + "."

    # ------------------------------------------------------------------ a trial
    def show_trial(self, trial: Trial, progress: Progress) -> None:
        self.trial = trial
        self.score = None
        s = streams(trial)
        dcr = s.reference is not None
        self._reference_index, self._sample_index = s.reference, s.samples[0]
        self.show_header(trial, progress)
        self.reference_button.setVisible(dcr)
        self.question_label.setText("How much is the sample degraded compared with the reference?" if dcr
                                    else "How good is the quality of the sample?")
        labels = self.view.definition.labels
        for score, b in self.score_buttons.items():
            b.setText(f"{score}    {labels[score - 1]}")
        clear_choice(self.score_group, self.score_buttons)
        self.keys_label.setText(self.keys_text())

    @property
    def can_rate(self) -> bool:
        """The rating keys work: a trial is shown, nothing is being saved, and (when required) the
        sample was heard to its end."""
        player = self.view.player
        if self.trial is None or player is None or self.view.busy:
            return False
        return bool(self.view.controller.ready(Playback.of(player)))

    def _needs_reference(self) -> bool:
        player = self.view.player
        return player is not None and self.view.controller.needs_reference(Playback.of(player))

    def tick(self) -> None:
        """Bring the trial up to date with the player (the view's timer calls this while a trial is shown)."""
        player = self.view.player
        if player is None or self.trial is None:
            return
        follow = self.view.controller.follow_on(Playback.of(player), playing=player.playing)
        if follow is not None:  # the reference has played to its end: the sample follows, as P.800 presents the pair
            player.select(follow)
            player.seek(0.0)
            player.play()
        show_transport(self, player)
        self.reference_button.setChecked(player.selected == self._reference_index)
        self.sample_button.setChecked(player.selected == self._sample_index)
        ready = self.can_rate
        for b in self.score_buttons.values():
            b.setEnabled(ready)
        self.next_button.setEnabled(ready and self.score is not None)
        self.listen_hint.setText(self._hint(ready))
        self.listen_hint.setStyleSheet("color: #1b6e20;" if ready else "color: #555;")
        reason = player.silent_reason if self.view.open_audio else None
        self.silent_label.setVisible(bool(reason))
        if reason:
            self.silent_label.setText(silent_text(reason))

    def _hint(self, ready: bool) -> str:
        if self.view.busy:
            return "Saving your rating…"
        if ready:
            return ("Choose your rating (1–5), then press Enter." if self.score is None
                    else f"Your rating: {self.score}. Press Enter to save it and go on, or choose another.")
        if self._needs_reference():
            return "Listen to the reference first (press Space); the sample follows it."
        if self._reference_index is not None:
            return "Listen to the sample to its end (press A, then Space) before you rate it."
        return "Listen to the sample to its end (press Space) before you rate it."

    # ------------------------------------------------------------------ actions
    def select_reference(self) -> None:
        if self.trial is not None and self._reference_index is not None:
            self.view.player.select(self._reference_index)
        self.tick()

    def select_sample(self) -> None:
        if self.trial is not None and not self._needs_reference():  # P.800 order: the reference first
            self.view.player.select(self._sample_index)
        self.tick()

    def choose_score(self, score: int) -> bool:
        """Select ``score`` (1..5) for the shown trial; False (nothing changes) before the sample was heard."""
        return choose_score(self, score)

    def submit(self) -> bool:
        """Save the chosen score (committed before the next trial appears); False when nothing is being saved."""
        return submit_score(self, self.view.rate)

    def handle_key(self, event: QKeyEvent) -> bool:
        actions: dict[Qt.Key, Callable[[], object]] = {
            Qt.Key.Key_Space: self.toggle_play, Qt.Key.Key_R: self.select_reference,
            Qt.Key.Key_A: self.select_sample, Qt.Key.Key_Home: self.rewind,
        }
        actions.update({k: partial(self.choose_score, s) for k, s in _SCORE_KEYS.items()})
        actions.update(dict.fromkeys(ENTER_KEYS, self.submit))
        return dispatch_key(event, actions)


register_panel("dcr", FiveGradePanel)
register_panel("acr", FiveGradePanel)

__all__ = ["FiveGradePanel"]
