"""The Inspect tests' window (the main window set to the fast run: pghi-only, PGHI, no ViSQOL) and their wait."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from mosapp.gui.app import MainWindow
from mosapp.gui.inspect_controls import set_combo

#: A run of the fast codec on a test clip takes seconds; a busy machine gets this long.
RUN_TIMEOUT_S = 180


def fast_inspect_window() -> MainWindow:
    """The main window, shown, with Inspect set to run pghi-only through PGHI without ViSQOL."""
    w = MainWindow()
    w.resize(1400, 860)
    w.show()
    view = w.inspect
    assert set_combo(view.controls.codec_combo, "pghi-only")
    assert set_combo(view.controls.phase_combo, "pghi")
    assert set_combo(view.controls.visqol_combo, "off")
    return w


def wait_for(app: QApplication, predicate: Callable[[], object], timeout_s: float = RUN_TIMEOUT_S) -> None:
    """Process Qt's events until ``predicate()`` holds; TimeoutError after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def move_mouse(panes, plot, time_s: float, hz: float) -> None:
    """A real mouse-move event on the view's viewport at the point (time_s, hz) of ``plot``."""
    scene = plot.getViewBox().mapViewToScene(QPointF(time_s, panes.frequency_to_axis(hz)))
    local = panes.mapFromScene(scene)
    viewport = panes.viewport()
    event = QMouseEvent(QEvent.Type.MouseMove, QPointF(local), QPointF(viewport.mapToGlobal(local)),
                        Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, event)
