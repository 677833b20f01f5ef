"""What the Inspect view draws (no Qt): the lattice dB images, their pooling, difference and band error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mosapp.core import dsp
from mosapp.core.config import get_geometry
from mosapp.views.spectrogram_data import DISPLAY_RANGE_DB, analyse_pair, analysis_window
from tests.helpers import RATE, music_like


def lattice_db(x: np.ndarray, geometry_name: str = "thesis") -> tuple[np.ndarray, int]:
    """Every lattice frame's dB (bins, frames) by dsp.stft, and the first frame inside the audio."""
    geometry = get_geometry(geometry_name)
    xp, offset = dsp.pad_for_lattice(torch.from_numpy(x), geometry)
    db = 20.0 * torch.log10(dsp.stft(xp, geometry).abs().clamp_min(1e-15)).numpy()
    first = -(-offset // geometry.hop)
    count = (offset + x.shape[-1] - 1) // geometry.hop - first + 1
    return db[:, first: first + count], first


@pytest.fixture(scope="module")
def pair_signals():
    x = music_like(3.0)[0]
    y = (0.8 * x + 0.01 * np.random.default_rng(1).standard_normal(x.shape)).astype(np.float32)
    return x, y


@pytest.mark.parametrize("geometry", ["thesis", "wide"])
def test_analysis_window_is_the_lattice_window(geometry):
    g = get_geometry(geometry)
    assert torch.equal(analysis_window(g), dsp.windows(g)[0])


@pytest.mark.parametrize("geometry", ["thesis", "wide"])
def test_full_resolution_images_equal_the_lattice_stft(pair_signals, geometry):
    x, y = pair_signals
    pair = analyse_pair(x, y, geometry=geometry)
    want_x, first = lattice_db(x, geometry)
    want_y, _ = lattice_db(y, geometry)
    assert pair.frames_per_column == 1 and pair.exact
    assert pair.first_frame == first and pair.original_db.shape == want_x.shape
    assert pair.top_db == pytest.approx(want_x.max(), abs=1e-3)
    assert pair.floor_db == pytest.approx(pair.top_db - DISPLAY_RANGE_DB)
    ox = np.maximum(want_x, pair.floor_db)
    oy = np.maximum(want_y, pair.floor_db)
    np.testing.assert_allclose(pair.original_db, ox, atol=2e-3)
    np.testing.assert_allclose(pair.reconstructed_db, oy, atol=2e-3)
    np.testing.assert_allclose(pair.difference_db, oy - ox, atol=4e-3)
    np.testing.assert_allclose(pair.band_error_db, np.abs(oy - ox).mean(axis=1), atol=1e-3)


def test_time_and_frequency_placement(pair_signals):
    x, y = pair_signals
    pair = analyse_pair(x, y)
    # Column c is centred on audio sample c * hop (frame centres start at the audio's first sample).
    assert pair.frame_time_s(pair.first_frame) == pytest.approx(0.0)
    assert pair.left_s == pytest.approx(-0.5 * 64 / RATE)
    assert pair.column_at(1.0) == round(1.0 * RATE / 64)
    assert pair.bin_at(440.0) == round(440.0 / (RATE / 512))
    assert pair.frequencies_hz[-1] == pytest.approx(RATE / 2)
    assert pair.columns * pair.seconds_per_column == pytest.approx(x.shape[-1] / RATE, abs=64 / RATE)
    assert pair.values_at(-1.0, 100.0) is None and pair.values_at(1.0, 30_000.0) is None
    o, r, d = pair.values_at(1.0, 440.0)
    assert d == pytest.approx(r - o, abs=1e-3)


def test_long_inputs_are_max_pooled_to_at_most_max_columns(pair_signals):
    x, y = pair_signals
    full = analyse_pair(x, y)
    pooled = analyse_pair(x, y, max_columns=100)
    k = pooled.frames_per_column
    assert pooled.columns <= 100 and k == math.ceil(full.columns / 100) and pooled.exact
    want = np.stack([full.original_db[:, c * k:(c + 1) * k].max(axis=1) for c in range(pooled.columns)], axis=1)
    np.testing.assert_allclose(pooled.original_db, want, atol=1e-4)
    # The difference keeps the per-frame value of largest magnitude; the band error every frame.
    c = 7
    block = full.difference_db[:, c * k:(c + 1) * k]
    extreme = block[np.arange(block.shape[0]), np.abs(block).argmax(axis=1)]
    np.testing.assert_allclose(pooled.difference_db[:, c], extreme, atol=1e-4)
    np.testing.assert_allclose(pooled.band_error_db, full.band_error_db, atol=1e-4)


def test_sampled_overview_analyses_some_frames_of_each_column(pair_signals):
    x, y = pair_signals
    full = analyse_pair(x, y)
    quick = analyse_pair(x, y, max_columns=100, frames_per_column=2)
    k = quick.frames_per_column
    assert not quick.exact and quick.frames_analysed_per_column == 2
    # Each column's value is one of its frames' values, never above the block's maximum.
    for c in (0, 10, quick.columns - 1):
        block = full.original_db[:, c * k:(c + 1) * k]
        assert np.all(quick.original_db[:, c] <= block.max(axis=1) + 1e-3)
        assert np.all(quick.original_db[:, c] >= block.min(axis=1) - 1e-3)


def test_reconstruction_of_another_length_is_aligned_to_the_reference(pair_signals):
    x, _ = pair_signals
    longer = np.concatenate([x, np.zeros(1000, np.float32)])
    pair = analyse_pair(x[None], longer[None])
    assert pair.original_db.shape == pair.reconstructed_db.shape
    assert np.abs(pair.difference_db).max() < 1e-3


@pytest.mark.parametrize("span", [(1.0, 1.5), (0.0, 0.3), (2.8, 3.0)])
def test_an_excerpt_is_the_tracks_own_frames_at_full_resolution(pair_signals, span):
    from mosapp.views.spectrogram_data import analyse_excerpt

    x, y = pair_signals
    full = analyse_pair(x, y)
    pooled = analyse_pair(x, y, max_columns=100)
    detail = analyse_excerpt(x, y, *span, top_db=pooled.top_db)
    c0 = full.column_at(span[0] + 1e-9)
    assert detail.frames_per_column == 1 and detail.floor_db == pooled.floor_db
    assert detail.left_s == pytest.approx(full.left_s + c0 * full.seconds_per_column)
    c1 = c0 + detail.columns
    assert detail.columns == pytest.approx((span[1] - span[0]) * RATE / 64, abs=2)
    np.testing.assert_allclose(detail.original_db, full.original_db[:, c0:c1], atol=2e-3)
    np.testing.assert_allclose(detail.reconstructed_db, full.reconstructed_db[:, c0:c1], atol=2e-3)
    np.testing.assert_allclose(detail.difference_db, full.difference_db[:, c0:c1], atol=4e-3)
    t = 0.5 * (span[0] + span[1])
    assert detail.values_at(t, 440.0) == pytest.approx(full.values_at(t, 440.0), abs=4e-3)


# --------------------------------------------------------------------------- the view's own analysis


def hann_db(x: np.ndarray, n: int, hop: int) -> np.ndarray:
    """dB (bins, frames) of a centred periodic-Hann STFT (unit-norm window), frames centred on k * hop."""
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    w /= np.linalg.norm(w)
    xp = np.pad(x.astype(np.float64), (n // 2, n // 2))
    frames = (x.shape[-1] - 1) // hop + 1
    spec = np.stack([np.fft.rfft(xp[k * hop: k * hop + n] * w) for k in range(frames)], axis=1)
    return 10 * np.log10(np.maximum(np.abs(spec) ** 2, 1e-30))


@pytest.mark.parametrize("n, hop", [(2048, 512), (4096, 1024)])
def test_hann_analysis_equals_a_direct_stft(pair_signals, n, hop):
    from mosapp.views.spectrogram_data import Analysis

    x, y = pair_signals
    analysis = Analysis.stft(n, hop)
    pair = analyse_pair(x, y, analysis=analysis)
    want_x, want_y = hann_db(x, n, hop), hann_db(y, n, hop)
    assert pair.analysis is analysis and pair.exact and pair.original_db.shape == want_x.shape
    assert pair.hz_per_bin == pytest.approx(RATE / n) and pair.seconds_per_frame == pytest.approx(hop / RATE)
    assert pair.frame_time_s(pair.first_frame) == pytest.approx(0.0)  # column 0 is centred on sample 0
    assert pair.top_db == pytest.approx(want_x.max(), abs=1e-3)
    ox, oy = np.maximum(want_x, pair.floor_db), np.maximum(want_y, pair.floor_db)
    np.testing.assert_allclose(pair.original_db, ox, atol=2e-2)
    np.testing.assert_allclose(pair.reconstructed_db, oy, atol=2e-2)
    np.testing.assert_allclose(pair.band_error_db, np.abs(oy - ox).mean(axis=1), atol=1e-2)


def test_band_error_of_a_long_window_resolves_bands_below_100_hz():
    """A 60 Hz partial lost and an 80 Hz one kept: 4096-point bands (10.8 Hz) tell them apart,
    the thesis lattice's 86 Hz bins cannot (both fall into bins 0 and 1)."""
    from mosapp.views.spectrogram_data import Analysis

    t = np.arange(3 * RATE) / RATE
    keep = 0.3 * np.sin(2 * np.pi * 80.0 * t)
    x = (keep + 0.3 * np.sin(2 * np.pi * 40.0 * t)).astype(np.float32)
    y = keep.astype(np.float32)
    pair = analyse_pair(x, y, analysis=Analysis.stft(4096, 1024))
    at = lambda p, hz: p.band_error_db[p.bin_at(hz)]  # noqa: E731
    assert at(pair, 40.0) > 30.0 and at(pair, 80.0) < 3.0
    lattice = analyse_pair(x, y, analysis=Analysis.lattice("thesis"))
    assert lattice.bin_at(40.0) == 0 and lattice.bin_at(80.0) == 1
    assert abs(at(lattice, 40.0) - at(lattice, 80.0)) < 0.5 * at(pair, 40.0)


def test_long_windows_compute_the_low_rows_only_and_reject_bad_settings(pair_signals):
    from mosapp.views.spectrogram_data import MAX_ROWS, Analysis

    x, y = pair_signals
    pair = analyse_pair(x, y, analysis=Analysis.stft(16384, 2048))
    assert pair.bins == MAX_ROWS and pair.max_hz == pytest.approx((MAX_ROWS - 0.5) * RATE / 16384)
    # Only 0-5.5 kHz is drawn, so the signals were analysed at half the rate (an 8192-point FFT):
    # the same bins, frames and levels as the full-rate STFT, to the resampler's accuracy.
    from mosapp.views.spectrogram_data import _decimation

    assert _decimation(pair.analysis, x.size, pair.n_frames, RATE) == 2
    error = np.abs(pair.original_db - np.maximum(hann_db(x, 16384, 2048)[:MAX_ROWS], pair.floor_db))
    inner = error[:, 2:-2]  # the resampler settles within a frame of either end
    assert np.mean(inner) < 0.02 and np.percentile(inner, 99) < 0.3, (np.mean(inner), np.percentile(inner, 99))
    assert _decimation(Analysis.stft(8192, 1024), x.size, pair.n_frames * 2, RATE) == 1  # it draws to 11 kHz
    assert _decimation(pair.analysis, x.size, 10, RATE) == 1  # a quick overview's few frames
    assert Analysis.stft(4096, overlap=0.875).hop == 512 and Analysis.stft(8192).hop == 2048
    with pytest.raises(ValueError, match="power of two"):
        Analysis.stft(3000)
    with pytest.raises(ValueError, match="hop"):
        Analysis.stft(1024, 2048)


# ---------------------------------------------------------------------- the two-band codecs' lattice (issue 26)

DEMO = __import__("pathlib").Path(__file__).resolve().parents[2] / "assets" / "demo" / "pluck-demo.flac"
#: The demo clip's bars (100 BPM, 4/4): one chord each.
BAR_S = 2.4


def _demo_mono() -> np.ndarray:
    import soundfile as sf

    x, _rate = sf.read(DEMO, dtype="float32", always_2d=True)
    return np.ascontiguousarray(x.mean(1))


def _peaks_per_bar(pair, lo_hz: float = 50.0, hi_hz: float = 500.0) -> list[int]:
    """Separate peaks (3 dB prominence) between ``lo_hz`` and ``hi_hz`` of each bar's mean spectrum."""
    import scipy.signal

    hz = pair.frequencies_hz
    rows = (hz >= lo_hz) & (hz <= hi_hz)
    counts = []
    for bar in range(int(pair.duration_s // BAR_S)):
        c0, c1 = pair.column_at(bar * BAR_S + 0.05), pair.column_at((bar + 1) * BAR_S - 0.05)
        spectrum = pair.original_db[rows, c0:c1].mean(1)
        counts.append(len(scipy.signal.find_peaks(spectrum, prominence=3.0)[0]))
    return counts


def test_the_two_band_lattice_resolves_the_demo_chords_below_500_hz():
    """"Codec lattice" drew the thesis lattice (86 Hz bins) for sgc, which codes the band below
    1 kHz on a 10.8 Hz lattice: below 500 Hz the view was a nearly uniform block."""
    from mosapp.views.spectrogram_data import Analysis

    x = _demo_mono()
    thesis = analyse_pair(x, x, analysis=Analysis.lattice("thesis"))
    two_band = analyse_pair(x, x, analysis=Analysis.two_band("thesis"))
    assert two_band.hz_per_bin == pytest.approx(RATE / 4096) and thesis.hz_per_bin == pytest.approx(RATE / 512)
    many, few = _peaks_per_bar(two_band), _peaks_per_bar(thesis)
    assert len(many) == 6
    assert sum(n >= 6 for n in many) >= 4, many  # the chords' notes and their harmonics
    assert all(f < 6 and f < m for f, m in zip(few, many)), (few, many)
    # Above the crossover each row shows the thesis lattice's bin it falls in.
    for hz in (2000.0, 5000.0, 15000.0):
        row, high_row = round(hz / two_band.hz_per_bin), round(hz / thesis.hz_per_bin)
        expected = np.maximum(thesis.original_db[high_row], two_band.floor_db)
        np.testing.assert_allclose(two_band.original_db[row], expected, atol=1e-4)
    text = Analysis.two_band().resolution()
    assert "0–1000 Hz low band: 10.8 Hz bins" in text and "high band: 86.1 Hz bins" in text


def test_a_two_band_excerpt_is_the_whole_tracks_columns():
    from mosapp.views.spectrogram_data import Analysis, analyse_excerpt

    x = _demo_mono()[: 4 * RATE]
    analysis = Analysis.two_band()
    whole = analyse_pair(x, 0.5 * x, analysis=analysis)
    part = analyse_excerpt(x, 0.5 * x, 2.0, 3.0, top_db=whole.top_db, analysis=analysis)
    c0 = part.first_frame - whole.first_frame
    for name in ("original_db", "reconstructed_db", "difference_db"):
        np.testing.assert_allclose(getattr(part, name), getattr(whole, name)[:, c0:c0 + part.columns], atol=1e-4)
