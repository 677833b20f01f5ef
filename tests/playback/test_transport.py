"""The playback engine: the render function driven sample by sample, real PortAudio streams on
ALSA's null device (in a subprocess with its own HOME), and silent mode when no device opens."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mosapp.core.errors import ConfigError
from mosapp.playback.player import Player, output_devices, write_virtual_alsa_config

RATE = 44_100
PEAK = 0.5


def sine(freq: float, seconds: float = 1.0, phase: float = 0.0, amp: float = PEAK) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def max_jump(x: np.ndarray) -> float:
    """Largest sample-to-sample step of a (n,) or (n, channels) signal."""
    return float(np.abs(np.diff(x, axis=0)).max())


def play_blocks(player: Player, total: int, block: int = 256) -> np.ndarray:
    out = [player.render(min(block, total - done)) for done in range(0, total, block)]
    return np.concatenate(out)


@pytest.fixture
def ab():
    """440 Hz and 1 kHz sines with different phases: the two stimuli a switch goes between."""
    return sine(440.0, phase=0.0), sine(1000.0, phase=1.3)


def playing_player(buffers, **kw) -> Player:
    """A player already past its play fade-in (so the output is the stimulus times 1)."""
    p = Player(buffers, RATE, **kw)
    p.play()
    p.render(p._fade)
    return p


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


def test_render_does_not_depend_on_the_block_size(ab):
    a, b = ab

    def run(block: int) -> np.ndarray:
        p = Player([a, b], RATE)
        script = {0: [("play",)], 2: [("select", 1)], 3: [("seek", 0.5)], 5: [("set_level", -6.0)],
                  6: [("pause",)], 7: [("play",), ("select", 0)], 8: [("set_loop", 0.1, 0.12)],
                  12: [("clear_loop",)]}
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


# ---------------------------------------------------------------------------- layout, arguments
def test_layouts_mono_stereo_and_frames_first():
    left, right = sine(300.0, 0.1), sine(500.0, 0.1, phase=1.0)
    stereo = np.stack([left, right])                     # (channels, n), mosapp's layout
    p = playing_player([stereo, left, stereo.T])
    assert p.channels == 2
    out = play_blocks(p, 1000)
    f = p._fade
    assert np.array_equal(out[:, 0], left[f:f + 1000]) and np.array_equal(out[:, 1], right[f:f + 1000])
    p.select(1)
    out = play_blocks(p, 1000)[p._xfade:]
    assert np.array_equal(out[:, 0], out[:, 1])          # mono on both channels
    p.select(2)
    out = play_blocks(p, 1000)[p._xfade:]
    assert np.array_equal(out[:, 1], right[f + 2000 + p._xfade:f + 3000])
    mono = Player([stereo], RATE, channels=1)
    mono.play()
    out = play_blocks(mono, 1000)
    assert out.shape == (1000, 1)
    np.testing.assert_allclose(out[mono._fade:, 0], ((left + right) / 2)[mono._fade:1000], atol=1e-7)


def test_invalid_arguments_are_config_errors(ab):
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


def _run(code: str, home: Path | None, timeout: float = 120) -> dict:
    """Run ``code`` in a fresh interpreter (PortAudio reads ~/.asoundrc when it initialises)."""
    env = dict(os.environ)
    if home is not None:
        env["HOME"] = str(home)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=timeout, env=env, cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


_HAS_SOUNDDEVICE = True
try:
    import sounddevice  # noqa: F401  (PortAudio initialises with this process's HOME; harmless)
except Exception:
    _HAS_SOUNDDEVICE = False

needs_alsa = pytest.mark.skipif(not (sys.platform.startswith("linux") and _HAS_SOUNDDEVICE),
                                reason="needs Linux (ALSA), the sounddevice package and libportaudio2")

_HEADER = """
import json, time
import numpy as np
from mosapp.playback.player import Player, output_devices
rate = 44100
t = np.arange(rate) / rate
a = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
b = (0.5 * np.sin(2 * np.pi * 1000 * t + 1.3)).astype(np.float32)
"""


@needs_alsa
def test_silent_mode_when_the_device_does_not_exist(tmp_path):
    write_virtual_alsa_config(tmp_path, paced=False)
    res = _run(_HEADER + """
p = Player([a, b])
opened_bad = p.open(12345)
bad = p.silent_reason
opened_name = p.open("no such card")
name = p.silent_reason
p.play(); p.select(1)
print(json.dumps({"devices": [d.name for d in output_devices()], "bad": [opened_bad, bad],
                  "name": [opened_name, name], "state": [p.playing, p.selected]}))
""", tmp_path)
    assert res["devices"], "the null ALSA configuration gives a default device"
    opened, reason = res["bad"]
    assert opened is False
    assert reason.startswith("Playback is silent: there is no output device 12345 (output devices: ")
    assert reason.endswith(".") and "default" in reason
    opened, reason = res["name"]
    assert opened is False and 'no output device named "no such card"' in reason
    assert res["state"] == [True, 1]


@needs_alsa
def test_silent_mode_without_any_device_or_without_portaudio(tmp_path):
    # A HOME without ALSA configuration: on a machine without a sound card PortAudio sees no
    # device; on one with a card the default device opens. Either way: no exception, an answer.
    res = _run(_HEADER + """
p = Player([a])
ok = p.open()
print(json.dumps({"ok": ok, "reason": p.silent_reason, "devices": len(output_devices())}))
p.close()
""", tmp_path)
    if res["devices"] == 0:
        assert res["ok"] is False
        assert res["reason"] == "Playback is silent: no audio output device was found."
    else:
        assert (res["ok"] is True) == (res["reason"] is None)
    # sounddevice (or PortAudio under it) missing: the import fails, the player stays usable.
    res = _run("""
import sys, json
sys.modules["sounddevice"] = None
import numpy as np
from mosapp.playback.player import Player, output_devices
p = Player([np.zeros(1000, np.float32)])
ok = p.open()
p.play()
print(json.dumps({"ok": ok, "reason": p.silent_reason, "devices": output_devices(), "out": p.render(64).shape}))
""", tmp_path)
    assert res["ok"] is False and res["devices"] == []
    assert res["reason"] == ("Playback is silent: the sounddevice package is not installed "
                             "(pip install sounddevice).")
    assert res["out"] == [64, 2]


# ---------------------------------------------------------------------------- real streams
@pytest.mark.slow
@needs_alsa
def test_real_stream_on_the_alsa_null_device(tmp_path):
    """pcm.!default { type null }: the stream opens, the callback runs, playback reaches the end
    (the null device takes samples as fast as they come, so this is faster than real time)."""
    write_virtual_alsa_config(tmp_path, paced=False)
    assert (tmp_path / ".asoundrc").read_text() == "pcm.!default {\n    type null\n}\n"
    res = _run(_HEADER + """
done = []
p = Player([a, b], on_finished=lambda: done.append(time.perf_counter()))
ok = p.open(blocksize=256)
reason, device = p.silent_reason, p.device.name if p.device else None
p.play()
t0 = time.perf_counter()
while not done and time.perf_counter() - t0 < 20:
    time.sleep(0.01)
res = {"ok": ok, "reason": reason, "device": device, "finished": len(done), "pos": p.position_s,
       "playing": p.playing, "heard": p.heard_to_end, "counts": p.play_counts, "listened": p.listened_s}
p.close()
res["closed"] = p.silent_reason
print(json.dumps(res))
""", tmp_path)
    assert res["ok"] is True and res["reason"] is None and res["device"] == "default"
    assert res["finished"] == 1 and res["pos"] == 1.0 and res["playing"] is False
    assert res["heard"] == [True, False] and res["counts"] == [1, 0] and res["listened"] == [1.0, 0.0]
    assert res["closed"] == "Playback is silent: the output stream was closed."


@pytest.mark.slow
@needs_alsa
def test_real_stream_advances_in_real_time_and_switches(tmp_path):
    """The null device paced like a sound card (ALSA file plugin, pipe read at 44.1 kHz)."""
    write_virtual_alsa_config(tmp_path, paced=True)
    res = _run(_HEADER + """
p = Player([np.tile(a, 10), np.tile(b, 10)])
ok = p.open(blocksize=256)
p.play()
time.sleep(0.3)
t1, x1 = time.perf_counter(), p.position_s
time.sleep(1.0)
t2, x2 = time.perf_counter(), p.position_s
p.select(1)
seq, t_sel = p.command_seq, time.perf_counter()
while p.applied[0] < seq and time.perf_counter() - t_sel < 2:
    time.sleep(0.0005)
latency = p.applied[1] - t_sel
time.sleep(0.2)
res = {"ok": ok, "reason": p.silent_reason, "speed": (x2 - x1) / (t2 - t1), "latency": latency,
       "block": p.blocksize, "counts": p.play_counts, "selected": p.selected, "xruns": p.xruns,
       "listened": p.listened_s}
p.pause()
time.sleep(0.2)
y1 = p.position_s
time.sleep(0.3)
res["paused_still"] = p.position_s == y1 and not p.playing
p.close()
print(json.dumps(res))
""", tmp_path)
    assert res["ok"] is True and res["reason"] is None and res["block"] == 256
    assert 0.8 < res["speed"] < 1.25, res            # about one second of audio per second
    assert 0 <= res["latency"] < 0.1, res             # a few ms on an idle machine
    assert res["counts"] == [1, 1] and res["selected"] == 1
    assert res["listened"][0] > 1.0 and res["listened"][1] > 0.1
    assert res["paused_still"]
