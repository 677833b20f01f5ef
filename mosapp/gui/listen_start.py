"""The Listen view's pages besides the trials: the start page (listener code, audio output, preparing
a study's stimuli, the researcher's controls), the instructions page, and the one-button message pages
(break, done, practice over).

The start page belongs to a :class:`~mosapp.gui.listen_view.ListenView` (``view``): Enter or
"Start or resume" calls ``view.start(code)``; "Prepare now" renders the stimuli of the view's study
in a background worker (after closing the view's database on its worker thread) and opens the
study again when done; "Open another study…" calls ``view.open_study(path)``. Preparing reports
counts only: a listener never sees a condition's name.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mosapp.gui.trial_widgets import button as _button
from mosapp.gui.trial_widgets import label as _label
from mosapp.gui.trial_widgets import show_message
from mosapp.gui.workers import GeneratorWorker
from mosapp.playback import output_devices
from mosapp.study.definition import STUDIES_DIR, StudyDefinition, load_study
from mosapp.study.prepare import PrepareResult, prepare_study
from mosapp.study.store import open_store


def page() -> tuple[QWidget, QVBoxLayout]:
    """An empty page that takes no focus (the view's keys work on it) and its layout."""
    widget = QWidget()
    widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    box = QVBoxLayout(widget)
    box.setSpacing(12)
    return widget, box


def message_page(title: str, button_text: str, on_click: Callable[[], object]) -> tuple[QWidget, QLabel, QPushButton]:
    """A page of a title, a sentence and one button (break, done, practice over): (page, sentence, button)."""
    widget, box = page()
    box.addWidget(_label(title, "listenTitle"))
    text = _label("")
    text.setStyleSheet("font-size: 15px;")
    box.addWidget(text)
    row = QHBoxLayout()
    b = _button(button_text, "primaryButton")
    b.clicked.connect(lambda: on_click())
    row.addWidget(b)
    row.addStretch(1)
    box.addLayout(row)
    box.addStretch(1)
    return widget, text, b


class InstructionsPage(QWidget):
    """The study's title and instructions, the greeting (where a returning listener resumes), the plan, the keys."""

    def __init__(self, on_begin: Callable[[], object]) -> None:
        super().__init__()
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        box = QVBoxLayout(self)
        box.setSpacing(12)
        self.title = _label("", "listenTitle")
        self.welcome_label = _label("", "listenHeading")
        self.instructions_label = _label("")
        self.instructions_label.setStyleSheet("font-size: 15px;")
        self.training_label = _label("")
        self.keys_label = _label("", "listenHint")
        for widget in (self.title, self.welcome_label, self.instructions_label, self.training_label, self.keys_label):
            box.addWidget(widget)
        row = QHBoxLayout()
        self.begin_button = _button("Begin (Enter)", "primaryButton")
        self.begin_button.clicked.connect(lambda: on_begin())
        row.addWidget(self.begin_button)
        row.addStretch(1)
        box.addLayout(row)
        box.addStretch(1)


class StartPage(QWidget):
    """Where a listener enters their code, and a researcher prepares or opens a study (see the module)."""

    def __init__(self, view: Any) -> None:
        super().__init__()
        self.view = view
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._prepare_worker: GeneratorWorker | None = None
        box = QVBoxLayout(self)
        box.setSpacing(12)
        self.title_label = _label("", "listenTitle")
        box.addWidget(self.title_label)
        box.addWidget(_label("Enter the listener code the researcher gave you (for example L07) and press Enter. "
                             "A code that has been used before continues where it stopped.", "listenHint"))
        self._build_code_row(box)
        self._build_device_row(box)
        self.start_message = _label("", "listenError")
        self.start_message.hide()
        box.addWidget(self.start_message)
        self._build_prepare_box(box)
        self._build_researcher_rows(box)
        box.addStretch(1)
        # Every control here is reachable with Tab, in the order it is on screen (the trial screens'
        # buttons take no focus: Space and Enter belong to the listening keys there).
        order = [self.code_edit, self.start_button, self.device_combo, self.refresh_devices_button,
                 self.prepare_button, self.prepare_cancel_button, self.full_screen_box, self.open_button]
        for widget in order:
            widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        for first, second in zip(order, order[1:]):
            QWidget.setTabOrder(first, second)
        self.start_controls: list[QWidget] = order
        self.fill_devices()

    # ------------------------------------------------------------------ building
    def _build_code_row(self, box: QVBoxLayout) -> None:
        row = QHBoxLayout()
        row.addWidget(_label("Listener code:", wrap=False))
        self.code_edit = QLineEdit()
        self.code_edit.setPlaceholderText("e.g. L07")
        self.code_edit.setMaxLength(32)
        self.code_edit.setMaximumWidth(220)
        # Enter starts; the view's filter consumes it, so the same key press cannot also pass the instructions.
        self.code_edit.installEventFilter(self.view)
        row.addWidget(self.code_edit)
        self.start_button = QPushButton("Start or resume")
        self.start_button.setObjectName("primaryButton")
        self.start_button.clicked.connect(self.start_clicked)
        row.addWidget(self.start_button)
        row.addStretch(1)
        box.addLayout(row)

    def _build_device_row(self, box: QVBoxLayout) -> None:
        row = QHBoxLayout()
        row.addWidget(_label("Audio output:", wrap=False))
        self.device_combo = QComboBox()
        self.device_combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.device_combo.setMinimumWidth(260)
        row.addWidget(self.device_combo)
        self.refresh_devices_button = _button("Refresh")
        self.refresh_devices_button.clicked.connect(self.fill_devices)
        row.addWidget(self.refresh_devices_button)
        row.addStretch(1)
        box.addLayout(row)

    def _build_prepare_box(self, box: QVBoxLayout) -> None:
        self.prepare_box = QFrame()
        self.prepare_box.setFrameShape(QFrame.Shape.StyledPanel)
        pbox = QVBoxLayout(self.prepare_box)
        self.prepare_label = _label("")
        pbox.addWidget(self.prepare_label)
        prow = QHBoxLayout()
        self.prepare_button = _button("Prepare now", "primaryButton")
        self.prepare_button.clicked.connect(self.prepare)
        prow.addWidget(self.prepare_button)
        self.prepare_cancel_button = _button("Stop")
        self.prepare_cancel_button.clicked.connect(self.cancel_prepare)
        self.prepare_cancel_button.hide()
        prow.addWidget(self.prepare_cancel_button)
        self.prepare_progress = QProgressBar()
        self.prepare_progress.setTextVisible(True)
        self.prepare_progress.hide()
        prow.addWidget(self.prepare_progress, 1)
        prow.addStretch(0)  # keeps the button at its size while the progress bar is hidden
        pbox.addLayout(prow)
        self.prepare_status = _label("", "listenHint")
        pbox.addWidget(self.prepare_status)
        self.prepare_box.hide()
        box.addWidget(self.prepare_box)

    def _build_researcher_rows(self, box: QVBoxLayout) -> None:
        row = QHBoxLayout()
        self.full_screen_box = QCheckBox("Full screen while a listener takes part")
        self.full_screen_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.full_screen_box.setToolTip("Starting a session locks the window to this view; the researcher leaves "
                                        "with Ctrl+Alt+Shift+Q (and the PIN, when one is set).")
        row.addWidget(self.full_screen_box)
        row.addStretch(1)
        box.addLayout(row)
        row = QHBoxLayout()
        self.open_button = _button("Open another study…")
        self.open_button.setToolTip("Choose a study file (.toml); the researcher sets this up.")
        self.open_button.clicked.connect(self.choose_study)
        row.addWidget(self.open_button)
        row.addStretch(1)
        box.addLayout(row)

    def fill_devices(self) -> None:
        current = self.device_combo.currentData()
        self.device_combo.clear()
        self.device_combo.addItem("System default", None)
        for dev in output_devices():
            self.device_combo.addItem(f"{dev.name} ({dev.hostapi})", dev.index)
        i = self.device_combo.findData(current)
        self.device_combo.setCurrentIndex(max(0, i))

    # ------------------------------------------------------------------ state
    def start_clicked(self) -> None:
        self.view.start(self.code_edit.text().strip())

    def show_error(self, text: str, *, error: bool = True) -> None:
        """``text`` under the code (red for an error, green for news), hidden while empty."""
        self.start_message.setStyleSheet("" if error else "color: #1b6e20;")
        show_message(self.start_message, text)

    def set_startable(self, ok: bool) -> None:
        self.start_button.setEnabled(ok)
        self.code_edit.setEnabled(ok)

    def set_listener_mode(self, on: bool) -> None:
        """In listener mode the researcher's controls (other studies, preparing, full screen) are hidden."""
        for w in (self.open_button, self.full_screen_box):
            w.setVisible(not on)
        if on:
            self.prepare_box.hide()

    def choose_study(self) -> None:
        start = str(STUDIES_DIR if STUDIES_DIR.is_dir() else Path.cwd())
        path, _ = QFileDialog.getOpenFileName(self, "Open a study", start, "Study files (*.toml)")
        if path:
            self.view.open_study(path)

    # ------------------------------------------------------------------ preparing
    def need_prepare(self, why: str, definition: StudyDefinition | None) -> None:
        """The open study cannot start (``why``): offer "Prepare now"."""
        self.set_startable(False)
        where = f" They go to {definition.stimuli_dir}." if definition is not None else ""
        self.prepare_label.setText(f"{why} First step: press Prepare now. A study's stimuli are rendered once, before "
                                   f"the first listener; this takes a while for long excerpts or many conditions.{where}")
        self.prepare_status.setText("")
        self.prepare_progress.hide()
        self.prepare_button.setEnabled(True)
        self.prepare_box.show()

    @property
    def preparing(self) -> bool:
        return self._prepare_worker is not None and self._prepare_worker.is_running

    def prepare(self) -> None:
        """Render the view's study's stimuli in a background worker ("Prepare now")."""
        view = self.view
        if self.preparing or view.source is None:
            return
        source, database = view.source, view.database
        view.submit(view.controller.close_engine, lambda _: None)

        def job() -> Generator[Any, None, Any]:
            definition = source if isinstance(source, StudyDefinition) else load_study(source, check_codecs=True)
            with open_store(database or definition.database_url) as store:
                result = yield from prepare_study(definition, store)
            return result

        self.prepare_button.setEnabled(False)
        self.prepare_cancel_button.show()
        self.prepare_progress.setRange(0, 0)
        self.prepare_progress.show()
        self.prepare_status.setText("Checking the study…")
        self.show_error("")
        worker = GeneratorWorker(job, self)
        worker.progress.connect(self._prepare_progress)
        worker.finished.connect(self._prepare_finished)
        worker.failed.connect(self._prepare_failed)
        worker.cancelled.connect(self._prepare_cancelled)
        self._prepare_worker = worker
        worker.start()

    def _prepare_progress(self, p: Any) -> None:
        self.prepare_progress.setRange(0, max(1, p.total))
        self.prepare_progress.setValue(p.done)
        self.prepare_progress.setFormat(f"{p.done} of {p.total}")
        self.prepare_status.setText(f"Preparing stimuli: {p.done} of {p.total} done.")

    def _prepare_done(self) -> None:
        self.prepare_cancel_button.hide()
        self.prepare_button.setEnabled(True)
        self.prepare_progress.hide()

    def _prepare_finished(self, result: PrepareResult) -> None:
        self._prepare_done()
        if self.view.source is None:
            return
        extra = f" ({len(result.warnings)} warning(s): see the command line's prepare)" if result.warnings else ""
        self.view.open_study(self.view.source, note=f"The study is prepared ({result.total} stimuli in "
                                                    f"{result.seconds:.0f} s){extra}. Enter a listener code to begin.")

    def _prepare_failed(self, message: str) -> None:
        self._prepare_done()
        self.prepare_status.setText("")
        self.show_error(f"Preparing failed: {message}")

    def _prepare_cancelled(self) -> None:
        self._prepare_done()
        self.prepare_status.setText("Preparing stopped; what was rendered is kept and reused next time.")

    def cancel_prepare(self) -> None:
        if self._prepare_worker is not None:
            self._prepare_worker.cancel()

    def stop_preparing(self, wait_s: float = 10.0) -> None:
        """Cancel a prepare under way and wait for it (the view is closing)."""
        if self._prepare_worker is not None and self._prepare_worker.is_running:
            self._prepare_worker.cancel()
            self._prepare_worker.wait(wait_s)


__all__ = ["InstructionsPage", "StartPage", "message_page", "page"]
