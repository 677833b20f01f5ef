"""The widgets every listening-trial screen shares (DCR/ACR, MUSHRA, CCR): labels, focus-less
buttons, the heading with progress, and the playback position row."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QBoxLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSlider


def label(text: str = "", name: str | None = None, *, wrap: bool = True) -> QLabel:
    """A plain-text label (never rich text: nothing a study file says is interpreted)."""
    widget = QLabel(text)
    widget.setWordWrap(wrap)
    widget.setTextFormat(Qt.PlainText)
    if name:
        widget.setObjectName(name)
    return widget


def button(text: str, name: str | None = None) -> QPushButton:
    """A button that never takes the focus: Space and Enter belong to the view's keyboard control."""
    widget = QPushButton(text)
    widget.setFocusPolicy(Qt.NoFocus)
    if name:
        widget.setObjectName(name)
    return widget


def add_trial_header(owner, box: QBoxLayout, practice_text: str) -> None:
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


def add_position_row(owner, box: QBoxLayout, on_released: Callable[[], None]) -> None:
    """Adds the playback position slider (0-1000) and its time read-out to ``box``; sets
    ``owner.position_slider`` and ``owner.time_label``; ``on_released`` seeks."""
    row = QHBoxLayout()
    owner.position_slider = QSlider(Qt.Horizontal)
    owner.position_slider.setFocusPolicy(Qt.NoFocus)
    owner.position_slider.setRange(0, 1000)
    owner.position_slider.sliderReleased.connect(on_released)
    row.addWidget(owner.position_slider, 1)
    owner.time_label = label("0.0 / 0.0 s", "listenHint", wrap=False)
    owner.time_label.setMinimumWidth(90)
    row.addWidget(owner.time_label)
    box.addLayout(row)
