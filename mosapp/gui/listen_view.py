"""The Listen view: a blinded listening session driven entirely from the keyboard.

::

    study file ─► ListenController (mosapp.study.listening; its database, on a worker thread)
        ─► start(code) ─► instructions ─► trial: Player(streams(trial)) ─► heard to the end?
        ─► score 1..5 ─► Enter ─► controller.rate(...) (committed before the next trial appears)
        ─► … ─► break ─► … ─► done

Keys on a trial: **Space** play/pause, **R** the reference (DCR), **A** the sample, **1–5** the
score, **Enter** save and go on, **Home** back to the start. The rating buttons stay disabled
until the sample has been heard to its end once (``require_full_listen``; the study file has no
such field, so it is a setting of the view and on by default).

Screens besides the trials: a returning listener's instructions say "Resuming at trial N of M";
after the last practice trial "Practice is over" comes before the trials that count. With the
study's ``reference_first`` (P.800's order) the sample is offered only once the reference has
played to its end, and then plays by itself. Starting a session emits ``session_started``, on
which the main window locks itself to this view (:mod:`mosapp.gui.listener_mode`); the view
then hides its researcher controls (:meth:`ListenView.set_listener_mode`).

The view only draws and forwards what the listener does: the session, the trial state machine,
breaks and ratings are :class:`~mosapp.study.listening.ListenController`'s, and every call that
touches the database runs on the view's own worker thread, one at a time, its result coming back
as a signal. While one runs (:attr:`ListenView.busy`) the window keeps drawing and playing; the
keys that would need the database wait for it.

Blinding: the view never shows a condition, codec, bitrate, clip or file name. A trial carries
opaque tokens and audio only (:class:`mosapp.study.Trial`); the player's stimuli are named
"reference" and "sample" and those names are not displayed either. Preparing a study (a
researcher's job) reports only counts.

A score is stored the moment the listener confirms it with Enter (or Next): the rating commits
its own transaction before the view moves on, with the play counts and listening time the player
measured and the time from the trial's start. A failed save (a database locked for longer than
``busy_timeout_s``) leaves the trial on screen with its score selected and says so in one
sentence, so Enter tries again; nothing is lost.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QSize, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from mosapp.core.config import PIPELINE_SAMPLE_RATE
from mosapp.gui.ccr_view import CcrPanel
from mosapp.gui.mushra_view import MushraPanel
from mosapp.gui.trial_widgets import (
    ENTER_KEYS,
    add_save_row,
    add_score_buttons,
    add_transport,
    add_trial_header,
    break_message,
    choose_score,
    clear_choice,
    dispatch_key,
    not_saved_text,
    resume_text,
    seek_to_slider,
    show_message,
    show_transport,
    show_trial_header,
    silent_text,
    submit_score,
)
from mosapp.gui.trial_widgets import button as _button
from mosapp.gui.trial_widgets import label as _label
from mosapp.gui.workers import GeneratorWorker
from mosapp.playback import Player, output_devices
from mosapp.study.definition import STUDIES_DIR, StudyDefinition, database_url_for, load_study
from mosapp.study.errors import StudyError
from mosapp.study.listening import (
    DEFAULT_BREAK_MINUTES,
    DEFAULT_BREAK_TRIALS,
    DEFAULT_BUSY_TIMEOUT_S,
    AnyTrial,
    ListenController,
    Playback,
    Screen,
    Step,
    plan_text,
    practice_over_text,
    prepared_state,
    streams,
)
from mosapp.study.prepare import PrepareResult, prepare_study
from mosapp.study.sitting import Progress
from mosapp.study.store import open_store
from mosapp.study.types.ccr import CcrTrial
from mosapp.study.types.mushra import MushraTrial

#: The study the view opens when given none.
DEFAULT_STUDY = STUDIES_DIR / "demo.toml"
#: Playback display refresh.
POLL_MS = 40


class _Pages(QStackedWidget):
    """The view's pages, sized by the page on screen only: Qt's stack takes the tallest page's
    height for a width (a MUSHRA screen), so every page scrolled on a laptop screen."""

    def heightForWidth(self, width: int) -> int:  # noqa: N802 — Qt's name
        page = self.currentWidget()
        return page.heightForWidth(width) if page is not None else -1

    def sizeHint(self) -> QSize:  # noqa: N802 — Qt's name
        page = self.currentWidget()
        return page.sizeHint() if page is not None else super().sizeHint()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 — Qt's name
        page = self.currentWidget()
        return page.minimumSizeHint() if page is not None else super().minimumSizeHint()


def user_data_folder() -> Path:
    """Where the app keeps what it makes for the user: ``$MOSAPP_DATA_DIR``, else
    ``$XDG_DATA_HOME/mosapp``, else ``~/.local/share/mosapp`` (never inside the install)."""
    explicit = os.environ.get("MOSAPP_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "mosapp"


def demo_study() -> StudyDefinition | Path:
    """The shipped demo study with its database and stimuli in :func:`user_data_folder` (``demo/``),
    not next to the study file inside the install; the file itself when it cannot be read (opening
    it then says why)."""
    try:
        definition = load_study(DEFAULT_STUDY, check_codecs=False)
    except StudyError:
        return DEFAULT_STUDY
    folder = user_data_folder() / definition.name
    return replace(definition, database_url=database_url_for(folder / "study.sqlite"), stimuli_dir=folder / "stimuli")
#: How long closing the view waits for the database work in flight (beyond the busy timeout).
SHUTDOWN_GRACE_S = 2.0

_SCORE_KEYS = {Qt.Key.Key_1: 1, Qt.Key.Key_2: 2, Qt.Key.Key_3: 3, Qt.Key.Key_4: 4, Qt.Key.Key_5: 5}

_STYLE = """
QLabel#listenTitle { font-size: 20px; font-weight: 600; }
QLabel#listenHeading { font-size: 17px; font-weight: 600; }
QLabel#listenError { color: #b00020; }
QLabel#listenWarning { color: #8a5300; background: #fff4e0; border: 1px solid #e8c48a; padding: 6px; }
QLabel#listenHint { color: #555; }
QLabel#listenReady { color: #1b6e20; }
QPushButton#stimulusButton { font-size: 16px; padding: 14px 22px; min-width: 150px; }
QPushButton#stimulusButton:checked { background: #2e6bd1; color: white; border: 1px solid #1d4c9b; }
QPushButton#playButton { font-size: 16px; padding: 14px 22px; min-width: 150px; }
QPushButton#scoreButton { font-size: 15px; padding: 8px 14px; text-align: left; }
QPushButton#scoreButton:checked { background: #2e6bd1; color: white; border: 1px solid #1d4c9b; }
QPushButton#primaryButton { font-size: 15px; padding: 8px 22px; }
"""


def _call(fn: Callable[[], Any]) -> Callable[[], Generator[None, None, Any]]:
    """``fn`` as the generator job a :class:`GeneratorWorker` runs (it yields nothing)."""
    def job() -> Generator[None, None, Any]:
        yield from ()
        return fn()
    return job


class ListenView(QWidget):
    """A listener's session on one study (the demo study by default).

    Args:
        study: a study file, a name in ``studies/``, or a parsed definition (default: the demo).
        parent: the parent widget.
        database: a SQLAlchemy URL overriding the study's database.
        open_audio: open the audio output when a session starts (tests pass False and drive
            :attr:`player` with ``render``).
        require_full_listen: the sample must be heard to its end once before it can be rated.
        break_every_trials / break_every_minutes: suggest a break after this many trials or
            minutes since the last one (0 turns either off).
        busy_timeout_s: how long a save waits for another program holding the database.

    Signals:
        session_started(str): a listener code started or resumed.
        rating_saved(int, int): (plan index, score) after the rating is committed.
        session_finished(): the listener's last trial was rated.
        researcher_note(str): for the researcher, never shown in this view (the main window puts it
            in its status bar, which listener mode hides): playback underruns and the block size.
    """

    session_started = Signal(str)
    #: A study file was opened and read (its definition); the Results tab follows it.
    study_opened = Signal(object)
    rating_saved = Signal(int, int)
    session_finished = Signal()
    researcher_note = Signal(str)

    PAGE_START, PAGE_INSTRUCTIONS, PAGE_TRIAL, PAGE_BREAK, PAGE_DONE, PAGE_PRACTICE_OVER, PAGE_MUSHRA, PAGE_CCR = range(8)

    def __init__(self, study: str | os.PathLike[str] | StudyDefinition | QWidget | None = None,
                 parent: QWidget | None = None, *, database: str | None = None, open_audio: bool = True,
                 require_full_listen: bool = True, break_every_trials: int = DEFAULT_BREAK_TRIALS,
                 break_every_minutes: float = DEFAULT_BREAK_MINUTES,
                 busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        if isinstance(study, QWidget) and parent is None:  # ListenView(parent)
            study, parent = None, study
        super().__init__(parent)
        self.setObjectName("listenView")
        self.setWindowTitle("Listen")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setStyleSheet(_STYLE)
        self.database = database
        self.open_audio = open_audio
        self.controller = ListenController(database=database, busy_timeout_s=busy_timeout_s,
                                           require_full_listen=require_full_listen,
                                           break_every_trials=break_every_trials,
                                           break_every_minutes=break_every_minutes)

        self.definition: StudyDefinition | None = None
        self.player: Player | None = None
        self.trial: AnyTrial | None = None
        self.score: int | None = None
        self._source: str | os.PathLike[str] | StudyDefinition | None = None
        self._sample_index = 0
        self._reference_index: int | None = None
        self._prepare_worker: GeneratorWorker | None = None
        self._audio_device_name = ""
        self._audio_opened = False
        self._underruns_noted = 0
        self._app_filter = False
        self.listener_mode = False
        self._auto_sample = False
        # The database work: one job at a time on a thread of its own, the rest queued.
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._jobs: deque[tuple[Callable[[], Any], Callable[[Any], None], Callable[[str], None]]] = deque()
        self._job: GeneratorWorker | None = None
        self._opening = 0
        self._starting = False
        self._closed = False

        self._build()
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.tick)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.open_study(study if study is not None and not isinstance(study, QWidget) else demo_study())

    # ------------------------------------------------------------------ the controller's settings
    @property
    def require_full_listen(self) -> bool:
        return self.controller.require_full_listen

    @require_full_listen.setter
    def require_full_listen(self, on: bool) -> None:
        self.controller.require_full_listen = bool(on)

    @property
    def break_every_trials(self) -> int:
        return self.controller.break_every_trials

    @break_every_trials.setter
    def break_every_trials(self, n: int) -> None:
        self.controller.break_every_trials = int(n)

    @property
    def break_every_minutes(self) -> float:
        return self.controller.break_every_minutes

    @break_every_minutes.setter
    def break_every_minutes(self, minutes: float) -> None:
        self.controller.break_every_minutes = float(minutes)

    @property
    def busy_timeout_s(self) -> float:
        return self.controller.busy_timeout_s

    @property
    def session(self) -> object | None:
        """The listener's open session (the controller's), or None."""
        return self.controller.session

    # ------------------------------------------------------------------ database work off the GUI thread
    @property
    def busy(self) -> bool:
        """Database work is running or queued (the window stays responsive meanwhile)."""
        return self._job is not None or bool(self._jobs)

    def _submit(self, call: Callable[[], Any], on_done: Callable[[Any], None],
                on_failed: Callable[[str], None] | None = None) -> None:
        """Run ``call`` (a controller method) on the worker thread after the jobs before it;
        ``on_done(result)`` or ``on_failed(message)`` then runs here, on the GUI thread."""
        self._jobs.append((call, on_done, on_failed or self._start_error))
        if self._job is None:
            self._run_next()

    def _run_next(self) -> None:
        if not self._jobs or self._closed:
            return
        call, on_done, on_failed = self._jobs.popleft()
        worker = GeneratorWorker(_call(call), self)
        worker.finished.connect(lambda result: self._closed or on_done(result))
        worker.failed.connect(lambda message: self._closed or on_failed(message))
        worker.done.connect(self._job_done)
        worker.done.connect(worker.deleteLater)
        self._job = worker
        worker.start(self._pool)

    def _job_done(self) -> None:
        self._job = None
        self._run_next()
        if not self._closed:
            self.tick()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.pages = _Pages()
        self.pages.addWidget(self._build_start())
        self.pages.addWidget(self._build_instructions())
        self.pages.addWidget(self._build_trial())
        self.break_label, self.continue_button = self._build_message_page(
            "Time for a short break", "Continue (Enter)", self.end_break)
        self.done_label, self.next_listener_button = self._build_message_page(
            "Thank you!", "Next listener", self.reset)
        self.practice_over_label, self.practice_over_button = self._build_message_page(
            "Practice is over", "Start (Enter)", self.end_practice)
        # MUSHRA screens and CCR pairs: their own panels (mosapp/gui/mushra_view.py, ccr_view.py).
        self.mushra_panel = MushraPanel(self)
        self.pages.addWidget(self.mushra_panel)
        self.ccr_panel = CcrPanel(self)
        self.pages.addWidget(self.ccr_panel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 18, 24, 18)
        # On a short screen a page scrolls rather than set the window's minimum height.
        self.pages_scroll = QScrollArea()
        self.pages_scroll.setObjectName("listen_pages")
        self.pages_scroll.setWidget(self.pages)
        self.pages_scroll.setWidgetResizable(True)
        self.pages_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.pages_scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout.addWidget(self.pages_scroll)

    def _page(self) -> tuple[QWidget, QVBoxLayout]:
        page = QWidget()
        page.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        box = QVBoxLayout(page)
        box.setSpacing(12)
        return page, box

    def _build_message_page(self, title: str, button_text: str, on_click: Callable[[], object]):
        """A page of a title, a sentence and one button (break, done, practice over); added to the pages."""
        page, box = self._page()
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
        self.pages.addWidget(page)
        return text, b

    def _build_start(self) -> QWidget:
        page, box = self._page()
        self.title_label = _label("", "listenTitle")
        box.addWidget(self.title_label)
        box.addWidget(_label("Enter the listener code the researcher gave you (for example L07) and press Enter. "
                             "A code that has been used before continues where it stopped.", "listenHint"))
        row = QHBoxLayout()
        row.addWidget(_label("Listener code:", wrap=False))
        self.code_edit = QLineEdit()
        self.code_edit.setPlaceholderText("e.g. L07")
        self.code_edit.setMaxLength(32)
        self.code_edit.setMaximumWidth(220)
        # Enter starts; the filter consumes it, so the same key press cannot also pass the instructions.
        self.code_edit.installEventFilter(self)
        row.addWidget(self.code_edit)
        self.start_button = QPushButton("Start or resume")
        self.start_button.setObjectName("primaryButton")
        self.start_button.clicked.connect(self._start_clicked)
        row.addWidget(self.start_button)
        row.addStretch(1)
        box.addLayout(row)

        row = QHBoxLayout()
        row.addWidget(_label("Audio output:", wrap=False))
        self.device_combo = QComboBox()
        self.device_combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.device_combo.setMinimumWidth(260)
        row.addWidget(self.device_combo)
        self.refresh_devices_button = _button("Refresh")
        self.refresh_devices_button.clicked.connect(self._fill_devices)
        row.addWidget(self.refresh_devices_button)
        row.addStretch(1)
        box.addLayout(row)

        self.start_message = _label("", "listenError")
        self.start_message.hide()
        box.addWidget(self.start_message)

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
        self.prepare_cancel_button.clicked.connect(self._cancel_prepare)
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
        self.open_button.clicked.connect(self._choose_study)
        row.addWidget(self.open_button)
        row.addStretch(1)
        box.addLayout(row)
        box.addStretch(1)
        # Every control here is reachable with Tab, in the order it is on screen (the trial screens'
        # buttons take no focus: Space and Enter belong to the listening keys there).
        order = [self.code_edit, self.start_button, self.device_combo, self.refresh_devices_button,
                 self.prepare_button, self.prepare_cancel_button, self.full_screen_box, self.open_button]
        for widget in order:
            widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        for first, second in zip(order, order[1:]):
            QWidget.setTabOrder(first, second)
        self.start_controls = order
        self._fill_devices()
        return page

    def _build_instructions(self) -> QWidget:
        page, box = self._page()
        self.instructions_title = _label("", "listenTitle")
        box.addWidget(self.instructions_title)
        self.welcome_label = _label("", "listenHeading")
        box.addWidget(self.welcome_label)
        self.instructions_label = _label("")
        self.instructions_label.setStyleSheet("font-size: 15px;")
        box.addWidget(self.instructions_label)
        self.training_label = _label("")
        box.addWidget(self.training_label)
        self.keys_label = _label("", "listenHint")
        box.addWidget(self.keys_label)
        row = QHBoxLayout()
        self.begin_button = _button("Begin (Enter)", "primaryButton")
        self.begin_button.clicked.connect(self.begin)
        row.addWidget(self.begin_button)
        row.addStretch(1)
        box.addLayout(row)
        box.addStretch(1)
        return page

    def _build_trial(self) -> QWidget:
        page, box = self._page()
        add_trial_header(self, box, "Practice trial: get used to the sounds and the scale. It counts for nothing.")

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
        self.trial_message, self.next_button, self.trial_keys_label = add_save_row(box, self.submit)
        return page

    def _fill_devices(self) -> None:
        current = self.device_combo.currentData()
        self.device_combo.clear()
        self.device_combo.addItem("System default", None)
        for dev in output_devices():
            self.device_combo.addItem(f"{dev.name} ({dev.hostapi})", dev.index)
        i = self.device_combo.findData(current)
        self.device_combo.setCurrentIndex(max(0, i))

    # ------------------------------------------------------------------ listener mode
    @property
    def full_screen_requested(self) -> bool:
        """The researcher asked for full screen during sessions (the main window reads this)."""
        return self.full_screen_box.isChecked()

    def set_listener_mode(self, on: bool) -> None:
        """In listener mode the researcher's controls (other studies, preparing, full screen) are hidden."""
        self.listener_mode = bool(on)
        for w in (self.open_button, self.full_screen_box):
            w.setVisible(not on)
        if on:
            self.prepare_box.hide()

    # ------------------------------------------------------------------ pages and messages
    @property
    def page(self) -> int:
        return self.pages.currentIndex()

    def _show_page(self, index: int) -> None:
        # Only the page on screen sets the size the pages need (else the tallest, a MUSHRA
        # screen, makes every page scroll on a laptop screen).
        for i in range(self.pages.count()):
            policy = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            page = self.pages.widget(i)
            if page is not None:
                page.setSizePolicy(policy, policy)
        self.pages.setCurrentIndex(index)
        self.pages.updateGeometry()
        if index in (self.PAGE_TRIAL, self.PAGE_MUSHRA, self.PAGE_CCR):
            self._timer.start()
        else:
            self._timer.stop()
        if index == self.PAGE_START:
            self.code_edit.setFocus()
        else:
            self.setFocus()

    def _start_error(self, text: str, *, error: bool = True) -> None:
        self.start_message.setStyleSheet("" if error else "color: #1b6e20;")
        show_message(self.start_message, text)

    def _trial_error(self, text: str) -> None:
        show_message(self.trial_message, text)

    # ------------------------------------------------------------------ study
    def open_study(self, study: str | os.PathLike[str] | StudyDefinition, *, note: str = "") -> bool:
        """Open ``study`` (ending any running session); False with a message in the view when its file
        cannot be read. Its database is then checked in the background (:attr:`busy`): the start
        page offers a listener code once it is prepared, or says why not (with ``note`` when it is)."""
        self._pause()
        self.trial = None
        self._submit(self.controller.close, lambda _: None)
        self._opening += 1
        ticket = self._opening
        self._source = study
        self.definition = None
        self.prepare_box.hide()
        self._start_error("")
        self._show_page(self.PAGE_START)
        self._set_startable(False)
        try:
            definition = study if isinstance(study, StudyDefinition) else load_study(study, check_codecs=False)
        except StudyError as exc:
            self.title_label.setText("No study open")
            self._start_error(f"{exc} Fix the file or open another study.")
            return False
        self.definition = definition
        self.title_label.setText(definition.title)
        self.study_opened.emit(definition)
        self._submit(lambda: self.controller.open(definition),
                     lambda why: self._opened(ticket, why, note), lambda message: self._open_failed(ticket, message))
        return True

    def _opened(self, ticket: int, why: str | None, note: str) -> None:
        if ticket != self._opening:
            return  # another study was opened meanwhile
        if why is not None:
            self._need_prepare(why)
            return
        self._set_startable(True)
        if note:
            self._start_error(note, error=False)
        if self.page == self.PAGE_START:
            self.code_edit.setFocus()

    def _open_failed(self, ticket: int, message: str) -> None:
        if ticket == self._opening:
            self._set_startable(False)
            self._start_error(message)

    def _set_startable(self, ok: bool) -> None:
        self.start_button.setEnabled(ok)
        self.code_edit.setEnabled(ok)

    def _need_prepare(self, why: str) -> None:
        self._set_startable(False)
        where = ""
        if self.definition is not None:
            where = f" They go to {self.definition.stimuli_dir}."
        self.prepare_label.setText(f"{why} First step: press Prepare now. A study's stimuli are rendered once, before "
                                   f"the first listener; this takes a while for long excerpts or many conditions.{where}")
        self.prepare_status.setText("")
        self.prepare_progress.hide()
        self.prepare_button.setEnabled(True)
        self.prepare_box.show()

    def open_path(self, path: str | os.PathLike[str]) -> None:
        """A file dropped on the window while this view is current: a study file is opened."""
        if self.session is not None:
            return  # never swap the study under a listener
        if Path(path).suffix.lower() == ".toml":
            self.open_study(path)
        else:
            self._start_error(f"{Path(path).name} is not a study file; drop a .toml study file here.")

    def _choose_study(self) -> None:
        start = str(STUDIES_DIR if STUDIES_DIR.is_dir() else Path.cwd())
        path, _ = QFileDialog.getOpenFileName(self, "Open a study", start, "Study files (*.toml)")
        if path:
            self.open_study(path)

    # ------------------------------------------------------------------ preparing
    @property
    def preparing(self) -> bool:
        return self._prepare_worker is not None and self._prepare_worker.is_running

    def prepare(self) -> None:
        """Render the study's stimuli in a background worker ("Prepare now")."""
        if self.preparing or self._source is None:
            return
        source, database = self._source, self.database
        self._submit(self.controller.close_engine, lambda _: None)

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
        self._start_error("")
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

    def _prepare_finished(self, result: PrepareResult) -> None:
        self._prepare_done()
        self.prepare_progress.hide()
        if self._source is None:
            return
        extra = f" ({len(result.warnings)} warning(s): see the command line's prepare)" if result.warnings else ""
        self.open_study(self._source, note=f"The study is prepared ({result.total} stimuli in {result.seconds:.0f} s)"
                                           f"{extra}. Enter a listener code to begin.")

    def _prepare_failed(self, message: str) -> None:
        self._prepare_done()
        self.prepare_progress.hide()
        self.prepare_status.setText("")
        self._start_error(f"Preparing failed: {message}")

    def _prepare_cancelled(self) -> None:
        self._prepare_done()
        self.prepare_progress.hide()
        self.prepare_status.setText("Preparing stopped; what was rendered is kept and reused next time.")

    def _cancel_prepare(self) -> None:
        if self._prepare_worker is not None:
            self._prepare_worker.cancel()

    # ------------------------------------------------------------------ starting a session
    def _start_clicked(self) -> None:
        self.start(self.code_edit.text().strip())

    def _keep_playback_margin(self, player: Player) -> None:
        """Widen the output's block after underruns, and tell the researcher (not the listener) how many."""
        widened = player.keep_margin()
        if widened or player.underruns != self._underruns_noted:
            self._underruns_noted = player.underruns
            self.researcher_note.emit(
                f"Playback: {player.underruns} underrun(s) this session on {self._audio_device_name}; block "
                f"{player.blocksize} frames, {1000 * player.output_latency_s:.0f} ms latency"
                + (" (raised after underruns)." if widened or player.blocksize > 1024 else "."))

    def _ensure_player(self) -> Player:
        if self.player is None:
            self.player = Player([np.zeros((1, PIPELINE_SAMPLE_RATE // 10), np.float32)], rate=PIPELINE_SAMPLE_RATE,
                                 names=["silence"])
        if self.open_audio and not self._audio_opened:
            self._audio_opened = True
            self.player.open(self.device_combo.currentData())
        device = self.player.device
        self._audio_device_name = device.name if device is not None else "none (silent)"
        return self.player

    def start(self, code: str) -> bool:
        """Start or resume the session of listener ``code`` (in the background); False with a message
        when it cannot start at all (or while a start is already under way)."""
        if self._starting:
            return False
        problem = self.controller.start_problem(code)
        if problem is not None:
            self._start_error((self.start_message.text() if not self.controller.is_open else "") or problem)
            return False
        self._ensure_player()
        device = self._audio_device_name
        self._starting = True
        self._submit(lambda: self.controller.start(code, audio_device=device), lambda step: self._started(code, step),
                     self._start_failed)
        return True

    def _start_failed(self, message: str) -> None:
        self._starting = False
        self._start_error(message)

    def _started(self, code: str, step: Step) -> None:
        self._starting = False
        self._start_error("")
        self.session_started.emit(code)
        if step.screen is Screen.DONE:
            self._finish(step.message)
            return
        progress = step.progress
        assert progress is not None and self.definition is not None
        d = self.definition
        self.instructions_title.setText(d.title)
        self.welcome_label.setText(resume_text(code, progress, self._noun()))
        self.instructions_label.setText(d.instructions)
        self.training_label.setText(plan_text(progress))
        self.keys_label.setText(self._keys_text() + " You can take a break at any time: every answer is saved "
                                                    "the moment you give it.")
        self._show_page(self.PAGE_INSTRUCTIONS)

    @property
    def _panel(self) -> MushraPanel | CcrPanel | None:
        """The MUSHRA or CCR panel of the open study, or None (DCR/ACR use the trial page)."""
        t = self.definition.test_type if self.definition is not None else None
        if t == "mushra":
            return self.mushra_panel
        return self.ccr_panel if t == "ccr" else None

    def _noun(self) -> str:
        """What the study's headings call one rating's screen: trial, screen (MUSHRA) or pair (CCR)."""
        test_type = self.definition.test_type if self.definition is not None else "dcr"
        return {"mushra": MushraPanel.NOUN, "ccr": CcrPanel.NOUN}.get(test_type, "trial")

    def _keys_text(self) -> str:
        if self._panel is not None:
            return self._panel.keys_text()
        dcr = self.definition is not None and self.definition.test_type == "dcr"
        parts = ["Space: play / pause"]
        if dcr:
            parts.append("R: reference")
        if dcr and self.definition is not None and self.definition.reference_first:
            parts.append("(the reference plays first, then the sample)")
        parts += ["A: sample", "1–5: your rating", "Enter: save and go on"]
        return "Keys — " + " · ".join(parts) + "."

    def _step(self, action: Callable[[], Step | None]) -> None:
        """Run a controller action that leads to the next screen (nothing while the database is busy)."""
        if not self.busy and self.session is not None:
            self._submit(action, self._show_step)

    def begin(self) -> None:
        """Leave the instructions: show the next trial."""
        self._step(self.controller.begin)

    def end_practice(self) -> None:
        """Leave the "practice is over" page: the first trial that counts."""
        self._step(self.controller.end_practice)

    def end_break(self) -> None:
        self._step(self.controller.end_break)

    # ------------------------------------------------------------------ the screens a step leads to
    def _show_step(self, step: Step | None) -> None:
        if step is None:
            return
        if step.saved is not None:
            self.rating_saved.emit(*step.saved)
        if step.screen is Screen.TRIAL and step.trial is not None and step.progress is not None:
            self._show_trial(step.trial, step.progress)
        elif step.screen is Screen.DONE:
            self._finish(step.message)
        elif step.screen is Screen.PRACTICE_OVER and step.progress is not None:
            self.practice_over_label.setText(practice_over_text(step.progress))
            self._show_page(self.PAGE_PRACTICE_OVER)
        elif step.screen is Screen.BREAK and step.progress is not None:
            self.break_label.setText(break_message(step.progress, self._noun()))
            self._show_page(self.PAGE_BREAK)
        else:  # START: the session cannot go on
            self._show_page(self.PAGE_START)
            self._start_error(step.message)

    def _show_trial(self, trial: AnyTrial, progress: Progress) -> None:
        self.trial = trial
        self.score = None
        player = self._ensure_player()
        s = streams(trial)
        player.load(list(s.buffers), names=list(s.names))
        player.select(0)
        if isinstance(trial, MushraTrial):
            self.mushra_panel.show_trial(trial, progress)
            self._show_page(self.PAGE_MUSHRA)
            self.mushra_panel.tick()
            return
        if isinstance(trial, CcrTrial):
            self.ccr_panel.show_trial(trial, progress)
            self._show_page(self.PAGE_CCR)
            self.ccr_panel.tick()
            return
        dcr = s.reference is not None
        self._reference_index, self._sample_index = s.reference, s.samples[0]
        self._auto_sample = False
        show_trial_header(self, trial, progress, "trial")
        self.reference_button.setVisible(dcr)
        self.question_label.setText(
            "How much is the sample degraded compared with the reference?" if dcr
            else "How good is the quality of the sample?")
        assert self.definition is not None
        labels = self.definition.labels
        for score, b in self.score_buttons.items():
            b.setText(f"{score}    {labels[score - 1]}")
        clear_choice(self.score_group, self.score_buttons)
        self.trial_keys_label.setText(self._keys_text())
        self._trial_error("")
        self._show_page(self.PAGE_TRIAL)
        self.tick()

    # ------------------------------------------------------------------ a DCR/ACR trial
    @property
    def can_rate(self) -> bool:
        """The rating keys work: a trial is shown, nothing is being saved, and (when required) the
        sample was heard to its end."""
        if self.trial is None or self.player is None or self.page != self.PAGE_TRIAL or self.busy:
            return False
        return self.controller.ready(Playback.of(self.player))

    def _needs_reference(self) -> bool:
        return self.player is not None and self.controller.needs_reference(Playback.of(self.player))

    def tick(self) -> None:
        """Bring the trial page up to date with the player (called by a timer while a trial is shown)."""
        player = self.player
        if player is None or self.trial is None:
            return
        self._keep_playback_margin(player)
        if self.page in (self.PAGE_MUSHRA, self.PAGE_CCR):
            panel = self._panel
            if panel is not None:
                panel.tick()
            return
        if self.page != self.PAGE_TRIAL:
            return
        reference_first = self.controller.reference_first(self.trial)
        if (reference_first and not self._auto_sample and not player.playing and self._reference_index is not None
                and player.heard_to_end[self._reference_index]):
            # The reference has played to its end: the sample follows, as P.800 presents the pair.
            self._auto_sample = True
            player.select(self._sample_index)
            player.seek(0.0)
            player.play()
        show_transport(self, player)
        sel = player.selected
        self.reference_button.setChecked(sel == self._reference_index)
        self.sample_button.setChecked(sel == self._sample_index)
        ready = self.can_rate
        for b in self.score_buttons.values():
            b.setEnabled(ready)
        self.next_button.setEnabled(ready and self.score is not None)
        if self.busy:
            self.listen_hint.setText("Saving your rating…")
        elif ready:
            self.listen_hint.setText("Choose your rating (1–5), then press Enter." if self.score is None
                                     else f"Your rating: {self.score}. Press Enter to save it and go on, or "
                                          f"choose another.")
        elif self._needs_reference():
            self.listen_hint.setText("Listen to the reference first (press Space); the sample follows it.")
        else:
            self.listen_hint.setText("Listen to the sample to its end (press A, then Space) before you rate it."
                                     if self._reference_index is not None else
                                     "Listen to the sample to its end (press Space) before you rate it.")
        self.listen_hint.setStyleSheet("color: #1b6e20;" if ready else "color: #555;")
        reason = player.silent_reason if self.open_audio else None
        self.silent_label.setVisible(bool(reason))
        if reason:
            self.silent_label.setText(silent_text(reason))

    def toggle_play(self) -> None:
        if self.player is not None and self.trial is not None:
            self.player.toggle()
            self.tick()

    def select_reference(self) -> None:
        if self.player is not None and self.trial is not None and self._reference_index is not None:
            self.player.select(self._reference_index)
        self.tick()

    def select_sample(self) -> None:
        if self.player is not None and self.trial is not None:
            if self._needs_reference():
                self.tick()
                return  # P.800 order: the reference first
            self.player.select(self._sample_index)
        self.tick()

    def rewind(self) -> None:
        if self.player is not None and self.trial is not None:
            self.player.seek(0.0)
            self.tick()

    def _seek_released(self) -> None:
        if self.player is not None and self.trial is not None:
            seek_to_slider(self, self.player)
            self.tick()

    def choose_score(self, score: int) -> bool:
        """Select ``score`` (1..5) for the shown trial; False (nothing changes) before the sample was heard."""
        return choose_score(self, score)

    def submit(self) -> bool:
        """Save the chosen score (committed before the next trial appears); False when nothing is being saved."""
        return submit_score(self, self.rate)

    def rate(self, score: int | list[int]) -> bool:
        """Save ``score`` for the shown trial (any test type) in the background and go on when it is
        committed; False when there is nothing to save or a save is already under way."""
        if self.busy or self.trial is None or self.player is None:
            return False
        playback = Playback.of(self.player)
        self._submit(lambda: self.controller.rate(score, playback), self._rated, self._not_saved)
        self.tick()
        return True

    def _rated(self, step: Step) -> None:
        """After a trial's rating(s) were committed: the signal, a break when due, the next trial."""
        self._pause()
        self.trial = None
        for panel in (self.mushra_panel, self.ccr_panel):
            panel.trial = None
        self._show_step(step)

    def _not_saved(self, message: str) -> None:
        panel = self._panel
        if panel is not None:
            panel.not_saved(message)
        else:
            self._trial_error(not_saved_text("Your rating", message))
        self.tick()

    def _pause(self) -> None:
        if self.player is not None and self.player.playing:
            self.player.pause()

    def _finish(self, text: str) -> None:
        self._pause()
        self.trial = None
        self.done_label.setText(text)
        self._show_page(self.PAGE_DONE)
        self.session_finished.emit()

    def reset(self) -> None:
        """Back to the start page for the next listener (the sitting ends in the background)."""
        self._pause()
        self.trial = None
        self._submit(self.controller.end_session, lambda _: None)
        self.code_edit.clear()
        self._start_error("")
        self._show_page(self.PAGE_START)

    def shutdown(self) -> None:
        """End the session, close the audio output and the database (the app calls this on exit).

        The database work in flight is waited for (at most the busy timeout and a little more),
        then the sitting's end is recorded on the worker thread; what is still queued is dropped."""
        self._timer.stop()
        if self._prepare_worker is not None and self._prepare_worker.is_running:
            self._prepare_worker.cancel()
            self._prepare_worker.wait(10.0)
        self._pause()
        self.trial = None
        self._jobs.clear()
        wait_s = self.controller.busy_timeout_s + SHUTDOWN_GRACE_S
        if self._job is not None:
            self._job.wait(wait_s)
        self._closed = True
        last = GeneratorWorker(_call(self.controller.close))
        last.start(self._pool)
        last.wait(wait_s)
        self._job = None
        if self.player is not None:
            self.player.close()

    # ------------------------------------------------------------------ Qt events
    def _handle_key(self, event: QKeyEvent) -> bool:
        """The listening keys of the page shown; True when ``event`` was one of them."""
        if event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                                | Qt.KeyboardModifier.MetaModifier):
            return False  # the window's own shortcuts
        page = self.page
        if page in (self.PAGE_MUSHRA, self.PAGE_CCR):
            panel = self._panel
            return panel.handle_key(event) if panel is not None else False
        actions: dict[Qt.Key, Callable[[], object]] = {}
        if page == self.PAGE_TRIAL:
            actions = {Qt.Key.Key_Space: self.toggle_play, Qt.Key.Key_R: self.select_reference,
                       Qt.Key.Key_A: self.select_sample, Qt.Key.Key_Home: self.rewind}
            actions.update({k: partial(self.choose_score, s) for k, s in _SCORE_KEYS.items()})
            actions.update(dict.fromkeys(ENTER_KEYS, self.submit))
        else:
            enter = {self.PAGE_INSTRUCTIONS: self.begin, self.PAGE_BREAK: self.end_break,
                     self.PAGE_PRACTICE_OVER: self.end_practice}.get(page)
            if enter is not None:
                actions = dict.fromkeys(ENTER_KEYS, enter)
        return dispatch_key(event, actions)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 — Qt's name
        if event.type() != QEvent.Type.KeyPress or not isinstance(event, QKeyEvent):
            return super().eventFilter(watched, event) if isinstance(watched, QObject) else False
        if watched is self.code_edit:
            if event.key() in ENTER_KEYS:
                # Enter starts; consumed here, so the same press cannot also pass the instructions.
                if not event.isAutoRepeat():
                    self._start_clicked()
                return True
            return False
        # Installed on the application while this view is shown: the listening keys work
        # wherever the focus is in this window (the tab bar, say), except in text fields.
        if (self.page != self.PAGE_START and self.isVisible() and isinstance(watched, QWidget)
                and watched.window() is self.window()
                and not isinstance(watched, (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit))):
            return self._handle_key(event)
        return False

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 — Qt's name
        if not self._handle_key(event):
            super().keyPressEvent(event)

    def showEvent(self, event: Any) -> None:  # noqa: N802 — Qt's name
        super().showEvent(event)
        app = QApplication.instance()
        if app is not None and not self._app_filter:
            app.installEventFilter(self)
            self._app_filter = True
        (self.code_edit if self.page == self.PAGE_START else self).setFocus()

    def hideEvent(self, event: Any) -> None:  # noqa: N802 — Qt's name
        # Another tab came to the front: stop the sound (the trial stays where it is).
        self._pause()
        app = QApplication.instance()
        if app is not None and self._app_filter:
            app.removeEventFilter(self)
            self._app_filter = False
        super().hideEvent(event)


__all__ = ["DEFAULT_STUDY", "ListenView", "prepared_state"]
