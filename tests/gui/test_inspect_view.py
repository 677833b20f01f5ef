"""The Inspect view driven like a researcher would (offscreen Qt): open, run, look, listen, save."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication

from mosapp.core.config import PipelineConfig
from mosapp.gui.inspect_controls import set_combo
from mosapp.gui.spectrogram_widgets import LOG_MIN_HZ, LOG_ROWS
from mosapp.views.jobs import AudioSource, InspectRequest
from mosapp.views.spectrogram_data import DEFAULT_ANALYSIS, LOW_FREQUENCY_ANALYSIS
from tests.gui.inspect_window import RUN_TIMEOUT_S, fast_inspect_window, move_mouse, wait_for
from tests.helpers import RATE, music_like, unavailable

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "out" / "screenshots" / "inspect.png"


@pytest.fixture(scope="module")
def music_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "music.wav"
    sf.write(path, music_like(2.0).T, RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def window(qapp, music_wav):
    """The main window with music.wav inspected through pghi-only / pghi (run once per module)."""
    w = fast_inspect_window()
    view = w.inspect
    results = []
    view.result_ready.connect(results.append)
    view.open_path(music_wav)
    wait_for(qapp, lambda: results or not view.busy)
    assert results, view.message_text()
    yield w
    w.close()


@pytest.fixture
def view(window, qapp):
    v = window.inspect
    v.set_low_frequency_mode(False)
    if v.analysis() != DEFAULT_ANALYSIS:
        v.set_analysis(DEFAULT_ANALYSIS)
    wait_for(qapp, lambda: not v.analysing, timeout_s=60)
    v.panes.reset_view()
    qapp.processEvents()
    return v


def test_run_shows_both_spectrograms_and_the_metrics(view):
    result = view.result
    assert result is not None and result.request.codec == "pghi-only"
    pair = result.display
    for name in ("original", "reconstructed", "difference"):
        image = view.panes.images[name].image
        assert image is not None and image.shape == (pair.bins, pair.columns)
    # Drawn from the view's own analysis (a Hann STFT, 21.5 Hz bins), not from the codec's lattice.
    assert pair.analysis == DEFAULT_ANALYSIS and pair.bins == 1025
    np.testing.assert_array_equal(view.panes.images["original"].image, pair.original_db)
    np.testing.assert_array_equal(view.panes.images["reconstructed"].image, pair.reconstructed_db)
    # Both spectrograms share the colour scale: the clip's peak down 100 dB.
    assert view.panes.images["original"].levels[0] == pytest.approx(view.panes.images["reconstructed"].levels[0])
    assert tuple(view.panes.db_bar.levels()) == (math.floor(pair.floor_db), math.ceil(pair.top_db))
    text = view.metrics_text()
    assert f"bitrate (file): {result.file_kbps:.2f} kbit/s" in text
    assert f"mel distance: {result.scores['mel_distance']:.3f}" in text
    assert f"spectral convergence: {result.scores['spectral_convergence_db']:.2f} dB" in text
    assert f"SI-SDR: {result.scores['si_sdr_db']:.2f} dB" in text
    assert "ViSQOL MOS-LQO: —" in text  # switched off for speed
    assert f"consistency (decoded): {result.scores['decoded_consistency']:.3f}" in text
    assert "done" in view.message_text()
    assert not view.busy and not view.controls.cancel_button.isEnabled()


def test_zoom_and_pan_are_linked(view, qapp):
    panes = view.panes
    panes.reconstructed.setXRange(0.5, 1.0, padding=0)
    panes.difference.setYRange(1000.0, 3000.0, padding=0)
    qapp.processEvents()
    for plot in panes.spectrogram_plots:
        (x0, x1), (y0, y1) = plot.viewRange()
        assert (x0, x1) == pytest.approx((0.5, 1.0)) and (y0, y1) == pytest.approx((1000.0, 3000.0))
    assert panes.band_error.viewRange()[1] == pytest.approx([1000.0, 3000.0])


def test_low_frequency_mode(view, qapp):
    view.view_panel.low_mode_check.setChecked(True)
    wait_for(qapp, lambda: not view.analysing, timeout_s=60)
    qapp.processEvents()
    panes = view.panes
    assert panes.log_frequency and view.view_panel.log_check.isChecked()
    assert panes.visible_frequency_range() == pytest.approx((LOG_MIN_HZ, 500.0))
    assert panes.images["original"].image.shape[0] == LOG_ROWS
    # The mode's own analysis: 8192 samples (5.4 Hz bins, up to 11 kHz), for both panes.
    pair = panes.pair
    assert pair.analysis == LOW_FREQUENCY_ANALYSIS and view.analysis() == LOW_FREQUENCY_ANALYSIS
    assert pair is view.result.display and pair.hz_per_bin == pytest.approx(RATE / 8192)
    assert "Hann 8192" in panes.original.titleLabel.text and "Hann 8192" in panes.reconstructed.titleLabel.text
    # Rows are log-spaced and show their nearest analysis bin: 100 Hz is bin 19 (5.38 Hz bins).
    bottom, top = math.log10(LOG_MIN_HZ), math.log10(pair.max_hz)
    row = int((math.log10(100.0) - bottom) / (top - bottom) * LOG_ROWS)
    centre = 10 ** (bottom + (row + 0.5) * (top - bottom) / LOG_ROWS)
    np.testing.assert_array_equal(panes.images["original"].image[row], pair.original_db[round(centre / pair.hz_per_bin)])
    assert round(centre / pair.hz_per_bin) == 19
    assert panes.plots[0].getAxis("left").tickStrings([math.log10(200.0)], 1, 1.0) == ["200"]
    view.view_panel.low_mode_check.setChecked(False)
    wait_for(qapp, lambda: not view.analysing, timeout_s=60)
    qapp.processEvents()
    assert view.analysis() == DEFAULT_ANALYSIS  # the analysis from before comes back
    assert not panes.log_frequency and panes.images["original"].image.shape[0] == 1025
    view.view_panel.low_button.click()
    assert panes.visible_frequency_range() == pytest.approx((0.0, 500.0))


def test_difference_view_and_band_error(view):
    pair = view.result.display
    image = view.panes.images["difference"].image
    np.testing.assert_allclose(image, pair.reconstructed_db - pair.original_db, atol=1e-3)
    lo, hi = view.panes.difference_bar.levels()
    assert lo == -hi and hi > 0  # diverging colours centred on 0 dB
    view.panes.difference_bar.setLevels((-5.0, 12.0))
    view.panes._keep_difference_symmetric(view.panes.difference_bar)
    assert view.panes.difference_bar.levels() == (-12.0, 12.0)
    error, hz = view.panes.band_curve.getData()
    assert np.allclose(error[::2], pair.band_error_db) and hz[1] == pytest.approx(pair.hz_per_bin / 2)


def test_crosshair_reads_time_frequency_and_both_levels(view, qapp):
    panes = view.panes
    pair = view.result.display
    for plot in (panes.original, panes.reconstructed):
        move_mouse(panes, plot, 1.0, 440.0)
        qapp.processEvents()
        text = view.readout_label.text()
        assert text == panes.last_readout
        time_s = float(text.split(" s")[0])
        hz = float(text.split("   ")[1].split(" Hz")[0].replace(",", ""))
        assert time_s == pytest.approx(1.0, abs=0.01) and hz == pytest.approx(440.0, abs=30.0)
        original, reconstructed, difference = pair.values_at(time_s, hz)
        assert f"original {original:.1f} dB" in text
        assert f"reconstructed {reconstructed:.1f} dB" in text
        assert f"difference {difference:+.1f} dB" in text
        for v, h in panes.crosshairs:  # the crosshair is drawn on every pane
            assert v.isVisible() and v.value() == pytest.approx(time_s, abs=0.01)
            assert h.value() == pytest.approx(hz, abs=30.0)


def test_loop_region_sets_the_players_loop(view, qapp):
    if view.player is None:
        unavailable(view.listen.playback_status.text())
    view.listen.loop_check.setChecked(True)
    qapp.processEvents()
    assert all(r.isVisible() for r in view.panes.regions)
    view.panes.set_loop_region(0.5, 1.25)
    qapp.processEvents()
    assert view.panes.loop_region() == pytest.approx((0.5, 1.25))
    assert all(r.getRegion() == pytest.approx((0.5, 1.25)) for r in view.panes.regions)
    assert view.player.loop == pytest.approx((0.5, 1.25), abs=1e-4)
    view.listen.loop_check.setChecked(False)
    qapp.processEvents()
    assert view.player.loop is None and view.panes.loop_region() is None


def test_switching_keeps_the_position_and_the_playhead_follows(view, qapp):
    if view.player is None:
        unavailable(view.listen.playback_status.text())
    view.seek(0.75)
    view.select_stimulus(1)
    assert view.player.selected == 1 and view.listen.reconstruction_radio.isChecked()
    assert view.player.position_s == pytest.approx(0.75, abs=1e-3)
    view.listen.stimulus_group.button(0).click()
    assert view.player.selected == 0 and view.player.position_s == pytest.approx(0.75, abs=1e-3)
    view.player.seek(1.5)
    wait_for(qapp, lambda: view.panes.playhead_s() == pytest.approx(1.5, abs=1e-3), timeout_s=5)
    for head in view.panes.playheads:
        assert head.isVisible() and head.value() == pytest.approx(1.5, abs=1e-3)


def test_save_view_as_png(view, qapp, tmp_path):
    view.listen.loop_check.setChecked(True)
    view.panes.set_loop_region(0.6, 1.1)
    view.seek(0.9)
    move_mouse(view.panes, view.panes.original, 1.3, 1500.0)
    for _ in range(10):  # let the playhead timer run
        qapp.processEvents()
        time.sleep(0.01)
    for path in (tmp_path / "inspect.png", SCREENSHOT):
        path.parent.mkdir(parents=True, exist_ok=True)
        saved = view.save_png(path)
        assert saved == path and path.stat().st_size > 10_000
        image = QImage(str(path))
        assert image.width() == view.width() * image.devicePixelRatio() or image.width() >= view.width()
        # Not a blank grab: the spectrogram area has many colours.
        colours = {image.pixel(x, y) for x in range(100, image.width() - 100, 37) for y in range(100, image.height() - 100, 29)}
        assert len(colours) > 50
    assert view.save_png(tmp_path / "missing" / "x.png") is None
    assert "does not exist" in view.message_text()
    view.listen.loop_check.setChecked(False)
    # The low-frequency mode, for the lead to look at too.
    view.view_panel.low_mode_check.setChecked(True)
    move_mouse(view.panes, view.panes.difference, 1.0, 130.0)
    qapp.processEvents()
    assert "Hz" in view.readout_label.text()
    assert view.save_png(SCREENSHOT.with_name("inspect_low.png")) is not None
    view.view_panel.low_mode_check.setChecked(False)


def test_corrupt_file_dropped_on_the_window(window, view, qapp, tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt this is not audio at all" * 4)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(bad))])
    pos = QPointF(window.width() / 2, window.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    wait_for(qapp, lambda: not view.busy)
    message = view.message_text()
    assert "corrupt.wav" in message and "Traceback" not in message
    assert view.controls.message_label.property("error") is True
    assert window.statusBar().currentMessage() == message
    assert window.isVisible()
    # The previous clip's spectrograms and metrics are gone: nothing on screen claims to be corrupt.wav's.
    assert view.result is None and view.panes.pair is None
    assert view.controls.source_label.text() == "corrupt.wav"
    assert all(label.text() == "—" for label in view.metrics.metric_labels.values())
    assert all(image.image is None for image in view.panes.images.values())


def test_unknown_codec_and_unavailable_model_are_messages(view, qapp, music_wav):
    source = AudioSource(str(music_wav))
    view.run(InspectRequest(source, "no-such-codec", PipelineConfig(phase="pghi")))
    wait_for(qapp, lambda: not view.busy)
    assert view.message_text().startswith('Unknown codec "no-such-codec"; known codecs:')
    model = view.controls.codec_combo.model()
    disabled = [i for i in range(view.controls.codec_combo.count()) if not model.item(i).isEnabled()]
    if not disabled:
        pytest.skip("every codec is available on this machine")
    i = disabled[0]
    tooltip = view.controls.codec_combo.itemData(i, Qt.ItemDataRole.ToolTipRole)
    assert tooltip.startswith("not available: ")
    assert not set_combo(view.controls.codec_combo, view.controls.codec_combo.itemText(i))  # cannot be chosen
    view.run(InspectRequest(source, view.controls.codec_combo.itemText(i), PipelineConfig(phase="pghi")))
    wait_for(qapp, lambda: not view.busy)
    assert view.message_text() == tooltip.removeprefix("not available: ")


def test_cancel_stops_a_run(view, qapp, tmp_path):
    long = tmp_path / "long.wav"
    sf.write(long, music_like(20.0, seed=3).T, RATE)
    worker = view.run(InspectRequest(AudioSource(str(long)), "pghi-only", PipelineConfig(phase="pghi+fgla")))
    assert view.busy and view.controls.cancel_button.isEnabled() and view.controls.progress.isVisible()
    view.controls.cancel_button.click()
    wait_for(qapp, lambda: not view.busy, timeout_s=60)
    assert worker.wait(60)
    # The cancelled run was long.wav's: the previous clip's result is not left on screen under its name.
    assert view.message_text().startswith("Cancelled")
    assert view.controls.source_label.text() == "long.wav"
    assert view.result is None and view.panes.images["reconstructed"].image is None


def test_progress_reaches_the_bar(view, qapp, qtbot, music_wav):
    seen = []
    view.controls.progress.valueChanged.connect(lambda value: seen.append((value, view.controls.progress_label.text())))
    with qtbot.waitSignal(view.result_ready, timeout=RUN_TIMEOUT_S * 1000):
        view.run(InspectRequest(AudioSource(str(music_wav)), "lowpass-3.5k", PipelineConfig(phase="pghi"),
                                visqol=False))
    values = [v for v, _ in seen]
    assert values == sorted(values) and values[-1] == 1000
    text = " ".join(f for _, f in seen)
    for stage in ("Reading audio", "Encoding", "Decoding", "Measuring", "Drawing spectrograms"):
        assert stage in text
    assert view.result.request.codec == "lowpass-3.5k"
    # A lowpass anchor removes the top of the spectrum: the band error is largest up there.
    err = view.result.display.band_error_db
    assert err[-50:].mean() > 5 * err[:20].mean()


def test_show_arrays_draws_a_long_track_as_an_overview(view, qapp):
    seconds = 120.0
    t = np.arange(int(seconds * RATE), dtype=np.float32) / RATE
    x = (0.3 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    start = time.perf_counter()
    pair = view.show_arrays(x, 0.5 * x)
    assert pair.columns <= 4000 and not pair.exact
    assert view.panes.images["original"].image.shape == (pair.bins, pair.columns)
    assert view.panes.visible_time_range()[1] == pytest.approx(seconds, abs=0.1)
    assert time.perf_counter() - start < 30  # generous: this machine is shared
    view.show_result(view.result)  # back to the run for the tests that follow


def test_zooming_into_a_long_track_draws_it_at_full_resolution(view, qapp):
    from mosapp.views.spectrogram_data import analyse_excerpt

    x = np.tile(music_like(3.0, seed=5)[0], 20)  # 60 s: a pooled overview
    y = (0.5 * x + 0.01 * np.random.default_rng(2).standard_normal(x.shape)).astype(np.float32)
    panes = view.panes
    pair = view.show_arrays(x, y)
    assert pair.frames_per_column > 1 and panes.detail is None
    panes.show_time_range(10.0, 12.0)
    wait_for(qapp, lambda: panes.detail is not None, timeout_s=60)
    lo, hi = panes.detail_span()
    assert lo <= 10.0 and hi >= 12.0 and panes.detail.frames_per_column == 1
    assert all(image.isVisible() for image in panes.detail_images.values())
    half_frame = 0.5 * pair.seconds_per_frame  # columns are one frame wide: centres are half a frame in
    want = analyse_excerpt(x, y, lo + 1.5 * half_frame, hi, top_db=pair.top_db, analysis=pair.analysis)
    np.testing.assert_allclose(panes.detail_images["original"].image, want.original_db, atol=1e-3)
    # The crosshair reads the detail where there is one.
    assert panes.values_at(11.0, 440.0) == pytest.approx(want.values_at(11.0, 440.0), abs=1e-3)
    panes.show_time_range(0.0, 60.0)
    wait_for(qapp, lambda: panes.detail is None, timeout_s=10)
    view.show_result(view.result)  # back to the run for the tests that follow
