"""The Results view on a study rated through the engine (offscreen Qt): table, plot, screening,
correlations, and the command line's CSV files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pyqtgraph as pg
import pytest
import soundfile as sf
from PySide6.QtWidgets import QWidget

from mosapp.gui import results_view
from mosapp.gui.app import load_optional_view
from mosapp.gui.results_view import ResultsView
from tests.helpers import RATE, music_like

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "out" / "screenshots" / "results.png"
CONDITIONS = ["reference", "pghi-only", "lowpass-3.5k"]
LOAD_TIMEOUT_MS = 120_000
#: Scores the scripted listeners give per condition (listener index picks a small offset).
SCORES = {"reference": 5, "pghi-only": 4, "lowpass-3.5k": 2}


def write_study(folder: Path, name: str = "res") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / "clip.wav", music_like(4.0, seed=8).T, RATE, subtype="FLOAT")
    text = "\n".join([
        'title = "Results test"',
        'conditions = ["reference", "pghi-only", "lowpass-3.5k"]',
        "seed = 2",
        "fade_ms = 10.0",
        # 3 hidden-reference trials per listener: judge listeners on them (the default needs 7).
        "[screening]", "min_reference_trials = 3",
        "[training]", "trials = 1",
        "[pipeline]", 'phase = "pghi"', 'device = "cpu"',
        'metrics = ["mel_distance", "si_sdr_db", "spectral_convergence_db"]',
        "[[clips]]", 'path = "clip.wav"', 'name = "song"', "start_s = [0.0, 1.2, 2.4]", "length_s = 1.0",
    ])
    path = folder / f"{name}.toml"
    path.write_text(text + "\n", encoding="utf-8")
    return path


def rate_everything(path: Path) -> None:
    """Four listeners rate every trial through the engine; L4 rates the hidden reference low."""
    from sqlalchemy import select

    from mosapp.study import StudyEngine
    from mosapp.study.store import ConditionRow, StimulusRow, TrialRow

    with StudyEngine.open(path) as engine:
        for i, code in enumerate(["L1", "L2", "L3", "L4"]):
            with engine.start_or_resume(code) as session:
                while (trial := session.next_trial()) is not None:
                    with engine.store.read() as s:  # the test may look behind the blind
                        condition = s.scalar(
                            select(ConditionRow.name).join(StimulusRow, StimulusRow.condition_id == ConditionRow.id)
                            .join(TrialRow, TrialRow.stimulus_id == StimulusRow.id)
                            .where(TrialRow.trial_token == trial.trial_id))
                    score = SCORES[condition] - (trial.index + i) % 2 * (condition != "reference")
                    if code == "L4" and condition == "reference":
                        score = 2
                    session.rate(trial, score, play_counts=(1, 1), listening_time_s=2.0, response_time_s=3.0)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    from mosapp.study import load_study, open_store, prepare_study

    folder = tmp_path_factory.mktemp("results-template")
    path = write_study(folder)
    definition = load_study(path)
    with open_store(definition.database_url) as store:
        for _ in prepare_study(definition, store):
            pass
    rate_everything(path)
    return folder


@pytest.fixture
def study(template, tmp_path) -> Path:
    folder = tmp_path / "study"
    shutil.copytree(template, folder)
    return folder / "res.toml"


def make_view(qtbot, study_path, **kwargs) -> ResultsView:
    view = ResultsView(study_path, **kwargs)
    qtbot.addWidget(view)
    view.resize(1300, 720)
    view.show()
    return view


def wait_loaded(qtbot, view: ResultsView) -> None:
    qtbot.waitUntil(lambda: not view.loading and (view.report is not None or view.message_label.property("error")),
                    timeout=LOAD_TIMEOUT_MS)
    assert view.report is not None, view.message_label.text()


def table_rows(table) -> list[list[str]]:
    return [[table.cell(r, c) for c in range(table.columnCount())] for r in range(table.rowCount())]


def test_scores_table_plot_listeners_and_correlations(qtbot, study):
    view = make_view(qtbot, study)
    wait_loaded(qtbot, view)
    report = view.report
    assert view.title_label.text().startswith("Results test")
    assert "36 rating(s) from 4 listener(s)" in view.message_label.text()  # 4 x 9 rated (training excluded)
    assert "4 enrolled, 4 finished" in view.message_label.text()

    # The summary: one row per condition, in the study's order, with the score and its 95 % CIs.
    assert view.summary_table.horizontalHeaderItem(4).text() == "DMOS"
    rows = table_rows(view.summary_table)
    assert [r[0].split()[0] for r in rows] == CONDITIONS
    assert "(hidden reference)" in rows[0][0]
    summary = report.summary.set_index("condition")
    for r in rows:
        cond = r[0].split()[0]
        assert r[2] == str(summary.loc[cond, "n"]) == "9"  # L4 screened out: 3 listeners x 3 clips
        assert r[3] == "3"
        assert r[4] == f"{summary.loc[cond, 'mean']:.2f}"
        assert re.fullmatch(r"\[\d\.\d\d, \d\.\d\d\]\*?", r[5]), r  # * marks an interval clipped to 1..5
        assert r[5].endswith("*") == ("ci" in str(summary.loc[cond, "clipped"]).split(";"))
        assert r[5].rstrip("*") == f"[{summary.loc[cond, 'ci_low']:.2f}, {summary.loc[cond, 'ci_high']:.2f}]"
        assert re.fullmatch(r"\[\d\.\d\d, \d\.\d\d\]\*?", r[6]), r
        assert r[7] == "–" or re.fullmatch(r"\[\d\.\d\d, \d\.\d\d\]\*?", r[7]), r  # bootstrap-t
        assert r[8].startswith(f"{summary.loc[cond, 'mixed_estimate']:.2f} [")
        assert r[9].rstrip("*") == (f"[{summary.loc[cond, 'rating_ci_low']:.2f}, "
                                    f"{summary.loc[cond, 'rating_ci_high']:.2f}]")
        assert r[1] == "–"  # the reference, pghi-only and the anchor code no bitrate of their own
    assert view.clips_table.rowCount() == 9 and view.agreement_table.rowCount() == 3 + 2
    assert float(rows[0][4]) == 5.0 and float(rows[2][4]) < float(rows[1][4]) < 5.0

    # The plot: every condition drawn; none has a bitrate (reference, pghi-only, the anchor): reference lines.
    assert set(view.plotted) == set(CONDITIONS)
    items = view.plot.getPlotItem().items
    assert summary["bitrate_kbps"].isna().all()
    assert not any(isinstance(i, pg.ErrorBarItem) for i in items)
    assert sum(isinstance(i, pg.InfiniteLine) for i in items) == 3  # dashed lines, each with its band

    # Screening per listener: L4 rated the hidden reference low and is dropped.
    listeners = {r[0]: r for r in table_rows(view.listeners_table)}
    assert set(listeners) == {"L1", "L2", "L3", "L4"}
    assert listeners["L4"][-1].startswith("dropped: rated the reference below 4")
    assert listeners["L1"][-1] == "kept" and listeners["L1"][1] == "9/9 ✓" and listeners["L1"][2] == "1/1"
    assert listeners["L4"][8] == "100%"

    # Metric correlations, one row per measured metric.
    corr = table_rows(view.correlations_table)
    assert [r[0] for r in corr] == ["mel_distance", "si_sdr_db", "spectral_convergence_db"]
    assert "Holm" in view.report_text.toPlainText() or "paired" in view.report_text.toPlainText()

    # Screening off: L4 comes back.
    view.screening_box.setChecked(False)
    qtbot.waitUntil(lambda: view.report is not None and not view.report.screening.applied, timeout=LOAD_TIMEOUT_MS)
    assert table_rows(view.summary_table)[0][2] == "12"
    assert table_rows(view.listeners_table)[3][-1] == "kept (no screening)"


def test_exports_are_the_command_lines_files(qtbot, study, tmp_path):
    from mosapp.cli.main import main as cli_main
    from mosapp.study.export import RATINGS_COLUMNS, SUMMARY_COLUMNS

    view = make_view(qtbot, study)
    wait_loaded(qtbot, view)
    ratings_csv, summary_csv = view.export_csv(tmp_path / "gui-export")
    assert "Wrote res-ratings.csv, res-export-summary.csv and res-export-screening.csv" in view.message_label.text()
    ratings, summary = pd.read_csv(ratings_csv), pd.read_csv(summary_csv)
    assert list(ratings.columns) == list(RATINGS_COLUMNS) and len(ratings) == 36
    assert list(summary.columns) == list(SUMMARY_COLUMNS) and summary["condition"].tolist() == CONDITIONS
    assert ratings.loc[ratings["listener"] == "L4", "screened_out"].all()

    files = view.write_report_files(tmp_path / "gui-report")
    assert set(files) == {"summary", "comparisons", "correlations", "listeners", "plot", "text", "mixed", "clips",
                          "agreement", "icc"}
    for kind in ("summary", "comparisons", "correlations", "listeners", "mixed", "clips", "agreement"):
        assert len(pd.read_csv(files[kind])) > 0
    assert files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The command line writes the same files from the same database.
    assert cli_main(["study", "export", str(study), "--out", str(tmp_path / "cli-export")]) == 0
    assert cli_main(["study", "report", str(study), "--out", str(tmp_path / "cli-report")]) == 0
    for name in ("res-ratings.csv", "res-export-summary.csv", "res-export-screening.csv"):
        assert (tmp_path / "cli-export" / name).read_text() == (tmp_path / "gui-export" / name).read_text()
    for name in ("res-report-summary.csv", "res-report-comparisons.csv", "res-report-correlations.csv",
                 "res-report-listeners.csv", "res-report-mixed-model.csv", "res-report-clips.csv",
                 "res-report-agreement.csv", "res-report-icc.csv", "res-report.txt"):
        assert (tmp_path / "cli-report" / name).read_text() == (tmp_path / "gui-report" / name).read_text()

    # Training rows on request, as --include-training.
    view.training_box.setChecked(True)
    ratings_csv, _ = view.export_csv(tmp_path / "with-training")
    assert len(pd.read_csv(ratings_csv)) == 40

    # A folder that cannot be made: one sentence, nothing raised.
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert view.export_csv(blocker / "sub") is None
    assert view.message_label.property("error") and "cannot be created" in view.message_label.text()


def test_bad_input_is_a_message(qtbot, study, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("conditions = 3\n", encoding="utf-8")
    view = make_view(qtbot, bad)
    with qtbot.waitSignal(view.failed, timeout=LOAD_TIMEOUT_MS) as blocker:
        pass
    assert "conditions" in blocker.args[0] and view.message_label.text() == blocker.args[0]
    assert not view.export_button.isEnabled() and view.summary_table.rowCount() == 0

    # Not prepared yet: says so.
    fresh = write_study(tmp_path / "fresh", name="fresh")
    view.open_study(fresh)
    qtbot.waitUntil(lambda: not view.loading and "does not exist yet" in view.message_label.text(),
                    timeout=LOAD_TIMEOUT_MS)

    # Not a database: says so; the good study still opens afterwards.
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    view.database = f"sqlite:///{garbage}"
    view.open_study(study)
    qtbot.waitUntil(lambda: not view.loading and view.message_label.property("error"), timeout=LOAD_TIMEOUT_MS)
    assert "not a usable SQLite database" in view.message_label.text() or "database" in view.message_label.text()
    view.database = None
    view.reload()
    wait_loaded(qtbot, view)
    assert view.summary_table.rowCount() == 3


def test_coming_back_to_the_view_reads_new_ratings(qtbot, study):
    from mosapp.study import StudyEngine

    view = make_view(qtbot, study)
    wait_loaded(qtbot, view)
    assert view.listeners_table.rowCount() == 4
    with StudyEngine.open(study) as engine, engine.start_or_resume("L5") as session:
        session.rate(session.next_trial(), 4)  # the training trial: enrolled, nothing in the statistics yet
    view.hide()
    view._loaded_at -= 60  # a while later, the researcher comes back to the tab
    view.show()
    qtbot.waitUntil(lambda: not view.loading and view.listeners_table.rowCount() == 5, timeout=LOAD_TIMEOUT_MS)
    row = table_rows(view.listeners_table)[4]
    assert row[0] == "L5" and row[1] == "0/9" and row[2] == "1/1" and row[-1] == "no ratings yet"


def demo_copy(root: Path) -> Path:
    """The shipped demo study file in ``root/studies`` (its clip linked at ``root/assets``), never prepared."""
    (root / "studies").mkdir(parents=True)
    (root / "assets").symlink_to(REPO / "assets", target_is_directory=True)
    path = root / "studies" / "demo.toml"
    shutil.copyfile(REPO / "studies" / "demo.toml", path)
    return path


def hooked_view(qtbot) -> tuple[QWidget, ResultsView]:
    """The Results tab as the main window loads it (and its parent, which keeps it alive), loaded."""
    parent = QWidget()
    qtbot.addWidget(parent)
    view = load_optional_view("Results", "results_view", "ResultsView", parent=parent)
    assert isinstance(view, ResultsView)
    # Done: its results shown, or the sentence saying why there are none (the worker's signal has arrived).
    qtbot.waitUntil(lambda: not view.loading and (view.report is not None or view.message_label.text() not in ("", "Reading the ratings…")),
                    timeout=LOAD_TIMEOUT_MS)
    return parent, view


def test_the_main_window_hook_shows_the_default_study(qtbot, study, monkeypatch):
    monkeypatch.setattr(results_view, "DEFAULT_STUDY", study)
    _parent, view = hooked_view(qtbot)
    assert view.report is not None, view.message_label.text()
    assert list(view.report.summary["condition"]) == CONDITIONS
    assert "36 rating(s) from 4 listener(s)" in view.message_label.text()
    view.shutdown()


def test_the_main_window_hook_says_why_an_unprepared_demo_has_no_results(qtbot, tmp_path, monkeypatch):
    demo = demo_copy(tmp_path)
    monkeypatch.setattr(results_view, "DEFAULT_STUDY", demo)
    _parent, view = hooked_view(qtbot)
    assert view.report is None
    assert not view.message_label.property("error")  # a first step, not an error
    database = demo.parent / "data" / "demo" / "study.sqlite"
    assert view.message_label.text() == (
        f"No ratings yet. The study database {database} does not exist yet: prepare the study (Listen tab, or "
        f"`mosapp study prepare` with --db at that path) and rate some trials first.")
    assert not database.exists()
    view.shutdown()


def test_screenshot(qtbot, study, tmp_path):
    view = make_view(qtbot, study)
    wait_loaded(qtbot, view)
    qtbot.wait(100)
    image = view.grab()
    assert image.width() >= 1200
    assert image.save(str(tmp_path / "results.png"))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert image.save(str(SCREENSHOT))


def test_a_clip_condition_cell_opens_its_stimulus_in_inspect_with_its_ratings(qtbot, study):
    """Double-clicking a Per-clip row of Results shows, in Inspect, the very files listeners heard: the rendered
    stimulus against the clip's rendered reference, and the cell's ratings."""
    import numpy as np
    from PySide6.QtCore import Qt
    from sqlalchemy import select

    from mosapp.gui.app import MainWindow
    from mosapp.study import load_study, open_store
    from mosapp.study.store import ClipRow, ConditionRow, StimulusRow

    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(1400, 860)
    window.show()
    results = window.views["Results"]
    results.open_study(study)
    wait_loaded(qtbot, results)
    qtbot.waitUntil(lambda: results.report is not None and results.definition.name == "res", timeout=LOAD_TIMEOUT_MS)
    window.tabs.setCurrentWidget(results)
    results.tabs.setCurrentWidget(results.clips_table)
    table = results.clips_table
    row = next(r for r in range(table.rowCount()) if table.cell(r, 1) == "pghi-only")
    clip = table.cell(row, 0)
    qtbot.waitExposed(table)
    pos = table.visualItemRect(table.item(row, 1)).center()
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=pos)  # a double click starts with a press
    qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: window.tabs.currentWidget() is window.inspect, timeout=10_000)

    definition = load_study(study)
    with open_store(definition.database_url) as store, store.read() as s:
        files = dict(s.execute(select(ConditionRow.name, StimulusRow.audio_file)
                               .join(ClipRow, StimulusRow.clip_id == ClipRow.id)
                               .join(ConditionRow, StimulusRow.condition_id == ConditionRow.id)
                               .where(ClipRow.name == clip)).all())
    stimulus, reference = definition.stimuli_dir / files["pghi-only"], definition.stimuli_dir / files["reference"]
    inspect = window.inspect
    assert inspect.stimulus_files == (stimulus, reference)
    shown_reference, shown_stimulus = inspect.controller.screen.arrays
    assert np.array_equal(shown_stimulus, sf.read(stimulus, dtype="float32", always_2d=True)[0].mean(axis=1))
    assert np.array_equal(shown_reference, sf.read(reference, dtype="float32", always_2d=True)[0].mean(axis=1))
    assert inspect.panes.pair is not None
    # Its ratings: every listener's score of this cell (L4, screened out, marked so).
    ratings = results.report.ratings
    cell = ratings[(ratings["clip"] == clip) & (ratings["condition"] == "pghi-only")]
    listed = [inspect.ratings.ratings_list.item(i).text() for i in range(inspect.ratings.ratings_list.count())]
    assert inspect.ratings.isVisible() and len(listed) == len(cell) == 4
    for r in cell.itertuples():
        assert any(line.startswith(f"{r.listener}: {r.value:g} (trial {r.trial})") for line in listed), listed
    assert any("screened out" in line for line in listed if line.startswith("L4"))
    assert "pghi-only · " + clip in inspect.ratings.title()
    window.close()


def test_the_screening_threshold_is_set_in_the_studys_units(qtbot, study):
    view = make_view(qtbot, study)
    wait_loaded(qtbot, view)
    spin = view.min_score_spin
    assert spin.isEnabled() and (spin.minimum(), spin.maximum(), spin.value()) == (1, 5, 4)  # DCR: 1-5
    assert view.report.screening.dropped == ["L4"]  # its hidden reference at 2 < 4
    spin.setValue(2)
    spin.editingFinished.emit()
    qtbot.waitUntil(lambda: not view.loading and view.report.screening.spec.min_score == 2, timeout=LOAD_TIMEOUT_MS)
    assert view.report.screening.dropped == []  # 2 is not below 2: L4 kept
    assert "min_score 2" in view.message_label.text()


# ------------------------------------------------------------------ the plots on a real display

PLOT_DRIVER = r'''
import json, sys, time
from pathlib import Path
import pandas as pd
from PySide6.QtWidgets import QApplication
from mosapp.gui.results_view import ResultsView
from mosapp.study.definition import parse_study
from mosapp.study.report import plot_score_vs_kbps
from tests.study.conftest import study_toml

app = QApplication(["mosapp"])
out = Path(sys.argv[1])
ROWS = {  # condition: (bitrate, score by test type) -- close bitrates and scores on purpose
    "reference": (None, {"dcr": 4.9, "mushra": 98.0, "ccr": -0.1}),
    "lowpass-3.5k": (None, {"dcr": 1.6, "mushra": 18.0, "ccr": -2.4}),
    "lowpass-7k": (None, {"dcr": 2.6, "mushra": 45.0, "ccr": -1.6}),
    "pghi-only": (None, {"dcr": 3.9, "mushra": 72.0, "ccr": -0.75}),
    "opus-6": (6.1, {"dcr": 2.1, "mushra": 35.0, "ccr": -2.0}),
    "opus-12": (12.3, {"dcr": 3.2, "mushra": 60.0, "ccr": -1.1}),
    "opus-24": (24.4, {"dcr": 4.1, "mushra": 82.0, "ccr": -0.4}),
    "sgc-6": (6.0, {"dcr": 2.3, "mushra": 38.0, "ccr": -1.8}),
    "sgc-12": (11.8, {"dcr": 3.3, "mushra": 62.0, "ccr": -1.0}),
    "sgc-24": (23.7, {"dcr": 4.2, "mushra": 84.0, "ccr": -0.3}),
    "mp3-32": (32.0, {"dcr": 3.9, "mushra": 75.0, "ccr": -0.6}),
}
result = {}
for kind in ("dcr", "mushra", "ccr"):
    conds = list(ROWS)
    d = parse_study(study_toml(test_type=kind, conditions=conds if kind == "mushra" else conds[:4] + conds[4:]),
                    source=out / f"{kind}.toml")
    span = {"dcr": 0.45, "mushra": 9.0, "ccr": 0.5}[kind]
    summary = pd.DataFrame([{"condition": c, "is_reference": c == "reference", "bitrate_kbps": b,
                             "mean": v[kind], "ci_low": v[kind] - span, "ci_high": v[kind] + span}
                            for c, (b, v) in ROWS.items()])
    lo, hi = d.score_range
    summary["ci_low"] = summary["ci_low"].clip(lo, hi)
    summary["ci_high"] = summary["ci_high"].clip(lo, hi)
    view = ResultsView(d, auto_load=False)
    view.resize(900, 620)
    view.plot.setParent(None)
    view.plot.resize(900, 620)
    view.plot.show()
    view.plot.draw(summary, d)
    for _ in range(30):
        app.processEvents(); time.sleep(0.02)
    view.plot.grab().save(str(out / f"xcb-results-plot-{kind}.png"), "PNG")
    plot_score_vs_kbps(summary, d, out / f"report-plot-{kind}.png")
    item = view.plot.getPlotItem()
    left = [t for t, _ in item.getAxis("left")._tickLevels[0]]
    bottom = [label for _, label in item.getAxis("bottom")._tickLevels[0]]
    vb = item.getViewBox()
    box = vb.mapRectToScene(vb.boundingRect())
    import pyqtgraph as pg
    texts = [i for i in item.items if isinstance(i, pg.TextItem)]
    rects = [t.mapRectToScene(t.boundingRect()) for t in texts]
    overlaps = sum(1 for i in range(len(rects)) for j in range(i) if rects[i].intersects(rects[j]))
    outside = sum(1 for r in rects if not box.contains(r))
    result[kind] = {"left": left, "bottom": bottom, "labels": len(texts), "overlaps": overlaps, "outside": outside}
print(json.dumps(result))
'''


@pytest.mark.slow
def test_the_dcr_mushra_and_ccr_plots_on_xcb_label_every_grade_without_overlaps(display):
    """On Qt's xcb platform (Xvfb): each plot labels every grade of its scale (CCR's 0 and negatives too), bitrate
    ticks that do not run together, point labels that neither overlap nor leave the axes. The screenshots are kept
    in out/screenshots/ (xcb-results-plot-*.png, with the report's own PNGs report-plot-*.png) to be looked at."""
    import json
    import subprocess
    import sys

    from tests.gui.xvfb import SCREENSHOTS, env_for

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([sys.executable, "-c", PLOT_DRIVER, str(SCREENSHOTS)], env=env_for(display),
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["dcr"]["left"] == [1, 2, 3, 4, 5]
    assert result["mushra"]["left"] == [0, 20, 40, 60, 80, 100]
    assert result["ccr"]["left"] == [-3, -2, -1, 0, 1, 2, 3]  # zero and the negatives labelled
    for kind, r in result.items():
        assert r["labels"] == 7 and r["overlaps"] == 0 and r["outside"] == 0, (kind, r)
        values = [float(v) for v in r["bottom"]]
        assert len(values) >= 2 and all(b / a >= 1.45 for a, b in zip(values, values[1:])), (kind, r["bottom"])
        assert (SCREENSHOTS / f"xcb-results-plot-{kind}.png").stat().st_size > 5000
