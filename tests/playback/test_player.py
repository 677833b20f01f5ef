"""The player's public surface: argument checks, the silent state before a device is opened,
the names callers import, and closing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import mosapp.playback
import mosapp.playback.player
from mosapp.core.errors import ConfigError
from mosapp.playback import Player, output_devices
from tests.playback.conftest import RATE, play_blocks


def test_invalid_arguments_are_config_errors(ab: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = ab
    with pytest.raises(ConfigError):
        Player([])
    with pytest.raises(ConfigError):
        Player([np.zeros(0, np.float32)])
    with pytest.raises(ConfigError):
        Player([np.full(10, np.nan, np.float32)])
    with pytest.raises(ConfigError):
        Player([a], crossfade_ms=0)
    p = Player([a, b])
    bad: Any
    for bad in (2, -1, True, "1"):
        with pytest.raises(ConfigError):
            p.select(bad)
    with pytest.raises(ConfigError):
        p.seek(float("inf"))


# ---------------------------------------------------------------------------- silent mode
def test_a_player_that_is_not_open_is_silent_and_says_why(ab):
    p = Player(list(ab))
    assert p.silent_reason == "Playback is silent: no output device has been opened yet."
    assert p.device is None and p.output_latency_s == 0.0
    p.play()
    p.select(1)
    p.seek(0.25)
    assert p.playing and p.selected == 1 and p.position_s == 0.25   # state works, nothing advances
    assert isinstance(output_devices(), list)



def test_callers_find_the_player_in_the_package_and_in_its_old_module():
    for module in (mosapp.playback, mosapp.playback.player):
        assert module.Player is Player and module.output_devices is output_devices
        assert module.OutputDevice is mosapp.playback.device.OutputDevice


def test_close_keeps_the_player_usable_and_silent(ab):
    a, b = ab
    with Player([a, b], RATE) as p:
        p.play()
        play_blocks(p, 1000)
    assert not p.playing and p.position_s * RATE == 1000    # closed mid-sound: paused where it was
    assert p.silent_reason == "Playback is silent: no output device has been opened yet."
    p.select(1)
    p.play()
    out = play_blocks(p, 2000)
    assert np.array_equal(out[p._fade:, 0], b[1000 + p._fade:3000])
    with pytest.raises(ConfigError):
        p.set_loop(0.1, None)
