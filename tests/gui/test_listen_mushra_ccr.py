"""The shipped MUSHRA and CCR demo studies completed by a scripted listener, keys only, in the main window's
listener mode (locked to Listen; nothing visible names a condition, codec or bitrate); then the Results
view shows each study.

Each study file is copied with its database and stimulus folder redirected into a temporary folder
(and the phase backend set to ``pghi`` to keep preparation short); everything else is the shipped
one. Playback runs without a sound card: the test renders the player's output (what the audio
callback writes), so "played" is earned the way a listener earns it. Screenshots of both trial
screens go to ``out/screenshots/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import tomllib
from PySide6.QtCore import Qt

from tests.gui.listen_support import assert_blind, assert_window_blind, forbidden_strings, hear, key, prepare, start
from tests.gui.listen_support import main_window as listener_mode_window

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "out" / "screenshots"


def demo_copy(folder: Path, name: str) -> Path:
    text = (REPO / "studies" / f"{name}.toml").read_text()
    shipped = tomllib.loads(text)
    clip = (REPO / "studies" / shipped["clips"][0]["path"]).resolve()
    text = text.replace(shipped["clips"][0]["path"], str(clip))
    text = re.sub(r'(?m)^phase = "[^"]*"', 'phase = "pghi"', text)
    head = f'database = "{folder / (name + ".sqlite")}"\nstimuli_dir = "{folder / "stimuli"}"\n'
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(head + text)
    return path


def item_conditions(path: Path) -> dict[str, str]:
    """token -> condition, for the script only (the view never knows it)."""
    from sqlalchemy import select

    from mosapp.study import load_study, open_store
    from mosapp.study.store import ConditionRow, StimulusRow, TrialItemRow, TrialRow

    d = load_study(path, check_codecs=False)
    with open_store(d.database_url, create=False) as store, store.read() as s:
        out = dict(s.execute(select(TrialItemRow.token, ConditionRow.name)
                             .join(StimulusRow, TrialItemRow.stimulus_id == StimulusRow.id)
                             .join(ConditionRow, StimulusRow.condition_id == ConditionRow.id)).all())
        for token, first in s.execute(select(TrialRow.trial_token, TrialRow.processed_first)).all():
            out[token] = first
    return out


def export(path: Path, out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    from mosapp.study import load_study, open_store
    from mosapp.study.export import export_study

    d = load_study(path, check_codecs=False)
    with open_store(d.database_url, create=False) as store:
        ratings, summary = export_study(store, d, out)
    return pd.read_csv(ratings), pd.read_csv(summary)


def db_count(path: Path, table: str) -> int:
    import sqlite3

    from mosapp.study import load_study

    d = load_study(path, check_codecs=False)
    con = sqlite3.connect(d.database_url.removeprefix("sqlite:///"))
    try:
        return con.execute(f"select count(*) from {table}").fetchone()[0]
    finally:
        con.close()


def main_window(qtbot, monkeypatch, path: Path):
    """The app's main window with ``path`` open in Listen (no audio device, no breaks), Listen in front."""
    w, listen = listener_mode_window(qtbot, monkeypatch, path, size=(1150, 950))
    w.tabs.setCurrentWidget(listen)
    return w, listen


def results_show(qtbot, window, path: Path):
    """The Results view on the finished study (what the researcher sees after leaving listener mode)."""
    from mosapp.gui.results_view import ResultsView

    view = ResultsView(path)
    qtbot.addWidget(view)
    view.resize(1300, 720)
    view.show()
    qtbot.waitUntil(lambda: not view.loading and (view.report is not None or view.message_label.property("error")),
                    timeout=120_000)
    assert view.report is not None, view.message_label.text()
    return view


@pytest.fixture(scope="module")
def mushra_demo(tmp_path_factory) -> Path:
    path = demo_copy(tmp_path_factory.mktemp("mushra-demo"), "demo-mushra")
    prepare(path)
    return path


@pytest.fixture(scope="module")
def ccr_demo(tmp_path_factory) -> Path:
    path = demo_copy(tmp_path_factory.mktemp("ccr-demo"), "demo-ccr")
    prepare(path)
    return path


# ---------------------------------------------------------------------------------- MUSHRA
MUSHRA_SCORES = {"reference": 100, "sgc-12": 63, "opus-12": 57, "opus-24": 78, "lowpass-7k": 44, "lowpass-3.5k": 17}


def type_score(qtbot, view, target: int) -> None:
    """From an unrated slider (the first arrow starts at 50): Up, then PgUp/PgDn and Up/Down to ``target``."""
    key(qtbot, view, Qt.Key_Up)  # 51
    d = target - 51
    for _ in range(abs(d) // 10):
        key(qtbot, view, Qt.Key_PageUp if d > 0 else Qt.Key_PageDown)
    for _ in range(abs(d) % 10):
        key(qtbot, view, Qt.Key_Up if d > 0 else Qt.Key_Down)


def test_a_scripted_listener_completes_the_mushra_demo(qtbot, monkeypatch, mushra_demo, tmp_path):
    path = mushra_demo
    shipped = tomllib.loads((REPO / "studies" / "demo-mushra.toml").read_text())
    window, view = main_window(qtbot, monkeypatch, path)
    forbidden = forbidden_strings(path)
    start(qtbot, view, "MU1")
    assert window.listener_lock.engaged and not window.tabs.tabBar().isVisible()
    assert view.page == view.PAGE_TRIAL
    panel = view.panel
    assert "1–9" in view.keys_label.text() and "PgUp" in panel.keys_label.text()
    truth = item_conditions(path)
    screens = 0
    shot_taken = False
    while view.page != view.PAGE_DONE:
        if view.page == view.PAGE_PRACTICE_OVER:
            assert_window_blind(window, forbidden, "practice over")
            key(qtbot, view, Qt.Key_Return)
            continue
        assert view.page == view.PAGE_TRIAL
        trial = panel.trial
        n = len(trial.items)
        assert n == len(shipped["conditions"])
        assert_blind(view, forbidden, f"screen {trial.index}")
        assert_window_blind(window, forbidden, f"screen {trial.index}")
        # Nothing can be saved before every sample was played and rated.
        key(qtbot, view, Qt.Key_Return)
        assert view.page == view.PAGE_TRIAL and panel.trial is trial
        # The open reference, then each sample: switching keeps the position.
        key(qtbot, view, Qt.Key_R)
        key(qtbot, view, Qt.Key_Space)
        assert view.player.playing
        hear(view, 0.4)
        pos = view.player.position_s
        key(qtbot, view, Qt.Key_1)
        assert view.player.selected == 1 and view.player.position_s == pytest.approx(pos)
        if screens == 0:  # the loop: L marks the start, L the end, playback wraps inside; L clears it
            key(qtbot, view, Qt.Key_L)
            hear(view, 0.6)
            key(qtbot, view, Qt.Key_L)
            start_s, end_s = view.player.loop
            assert end_s - start_s == pytest.approx(0.6, abs=0.02)
            hear(view, 1.5)
            assert start_s <= view.player.position_s < end_s
            key(qtbot, view, Qt.Key_L)
            assert view.player.loop is None
        for i in range(n):
            key(qtbot, view, getattr(Qt, f"Key_{i + 1}"))
            key(qtbot, view, Qt.Key_Home)
            if not view.player.playing:
                key(qtbot, view, Qt.Key_Space)
            hear(view, 1.1)
            type_score(qtbot, view, MUSHRA_SCORES[truth[trial.items[i].item_id]])
        assert all(panel.played) and panel.scores == [MUSHRA_SCORES[truth[it.item_id]] for it in trial.items]
        if not trial.is_training and not shot_taken:
            SHOTS.mkdir(parents=True, exist_ok=True)
            qtbot.wait(50)  # let the screen's layout settle
            assert window.grab().save(str(SHOTS / "listen-mushra.png"))
            shot_taken = True
        key(qtbot, view, Qt.Key_Return)
        screens += 1
    assert view.page == view.PAGE_DONE
    assert screens == 1 + 3  # the practice screen and the three clips
    assert db_count(path, "item_ratings") == screens * len(shipped["conditions"])
    ratings, summary = export(path, tmp_path / "out")
    assert len(ratings) == 3 * len(shipped["conditions"])  # one row per stimulus rating, practice left out
    assert ratings.groupby("trial").size().eq(len(shipped["conditions"])).all()
    assert (ratings["value"] == ratings["condition"].map(MUSHRA_SCORES)).all()
    assert not ratings["screened_out"].any()
    assert (ratings["plays_sample"] >= 1).all()
    s = summary.set_index("condition")
    assert s.loc["opus-24", "mean"] == 78 and s["scale"].eq("MUSHRA").all()
    assert window.listener_lock.engaged  # still locked for the next listener
    window.listener_lock.release()
    results = results_show(qtbot, window, path)
    assert results.summary_table.rowCount() == len(shipped["conditions"])
    assert "MUSHRA" in results.report_text.toPlainText()


# ---------------------------------------------------------------------------------- CCR
def ccr_score(condition: str) -> int:
    """The processed sample against the reference, as this scripted listener hears it."""
    return {"reference": 0, "sgc-12": -1, "opus-12": -2, "lowpass-3.5k": -3}[condition]


def test_a_scripted_listener_completes_the_ccr_demo(qtbot, monkeypatch, ccr_demo, tmp_path):
    from mosapp.study import load_study

    path = ccr_demo
    window, view = main_window(qtbot, monkeypatch, path)
    forbidden = forbidden_strings(path)
    start(qtbot, view, "CC1")
    assert window.listener_lock.engaged
    assert view.page == view.PAGE_TRIAL
    panel = view.panel
    d = load_study(path, check_codecs=False)
    pairs = 0
    shot_taken = False
    while view.page != view.PAGE_DONE:
        if view.page == view.PAGE_PRACTICE_OVER:
            key(qtbot, view, Qt.Key_Return)
            continue
        assert view.page == view.PAGE_TRIAL
        trial = panel.trial
        assert_blind(view, forbidden, f"pair {trial.index}")
        assert_window_blind(window, forbidden, f"pair {trial.index}")
        truth = item_conditions(path)
        processed_first = truth[trial.trial_id]
        # The processed sample's token is the first's or the second's; the view knows neither.
        condition = truth[trial.first_id if processed_first else trial.second_id]
        key(qtbot, view, Qt.Key_4)  # too early: both must be heard to the end first
        assert panel.score is None
        key(qtbot, view, Qt.Key_A)
        key(qtbot, view, Qt.Key_Space)
        hear(view, 0.5)
        pos = view.player.position_s
        key(qtbot, view, Qt.Key_B)
        assert view.player.selected == 1 and view.player.position_s == pytest.approx(pos)
        key(qtbot, view, Qt.Key_A)
        hear(view)
        key(qtbot, view, Qt.Key_B)
        key(qtbot, view, Qt.Key_Home)
        if not view.player.playing:
            key(qtbot, view, Qt.Key_Space)
        hear(view)
        assert panel.can_rate
        # The listener answers "B against A": the processed-vs-reference score, negated when B is the reference.
        value = ccr_score(condition) * (-1 if processed_first else 1)
        key(qtbot, view, getattr(Qt, f"Key_{value + 4}"))
        assert panel.score == value
        if not trial.is_training and not shot_taken:
            SHOTS.mkdir(parents=True, exist_ok=True)
            qtbot.wait(50)
            assert window.grab().save(str(SHOTS / "listen-ccr.png"))
            shot_taken = True
        key(qtbot, view, Qt.Key_Return)
        pairs += 1
    assert view.page == view.PAGE_DONE
    assert pairs == d.training.trials + d.trials_per_listener == 2 + 12
    assert db_count(path, "item_ratings") == pairs
    ratings, summary = export(path, tmp_path / "out")
    assert len(ratings) == 12
    assert (ratings["cmos_value"] == ratings["condition"].map(ccr_score)).all()
    assert (ratings["value"] == ratings["cmos_value"] * ratings["processed_first"].map({True: -1, False: 1})).all()
    firsts = ratings.groupby("condition")["processed_first"].sum()
    assert firsts.between(1, 2).all()  # 3 clips per condition: balanced as far as 3 allows
    s = summary.set_index("condition")
    for c in d.conditions:
        assert s.loc[c, "cmos"] == pytest.approx(ccr_score(c)) and s.loc[c, "order_effect"] == pytest.approx(0)
    window.listener_lock.release()
    results = results_show(qtbot, window, path)
    assert results.summary_table.rowCount() == len(d.conditions)
    assert "CMOS" in results.report_text.toPlainText()


def test_a_mushra_screen_says_why_a_sample_does_not_count_yet_and_unrated_sliders_look_unrated(
        qtbot, monkeypatch, mushra_demo):
    """Issue 26: a sample heard for 0.7 s stayed "not played" (1 s is the minimum) and the screen never
    said so; unrated sliders sat at 50, drawn like a score of 50, while their value read "—"."""
    from mosapp.gui.listen_panels.mushra import MIN_PLAYED_S, START_SCORE

    _window, view = main_window(qtbot, monkeypatch, mushra_demo)
    start(qtbot, view, "MU9")
    assert view.page == view.PAGE_TRIAL
    panel = view.panel
    assert panel.played_labels[0].text() == f"not played ({MIN_PLAYED_S:g} s needed)"
    key(qtbot, view, Qt.Key_1)
    key(qtbot, view, Qt.Key_Space)
    hear(view, 0.7)
    assert not panel.played[0]
    assert panel.played_labels[0].text() == f"0.7 of {MIN_PLAYED_S:g} s heard"
    assert f"for at least {MIN_PLAYED_S:g} s each" in panel.hint.text()
    hear(view, 0.4)
    assert panel.played[0] and panel.played_labels[0].text() == "played"
    # Unrated, a slider at START_SCORE does not look like a score of START_SCORE.
    unrated, other = panel.sliders[0], panel.sliders[1]
    assert panel.scores[0] is None and unrated.value() == START_SCORE
    before = unrated.grab().toImage()
    panel.set_score(0, START_SCORE)
    qtbot.wait(20)
    after = unrated.grab().toImage()
    assert after != before and panel.value_labels[0].text().startswith(f"{START_SCORE}\n")
    assert other.grab().toImage() == before  # still unrated: still the empty look
