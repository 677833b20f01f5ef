"""Listener mode in the main window: a scripted listener goes through a whole study with the
window locked to Listen, and nothing a listener can see names a condition, codec or bitrate;
the researcher leaves with the key chord and the PIN. Also the "resuming at trial N" and
"practice is over" screens, and P.800's reference-first order."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from mosapp.gui.listener_mode import LOCKED_TITLE
from tests.gui.listen_support import (
    answer_pin,
    assert_blind,
    assert_window_blind,
    forbidden_strings,
    hear,
    key,
    listen_fully,
    main_window,
    make_view,
    ratings_of,
    start,
    type_code,
)

CHORD = Qt.ControlModifier | Qt.AltModifier | Qt.ShiftModifier


@pytest.fixture
def window(qtbot, study, monkeypatch):
    w, _ = main_window(qtbot, monkeypatch, study, break_every_trials=2)
    yield w
    w.listener_lock.release()


def test_a_listener_goes_through_the_study_in_listener_mode(qtbot, window, study):
    listen = window.views["Listen"]
    forbidden = forbidden_strings(study)
    researcher_title = window.windowTitle()
    window.tabs.setCurrentWidget(listen)
    assert window.tabs.tabBar().isVisible() and not window.listener_lock.engaged

    start(qtbot, listen, "LM1")
    lock = window.listener_lock
    assert lock.engaged
    assert not window.tabs.tabBar().isVisible() and not window.statusBar().isVisible()
    assert window.windowTitle() == LOCKED_TITLE
    assert [window.tabs.isTabEnabled(i) for i in range(window.tabs.count())] == [
        window.tabs.widget(i) is listen for i in range(window.tabs.count())]
    assert not listen.open_button.isVisible() and not listen.full_screen_box.isVisible()

    # The other views cannot reach the listener: no tab switch, no status message, no close.
    window.inspect.message.emit("opus-12 decoded at 12 kbps")
    assert window.statusBar().currentMessage() == ""
    qtbot.keyClick(listen, Qt.Key_Tab, Qt.ControlModifier)
    assert window.tabs.currentWidget() is listen
    window.close()
    assert window.isVisible()

    pages = set()
    rated = 0
    while listen.page != listen.PAGE_DONE:
        pages.add(listen.page)
        assert_window_blind(window, forbidden, f"page {listen.page}, {rated} rated")
        assert_blind(listen, forbidden, f"every widget of Listen, page {listen.page}")
        if listen.page in (listen.PAGE_BREAK, listen.PAGE_PRACTICE_OVER):
            key(qtbot, listen, Qt.Key_Return)
            continue
        assert listen.page == listen.PAGE_TRIAL
        listen_fully(qtbot, listen)
        assert_window_blind(window, forbidden, f"trial {listen.trial.index} heard")
        key(qtbot, listen, getattr(Qt, f"Key_{1 + rated % 5}"))
        key(qtbot, listen, Qt.Key_Return)
        rated += 1
    assert_window_blind(window, forbidden, "done")
    assert {listen.PAGE_TRIAL, listen.PAGE_BREAK, listen.PAGE_PRACTICE_OVER} <= pages
    assert len(ratings_of(study, "LM1")) == rated
    assert lock.engaged  # the next listener comes: still locked
    listen.next_listener_button.click()
    assert listen.page == listen.PAGE_START and lock.engaged
    assert_window_blind(window, forbidden, "next listener")

    # The researcher: the chord asks for the PIN; a wrong one keeps the lock.
    answer_pin(qtbot, window, "0000")
    qtbot.keyClick(listen, Qt.Key_Q, CHORD)
    assert lock.pin_dialog is not None and lock.engaged
    assert "not right" in lock.pin_dialog.prompt.text()
    # The dialog closed: a window manager gives the window back its activation (offscreen has none).
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    answer_pin(qtbot, window, "4711")
    qtbot.keyClick(listen, Qt.Key_Q, CHORD)
    assert not lock.engaged
    assert window.tabs.tabBar().isVisible() and window.statusBar().isVisible()
    assert window.windowTitle() == researcher_title
    assert all(window.tabs.isTabEnabled(i) for i in range(window.tabs.count()))
    assert listen.open_button.isVisible()


def test_full_screen_when_asked_and_back(qtbot, window, study, monkeypatch):
    listen = window.views["Listen"]
    window.listener_lock.pin = None
    listen.full_screen_box.setChecked(True)
    start(qtbot, listen, "LM2")
    assert window.listener_lock.engaged and window.isFullScreen()
    qtbot.keyClick(listen, Qt.Key_Q, CHORD)  # no PIN set: the chord alone
    assert not window.listener_lock.engaged and not window.isFullScreen()


def test_resuming_and_practice_over_screens(qtbot, study):
    view = make_view(qtbot, study, break_every_trials=0, break_every_minutes=0)
    start(qtbot, view, "RS1")
    assert view.trial.is_training
    listen_fully(qtbot, view)
    key(qtbot, view, Qt.Key_4)
    key(qtbot, view, Qt.Key_Return)
    assert view.page == view.PAGE_PRACTICE_OVER
    assert "practice trials are over" in view.practice_over_label.text()
    key(qtbot, view, Qt.Key_Return)
    assert view.page == view.PAGE_TRIAL and not view.trial.is_training
    listen_fully(qtbot, view)
    key(qtbot, view, Qt.Key_3)
    key(qtbot, view, Qt.Key_Return)
    view.reset()
    type_code(qtbot, view, "RS1")
    assert view.page == view.PAGE_INSTRUCTIONS
    # Issue 26: "Resuming at trial 8 of 18" was followed by "Trial 5 of 15" and "7 of 18 done".
    # One numbering: the trials that count, practice apart, in the greeting, heading and progress.
    total = view.session.progress.total
    assert f"Resuming at trial 2 of {total}" in view.welcome_label.text()
    key(qtbot, view, Qt.Key_Return)
    assert view.panel.trial_label.text() == f"Trial 2 of {total}"
    assert view.panel.progress_label.text() == f"1 of {total} done"


def test_reference_first_order(qtbot, study):
    study.write_text(study.read_text().replace('fade_ms = 10.0', 'fade_ms = 10.0\nreference_first = true'))
    view = make_view(qtbot, study, break_every_trials=0, break_every_minutes=0)
    start(qtbot, view, "RF1")
    assert view.player.selected == view.panel._reference_index
    key(qtbot, view, Qt.Key_A)  # the sample is not offered before the reference was heard
    assert view.player.selected == view.panel._reference_index and "reference first" in view.panel.listen_hint.text()
    key(qtbot, view, Qt.Key_Space)
    hear(view)  # the reference to its end: the sample follows by itself
    assert view.player.selected == view.panel._sample_index and view.player.playing
    assert not view.can_rate
    hear(view)
    assert view.can_rate
