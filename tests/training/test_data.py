"""Training data: the cached track images and the patch sampler."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mosapp.core.errors import ConfigError
from mosapp.training.data import PatchSampler, track_image
from tests.helpers import music_like


def test_track_image_is_cached_per_file_and_band(tmp_path):
    wav = tmp_path / "t.wav"
    sf.write(wav, music_like(2.0, seed=1)[0], 44100)
    cache = tmp_path / "cache"
    image = track_image(str(wav), "thesis", str(cache))
    assert image.dtype == np.float16 and image.shape[0] == 256
    assert 0.0 <= float(image.min()) and float(image.max()) == 1.0  # scaled to the track's own peak
    assert len(list(cache.glob("*.npy"))) == 1
    again = track_image(str(wav), "thesis", str(cache))
    assert isinstance(again, np.memmap) and np.array_equal(again, image)
    low = track_image(str(wav), "thesis", str(cache), band="low")
    assert len(list(cache.glob("*.npy"))) == 3  # the band split made and cached both band images
    high = track_image(str(wav), "thesis", str(cache), band="high")
    assert isinstance(high, np.memmap)
    assert low.shape[0] == 128 and high.shape[0] == 256
    assert sorted(p.suffix for p in cache.iterdir()) == [".npy"] * 3  # no temporaries left


def test_patch_sampler_draws_seeded_patches_of_music():
    rng = np.random.default_rng(0)
    images = [rng.uniform(0.3, 1.0, (16, 300)).astype(np.float16), np.zeros((16, 50), np.float16)]
    a = PatchSampler(images, 64, seed=5).batch(3)
    b = PatchSampler(images, 64, seed=5).batch(3)
    assert a.shape == (3, 1, 16, 64) and a.dtype.is_floating_point
    assert np.array_equal(a.numpy(), b.numpy())
    assert float(a.mean()) > 0.3  # the 50-frame image is shorter than a patch and never drawn
    with pytest.raises(ConfigError, match="shorter than one patch"):
        PatchSampler([np.zeros((16, 50), np.float16)], 64, seed=0)
