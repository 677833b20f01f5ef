"""Tests of mosapp.core.metrics against hand-computed values and the reference implementations (tifresi, librosa)."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import scipy.signal
import torch

from mosapp.core import metrics
from mosapp.core.errors import ConfigError, MosappError
from mosapp.core.metrics import (
    Metrics,
    consistency,
    log_spectrogram_for_consistency,
    mel_distance,
    si_sdr_db,
    spectral_convergence_db,
    visqol,
)

SR = 44_100


def _music(seconds: float, seed: int = 0) -> np.ndarray:
    """A few harmonic notes with attack/decay envelopes plus a little noise, peak about 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = np.zeros_like(t)
    notes = [(220.0, 0.0), (277.18, 0.6), (329.63, 1.2), (440.0, 1.8), (261.63, 2.4)]
    for f0, onset in notes:
        local = t - onset
        env = np.where(local >= 0, (1 - np.exp(-local / 0.01)) * np.exp(-2.5 * np.clip(local, 0, None)), 0.0)
        for k in range(1, 9):
            if f0 * k < SR / 2:
                x += env * (0.25 / k) * np.sin(2 * np.pi * f0 * k * t + 0.3 * k)
    x += 0.002 * rng.standard_normal(t.size)
    return 0.5 * x / np.max(np.abs(x))


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    """3 s of music-like audio at 44.1 kHz, length a multiple of 1024 (for tifresi's lattice)."""
    x = _music(3.0)
    return x[: len(x) // 1024 * 1024]


# --------------------------------------------------------------------------- spectral convergence


def test_spectral_convergence_identical_is_minus_inf():
    rng = np.random.default_rng(1)
    s = rng.random((65, 40))
    assert spectral_convergence_db(s, s.copy()) == -math.inf


def test_spectral_convergence_hand_computed():
    # ||R|| = 5, ||R - E|| = 0.5 -> 20 log10(0.1) = -20 dB.
    assert spectral_convergence_db(np.array([3.0, 4.0]), np.array([3.0, 4.5])) == pytest.approx(-20.0, abs=1e-12)
    # Complex inputs are compared by modulus: |3+4j| = 5 vs 4 -> 20 log10(1/5).
    assert spectral_convergence_db(np.array([3 + 4j]), np.array([4.0])) == pytest.approx(20 * math.log10(0.2))


def test_spectral_convergence_silent_reference_is_nan():
    assert math.isnan(spectral_convergence_db(np.zeros((4, 4)), np.ones((4, 4))))


def test_spectral_convergence_is_minus_tifresi_projection_loss():
    from tifresi.metrics import projection_loss

    rng = np.random.default_rng(2)
    for shape in [(257, 100), (513, 37)]:
        ref = rng.random(shape)
        est = ref + 0.05 * rng.standard_normal(shape)
        ours = spectral_convergence_db(ref, est)
        assert ours == pytest.approx(-projection_loss(ref, est), rel=1e-12)
        assert ours < 0


def test_spectral_convergence_accepts_torch_and_checks_shape():
    rng = np.random.default_rng(3)
    ref = rng.random((20, 10))
    est = ref * 1.1
    assert spectral_convergence_db(torch.from_numpy(ref), torch.from_numpy(est)) == pytest.approx(20 * math.log10(0.1))
    with pytest.raises(MosappError):
        spectral_convergence_db(ref, est[:, :5])


# --------------------------------------------------------------------------- SI-SDR


def test_si_sdr_is_scale_invariant(music):
    rng = np.random.default_rng(4)
    est = music + 0.05 * rng.standard_normal(music.size)
    base = si_sdr_db(music, est)
    assert si_sdr_db(music, 3.0 * est) == pytest.approx(base, abs=1e-9)
    assert si_sdr_db(music, 0.2 * est + 0.1) == pytest.approx(base, abs=1e-9)  # gain and DC offset


def test_si_sdr_known_value_with_orthogonal_noise(music):
    rng = np.random.default_rng(5)
    s = music - music.mean()
    n = rng.standard_normal(s.size)
    n -= n.mean()
    n -= np.dot(n, s) / np.dot(s, s) * s  # orthogonal to s, still zero-mean
    n *= math.sqrt(np.dot(s, s) / np.dot(n, n)) * 10 ** (-12.0 / 20)  # exactly 12 dB below s
    expected = 10 * math.log10(np.dot(s, s) / np.dot(n, n))
    assert expected == pytest.approx(12.0)
    assert si_sdr_db(s, s + n) == pytest.approx(expected, abs=1e-6)


def test_si_sdr_identical_is_large_and_multichannel(music):
    assert si_sdr_db(music, music) > 100.0
    stereo = np.stack([music, music[::-1]])
    assert si_sdr_db(stereo, stereo) > 100.0
    # The optimal scale may be negative: a sign flip is also "scale".
    assert si_sdr_db(stereo, -stereo) > 100.0
    with pytest.raises(MosappError):
        si_sdr_db(music, music[:-1])


# --------------------------------------------------------------------------- mel distance


def _mel_distance_librosa(ref: np.ndarray, est: np.ndarray, sr: int) -> float:
    """Independent numpy/librosa implementation of the documented definition."""
    import librosa

    total = 0.0
    for w, m in zip(metrics.MEL_WINDOW_LENGTHS, metrics.MEL_N_MELS):
        fb = librosa.filters.mel(sr=sr, n_fft=w, n_mels=m, fmin=0.0, fmax=sr / 2)
        mels = [
            fb @ np.abs(librosa.stft(x, n_fft=w, hop_length=w // 4, window="hann", center=True, pad_mode="reflect"))
            for x in (ref, est)
        ]
        total += np.mean(np.abs(np.log10(np.maximum(mels[0], 1e-5)) - np.log10(np.maximum(mels[1], 1e-5))))
    return float(total)


@pytest.fixture(scope="module")
def short_music(music) -> np.ndarray:
    return music[:SR]


def test_mel_distance_identical_is_zero(short_music):
    assert mel_distance(short_music, short_music.copy(), SR) == 0.0


def test_mel_distance_matches_librosa_definition(short_music):
    rng = np.random.default_rng(6)
    est = short_music + 0.01 * rng.standard_normal(short_music.size)
    ours = mel_distance(short_music, est, SR)
    assert ours == pytest.approx(_mel_distance_librosa(short_music, est, SR), rel=1e-3)


def test_mel_distance_grows_with_noise_and_is_symmetric(short_music):
    rng = np.random.default_rng(7)
    noise = rng.standard_normal(short_music.size)
    values = [mel_distance(short_music, short_music + level * noise, SR) for level in (1e-4, 1e-3, 1e-2, 1e-1)]
    assert all(a < b for a, b in zip(values, values[1:])), values
    est = short_music + 1e-2 * noise
    assert mel_distance(est, short_music, SR) == pytest.approx(mel_distance(short_music, est, SR), rel=1e-5)


def test_mel_distance_stereo_is_mean_of_channels(short_music):
    rng = np.random.default_rng(8)
    ref = np.stack([short_music, np.roll(short_music, 1000)])
    est = ref + np.array([[1e-3], [3e-2]]) * rng.standard_normal(ref.shape)
    per_channel = [mel_distance(ref[c], est[c], SR) for c in range(2)]
    assert mel_distance(ref, est, SR) == pytest.approx(np.mean(per_channel), rel=1e-5)
    assert mel_distance(torch.from_numpy(ref), torch.from_numpy(est), SR) == pytest.approx(np.mean(per_channel), rel=1e-5)


def test_mel_distance_rejects_bad_input(short_music):
    with pytest.raises(MosappError):
        mel_distance(short_music, short_music[:-1], SR)
    with pytest.raises(MosappError):
        mel_distance(short_music[:1000], short_music[:1000], SR)
    with pytest.raises(ConfigError):
        mel_distance(short_music, short_music, SR, device="tpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_mel_distance_cuda_matches_cpu(short_music):
    rng = np.random.default_rng(9)
    noise = rng.standard_normal(short_music.size)
    assert mel_distance(short_music, short_music, SR, device="cuda") == 0.0
    values = [mel_distance(short_music, short_music + level * noise, SR, device="cuda") for level in (1e-4, 1e-3, 1e-2, 1e-1)]
    assert all(a < b for a, b in zip(values, values[1:])), values
    est = short_music + 1e-2 * noise
    cpu = mel_distance(short_music, est, SR, device="cpu")
    assert mel_distance(short_music, est, SR, device="cuda") == pytest.approx(cpu, rel=1e-4)
    stereo = np.stack([short_music, est])
    assert mel_distance(stereo, stereo[::-1].copy(), SR, device="cuda") == pytest.approx(cpu, rel=1e-4)


# --------------------------------------------------------------------------- consistency


def test_consistency_equals_tifresi_on_random_arrays():
    import tifresi.metrics

    rng = np.random.default_rng(10)
    for shape in [(257, 120), (513, 64), (5, 4)]:
        log_spec = 10 * rng.standard_normal(shape) - 30
        assert consistency(log_spec) == pytest.approx(tifresi.metrics.consistency(log_spec), rel=1e-9)


def test_consistency_equals_tifresi_on_real_spectrograms(music):
    import tifresi.metrics
    import tifresi.transforms
    from tifresi.stft import GaussTruncTF

    for hop, channels in [(256, 1024), (64, 512)]:
        mag = GaussTruncTF(hop_size=hop, stft_channels=channels).spectrogram(music)
        log_spec = log_spectrogram_for_consistency(mag)
        np.testing.assert_array_equal(log_spec, tifresi.transforms.log_spectrogram(mag, dynamic_range_dB=50))
        ours = consistency(log_spec)
        assert ours == pytest.approx(tifresi.metrics.consistency(log_spec), rel=1e-9)
        # A real STFT magnitude is markedly more consistent than a randomly perturbed one.
        perturbed = mag * np.exp(0.5 * np.random.default_rng(11).standard_normal(mag.shape))
        assert ours > consistency(log_spectrogram_for_consistency(perturbed)) + 0.1


def test_consistency_gain_invariant_and_rejects_small_input(music):
    from tifresi.stft import GaussTruncTF

    mag = GaussTruncTF(hop_size=256, stft_channels=1024).spectrogram(music)
    assert consistency(log_spectrogram_for_consistency(7.0 * mag)) == pytest.approx(
        consistency(log_spectrogram_for_consistency(mag)), rel=1e-9
    )
    with pytest.raises(MosappError):
        consistency(np.zeros((2, 10)))
    with pytest.raises(MosappError):
        log_spectrogram_for_consistency(mag, floor=0.0)


# --------------------------------------------------------------------------- ViSQOL


def test_visqol_identical_is_near_ceiling_and_degraded_is_lower(music):
    assert visqol(music, music, SR) > 4.5
    sos = scipy.signal.butter(8, 2000, btype="low", fs=SR, output="sos")
    low_passed = scipy.signal.sosfilt(sos, music)
    noisy = low_passed + 0.02 * np.random.default_rng(12).standard_normal(music.size)
    assert visqol(music, noisy, SR) < 3.5
    stereo = np.stack([music, music])
    assert visqol(stereo, stereo, SR) > 4.5


def test_visqol_rejects_short_input(music):
    with pytest.raises(MosappError):
        visqol(music[: SR // 2], music[: SR // 2], SR)


def test_visqol_missing_package_raises_mosapp_error(monkeypatch, music):
    metrics._visqol_api.cache_clear()
    monkeypatch.setitem(sys.modules, "visqol", None)  # makes `import visqol` raise ImportError
    try:
        with pytest.raises(MosappError, match="visqol-python"):
            visqol(music, music, SR)
    finally:
        metrics._visqol_api.cache_clear()


# --------------------------------------------------------------------------- Metrics


def test_metrics_as_dict():
    m = Metrics(spectral_convergence_db=np.float64(-25.0), si_sdr_db=3.5, mel_distance=1.25, target_consistency=0.7)
    d = m.as_dict()
    assert list(d) == ["spectral_convergence_db", "si_sdr_db", "mel_distance", "target_consistency", "visqol",
                       *metrics.BAND_METRIC_NAMES]
    assert d["visqol"] is None
    assert type(d["spectral_convergence_db"]) is float and d["spectral_convergence_db"] == -25.0


# --------------------------------------------------------------------------- band metrics
#
# Hand-computed cases. A sine with exactly k cycles per 4096-sample window ("bin-centred") has,
# under the periodic Hann window, exactly three non-zero positive-frequency DFT bins whatever
# the frame's start: |X[k]| = A N / 4 and |X[k +- 1]| = A N / 8 (6.0206 dB lower); every other
# bin is 0, i.e. at the floor (peak - 80 dB). So every frame has the same floored dB spectrum,
# and the distances and correlations follow from a few numbers.

N = metrics.BAND_WINDOW_LENGTH
DF = SR / N  # 10.77 Hz per bin
HALF_DB = 20 * math.log10(2)  # 6.0206 dB: the neighbours of a bin-centred tone's peak
LOW_BINS = 91  # bins 2..92 lie in [20, 1000] Hz
HIGH_BINS = N // 2 - 92  # bins 93..2048


def _tone(k: int, amplitude: float = 1.0, n: int = 12 * N, phase: float = 0.3) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * k * np.arange(n) / N + phase)


def _pearson_of_two_disjoint_peaks(values: np.ndarray, n_bins: int) -> float:
    """Pearson r of two band spectra, each the floor plus ``values`` (dB above it) at disjoint bins."""
    s, q = float(values.sum()), float((values**2).sum())
    return (0.0 - s * s / n_bins) / (q - s * s / n_bins)


def test_band_bins_match_the_definition():
    assert metrics._band_bins(metrics.LOW_BAND_HZ) == slice(2, 93)
    assert metrics._band_bins(metrics.HIGH_BAND_HZ) == slice(93, N // 2 + 1)
    assert 92 * DF <= 1000 < 93 * DF and 1 * DF < 20 <= 2 * DF


def test_band_metrics_identical_signals_give_0_and_1(music):
    for x in (music, np.stack([music, 0.5 * music[::-1]])):  # mono and stereo
        scores = metrics.band_metrics(x, x.copy(), SR)
        assert scores["low_band_distance_db"] == 0.0 and scores["high_band_distance_db"] == 0.0
        assert scores["low_band_correlation"] == pytest.approx(1.0, abs=1e-12)
        assert scores["high_band_correlation"] == pytest.approx(1.0, abs=1e-12)


def test_band_metrics_known_low_pass():
    """An ideal low-pass at 1 kHz removes the 5 kHz partial: the low band is untouched (0 dB,
    correlation 1); the high band loses the partial: three bins 74, 68 and 68 dB above the floor."""
    k_low, k_high = 23, 464  # 247.6 Hz and 4995.7 Hz
    a_high = 0.5  # the high partial's peak is 6.02 dB under the reference's peak
    x = _tone(k_low) + _tone(k_high, a_high)
    spectrum = np.fft.rfft(x)
    spectrum[np.fft.rfftfreq(x.size, 1 / SR) > 1000.0] = 0.0  # the brick-wall low-pass
    y = np.fft.irfft(spectrum, n=x.size)
    assert np.allclose(y, _tone(k_low), atol=1e-9)  # (it is a real filter, and it does that)

    scores = metrics.band_metrics(x, y, SR)
    assert scores["low_band_distance_db"] == pytest.approx(0.0, abs=1e-3)
    assert scores["low_band_correlation"] == pytest.approx(1.0, abs=1e-6)
    # High band: the reference has the partial's three bins at 80 - 6.02 and 80 - 12.04 dB above
    # the floor; the estimate is at the floor everywhere (constant, so every frame's r_t = 0).
    peak_above_floor = 80.0 - 20 * math.log10(1 / a_high)
    expected = (peak_above_floor + 2 * (peak_above_floor - HALF_DB)) / HIGH_BINS
    assert scores["high_band_distance_db"] == pytest.approx(expected, rel=1e-4)  # 0.1073 dB
    assert expected == pytest.approx(0.10731, abs=1e-5)
    assert scores["high_band_correlation"] == 0.0
    # The single-band functions give the same numbers.
    assert metrics.band_spectral_distance_db(x, y, SR, metrics.HIGH_BAND_HZ) == pytest.approx(expected, rel=1e-4)
    assert metrics.band_spectral_correlation(x, y, SR) == pytest.approx(1.0, abs=1e-6)


def test_band_metrics_known_tone_shift():
    """A 247.6 Hz tone moved up 5 bins (53.8 Hz): both peaks sit on the floor of the other."""
    k, shift = 23, 5
    x, y = _tone(k), _tone(k + shift, phase=1.1)
    above = np.array([80.0 - HALF_DB, 80.0, 80.0 - HALF_DB])  # dB above the floor at k-1, k, k+1
    expected_distance = 2 * above.sum() / LOW_BINS  # 455.9 dB over 91 bins
    expected_r = _pearson_of_two_disjoint_peaks(above, LOW_BINS)
    assert expected_distance == pytest.approx(5.0101, abs=1e-4)
    assert expected_r == pytest.approx(-0.03404, abs=1e-5)
    assert metrics.band_spectral_distance_db(x, y, SR) == pytest.approx(expected_distance, rel=1e-4)
    assert metrics.band_spectral_correlation(x, y, SR) == pytest.approx(expected_r, abs=1e-4)
    scores = metrics.band_metrics(x, y, SR)
    # Nothing above 1 kHz in either (both at the floor): distance 0, and no frame to correlate.
    assert scores["high_band_distance_db"] == pytest.approx(0.0, abs=1e-3)
    assert math.isnan(scores["high_band_correlation"])


def test_band_metrics_gain_moves_distance_not_correlation():
    x = _tone(23) + _tone(60, 0.3) + _tone(300, 0.1)
    scores = metrics.band_metrics(x, 0.5 * x, SR)
    # Every peak bin is 6.02 dB lower; the floor (set by the reference) holds the rest.
    assert scores["low_band_distance_db"] == pytest.approx(6 * HALF_DB / LOW_BINS, rel=1e-3)
    # Pearson is gain-invariant in dB as long as the floor holds: each peak drops by the same
    # 6.02 dB but the floor does not, so the pattern is kept up to that small flattening.
    assert scores["low_band_correlation"] > 0.999


def test_band_metrics_chunked_equals_one_pass(music, monkeypatch):
    """The chunked accumulation equals a direct whole-array computation of the definition."""
    x = music.astype(np.float32)
    rng = np.random.default_rng(3)
    y = (0.8 * x + 0.01 * rng.standard_normal(x.size)).astype(np.float32)
    monkeypatch.setattr(metrics, "_BAND_FRAMES_PER_CHUNK", 7)
    chunked = metrics.band_metrics(x, y, SR)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N) / N)
    frames = 1 + (x.size - N) // 1024

    def db(z):
        f = np.stack([z[i * 1024: i * 1024 + N] * window for i in range(frames)])
        return 20 * np.log10(np.maximum(np.abs(np.fft.rfft(f, axis=1)), 1e-30))

    rd, ed = db(x.astype(np.float64)), db(y.astype(np.float64))
    floor = rd.max() - 80
    rd, ed = np.maximum(rd, floor), np.maximum(ed, floor)
    for name, sl in (("low", slice(2, 93)), ("high", slice(93, None))):
        r, e = rd[:, sl], ed[:, sl]
        assert chunked[f"{name}_band_distance_db"] == pytest.approx(np.mean(np.abs(r - e)), rel=1e-3)
        corr = np.mean([np.corrcoef(r[t], e[t])[0, 1] for t in range(frames)])
        assert chunked[f"{name}_band_correlation"] == pytest.approx(corr, abs=1e-4)


def test_band_metrics_resamples_and_checks_input(music):
    x = music.astype(np.float32)
    y = np.roll(x, 300)
    at_44k = metrics.band_metrics(x, y, SR)
    import soxr

    x48, y48 = soxr.resample(x, SR, 48_000, quality="VHQ"), soxr.resample(y, SR, 48_000, quality="VHQ")
    at_48k = metrics.band_metrics(x48, y48, 48_000)
    assert at_48k["low_band_distance_db"] == pytest.approx(at_44k["low_band_distance_db"], rel=0.05)
    assert at_48k["low_band_correlation"] == pytest.approx(at_44k["low_band_correlation"], abs=0.02)
    with pytest.raises(MosappError, match="equal shape"):
        metrics.band_metrics(x, x[:-1], SR)
    with pytest.raises(MosappError, match="non-empty"):
        metrics.band_metrics(x[:0], x[:0], SR)
    with pytest.raises(MosappError, match="no bin"):
        metrics.band_spectral_distance_db(x, x, SR, (1.0, 5.0))
    # Shorter than one window: zero-padded to one frame, still defined.
    assert metrics.band_spectral_distance_db(x[:1000], x[:1000], SR) == 0.0


# --------------------------------------------------------------------------- the registry


def test_every_metric_is_registered_once_with_a_unit_a_direction_and_a_sentence():
    assert set(metrics.SIGNAL_METRIC_NAMES) < set(metrics.METRICS)
    for name, m in metrics.METRICS.items():
        assert m.name == name and m.direction in ("higher", "lower") and m.definition.endswith(".")
        assert m.inputs in ("signals", "bytes", "magnitude", "sets") and callable(m.function)
    # The round trip's fields and the band figures are registry names.
    assert set(Metrics().as_dict()) <= set(metrics.METRICS)
    assert set(metrics.BAND_METRIC_NAMES) <= set(metrics.SIGNAL_METRIC_NAMES)
    # One word, one quantity: the two bitrates and the two consistencies have their own names.
    assert {"file_kbps", "payload_kbps", "decoded_consistency", "target_consistency"} <= set(metrics.METRICS)
    assert "kbps" not in metrics.METRICS and "consistency" not in metrics.METRICS
    with pytest.raises(MosappError, match="Unknown metric"):
        metrics.metric("consistency")


def test_score_is_each_registry_function(music):
    x = np.asarray(music, dtype=np.float32)
    x = x[None, :] if x.ndim == 1 else x[:1]
    y = (0.8 * x + 0.01 * np.random.default_rng(5).standard_normal(x.shape)).astype(np.float32)
    names = [n for n in metrics.SIGNAL_METRIC_NAMES if n != "visqol"]
    scores = metrics.score(x, y, 44_100, names)
    assert list(scores) == names
    for name in names:
        assert scores[name] == metrics.METRICS[name].function(x, y, 44_100)
    assert scores["decoded_consistency"] == metrics.magnitude_consistency(metrics.lattice_magnitude(y))
    assert metrics.kbps(1500, 2.0) == 6.0
    with pytest.raises(MosappError, match="not one of a decoded signal"):
        metrics.score(x, y, 44_100, ["file_kbps"])
