"""The decoder's level maps (mosapp.codecs.levelmap): interpolation, silence, bounds, checking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mosapp.codecs.levelmap import MIN_PIXEL, LevelMap, read_level_maps


def _map(offsets, rows=(0.0, 10.0), steps=(0.5, 2.0), spacing=10.0) -> LevelMap:
    return LevelMap.from_dict({"rows": list(rows), "level_step_db": spacing, "steps": list(steps),
                               "offsets_db": offsets}, "test")


def test_a_constant_offset_moves_every_sounding_pixel_and_leaves_silence():
    m = _map(np.full((2, 2, 3), 2.0).tolist())
    image = torch.tensor([[0.0, 0.5, 1.0], [0.9, 0.0, 0.2]])
    out = m.apply(image, 1.0, 100.0)
    expected = torch.where(image > 0, image + 0.02, image)
    assert torch.allclose(out, expected)
    assert out[0, 0] == 0 and out[1, 1] == 0  # exact silence stays silence


def test_offsets_interpolate_in_level_row_and_log_step():
    # step 0.5: level 0 dB -> +1, level -10 dB -> +3 (both rows); step 2: everything +5 at row 0, +9 at row 10
    low_step = [[[1.0, 3.0], [1.0, 3.0]]]
    high_step = [[[5.0, 5.0], [9.0, 9.0]]]
    m = _map(low_step + high_step)
    table = m.table(0.5, 11)
    assert table.shape == (11, 2) and np.allclose(table[:, 0], 1.0) and np.allclose(table[:, 1], 3.0)
    assert np.allclose(m.table(2.0, 11)[5], [7.0, 7.0])  # halfway between rows 0 and 10
    assert np.allclose(m.table(1.0, 11)[0], [3.0, 4.0])  # log-halfway between the steps
    assert np.allclose(m.table(0.1, 11), m.table(0.5, 11)) and np.allclose(m.table(9.0, 11), m.table(2.0, 11))
    # a pixel 5 dB below the peak at step 0.5 gets (1 + 3) / 2 = 2 dB; 30 dB below: the last level's 3 dB
    image = torch.tensor([[0.95, 0.7]])
    out = m.apply(image, 0.5, 100.0)
    assert torch.allclose(out, torch.tensor([[0.97, 0.73]]))


def test_a_pixel_pushed_below_zero_stays_just_above_silence():
    m = _map(np.full((2, 2, 1), -10.0).tolist())
    out = m.apply(torch.tensor([[0.05, 0.5]]), 1.0, 100.0)
    assert out[0, 0] == pytest.approx(MIN_PIXEL) and out[0, 1] == pytest.approx(0.4)


@pytest.mark.parametrize("change, words", [
    ({"offsets_db": [[[0.0]]]}, "shaped"),
    ({"rows": [10.0, 0.0]}, "ascending"),
    ({"steps": [2.0, 0.5]}, "ascending"),
    ({"offsets_db": np.full((2, 2, 1), 40.0).tolist()}, "within"),
    ({"offsets_db": [[[float("nan")]] * 2] * 2}, "finite"),
    ({"level_step_db": 0}, "positive"),
    ({"rows": "abc"}, "not numbers"),
])
def test_a_malformed_map_is_refused_in_one_sentence(change, words):
    raw = {"rows": [0.0, 10.0], "level_step_db": 10.0, "steps": [0.5, 2.0], "offsets_db": np.zeros((2, 2, 1)).tolist()}
    raw.update(change)
    with pytest.raises(ValueError, match=words):
        LevelMap.from_dict(raw, "test")
    with pytest.raises(ValueError, match="lacks a field"):
        LevelMap.from_dict({k: v for k, v in raw.items() if k != "steps"}, "test")


def test_read_level_maps_round_trips_and_checks_the_bands():
    m = _map(np.arange(12, dtype=float).reshape(2, 2, 3).tolist())
    again = read_level_maps({"high": m.as_dict()}, "w.pt")
    assert set(again) == {"high"} and np.allclose(again["high"].offsets_db, m.offsets_db)
    assert read_level_maps(None, "w.pt") == {}
    with pytest.raises(ValueError, match="w.pt's level maps"):
        read_level_maps({"middle": m.as_dict()}, "w.pt")
    with pytest.raises(ValueError, match="w.pt's low-band level map"):
        read_level_maps({"low": {"rows": []}}, "w.pt")
