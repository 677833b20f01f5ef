"""The mixer: the Ramp and Level math frame by frame, one block mixed by hand next to the mixer,
and the crossfades and level ramps heard through a player (click-free, sample-exact)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from mosapp.core.errors import ConfigError
from mosapp.playback.mixer import Curve, Head, Level, Mixer, Ramp
from mosapp.playback.program import CHUNK, Program
from tests.playback.conftest import PEAK, RATE, max_jump, play_blocks, playing_player, sine


def gains(ramp: Ramp, n: int) -> np.ndarray:
    return ramp.gains(np.full(n, np.nan, dtype=np.float32))


# ---------------------------------------------------------------------------- Ramp
def test_a_rising_ramp_moves_one_step_per_frame_from_the_first_frame_and_holds_at_unity():
    np.testing.assert_array_equal(gains(Ramp(4, 0, 1), 6), np.array([0.25, 0.5, 0.75, 1, 1, 1], np.float32))
    np.testing.assert_array_equal(gains(Ramp(4, 2, 1), 3), np.array([0.75, 1, 1], np.float32))


def test_a_falling_ramp_reaches_exact_silence_and_holds():
    out = gains(Ramp(4, 4, -1), 6)
    np.testing.assert_array_equal(out, np.array([0.75, 0.5, 0.25, 0, 0, 0], np.float32))
    assert out[-1] == 0.0 and gains(Ramp(5, 5, 1), 3)[0] == 1.0   # exact ends, not 0.9999


def test_equal_power_is_the_sine_of_the_linear_progress():
    lin = gains(Ramp(7, 1, 1), 5).astype(np.float64)
    eq = gains(Ramp(7, 1, 1, Curve.EQUAL_POWER), 5)
    np.testing.assert_allclose(eq, np.sin(np.pi / 2 * lin), atol=1e-7)


def test_a_crossfade_pair_keeps_linear_sums_and_equal_power_energies_at_one():
    L = 220
    up, down = Ramp(L, 0, 1), Ramp(L, L, -1)
    np.testing.assert_allclose(gains(up, L) + gains(down, L), 1.0, atol=1e-6)
    up, down = Ramp(L, 0, 1, Curve.EQUAL_POWER), Ramp(L, L, -1, Curve.EQUAL_POWER)
    np.testing.assert_allclose(gains(up, L) ** 2 + gains(down, L) ** 2, 1.0, atol=1e-6)
    assert not np.allclose(gains(up, L) + gains(down, L), 1.0, atol=0.1)  # equal power is not linear


@pytest.mark.parametrize("ramp", [Ramp(50, 0, 1), Ramp(50, 50, -1), Ramp(50, 17, 1, Curve.EQUAL_POWER),
                                  Ramp(50, 33, -1)])
@pytest.mark.parametrize("split", [1, 17, 49, 50, 80])
def test_advancing_a_ramp_continues_its_gains_exactly(ramp, split):
    whole = gains(ramp, 100)
    later = ramp.advanced(split)
    np.testing.assert_array_equal(np.concatenate([gains(ramp, split), gains(later, 100 - split)]), whole)
    assert 0 <= later.step <= later.length and later.direction == ramp.direction and later.curve == ramp.curve


def test_ramp_states_and_turns() -> None:
    assert Ramp.unity(8).at_unity and not Ramp.unity(8).silent
    assert Ramp.silence(8).silent and not Ramp.silence(8).at_unity
    assert not Ramp(8, 8, -1).at_unity and not Ramp(8, 0, 1).silent     # ends that are about to move
    turned = Ramp(8, 3, 1, Curve.EQUAL_POWER).fade_out()
    assert turned == Ramp(8, 3, -1, Curve.EQUAL_POWER) and turned.fade_in().rising
    assert Ramp(8, 3, 1).advanced(100) == Ramp.unity(8) and Ramp(8, 3, -1).advanced(100) == Ramp.silence(8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Ramp.unity(8).step = 0  # type: ignore[misc]  # the point of the test: a Ramp cannot change


# ---------------------------------------------------------------------------- Level
def test_a_level_change_goes_linearly_from_the_old_gain_to_the_new():
    level = Level.steady(1.0, 4).toward(0.5)
    assert not level.settled and level.current == 1.0
    np.testing.assert_allclose(level.gains(np.empty(4, np.float32)), [0.875, 0.75, 0.625, 0.5], atol=1e-7)
    assert level.advanced(4) == Level.steady(0.5, 4) and level.advanced(9).settled


def test_a_level_change_in_mid_ramp_starts_from_where_the_gain_got():
    level = Level.steady(1.0, 4).toward(0.0).advanced(1)                # at 0.75 on the way down
    assert level.current == 0.75
    again = level.toward(1.0)
    assert again.start == 0.75 and again.ramp.step == 0
    np.testing.assert_allclose(again.gains(np.empty(2, np.float32)), [0.8125, 0.875], atol=1e-7)
    assert level.settle() == Level.steady(0.0, 4)


# ---------------------------------------------------------------------------- one block by hand
def test_the_mixer_sums_heads_times_stimuli_times_fade_and_level():
    rng = np.random.default_rng(3)
    data = [rng.uniform(-0.5, 0.5, (400, 2)).astype(np.float32), rng.uniform(-0.5, 0.5, 300).astype(np.float32),
            rng.uniform(-0.5, 0.5, (400, 2)).astype(np.float32)]
    prog = Program([data[0], data[1], data[2]], 2, RATE, None, frames_first=True)
    L = 40
    stimuli = [Ramp(L, 10, -1), Ramp(L, 25, 1), Ramp.silence(L)]           # 0 fading out, 1 in, 2 off
    heads = [Head(250, Ramp(L, 30, -1, Curve.EQUAL_POWER)), Head(20, Ramp(L, 5, 1, Curve.EQUAL_POWER)),
             Head(0, Ramp.silence(L, Curve.EQUAL_POWER)), Head(0, Ramp.silence(L, Curve.EQUAL_POWER))]
    fade = Ramp(60, 50, 1)
    level = Level.steady(1.0, 16).toward(0.25)
    n = 64
    out = np.full((n, 2), np.nan, dtype=np.float32)
    Mixer(4).mix(out, prog, stimuli, heads, fade, level)

    def g(ramp: Ramp) -> np.ndarray:
        j = np.arange(1, n + 1)
        p = np.clip(ramp.step + ramp.direction * j, 0, ramp.length) / ramp.length
        return np.sin(np.pi / 2 * p) if ramp.curve is Curve.EQUAL_POWER else p

    expected = np.zeros((n, 2))
    for head in heads[:2]:
        for i in (0, 1):
            src = np.zeros((n, 2))
            have = prog.data[i][head.position:head.position + n]
            src[:len(have)] = have                                          # stimulus 1 ends at 300
            expected += (g(head.ramp) * g(stimuli[i]))[:, None] * src
    lv = 1.0 + (0.25 - 1.0) * np.minimum(np.arange(1, n + 1), 16) / 16
    expected *= (g(fade) * lv)[:, None]
    np.testing.assert_allclose(out, expected, atol=2e-6)
    assert np.abs(out[:, 0]).max() > 0.01


def test_a_settled_mix_is_the_stimulus_itself():
    a = sine(440.0, 0.1)[:, None].repeat(2, axis=1)
    prog = Program([a], 2, RATE, None, frames_first=True)
    out = np.empty((CHUNK, 2), np.float32)
    heads = [Head(100, Ramp.unity(8, Curve.EQUAL_POWER))] + [Head(0, Ramp.silence(8, Curve.EQUAL_POWER))] * 3
    Mixer(4).mix(out, prog, [Ramp.unity(8)], heads, Ramp.unity(8), Level.steady(1.0, 8))
    assert np.array_equal(out, a[100:100 + CHUNK])
    Mixer(4).mix(out, prog, [Ramp.unity(8)], heads, Ramp.unity(8), Level.steady(0.5, 8))
    assert np.array_equal(out, a[100:100 + CHUNK] * np.float32(0.5))
    Mixer(4).mix(out, prog, [Ramp.unity(8)], heads, Ramp.silence(8), Level.steady(1.0, 8))
    assert not out.any()


# ---------------------------------------------------------------------------- heard through a player
def test_switch_crossfade_is_click_free(ab):
    a, b = ab
    natural = max(max_jump(a), max_jump(b))
    # Switch where the two signals are furthest apart: a hard cut there is a click.
    diff = np.abs(a - b)
    worst = int(np.argmax(diff[2000:20000])) + 2000
    assert diff[worst] > 0.9  # the test is meaningful: a hard switch would jump by ~2 * PEAK
    for at in (worst, 3001, 7777, worst + 123):
        p = playing_player([a, b])
        L = p._xfade
        before = play_blocks(p, at - p._fade)
        p.select(1)
        after = play_blocks(p, 3 * L)
        out = np.concatenate([before[-4:], after])
        bound = natural + (2 * PEAK) / L + 1e-6
        assert max_jump(out) <= bound, (at, max_jump(out), bound)
        if at == worst:
            assert abs(a[at - 1] - b[at]) > 4 * bound        # what a hard cut would have done


def test_rapid_switching_stays_click_free(ab):
    a, b = ab
    p = playing_player([a, b, sine(250.0, phase=2.0)])
    L = p._xfade
    natural = max(max_jump(a), max_jump(b), max_jump(sine(250.0, phase=2.0)))
    out = []
    for k in range(400):  # faster than the crossfade: every 37 samples
        p.select([1, 0, 2, 1][k % 4])
        out.append(p.render(37))
    out = np.concatenate(out)
    assert max_jump(out) <= natural + 2 * (2 * PEAK) / L + 1e-6
    assert np.abs(out).max() <= PEAK + 1e-6



# ---------------------------------------------------------------------------- level
def test_level_ramps_smoothly(ab):
    a, _ = ab
    p = playing_player([a], level_ramp_ms=20.0)
    R = p._ramp_len
    play_blocks(p, 1000)
    pos = round(p.position_s * RATE)
    p.set_level(-6.0)
    assert p.level_db == -6.0
    out = play_blocks(p, 3000)[:, 0]
    gain = 10 ** (-6 / 20)
    np.testing.assert_allclose(out[R:], gain * a[pos + R:pos + 3000], atol=1e-6)
    assert max_jump(out) <= max_jump(a) + (1 - gain) * PEAK / R + 1e-6
    envelope = np.abs(out[:R]) / np.maximum(np.abs(a[pos:pos + R]), 1e-3)
    big = np.abs(a[pos:pos + R]) > 0.05
    assert np.all(np.diff(envelope[big]) <= 1e-4)        # the gain only goes down
    p.set_level(-math.inf)
    out = play_blocks(p, 2 * R)
    assert np.all(out[R:] == 0)
    with pytest.raises(ConfigError):
        p.set_level(40.0)
    with pytest.raises(ConfigError):
        p.set_level(float("nan"))


