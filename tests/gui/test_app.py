"""The main window: its tabs (and the hook for views written separately) and run_app."""

from __future__ import annotations

import os
import subprocess
import sys

from mosapp.gui.app import OPTIONAL_VIEWS, MainWindow, load_optional_view


def test_tabs_inspect_listen_results(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles == ["Inspect", "Listen", "Results", "Evaluate"]
    assert window.tabs.widget(0) is window.inspect
    for title, _module, cls in OPTIONAL_VIEWS:  # every view is built: none may be a "coming" note
        assert type(window.views[title]).__name__ == cls
    window.close()


def test_a_missing_or_broken_view_becomes_a_note(qtbot):
    missing = load_optional_view("Extra", "no_such_view", "NoSuchView")
    qtbot.addWidget(missing)
    assert missing.text() == "The Extra view is coming."
    broken = load_optional_view("Broken", "inspect_view", "NoSuchClass")
    qtbot.addWidget(broken)
    assert broken.text().startswith("The Broken view could not be loaded (AttributeError")


def test_run_app_opens_the_window_and_returns_the_exit_status(tmp_path):
    """In a process of its own: run_app owns the application's event loop (exec/exit)."""
    code = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from mosapp.gui.app import MainWindow, run_app

def close_all():
    windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
    print("windows", len(windows), [windows[0].tabs.tabText(i) for i in range(windows[0].tabs.count())])
    for w in windows:
        w.close()
    QApplication.instance().exit(3)

app = QApplication(["mosapp"])
QTimer.singleShot(200, close_all)
sys.exit(run_app([]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    assert "windows 1 ['Inspect', 'Listen', 'Results', 'Evaluate']" in out.stdout
