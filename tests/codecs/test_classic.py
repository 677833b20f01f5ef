"""Tests for mosapp.codecs.classic: Opus/MP3/AAC baselines and the MUSHRA low-pass anchors.

Alignment is measured as the lag of the peak of the cross-correlation between input and
output (positive: the output is late), at the pipeline rate.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mosapp.codecs import codec_names, get_codec
from mosapp.codecs.classic import (
    ADVERTISED,
    LowpassAnchor,
    OpusCodec,
    lame_sample_rate,
    pack_packets,
    unpack_packets,
)
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig
from mosapp.core.errors import AudioError, BitstreamError, ConfigError, ModelError
from tests.helpers import music_like, require_codec

RATE = PIPELINE_SAMPLE_RATE
CONFIG = PipelineConfig()
WAVEFORM = [f"{family}-{k}" for family, rates in ADVERTISED.items() for k in rates]
ANCHORS = ["lowpass-3.5k", "lowpass-7k"]


def lag(reference: np.ndarray, estimate: np.ndarray, max_lag: int = 64) -> int:
    """Lag (samples) of the cross-correlation peak; positive when ``estimate`` is late."""
    n = reference.size
    spectrum = np.fft.rfft(estimate, 2 * n) * np.conj(np.fft.rfft(reference, 2 * n))
    cc = np.fft.irfft(spectrum)
    window = np.concatenate([cc[-max_lag:], cc[: max_lag + 1]])
    return int(np.argmax(window)) - max_lag


@pytest.fixture(scope="module")
def music30() -> np.ndarray:
    return music_like(30.0, seed=3)


@pytest.fixture(scope="module")
def music3() -> np.ndarray:
    return music_like(3.0, seed=4)


# --- names and the registry ---------------------------------------------------------------


def test_advertised_names_are_registered():
    names = codec_names()
    for name in WAVEFORM + ANCHORS:
        assert name in names
        codec = get_codec(name)
        assert codec.name == name
        assert codec.family == name.split("-")[0]
        assert codec.description
    assert get_codec("opus-12").nominal_kbps == 12.0
    assert get_codec("lowpass-3.5k").nominal_kbps is None


@pytest.mark.parametrize("name, kbps", [("opus-11", 11.0), ("opus-6.5", 6.5), ("aac-20", 20.0), ("mp3-48", 48.0)])
def test_any_bitrate_in_range_is_a_codec(name, kbps):
    codec = get_codec(name)
    assert codec.nominal_kbps == kbps and codec.name == name


def test_unknown_name_lists_known_codecs():
    with pytest.raises(ConfigError) as exc:
        get_codec("opus-x")
    message = str(exc.value)
    assert '"opus-x"' in message and "opus-12" in message and "lowpass-3.5k" in message and "\n" not in message


@pytest.mark.parametrize(
    "name, hint", [("opus-3", "6 to 256"), ("aac-400", "8 to 256"), ("mp3-11", "8, 16, 24"), ("mp3-144", "128, 160")]
)
def test_uncodable_bitrates_say_what_is_accepted(name, hint):
    with pytest.raises(ConfigError, match=hint):
        get_codec(name)


def test_lame_sample_rate_matches_lame():
    # LAME 3.100 CBR defaults at 44.1 kHz input (lame -b N, mono and joint stereo).
    assert [lame_sample_rate(k, 1) for k in (8, 16, 24, 32, 48, 64, 128)] == [8000, 16000, 16000, 22050, 32000, 44100, 44100]
    assert [lame_sample_rate(k, 2) for k in (8, 16, 24, 32, 48, 64, 128)] == [8000, 8000, 8000, 16000, 22050, 24000, 44100]


def test_packet_framing_round_trips():
    rng = np.random.default_rng(0)
    packets = [rng.bytes(int(n)) for n in rng.integers(1, 400, 300)]
    assert unpack_packets(pack_packets(packets), "test") == packets
    cbr = pack_packets([b"x" * 60] * 1500)
    assert len(cbr) - 60 * 1500 < 40  # constant lengths cost almost nothing


# --- bitrate, length, alignment -------------------------------------------------------------


@pytest.mark.parametrize("name", WAVEFORM + ["opus-11"])
def test_payload_bitrate_is_nominal_on_30_s_of_music(name, music30):
    codec = require_codec(name)
    encoded = codec.encode(music30, CONFIG)
    assert encoded.n_samples == music30.shape[1] and encoded.channels == 1
    # CBR streams are nominal by construction (opus-11: 28-byte packets, 11.2); FFmpeg's AAC
    # is calibrated to within 1-3 %.
    assert abs(encoded.payload_kbps / codec.nominal_kbps - 1.0) <= 0.03, encoded.payload_kbps


@pytest.mark.parametrize("name", ["opus-12", "mp3-8", "mp3-32", "aac-16"] + ANCHORS)
@pytest.mark.parametrize("n", [1, 1000, 22_051])
def test_decoded_length_is_exact(name, n):
    codec = require_codec(name)
    x = music_like(1.0, seed=n)[:, :n]
    y, encoded = codec.process(x, CONFIG)
    assert y.shape == (1, n) and y.dtype == np.float32 and y.flags.c_contiguous
    assert np.isfinite(y).all()
    assert encoded.n_samples == n


@pytest.mark.parametrize(
    "name, delay", [("opus-64", 312), ("mp3-8", 1105), ("mp3-32", 1105), ("aac-16", 1024), ("aac-32", 1024)]
)
def test_output_aligns_with_input(name, delay, music3):
    codec = require_codec(name)
    y, encoded = codec.process(music3, CONFIG)
    # The delay is read from the encoder (first packet's pts), and is the codec's own:
    # Opus pre-skip, LAME encoder 576 + decoder 529, AAC priming.
    assert encoded.params["delay"] == delay
    assert lag(music3[0], y[0]) == 0


def test_opus_silk_mode_is_within_half_a_sample_at_8_khz(music3):
    # SILK (6-12 kbit/s) resamples internally to 8-16 kHz; libopus compensates that delay
    # in whole samples there, leaving up to 0.5 sample at 8 kHz = 2.8 samples at 44.1 kHz.
    codec = require_codec("opus-8")
    y, _ = codec.process(music3, CONFIG)
    assert abs(lag(music3[0], y[0])) <= 3


def test_opus_aligns_click_trains_at_low_rates():
    codec = require_codec("opus-24")
    rng = np.random.default_rng(5)
    x = np.zeros((1, 3 * RATE), dtype=np.float32)
    x[0, rng.choice(np.arange(2000, 3 * RATE - 2000), 40, replace=False)] = 0.7
    y, _ = codec.process(x, CONFIG)
    assert lag(x[0], y[0]) == 0


def test_mp3_codes_at_lame_rate(music3):
    encoded = require_codec("mp3-16").encode(music3, CONFIG)
    assert encoded.params["rate"] == 16000


# --- the anchors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, cutoff", [("lowpass-3.5k", 3500.0), ("lowpass-7k", 7000.0)])
def test_lowpass_attenuates_above_cutoff_and_keeps_the_passband(name, cutoff):
    codec = get_codec(name)
    rng = np.random.default_rng(2)
    x = (0.1 * rng.standard_normal((1, 2 * RATE))).astype(np.float32)
    y, encoded = codec.process(x, CONFIG)
    assert encoded.payload_kbps > 0 and codec.nominal_kbps is None
    window = np.hanning(x.shape[1])
    freqs = np.fft.rfftfreq(x.shape[1], 1 / RATE)
    px = np.abs(np.fft.rfft(x[0] * window)) ** 2
    py = np.abs(np.fft.rfft(y[0] * window)) ** 2
    above = freqs >= cutoff
    below = freqs <= cutoff - LowpassAnchor.TRANSITION_HZ
    assert 10 * np.log10(py[above].sum() / px[above].sum()) <= -40
    assert abs(10 * np.log10(py[below].sum() / px[below].sum())) < 0.05
    # Zero phase: in the passband the output is the input.
    t = np.arange(RATE) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    out, _ = codec.process(tone, CONFIG)
    assert np.abs(out - tone)[:, 3000:-3000].max() < 1e-3


# --- stereo --------------------------------------------------------------------------------------


# Not opus below about 20 kbit/s: there libopus itself codes a stereo input as mono.
@pytest.mark.parametrize("name", ["opus-32", "mp3-16", "aac-24", "lowpass-7k"])
def test_stereo_keeps_channels_apart_and_aligned(name):
    codec = require_codec(name)
    # Left: music; right: an unrelated pulsing two-tone chord, so a swap or a mix shows.
    t = np.arange(2 * RATE) / RATE
    right = 0.3 * (np.sin(2 * np.pi * 300 * t) + np.sin(2 * np.pi * 1250 * t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    x = np.stack([music_like(2.0, seed=7)[0], right.astype(np.float32)])
    y, encoded = codec.process(x, CONFIG)
    assert y.shape == x.shape and y.dtype == np.float32 and encoded.channels == 2
    for ch in range(2):
        own = np.corrcoef(x[ch], y[ch])[0, 1]
        other = np.corrcoef(x[1 - ch], y[ch])[0, 1]
        assert own > 0.7 and abs(other) < 0.2, (own, other)
        if not name.startswith("opus"):
            assert lag(x[ch], y[ch]) == 0


# --- errors --------------------------------------------------------------------------------------


def assert_one_sentence(exc: pytest.ExceptionInfo) -> None:
    message = str(exc.value)
    assert message and "\n" not in message and "Traceback" not in message


@pytest.fixture(scope="module", params=["opus-8", "mp3-8", "aac-16", "lowpass-3.5k"])
def encoded(request):
    codec = require_codec(request.param)
    return codec, codec.encode(music_like(0.5, seed=9), CONFIG)


def test_decoding_checks_damaged_payloads(encoded):
    codec, good = encoded
    payload = bytearray(good.payload)
    payload[len(payload) // 2] ^= 0x10
    damaged = [
        dataclasses.replace(good, payload=bytes(payload)),
        dataclasses.replace(good, payload=good.payload[: len(good.payload) // 2]),
        dataclasses.replace(good, payload=b""),
        dataclasses.replace(good, payload=good.payload + b"\0"),
        dataclasses.replace(good, params={}),
        dataclasses.replace(good, codec_version=codec.version + 1),
        dataclasses.replace(good, channels=3),
        dataclasses.replace(good, codec="sgc-12"),
    ]
    for bad in damaged:
        with pytest.raises(BitstreamError) as exc:
            codec.decode(bad, CONFIG)
        assert_one_sentence(exc)


def test_newer_version_asks_for_an_update(encoded):
    codec, good = encoded
    with pytest.raises(BitstreamError, match="update mosapp"):
        codec.decode(dataclasses.replace(good, codec_version=codec.version + 1), CONFIG)


@pytest.mark.parametrize("name", ["opus-12", "lowpass-7k"])
def test_bad_audio_is_refused_in_one_sentence(name):
    codec = require_codec(name)
    nan = music_like(0.2)
    nan[0, 100] = np.nan
    for bad in (nan, np.zeros((3, 1000), np.float32), np.zeros((1, 0), np.float32)):
        with pytest.raises(AudioError) as exc:
            codec.encode(bad, CONFIG)
        assert_one_sentence(exc)


def test_missing_encoder_is_reported(monkeypatch):
    monkeypatch.setattr(OpusCodec, "encoder", "no-such-encoder")
    codec = get_codec("opus-12")
    availability = codec.availability()
    assert not availability.ok and "no-such-encoder" in availability.reason and "\n" not in availability.reason
    with pytest.raises(ModelError):
        codec.encode(music_like(0.2), CONFIG)
