"""The transport: the shared position kept sample-exact through switches, pause/resume, seeks,
loops and the end of the timeline; what is counted as heard; the command queue and the read
heads driven directly; the notifier thread."""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

import numpy as np
import pytest

from mosapp.core.errors import ConfigError
from mosapp.playback import Player
from mosapp.playback.mixer import Curve, Ramp
from mosapp.playback.program import Program
from mosapp.playback.transport import HEADS, Notifier, Transport
from tests.playback.conftest import PEAK, RATE, max_jump, play_blocks, playing_player, sine


# ---------------------------------------------------------------------------- switching
@pytest.mark.parametrize("block", [1, 64, 256, 1000])
def test_switch_keeps_the_position_sample_exact(ab, block):
    a, b = ab
    p = playing_player([a, b])
    start = p._fade
    head = play_blocks(p, 5000 - start, block)
    p.select(1)
    assert p.selected == 1
    tail = play_blocks(p, 5000, block)
    out = np.concatenate([head, tail])[:, 0]
    L = p._xfade
    assert np.array_equal(out[:5000 - start], a[start:5000])           # before: a, exactly
    assert np.array_equal(out[5000 - start + L:], b[5000 + L:10000])      # after: b at the same sample
    g = (np.arange(1, L + 1) / L).astype(np.float32)                       # in between: linear crossfade
    expected = (1 - g) * a[5000:5000 + L] + g * b[5000:5000 + L]
    np.testing.assert_allclose(out[5000 - start:5000 - start + L], expected, atol=1e-6)
    assert p.position_s * RATE == 10000


def test_render_does_not_depend_on_the_block_size(ab):
    a, b = ab

    def run(block: int) -> np.ndarray:
        p = Player([a, b], RATE)
        script: dict[int, list[tuple[Any, ...]]] = {0: [("play",)], 2: [("select", 1)], 3: [("seek", 0.5)], 5: [("set_level", -6.0)],
                                                     6: [("pause",)], 7: [("play",), ("select", 0)],
                                                     8: [("set_loop", 0.1, 0.12)], 12: [("clear_loop",)]}
        out = []
        for step in range(16):
            for name, *args in script.get(step, []):
                getattr(p, name)(*args)
            out.append(play_blocks(p, 1024, block))
        return np.concatenate(out)

    reference = run(1024)
    for block in (1, 64, 256, 512):
        assert np.array_equal(run(block), reference), block
    assert np.abs(reference).max() > 0.1


# ---------------------------------------------------------------------------- transport
def test_pause_and_resume_are_click_free_and_keep_the_position(ab):
    a, _ = ab
    p = Player([a], RATE, fade_ms=5.0)
    F = p._fade
    natural = max_jump(a)
    p.play()
    out1 = play_blocks(p, 3000)
    assert p.playing
    p.pause()
    assert not p.playing
    out2 = play_blocks(p, 2000)
    assert np.all(out2[F:] == 0)                       # faded out, then silence
    stop = 3000 + F
    assert p.position_s * RATE == stop                 # the position stopped where the fade ended
    play_blocks(p, 1000)
    assert p.position_s * RATE == stop
    p.play()
    out3 = play_blocks(p, 2000)
    assert np.array_equal(out3[F:, 0], a[stop + F:stop + 2000])   # resumed at the same sample
    whole = np.concatenate([out1, out2, out3])
    assert max_jump(whole) <= natural + PEAK / F + 1e-6


def test_play_at_the_end_starts_again_and_toggle_is_the_space_key(ab):
    a, _ = ab
    p = Player([a[:5000]], RATE)
    p.toggle()
    assert p.playing
    play_blocks(p, 6000)
    assert not p.playing and p.position_s * RATE == 5000
    p.toggle()
    assert p.playing and p.position_s == 0.0
    out = p.render(1000)
    assert np.array_equal(out[p._fade:, 0], a[p._fade:1000])
    p.toggle()
    assert not p.playing


def test_seek_crossfades_to_the_new_position(ab):
    a, _ = ab
    p = playing_player([a])
    L = p._xfade
    play_blocks(p, 1000)
    before = p.render(1)
    p.seek(0.5)
    assert p.position_s == 0.5
    after = play_blocks(p, 2000)
    out = np.concatenate([before, after])[:, 0]
    assert max_jump(out) <= 1.5 * max_jump(a) + math.pi * PEAK / L + 1e-6
    assert np.array_equal(out[1 + L:], a[22050 + L:22050 + 2000])
    assert p.position_s * RATE == 22050 + 2000


# ---------------------------------------------------------------------------- loop
def test_loop_region_wraps_with_a_crossfade_inside_the_region(ab):
    a, _ = ab
    p = playing_player([a])
    L = p._xfade
    start_s, end_s = 0.25, 0.35
    start, end = round(start_s * RATE), round(end_s * RATE)
    p.set_loop(start_s, end_s)
    assert p.loop == (start_s, end_s)
    assert p.position_s == start_s                      # outside the region: moved into it
    out, positions = [], []
    for _ in range(200):
        out.append(p.render(256))
        positions.append(round(p.position_s * RATE))
    out = np.concatenate(out)[:, 0]
    assert all(start <= q < end for q in positions)
    # The first pass: the jump into the region (crossfade from the old position), then the
    # region until end - L, where the wrap crossfade into its start begins.
    period = end - L - start
    first_wrap = period  # output frame 0 is the region's start (the jump in)
    j = np.arange(1, L + 1)
    w_in = np.sin(np.pi / 2 * j / L)
    w_out = np.sin(np.pi / 2 * (L - j) / L)
    expected = w_out * a[end - L:end] + w_in * a[start:start + L]
    np.testing.assert_allclose(out[first_wrap:first_wrap + L], expected, atol=2e-6)
    assert np.array_equal(out[first_wrap + L:first_wrap + period], a[start + L:end - L])
    assert max_jump(out) <= 1.5 * max_jump(a) + math.pi * PEAK / L + 1e-6
    p.clear_loop()
    assert p.loop is None
    play_blocks(p, RATE)
    assert p.position_s * RATE > end
    with pytest.raises(ConfigError):
        p.set_loop(0.5, 0.4)
    with pytest.raises(ConfigError):
        p.set_loop(0.5, 9.0)
    p.set_loop(0.5, 0.5001)                              # too short: widened to 4 crossfades
    assert p.loop[1] - p.loop[0] == pytest.approx(4 * L / RATE)


# ---------------------------------------------------------------------------- accounting
def test_heard_to_end_play_counts_listening_time_and_on_finished(ab):
    a, b = ab
    a, b = a[:RATE // 2], b[: 3 * RATE // 10]           # 0.5 s and 0.3 s: different lengths
    finished = []
    p = Player([a, b], RATE, names=["reference", "sample"], on_finished=lambda: finished.append(p.position_s))
    assert p.durations_s == [0.5, 0.3] and p.duration_s == 0.5 and p.names == ["reference", "sample"]
    p.play()
    play_blocks(p, RATE)
    assert finished == [0.5] and not p.playing
    assert p.heard_to_end == [True, False]
    assert p.play_counts == [1, 0]
    assert p.listened_s == [0.5, 0.0]
    assert p.heard_fraction == [1.0, 0.0]
    p.select(1)
    p.play()                                             # from the start again
    play_blocks(p, RATE // 10)
    p.select(0)                                          # switched while playing: a play of each
    play_blocks(p, RATE // 10)
    p.select(1)
    play_blocks(p, RATE)
    assert p.heard_to_end == [True, True] and len(finished) == 2
    assert p.play_counts == [2, 2]
    assert p.listened_s == [0.6, 0.2]
    # Jumping to just before the end reaches the end, but not all of it was heard.
    p.load([a, b])
    assert p.play_counts == [0, 0] and p.heard_to_end == [False, False]
    p.seek(0.45)
    p.play()
    play_blocks(p, RATE // 10)
    assert p.heard_to_end == [True, False]
    assert p.heard_fraction[0] == pytest.approx(0.1, abs=0.03)
    assert p.furthest_s[0] == 0.5
    assert p.listened_s[0] == pytest.approx(0.05, abs=1e-4)


def test_a_shorter_stimulus_is_silent_past_its_end(ab):
    a, b = ab
    p = playing_player([a, b[:10000]])
    play_blocks(p, 8000 - p._fade)
    p.select(1)
    out = play_blocks(p, 4000)[:, 0]
    assert np.array_equal(out[p._xfade:2000], b[8000 + p._xfade:10000])
    np.testing.assert_array_equal(out[2000:], 0)


# ---------------------------------------------------------------------------- the transport driven directly
def transport(*buffers: np.ndarray, crossfade: int = 40, fade: int = 20) -> Transport:
    prog = Program(list(buffers) or [sine(440.0, 0.2)], 1, RATE, None)
    return Transport(prog, crossfade_frames=crossfade, fade_frames=fade, level_ramp_frames=30)


def test_commands_wait_in_the_queue_until_a_block_drains_them():
    t = transport(sine(440.0, 0.2), sine(1000.0, 0.2))
    t.post("play")
    t.post("select", 1)
    t.post("seek", 500)
    assert t.seq == 3 and t.selected == 0 and not t.fade.rising
    t.publish()
    assert t.published_position == 0 and not t.published_playing   # nothing shown before it is applied
    assert t.render_into(np.zeros((64, 1), np.float32)) == 3        # the last command applied
    assert t.selected == 1 and t.fade.rising and t.heads[t.main].position == 500 + 64
    t.publish()
    assert t.published_position == 564 and t.published_playing
    assert t.render_into(np.zeros((64, 1), np.float32)) == 0        # nothing new


def test_a_seek_while_sounding_fades_the_old_head_out_and_reuses_the_quietest_when_all_are_busy():
    t = transport(sine(440.0, 0.5), crossfade=220)
    t.post("play")
    block = np.zeros((20, 1), np.float32)
    t.render_into(block)                      # past the 20-frame play fade: the transport is at unity
    assert t.fade.at_unity and t.main == 0
    steps = []
    for target, frames in ((5000, 20), (9000, 5), (13000, 1)):
        t.post("seek", target)
        t.render_into(np.zeros((frames, 1), np.float32))
        steps.append([h.ramp.step for h in t.heads])
    assert t.main == 3 and t.heads[3].position == 13000 + 1
    # Heads 0-2 fade out (equal power), each from where it got; none is silent yet.
    assert [h.ramp.rising for h in t.heads] == [False, False, False, True]
    assert all(h.ramp.curve is Curve.EQUAL_POWER for h in t.heads)
    assert steps[-1] == [220 - 26, 20 - 6, 5 - 1, 1]
    t.post("seek", 17000)                     # no free head: the quietest (head 2, step 4) is reused
    t.render_into(np.zeros((1, 1), np.float32))
    assert t.main == 2 and t.heads[2].position == 17001 and t.heads[2].ramp == Ramp(220, 1, 1, Curve.EQUAL_POWER)
    assert len(t.heads) == HEADS


def test_a_seek_while_silent_moves_the_head_without_a_crossfade():
    t = transport()
    t.post("seek", 1234)
    t.drain()
    assert t.main == 0 and t.heads[0].position == 1234 and t.heads[0].ramp.at_unity
    assert all(h.ramp.silent for h in t.heads[1:])


def test_stop_sounding_pauses_where_it_was_with_nothing_fading():
    t = transport(sine(440.0, 0.2), sine(1000.0, 0.2))
    t.post("play")
    t.post("select", 1)
    t.render_into(np.zeros((10, 1), np.float32))
    t.stop_sounding()
    assert t.fade.silent and t.heads[t.main].position == 10 and t.heads[t.main].ramp.at_unity
    assert t.stimuli[1].at_unity and t.stimuli[0].silent
    assert t.render_into(np.ones((8, 1), np.float32)) == 0
    t.publish()
    assert not t.published_playing and t.published_position == 10


def test_the_notifier_announces_each_end_once_and_survives_a_failing_listener(caplog: pytest.LogCaptureFixture) -> None:
    t = transport(sine(440.0, 0.01))
    notifier = Notifier(t)
    calls: list[str] = []
    t.post("play")
    t.render_into(np.zeros((1000, 1), np.float32))   # 441 frames: the end is reached once
    assert t.finished_count == 1
    notifier.dispatch(lambda: lambda: calls.append("end"))
    notifier.dispatch(lambda: lambda: calls.append("end"))
    assert calls == ["end"]

    def broken() -> None:
        raise ValueError("listener bug")

    t.finished_count += 1
    with caplog.at_level(logging.ERROR):
        notifier.dispatch(lambda: broken)
    assert "on_finished failed" in caplog.text
    notifier.dispatch(lambda: None)                   # nothing left to announce, nothing called


def test_the_notifier_thread_calls_the_listener_off_the_calling_thread() -> None:
    t = transport()
    notifier = Notifier(t)
    called = threading.Event()
    where: list[str] = []

    def on_end() -> None:
        where.append(threading.current_thread().name)
        called.set()

    notifier.start(lambda: on_end)
    notifier.wake()                                   # nothing to announce yet: stays asleep
    assert not called.wait(0.05)
    t.finished_count += 1
    notifier.wake()
    assert called.wait(2.0)
    notifier.stop()
    assert where == ["mosapp-playback-events"]
