import pytest

from mosapp.core.config import GEOMETRIES, get_geometry
from mosapp.core.errors import ConfigError


def test_geometries_have_the_documented_lattices():
    thesis, wide = GEOMETRIES["thesis"], GEOMETRIES["wide"]
    assert (thesis.channels, thesis.hop, thesis.bins) == (512, 64, 257)
    assert (wide.channels, wide.hop, wide.bins) == (1024, 128, 513)
    # Same pixel count per second of audio.
    assert thesis.bins / thesis.hop == pytest.approx(wide.bins / wide.hop, rel=0.01)
    # tifresi's truncated-Gaussian buffer lengths.
    assert thesis.window_length == 1024 and wide.window_length == 2048


def test_unknown_geometry_lists_known_ones():
    with pytest.raises(ConfigError, match="thesis, wide"):
        get_geometry("narrow")
