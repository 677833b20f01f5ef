"""The Listen view: a blinded listening session driven entirely from the keyboard.

::

    study file ─► ListenController (mosapp.study.listening; its database, on a worker thread)
        ─► start(code) ─► instructions ─► trial: Player(streams(trial)) ─► heard to the end?
        ─► score 1..5 ─► Enter ─► controller.rate(...) (committed before the next trial appears)
        ─► … ─► break ─► … ─► done

A trial is shown on its test type's panel (:mod:`mosapp.gui.listen_panels`: DCR/ACR, MUSHRA,
CCR …), which has the trial's keys; the view owns the pages around the trials (start:
:mod:`mosapp.gui.listen_start`, instructions, practice over, break, done), the player, the
worker thread and the keys that move between pages. DCR/ACR keys: **Space** play/pause, **R**
the reference (DCR), **A** the sample, **1–5** the score, **Enter** save and go on, **Home** back
to the start. The rating buttons stay disabled until the sample has been heard to its end once
(``require_full_listen``; the study file has no such field, so it is a setting of the view and
on by default).

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
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QFrame,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from mosapp.gui.listen_audio import ListenAudio
from mosapp.gui.listen_panels import PanelFactory, panel_class
from mosapp.gui.listen_queue import ControllerQueue
from mosapp.gui.listen_start import InstructionsPage, StartPage, message_page
from mosapp.gui.trial_widgets import ENTER_KEYS, TrialPanel, break_message, dispatch_key, resume_text
from mosapp.gui.workers import GeneratorWorker
from mosapp.playback import Player
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
from mosapp.study.sitting import Progress

#: The study the view opens when given none.
DEFAULT_STUDY = STUDIES_DIR / "demo.toml"
#: Playback display refresh.
POLL_MS = 40
#: How long closing the view waits for the database work in flight (beyond the busy timeout).
SHUTDOWN_GRACE_S = 2.0

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


class _ControllerSetting:
    """A view attribute that is the controller's attribute of the same name (read, and written as ``cast``)."""

    def __init__(self, cast: Callable[[Any], Any]) -> None:
        self.cast = cast
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, view: Any, owner: type | None = None) -> Any:
        return self if view is None else getattr(view.controller, self.name)

    def __set__(self, view: Any, value: Any) -> None:
        setattr(view.controller, self.name, self.cast(value))


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

    #: The pages; PAGE_TRIAL holds the open study's test type's panel (:attr:`panel`).
    PAGE_START, PAGE_INSTRUCTIONS, PAGE_TRIAL, PAGE_BREAK, PAGE_DONE, PAGE_PRACTICE_OVER = range(6)

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
        self.source: str | os.PathLike[str] | StudyDefinition | None = None
        self.trial: AnyTrial | None = None
        #: The open study's trial panel (on :attr:`PAGE_TRIAL`), one per panel class, made when first needed.
        self.panel: TrialPanel | None = None
        self._panels: dict[PanelFactory, TrialPanel] = {}
        self.audio = ListenAudio(self, open_audio=open_audio)
        self.audio.note.connect(self.researcher_note)
        self._app_filter = False
        self.listener_mode = False
        # The database work: one job at a time on a thread of its own, the rest queued.
        self.queue = ControllerQueue(self, after_each=self.tick)
        self._opening = 0
        self._starting = False

        self._build()
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.tick)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.open_study(study if study is not None and not isinstance(study, QWidget) else demo_study())

    # ------------------------------------------------------------------ the controller's settings
    require_full_listen = _ControllerSetting(bool)
    break_every_trials = _ControllerSetting(int)
    break_every_minutes = _ControllerSetting(float)
    busy_timeout_s = _ControllerSetting(float)

    @property
    def player(self) -> Player | None:
        """The trials' player (made when the first session starts)."""
        return self.audio.player

    @property
    def session(self) -> object | None:
        """The listener's open session (the controller's), or None."""
        return self.controller.session

    # ------------------------------------------------------------------ database work off the GUI thread
    @property
    def busy(self) -> bool:
        """Database work is running or queued (the window stays responsive meanwhile)."""
        return self.queue.busy

    def submit(self, call: Callable[[], Any], on_done: Callable[[Any], None],
               on_failed: Callable[[str], None] | None = None) -> None:
        """Run ``call`` (a controller method) on the worker thread after the jobs before it;
        ``on_done(result)`` or ``on_failed(message)`` (default: on the start page) then runs here."""
        self.queue.submit(call, on_done, on_failed or self.start_page.show_error)

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.pages = _Pages()
        self.start_page = start = StartPage(self)
        # The start page's widgets by the names the view has always answered to (tests, the main window).
        self.title_label, self.code_edit, self.start_button = start.title_label, start.code_edit, start.start_button
        self.device_combo, self.refresh_devices_button = start.device_combo, start.refresh_devices_button
        self.start_message, self.prepare_box, self.prepare_label = start.start_message, start.prepare_box, \
            start.prepare_label
        self.prepare_button, self.full_screen_box, self.open_button = start.prepare_button, start.full_screen_box, \
            start.open_button
        self.start_controls = start.start_controls
        self.instructions_page = InstructionsPage(self.begin)
        self.keys_label = self.instructions_page.keys_label
        self.welcome_label = self.instructions_page.welcome_label
        break_page, self.break_label, self.continue_button = message_page(
            "Time for a short break", "Continue (Enter)", self.end_break)
        done_page, self.done_label, self.next_listener_button = message_page("Thank you!", "Next listener", self.reset)
        over_page, self.practice_over_label, self.practice_over_button = message_page(
            "Practice is over", "Start (Enter)", self.end_practice)
        trial_slot = QWidget()  # replaced by the open study's panel
        for page in (self.start_page, self.instructions_page, trial_slot, break_page, done_page, over_page):
            self.pages.addWidget(page)
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

    def _use_panel(self, definition: StudyDefinition) -> None:
        """Put the panel of ``definition``'s test type on :attr:`PAGE_TRIAL` (made the first time)."""
        cls = panel_class(definition.test_type)
        panel = self._panels.get(cls)
        if panel is None:
            panel = self._panels[cls] = cls(self)
        if panel is self.panel:
            return
        current = self.pages.widget(self.PAGE_TRIAL)
        if current is not None:
            self.pages.removeWidget(current)
        self.pages.insertWidget(self.PAGE_TRIAL, panel)
        self.panel = panel

    # ------------------------------------------------------------------ listener mode
    @property
    def full_screen_requested(self) -> bool:
        """The researcher asked for full screen during sessions (the main window reads this)."""
        return self.full_screen_box.isChecked()

    def set_listener_mode(self, on: bool) -> None:
        """In listener mode the researcher's controls (other studies, preparing, full screen) are hidden."""
        self.listener_mode = bool(on)
        self.start_page.set_listener_mode(self.listener_mode)

    # ------------------------------------------------------------------ pages
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
        if index == self.PAGE_TRIAL:
            self._timer.start()
        else:
            self._timer.stop()
        if index == self.PAGE_START:
            self.code_edit.setFocus()
        else:
            self.setFocus()

    # ------------------------------------------------------------------ study
    def open_study(self, study: str | os.PathLike[str] | StudyDefinition, *, note: str = "") -> bool:
        """Open ``study`` (ending any running session); False with a message in the view when its file
        cannot be read. Its database is then checked in the background (:attr:`busy`): the start
        page offers a listener code once it is prepared, or says why not (with ``note`` when it is)."""
        self._pause()
        self.trial = None
        self.submit(self.controller.close, lambda _: None)
        self._opening += 1
        ticket = self._opening
        self.source = study
        self.definition = None
        self.prepare_box.hide()
        self.start_page.show_error("")
        self._show_page(self.PAGE_START)
        self.start_page.set_startable(False)
        try:
            definition = study if isinstance(study, StudyDefinition) else load_study(study, check_codecs=False)
            self._use_panel(definition)
        except StudyError as exc:
            self.title_label.setText("No study open")
            self.start_page.show_error(f"{exc} Fix the file or open another study.")
            return False
        self.definition = definition
        self.title_label.setText(definition.title)
        self.study_opened.emit(definition)
        self.submit(lambda: self.controller.open(definition),
                    lambda why: self._opened(ticket, why, note), lambda message: self._open_failed(ticket, message))
        return True

    def _opened(self, ticket: int, why: str | None, note: str) -> None:
        if ticket != self._opening:
            return  # another study was opened meanwhile
        if why is not None:
            self.start_page.need_prepare(why, self.definition)
            return
        self.start_page.set_startable(True)
        if note:
            self.start_page.show_error(note, error=False)
        if self.page == self.PAGE_START:
            self.code_edit.setFocus()

    def _open_failed(self, ticket: int, message: str) -> None:
        if ticket == self._opening:
            self.start_page.set_startable(False)
            self.start_page.show_error(message)

    def open_path(self, path: str | os.PathLike[str]) -> None:
        """A file dropped on the window while this view is current: a study file is opened."""
        if self.session is not None:
            return  # never swap the study under a listener
        if Path(path).suffix.lower() == ".toml":
            self.open_study(path)
        else:
            self.start_page.show_error(f"{Path(path).name} is not a study file; drop a .toml study file here.")

    @property
    def preparing(self) -> bool:
        """The study's stimuli are being prepared (the start page's "Prepare now")."""
        return self.start_page.preparing

    def prepare(self) -> None:
        """Render the study's stimuli in a background worker ("Prepare now")."""
        self.start_page.prepare()

    @property
    def _prepare_worker(self) -> GeneratorWorker | None:
        return self.start_page._prepare_worker

    # ------------------------------------------------------------------ starting a session
    def start(self, code: str) -> bool:
        """Start or resume the session of listener ``code`` (in the background); False with a message
        when it cannot start at all (or while a start is already under way)."""
        if self._starting:
            return False
        problem = self.controller.start_problem(code)
        if problem is not None:
            self.start_page.show_error((self.start_message.text() if not self.controller.is_open else "") or problem)
            return False
        self.audio.ensure(self.device_combo.currentData())
        device = self.audio.device_name
        self._starting = True
        self.submit(lambda: self.controller.start(code, audio_device=device), lambda step: self._started(code, step),
                    self._start_failed)
        return True

    def _start_failed(self, message: str) -> None:
        self._starting = False
        self.start_page.show_error(message)

    def _started(self, code: str, step: Step) -> None:
        self._starting = False
        self.start_page.show_error("")
        self.session_started.emit(code)
        if step.screen is Screen.DONE:
            self._finish(step.message)
            return
        progress = step.progress
        assert progress is not None and self.definition is not None and self.panel is not None
        d, page = self.definition, self.instructions_page
        page.title.setText(d.title)
        page.welcome_label.setText(resume_text(code, progress, d.kind.noun))
        page.instructions_label.setText(d.instructions)
        page.training_label.setText(plan_text(progress))
        page.keys_label.setText(self.panel.keys_text() + " You can take a break at any time: every answer is saved "
                                                         "the moment you give it.")
        self._show_page(self.PAGE_INSTRUCTIONS)

    def _step(self, action: Callable[[], Step | None]) -> None:
        """Run a controller action that leads to the next screen (nothing while the database is busy)."""
        if not self.busy and self.session is not None:
            self.submit(action, self._show_step)

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
            noun = self.definition.kind.noun if self.definition is not None else "trial"
            self.break_label.setText(break_message(step.progress, noun))
            self._show_page(self.PAGE_BREAK)
        else:  # START: the session cannot go on
            self._show_page(self.PAGE_START)
            self.start_page.show_error(step.message)

    def _show_trial(self, trial: AnyTrial, progress: Progress) -> None:
        self.trial = trial
        self.audio.load(streams(trial), self.device_combo.currentData())
        assert self.panel is not None
        self.panel.show_trial(trial, progress)
        self._show_page(self.PAGE_TRIAL)
        self.tick()

    # ------------------------------------------------------------------ the trial shown
    @property
    def can_rate(self) -> bool:
        """The shown trial may be rated now (its panel's rating keys work)."""
        panel = self.panel
        return bool(panel is not None and self.page == self.PAGE_TRIAL and panel.can_rate)

    @property
    def score(self) -> Any:
        """The score chosen on the shown trial's panel, or None."""
        return self.panel.score if self.panel is not None else None

    def tick(self) -> None:
        """Bring the trial page up to date with the player (called by a timer while a trial is shown)."""
        player = self.player
        if player is None or self.trial is None:
            return
        self.audio.keep_margin()
        if self.page == self.PAGE_TRIAL and self.panel is not None:
            self.panel.tick()

    def toggle_play(self) -> None:
        if self.panel is not None and self.trial is not None:
            self.panel.toggle_play()

    def rate(self, score: int | list[int]) -> bool:
        """Save ``score`` for the shown trial (any test type) in the background and go on when it is
        committed; False when there is nothing to save or a save is already under way."""
        if self.busy or self.trial is None or self.player is None:
            return False
        playback = Playback.of(self.player)
        self.submit(lambda: self.controller.rate(score, playback), self._rated, self._not_saved)
        self.tick()
        return True

    def _rated(self, step: Step) -> None:
        """After a trial's rating(s) were committed: the signal, a break when due, the next trial."""
        self._pause()
        self.trial = None
        if self.panel is not None:
            self.panel.trial = None
        self._show_step(step)

    def _not_saved(self, message: str) -> None:
        if self.panel is not None:
            self.panel.not_saved(message)
        self.tick()

    def _pause(self) -> None:
        self.audio.pause()

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
        self.submit(self.controller.end_session, lambda _: None)
        self.code_edit.clear()
        self.start_page.show_error("")
        self._show_page(self.PAGE_START)

    def shutdown(self) -> None:
        """End the session, close the audio output and the database (the app calls this on exit).

        The database work in flight is waited for (at most the busy timeout and a little more),
        then the sitting's end is recorded on the worker thread; what is still queued is dropped."""
        self._timer.stop()
        self.start_page.stop_preparing()
        self._pause()
        self.trial = None
        self.queue.close(self.controller.close, self.controller.busy_timeout_s + SHUTDOWN_GRACE_S)
        self.audio.close()

    # ------------------------------------------------------------------ Qt events
    def _handle_key(self, event: QKeyEvent) -> bool:
        """The listening keys of the page shown; True when ``event`` was one of them."""
        if event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                                | Qt.KeyboardModifier.MetaModifier):
            return False  # the window's own shortcuts
        page = self.page
        if page == self.PAGE_TRIAL:
            return self.panel.handle_key(event) if self.panel is not None else False
        enter = {self.PAGE_INSTRUCTIONS: self.begin, self.PAGE_BREAK: self.end_break,
                 self.PAGE_PRACTICE_OVER: self.end_practice}.get(page)
        return enter is not None and dispatch_key(event, dict.fromkeys(ENTER_KEYS, enter))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 — Qt's name
        if event.type() != QEvent.Type.KeyPress or not isinstance(event, QKeyEvent):
            return super().eventFilter(watched, event) if isinstance(watched, QObject) else False
        if watched is self.code_edit:
            if event.key() in ENTER_KEYS:
                # Enter starts; consumed here, so the same press cannot also pass the instructions.
                if not event.isAutoRepeat():
                    self.start_page.start_clicked()
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


__all__ = ["DEFAULT_STUDY", "ListenView", "demo_study", "prepared_state", "user_data_folder"]
