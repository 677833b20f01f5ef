"""Listener mode: the main window locked to one view while a listener takes part.

::

    view.session_started ─► ListenerLock.engage(view) ─► only that tab, no tab bar, menus or
        status bar, a neutral window title, drops ignored, closing refused, full screen if asked
    Ctrl+Alt+Shift+Q (the researcher) ─► PIN dialog when a PIN is set ─► release(): all back

Any view can be locked to: the lock knows nothing of DCR, ACR or MUSHRA. A view that has a
``session_started`` signal engages the lock when a session starts; it may define
``set_listener_mode(bool)`` (hide its own researcher controls) and ``full_screen_requested``
(a bool property: full screen while locked).

The PIN comes from the ``MOSAPP_LISTENER_PIN`` environment variable (or the ``pin`` argument);
without one the key chord alone unlocks. Nothing typed into the PIN dialog is stored or shown.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QMainWindow,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

#: The researcher's way out of listener mode.
EXIT_CHORD = "Ctrl+Alt+Shift+Q"
#: Environment variable holding the researcher's PIN (digits or any text); unset: no PIN.
PIN_ENV = "MOSAPP_LISTENER_PIN"
#: The window title while locked (the study's own title is on the page).
LOCKED_TITLE = "Listening test"


class PinDialog(QDialog):
    """Asks for the researcher's PIN (masked); :attr:`wrong` says whether the last try failed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Researcher")
        box = QVBoxLayout(self)
        self.prompt = QLabel("Enter the researcher's PIN to leave listener mode.")
        box.addWidget(self.prompt)
        self.edit = QLineEdit()
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        box.addWidget(self.edit)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        box.addWidget(buttons)


class ListenerLock(QObject):
    """Locks ``window`` (a QMainWindow whose central widget holds ``tabs``) to one view.

    Signals:
        changed(bool): engaged (True) or released (False).
    """

    changed = Signal(bool)

    def __init__(self, window: QMainWindow, tabs: QTabWidget, *, pin: str | None = None) -> None:
        super().__init__(window)
        self.window, self.tabs = window, tabs
        self.pin = pin if pin is not None else (os.environ.get(PIN_ENV) or None)
        self.view: QWidget | None = None
        self._saved: dict = {}
        self.pin_dialog: PinDialog | None = None
        self.shortcut = QShortcut(QKeySequence(EXIT_CHORD), window)
        self.shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
        self.shortcut.setEnabled(False)
        self.shortcut.activated.connect(self.request_release)

    @property
    def engaged(self) -> bool:
        return self.view is not None

    def watch(self, view: QWidget) -> None:
        """Engage the lock on ``view`` whenever it starts a session (its ``session_started`` signal)."""
        signal = getattr(view, "session_started", None)
        if signal is not None:
            signal.connect(lambda *_: self.engage(view))

    def engage(self, view: QWidget, *, full_screen: bool | None = None) -> None:
        """Lock the window to ``view`` (a tab of :attr:`tabs`); nothing happens when already locked."""
        if self.engaged:
            return
        w = self.window
        self._saved = {"title": w.windowTitle(), "state": w.windowState(), "drops": w.acceptDrops(),
                       "tabs": [self.tabs.isTabEnabled(i) for i in range(self.tabs.count())]}
        self.view = view
        self.tabs.setCurrentWidget(view)
        for i in range(self.tabs.count()):
            self.tabs.setTabEnabled(i, self.tabs.widget(i) is view)
        self.tabs.tabBar().hide()
        menu = w.menuWidget()
        if menu is not None:
            menu.hide()
        status = w.statusBar()
        status.clearMessage()
        status.hide()
        w.setWindowTitle(LOCKED_TITLE)
        w.setAcceptDrops(False)
        if full_screen is None:
            full_screen = bool(getattr(view, "full_screen_requested", False))
        if full_screen:
            w.showFullScreen()
        set_mode = getattr(view, "set_listener_mode", None)
        if callable(set_mode):
            set_mode(True)
        self.shortcut.setEnabled(True)
        self.changed.emit(True)

    def request_release(self) -> bool:
        """The key chord: release at once without a PIN, else after the right PIN. True when released."""
        if not self.engaged:
            return False
        if self.pin is None:
            self.release()
            return True
        if self.pin_dialog is None:
            self.pin_dialog = PinDialog(self.window)
        dialog = self.pin_dialog
        dialog.edit.clear()
        ok = dialog.exec() == QDialog.DialogCode.Accepted
        entered = dialog.edit.text()
        dialog.edit.clear()
        if ok and entered == self.pin:
            self.release()
            return True
        dialog.prompt.setText("That PIN is not right. Enter the researcher's PIN to leave listener mode.")
        return False

    def release(self, pin: str | None = None) -> bool:
        """Give the window back (with ``pin`` checked when one is set and given); True when released."""
        if not self.engaged:
            return False
        if pin is not None and self.pin is not None and pin != self.pin:
            return False
        w, saved = self.window, self._saved
        set_mode = getattr(self.view, "set_listener_mode", None)
        if callable(set_mode):
            set_mode(False)
        self.view = None
        for i, enabled in enumerate(saved.get("tabs", [])):
            if i < self.tabs.count():
                self.tabs.setTabEnabled(i, enabled)
        self.tabs.tabBar().show()
        menu = w.menuWidget()
        if menu is not None:
            menu.show()
        w.statusBar().show()
        w.setWindowTitle(saved.get("title", w.windowTitle()))
        w.setAcceptDrops(saved.get("drops", True))
        if w.isFullScreen() and not (saved.get("state", Qt.WindowState.WindowNoState) & Qt.WindowState.WindowFullScreen):
            w.showNormal()
        self.shortcut.setEnabled(False)
        self.changed.emit(False)
        return True


__all__ = ["EXIT_CHORD", "LOCKED_TITLE", "ListenerLock", "PIN_ENV", "PinDialog"]
