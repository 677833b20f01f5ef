"""Tests for mosapp.core.audio: reading, validation, resampling, format restoration and writing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from mosapp.core.audio import (
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    Audio,
    AudioInfo,
    is_silent,
    mix_down,
    read_audio,
    resample,
    restore_format,
    write_audio,
)
from mosapp.core.errors import AudioError, MosappError
from tests.helpers import requires

SR = 44_100
HAS_MP3 = "MP3" in sf.available_formats()
needs_mp3 = requires(HAS_MP3, "this libsndfile build has no MP3 support (soundfile 0.12's wheels have it)")


def chord(n: int, sr: int, freqs=(220.0, 277.18, 329.63), amp: float = 0.25) -> np.ndarray:
    """A float32 mono chord of ``n`` samples, peaking below 0.8."""
    t = np.arange(n) / sr
    return (amp * sum(np.sin(2 * np.pi * f * t) for f in freqs)).astype(np.float32)


def stereo(n: int, sr: int) -> np.ndarray:
    """(n, 2) float32: a chord on the left, a 1 kHz sine plus a little noise on the right."""
    rng = np.random.default_rng(1)
    left = chord(n, sr)
    right = (0.4 * np.sin(2 * np.pi * 1000 * np.arange(n) / sr) + 0.01 * rng.standard_normal(n)).astype(np.float32)
    return np.stack([left, right], axis=1)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.size, b.size)
    return float(np.corrcoef(np.ravel(a)[:n], np.ravel(b)[:n])[0, 1])


def assert_one_line_naming(exc: pytest.ExceptionInfo, path) -> None:
    msg = str(exc.value)
    assert "\n" not in msg
    assert os.path.basename(os.fspath(path)) in msg
    assert "Traceback" not in msg


# --- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "subtype", "atol"),
    [
        (".wav", "PCM_16", 1.0 / 2**15),
        (".wav", "PCM_24", 1.0 / 2**23),
        (".wav", "PCM_32", 1e-7),
        (".wav", "FLOAT", 0.0),
        (".flac", "PCM_16", 1.0 / 2**15),
        (".flac", "PCM_24", 1.0 / 2**23),
    ],
)
def test_lossless_round_trip(tmp_path, ext, subtype, atol):
    x = chord(SR // 2, SR)
    path = tmp_path / f"clip{ext}"
    sf.write(path, x, SR, subtype=subtype)
    audio = read_audio(path)
    assert audio.samples.dtype == np.float32
    assert audio.samples.shape == (1, x.size)
    assert audio.samples.flags.c_contiguous
    assert audio.sample_rate == SR
    np.testing.assert_allclose(audio.samples[0], x, rtol=0, atol=atol + 1e-7)
    assert audio.info == AudioInfo(str(path), SR, 1, x.size, subtype, ext[1:].upper())
    assert audio.duration_s == pytest.approx(0.5)


@pytest.mark.parametrize("ext, slack, kind", [
    (".ogg", 2048, ("OGG", "VORBIS")),
    pytest.param(".mp3", 4096, ("MP3", "MPEG_LAYER_III"), marks=needs_mp3),
], ids=["ogg-vorbis", "mp3"])
def test_lossy_round_trip(tmp_path, ext, slack, kind):
    x = chord(SR // 2, SR)
    path = tmp_path / f"clip{ext}"
    sf.write(path, x, SR)
    audio = read_audio(path)
    assert audio.samples.dtype == np.float32
    assert audio.samples.shape[0] == 1
    assert abs(audio.samples.shape[1] - x.size) < slack  # the codec's priming and padding
    assert corr(audio.samples, x) > 0.99
    assert (audio.info.format, audio.info.subtype) == kind


def test_other_rates_are_resampled_to_pipeline_rate(tmp_path):
    x = chord(12345, 48_000)
    path = tmp_path / "clip48.wav"
    sf.write(path, x, 48_000, subtype="FLOAT")
    audio = read_audio(path)
    assert audio.sample_rate == SR
    assert audio.samples.shape == (1, round(12345 * SR / 48_000))
    assert audio.info.sample_rate == 48_000 and audio.info.frames == 12345
    kept = read_audio(path, sample_rate=None)
    assert kept.sample_rate == 48_000
    np.testing.assert_array_equal(kept.samples[0], x)


def test_stereo_channels_and_mix_down(tmp_path):
    x = stereo(SR // 4, SR)
    path = tmp_path / "stereo.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    both = read_audio(path, mono=False)
    assert both.samples.shape == (2, x.shape[0])
    assert both.samples.flags.c_contiguous
    np.testing.assert_array_equal(both.samples, x.T)
    mono = read_audio(path)
    assert mono.samples.shape == (1, x.shape[0])
    np.testing.assert_allclose(mono.samples[0], x.mean(axis=1), atol=1e-7)
    assert mono.info.channels == 2
    np.testing.assert_allclose(mix_down(both.samples), mono.samples, atol=1e-7)


def test_silence_is_read_not_rejected(tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(path, np.zeros(1000, np.float32), SR)
    audio = read_audio(path)
    assert is_silent(audio.samples)
    assert not is_silent(np.array([0.0, 1e-3]))
    assert is_silent(np.array([0.0, -1e-3]), threshold=1e-3)
    assert is_silent(np.zeros((1, 0)))


# --- resampling and restoring the format ---------------------------------------------


def test_resample_48k_to_44k1_and_back_keeps_sine():
    n = 48_000 // 2 + 7
    x = np.sin(2 * np.pi * 1000 * np.arange(n) / 48_000).astype(np.float32)[np.newaxis, :]
    down = resample(x, 48_000, 44_100)
    assert down.dtype == np.float32 and down.shape == (1, round(n * 44_100 / 48_000))
    ref = np.sin(2 * np.pi * 1000 * np.arange(down.shape[1]) / 44_100)
    assert corr(down[0, 200:-200], ref[200:-200]) > 0.999
    back = resample(down, 44_100, 48_000)
    assert back.dtype == np.float32 and back.shape == (1, n)
    assert corr(back[0, 200:-200], x[0, 200:-200]) > 0.999


def test_resample_identity_and_lengths():
    x = np.random.default_rng(0).standard_normal((2, 1001)).astype(np.float32)
    assert resample(x, SR, SR) is not None
    np.testing.assert_array_equal(resample(x, SR, SR), x)
    for a, b in [(22_050, 44_100), (96_000, 44_100), (44_100, 16_000)]:
        assert resample(x, a, b).shape == (2, round(1001 * b / a))
    assert resample(np.zeros((1, 0), np.float32), 48_000, SR).shape == (1, 0)


@pytest.mark.parametrize("rate", [22_050, 44_100, 48_000])
@pytest.mark.parametrize("channels", [1, 2])
def test_restore_format_gives_original_shape(tmp_path, rate, channels):
    n = 12345
    x = stereo(n, rate) if channels == 2 else chord(n, rate)
    path = tmp_path / f"in_{rate}_{channels}.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    audio = read_audio(path)  # mono at 44.1 kHz, as the pipeline sees it
    out = restore_format(audio.samples, audio.sample_rate, audio.info)
    assert out.dtype == np.float32
    assert out.shape == (channels, n)
    expected = x.mean(axis=1) if channels == 2 else x
    for ch in range(channels):
        assert corr(out[ch, 100:-100], expected[100:-100]) > 0.999


def test_restore_format_crops_pads_and_keeps_channels():
    info = AudioInfo(None, SR, 2, 1000, None, None)
    long = np.ones((2, 1500), np.float32)
    assert restore_format(long, SR, info).shape == (2, 1000)
    short = np.ones((1, 900), np.float32)
    out = restore_format(short, SR, info)
    assert out.shape == (2, 1000)
    assert np.all(out[:, :900] == 1) and np.all(out[:, 900:] == 0)
    mono_info = AudioInfo(None, SR, 1, 1000, None, None)
    assert restore_format(np.ones((2, 1000), np.float32), SR, mono_info).shape == (1, 1000)


# --- bad input -----------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nothing_here.wav"
    with pytest.raises(AudioError) as exc:
        read_audio(path)
    assert_one_line_naming(exc, path)


def test_random_bytes_with_wav_extension(tmp_path):
    path = tmp_path / "noise_bytes.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(AudioError) as exc:
        read_audio(path)
    assert_one_line_naming(exc, path)
    assert isinstance(exc.value, MosappError)


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_wav_is_refused_with_the_frames_found(tmp_path, keep):
    # libsndfile silently reads the frames that are present in a cut-off WAV; mosapp refuses it.
    x = chord(SR, SR)
    full = tmp_path / "full.wav"
    sf.write(full, x, SR)
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: int(len(data) * keep)])
    found = (int(len(data) * keep) - 44) // 2
    with pytest.raises(AudioError) as exc:
        read_audio(cut)
    assert_one_line_naming(exc, cut)
    msg = str(exc.value)
    assert "truncated" in msg and f"announces {SR} frames" in msg and f"holds {found} " in msg, msg


def test_a_complete_wav_with_extra_chunks_is_read(tmp_path):
    # A LIST chunk after the data (as many editors write) is no truncation.
    x = chord(SR // 4, SR)
    path = tmp_path / "tagged.wav"
    sf.write(path, x, SR)
    data = bytearray(path.read_bytes())
    info = b"INFOISFT" + (6).to_bytes(4, "little") + b"mosap\x00"
    data += b"LIST" + len(info).to_bytes(4, "little") + info
    data[4:8] = (len(data) - 8).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert read_audio(path).samples.shape[1] == SR // 4


@pytest.mark.parametrize("damage", ["short_header", "bad_magic"])
def test_damaged_wav_header(tmp_path, damage):
    full = tmp_path / "full.wav"
    sf.write(full, chord(SR // 10, SR), SR)
    data = bytearray(full.read_bytes())
    if damage == "short_header":
        data = data[:20]
    else:
        data[0:4] = b"XXXX"
    path = tmp_path / f"damaged_{damage}.wav"
    path.write_bytes(bytes(data))
    with pytest.raises(AudioError) as exc:
        read_audio(path)
    assert_one_line_naming(exc, path)


def cut_in_half(tmp_path, ext: str):
    """One second of a chord written as ``full<ext>``, and ``cut<ext>``: its first half of the file's bytes."""
    full = tmp_path / f"full{ext}"
    sf.write(full, chord(SR, SR), SR)
    data = full.read_bytes()
    path = tmp_path / f"cut{ext}"
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_ogg(tmp_path):
    path = cut_in_half(tmp_path, ".ogg")
    # libsndfile refuses a Vorbis stream cut in half; either way it must not crash.
    try:
        audio = read_audio(path)
    except AudioError as err:
        assert "cut.ogg" in str(err) and "\n" not in str(err)
    else:
        assert audio.samples.shape[1] > 0


@needs_mp3
def test_truncated_mp3_uses_decoded_length(tmp_path):
    path = cut_in_half(tmp_path, ".mp3")
    audio = read_audio(path, sample_rate=None)
    assert 0 < audio.samples.shape[1] < SR
    assert audio.info.frames == audio.samples.shape[1]


def test_empty_wav(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), SR)
    with pytest.raises(AudioError) as exc:
        read_audio(path)
    assert_one_line_naming(exc, path)


def test_six_channels(tmp_path):
    path = tmp_path / "surround.wav"
    sf.write(path, np.zeros((100, 6), np.float32), SR)
    with pytest.raises(AudioError) as exc:
        read_audio(path)
    assert_one_line_naming(exc, path)
    assert "6 channels" in str(exc.value) and "sox" in str(exc.value)
    assert MAX_CHANNELS == 2


@pytest.mark.parametrize("rate", [8_000, 192_000])
def test_rate_out_of_range(tmp_path, rate):
    path = tmp_path / f"rate_{rate}.wav"
    sf.write(path, np.zeros(100, np.float32), rate)
    with pytest.raises(AudioError) as exc:
        read_audio(path)
    assert_one_line_naming(exc, path)
    msg = str(exc.value)
    assert str(rate) in msg and str(MIN_SAMPLE_RATE) in msg and str(MAX_SAMPLE_RATE) in msg
    assert "-r 44100" in msg


@pytest.mark.parametrize("rate", [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE])
def test_rate_limits_are_inclusive(tmp_path, rate):
    path = tmp_path / f"edge_{rate}.wav"
    sf.write(path, chord(rate // 10, rate), rate)
    assert read_audio(path).sample_rate == SR


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, bad):
    x = chord(SR, SR)
    x[SR // 2] = bad
    x[SR // 2 + 10] = bad
    path = tmp_path / "broken_float.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    with pytest.raises(AudioError) as exc:
        read_audio(path)
    assert_one_line_naming(exc, path)
    msg = str(exc.value)
    assert "0.500 s" in msg
    assert ("2 NaN" in msg) if np.isnan(bad) else ("2 infinite" in msg)


# --- writing -------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg"] + ([".mp3"] if HAS_MP3 else []))
def test_write_audio_is_atomic_and_readable(tmp_path, ext):
    x = stereo(SR // 4, SR).T.copy()
    path = tmp_path / f"out{ext}"
    write_audio(path, x, SR)
    write_audio(path, x, SR)  # overwriting an existing file works too
    assert sorted(os.listdir(tmp_path)) == [f"out{ext}"]
    back = read_audio(path, mono=False)
    assert back.samples.shape[0] == 2
    if ext in (".wav", ".flac"):
        assert back.info.subtype == "PCM_16"
        np.testing.assert_allclose(back.samples, x, atol=1.0 / 2**15 + 1e-7)
    else:
        assert corr(back.samples[0], x[0]) > 0.99


def test_write_audio_clips_integer_subtypes_only(tmp_path):
    x = np.array([[0.5, 1.5, -2.0, 0.0]], np.float32)
    write_audio(tmp_path / "int.wav", x, SR)
    ints = read_audio(tmp_path / "int.wav", sample_rate=None).samples
    np.testing.assert_allclose(ints[0], [0.5, 1.0, -1.0, 0.0], atol=1e-4)
    write_audio(tmp_path / "float.wav", x, SR, subtype="FLOAT")
    floats = read_audio(tmp_path / "float.wav", sample_rate=None).samples
    np.testing.assert_array_equal(floats, x)


def test_write_audio_mono_1d(tmp_path):
    x = chord(1000, SR)
    write_audio(tmp_path / "m.wav", x, SR, subtype="PCM_24")
    back = read_audio(tmp_path / "m.wav", sample_rate=None)
    assert back.samples.shape == (1, 1000) and back.info.subtype == "PCM_24"


def test_write_audio_unknown_extension(tmp_path):
    path = tmp_path / "out.xyz"
    with pytest.raises(AudioError) as exc:
        write_audio(path, np.zeros((1, 10), np.float32), SR)
    assert_one_line_naming(exc, path)
    assert ".wav" in str(exc.value)
    assert os.listdir(tmp_path) == []


def test_write_audio_unwritable_path(tmp_path):
    path = tmp_path / "no_such_folder" / "out.wav"
    with pytest.raises(AudioError) as exc:
        write_audio(path, np.zeros((1, 10), np.float32), SR)
    assert_one_line_naming(exc, path)


def test_write_audio_bad_subtype(tmp_path):
    path = tmp_path / "out.ogg"
    with pytest.raises(AudioError) as exc:
        write_audio(path, np.zeros((1, 10), np.float32), SR, subtype="PCM_16")
    assert_one_line_naming(exc, path)
    assert os.listdir(tmp_path) == []


def test_full_round_trip_restores_original_file_shape(tmp_path):
    rate, n = 48_000, 12_345
    src = tmp_path / "src.flac"
    sf.write(src, stereo(n, rate), rate, subtype="PCM_24")
    audio = read_audio(src)
    assert isinstance(audio, Audio)
    out = restore_format(audio.samples, audio.sample_rate, audio.info)
    dst = tmp_path / "dst.flac"
    write_audio(dst, out, audio.info.sample_rate, subtype=audio.info.subtype)
    info = sf.info(dst)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (rate, 2, n, "PCM_24")
