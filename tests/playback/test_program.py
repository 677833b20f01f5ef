"""The program: stimuli laid out for the output (mono, stereo, frames first, mixed down or
padded), refused when unusable, and what is recorded as heard of each."""

from __future__ import annotations

import numpy as np
import pytest

from mosapp.core.errors import ConfigError
from mosapp.playback import Player
from mosapp.playback.program import MAX_CHANNELS, Program, as_frames
from tests.playback.conftest import RATE, play_blocks, playing_player, sine


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



def test_as_frames_pads_mixes_down_and_cuts_channels():
    stereo = np.stack([np.full(50, 0.2, np.float32), np.full(50, 0.6, np.float32)])
    np.testing.assert_array_equal(as_frames(stereo, 4, 0)[:, 2:], 0)           # padded with silence
    np.testing.assert_allclose(as_frames(stereo, 1, 0)[:, 0], 0.4, atol=1e-7)  # mixed down to mono
    three = np.stack([stereo[0], stereo[1], stereo[1] * 0])
    np.testing.assert_array_equal(as_frames(three, 2, 0), stereo.T)            # cut
    frames = as_frames(stereo, 2, 0)
    assert frames.flags.c_contiguous and frames.dtype == np.float32 and frames.shape == (50, 2)


@pytest.mark.parametrize("bad, words", [
    (np.zeros(0, np.float32), "is empty"),
    (np.full(10, np.inf, np.float32), "NaN or infinite"),
    (np.zeros((2, 2, 2), np.float32), "3 dimensions"),
    (np.zeros((20, MAX_CHANNELS + 1), np.float32), "at most 8 channels"),
])
def test_unusable_stimuli_are_refused_with_their_index(bad, words):
    with pytest.raises(ConfigError, match=words) as info:
        Program([sine(440.0, 0.01), bad], 2, RATE, None)
    assert "Stimulus 1 " in str(info.value)


def test_names_must_match_the_stimuli():
    with pytest.raises(ConfigError, match="2 names were given for 1 stimuli"):
        Program([sine(440.0, 0.01)], 2, RATE, ["a", "b"])
    with pytest.raises(ConfigError, match="at least one stimulus"):
        Program([], 2, RATE, None)
    assert Program([sine(440.0, 0.01)] * 2, 2, RATE, None).names == ["0", "1"]


def test_what_is_heard_is_recorded_per_stimulus_in_10_ms_cells():
    prog = Program([np.zeros(RATE, np.float32), np.zeros(RATE // 2, np.float32)], 1, RATE, None)
    assert prog.cell == 441 and [len(c) for c in prog.coverage] == [100, 50]
    prog.record_heard(0, 441 * 10, 441)            # exactly cell 10
    prog.record_heard(0, 441 * 20 + 1, 2)          # inside cell 20
    assert np.flatnonzero(prog.coverage[0]).tolist() == [10, 20]
    assert prog.listened == [443, 0] and prog.furthest == [441 * 20 + 3, 0] and prog.heard_end == [False, False]
    prog.record_heard(1, RATE // 2 - 100, 1000)    # runs past its end: counted up to the end
    assert prog.listened[1] == 100 and prog.heard_end == [False, True] and prog.furthest[1] == RATE // 2
    prog.record_heard(1, RATE // 2 + 5, 10)        # past the end: nothing
    assert prog.listened[1] == 100
    prog.count_play(1)
    assert prog.counts == [0, 1]


def test_another_channel_layout_shares_the_statistics():
    prog = Program([sine(440.0, 0.1)], 2, RATE, ["only"])
    mono = prog.with_channels(1, RATE)
    assert mono.channels == 1 and mono.data[0].shape == (4410, 1) and mono.names == ["only"]
    np.testing.assert_array_equal(mono.data[0][:, 0], prog.data[0][:, 0])
    mono.record_heard(0, 0, 100)
    mono.count_play(0)
    assert prog.listened == [100] and prog.counts == [1] and prog.coverage[0][0]
