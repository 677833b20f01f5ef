"""avif-N, webp-N, jpeg-N: classic image codecs on sgc's two-band images, rate-controlled per file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mosapp.codecs import codec_names, container, get_codec
from mosapp.core import metrics
from mosapp.core.audio import AudioInfo
from mosapp.core.config import PipelineConfig
from mosapp.core.errors import BitstreamError, ConfigError
from tests.helpers import music_like, require_codec

FAST = PipelineConfig(phase="pghi", device="cpu")


def _coded(name: str, seconds: float = 4.0):
    """(codec, input, encoded, packed file bytes, file kbps) for ``name`` on a music-like clip."""
    codec = require_codec(name)
    x = music_like(seconds, seed=3)
    encoded = codec.encode(x, FAST)
    data = container.pack(encoded, AudioInfo(None, 44100, 1, x.shape[1], "PCM_16", "WAV"))
    return codec, x, encoded, data, 8 * len(data) / seconds / 1000


def _assert_decodes_to_music(codec, x, data) -> None:
    y = codec.decode(container.unpack(data)[0], FAST)
    assert y.shape == x.shape
    noise = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32) * x.std()
    assert metrics.mel_distance(x, y, 44100) < 0.6 * metrics.mel_distance(x, noise, 44100)


def test_the_family_is_registered():
    names = codec_names()
    for name in ("avif-6", "avif-12", "avif-24", "webp-12", "jpeg-12"):
        assert name in names
    assert get_codec("avif-9.5").target_kbps == 9.5
    for bad in ("avif-0.5", "avif-1000", "png-12"):
        with pytest.raises(ConfigError, match="Unknown codec"):
            get_codec(bad)


@pytest.mark.parametrize("name", ["avif-24", "jpeg-48"])
def test_rate_control_lands_near_the_target_and_decodes(name):
    codec, x, encoded, data, kbps = _coded(name)
    assert kbps <= 1.02 * codec.target_kbps and kbps >= 0.7 * codec.target_kbps, kbps
    q_low, q_high = encoded.params["quality"]
    assert 1 <= q_low <= 100 and 1 <= q_high <= 100
    assert "time_scale" not in encoded.params  # quality alone reaches these rates: full-size images
    _assert_decodes_to_music(codec, x, data)


def test_more_bits_give_a_better_image():
    x = music_like(3.0, seed=8)
    d = []
    for name in ("avif-8", "avif-32"):
        codec = get_codec(name)
        y = codec.decode(codec.encode(x, FAST), FAST)
        d.append(metrics.band_spectral_distance_db(x, y, 44100))
    assert d[1] < d[0]


def test_a_damaged_image_is_one_sentence():
    codec = get_codec("jpeg-24")
    x = music_like(1.0, seed=1)
    encoded = codec.encode(x, FAST)
    broken = bytearray(encoded.payload)
    broken[4:40] = b"\x00" * 36  # the first tile's image header
    with pytest.raises(BitstreamError, match="jpeg-24"):
        codec.decode(type(encoded)(**{**encoded.__dict__, "payload": bytes(broken)}), FAST)


@pytest.mark.parametrize("name", ["avif-3", "jpeg-6"])
def test_a_rate_below_quality_1_is_reached_with_a_smaller_image(name):
    """At quality 1 the full-size high image alone costs more than these rates; the codec lands
    on the rate anyway by coding the band images averaged over frames, and decodes at full size."""
    codec, x, encoded, data, kbps = _coded(name)
    assert 0.7 * codec.target_kbps <= kbps <= 1.02 * codec.target_kbps, kbps
    low_scale, high_scale = encoded.params["time_scale"]
    assert high_scale in (2, 4, 8) and low_scale in (1, 2, 4, 8)
    _assert_decodes_to_music(codec, x, data)


def test_shrink_and_expand_keep_a_smooth_image_and_its_frames():
    from mosapp.codecs.image import coded_frames, expand, shrink

    frames = 1001  # not a multiple of any scale
    ramp = torch.linspace(0.0, 1.0, frames).repeat(5, 1)
    for scale in (1, 2, 4, 8):
        small = shrink(ramp, scale)
        assert small.shape == (5, coded_frames(frames, scale))
        back = expand(small, frames, scale)
        assert back.shape == ramp.shape
        # A ramp is rebuilt exactly inside; only the last padded group and the first half-column differ.
        inner = slice(scale, frames - 2 * scale)
        assert torch.allclose(back[:, inner], ramp[:, inner], atol=1e-5), scale


@pytest.mark.parametrize("scale", [[1, 3], [1], "2", [True, 1], [16, 1]])
def test_a_damaged_time_scale_is_one_sentence(scale):
    codec = get_codec("jpeg-6")
    x = music_like(1.0, seed=1)
    encoded = codec.encode(x, FAST)
    params = {**encoded.params, "time_scale": scale}
    with pytest.raises(BitstreamError, match=r"jpeg-6 stream's time scale .* is not a pair of 1, 2, 4, 8\."):
        codec.decode(type(encoded)(**{**encoded.__dict__, "params": params}), FAST)


def test_a_time_scale_that_does_not_match_the_images_is_refused():
    codec = get_codec("jpeg-6")
    x = music_like(2.0, seed=2)
    encoded = codec.encode(x, FAST)
    low, high = encoded.params.get("time_scale", [1, 1])
    params = {**encoded.params, "time_scale": [low, 8 if high != 8 else 1]}
    with pytest.raises(BitstreamError, match="high-band image is"):
        codec.decode(type(encoded)(**{**encoded.__dict__, "params": params}), FAST)
