"""The Inspect view's low-frequency mode resolves harmonics below 500 Hz (offscreen Qt, real runs).

The view draws from its own analysis, not from the codec's 86 Hz lattice: the low-frequency
mode uses an 8192-sample Hann STFT (5.4 Hz bins). Checked on the drawn image data, on a
harmonic tone with known partials and on the shipped demo music (assets/demo/pluck-demo.flac:
plucked C-major chords over a sine bass, so CI needs no Debian music), against the codec
lattice, which blurs the same partials into a few 86 Hz rows. The screenshots go to
out/screenshots/ for a person to look at.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
from PySide6.QtGui import QImage

from mosapp.gui.spectrogram_widgets import LOG_MIN_HZ, LOG_ROWS
from mosapp.views.inspect_controller import LOW_FREQUENCY_MIN_WINDOW
from mosapp.views.jobs import AudioSource
from mosapp.views.spectrogram_data import LOW_FREQUENCY_ANALYSIS, Analysis
from tests.gui.inspect_window import fast_inspect_window, wait_for
from tests.helpers import RATE

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "out" / "screenshots"
DEMO = REPO / "assets" / "demo" / "pluck-demo.flac"


def drawn_column(view, time_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(frequency of each drawn row in Hz, dB drawn there) of the original's image at ``time_s``,
    read from the ImageItem (log-frequency rows in the low-frequency mode)."""
    panes = view.panes
    pair = panes.pair
    image = panes.images["original"].image
    column = pair.column_at(time_s)
    if panes.log_frequency:
        lo, hi = math.log10(LOG_MIN_HZ), math.log10(pair.max_hz)
        hz = 10.0 ** (lo + (np.arange(LOG_ROWS) + 0.5) * (hi - lo) / LOG_ROWS)
    else:
        hz = pair.frequencies_hz
    return hz, image[:, column].astype(np.float64)


def peaks_between(hz: np.ndarray, db: np.ndarray, lo: float, hi: float, prominence_db: float = 10.0) -> np.ndarray:
    """Frequencies of the drawn peaks in [lo, hi] Hz that stand ``prominence_db`` above their surroundings."""
    keep = (hz >= lo * 0.8) & (hz <= hi * 1.2)
    f, d = hz[keep], db[keep]
    idx, _ = scipy.signal.find_peaks(d, prominence=prominence_db)
    found = f[idx]
    # One peak per analysis bin: log rows repeat a bin's value, and a plateau is one peak.
    return np.unique(np.round(found[(found >= lo) & (found <= hi)], 1))


@pytest.fixture(scope="module")
def window(qapp):
    w = fast_inspect_window()
    yield w
    w.close()


def low_mode(view, qapp, on: bool = True) -> None:
    view.view_panel.low_mode_check.setChecked(on)
    wait_for(qapp, lambda: not view.analysing, timeout_s=60)
    qapp.processEvents()


def test_harmonics_of_a_tone_are_resolved_below_500_hz(window, qapp):
    """A 98 Hz tone with partials 98 … 490 Hz (and nothing between): five peaks, 98 Hz apart."""
    view = window.inspect
    t = np.arange(int(3.0 * RATE)) / RATE
    f0 = 98.0
    x = sum((0.7 ** h) * np.sin(2 * np.pi * f0 * (h + 1) * t) for h in range(5)).astype(np.float32)
    x *= 0.5 / np.abs(x).max()
    view.show_arrays(x, 0.9 * x)
    low_mode(view, qapp)
    assert view.analysis() == LOW_FREQUENCY_ANALYSIS and view.panes.pair.analysis.window_length >= LOW_FREQUENCY_MIN_WINDOW
    hz, db = drawn_column(view, 1.5)
    peaks = peaks_between(hz, db, 50.0, 500.0, prominence_db=20.0)
    want = f0 * np.arange(1, 6)
    assert len(peaks) == 5, peaks
    # Each drawn peak sits on its partial (to a row of the log image / a 5.4 Hz bin).
    assert np.all(np.abs(peaks - want) < 6.0), peaks
    # Half-way between two partials the drawn level is far below the partials'.
    for h in range(1, 5):
        mid = db[np.argmin(np.abs(hz - (h + 0.5) * f0))]
        assert db[np.argmin(np.abs(hz - h * f0))] - mid > 30.0
    # The codec lattice (86 Hz bins) cannot: 98 and 196 Hz share rows with what is between them.
    view.set_analysis(Analysis.lattice("thesis"))
    wait_for(qapp, lambda: not view.analysing, timeout_s=60)
    hz_l, db_l = drawn_column(view, 1.5)
    assert len(peaks_between(hz_l, db_l, 50.0, 500.0, prominence_db=20.0)) < 5
    low_mode(view, qapp, False)


def test_demo_music_in_low_frequency_mode_shows_its_harmonics(window, qapp):
    """A real run on real (shipped) music: the default low-frequency analysis separates the
    chord's partials below 500 Hz; the screenshot is saved for a person to look at."""
    view = window.inspect
    results = []
    view.result_ready.connect(results.append)
    view.open_source(AudioSource(str(DEMO), 0.0, 4.8, label="pluck-demo 0–4.8 s"))
    wait_for(qapp, lambda: results or not view.busy)
    assert results, view.message_text()
    low_mode(view, qapp)
    panes = view.panes
    pair = panes.pair
    assert pair.analysis == LOW_FREQUENCY_ANALYSIS and pair is view.result.display
    assert panes.visible_frequency_range() == pytest.approx((LOG_MIN_HZ, 500.0))
    # Bar 1 is a C-major chord (C3 E3 G3 C4 E4) over a C2 sine bass: partials at about 65, 131,
    # 165, 196, 262, 330, 392 Hz … at most 65 Hz apart, under one lattice bin (86 Hz) apart.
    hz, db = drawn_column(view, 1.0)
    peaks = peaks_between(hz, db, 50.0, 500.0)
    assert len(peaks) >= 6, peaks
    assert np.min(np.abs(peaks - 65.4)) < 4 and np.min(np.abs(peaks - 130.8)) < 4, peaks
    assert np.min(np.diff(peaks)) < 86.1  # neighbours closer than one lattice bin, told apart
    # The metrics panel has the band figures of this run.
    text = view.metrics_text()
    assert f"low band 20–1000 Hz: distance: {view.result.scores['low_band_distance_db']:.2f} dB" in text
    assert "low band: correlation: " in text and "high band: correlation: " in text
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = view.save_png(SCREENSHOTS / "inspect_low_frequency.png")
    assert path is not None and QImage(str(path)).width() >= view.width()
    # The same view on the codec lattice, for comparison: far fewer partials survive its rows.
    view.set_analysis(Analysis.lattice("thesis"))
    wait_for(qapp, lambda: not view.analysing, timeout_s=60)
    lattice_peaks = peaks_between(*drawn_column(view, 1.0), 50.0, 500.0)
    assert len(lattice_peaks) < len(peaks), (lattice_peaks, peaks)
    assert view.save_png(SCREENSHOTS / "inspect_low_frequency_lattice.png") is not None
    low_mode(view, qapp, False)


def test_levels_and_a_held_difference_scale(window, qapp):
    view = window.inspect
    panes = view.panes
    view.set_level_range(-90.0, -10.0)
    assert panes.db_bar.levels() == (-90.0, -10.0) and not view.view_panel.auto_levels_check.isChecked()
    assert view.view_panel.floor_spin.value() == -90.0 and view.view_panel.top_spin.value() == -10.0
    view.hold_difference_range(15.0)
    x = (0.3 * np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE)).astype(np.float32)
    view.show_arrays(x, 0.25 * x)  # a 12 dB error: a free scale would change; held, it does not
    assert panes.difference_bar.levels() == (-15.0, 15.0) and panes.db_bar.levels() == (-90.0, -10.0)
    view.hold_difference_range(None)
    view.set_level_range(None)
    view.show_arrays(x, 0.25 * x)
    assert panes.db_bar.levels() == panes.auto_level_range() and view.view_panel.auto_levels_check.isChecked()
    view.show_result(view.result)
