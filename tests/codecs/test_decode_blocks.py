"""Waveform codecs decode block by block (for streams too long to hold) to what they decode whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mosapp.codecs.container import read_sgc
from mosapp.core.config import PipelineConfig
from tests.helpers import require_codec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sgc"


@pytest.mark.parametrize("name", ["opus-12", "mp3-16", "aac-16"])
def test_blocks_are_the_whole_decode(name, monkeypatch):
    codec = require_codec(name)
    from mosapp.codecs.classic import av_io

    monkeypatch.setattr(av_io, "STREAM_BLOCK_FRAMES", 10_000)  # many blocks, odd boundaries
    encoded, _ = read_sgc(FIXTURES / f"{name}.sgc")
    whole = codec.decode(encoded, PipelineConfig())
    blocks = list(codec.decode_blocks(encoded, PipelineConfig()))
    assert len(blocks) > 3
    streamed = np.concatenate(blocks, axis=1)
    assert streamed.shape == whole.shape == (encoded.channels, encoded.n_samples)
    np.testing.assert_allclose(streamed, whole, atol=2e-6)
