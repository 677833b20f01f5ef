"""The Evaluate tab: an evaluation folder as plot and table, and a row opened in Inspect with its codec."""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
import soundfile as sf
from PySide6.QtCore import Qt

from mosapp.evaluation.run import run_evaluation, run_to_end
from mosapp.gui.app import MainWindow
from mosapp.gui.evaluation_view import EvaluationView
from tests.helpers import RATE, music_like

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "out" / "screenshots" / "evaluate.png"
METRICS = ("mel_distance", "low_band_distance_db")


def _evaluation(tmp_path: Path) -> Path:
    music = tmp_path / "music"
    music.mkdir()
    for i in range(2):
        sf.write(str(music / f"piece{i}.wav"), music_like(3.0, seed=20 + i).T, RATE)
    out = tmp_path / "eval"
    run_to_end(run_evaluation([str(music)], ["opus-12", "opus-24", "mp3-16", "lowpass-7k"], out, metric_names=METRICS,
                              excerpt_seconds=1.0, workers=0))
    return out


def test_the_folder_is_plotted_and_tabled_and_a_row_opens_in_inspect(qtbot, tmp_path):
    out = _evaluation(tmp_path)
    window = MainWindow()
    qtbot.addWidget(window)
    view = window.views["Evaluate"]
    assert isinstance(view, EvaluationView)
    assert view.open_folder(out)
    assert view.table.rowCount() == 2 * 4
    headers = [view.table.horizontalHeaderItem(i).text() for i in range(view.table.columnCount())]
    assert headers[:5] == ["clip", "start_s", "seconds", "codec", "kbps"] and "mel dist. ↓" in headers
    items = view.plot.getPlotItem().items
    assert sum(isinstance(i, pg.ErrorBarItem) for i in items) == 2  # opus (two rates) and mp3
    # The anchor has no bitrate of its own: a reference line, not a point at hundreds of kbit/s.
    lines = [i for i in items if isinstance(i, pg.InfiniteLine)]
    assert len(lines) == 1 and "lowpass-7k" in lines[0].label.toPlainText()
    view.metric_combo.setCurrentIndex(view.metric_combo.findData("low_band_distance_db"))
    assert "low-band distance" in view.plot.getPlotItem().getAxis("left").labelText
    window.tabs.setCurrentWidget(view)
    window.resize(1300, 800)
    window.show()
    qtbot.waitExposed(window)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert view.grab().save(str(SCREENSHOT))

    # A row (sorted however the user likes) opens its excerpt with its codec in Inspect.
    view.table.sortItems(3, Qt.SortOrder.DescendingOrder)
    row = next(r for r in range(view.table.rowCount()) if view.table.item(r, 3).text() == "mp3-16")
    link = view.link(int(view.table.item(row, 0).data(Qt.ItemDataRole.UserRole)))
    with qtbot.waitSignal(view.inspect_requested, timeout=5000):
        view.table.cellDoubleClicked.emit(row, 1)
    assert window.tabs.currentWidget() is window.inspect
    assert window.inspect.controls.codec_combo.currentText() == "mp3-16"
    source = window.inspect.source
    assert source is not None and source.path == link.path
    assert (source.start_s, source.length_s) == (link.start_s, link.seconds)
    window.inspect.cancel()
    window.inspect.shutdown()
    window.close()


def test_a_folder_that_is_not_an_evaluation_says_so(qtbot, tmp_path):
    view = EvaluationView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.message, timeout=2000) as said:
        assert not view.open_folder(tmp_path)
    assert "is not the output folder of `mosapp evaluate`" in said.args[0]
