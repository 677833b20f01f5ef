"""The shipped compact spectrogram codec: weights and cards present, rate control, determinism, damaged streams.

Both generations: the two-band ``sgc-6/12/24`` (the shipped codec) and the thesis-image
``sgc-thesis-*`` (the seed-like baseline)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mosapp.codecs import DEFAULT_CODEC, codec_names, container, get_codec
from mosapp.codecs.sgc import ASSETS_MODELS, STEP_RANGE, SgcTwoBandCodec, name_kbps
from mosapp.core.audio import AudioInfo
from mosapp.core.config import PipelineConfig
from mosapp.core.errors import BitstreamError
from tests.helpers import music_like

SHIPPED = sorted(p.stem for p in ASSETS_MODELS.glob("sgc-*.json"))
CURRENT = sorted((n for n in SHIPPED if not n.startswith("sgc-thesis-")), key=name_kbps)
FAST = PipelineConfig(phase="pghi", device="cpu")


def test_at_least_three_operating_points_from_6_to_24_kbps_are_shipped():
    rates = sorted(name_kbps(n) for n in CURRENT)
    assert len(rates) >= 3
    assert rates[0] <= 13.1 and rates[0] <= 8 and rates[-1] >= 20
    assert DEFAULT_CODEC in CURRENT
    assert all(isinstance(get_codec(n), SgcTwoBandCodec) for n in CURRENT)
    assert "sgc-thesis-12" in SHIPPED  # the seed-like baseline stays a condition


@pytest.mark.parametrize("name", SHIPPED)
def test_card_describes_the_weights(name):
    card = json.loads((ASSETS_MODELS / f"{name}.json").read_text())
    weights = ASSETS_MODELS / card["weights"]
    # Exported weights, not a training checkpoint (that one also holds Adam's two moments: 3x the size).
    # One weights file (sgc6.pt, 20 MB, as the fifth round's sgc5.pt) serves all three points, where the third round shipped 3 x 7 MB.
    assert weights.is_file() and weights.stat().st_size < 24 * 2**20
    for key in ("geometry", "training", "architecture", "measured"):
        assert card[key], key
    assert card["training"]["steps"] > 0 and card["training"]["lambda"] > 0
    measured = card["measured"]
    for key in ("kbps", "mel_distance", "spectral_convergence_db", "consistency"):
        assert measured[key] is not None, key
    assert "visqol" in measured  # None when the table ran with --no-visqol
    codec = get_codec(name)
    assert codec.availability().ok
    assert name in codec_names()


@pytest.mark.parametrize("name", SHIPPED)
def test_file_bitrate_is_within_ten_percent_of_the_card(name, tmp_path, device):
    """Rate control: the whole .sgc file lands on the card's kbps (music-like input, 6 s)."""
    codec = get_codec(name)
    x = music_like(6.0, seed=5)
    config = PipelineConfig(phase="pghi", device=device)
    encoded = codec.encode(x, config)
    data = container.pack(encoded, AudioInfo(None, 44100, 1, x.shape[1], "PCM_16", "WAV"))
    kbps = 8 * len(data) / 6.0 / 1000
    card = json.loads((ASSETS_MODELS / f"{name}.json").read_text())
    assert abs(kbps - card["measured"]["kbps"]) <= 0.1 * card["measured"]["kbps"], (kbps, card["measured"]["kbps"])
    steps = encoded.params["step"]
    for step in steps if isinstance(steps, list) else [steps]:
        assert STEP_RANGE[0] <= step <= STEP_RANGE[1]


def test_decoding_is_deterministic_and_sounds_like_the_input():
    from mosapp.core import metrics

    codec = get_codec(DEFAULT_CODEC)
    x = music_like(3.0, seed=2)
    encoded = codec.encode(x, FAST)
    a = codec.decode(encoded, FAST)
    b = codec.decode(encoded, FAST)
    assert a.shape == x.shape and np.array_equal(a, b)
    # Much closer to the input than silence or noise of the same level.
    d = metrics.mel_distance(x, a, 44100)
    noise = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32) * x.std()
    assert d < 0.6 * metrics.mel_distance(x, noise, 44100)


def test_damaged_payloads_give_one_sentence():
    codec = get_codec(DEFAULT_CODEC)
    x = music_like(1.0, seed=1)
    encoded = codec.encode(x, FAST)
    short = type(encoded)(**{**encoded.__dict__, "payload": encoded.payload[:-7]})
    with pytest.raises(BitstreamError, match="ends early|damaged|trailing|does not fit"):
        codec.decode(short, FAST)
    bad_step = type(encoded)(**{**encoded.__dict__, "params": {**encoded.params, "step": [1e9, 1.0]}})
    with pytest.raises(BitstreamError, match="out of range"):
        codec.decode(bad_step, FAST)
    newer = type(encoded)(**{**encoded.__dict__, "codec_version": codec.version + 1})
    with pytest.raises(BitstreamError, match="update mosapp"):
        codec.decode(newer, FAST)
    # A first-generation stream under the same name says which codec reads it.
    old = get_codec("sgc-thesis-12").encode(x, FAST)
    renamed = type(old)(**{**old.__dict__, "codec": DEFAULT_CODEC})
    with pytest.raises(BitstreamError, match="sgc-thesis-12"):
        codec.decode(renamed, FAST)


def test_more_bits_give_a_better_low_band():
    """The operating points are real ones: sgc-24 keeps the low band better than sgc-6."""
    from mosapp.core import metrics

    x = music_like(4.0, seed=7)
    low, high = CURRENT[0], CURRENT[-1]
    d = {n: metrics.band_spectral_distance_db(x, get_codec(n).decode(get_codec(n).encode(x, FAST), FAST), 44100)
         for n in (low, high)}
    assert d[high] < d[low], d


def test_a_stream_of_an_earlier_training_round_decodes_with_the_weights_it_was_coded_with(tmp_path, monkeypatch):
    """sgc-12 moves to new weights; a file its earlier weights wrote still decodes (with those
    weights, found by the identifier the file records), and one of weights nobody has is refused."""
    from mosapp.codecs.base import file_model_id
    from mosapp.core.errors import InvalidStreamError

    x = music_like(2.0, seed=4)
    before = get_codec(DEFAULT_CODEC)
    encoded = before.encode(x, FAST)
    expected = before.decode(encoded, FAST)
    # The operating points retrained: a new weights file (new identifier) and cards, in a models folder searched
    # first. Every point that used the old file moves (as a round does; weights a current card still names are
    # current, and a stream of them decodes only under a point that names them).
    card = json.loads((ASSETS_MODELS / f"{DEFAULT_CODEC}.json").read_text())
    weights = (ASSETS_MODELS / card["weights"]).read_bytes()
    (tmp_path / "retrained.pt").write_bytes(weights + b"\0")  # another file, another identifier
    for name in CURRENT:
        other = json.loads((ASSETS_MODELS / f"{name}.json").read_text())
        if other["weights"] == card["weights"]:
            (tmp_path / f"{name}.json").write_text(json.dumps({**other, "weights": "retrained.pt"}))
    monkeypatch.setenv("MOSAPP_MODELS_DIR", str(tmp_path))
    after = get_codec(DEFAULT_CODEC)
    assert after.model_id() == file_model_id(tmp_path / "retrained.pt") != encoded.model
    assert np.array_equal(after.decode(encoded, FAST), expected)
    assert after.model_id() != encoded.model and after.encode(x, FAST).model == after.model_id()
    unknown = type(encoded)(**{**encoded.__dict__, "model": "0123456789abcdef"})
    with pytest.raises(InvalidStreamError, match="coded with model 0123456789abcdef"):
        after.decode(unknown, FAST)


def test_the_high_images_upper_rows_are_coded_coarser_by_the_cards_row_slope():
    from mosapp.codecs.sgc import ROW_SLOPE_RANGE, high_row_multipliers, row_slope

    assert high_row_multipliers(0.0) == []
    rows = high_row_multipliers(0.5)
    assert len(rows) == 16 and rows == sorted(rows)
    assert rows[0] < 1.0 < rows[-1]  # the row of 1-1.4 kHz finest, at the step of 1.3 kHz
    assert rows[0] == pytest.approx((1300 / 4000) ** 0.5) and rows[-1] / rows[0] == pytest.approx((21360.9 / 1300) ** 0.5)
    assert row_slope(None, "x") == 0.0 and row_slope("0.5", "x") == 0.5
    for bad in ("steep", ROW_SLOPE_RANGE[1] + 1, -0.5):
        with pytest.raises(ValueError, match="high_row_slope"):
            row_slope(bad, "The card's")
    # The shipped points use one: it is in each stream, and a stream without it decodes with one step.
    codec = get_codec(DEFAULT_CODEC)
    assert codec.high_row_slope > 0
    x = music_like(2.0, seed=4)
    encoded = codec.encode(x, FAST)
    assert encoded.params["high_row_slope"] == codec.high_row_slope
    sloped = codec.decode(encoded, FAST)
    flat = codec.decode(type(encoded)(**{**encoded.__dict__,
                                         "params": {k: v for k, v in encoded.params.items() if k != "high_row_slope"}}),
                        FAST)
    assert sloped.shape == flat.shape and not np.array_equal(sloped, flat)


@pytest.mark.parametrize("slope", ["steep", 9.0, [0.5]])
def test_a_damaged_row_slope_in_a_stream_is_one_sentence(slope):
    codec = get_codec(DEFAULT_CODEC)
    encoded = codec.encode(music_like(1.0, seed=3), FAST)
    bad = type(encoded)(**{**encoded.__dict__, "params": {**encoded.params, "high_row_slope": slope}})
    with pytest.raises(BitstreamError, match=r"stream's high_row_slope .* (not a number|outside)"):
        codec.decode(bad, FAST)


def test_a_card_with_a_bad_row_slope_names_it(tmp_path, monkeypatch):
    from mosapp.core.errors import ModelError

    card = json.loads((ASSETS_MODELS / f"{DEFAULT_CODEC}.json").read_text())
    card["rate_control"]["high_row_slope"] = 7
    (tmp_path / f"{DEFAULT_CODEC}.json").write_text(json.dumps(card))
    monkeypatch.setenv("MOSAPP_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="model card's high_row_slope 7.0 is outside"):
        SgcTwoBandCodec(DEFAULT_CODEC)


def test_a_cards_high_step_ratio_keeps_the_two_bands_steps_in_that_ratio_and_lands_on_the_rate(tmp_path, monkeypatch):
    """``high_step_ratio``: the high band's step is that multiple of the low band's, so a clip with a
    busier high band gives it more of the bits than ``low_share`` would; the file still lands on the rate."""
    from mosapp.codecs.sgc import step_ratio

    card = json.loads((ASSETS_MODELS / f"{DEFAULT_CODEC}.json").read_text())
    card["rate_control"] = {**card["rate_control"], "high_step_ratio": 1.0}
    (tmp_path / f"{DEFAULT_CODEC}.json").write_text(json.dumps(card))
    (tmp_path / card["weights"]).symlink_to(ASSETS_MODELS / card["weights"])
    shared = get_codec(DEFAULT_CODEC)
    monkeypatch.setenv("MOSAPP_MODELS_DIR", str(tmp_path))
    ratio = SgcTwoBandCodec(DEFAULT_CODEC)
    assert shared.high_step_ratio is None and ratio.high_step_ratio == 1.0
    x = music_like(6.0, seed=5)
    by_share, by_ratio = shared.encode(x, FAST), ratio.encode(x, FAST)
    s_low, s_high = by_ratio.params["step"]
    assert s_high / s_low == pytest.approx(1.0, rel=1e-4)
    assert by_share.params["step"][1] / by_share.params["step"][0] != pytest.approx(1.0, rel=0.05)
    info = AudioInfo(None, 44100, 1, x.shape[1], "PCM_16", "WAV")
    kbps = len(container.pack(by_ratio, info)) * 8 / 6.0 / 1000
    assert abs(kbps - ratio.target_kbps) < 0.1 * ratio.target_kbps
    assert ratio.decode(by_ratio, FAST).shape == x.shape  # the decoder needs nothing new: the steps are in the stream
    assert step_ratio(None, "x") is None and step_ratio(2, "x") == 2.0
    for bad in ("fine", True, 0.0, 11):
        with pytest.raises(ValueError, match="high_step_ratio"):
            step_ratio(bad, "The card's")


def test_a_card_with_a_bad_step_ratio_names_it(tmp_path, monkeypatch):
    from mosapp.core.errors import ModelError

    card = json.loads((ASSETS_MODELS / f"{DEFAULT_CODEC}.json").read_text())
    card["rate_control"]["high_step_ratio"] = "fine"
    (tmp_path / f"{DEFAULT_CODEC}.json").write_text(json.dumps(card))
    monkeypatch.setenv("MOSAPP_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="model card's high_step_ratio 'fine' is not a number"):
        SgcTwoBandCodec(DEFAULT_CODEC)
