"""dsp.stft_magnitude: the pipeline's magnitude STFT, bit for bit stft(...).abs(), without the padded copy."""

import numpy as np
import pytest
import torch

from mosapp.core import dsp
from mosapp.core.config import GEOMETRIES
from tests.helpers import music_like


@pytest.mark.parametrize("name", ["thesis", "wide"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_the_modulus_of_the_stft_of_the_padded_signal(name, dtype):
    g = GEOMETRIES[name]
    # Longer than one chunk of frames (2048), so chunk edges and the periodic wrap both occur.
    x = torch.from_numpy(music_like(3.5, seed=4)[0]).to(dtype)
    xp, offset = dsp.pad_for_lattice(x, g)
    want = dsp.stft(xp, g).abs()
    assert torch.equal(dsp.stft_magnitude(xp, g), want)
    assert torch.equal(dsp.stft_magnitude(x, g, length=xp.shape[-1], offset=offset), want)
    frames = want.shape[1]
    for f0, f1 in [(0, 5), (frames // 3, frames - 1), (frames - 7, frames), (100, 2300)]:
        got = dsp.stft_magnitude(x, g, f0, f1, length=xp.shape[-1], offset=offset)
        assert got.shape == (g.bins, f1 - f0) and got.dtype == dtype
        assert torch.equal(got, dsp.stft(xp, g, f0, f1).abs()), (f0, f1)


def test_a_signal_just_longer_than_a_window_wraps_around_both_ends():
    g = GEOMETRIES["thesis"]
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(g.window_length + 3).astype(np.float32))
    xp, offset = dsp.pad_for_lattice(x, g)
    assert torch.equal(dsp.stft_magnitude(x, g, length=xp.shape[-1], offset=offset), dsp.stft(xp, g).abs())


def test_bad_arguments_are_refused():
    g = GEOMETRIES["thesis"]
    x = torch.zeros(2000)
    with pytest.raises(ValueError, match="multiple of 512"):
        dsp.stft_magnitude(x, g, length=2100)
    with pytest.raises(ValueError, match="do not fit"):
        dsp.stft_magnitude(x, g, length=2048, offset=100)
    with pytest.raises(ValueError, match="one channel"):
        dsp.stft_magnitude(torch.zeros(2, 2048), g)
