"""A new test type's panel (ABX, tests/plugins/abx_panel.py) runs in the Listen view with nothing else changed.

The view is driven from the keyboard as a listener would (offscreen Qt, the player rendered
instead of a sound card) through a prepared ABX study; every answer lands in the store.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import Qt

from mosapp.gui.listen_panels import unregister_panel
from mosapp.gui.listen_view import ListenView
from mosapp.study import load_study, open_store, prepare_study
from mosapp.study.export import ratings_frame
from mosapp.study.types import register_test_type, unregister_test_type
from tests.helpers import RATE, music_like


@pytest.fixture
def abx_panel():
    """The ABX type and its panel, registered for the test and forgotten after it."""
    from tests.plugins import abx, abx_panel

    register_test_type(abx.ABX)
    from mosapp.gui.listen_panels import register_panel

    register_panel("abx", abx_panel.AbxPanel)
    yield abx_panel
    unregister_panel("abx")
    unregister_test_type("abx")


def abx_study(folder):
    sf.write(folder / "clip.wav", music_like(2.5, seed=4).T, RATE, subtype="FLOAT")
    path = folder / "abx.toml"
    path.write_text("\n".join([
        'title = "ABX test"', 'test_type = "abx"', 'conditions = ["reference", "pghi-only"]', "seed = 3",
        "fade_ms = 10.0", "[training]", "trials = 0", "[pipeline]", 'phase = "pghi"', 'device = "cpu"',
        'metrics = ["mel_distance"]', "[[clips]]", 'path = "clip.wav"', 'name = "tune"', "start_s = [0.0, 1.2]",
        "length_s = 1.0"]) + "\n", encoding="utf-8")
    definition = load_study(path)
    with open_store(definition.database_url) as store:
        for _ in prepare_study(definition, store):
            pass
    return path


def test_an_abx_study_is_taken_from_the_keyboard_on_its_own_panel(qtbot, tmp_path, abx_panel):
    path = abx_study(tmp_path)
    view = ListenView(path, open_audio=False)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: not view.busy and view.start_button.isEnabled(), timeout=60_000)
    qtbot.keyClicks(view.code_edit, "L01")
    qtbot.keyClick(view.code_edit, Qt.Key_Return)
    qtbot.waitUntil(lambda: view.page == view.PAGE_INSTRUCTIONS, timeout=60_000)
    assert "1: X is A" in view.keys_label.text()
    qtbot.keyClick(view, Qt.Key_Return)
    qtbot.waitUntil(lambda: view.page == view.PAGE_TRIAL and not view.busy, timeout=60_000)
    panel = view.panel
    assert isinstance(panel, abx_panel.AbxPanel) and panel.trial_label.text() == "Trial 1 of 4"
    answers = []
    for _ in range(4):
        qtbot.waitUntil(lambda: view.page == view.PAGE_TRIAL and not view.busy and panel.trial is not None,
                        timeout=60_000)
        trial = panel.trial
        qtbot.keyClick(view, Qt.Key_2)
        assert panel.score is None and not panel.score_buttons[2].isEnabled()  # nothing heard yet
        for k in (Qt.Key_A, Qt.Key_B, Qt.Key_X):  # each sound played to its end
            qtbot.keyClick(view, k)
            qtbot.keyClick(view, Qt.Key_Space)
            view.player.render(int((view.player.duration_s + 0.1) * view.player.rate))
        view.tick()
        answer = 2 if np.array_equal(trial.x, trial.b) else 1
        qtbot.keyClick(view, Qt.Key_1 if answer == 1 else Qt.Key_2)
        assert panel.score == answer and "Enter" in panel.hint.text()
        qtbot.keyClick(view, Qt.Key_Return)
        answers.append(answer)
        qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
    qtbot.waitUntil(lambda: view.page == view.PAGE_DONE, timeout=60_000)
    definition = load_study(path)
    with open_store(definition.database_url) as store:
        ratings = ratings_frame(store, definition)
    assert ratings["value"].tolist() == answers and ratings.loc[ratings["condition"] == "pghi-only", "correct"].all()
    assert (ratings["plays_sample"] >= 1).all()
    view.shutdown()
