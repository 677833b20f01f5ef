"""The window tells the truth about its state (offscreen Qt), one test per thing that went stale or wrong:

* a new file cleared nothing: the old spectrograms, metrics and crosshair read-out stayed
  under the new file's name (and after a cancel, and after a failed open);
* Inspect's status messages showed on the Listen tab;
* progress was stage-level ("Encoding 5%" for minutes, no ETA; its units and ETA are tested on the
  controller in tests/views/test_inspect_controller.py);
* a rerun lost the zoom, the dB levels and the 0–500 Hz range;
* Results did not follow the study opened in Listen; its export dialog proposed a folder
  that did not exist;
* Opus runs were labelled with a phase backend, empty or short plots read "(x0.001)";
* Inspect started on pghi-only although the README's default codec is sgc-12.
"""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
import pytest
import soundfile as sf

from mosapp.codecs import DEFAULT_CODEC
from mosapp.gui.app import MainWindow
from mosapp.gui.inspect_controls import set_combo
from tests.gui.inspect_window import move_mouse, wait_for
from tests.gui.listen_support import write_study
from tests.helpers import RATE, music_like


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("honest")
    out = {}
    for name, seconds, seed in (("first.wav", 2.0, 1), ("second.wav", 20.0, 2), ("short.wav", 0.1, 3)):
        out[name] = folder / name
        sf.write(out[name], music_like(seconds, seed=seed).T, RATE, subtype="PCM_16")
    return out


@pytest.fixture
def window(qapp):
    w = MainWindow()
    w.resize(1400, 860)
    w.show()
    view = w.inspect
    assert set_combo(view.controls.codec_combo, "pghi-only") and set_combo(view.controls.phase_combo, "pghi")
    assert set_combo(view.controls.visqol_combo, "off")
    yield w
    w.close()


def run_to_result(qapp, view, path=None):
    results = []
    view.result_ready.connect(results.append)
    if path is None:
        view.run()
    else:
        view.open_path(path)
    wait_for(qapp, lambda: results or not view.busy)
    view.result_ready.disconnect()
    assert results, view.message_text()
    return results[0]


def test_inspect_starts_on_the_readmes_default_codec(window):
    assert DEFAULT_CODEC == "sgc-12"
    fresh = MainWindow()
    try:
        assert fresh.inspect.controls.codec_combo.currentText() == DEFAULT_CODEC
    finally:
        fresh.close()


def test_a_new_file_clears_the_old_result_and_shows_its_original_at_once(window, qapp, clips):
    view = window.inspect
    run_to_result(qapp, view, clips["first.wav"])
    move_mouse(view.panes, view.panes.original, 1.0, 1000.0)
    assert "reconstructed" in view.readout_label.text()

    view.open_path(clips["second.wav"])
    # At once: nothing of first.wav's is left under second.wav's name.
    assert view.controls.source_label.text() == "second.wav" and view.result is None and view.panes.pair is None
    assert all(label.text() == "—" for label in view.metrics.metric_labels.values())
    assert view.metrics.run_info_label.text() == "" and "reconstructed" not in view.readout_label.text()
    assert view.panes.last_readout == "" and view.player is None
    # Then the original, long before the run ends; the other panes stay empty.
    wait_for(qapp, lambda: view.panes.original_only, timeout_s=60)
    assert view.busy
    assert view.panes.images["original"].image is not None
    assert view.panes.images["reconstructed"].image is None and view.panes.images["difference"].image is None
    assert view.panes.visible_time_range()[1] == pytest.approx(20.0, abs=0.1)
    move_mouse(view.panes, view.panes.original, 10.0, 1000.0)
    text = view.readout_label.text()
    assert "original" in text and "reconstructed" not in text and "difference" not in text

    # Cancelled: still second.wav's original only, and the message says there is no result.
    view.controls.cancel_button.click()
    wait_for(qapp, lambda: not view.busy, timeout_s=60)
    assert view.message_text().startswith("Cancelled; no result for this clip")
    assert view.result is None and view.panes.original_only


def test_messages_belong_to_their_tab(window, qapp):
    view, bar = window.inspect, window.statusBar()
    view.show_message("Inspect says this.")
    assert bar.currentMessage() == "Inspect says this."
    window.tabs.setCurrentWidget(window.views["Listen"])
    assert bar.currentMessage() == ""
    view.show_message("A run ended while you were listening.", error=True)
    assert bar.currentMessage() == ""
    window.tabs.setCurrentWidget(view)
    assert bar.currentMessage() == "A run ended while you were listening."


def test_a_real_run_reports_its_units(window, qapp, clips):
    view = window.inspect
    seen = set()
    show = view.controls.progress_label.setText

    def record(text: str) -> None:  # every text the progress line shows, not only those the bar moved with
        seen.add(text)
        show(text)

    view.controls.progress_label.setText = record
    set_combo(view.controls.phase_combo, "pghi+fgla")
    run_to_result(qapp, view, clips["second.wav"])
    text = " | ".join(seen)
    assert "frames analysed" in text or "tiles coded" in text  # inside Encoding (a new unit is never throttled)
    assert "frame " in text and " of " in text  # Decoding, in lattice frames
    assert "chunk" in text  # Measuring and Drawing, in chunks


def test_a_rerun_keeps_zoom_levels_and_the_low_frequency_range(window, qapp, clips):
    view = window.inspect
    run_to_result(qapp, view, clips["first.wav"])
    view.set_low_frequency_mode(True)
    view.panes.show_time_range(0.5, 1.25)
    view.set_level_range(-70.0, -5.0)
    set_combo(view.controls.codec_combo, "lowpass-3.5k")
    result = run_to_result(qapp, view)
    assert result.request.codec == "lowpass-3.5k" and view.result is result
    lo, hi = view.panes.visible_time_range()
    assert lo == pytest.approx(0.5, abs=0.02) and hi == pytest.approx(1.25, abs=0.02)
    f_lo, f_hi = view.panes.visible_frequency_range()
    assert f_lo == pytest.approx(20.0, rel=0.05) and f_hi == pytest.approx(500.0, rel=0.05)
    assert tuple(view.panes.db_bar.levels()) == pytest.approx((-70.0, -5.0))
    assert view.view_panel.low_mode_check.isChecked() and view.panes.log_frequency
    view.set_low_frequency_mode(False)


def test_opus_runs_name_no_phase_backend(window, qapp, clips):
    view = window.inspect
    assert set_combo(view.controls.codec_combo, "opus-12")
    assert not view.controls.phase_combo.isEnabled() and not view.controls.geometry_combo.isEnabled()
    run_to_result(qapp, view, clips["first.wav"])
    info = view.metrics.run_info_label.text()
    assert info.startswith("opus-12 · ") and "phase" not in info and "thesis" not in info
    assert set_combo(view.controls.codec_combo, "pghi-only")
    assert view.controls.phase_combo.isEnabled()


def test_no_axis_reads_x0001_on_empty_or_short_plots(window, qapp, clips):
    def labels() -> list[str]:
        out = []
        for widget in window.findChildren(pg.GraphicsView):
            out += [item.labelString() for item in widget.scene().items() if isinstance(item, pg.AxisItem)]
        return out

    for i in range(window.tabs.count()):
        window.tabs.setCurrentIndex(i)
        qapp.processEvents()
    window.tabs.setCurrentWidget(window.inspect)
    assert labels() and not [s for s in labels() if "(x" in s]
    run_to_result(qapp, window.inspect, clips["short.wav"])
    qapp.processEvents()
    assert not [s for s in labels() if "(x" in s]


def test_results_follow_the_study_opened_in_listen(window, qapp, tmp_path):
    listen, results = window.views["Listen"], window.views["Results"]
    path = write_study(tmp_path / "follow", name="follow")
    listen.open_study(path)
    assert listen.definition is not None and listen.definition.name == "follow"
    assert results.study is listen.definition
    wait_for(qapp, lambda: not results.loading, timeout_s=60)


def test_the_export_dialog_proposes_a_folder_that_exists(qapp, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from mosapp.gui.results_view import ResultsView
    view = ResultsView(write_study(tmp_path / "exp", name="exp"), auto_load=False)
    from mosapp.study.definition import load_study

    view.definition = load_study(view.study, check_codecs=False)
    proposed = []

    def dialog(parent, title, folder):
        proposed.append((folder, Path(folder).is_dir()))
        return folder  # the researcher accepts what is proposed

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(dialog))
    chosen = view._folder(None, "Export CSV into…")
    assert proposed and proposed[0][1], f"the dialog proposed {proposed[0][0]}, which does not exist"
    assert chosen == Path(proposed[0][0]) and chosen.is_dir() and chosen.name == "results"
    view.close()


# ---------------------------------------------------------------------- issue 26 (a user test on a real screen)

def test_the_level_controls_show_the_new_files_levels_as_soon_as_its_original_is_drawn(window, qapp, clips, tmp_path):
    """After opening another file, floor / top kept the previous values (−90 / 11 dB, auto) while
    the colour bar spanned +24…−78 dB, until a run finished."""
    from mosapp.views.jobs import AudioSource

    view = window.inspect
    assert view.view_panel.auto_levels_check.isChecked()
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, 0.02 * music_like(2.0, seed=5).T, RATE, subtype="FLOAT")
    shown = []
    for path in (clips["first.wav"], quiet):
        view.open_source(AudioSource(str(path)), run=False)
        # At once: nothing drawn yet, so the automatic levels claim nothing (greyed out).
        assert not view.view_panel.floor_spin.isEnabled() and not view.view_panel.top_spin.isEnabled()
        wait_for(qapp, lambda: view.panes.original_only and not view.drawing.previewing, timeout_s=60)
        floor, top = view.panes.db_bar.levels()
        assert (view.view_panel.floor_spin.value(), view.view_panel.top_spin.value()) == (floor, top), path.name
        assert (floor, top) == view.panes.auto_level_range()
        assert view.view_panel.floor_spin.isEnabled() and view.view_panel.top_spin.isEnabled()
        shown.append((floor, top))
    assert shown[1][1] < shown[0][1] - 20  # 34 dB quieter: the controls moved with the bar


def test_codec_lattice_draws_what_the_chosen_codec_coded(window, qapp):
    """"Codec lattice" always drew the thesis lattice, also for a codec that codes the band below
    1 kHz on its own 10.8 Hz lattice."""
    import numpy as np

    from mosapp.views.inspect_controller import CODEC_LATTICE, is_two_band_codec

    view = window.inspect
    x = music_like(2.0, seed=6)[0]
    view.show_arrays(x, (0.9 * x).astype(np.float32))
    assert set_combo(view.view_panel.window_combo, CODEC_LATTICE)
    wait_for(qapp, lambda: not view.analysing, timeout_s=60)
    assert not view.panes.pair.analysis.is_two_band and view.panes.pair.hz_per_bin > 80  # pghi-only: thesis
    assert not view.panes.region_label.isVisible()
    assert is_two_band_codec("pghi-only-two-band")
    assert set_combo(view.controls.codec_combo, "pghi-only-two-band")
    wait_for(qapp, lambda: not view.analysing, timeout_s=60)
    pair = view.panes.pair
    assert pair.analysis.is_two_band and pair.hz_per_bin == pytest.approx(RATE / 4096)
    assert "two-band" in view.panes.original.titleLabel.text
    assert view.panes.region_label.isVisible()
    text = view.panes.region_label.textItem.toPlainText()
    assert "low band: 10.8 Hz bins" in text and "high band: 86.1 Hz bins" in text
    assert all(line.isVisible() and line.value() == pytest.approx(1000.0) for line in view.panes.crossover_lines)
    assert "low band" in view.view_panel.analysis_label.text() and "high band" in view.view_panel.analysis_label.text()
    set_combo(view.view_panel.window_combo, "Hann 2048")
    wait_for(qapp, lambda: not view.analysing, timeout_s=60)
    assert not view.panes.region_label.isVisible() and not any(ln.isVisible() for ln in view.panes.crossover_lines)


def test_an_empty_inspect_shows_a_hint_not_axes(qapp, clips):
    """Plain `mosapp` opened an empty Inspect with axes of −0.4…0.4 Hz."""
    from mosapp.views.jobs import AudioSource

    w = MainWindow()
    w.show()
    try:
        view = w.inspect
        qapp.processEvents()
        assert view.empty_hint.isVisible() and not view.panes.isVisible()
        assert "Open" in view.empty_hint.text()
        view.open_source(AudioSource(str(clips["first.wav"])), run=False)
        wait_for(qapp, lambda: view.panes.original_only, timeout_s=60)
        assert view.panes.isVisible() and not view.empty_hint.isVisible()
        view.clear_result()
        assert view.empty_hint.isVisible() and not view.panes.isVisible()
    finally:
        w.close()


def test_the_smallest_window_fits_a_1366_by_768_laptop_screen(qapp):
    """The smallest window the app allowed was 1225×877."""
    w = MainWindow()
    try:
        least = w.minimumSizeHint()
        assert least.width() <= 1366 - 16 and least.height() <= 768 - 40 - 30, least  # a task bar, a title bar
    finally:
        w.close()


def test_after_cancel_the_original_can_be_played_and_a_silent_player_never_says_pause(window, qapp, clips):
    """After Cancel, Play was disabled (the original could not be heard); with no output device,
    Space showed "Pause" while the time stayed at 0.00."""
    from mosapp import playback

    view = window.inspect
    view.open_path(clips["second.wav"])
    wait_for(qapp, lambda: view.panes.original_only and view.original_complete, timeout_s=120)
    view.controls.cancel_button.click()
    wait_for(qapp, lambda: not view.busy, timeout_s=60)
    assert view.result is None and view.player is not None and view.player.count == 1
    assert view.listen.play_button.isEnabled() and view.listen.original_radio.isChecked()
    assert not view.listen.reconstruction_radio.isEnabled()
    assert "can be played" in view.message_text()
    if not playback.output_devices():  # this machine has no output: the player is silent
        assert view.player.silent_reason
        view.toggle_play()
        assert view.listen.play_button.text() == "Play" and not view.player.playing
        assert view.player.silent_reason in view.message_text()
    # "Save image…" proposes the clip and what is drawn, not always inspect.png.
    assert view.default_image_name() == "second-original-hann-2048.png"


def test_the_band_error_axis_is_held_with_the_difference_scale_and_the_bitrate_wraps(window, qapp):
    """"Hold" fixed only the difference's scale: the per-band error axis rescaled on every run. The
    bitrate text was cut until the panel laid itself out again."""
    import numpy as np

    view = window.inspect
    x = music_like(1.5, seed=7)[0]
    view.show_arrays(x, (0.9 * x).astype(np.float32))
    view.view_panel.hold_difference_check.setChecked(True)
    held = view.panes.band_error.viewRange()[0]
    view.show_arrays(x, (0.2 * x).astype(np.float32))  # a far larger error
    assert view.panes.band_error.viewRange()[0] == pytest.approx(held)
    view.view_panel.hold_difference_check.setChecked(False)
    view.show_arrays(x, (0.2 * x).astype(np.float32))
    assert view.panes.band_error.viewRange()[0][1] > held[1] * 1.5
    label = view.metrics.metric_labels["file_kbps"]
    label.setText("123.45 kbit/s (1,234,567,890 bytes)")
    for _ in range(5):  # the layout requests travel up a level per pass
        qapp.processEvents()
    whole = label.fontMetrics().horizontalAdvance(label.text())
    assert whole <= label.width() or (label.wordWrap() and label.heightForWidth(label.width()) <= label.height() + 1)
