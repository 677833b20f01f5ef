"""The widgets every listening-trial screen shares (DCR/ACR, MUSHRA, CCR): labels, focus-less
buttons, the heading with progress, the playback position row, the score buttons, the save row,
and what each screen's timer shows of the player."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from mosapp.study.listening import AnyTrial, heading
from mosapp.study.sitting import Progress


def label(text: str = "", name: str | None = None, *, wrap: bool = True) -> QLabel:
    """A plain-text label (never rich text: nothing a study file says is interpreted)."""
    widget = QLabel(text)
    widget.setWordWrap(wrap)
    widget.setTextFormat(Qt.TextFormat.PlainText)
    if name:
        widget.setObjectName(name)
    return widget


def button(text: str, name: str | None = None) -> QPushButton:
    """A button that never takes the focus: Space and Enter belong to the view's keyboard control."""
    widget = QPushButton(text)
    widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    if name:
        widget.setObjectName(name)
    return widget


def stimulus_button(text: str, on_click: Callable[[], object]) -> QPushButton:
    """A checkable button that selects a stimulus (checked while it is the one playing)."""
    widget = button(text, "stimulusButton")
    widget.setCheckable(True)
    widget.clicked.connect(lambda: on_click())
    return widget


def add_trial_header(owner: Any, box: QBoxLayout, practice_text: str) -> None:
    """Adds the trial heading, the progress text and bar, and the practice note to ``box``;
    sets ``owner.trial_label``, ``progress_label``, ``progress_bar`` and ``practice_label``."""
    head = QHBoxLayout()
    owner.trial_label = label("", "listenHeading", wrap=False)
    head.addWidget(owner.trial_label)
    head.addStretch(1)
    owner.progress_label = label("", "listenHint", wrap=False)
    head.addWidget(owner.progress_label)
    box.addLayout(head)
    owner.progress_bar = QProgressBar()
    owner.progress_bar.setTextVisible(False)
    owner.progress_bar.setMaximumHeight(10)
    box.addWidget(owner.progress_bar)
    owner.practice_label = label(practice_text, "listenHint")
    box.addWidget(owner.practice_label)


# One numbering everywhere a listener reads it (heading, progress, resume, break): practice
# trials are counted on their own ("Practice trial 2 of 3"), the trials that count on theirs
# ("Trial 5 of 15", "4 of 15 done"), the same after a resume.

def done_text(progress: Progress, noun: str = "trial") -> str:
    """"4 of 15 done" (the trials that count), or "practice: 1 of 3 done" while practising."""
    if progress.training_rated < progress.training_total:
        return f"practice: {progress.training_rated} of {progress.training_total} done"
    return f"{progress.rated} of {progress.total} done"


def resume_text(code: str, progress: Progress, noun: str = "trial") -> str:
    """The instructions page's greeting; a returning listener is told where they resume, numbered as the heading will be."""
    earlier = progress.next_index
    if not earlier:
        return f"Welcome, {code}."
    if progress.training_rated < progress.training_total:
        where = f"practice {noun} {progress.training_rated + 1} of {progress.training_total}"
    else:
        where = f"{noun} {progress.rated + 1} of {progress.total}"
    return f"Welcome back, {code}. Resuming at {where}: your {earlier} earlier answer(s) are saved."


def break_message(progress: Progress, noun: str = "trial") -> str:
    """The break page's sentence, numbered as the headings are."""
    return (f"You have done {progress.rated} of {progress.total} {noun}s. Rest your ears for a few minutes; your "
            f"answers are saved. Press Enter or Continue when you are ready.")


def show_trial_header(owner: Any, trial: AnyTrial, progress: Progress, noun: str) -> None:
    """Fills what :func:`add_trial_header` made for ``trial`` ("Practice screen 1 of 1", "Pair 3 of 12" …)."""
    owner.trial_label.setText(heading(trial, progress, noun))
    owner.progress_label.setText(done_text(progress, noun))
    if trial.is_training:
        owner.progress_bar.setRange(0, max(1, progress.training_total))
        owner.progress_bar.setValue(progress.training_rated)
    else:
        owner.progress_bar.setRange(0, max(1, progress.total))
        owner.progress_bar.setValue(progress.rated)
    owner.practice_label.setVisible(trial.is_training)


def add_position_row(owner: Any, box: QBoxLayout, on_released: Callable[[], None]) -> None:
    """Adds the playback position slider (0-1000) and its time read-out to ``box``; sets
    ``owner.position_slider`` and ``owner.time_label``; ``on_released`` seeks."""
    row = QHBoxLayout()
    owner.position_slider = QSlider(Qt.Orientation.Horizontal)
    owner.position_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    owner.position_slider.setRange(0, 1000)
    owner.position_slider.sliderReleased.connect(on_released)
    row.addWidget(owner.position_slider, 1)
    owner.time_label = label("0.0 / 0.0 s", "listenHint", wrap=False)
    owner.time_label.setMinimumWidth(90)
    row.addWidget(owner.time_label)
    box.addLayout(row)


def add_transport(owner: Any, box: QBoxLayout, stimuli: Iterable[tuple[str, Callable[[], object]]], *,
                  centred: bool = True, extra: Iterable[QPushButton] = ()) -> list[QPushButton]:
    """The row of stimulus buttons (``(text, select)`` each), ``owner.play_button`` (``owner.toggle_play``)
    and ``extra`` buttons, then the position row (``owner._seek_released`` seeks); returns the stimulus buttons."""
    row = QHBoxLayout()
    if centred:
        row.addStretch(1)
    buttons = [stimulus_button(text, select) for text, select in stimuli]
    for b in buttons:
        row.addWidget(b)
    owner.play_button = button("▶  Play  (Space)", "playButton")
    owner.play_button.clicked.connect(owner.toggle_play)
    row.addWidget(owner.play_button)
    for b in extra:
        row.addWidget(b)
    row.addStretch(1)
    box.addLayout(row)
    add_position_row(owner, box, owner._seek_released)
    return buttons


def show_transport(owner: Any, player: Any) -> None:
    """The position row and ``owner.play_button`` as ``player`` stands (called by each screen's timer)."""
    pos, total = player.position_s, player.duration_s
    if not owner.position_slider.isSliderDown():
        owner.position_slider.setValue(int(round(1000 * pos / total)) if total > 0 else 0)
    owner.time_label.setText(f"{pos:.1f} / {total:.1f} s")
    owner.play_button.setText("❚❚  Pause  (Space)" if player.playing else "▶  Play  (Space)")


def seek_to_slider(owner: Any, player: Any) -> None:
    """Seek ``player`` to where ``owner.position_slider`` was released."""
    player.seek(owner.position_slider.value() / 1000 * player.duration_s)


def add_score_buttons(parent: QWidget, box: QBoxLayout, values: Iterable[int],
                      on_choose: Callable[[int], object]) -> tuple[QButtonGroup, dict[int, QPushButton]]:
    """A column of exclusive, checkable score buttons (top to bottom in ``values``' order), added to ``box``."""
    group = QButtonGroup(parent)
    group.setExclusive(True)
    buttons: dict[int, QPushButton] = {}
    column = QVBoxLayout()
    column.setSpacing(4)
    for i, value in enumerate(values):
        b = button("", "scoreButton")
        b.setCheckable(True)
        b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        b.clicked.connect(lambda _=False, v=value: on_choose(v))
        group.addButton(b, i)
        buttons[value] = b
        column.addWidget(b)
    box.addLayout(column)
    return group, buttons


def clear_choice(group: QButtonGroup, buttons: dict[int, QPushButton]) -> None:
    """No score button checked (a new trial)."""
    group.setExclusive(False)
    for b in buttons.values():
        b.setChecked(False)
    group.setExclusive(True)


def choose_score(owner: Any, value: int) -> bool:
    """Select ``value`` on ``owner`` (a screen with ``can_rate``, ``score_buttons``, ``score``, ``tick``);
    False (nothing changes) while the trial cannot be rated yet."""
    if not owner.can_rate or value not in owner.score_buttons:
        owner.tick()
        return False
    owner.score = value
    owner.score_buttons[value].setChecked(True)
    owner.tick()
    return True


#: Keys that act once per press (auto-repeat ignored): play / pause, save, the loop marks.
ONCE_KEYS = frozenset({Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_L})
#: Enter on the main keyboard and on the keypad.
ENTER_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


def dispatch_key(event: QKeyEvent, actions: Mapping[Qt.Key, Callable[[], object]]) -> bool:
    """Run the action ``actions`` maps ``event``'s key to (once per press for :data:`ONCE_KEYS`);
    True when the key is one of them (it was handled, even as an ignored repeat)."""
    key = Qt.Key(event.key())
    action = actions.get(key)
    if action is None:
        return False
    if not (event.isAutoRepeat() and key in ONCE_KEYS):
        action()
    return True


def submit_score(owner: Any, rate: Callable[[int], bool]) -> bool:
    """Save ``owner``'s chosen score with ``rate`` (the Listen view's); False when ``owner`` shows no
    trial, has no score chosen, or its trial cannot be rated yet."""
    if owner.trial is None or owner.score is None or not owner.can_rate:
        return False
    return bool(rate(owner.score))


def add_save_row(box: QBoxLayout, on_submit: Callable[[], object], keys_text: str = "") -> tuple[QLabel, QPushButton, QLabel]:
    """The error line (hidden while empty), the "Save and next" button and the keys hint, added to
    the end of ``box``; returns (message, next button, keys label)."""
    message = label("", "listenError")
    message.hide()
    box.addWidget(message)
    row = QHBoxLayout()
    row.addStretch(1)
    next_button = button("Save and next  (Enter)", "primaryButton")
    next_button.clicked.connect(lambda: on_submit())
    row.addWidget(next_button)
    box.addLayout(row)
    keys = label(keys_text, "listenHint")
    box.addWidget(keys)
    box.addStretch(1)
    return message, next_button, keys


def show_message(widget: QLabel, text: str) -> None:
    """``text`` on ``widget``, which is shown only while there is one."""
    widget.setText(text)
    widget.setVisible(bool(text))


def silent_text(reason: str) -> str:
    """What a trial screen says when the sounds cannot be heard."""
    return f"{reason} Tell the researcher: the sounds cannot be heard on this computer."


def not_saved_text(what: str, message: str) -> str:
    """The one sentence of a save that failed (``what``: "Your rating", "This screen")."""
    return f"{what} was not saved: {message} Press Enter to try again."


class TrialPanel(QWidget):
    """What every test type's trial panel shares (:mod:`mosapp.gui.listen_panels`): the view it belongs
    to (its player, its controller, its worker thread), the heading, the error line, play / pause and
    seeking.

    Subclasses set :attr:`WHAT` (what a failed save calls the trial), :attr:`PRACTICE_TEXT`, build the
    rest of the screen into :attr:`box`, and implement :meth:`show_trial`, :meth:`tick`,
    :meth:`handle_key`, :meth:`keys_text` and :meth:`submit`. The heading's word (trial, screen,
    pair) is the test type's :attr:`~mosapp.study.types.base.TestType.noun`.
    """

    WHAT = "Your rating"
    PRACTICE_TEXT = ""
    message: QLabel
    #: The score chosen and not yet saved (a panel with one score per trial), else None.
    score: Any = None

    def __init__(self, view: Any, name: str, *, spacing: int) -> None:
        super().__init__()
        self.view = view
        self.trial: Any = None
        self.setObjectName(name)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.box = QVBoxLayout(self)
        self.box.setSpacing(spacing)
        add_trial_header(self, self.box, self.PRACTICE_TEXT)

    @property
    def can_rate(self) -> bool:
        """The shown trial may be rated now (what it requires was heard, nothing is being saved)."""
        return False

    @property
    def noun(self) -> str:
        """What a heading calls one trial of the open study: trial, screen (MUSHRA), pair (CCR)."""
        definition = self.view.definition
        return definition.kind.noun if definition is not None else "trial"

    def show_trial(self, trial: Any, progress: Progress) -> None:  # pragma: no cover - every panel has its own
        """Show ``trial`` (the view has loaded its streams into the player, stream 0 selected)."""
        raise NotImplementedError

    def handle_key(self, event: QKeyEvent) -> bool:  # pragma: no cover - every panel has its own
        """Act on a key of the trial screen; True when it was one."""
        raise NotImplementedError

    def tick(self) -> None:  # pragma: no cover - every panel has its own
        raise NotImplementedError

    def submit(self) -> bool:  # pragma: no cover - every panel has its own
        raise NotImplementedError

    def keys_text(self) -> str:  # pragma: no cover - every panel has its own
        raise NotImplementedError

    def rewind(self) -> None:
        """Home: back to the start of the shown trial's audio."""
        if self.trial is not None:
            self.view.player.seek(0.0)
        self.tick()

    def _add_hint(self) -> None:
        """The line saying what to do next (``self.hint``)."""
        self.hint = label("")
        self.box.addWidget(self.hint)

    def _add_save_row(self) -> None:
        """:func:`add_save_row` with this panel's keys: the end of every panel."""
        self.message, self.next_button, self.keys_label = add_save_row(self.box, self.submit, self.keys_text())

    def show_header(self, trial: AnyTrial, progress: Progress) -> None:
        show_trial_header(self, trial, progress, self.noun)
        self._message("")

    def _message(self, text: str) -> None:
        show_message(self.message, text)

    def not_saved(self, message: str) -> None:
        """The save failed (``message`` says why); Enter tries again."""
        self._message(not_saved_text(self.WHAT, message))

    def toggle_play(self) -> None:
        if self.trial is not None:
            self.view.player.toggle()
        self.tick()

    def _seek_released(self) -> None:
        if self.trial is not None:
            seek_to_slider(self, self.view.player)
        self.tick()
