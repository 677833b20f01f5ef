"""The two-band representation as a codec: the lossless upper bound and its stream checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mosapp.codecs import container, get_codec
from mosapp.core import bands, metrics
from mosapp.core.audio import AudioInfo
from mosapp.core.config import PipelineConfig
from mosapp.core.errors import BitstreamError
from tests.helpers import music_like

FAST = PipelineConfig(phase="pghi", device="cpu")


def test_pghi_only_two_band_keeps_the_low_band_better_than_the_thesis_image():
    """The point of the representation: harmonics below 1 kHz resolved (10.8 Hz bins)."""
    x = music_like(3.0, seed=6)
    scores = {}
    for name in ("pghi-only", "pghi-only-two-band"):
        codec = get_codec(name)
        encoded = codec.encode(x, FAST)
        data = container.pack(encoded, AudioInfo(None, 44100, 1, x.shape[1], "PCM_16", "WAV"))
        y = codec.decode(container.unpack(data)[0], FAST)
        assert y.shape == x.shape and np.isfinite(y).all()
        scores[name] = metrics.band_spectral_distance_db(x, y, 44100)
    assert scores["pghi-only-two-band"] < 0.5 * scores["pghi-only"], scores


def test_stream_layout_and_damage():
    codec = get_codec("pghi-only-two-band")
    x = music_like(1.5, seed=2, channels=2)
    encoded = codec.encode(x, FAST)
    assert encoded.params["bands"] and len(encoded.params["top_db"]) == 2
    images = list(codec.decode_band_images(encoded, torch.device("cpu")))
    assert [ch for ch, _ in images] == [0, 1]
    low = images[0][1].low
    assert low.shape[0] == bands.LOW_ROWS
    assert images[0][1].high[: bands.HIGH_FIRST_ROW].abs().max() == 0
    short = type(encoded)(**{**encoded.__dict__, "payload": encoded.payload[:-5]})
    with pytest.raises(BitstreamError, match="ends early|damaged|wrong size|does not fit"):
        codec.decode(short, FAST)
    other = type(encoded)(**{**encoded.__dict__, "params": {**encoded.params, "bands": "low4-500-700"}})
    with pytest.raises(BitstreamError, match="band layout"):
        codec.decode(other, FAST)
    bad = type(encoded)(**{**encoded.__dict__, "params": {**encoded.params, "top_db": [[0.0, float("nan")]] * 2}})
    with pytest.raises(BitstreamError, match="parameter"):
        codec.decode(bad, FAST)
