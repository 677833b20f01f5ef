"""One trial's preloaded stimuli: float32 frames laid out for the output, and what has been heard of each.

A :class:`Program` is built on the control thread (layout checks and copies happen there) and
handed to the audio callback whole, with the scratch buffers the mixer needs for it, so the
callback never allocates an array.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mosapp.core.errors import ConfigError

#: The callback mixes at most this many frames at once; the scratch buffers are this long.
CHUNK = 4096
#: Most channels a stimulus or the output may have.
MAX_CHANNELS = 8
#: Granularity of the "fraction heard" coverage, in seconds.
COVERAGE_CELL_S = 0.01


def as_frames(buffer: Any, channels: int, index: int, frames_first: bool = False) -> np.ndarray:
    """A stimulus as C-contiguous float32 frames ``(n, channels)``.

    1-D arrays are mono; 2-D arrays are ``(channels, n)`` as mosapp passes audio around, or
    ``(n, channels)`` when the first axis is clearly the longer one (or ``frames_first``). Mono
    is copied to every output channel; more channels than the output has are mixed down (to
    mono) or cut; fewer are padded with silence.

    Raises:
        ConfigError: the stimulus is empty, not finite, or not 1-D/2-D with at most
            :data:`MAX_CHANNELS` channels.
    """
    arr = np.asarray(buffer, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim == 2 and frames_first:
        pass
    elif arr.ndim == 2:
        if arr.shape[0] <= MAX_CHANNELS and arr.shape[0] <= arr.shape[1]:
            arr = arr.T
        elif arr.shape[1] > MAX_CHANNELS:
            raise ConfigError(f"Stimulus {index} has shape {arr.shape}; give (channels, n) with at most "
                              f"{MAX_CHANNELS} channels, or (n,) for mono.")
    else:
        raise ConfigError(f"Stimulus {index} has {arr.ndim} dimensions; give (channels, n) or (n,).")
    if arr.shape[0] == 0:
        raise ConfigError(f"Stimulus {index} is empty; every stimulus needs at least one sample.")
    if not np.isfinite(arr).all():
        raise ConfigError(f"Stimulus {index} contains NaN or infinite samples; only finite audio can be played.")
    have = arr.shape[1]
    if have != channels:
        if have == 1:
            arr = np.repeat(arr, channels, axis=1)
        elif channels == 1:
            arr = arr.mean(axis=1, keepdims=True)
        elif have > channels:
            arr = arr[:, :channels]
        else:
            arr = np.concatenate([arr, np.zeros((arr.shape[0], channels - have), np.float32)], axis=1)
    return np.ascontiguousarray(arr, dtype=np.float32)


class Program:
    """One trial's preloaded stimuli and what has been heard of each (written by the audio thread).

    Args:
        buffers: the stimuli (see :func:`as_frames`); at least one.
        channels: the output's channel count; every stimulus is laid out for it.
        rate: the sample rate in Hz (sets the coverage cells).
        names: a name per stimulus; default "0", "1" …
        frames_first: the buffers are already ``(n, channels)``.

    Raises:
        ConfigError: no stimuli, a stimulus :func:`as_frames` refuses, or a name count that
            does not match.
    """

    def __init__(self, buffers: Sequence[Any], channels: int, rate: int, names: Sequence[str] | None,
                 frames_first: bool = False):
        if len(buffers) == 0:
            raise ConfigError("The player needs at least one stimulus to play.")
        self.data = [as_frames(b, channels, i, frames_first) for i, b in enumerate(buffers)]
        self.channels = channels
        self.count = len(self.data)
        self.lengths = [int(d.shape[0]) for d in self.data]
        self.total = max(self.lengths)
        if names is None:
            names = [str(i) for i in range(self.count)]
        if len(names) != self.count:
            raise ConfigError(f"{len(names)} names were given for {self.count} stimuli; give one name per stimulus.")
        self.names = [str(n) for n in names]
        self.cell = max(1, round(rate * COVERAGE_CELL_S))
        self.coverage = [np.zeros(-(-n // self.cell), dtype=bool) for n in self.lengths]
        self.listened = [0] * self.count
        self.counts = [0] * self.count
        self.heard_end = [False] * self.count
        self.furthest = [0] * self.count
        # Per-stimulus gain ramps of one block, preallocated here (not in the callback).
        self.gain_scratch = np.zeros((self.count, CHUNK), dtype=np.float32)
        self.frame_scratch = np.zeros((CHUNK, channels), dtype=np.float32)

    def with_channels(self, channels: int, rate: int) -> Program:
        """The same stimuli laid out for another channel count (shares the statistics)."""
        other = Program(self.data, channels, rate, self.names, frames_first=True)
        other.coverage, other.listened, other.counts = self.coverage, self.listened, self.counts
        other.heard_end, other.furthest = self.heard_end, self.furthest
        return other

    def count_play(self, index: int) -> None:
        """Stimulus ``index`` started sounding (play, or switched to while playing)."""
        self.counts[index] += 1

    def record_heard(self, index: int, position: int, frames: int) -> None:
        """Stimulus ``index`` was heard (selected and playing) for ``frames`` frames from ``position``."""
        length = self.lengths[index]
        if position >= length:
            return
        end = min(position + frames, length)
        self.listened[index] += end - position
        self.coverage[index][position // self.cell:(end - 1) // self.cell + 1] = True
        if end > self.furthest[index]:
            self.furthest[index] = end
        if end >= length:
            self.heard_end[index] = True

