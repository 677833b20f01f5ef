"""The Listen view driven by a scripted listener (offscreen Qt): prepare, keys only, ratings in the store.

Playback runs without a sound card: the view is built with ``open_audio=False`` and the test
plays the trial by rendering the player's output (``Player.render`` is exactly what the audio
callback writes), so "heard to the end" is earned the same way a listener earns it.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QApplication,
    QWidget,
)

from mosapp.gui.listen_view import ListenView
from tests.gui.listen_support import (
    LENGTH_S,
    PREPARE_TIMEOUT_MS,
    REPO,
    assert_blind,
    forbidden_strings,
    hear,
    key,
    listen_fully,
    make_view,
    prepare,
    ratings_of,
    settle,
    start,
    type_code,
    write_study,
)

SCREENSHOT = REPO / "out" / "screenshots" / "listen.png"


def test_prepare_then_a_scripted_listener_completes_the_study(qtbot, tmp_path):
    path = write_study(tmp_path / "fresh")
    view = make_view(qtbot, path, break_every_trials=4, break_every_minutes=0)

    # Not prepared: a clear message and a "Prepare now" action; starting is impossible.
    assert view.prepare_box.isVisible()
    assert "not been prepared" in view.prepare_label.text()
    assert not view.start_button.isEnabled()
    seen: list[tuple[int, int]] = []
    qtbot.mouseClick(view.prepare_button, Qt.LeftButton)
    assert view.preparing
    view._prepare_worker.progress.connect(lambda p: seen.append((p.done, p.total)))
    qtbot.waitUntil(lambda: not view.preparing and view.start_button.isEnabled(), timeout=PREPARE_TIMEOUT_MS)
    assert "prepared (6 stimuli" in view.start_message.text()
    assert not view.prepare_box.isVisible()
    assert seen and seen[-1] == (6, 6)

    start(qtbot, view, "L01")
    assert view.page == view.PAGE_TRIAL
    given: list[int] = []
    breaks = 0
    while view.page in (view.PAGE_TRIAL, view.PAGE_BREAK, view.PAGE_PRACTICE_OVER):
        if view.page == view.PAGE_PRACTICE_OVER:
            assert "practice trials are over" in view.practice_over_label.text()
            key(qtbot, view, Qt.Key_Return)
            continue
        if view.page == view.PAGE_BREAK:
            breaks += 1
            assert "break" in view.break_label.text().lower() or "rest" in view.break_label.text().lower()
            key(qtbot, view, Qt.Key_Return)
            continue
        index = view.trial.index
        assert not view.can_rate
        listen_fully(qtbot, view)
        assert view.can_rate
        score = 1 + (index * 2) % 5
        key(qtbot, view, getattr(Qt, f"Key_{score}"))
        assert view.score == score
        key(qtbot, view, Qt.Key_Return)
        given.append(score)
    assert view.page == view.PAGE_DONE
    assert len(given) == 7 and breaks == 1  # 1 training + 6 rated; a break after 4

    ratings = ratings_of(path, "L01")
    assert ratings["value"].tolist() == given
    assert ratings["is_training"].tolist() == [True] + [False] * 6
    assert (ratings["plays_sample"] >= 1).all() and (ratings["plays_reference"] >= 1).all()
    # 0.3 s of the reference, then the sample from there to its end: one pass of the timeline.
    assert ratings["listening_time_s"].tolist() == pytest.approx([LENGTH_S] * 7, abs=0.02)
    assert (ratings["response_time_s"] > 0).all()
    rated = ratings[~ratings["is_training"]]
    assert sorted(rated["condition"].value_counts().tolist()) == [2, 2, 2]  # balanced
    assert ratings["audio_device"].iloc[0] == "none (silent)"


def test_rating_keys_wait_until_the_sample_was_heard_to_the_end(qtbot, study):
    view = make_view(qtbot, study)
    start(qtbot, view, "L02")
    assert all(not b.isEnabled() for b in view.panel.score_buttons.values())
    key(qtbot, view, Qt.Key_4)
    key(qtbot, view, Qt.Key_Return)
    assert view.score is None and view.page == view.PAGE_TRIAL
    # The reference to its end does not count: the sample is what is rated.
    key(qtbot, view, Qt.Key_R)
    key(qtbot, view, Qt.Key_Space)
    hear(view)
    assert not view.can_rate
    # Half the sample: still not.
    key(qtbot, view, Qt.Key_A)
    key(qtbot, view, Qt.Key_Home)
    key(qtbot, view, Qt.Key_Space)
    hear(view, LENGTH_S / 2)
    key(qtbot, view, Qt.Key_4)
    assert view.score is None and not view.panel.score_buttons[4].isEnabled()
    assert "to its end" in view.panel.listen_hint.text()
    hear(view)
    assert view.can_rate and all(b.isEnabled() for b in view.panel.score_buttons.values())
    assert not view.panel.next_button.isEnabled()  # nothing chosen yet
    key(qtbot, view, Qt.Key_4)
    key(qtbot, view, Qt.Key_2)  # a change of mind before Enter
    assert view.score == 2 and view.panel.next_button.isEnabled()
    assert len(ratings_of(study, "L02")) == 0  # nothing stored before Enter
    key(qtbot, view, Qt.Key_Return)
    ratings = ratings_of(study, "L02")
    assert ratings["value"].tolist() == [2]
    assert ratings["plays_sample"].tolist() == [1] and ratings["plays_reference"].tolist() == [1]
    # The next trial starts locked again (after the "practice is over" screen: L02's first was practice).
    assert view.page == view.PAGE_PRACTICE_OVER
    key(qtbot, view, Qt.Key_Return)
    assert view.page == view.PAGE_TRIAL and not view.can_rate


def test_the_rule_can_be_turned_off(qtbot, study):
    view = make_view(qtbot, study, require_full_listen=False)
    start(qtbot, view, "L03")
    assert view.can_rate
    key(qtbot, view, Qt.Key_5)
    key(qtbot, view, Qt.Key_Return)
    assert ratings_of(study, "L03")["value"].tolist() == [5]


def test_nothing_in_the_view_unblinds_the_listener(qtbot, study):
    forbidden = forbidden_strings(study)
    assert "pghi-only" in forbidden and any(f.endswith(".wav") for f in forbidden)
    view = make_view(qtbot, study, break_every_trials=3, break_every_minutes=0)
    assert_blind(view, forbidden, "start page")
    start(qtbot, view, "L04")
    pages = set()
    while view.page in (view.PAGE_TRIAL, view.PAGE_BREAK, view.PAGE_PRACTICE_OVER):
        pages.add(view.page)
        assert_blind(view, forbidden, f"page {view.page}")
        if view.page in (view.PAGE_BREAK, view.PAGE_PRACTICE_OVER):
            key(qtbot, view, Qt.Key_Return)
            continue
        listen_fully(qtbot, view)
        key(qtbot, view, Qt.Key_3)
        assert_blind(view, forbidden, f"trial {view.trial.index} rated")
        key(qtbot, view, Qt.Key_Return)
    assert pages == {view.PAGE_TRIAL, view.PAGE_BREAK, view.PAGE_PRACTICE_OVER}
    assert view.page == view.PAGE_DONE
    assert_blind(view, forbidden, "done page")
    assert view.windowTitle() == "Listen"


def test_a_returning_listener_resumes_and_a_finished_one_is_told(qtbot, study):
    view = make_view(qtbot, study)
    start(qtbot, view, "L05")
    listen_fully(qtbot, view)
    key(qtbot, view, Qt.Key_5)
    key(qtbot, view, Qt.Key_Return)
    view.reset()
    assert view.page == view.PAGE_START
    settle(qtbot, view)
    assert view.session is None
    type_code(qtbot, view, "L05")
    # Numbered as the trial headings are: the practice trial is done, so trial 1 of the 6 that count.
    assert "Welcome back, L05. Resuming at trial 1 of 6" in view.welcome_label.text()
    key(qtbot, view, Qt.Key_Return)
    assert view.trial.index == 1
    # A bad code: one sentence, nothing started.
    view.reset()
    view.start("Jane Doe <jane@example.org>")
    settle(qtbot, view)
    assert view.page == view.PAGE_START and "not accepted" in view.start_message.text()


def test_a_malformed_study_file_is_a_message_and_the_view_keeps_working(qtbot, study, tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('title = "x"\nconditions = ["reference", \n', encoding="utf-8")
    view = make_view(qtbot, bad)
    assert view.page == view.PAGE_START
    assert "is not valid TOML" in view.start_message.text() and view.start_message.isVisible()
    assert not view.start_button.isEnabled()
    typo = tmp_path / "typo.toml"
    typo.write_text(study.read_text(encoding="utf-8").replace("seed = 5", "sed = 5"), encoding="utf-8")
    assert not view.open_study(typo)
    assert 'unknown field sed' in view.start_message.text()
    assert view.open_study(study)
    settle(qtbot, view)
    start(qtbot, view, "L06")
    assert view.page == view.PAGE_TRIAL


def lock_database(study_path: Path) -> sqlite3.Connection:
    """Another program takes the study database's write lock (a real second connection)."""
    from mosapp.study import load_study

    db = load_study(study_path, check_codecs=False).database_url.removeprefix("sqlite:///")
    other = sqlite3.connect(db, isolation_level=None, timeout=0.1)
    other.execute("BEGIN EXCLUSIVE")
    return other


def release(other: sqlite3.Connection) -> None:
    other.execute("ROLLBACK")
    other.close()


def test_a_locked_database_keeps_the_window_responsive_and_loses_nothing(qtbot, study):
    view = make_view(qtbot, study, busy_timeout_s=1.5)
    ticks: list[float] = []
    timer = QTimer(view)
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    start(qtbot, view, "L07")
    listen_fully(qtbot, view)
    key(qtbot, view, Qt.Key_4)

    # Released while the save waits: the window kept drawing, and the rating is saved once.
    other = lock_database(study)
    try:
        qtbot.keyClick(view, Qt.Key_Return)
        assert view.busy
        before = len(ticks)
        qtbot.wait(600)
        assert view.busy and view.page == view.PAGE_TRIAL and view.score == 4
        assert len(ticks) - before >= 10  # the event loop ran all along (a 10 ms timer)
        assert view.panel.listen_hint.text() == "Saving your rating…" and not view.panel.next_button.isEnabled()
        qtbot.keyClick(view, Qt.Key_Return)  # impatient: a second Enter saves nothing twice
        assert other.execute("select count(*) from ratings").fetchone() == (0,)
    finally:
        release(other)
    settle(qtbot, view)
    assert ratings_of(study, "L07")["value"].tolist() == [4]
    assert view.page == view.PAGE_PRACTICE_OVER  # that was the practice trial
    key(qtbot, view, Qt.Key_Return)
    assert view.trial.index == 1

    # Held past the busy timeout: one sentence, the score kept; Enter again saves it.
    listen_fully(qtbot, view)
    key(qtbot, view, Qt.Key_2)
    other = lock_database(study)
    try:
        before = len(ticks)
        key(qtbot, view, Qt.Key_Return)  # waits out the busy timeout (1.5 s)
        assert len(ticks) - before >= 10
        assert view.page == view.PAGE_TRIAL and view.score == 2 and view.trial.index == 1
        text = view.panel.message.text()
        assert view.panel.message.isVisible() and "not saved" in text and "locked" in text
        assert text.count(". ") <= 2 and "Press Enter to try again." in text
    finally:
        release(other)
    key(qtbot, view, Qt.Key_Return)
    assert ratings_of(study, "L07")["value"].tolist() == [4, 2]
    assert not view.panel.message.isVisible() and view.trial.index == 2
    timer.stop()


def test_acr_shows_the_sample_alone(qtbot, template, tmp_path):
    path = write_study(tmp_path / "acr", name="acr", test_type="acr", training=0,
                       stimuli_dir=template / "data" / "gui" / "stimuli")
    prepare(path)  # the stimuli are the template's (cached): nothing is rendered again
    view = make_view(qtbot, path)
    start(qtbot, view, "L08")
    assert not view.panel.reference_button.isVisible()
    assert view.panel.score_buttons[5].text().endswith("Excellent")
    key(qtbot, view, Qt.Key_R)  # nothing to select
    assert view.player.count == 1
    key(qtbot, view, Qt.Key_Space)
    hear(view)
    key(qtbot, view, Qt.Key_3)
    key(qtbot, view, Qt.Key_Return)
    ratings = ratings_of(path, "L08")
    assert ratings["value"].tolist() == [3] and ratings["plays_reference"].tolist() == [0]


def test_the_main_window_hook_and_the_demo_default(qtbot):
    from mosapp.gui.app import load_optional_view

    parent = QWidget()
    qtbot.addWidget(parent)
    view = load_optional_view("Listen", "listen_view", "ListenView", parent=parent)
    assert isinstance(view, ListenView)
    assert view.definition is not None and view.definition.name == "demo"
    assert view.title_label.text() == "Listening test: music excerpts (demo)"
    settle(qtbot, view)
    # Prepared or not, the start page says what to do next.
    assert view.start_button.isEnabled() or view.prepare_box.isVisibleTo(view)
    view.shutdown()
    assert view.controller.engine is None and not view.busy


def test_a_dropped_file_opens_a_study_and_shutdown_ends_the_sitting(qtbot, study, tmp_path):
    other_study = write_study(tmp_path / "other", name="other")
    view = make_view(qtbot, other_study)
    assert view.definition.name == "other" and view.prepare_box.isVisible()  # never prepared
    view.open_path(study)
    assert view.definition.name == "gui"
    settle(qtbot, view)
    assert view.start_button.isEnabled() and not view.prepare_box.isVisible()
    view.open_path(tmp_path / "other" / "clip.wav")
    assert view.start_message.text() == "clip.wav is not a study file; drop a .toml study file here."
    assert view.definition.name == "gui"

    start(qtbot, view, "L12")
    view.open_path(other_study)  # never under a listener
    assert view.definition.name == "gui" and view.page == view.PAGE_TRIAL and not view.busy
    key(qtbot, view, Qt.Key_Space)
    assert view.player.playing

    view.shutdown()
    assert not view.player.playing and not view._timer.isActive() and not view.busy
    assert view.controller.session is None and view.controller.engine is None
    from mosapp.study import load_study

    db = load_study(study, check_codecs=False).database_url.removeprefix("sqlite:///")
    con = sqlite3.connect(db)
    try:
        ended = con.execute("select s.ended_at from sessions s join listeners l on l.id = s.listener_id "
                            "where l.code = 'L12'").fetchall()
    finally:
        con.close()
    assert len(ended) == 1 and ended[0][0] is not None  # the sitting's end is recorded


def test_screenshot(qtbot, study, tmp_path):
    view = make_view(qtbot, study)
    start(qtbot, view, "L09")
    listen_fully(qtbot, view)
    key(qtbot, view, Qt.Key_4)
    qtbot.wait(50)
    image = view.grab()
    assert image.width() >= 800 and image.height() >= 600
    assert image.save(str(tmp_path / "listen.png"))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert image.save(str(SCREENSHOT))
    assert re.search(r"Practice trial 1 of 1", view.panel.trial_label.text())


def test_the_keys_work_wherever_the_focus_is_in_the_window(qtbot, study):
    """In the app the focus may sit on the tab bar; the listening keys still reach the view."""
    from PySide6.QtWidgets import QPushButton, QVBoxLayout

    window = QWidget()
    qtbot.addWidget(window)
    other = QPushButton("elsewhere", window)
    view = ListenView(study, parent=window, open_audio=False)
    settle(qtbot, view)
    box = QVBoxLayout(window)
    box.addWidget(other)
    box.addWidget(view)
    window.resize(900, 800)
    window.show()
    qtbot.waitExposed(window)
    start(qtbot, view, "L10")
    other.setFocus()
    qtbot.keyClick(other, Qt.Key_A)
    qtbot.keyClick(other, Qt.Key_Space)
    assert view.player.playing and view.player.selected == 1
    hear(view)
    qtbot.keyClick(other, Qt.Key_3)
    key(qtbot, view, Qt.Key_Return, other)
    assert ratings_of(study, "L10")["value"].tolist() == [3]
    # Hidden (another tab in front): the keys are the window's again.
    view.hide()
    qtbot.keyClick(other, Qt.Key_Space)
    assert not view.player.playing


def test_a_break_is_suggested_after_some_minutes(qtbot, study):
    view = make_view(qtbot, study, break_every_trials=0, break_every_minutes=1.0, require_full_listen=False)
    start(qtbot, view, "L11")
    key(qtbot, view, Qt.Key_4)
    key(qtbot, view, Qt.Key_Return)
    assert view.page == view.PAGE_PRACTICE_OVER  # the practice trial: its own screen first
    key(qtbot, view, Qt.Key_Return)
    view.controller.break_clock -= 61  # a minute of listening later
    key(qtbot, view, Qt.Key_4)
    key(qtbot, view, Qt.Key_Return)
    assert view.page == view.PAGE_BREAK
    assert "1 of 6 trials" in view.break_label.text()  # the trials that count, as the headings number them
    key(qtbot, view, Qt.Key_Return)
    assert view.page == view.PAGE_TRIAL and view.trial.index == 2
    key(qtbot, view, Qt.Key_4)
    key(qtbot, view, Qt.Key_Return)
    assert view.page == view.PAGE_TRIAL  # the clock started again after the break


def test_tab_reaches_every_control_of_the_start_page_in_visual_order(qtbot, study):
    """Issue 26: Tab skipped the audio output choice, Refresh, the full-screen box and "Open another study…"."""
    view = make_view(qtbot, study)
    view.prepare_box.show()  # what a study that is not prepared yet shows (its Stop button only while preparing)
    qtbot.wait(50)
    shown = [w for w in view.start_controls if w.isVisibleTo(view)]
    assert {view.device_combo, view.refresh_devices_button, view.full_screen_box, view.open_button} <= set(shown)
    # On screen: top to bottom, then left to right.
    assert shown == sorted(shown, key=lambda w: (round(w.mapTo(view, w.rect().center()).y() / 16),
                                                 w.mapTo(view, w.rect().center()).x()))
    view.activateWindow()
    view.code_edit.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is view.code_edit, timeout=5000)
    visited = [QApplication.focusWidget()]
    for _ in range(len(shown) - 1):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key_Tab)
        visited.append(QApplication.focusWidget())
    assert visited == shown


def test_the_demo_study_is_prepared_in_the_users_data_folder_never_inside_the_install(qtbot, tmp_path, monkeypatch):
    """Issue 26: on a first start Listen offered to prepare the demo inside the checkout."""
    from mosapp.gui.listen_view import DEFAULT_STUDY, demo_study, user_data_folder

    monkeypatch.setenv("MOSAPP_DATA_DIR", str(tmp_path / "data"))
    assert user_data_folder() == tmp_path / "data"
    definition = demo_study()
    install = DEFAULT_STUDY.parent.parent
    assert definition.stimuli_dir == tmp_path / "data" / "demo" / "stimuli"
    assert str(tmp_path / "data" / "demo" / "study.sqlite") in definition.database_url
    assert not definition.stimuli_dir.is_relative_to(install)
    view = ListenView(open_audio=False)
    qtbot.addWidget(view)
    settle(qtbot, view)
    assert view.definition.stimuli_dir == definition.stimuli_dir
    # Not prepared here yet: the start page says what to do first and where the stimuli go.
    assert view.prepare_box.isVisibleTo(view)
    text = view.prepare_label.text()
    assert "First step: press Prepare now" in text and str(definition.stimuli_dir) in text
    view.shutdown()
    monkeypatch.delenv("MOSAPP_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert user_data_folder() == tmp_path / "xdg" / "mosapp"


def test_underruns_are_told_to_the_researcher_never_to_the_listener(qtbot, study):
    """Issue 26: playback underran through a busy sound server; the count goes to the researcher
    (the main window's status bar, hidden in listener mode), not onto the listener's screen."""
    view = make_view(qtbot, study)
    notes = []
    view.researcher_note.connect(notes.append)
    start(qtbot, view, "U01")
    view.player._output.xruns += 2  # two callbacks with PortAudio's underflow flag
    view.tick()
    assert notes and "2 underrun(s)" in notes[-1] and "block" in notes[-1]
    assert_blind(view, ["underrun", "block", "latency"], "a trial after underruns")
    count = len(notes)
    view.tick()
    assert len(notes) == count  # said once per change, not every tick
