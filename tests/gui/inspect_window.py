"""The Inspect tests' window: the main window set to the fast run (pghi-only, PGHI, no ViSQOL)."""

from __future__ import annotations

from mosapp.gui.app import MainWindow
from mosapp.gui.inspect_view import _set_combo


def fast_inspect_window() -> MainWindow:
    """The main window, shown, with Inspect set to run pghi-only through PGHI without ViSQOL."""
    w = MainWindow()
    w.resize(1400, 860)
    w.show()
    view = w.inspect
    assert _set_combo(view.codec_combo, "pghi-only")
    assert _set_combo(view.phase_combo, "pghi")
    assert _set_combo(view.visqol_combo, "off")
    return w
