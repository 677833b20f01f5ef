"""The Listen view: a blinded listening session driven entirely from the keyboard.

::

    study file ─► StudyEngine (its database) ─► start_or_resume(code) ─► instructions
        ─► trial: Player([reference, sample]) ─► heard to the end? ─► score 1..5 ─► Enter
        ─► session.rate(...) (committed before the next trial appears) ─► … ─► break ─► … ─► done

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

Blinding: the view never shows a condition, codec, bitrate, clip or file name. A trial carries
opaque tokens and audio only (:class:`mosapp.study.Trial`); the player's stimuli are named
"reference" and "sample" and those names are not displayed either. Preparing a study (a
researcher's job) reports only counts.

A score is stored the moment the listener confirms it with Enter (or Next): ``session.rate``
commits its own transaction before the view moves on, with the play counts and listening time
the player measured and the time from the trial's start. A failed save (a locked database)
leaves the trial on screen with its score selected, so Enter tries again; nothing is lost.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from mosapp.gui.trial_widgets import add_position_row, add_trial_header
from mosapp.gui.trial_widgets import button as _button
from mosapp.gui.trial_widgets import label as _label
from mosapp.study.definition import STUDIES_DIR, StudyDefinition, load_study
from mosapp.study.errors import StudyError

#: The study the view opens when given none.
DEFAULT_STUDY = STUDIES_DIR / "demo.toml"
#: A break is suggested after this many trials …
DEFAULT_BREAK_TRIALS = 12
#: … or after this many minutes, whichever comes first.
DEFAULT_BREAK_MINUTES = 15.0
#: How long a save waits for another program holding the database.
DEFAULT_BUSY_TIMEOUT_S = 5.0
#: Playback display refresh.
POLL_MS = 40

_SCORE_KEYS = {Qt.Key_1: 1, Qt.Key_2: 2, Qt.Key_3: 3, Qt.Key_4: 4, Qt.Key_5: 5}
_ENTER_KEYS = (Qt.Key_Return, Qt.Key_Enter)

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




def _sqlite_missing(url: str) -> bool:
    """True when ``url`` is a SQLite file that does not exist yet (a study never prepared)."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:  # noqa: BLE001 - the engine reports a bad URL itself
        return False
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return False
    return not Path(u.database).exists()


def prepared_state(engine) -> str | None:
    """None when ``engine``'s study is prepared and matches its file, else a sentence saying why not."""
    from sqlalchemy import select

    from mosapp.study.store import StudyRow

    d = engine.definition
    with engine.store.read() as s:
        row = s.scalars(select(StudyRow).where(StudyRow.name == d.name)).one_or_none()
        if row is None:
            return "The stimuli of this study have not been prepared yet."
        if row.prepared_at is None:
            return "The stimuli of this study are only partly prepared (an earlier run stopped)."
        if row.design_json != d.design_json():
            return "The study file changed since its stimuli were prepared."
    return None


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
    """

    session_started = Signal(str)
    #: A study file was opened and read (its definition); the Results tab follows it.
    study_opened = Signal(object)
    rating_saved = Signal(int, int)
    session_finished = Signal()

    PAGE_START, PAGE_INSTRUCTIONS, PAGE_TRIAL, PAGE_BREAK, PAGE_DONE, PAGE_PRACTICE_OVER, PAGE_MUSHRA, PAGE_CCR = range(8)

    def __init__(self, study: str | os.PathLike[str] | StudyDefinition | None = None, parent: QWidget | None = None,
                 *, database: str | None = None, open_audio: bool = True, require_full_listen: bool = True,
                 break_every_trials: int = DEFAULT_BREAK_TRIALS, break_every_minutes: float = DEFAULT_BREAK_MINUTES,
                 busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        if isinstance(study, QWidget) and parent is None:  # ListenView(parent)
            study, parent = None, study
        super().__init__(parent)
        self.setObjectName("listenView")
        self.setWindowTitle("Listen")
        self.setFocusPolicy(Qt.StrongFocus)
        self.setStyleSheet(_STYLE)
        self.database = database
        self.open_audio = open_audio
        self.require_full_listen = require_full_listen
        self.break_every_trials = int(break_every_trials)
        self.break_every_minutes = float(break_every_minutes)
        self.busy_timeout_s = float(busy_timeout_s)

        self.definition: StudyDefinition | None = None
        self.engine = None
        self.session = None
        self.player = None
        self.trial = None
        self.score: int | None = None
        self._source: str | os.PathLike[str] | StudyDefinition | None = None
        self._sample_index = 0
        self._reference_index: int | None = None
        self._trial_started = 0.0
        self._since_break = 0
        self._break_clock = time.monotonic()
        self._prepare_worker = None
        self._audio_device_name = ""
        self._audio_opened = False
        self._app_filter = False
        self.listener_mode = False
        self._auto_sample = False

        self._build()
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.tick)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.open_study(study if study is not None else DEFAULT_STUDY)

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_start())
        self.pages.addWidget(self._build_instructions())
        self.pages.addWidget(self._build_trial())
        self.pages.addWidget(self._build_break())
        self.pages.addWidget(self._build_done())
        self.pages.addWidget(self._build_practice_over())
        # MUSHRA screens and CCR pairs: their own panels (mosapp/gui/mushra_view.py, ccr_view.py).
        from mosapp.gui.ccr_view import CcrPanel
        from mosapp.gui.mushra_view import MushraPanel

        self.mushra_panel = MushraPanel(self)
        self.pages.addWidget(self.mushra_panel)
        self.ccr_panel = CcrPanel(self)
        self.pages.addWidget(self.ccr_panel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 18, 24, 18)
        layout.addWidget(self.pages)

    def _page(self) -> tuple[QWidget, QVBoxLayout]:
        page = QWidget()
        page.setFocusPolicy(Qt.NoFocus)
        box = QVBoxLayout(page)
        box.setSpacing(12)
        return page, box

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
        self.device_combo.setFocusPolicy(Qt.NoFocus)
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
        self.prepare_box.setFrameShape(QFrame.StyledPanel)
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
        self.full_screen_box.setFocusPolicy(Qt.NoFocus)
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

        row = QHBoxLayout()
        row.addStretch(1)
        self.reference_button = _button("Reference  (R)", "stimulusButton")
        self.reference_button.setCheckable(True)
        self.reference_button.clicked.connect(lambda: self.select_reference())
        row.addWidget(self.reference_button)
        self.sample_button = _button("Sample  (A)", "stimulusButton")
        self.sample_button.setCheckable(True)
        self.sample_button.clicked.connect(lambda: self.select_sample())
        row.addWidget(self.sample_button)
        self.play_button = _button("▶  Play  (Space)", "playButton")
        self.play_button.clicked.connect(self.toggle_play)
        row.addWidget(self.play_button)
        row.addStretch(1)
        box.addLayout(row)

        add_position_row(self, box, self._slider_released)

        self.listen_hint = _label("")
        box.addWidget(self.listen_hint)
        self.silent_label = _label("", "listenWarning")
        self.silent_label.hide()
        box.addWidget(self.silent_label)

        self.question_label = _label("", "listenHeading")
        box.addWidget(self.question_label)
        self.score_group = QButtonGroup(self)
        self.score_group.setExclusive(True)
        self.score_buttons: dict[int, QPushButton] = {}
        scores = QVBoxLayout()
        scores.setSpacing(4)
        for score in (5, 4, 3, 2, 1):
            b = _button(str(score), "scoreButton")
            b.setCheckable(True)
            b.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
            b.clicked.connect(lambda _=False, s=score: self.choose_score(s))
            self.score_group.addButton(b, score)
            self.score_buttons[score] = b
            scores.addWidget(b)
        box.addLayout(scores)

        self.trial_message = _label("", "listenError")
        self.trial_message.hide()
        box.addWidget(self.trial_message)
        row = QHBoxLayout()
        row.addStretch(1)
        self.next_button = _button("Save and next  (Enter)", "primaryButton")
        self.next_button.clicked.connect(self.submit)
        row.addWidget(self.next_button)
        box.addLayout(row)
        self.trial_keys_label = _label("", "listenHint")
        box.addWidget(self.trial_keys_label)
        box.addStretch(1)
        return page

    def _build_break(self) -> QWidget:
        page, box = self._page()
        box.addWidget(_label("Time for a short break", "listenTitle"))
        self.break_label = _label("")
        self.break_label.setStyleSheet("font-size: 15px;")
        box.addWidget(self.break_label)
        row = QHBoxLayout()
        self.continue_button = _button("Continue (Enter)", "primaryButton")
        self.continue_button.clicked.connect(self.end_break)
        row.addWidget(self.continue_button)
        row.addStretch(1)
        box.addLayout(row)
        box.addStretch(1)
        return page

    def _build_practice_over(self) -> QWidget:
        page, box = self._page()
        box.addWidget(_label("Practice is over", "listenTitle"))
        self.practice_over_label = _label("")
        self.practice_over_label.setStyleSheet("font-size: 15px;")
        box.addWidget(self.practice_over_label)
        row = QHBoxLayout()
        self.practice_over_button = _button("Start (Enter)", "primaryButton")
        self.practice_over_button.clicked.connect(self.end_practice)
        row.addWidget(self.practice_over_button)
        row.addStretch(1)
        box.addLayout(row)
        box.addStretch(1)
        return page

    def _build_done(self) -> QWidget:
        page, box = self._page()
        box.addWidget(_label("Thank you!", "listenTitle"))
        self.done_label = _label("")
        self.done_label.setStyleSheet("font-size: 15px;")
        box.addWidget(self.done_label)
        row = QHBoxLayout()
        self.next_listener_button = _button("Next listener", "primaryButton")
        self.next_listener_button.clicked.connect(self.reset)
        row.addWidget(self.next_listener_button)
        row.addStretch(1)
        box.addLayout(row)
        box.addStretch(1)
        return page

    def _fill_devices(self) -> None:
        from mosapp.playback import output_devices

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
        self.pages.setCurrentIndex(index)
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
        self.start_message.setText(text)
        self.start_message.setVisible(bool(text))

    def _trial_error(self, text: str) -> None:
        self.trial_message.setText(text)
        self.trial_message.setVisible(bool(text))

    # ------------------------------------------------------------------ study
    def open_study(self, study: str | os.PathLike[str] | StudyDefinition) -> bool:
        """Open ``study`` (ending any running session); False with a message in the view when it cannot be."""
        self._end_session()
        self._close_engine()
        self._source = study
        self.definition = None
        self.prepare_box.hide()
        self._start_error("")
        self._show_page(self.PAGE_START)
        try:
            self.definition = study if isinstance(study, StudyDefinition) else load_study(study, check_codecs=False)
        except StudyError as exc:
            self.title_label.setText("No study open")
            self._set_startable(False)
            self._start_error(f"{exc} Fix the file or open another study.")
            return False
        d = self.definition
        self.title_label.setText(d.title)
        self.study_opened.emit(d)
        url = self.database or d.database_url
        if _sqlite_missing(url):
            self._need_prepare("The stimuli of this study have not been prepared yet.")
            return False
        from mosapp.study.engine import StudyEngine

        try:
            self.engine = StudyEngine.open(d, database=self.database, busy_timeout_s=self.busy_timeout_s)
            why = prepared_state(self.engine)
        except StudyError as exc:
            self._close_engine()
            self._set_startable(False)
            self._start_error(str(exc))
            return False
        if why is not None:
            self._need_prepare(why)
            return False
        self._set_startable(True)
        return True

    def _set_startable(self, ok: bool) -> None:
        self.start_button.setEnabled(ok)
        self.code_edit.setEnabled(ok)

    def _need_prepare(self, why: str) -> None:
        self._set_startable(False)
        self.prepare_label.setText(f"{why} A study's stimuli are rendered once, before the first listener; this "
                                   f"takes a while for long excerpts or many conditions.")
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

    def _close_engine(self) -> None:
        if self.engine is not None:
            try:
                self.engine.close()
            except Exception:  # noqa: BLE001 - closing must never fail the view
                pass
            self.engine = None

    # ------------------------------------------------------------------ preparing
    @property
    def preparing(self) -> bool:
        return self._prepare_worker is not None and self._prepare_worker.is_running

    def prepare(self) -> None:
        """Render the study's stimuli in a background worker ("Prepare now")."""
        from mosapp.gui.workers import GeneratorWorker

        if self.preparing or self._source is None:
            return
        source, database = self._source, self.database
        self._close_engine()

        def job():
            from mosapp.study.prepare import prepare_study
            from mosapp.study.store import open_store

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

    def _prepare_progress(self, p) -> None:
        self.prepare_progress.setRange(0, max(1, p.total))
        self.prepare_progress.setValue(p.done)
        self.prepare_progress.setFormat(f"{p.done} of {p.total}")
        self.prepare_status.setText(f"Preparing stimuli: {p.done} of {p.total} done.")

    def _prepare_done(self) -> None:
        self.prepare_cancel_button.hide()
        self.prepare_button.setEnabled(True)

    def _prepare_finished(self, result) -> None:
        self._prepare_done()
        self.prepare_progress.hide()
        ok = self.open_study(self._source)
        if ok:
            extra = f" ({len(result.warnings)} warning(s): see the command line's prepare)" if result.warnings else ""
            self._start_error(f"The study is prepared ({result.total} stimuli in {result.seconds:.0f} s){extra}. "
                              f"Enter a listener code to begin.", error=False)

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

    def _ensure_player(self) -> None:
        import numpy as np

        from mosapp.core.config import PIPELINE_SAMPLE_RATE
        from mosapp.playback import Player

        if self.player is None:
            self.player = Player([np.zeros((1, PIPELINE_SAMPLE_RATE // 10), np.float32)], rate=PIPELINE_SAMPLE_RATE,
                                 names=["silence"])
        if self.open_audio and not self._audio_opened:
            self._audio_opened = True
            self.player.open(self.device_combo.currentData())
        device = self.player.device
        self._audio_device_name = device.name if device is not None else "none (silent)"

    def start(self, code: str) -> bool:
        """Start or resume the session of listener ``code``; False with a message when it cannot."""
        if self.engine is None:
            self._start_error(self.start_message.text() or "No prepared study is open.")
            return False
        if not code:
            self._start_error("Enter your listener code first.")
            return False
        self._ensure_player()
        try:
            session = self.engine.start_or_resume(code, audio_device=self._audio_device_name)
            progress = session.progress
        except StudyError as exc:
            self._start_error(str(exc))
            return False
        self._start_error("")
        self.session = session
        self._since_break = 0
        self._break_clock = time.monotonic()
        self.session_started.emit(code)
        if progress.finished:
            self._finish("You have already rated every trial of this study. Your answers are saved.")
            return True
        d = self.definition
        self.instructions_title.setText(d.title)
        done = progress.next_index
        total = progress.total + progress.training_total
        self.welcome_label.setText(f"Welcome back, {code}. Resuming at trial {done + 1} of {total}: the {done} "
                                   f"trial(s) you rated before are saved." if done else f"Welcome, {code}.")
        self.instructions_label.setText(d.instructions)
        left_training = progress.training_total - progress.training_rated
        if left_training > 0:
            first = "The first trial is" if left_training == 1 else f"The first {left_training} trials are"
            self.training_label.setText(f"{first} practice, to get used to the sounds and the scale; then "
                                        f"{progress.total - progress.rated} trials follow.")
        else:
            self.training_label.setText(f"{progress.total - progress.rated} trials to go.")
        self.keys_label.setText(self._keys_text() + " You can take a break at any time: every answer is saved "
                                                    "the moment you give it.")
        self._show_page(self.PAGE_INSTRUCTIONS)
        return True

    @property
    def _panel(self):
        """The MUSHRA or CCR panel of the open study, or None (DCR/ACR use the trial page)."""
        t = self.definition.test_type if self.definition is not None else None
        return {"mushra": self.mushra_panel, "ccr": self.ccr_panel}.get(t)

    def _keys_text(self) -> str:
        if self._panel is not None:
            return self._panel.keys_text()
        dcr = self.definition is not None and self.definition.test_type == "dcr"
        parts = ["Space: play / pause"]
        if dcr:
            parts.append("R: reference")
        if dcr and self.definition.reference_first:
            parts.append("(the reference plays first, then the sample)")
        parts += ["A: sample", "1–5: your rating", "Enter: save and go on"]
        return "Keys — " + " · ".join(parts) + "."

    def begin(self) -> None:
        """Leave the instructions: show the next trial."""
        if self.session is not None:
            self._next_trial()

    # ------------------------------------------------------------------ trials
    def _next_trial(self) -> None:
        try:
            trial = self.session.next_trial()
        except StudyError as exc:
            self._show_page(self.PAGE_START)
            self._start_error(str(exc))
            return
        if trial is None:
            self._finish("All trials are rated and your answers are saved. You can tell the researcher you are done.")
            return
        self.trial = trial
        self.score = None
        if self._panel is not None:
            self._panel.show_trial(trial)
            self._trial_started = time.monotonic()
            self._show_page(self.PAGE_MUSHRA if self._panel is self.mushra_panel else self.PAGE_CCR)
            self._panel.tick()
            return
        dcr = trial.reference is not None
        if dcr:
            buffers, names = [trial.reference, trial.sample], ["reference", "sample"]
            self._reference_index, self._sample_index = 0, 1
        else:
            buffers, names = [trial.sample], ["sample"]
            self._reference_index, self._sample_index = None, 0
        self.player.load(buffers, names=names)
        self.player.select(self._reference_index if dcr else self._sample_index)
        self._auto_sample = False
        self._trial_started = time.monotonic()
        # Header and progress.
        if trial.is_training:
            training_total = self.session.progress.training_total
            self.trial_label.setText(f"Practice trial {trial.index + 1} of {training_total}")
        else:
            p = self.session.progress
            self.trial_label.setText(f"Trial {p.rated + 1} of {p.total}")
        self.progress_label.setText(f"{trial.index} of {trial.total} done")
        self.progress_bar.setRange(0, trial.total)
        self.progress_bar.setValue(trial.index)
        self.practice_label.setVisible(trial.is_training)
        self.reference_button.setVisible(dcr)
        self.question_label.setText(
            "How much is the sample degraded compared with the reference?" if dcr
            else "How good is the quality of the sample?")
        labels = self.definition.labels
        for score, b in self.score_buttons.items():
            b.setText(f"{score}    {labels[score - 1]}")
        self.score_group.setExclusive(False)
        for b in self.score_buttons.values():
            b.setChecked(False)
        self.score_group.setExclusive(True)
        self.trial_keys_label.setText(self._keys_text())
        self._trial_error("")
        self._show_page(self.PAGE_TRIAL)
        self.tick()

    @property
    def can_rate(self) -> bool:
        """The rating keys work: a trial is shown and (when required) the sample was heard to its end."""
        if self.trial is None or self.player is None or self.page != self.PAGE_TRIAL:
            return False
        if self._reference_first and not self.player.heard_to_end[self._reference_index]:
            return False
        return not self.require_full_listen or self.player.heard_to_end[self._sample_index]

    @property
    def _reference_first(self) -> bool:
        """P.800 order: this DCR trial's reference must be heard to its end before the sample."""
        return (self.definition is not None and self.definition.reference_first and self.trial is not None
                and self._reference_index is not None)

    def tick(self) -> None:
        """Bring the trial page up to date with the player (called by a timer while a trial is shown)."""
        player = self.player
        if player is None or self.trial is None:
            return
        if self.page in (self.PAGE_MUSHRA, self.PAGE_CCR):
            self.pages.currentWidget().tick()
            return
        if (self._reference_first and not self._auto_sample and not player.playing
                and player.heard_to_end[self._reference_index]):
            # The reference has played to its end: the sample follows, as P.800 presents the pair.
            self._auto_sample = True
            player.select(self._sample_index)
            player.seek(0.0)
            player.play()
        pos, total = player.position_s, player.duration_s
        if not self.position_slider.isSliderDown():
            self.position_slider.setValue(int(round(1000 * pos / total)) if total > 0 else 0)
        self.time_label.setText(f"{pos:.1f} / {total:.1f} s")
        self.play_button.setText("❚❚  Pause  (Space)" if player.playing else "▶  Play  (Space)")
        sel = player.selected
        self.reference_button.setChecked(sel == self._reference_index)
        self.sample_button.setChecked(sel == self._sample_index)
        ready = self.can_rate
        for b in self.score_buttons.values():
            b.setEnabled(ready)
        self.next_button.setEnabled(ready and self.score is not None)
        if ready:
            self.listen_hint.setText("Choose your rating (1–5), then press Enter." if self.score is None
                                     else f"Your rating: {self.score}. Press Enter to save it and go on, or "
                                          f"choose another.")
        elif self._reference_first and not player.heard_to_end[self._reference_index]:
            self.listen_hint.setText("Listen to the reference first (press Space); the sample follows it.")
        else:
            self.listen_hint.setText("Listen to the sample to its end (press A, then Space) before you rate it."
                                     if self._reference_index is not None else
                                     "Listen to the sample to its end (press Space) before you rate it.")
        self.listen_hint.setStyleSheet("color: #1b6e20;" if ready else "color: #555;")
        reason = player.silent_reason if self.open_audio else None
        self.silent_label.setVisible(bool(reason))
        if reason:
            self.silent_label.setText(f"{reason} Tell the researcher: the sounds cannot be heard on this computer.")

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
            if self._reference_first and not self.player.heard_to_end[self._reference_index]:
                self.tick()
                return  # P.800 order: the reference first
            self.player.select(self._sample_index)
        self.tick()

    def rewind(self) -> None:
        if self.player is not None and self.trial is not None:
            self.player.seek(0.0)
            self.tick()

    def _slider_released(self) -> None:
        if self.player is not None and self.trial is not None:
            self.player.seek(self.position_slider.value() / 1000 * self.player.duration_s)
            self.tick()

    def choose_score(self, score: int) -> bool:
        """Select ``score`` (1..5) for the shown trial; False (nothing changes) before the sample was heard."""
        if not self.can_rate or score not in self.score_buttons:
            self.tick()
            return False
        self.score = score
        self.score_buttons[score].setChecked(True)
        self.tick()
        return True

    def submit(self) -> bool:
        """Store the chosen score (committed before this returns) and go on; False when nothing was stored."""
        if self.trial is None or self.score is None or not self.can_rate:
            return False
        player = self.player
        counts, listened = player.play_counts, player.listened_s
        plays_sample = counts[self._sample_index]
        plays_reference = counts[self._reference_index] if self._reference_index is not None else 0
        listening = float(sum(listened))
        response = max(0.0, time.monotonic() - self._trial_started)
        trial, score = self.trial, self.score
        try:
            self.session.rate(trial, score, play_counts=(plays_sample, plays_reference),
                              listening_time_s=listening if math.isfinite(listening) else 0.0,
                              response_time_s=response)
        except StudyError as exc:
            self._trial_error(f"Your rating was not saved: {exc} Press Enter to try again.")
            return False
        self._saved(trial, score)
        return True

    def _saved(self, trial, score: int) -> None:
        """After a trial's rating(s) were committed: the signal, a break when due, the next trial."""
        player = self.player
        if player.playing:
            player.pause()
        self.trial = None
        self.rating_saved.emit(trial.index, score)
        self._since_break += 1
        if trial.index + 1 >= trial.total:
            self._next_trial()  # shows the end
            return
        if trial.is_training:
            p = self.session.progress
            if p.training_rated >= p.training_total:
                self.practice_over_label.setText(
                    f"The practice trials are over. The {p.total - p.rated} trials that count start now; they "
                    f"work the same way. Press Enter or Start when you are ready.")
                self._show_page(self.PAGE_PRACTICE_OVER)
                return
        minutes = (time.monotonic() - self._break_clock) / 60.0
        if ((self.break_every_trials > 0 and self._since_break >= self.break_every_trials)
                or (self.break_every_minutes > 0 and minutes >= self.break_every_minutes)):
            p = self.session.progress
            self.break_label.setText(
                f"You have done {p.next_index} of {p.total + p.training_total} trials. Rest your ears for a few "
                f"minutes; your answers are saved. Press Enter or Continue when you are ready.")
            self._show_page(self.PAGE_BREAK)
            return
        self._next_trial()

    def end_practice(self) -> None:
        """Leave the "practice is over" page: the first trial that counts."""
        if self.session is not None:
            self._next_trial()

    def end_break(self) -> None:
        self._since_break = 0
        self._break_clock = time.monotonic()
        if self.session is not None:
            self._next_trial()

    def _finish(self, text: str) -> None:
        self.trial = None
        self.done_label.setText(text)
        self._end_session()
        self._show_page(self.PAGE_DONE)
        self.session_finished.emit()

    def _end_session(self) -> None:
        if self.player is not None and self.player.playing:
            self.player.pause()
        self.trial = None
        if self.session is not None:
            try:
                self.session.close()
            except StudyError:
                pass  # the end time of the sitting is bookkeeping; every rating is already committed
            self.session = None

    def reset(self) -> None:
        """Back to the start page for the next listener."""
        self._end_session()
        self.code_edit.clear()
        self._start_error("")
        self._show_page(self.PAGE_START)

    def shutdown(self) -> None:
        """End the session, close the audio output and the database (the app calls this on exit)."""
        self._timer.stop()
        if self._prepare_worker is not None and self._prepare_worker.is_running:
            self._prepare_worker.cancel()
            self._prepare_worker.wait(10.0)
        self._end_session()
        if self.player is not None:
            self.player.close()
        self._close_engine()

    # ------------------------------------------------------------------ Qt events
    def _handle_key(self, event: QKeyEvent) -> bool:
        """The listening keys of the page shown; True when ``event`` was one of them."""
        if event.modifiers() & (Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier):
            return False  # the window's own shortcuts
        key = event.key()
        page = self.page
        repeat = event.isAutoRepeat()
        if page in (self.PAGE_MUSHRA, self.PAGE_CCR):
            return self.pages.currentWidget().handle_key(event)
        if page == self.PAGE_TRIAL:
            actions = {Qt.Key_R: self.select_reference, Qt.Key_A: self.select_sample, Qt.Key_Home: self.rewind}
            if key == Qt.Key_Space:
                if not repeat:
                    self.toggle_play()
            elif key in actions:
                actions[key]()
            elif key in _SCORE_KEYS:
                self.choose_score(_SCORE_KEYS[key])
            elif key in _ENTER_KEYS:
                if not repeat:
                    self.submit()
            else:
                return False
            return True
        if page == self.PAGE_INSTRUCTIONS and key in _ENTER_KEYS:
            if not repeat:
                self.begin()
            return True
        if page == self.PAGE_BREAK and key in _ENTER_KEYS:
            if not repeat:
                self.end_break()
            return True
        if page == self.PAGE_PRACTICE_OVER and key in _ENTER_KEYS:
            if not repeat:
                self.end_practice()
            return True
        return False

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() != QEvent.KeyPress:
            return super().eventFilter(watched, event)
        if watched is self.code_edit:
            if event.key() in _ENTER_KEYS:
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

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if not self._handle_key(event):
            super().keyPressEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        app = QApplication.instance()
        if app is not None and not self._app_filter:
            app.installEventFilter(self)
            self._app_filter = True
        (self.code_edit if self.page == self.PAGE_START else self).setFocus()

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt's name
        # Another tab came to the front: stop the sound (the trial stays where it is).
        if self.player is not None and self.player.playing:
            self.player.pause()
        app = QApplication.instance()
        if app is not None and self._app_filter:
            app.removeEventFilter(self)
            self._app_filter = False
        super().hideEvent(event)


__all__ = ["DEFAULT_STUDY", "ListenView", "prepared_state"]
