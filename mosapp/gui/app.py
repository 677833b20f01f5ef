"""The main window (Inspect, Listen and Results as tabs) and :func:`run_app`, what ``mosapp`` opens.

Views other than Inspect are found by name: the tab ``Listen`` shows
``mosapp.gui.listen_view.ListenView`` and ``Results`` shows
``mosapp.gui.results_view.ResultsView`` when those modules exist, and a "coming" note until
then. A view class is constructed with one keyword, ``parent``; it may define
``shutdown()`` (called when the window closes) and ``open_path(path)`` (called for a file
dropped onto the window while its tab is current; Inspect gets every other drop).

Listener mode (:mod:`mosapp.gui.listener_mode`): a view with a ``session_started`` signal
locks the window to itself when a session starts (Listen does); Ctrl+Alt+Shift+Q (with the
``MOSAPP_LISTENER_PIN`` when set) gives it back. While locked, status messages are dropped,
files dropped on the window are ignored and the window cannot be closed.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, cast

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QTabWidget, QWidget

from mosapp.gui.inspect_view import InspectView
from mosapp.gui.listener_mode import ListenerLock
from mosapp.study.definition import StudyDefinition
from mosapp.views.jobs import AudioSource

APP_NAME = "mosapp"
WINDOW_TITLE = "mosapp — audio as spectrogram images"
#: (tab title, module under mosapp.gui, class) of the views written separately.
OPTIONAL_VIEWS = (("Listen", "listen_view", "ListenView"), ("Results", "results_view", "ResultsView"),
                  ("Evaluate", "evaluation_view", "EvaluationView"))
#: Status bar messages stay this long (ms); errors stay until replaced.
STATUS_MS = 8000


class _StudyView(Protocol):
    """What the main window uses of a view that shows a study (Results, Listen)."""

    database: str | None

    def open_study(self, study: str | os.PathLike[str] | StudyDefinition) -> None: ...


def load_optional_view(title: str, module: str, cls: str, parent: QWidget | None = None) -> QWidget:
    """The view ``mosapp.gui.<module>.<cls>``, or a placeholder saying it is coming (or why it failed)."""
    try:
        mod = importlib.import_module(f"mosapp.gui.{module}")
        return getattr(mod, cls)(parent=parent)
    except ModuleNotFoundError as exc:
        if exc.name == f"mosapp.gui.{module}":
            text = f"The {title} view is coming."
        else:
            traceback.print_exc(file=sys.stderr)
            text = f"The {title} view could not be loaded: {exc}."
    except Exception as exc:  # noqa: BLE001 — a broken view must not stop the window
        traceback.print_exc(file=sys.stderr)
        text = f"The {title} view could not be loaded ({type(exc).__name__}: {exc})."
    label = QLabel(text, parent)
    label.setObjectName(f"{module}_placeholder")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return label


#: The window's size on a screen with room for it.
DEFAULT_SIZE = (1400, 860)


def default_size(window: QWidget) -> tuple[int, int]:
    """:data:`DEFAULT_SIZE`, or less on a smaller screen: the screen's free area (less a task bar)
    minus room for the window manager's frame, never below what the window needs."""
    screen = window.screen() or QApplication.primaryScreen()
    width, height = DEFAULT_SIZE
    if screen is not None:
        free = screen.availableGeometry()
        width, height = min(width, free.width() - 16), min(height, free.height() - 48)
    least = window.minimumSizeHint()
    return max(width, least.width()), max(height, least.height())


class MainWindow(QMainWindow):
    """Tabs Inspect / Listen / Results, a status bar, and files dropped anywhere on the window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(WINDOW_TITLE)
        self.setAcceptDrops(True)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.inspect = InspectView(parent=self.tabs)
        self.tabs.addTab(self.inspect, "Inspect")
        self.views: dict[str, QWidget] = {"Inspect": self.inspect}
        for title, module, cls in OPTIONAL_VIEWS:
            view = load_optional_view(title, module, cls, parent=self.tabs)
            self.views[title] = view
            self.tabs.addTab(view, title)
        self.setCentralWidget(self.tabs)
        self.listener_lock = ListenerLock(self, self.tabs)
        for view in self.views.values():
            self.listener_lock.watch(view)
        #: Each tab's last status line (text, error): the status bar shows the current tab's only.
        self._messages: dict[QWidget, tuple[str, bool]] = {}
        self.inspect.message.connect(
            lambda text: self.set_tab_message(self.inspect, text, bool(self.inspect.controls.message_label.property("error"))))
        self.tabs.currentChanged.connect(self._on_tab_changed)
        listen, results = self.views.get("Listen"), self.views.get("Results")
        study_opened = getattr(listen, "study_opened", None)
        if listen is not None and results is not None and study_opened is not None and hasattr(results, "open_study"):
            study_opened.connect(lambda definition: self._results_follow(listen, results, definition))
            first = getattr(listen, "definition", None)
            note = getattr(listen, "researcher_note", None)
            if note is not None:  # underruns: the status bar, which listener mode hides
                note.connect(lambda text: self.set_tab_message(listen, text))
            if isinstance(first, StudyDefinition):  # opened before the connection (the demo, in the user's folder)
                self._results_follow(listen, results, first)
        inspect_requested = getattr(results, "inspect_requested", None)
        if inspect_requested is not None:  # a Results cell or point: that stimulus in Inspect
            inspect_requested.connect(self.inspect_stimulus)
        evaluate = self.views.get("Evaluate")
        if evaluate is not None and hasattr(evaluate, "inspect_requested"):  # an evaluated pair: in Inspect
            evaluate.inspect_requested.connect(self.inspect_excerpt)
            evaluate.message.connect(  # type: ignore[attr-defined]
                lambda text: self.set_tab_message(evaluate, text))
        self.resize(*default_size(self))

    def inspect_stimulus(self, link: object) -> None:
        """Show a study stimulus from Results in Inspect (a :class:`mosapp.views.results.StimulusLink`)."""
        self.tabs.setCurrentWidget(self.inspect)
        self.inspect.show_stimulus(link.stimulus, link.reference, title=link.title,  # type: ignore[attr-defined]
                                   ratings=link.ratings)  # type: ignore[attr-defined]

    def inspect_excerpt(self, link: object) -> None:
        """Run an evaluated pair in Inspect: the excerpt with the codec (a
        :class:`mosapp.gui.evaluation_view.ExcerptLink`)."""
        path, start, seconds, codec = (getattr(link, k) for k in ("path", "start_s", "seconds", "codec"))
        combo = self.inspect.controls.codec_combo
        index = combo.findText(codec)
        self.tabs.setCurrentWidget(self.inspect)
        if index < 0:
            self.inspect.show_message(f'The codec "{codec}" of that row is not in this mosapp; it cannot be run here.',
                                      error=True)
            return
        combo.setCurrentIndex(index)
        self.inspect.open_source(AudioSource(str(path), float(start), float(seconds),
                                             label=f"{Path(path).name} {start:g}–{start + seconds:g} s"))

    def set_tab_message(self, view: QWidget, text: str, error: bool = False) -> None:
        """Remember ``view``'s status line; show it while its tab is the current one."""
        self._messages[view] = (text, error)
        if self.tabs.currentWidget() is view:
            self._show_status(text, error)

    def _show_status(self, text: str, error: bool = False) -> None:
        if self.listener_lock.engaged:
            return  # nothing from the other views reaches a listener
        if text:
            self.statusBar().showMessage(text, 0 if error else STATUS_MS)
        else:
            self.statusBar().clearMessage()

    def _on_tab_changed(self, _index: int) -> None:
        self._show_status(*self._messages.get(self.tabs.currentWidget(), ("", False)))

    @staticmethod
    def _results_follow(listen: QWidget, results: QWidget, definition: StudyDefinition) -> None:
        """Results shows the study that Listen opened (with Listen's database, if it has its own)."""
        if getattr(results, "definition", None) is definition:
            return
        view = cast(_StudyView, results)  # it has open_study: checked where the signal is connected
        database = getattr(listen, "database", None)
        if database and hasattr(results, "database"):
            view.database = database
        view.open_study(definition)

    # ------------------------------------------------------------------ drag and drop

    @staticmethod
    def _dropped_files(event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> list[str]:
        mime = event.mimeData()
        if mime is None or not mime.hasUrls():
            return []
        return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 — Qt's name
        if self._dropped_files(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 — Qt's name
        if self._dropped_files(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 — Qt's name
        files = self._dropped_files(event)
        if not files or self.listener_lock.engaged:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_path(files[0])

    def open_path(self, path: str | os.PathLike[str]) -> None:
        """Open a file in the current tab when it takes files, otherwise in Inspect."""
        view = self.tabs.currentWidget()
        open_in_view = getattr(view, "open_path", None)
        if view is not self.inspect and open_in_view is not None:
            open_in_view(path)
            return
        self.tabs.setCurrentWidget(self.inspect)
        self.inspect.open_path(path)

    # ------------------------------------------------------------------ closing

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 — Qt's name
        if self.listener_lock.engaged:
            event.ignore()  # a listener cannot close the window; the researcher unlocks first
            return
        for view in self.views.values():
            shutdown = getattr(view, "shutdown", None)
            if callable(shutdown):
                try:
                    shutdown()
                except Exception:  # noqa: BLE001 — closing must finish
                    traceback.print_exc(file=sys.stderr)
        super().closeEvent(event)


def run_app(argv: Sequence[str] | None = None, *, open_audio: str | os.PathLike[str] | None = None,
            open_study: str | os.PathLike[str] | None = None,
            open_evaluation: str | os.PathLike[str] | None = None) -> int:
    """Open the main window; returns the exit status when it closes.

    Args:
        argv: command-line arguments after the program name; an audio file among them is
            opened in Inspect. Qt's own options (``-platform offscreen`` …) are passed to Qt.
        open_audio: an audio file to open in Inspect (and run) once the window is up.
        open_study: a study (file or name) to open in Listen, which becomes the current tab.
        open_evaluation: an output folder of ``mosapp evaluate`` to open in Evaluate.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    app = QApplication.instance() or QApplication([APP_NAME, *args])
    app.setApplicationName(APP_NAME)
    window = MainWindow()
    window.show()
    files = [a for a in args if not a.startswith("-") and Path(a).is_file()]
    if open_audio is None and files:
        open_audio = files[0]
    if open_study is not None:
        listen = window.views.get("Listen")
        open_in_listen = getattr(listen, "open_study", None)
        if listen is not None and open_in_listen is not None:
            window.tabs.setCurrentWidget(listen)
            open_in_listen(open_study)
    elif open_evaluation is not None and hasattr(window.views.get("Evaluate"), "open_folder"):
        evaluate = window.views["Evaluate"]
        window.tabs.setCurrentWidget(evaluate)
        evaluate.open_folder(open_evaluation)  # type: ignore[attr-defined]
    elif open_audio is not None:
        window.tabs.setCurrentWidget(window.inspect)
        window.inspect.open_path(open_audio)
    return int(app.exec())


__all__ = ["MainWindow", "OPTIONAL_VIEWS", "load_optional_view", "run_app"]


if __name__ == "__main__":  # python -m mosapp.gui.app [FILE]
    raise SystemExit(run_app())
